package server

// ACL users, as Redis 7.0 has them (acl.c): every connection is
// authenticated as a user (the "default" user until AUTH or HELLO … AUTH
// names another), and every command it sends is checked against that
// user's rules before it runs: the command (or subcommand) must be allowed,
// every key argument must match one of the user's key patterns with the
// right access (%R~ read, %W~ write, ~ both), and the channels of PUBLISH,
// SUBSCRIBE and PSUBSCRIBE must match a channel pattern.
//
// # Concurrency
//
// A user's rules are an immutable aclRules value behind an atomic pointer:
// ACL SETUSER builds a modified copy and publishes it, so the check in
// dispatch reads them without a lock and a change applies to the next
// command of every connection of that user. aclUser.open caches whether
// the rules allow everything (the default user's usual state): dispatch
// tests only that bool on its hot path. Changes to the set of users (SETUSER
// of a new user, DELUSER, LOAD) are serialised by aclRegistry.mu.
//
// # Differences from Redis
//
//   - The single-command part of a rules description (ACL LIST, GETUSER) is
//     in command-name order; Redis follows its hash table's order, which
//     differs between processes.
//   - An ACL file without a "default" user line leaves the default user
//     with all permissions, as Redis does, but with the requirepass
//     password when one is configured (Redis makes it nopass).
//   - ACL LOG keeps at most aclLogObjectMax bytes of a key, channel or user
//     name, so that a flood of denied huge keys cannot grow the log.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/server/internal/resp"
)

// ---- categories ----

// aclCat is a set of ACL command categories; bit i is the i-th category
// that ACL CAT lists, in Redis's order.
type aclCat uint32

const (
	catKeyspace aclCat = 1 << iota
	catRead
	catWrite
	catSet
	catSortedSet
	catList
	catHash
	catString
	catBitmap
	catHyperLogLog
	catGeo
	catStream
	catPubsub
	catAdmin
	catFast
	catSlow
	catBlocking
	catDangerous
	catConnection
	catTransaction
	catScripting

	aclCatCount = iota
)

// aclCategoryNames returns the category names in ACL CAT's order.
func aclCategoryNames() [aclCatCount]string {
	return [aclCatCount]string{"keyspace", "read", "write", "set", "sortedset", "list", "hash",
		"string", "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
		"blocking", "dangerous", "connection", "transaction", "scripting"}
}

// aclCategoryByName finds a category by name, case-insensitively.
func aclCategoryByName(name string) (aclCat, bool) {
	for i, n := range aclCategoryNames() {
		if strings.EqualFold(n, name) {
			return aclCat(1) << i, true
		}
	}
	return 0, false
}

// names returns the categories as COMMAND INFO shows them ("@read"), in
// Redis's order.
func (m aclCat) names() []string {
	all := aclCategoryNames()
	out := make([]string, 0, bits.OnesCount32(uint32(m)))
	for i := range all {
		if m&(aclCat(1)<<i) != 0 {
			out = append(out, "@"+all[i])
		}
	}
	return out
}

// aclCategoriesOf derives a command's categories as Redis does
// (setImplicitACLCategories): from its flags, from its group (a container
// command has none), and from the few categories Redis's command table
// names explicitly.
func aclCategoriesOf(cmd *command) aclCat {
	var m aclCat
	if cmd.flags&flagWrite != 0 {
		m |= catWrite
	}
	if cmd.flags&flagReadonly != 0 && cmd.group != "scripting" {
		m |= catRead
	}
	if cmd.flags&flagAdmin != 0 {
		m |= catAdmin | catDangerous
	}
	if cmd.flags&flagFast != 0 {
		m |= catFast
	}
	if cmd.subs == nil {
		m |= groupCategory(cmd)
	}
	add, drop := aclExtraCategories(cmd.name)
	m = m&^drop | add
	if m&catFast == 0 {
		m |= catSlow
	}
	return m
}

// groupCategory is the category of a command's COMMAND DOCS group.
func groupCategory(cmd *command) aclCat {
	switch cmd.group {
	case "generic":
		return catKeyspace
	case "string":
		return catString
	case "hash":
		return catHash
	case "set":
		return catSet
	case "sorted_set", "sorted-set":
		return catSortedSet
	case "list":
		return catList
	case "stream":
		return catStream
	case "geo":
		return catGeo
	case "bitmap":
		return catBitmap
	case "hyperloglog":
		return catHyperLogLog
	case "pubsub":
		if cmd.name != "pubsub|help" { // Redis's PUBSUB HELP lacks the pubsub flag
			return catPubsub
		}
	case "transactions":
		return catTransaction
	case "scripting":
		return catScripting
	case "connection":
		return catConnection
	}
	return 0
}

// aclExtraCategories are the categories Redis's command table gives a
// command beyond those its flags and group imply (add), or that its group
// would wrongly imply (drop).
func aclExtraCategories(name string) (add, drop aclCat) {
	if name == "command" || strings.HasPrefix(name, "command|") {
		return catConnection, 0
	}
	switch name {
	case "wait", "asking":
		return catConnection, catKeyspace
	case "dbsize":
		return catKeyspace, 0
	case "flushall", "flushdb", "swapdb", "restore-asking":
		return catKeyspace | catDangerous, 0
	case "info", "keys", "migrate", "restore":
		return catDangerous, 0
	case "lastsave", "role":
		return catAdmin | catDangerous, 0
	case "sort", "sort_ro":
		return catSet | catSortedSet | catList | catDangerous, catKeyspace
	case "cluster|addslots", "cluster|addslotsrange", "cluster|bumpepoch", "cluster|count-failure-reports",
		"cluster|delslots", "cluster|delslotsrange", "cluster|failover", "cluster|flushslots",
		"cluster|forget", "cluster|meet", "cluster|replicas", "cluster|replicate", "cluster|reset",
		"cluster|saveconfig", "cluster|set-config-epoch", "cluster|setslot", "cluster|slaves":
		return catAdmin | catDangerous, 0
	}
	return 0, 0
}

// ---- keys ----

// keyPerm is what a command does with a key argument, checked against %R~
// and %W~ patterns (Redis's key-spec flags: ACCESS needs read; INSERT,
// UPDATE and DELETE need write). A key a command only looks at (EXISTS,
// TYPE) needs neither, but must still match some pattern.
type keyPerm uint8

const (
	permRead keyPerm = 1 << iota
	permWrite
)

// keySpec finds one group of key arguments of a command, like a Redis key
// spec: either a range (begin, last, step) or a numkeys form.
type keySpec struct {
	perm  keyPerm
	begin int // the first key, or where the numkeys form starts
	// last is the last key relative to begin (0: begin only), or, when
	// negative, counted from the end (-1: the last argument).
	last, step int
	// numkeys form: the key count is at begin+numIdx, the keys start at
	// begin+first.
	keynum        bool
	numIdx, first int
}

// keySpecsFor returns the key specs of cmd, as Redis 7.0's command table
// has them: from firstKey/lastKey/step and the read/write flags, with the
// exceptions Redis's specs make explicit, and the numkeys commands (EVAL,
// SINTERCARD, ZUNIONSTORE …), whose keys the table cannot describe.
func keySpecsFor(cmd *command) []keySpec {
	const r, w, rw = permRead, permWrite, permRead | permWrite
	one := func(p keyPerm, at int) keySpec { return keySpec{perm: p, begin: at, step: 1} }
	rest := func(p keyPerm, at int) keySpec { return keySpec{perm: p, begin: at, last: -1, step: 1} }
	numkeys := func(p keyPerm, at int) keySpec {
		return keySpec{perm: p, begin: at, keynum: true, first: 1, step: 1}
	}
	switch cmd.name {
	case "copy":
		return []keySpec{one(r, 1), one(w, 2)}
	case "rename", "renamenx", "smove", "lmove", "rpoplpush", "blmove", "brpoplpush":
		return []keySpec{one(rw, 1), one(w, 2)}
	case "sdiffstore", "sinterstore", "sunionstore":
		return []keySpec{one(w, 1), rest(r, 2)}
	case "zrangestore":
		return []keySpec{one(w, 1), one(r, 2)}
	case "zunionstore", "zinterstore", "zdiffstore":
		return []keySpec{one(w, 1), numkeys(r, 2)}
	case "eval", "evalsha", "fcall":
		return []keySpec{numkeys(rw, 2)}
	case "eval_ro", "evalsha_ro", "fcall_ro":
		return []keySpec{numkeys(r, 2)}
	case "sintercard", "zdiff", "zinter", "zunion", "zintercard":
		return []keySpec{numkeys(r, 1)}
	case "lmpop", "zmpop":
		return []keySpec{numkeys(rw, 1)}
	case "blmpop", "bzmpop":
		return []keySpec{numkeys(rw, 2)}
	}
	if cmd.firstKey <= 0 {
		return nil
	}
	var p keyPerm
	switch {
	case cmd.flags&flagReadonly != 0:
		p = r
	case cmd.flags&flagWrite != 0:
		p = rw
	}
	switch cmd.name {
	case "exists", "touch", "type", "strlen", "watch", "hexists", "hlen", "hstrlen", "llen",
		"scard", "sismember", "zcard", "object|encoding", "object|freq", "object|idletime", "object|refcount":
		p = 0
	case "append", "setrange", "expire", "pexpire", "expireat", "pexpireat", "persist", "del", "unlink",
		"setex", "psetex", "setnx", "mset", "msetnx", "hdel", "hmset", "hset", "hsetnx", "linsert",
		"lpush", "lpushx", "lrem", "lset", "ltrim", "rpush", "rpushx", "sadd", "srem", "zadd", "zrem",
		"zremrangebylex", "zremrangebyrank", "zremrangebyscore", "restore":
		p = w
	}
	last := cmd.lastKey
	if last > 0 {
		last -= cmd.firstKey
	}
	return []keySpec{{perm: p, begin: cmd.firstKey, last: last, step: max(cmd.step, 1)}}
}

// noMandatoryKeys reports whether cmd may be called without keys (COMMAND
// GETKEYS then answers an empty list rather than an error).
func noMandatoryKeys(cmd *command) bool {
	switch cmd.name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return true
	}
	return false
}

// keyRef is a key argument: its index in the command and what the
// command does with it.
type keyRef struct {
	pos  int
	perm keyPerm
}

// commandKeys appends to dst the key arguments of args (a full command,
// its name first) as cmd's key specs find them. Arguments that do not fit
// a spec (a numkeys that is not a positive count of the arguments left)
// yield no keys at all: the command itself reports the error, as in Redis.
func (t *aclTable) commandKeys(dst []keyRef, cmd *command, args [][]byte) []keyRef {
	start := len(dst)
	for _, sp := range t.specs[cmd.id] {
		first, last, step := sp.begin, 0, sp.step
		if sp.keynum {
			at := sp.begin + sp.numIdx
			if at >= len(args) {
				return dst[:start]
			}
			n, ok := parseInt(args[at])
			if !ok || n <= 0 || n > int64(len(args)) {
				return dst[:start]
			}
			first = sp.begin + sp.first
			last = first + (int(n)-1)*step
		} else if sp.last >= 0 {
			last = first + sp.last
		} else {
			last = len(args) + sp.last
		}
		if first >= len(args) || last >= len(args) || last < first {
			return dst[:start]
		}
		perm := sp.perm
		if cmd.name == "set" {
			perm = setKeyPerm(args)
		}
		for i := first; i <= last; i += step {
			dst = append(dst, keyRef{i, perm})
		}
	}
	return dst
}

// setKeyPerm is SET's key access: it reads the old value only with GET.
func setKeyPerm(args [][]byte) keyPerm {
	for _, a := range args[min(3, len(args)):] {
		if strings.EqualFold(string(a), "get") {
			return permRead | permWrite
		}
	}
	return permWrite
}

// hasChannels tells how cmd names Pub/Sub channels: 0 none, else the
// arguments from 1 are channels (literal false: matched against the
// user's channel patterns) or patterns (literal true: must equal one).
func hasChannels(cmd *command) (which int, literal bool) {
	switch cmd.name {
	case "publish", "spublish":
		return 1, false // the channel only
	case "subscribe", "ssubscribe":
		return -1, false
	case "psubscribe":
		return -1, true
	}
	return 0, false
}

// ---- the command table, as ACLs see it ----

// aclTable numbers the commands for the rule bitmaps and holds what the
// checks need of each. Built once by New; read-only afterwards.
type aclTable struct {
	cmds   []*command  // by id; containers before their subcommands
	top    []*command  // top-level commands by name
	cats   []aclCat    // by id
	specs  [][]keySpec // by id
	lookup func(string) *command
}

func newACLTable(cmds map[string]*command, lookup func(string) *command) *aclTable {
	t := &aclTable{lookup: lookup}
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	add := func(cmd *command) {
		cmd.id = len(t.cmds)
		t.cmds = append(t.cmds, cmd)
		t.cats = append(t.cats, aclCategoriesOf(cmd))
		t.specs = append(t.specs, keySpecsFor(cmd))
	}
	for _, n := range names {
		cmd := cmds[n]
		t.top = append(t.top, cmd)
		add(cmd)
		for _, sub := range sortedSubs(cmd) {
			add(sub)
		}
	}
	return t
}

// words is the bitmap length for the table.
func (t *aclTable) words() int { return (len(t.cmds) + 63) / 64 }

// ---- selectors ----

// keyPattern is a key pattern of a selector, with the access it grants.
type keyPattern struct {
	pattern string
	perm    keyPerm
}

// aclSelector is a set of permissions: the root one (the rules given
// outside parentheses) and those given as "(…)". A command is allowed when
// any selector of the user allows it.
type aclSelector struct {
	root        bool
	allCommands bool     // "+@all" not since narrowed: no per-command test
	future      bool     // started from +@all (describe then begins with it)
	bits        []uint64 // allowed commands, by aclTable id
	// firstArgs are the first arguments allowed of an otherwise denied
	// command ("+select|0"), by command id.
	firstArgs   map[int][]string
	allKeys     bool
	keys        []keyPattern
	allChannels bool
	channels    []string
}

func newSelector(t *aclTable, root bool) *aclSelector {
	return &aclSelector{root: root, bits: make([]uint64, t.words())}
}

func (s *aclSelector) clone() *aclSelector {
	c := *s
	c.bits = slices.Clone(s.bits)
	c.keys = slices.Clone(s.keys)
	c.channels = slices.Clone(s.channels)
	if s.firstArgs != nil {
		c.firstArgs = make(map[int][]string, len(s.firstArgs))
		for id, a := range s.firstArgs {
			c.firstArgs[id] = slices.Clone(a)
		}
	}
	return &c
}

func (s *aclSelector) bit(id int) bool { return s.bits[id/64]&(1<<(id%64)) != 0 }

func (s *aclSelector) setBit(id int, on bool) {
	if on {
		s.bits[id/64] |= 1 << (id % 64)
		return
	}
	s.bits[id/64] &^= 1 << (id % 64)
	s.allCommands = false
}

// changePerm allows or denies cmd, and all its subcommands if it is a
// container (ACLChangeSelectorPerm).
func (s *aclSelector) changePerm(cmd *command, allow bool) {
	s.setBit(cmd.id, allow)
	delete(s.firstArgs, cmd.id)
	for _, sub := range cmd.subs {
		s.setBit(sub.id, allow)
	}
}

// setCategory allows or denies every command of cat.
func (s *aclSelector) setCategory(t *aclTable, cat aclCat, allow bool) {
	for _, cmd := range t.top {
		if t.cats[cmd.id]&cat != 0 {
			s.changePerm(cmd, allow)
		}
		for _, sub := range cmd.subs {
			if t.cats[sub.id]&cat != 0 {
				s.changePerm(sub, allow)
			}
		}
	}
}

func (s *aclSelector) setAll(allow bool) {
	var v uint64
	if allow {
		v = ^uint64(0)
	}
	for i := range s.bits {
		s.bits[i] = v
	}
	s.allCommands, s.future = allow, allow
	s.firstArgs = nil
}

// countCategory counts the commands of cat the selector allows and denies.
func (s *aclSelector) countCategory(t *aclTable, cat aclCat) (on, off int) {
	for id, cats := range t.cats {
		if cats&cat == 0 {
			continue
		}
		if s.bit(id) {
			on++
		} else {
			off++
		}
	}
	return on, off
}

// aclError is why a rule was refused; its text is Redis's.
type aclError int

const (
	aclErrSyntax aclError = iota + 1
	aclErrUnknown
	aclErrKeyAfterAll
	aclErrChannelAfterAll
	aclErrNoSuchPass
	aclErrBadHash
	aclErrFirstArgSub
)

func (e aclError) Error() string {
	switch e {
	case aclErrUnknown:
		return "Unknown command or category name in ACL"
	case aclErrSyntax:
		return "Syntax error"
	case aclErrKeyAfterAll:
		return "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	case aclErrChannelAfterAll:
		return "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	case aclErrNoSuchPass:
		return "The password you are trying to remove from the user does not exist"
	case aclErrBadHash:
		return "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	case aclErrFirstArgSub:
		return "Allowing first-arg of a subcommand is not supported"
	}
	return "Wrong format"
}

// hasSpace reports whether s holds a blank or NUL, which names and
// patterns may not.
func hasSpace(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
}

// apply applies one selector rule (ACLSetSelector).
func (s *aclSelector) apply(t *aclTable, op string) error {
	switch {
	case op == "": // only inside "( … )": an empty quoted argument
		return aclErrSyntax
	case strings.EqualFold(op, "allkeys") || op == "~*":
		s.allKeys, s.keys = true, nil
	case strings.EqualFold(op, "resetkeys"):
		s.allKeys, s.keys = false, nil
	case strings.EqualFold(op, "allchannels") || op == "&*":
		s.allChannels, s.channels = true, nil
	case strings.EqualFold(op, "resetchannels"):
		s.allChannels, s.channels = false, nil
	case strings.EqualFold(op, "allcommands") || strings.EqualFold(op, "+@all"):
		s.setAll(true)
	case strings.EqualFold(op, "nocommands") || strings.EqualFold(op, "-@all"):
		s.setAll(false)
	case op[0] == '~' || op[0] == '%':
		if s.allKeys {
			return aclErrKeyAfterAll
		}
		perm, pat := permRead|permWrite, op[1:]
		if op[0] == '%' {
			// %R~pattern, %W~pattern, %RW~pattern.
			perm = 0
			i := 1
			for ; i < len(op) && op[i] != '~'; i++ {
				switch op[i] | 0x20 {
				case 'r':
					if perm&permRead != 0 {
						return aclErrSyntax
					}
					perm |= permRead
				case 'w':
					if perm&permWrite != 0 {
						return aclErrSyntax
					}
					perm |= permWrite
				default:
					return aclErrSyntax
				}
			}
			if perm == 0 {
				return aclErrSyntax
			}
			pat = op[min(i+1, len(op)):]
		}
		if hasSpace(pat) {
			return aclErrSyntax
		}
		for i := range s.keys {
			if s.keys[i].pattern == pat {
				s.keys[i].perm |= perm
				return nil
			}
		}
		s.keys = append(s.keys, keyPattern{pat, perm})
	case op[0] == '&':
		if s.allChannels {
			return aclErrChannelAfterAll
		}
		if hasSpace(op[1:]) {
			return aclErrSyntax
		}
		if !slices.Contains(s.channels, op[1:]) {
			s.channels = append(s.channels, op[1:])
		}
	case op[0] == '+' && (len(op) < 2 || op[1] != '@'):
		name := op[1:]
		bar := strings.LastIndexByte(name, '|')
		if bar < 0 {
			cmd := t.lookup(name)
			if cmd == nil {
				return aclErrUnknown
			}
			s.changePerm(cmd, true)
			return nil
		}
		cmd, sub := t.lookup(name[:bar]), name[bar+1:]
		switch {
		case cmd == nil:
			return aclErrUnknown
		case cmd.parent != nil:
			return aclErrFirstArgSub
		case sub == "":
			return aclErrSyntax
		case cmd.subs != nil:
			if cmd = t.lookup(name); cmd == nil {
				return aclErrUnknown
			}
			s.changePerm(cmd, true)
		default:
			// "+select|0": this first argument only (Redis deprecates it).
			if s.firstArgs == nil {
				s.firstArgs = make(map[int][]string)
			}
			if !slices.ContainsFunc(s.firstArgs[cmd.id], func(a string) bool { return strings.EqualFold(a, sub) }) {
				s.firstArgs[cmd.id] = append(s.firstArgs[cmd.id], sub)
			}
		}
	case op[0] == '-' && (len(op) < 2 || op[1] != '@'):
		cmd := t.lookup(op[1:])
		if cmd == nil {
			return aclErrUnknown
		}
		s.changePerm(cmd, false)
	case op[0] == '+' || op[0] == '-':
		cat, ok := aclCategoryByName(op[2:])
		if !ok {
			return aclErrUnknown
		}
		s.setCategory(t, cat, op[0] == '+')
	default:
		return aclErrSyntax
	}
	return nil
}

// describeCommands describes the selector's command rules as ACL SETUSER
// would take them back, the way Redis 7.0 does
// (ACLDescribeSelectorCommandRules): "+@all" or "-@all", then the
// categories that best fit the allowed set, then single commands.
func (s *aclSelector) describeCommands(t *aclTable) string {
	var b strings.Builder
	fake := newSelector(t, false)
	additive := !s.future
	if additive {
		b.WriteString("-@all ")
	} else {
		b.WriteString("+@all ")
		fake.setAll(true)
	}
	temp := newSelector(t, false)
	copy(temp.bits, s.bits)
	names := aclCategoryNames()
	var applied [aclCatCount]bool
	for {
		best, mindiff, maxsame := -1, int(^uint(0)>>1), 0
		for j := range aclCatCount {
			if applied[j] {
				continue
			}
			on, off := temp.countCategory(t, aclCat(1)<<j)
			diff, same := on, off
			if additive {
				diff, same = off, on
			}
			if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
				best, mindiff, maxsame = j, diff, same
			}
		}
		if best < 0 {
			break
		}
		cat := aclCat(1) << best
		fake.setCategory(t, cat, additive)
		temp.setCategory(t, cat, !additive)
		if additive {
			b.WriteString("+@")
		} else {
			b.WriteString("-@")
		}
		b.WriteString(names[best])
		b.WriteByte(' ')
		applied[best] = true
	}
	for _, cmd := range t.cmds {
		user := s.bit(cmd.id)
		if user != fake.bit(cmd.id) {
			if user {
				b.WriteByte('+')
			} else {
				b.WriteByte('-')
			}
			b.WriteString(cmd.name)
			b.WriteByte(' ')
			fake.changePerm(cmd, user)
		}
		if !user {
			for _, a := range s.firstArgs[cmd.id] {
				b.WriteString("+" + cmd.name + "|" + a + " ")
			}
		}
	}
	return strings.TrimSuffix(b.String(), " ")
}

// describeKeys is the key patterns as GETUSER shows them.
func (s *aclSelector) describeKeys() string {
	if s.allKeys {
		return "~*"
	}
	parts := make([]string, len(s.keys))
	for i, k := range s.keys {
		parts[i] = k.String()
	}
	return strings.Join(parts, " ")
}

func (k keyPattern) String() string {
	switch k.perm {
	case permRead:
		return "%R~" + k.pattern
	case permWrite:
		return "%W~" + k.pattern
	}
	return "~" + k.pattern
}

// describeChannels is the channel patterns as GETUSER shows them.
func (s *aclSelector) describeChannels() string {
	if s.allChannels {
		return "&*"
	}
	parts := make([]string, len(s.channels))
	for i, c := range s.channels {
		parts[i] = "&" + c
	}
	return strings.Join(parts, " ")
}

// describe is the selector as ACL LIST shows it.
func (s *aclSelector) describe(t *aclTable) string {
	var b strings.Builder
	if s.allKeys {
		b.WriteString("~* ")
	} else {
		for _, k := range s.keys {
			b.WriteString(k.String() + " ")
		}
	}
	if s.allChannels {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, c := range s.channels {
			b.WriteString("&" + c + " ")
		}
	}
	b.WriteString(s.describeCommands(t))
	return b.String()
}

// ---- users ----

// userFlags are a user's flags, in the order ACL LIST shows them.
type userFlags uint8

const (
	userOn userFlags = 1 << iota
	userOff
	userNoPass
	userSkipSanitize
	userSanitize
)

func (f userFlags) names() []string {
	var out []string
	for i, n := range []string{"on", "off", "nopass", "skip-sanitize-payload", "sanitize-payload"} {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// aclRules are a user's flags, passwords and selectors. A published value
// is never modified: changes make a copy.
type aclRules struct {
	flags     userFlags
	passwords [][sha256.Size]byte // in the order they were added
	selectors []*aclSelector      // [0] is the root selector
	// deleted marks the rules of a user that DELUSER or LOAD removed:
	// its connections are being closed and may run nothing more.
	deleted bool
}

func newRules(t *aclTable) *aclRules {
	return &aclRules{flags: userOff, selectors: []*aclSelector{newSelector(t, true)}}
}

func (r *aclRules) clone() *aclRules {
	c := &aclRules{flags: r.flags, passwords: slices.Clone(r.passwords), deleted: r.deleted}
	c.selectors = make([]*aclSelector, len(r.selectors))
	for i, s := range r.selectors {
		c.selectors[i] = s.clone()
	}
	return c
}

func (r *aclRules) root() *aclSelector { return r.selectors[0] }

// open reports whether the rules allow every command on every key and
// channel, so that dispatch may skip the check.
func (r *aclRules) open() bool {
	if r.deleted {
		return false
	}
	for _, s := range r.selectors {
		if s.allCommands && s.allKeys && s.allChannels {
			return true
		}
	}
	return false
}

// canLogin reports whether the user needs no password: on and nopass.
func (r *aclRules) canLogin() bool { return r.flags&userOn != 0 && r.flags&userNoPass != 0 }

// parseHash reads a "#" or "!" password hash: 64 lowercase hex digits.
func parseHash(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if len(h) != 2*sha256.Size || strings.ContainsFunc(h, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'a' || r > 'f')
	}) {
		return sum, aclErrBadHash
	}
	_, _ = hex.Decode(sum[:], []byte(h))
	return sum, nil
}

// passwordHash is the hash a password rule names: of the clear text after
// '>' or '<', or the "#" or "!" hash as given.
func passwordHash(op string) ([sha256.Size]byte, error) {
	if op[0] == '>' || op[0] == '<' {
		return sha256.Sum256([]byte(op[1:])), nil
	}
	return parseHash(op[1:])
}

// apply applies one user rule (ACLSetUser).
func (r *aclRules) apply(t *aclTable, op string) error {
	if op == "" {
		return nil
	}
	switch {
	case strings.EqualFold(op, "on"):
		r.flags = r.flags&^userOff | userOn
	case strings.EqualFold(op, "off"):
		r.flags = r.flags&^userOn | userOff
	case strings.EqualFold(op, "skip-sanitize-payload"):
		r.flags = r.flags&^userSanitize | userSkipSanitize
	case strings.EqualFold(op, "sanitize-payload"):
		r.flags = r.flags&^userSkipSanitize | userSanitize
	case strings.EqualFold(op, "nopass"):
		r.flags |= userNoPass
		r.passwords = nil
	case strings.EqualFold(op, "resetpass"):
		r.flags &^= userNoPass
		r.passwords = nil
	case op[0] == '>' || op[0] == '#':
		sum, err := passwordHash(op)
		if err != nil {
			return err
		}
		if !slices.Contains(r.passwords, sum) {
			r.passwords = append(r.passwords, sum)
		}
		r.flags &^= userNoPass
	case op[0] == '<' || op[0] == '!':
		sum, err := passwordHash(op)
		if err != nil {
			return err
		}
		i := slices.Index(r.passwords, sum)
		if i < 0 {
			return aclErrNoSuchPass
		}
		r.passwords = slices.Delete(r.passwords, i, i+1)
	case op[0] == '(' && op[len(op)-1] == ')':
		// Unbalanced quotes make an empty selector, as Redis's
		// sdssplitargs failing does.
		args, _ := resp.SplitArgs([]byte(op[1 : len(op)-1]))
		s := newSelector(t, false)
		for _, a := range args {
			if err := s.apply(t, string(a)); err != nil {
				return err
			}
		}
		r.selectors = append(r.selectors, s)
	case strings.EqualFold(op, "clearselectors"):
		r.selectors = r.selectors[:1]
	case strings.EqualFold(op, "reset"):
		r.flags = userOff | userSanitize
		r.passwords = nil
		root := newSelector(t, true)
		r.selectors = []*aclSelector{root}
	default:
		return r.root().apply(t, op)
	}
	return nil
}

// describe is the user as ACL LIST shows it, after "user <name> ".
func (r *aclRules) describe(t *aclTable) string {
	var b strings.Builder
	for _, f := range r.flags.names() {
		b.WriteString(f + " ")
	}
	for _, p := range r.passwords {
		b.WriteString("#" + hex.EncodeToString(p[:]) + " ")
	}
	for i, s := range r.selectors {
		if i == 0 {
			b.WriteString(s.describe(t))
		} else {
			b.WriteString(" (" + s.describe(t) + ")")
		}
	}
	return b.String()
}

// mergeSelectorArgs joins a selector written over several arguments
// ("(~x" "+get)") into one, as Redis does; bad is the index of an opening
// argument left unclosed, or -1.
func mergeSelectorArgs(ops []string) (merged []string, bad int) {
	open := -1
	var cur string
	for i, op := range ops {
		if open < 0 && op != "" && op[0] == '(' && op[len(op)-1] != ')' {
			open, cur = i, op
			continue
		}
		if open >= 0 {
			cur += " " + op
			if op != "" && op[len(op)-1] == ')' {
				merged = append(merged, cur)
				open = -1
			}
			continue
		}
		merged = append(merged, op)
	}
	if open >= 0 {
		return nil, open
	}
	return merged, -1
}

// aclUser is a user. Its identity lasts as long as the user exists:
// connections point to it, and SETUSER changes its rules in place.
type aclUser struct {
	name  string
	open  atomic.Bool // rules.Load().open(), for dispatch's fast path
	rules atomic.Pointer[aclRules]
}

func (u *aclUser) publish(r *aclRules) {
	u.rules.Store(r)
	u.open.Store(r.open())
}

// ---- permission checks ----

// aclDenial is why a command was refused, ordered as Redis's ACL_DENIED_*
// values (a later one is the more relevant when selectors disagree).
type aclDenial int

const (
	aclOK aclDenial = iota
	aclDeniedCmd
	aclDeniedKey
	aclDeniedAuth
	aclDeniedChannel
)

// checkKey checks one key against the selector's patterns.
func (s *aclSelector) checkKey(key []byte, perm keyPerm) bool {
	if s.allKeys {
		return true
	}
	for _, p := range s.keys {
		if p.perm&perm == perm && globMatch([]byte(p.pattern), key, false) {
			return true
		}
	}
	return false
}

// checkChannel checks a channel (or, literal, a pattern subscription)
// against the patterns.
func checkChannel(patterns []string, ch []byte, literal bool) bool {
	for _, p := range patterns {
		if literal && p == string(ch) || !literal && globMatch([]byte(p), ch, false) {
			return true
		}
	}
	return false
}

// exemptFromACL reports whether cmd runs whatever the rules say: the
// commands that need no authentication (AUTH, HELLO, QUIT, RESET), as in
// Redis; sessiond's SHUTDOWN, which answers NOAUTH itself, is not one.
func exemptFromACL(cmd *command) bool {
	return cmd.flags&flagNoAuth != 0 && cmd.flags&flagAdmin == 0
}

// check checks a command against one selector. keys are the command's
// key arguments, found by the first selector that needs them (done).
func (s *aclSelector) check(t *aclTable, cmd *command, args [][]byte, keys []keyRef, done bool) (aclDenial, int, []keyRef, bool) {
	if !s.allCommands && !exemptFromACL(cmd) && !s.bit(cmd.id) {
		allowed := s.firstArgs[cmd.id]
		idx := 1
		if cmd.parent != nil {
			idx = 2
		}
		if len(args) <= idx || !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, string(args[idx])) }) {
			return aclDeniedCmd, 0, keys, done
		}
	}
	if !s.allKeys && len(t.specs[cmd.id]) > 0 {
		if !done {
			keys, done = t.commandKeys(keys[:0], cmd, args), true
		}
		for _, k := range keys {
			if !s.checkKey(args[k.pos], k.perm) {
				return aclDeniedKey, k.pos, keys, done
			}
		}
	}
	if which, literal := hasChannels(cmd); which != 0 && !s.allChannels {
		last := len(args) - 1
		if which > 0 {
			last = min(which, last)
		}
		for i := 1; i <= last; i++ {
			if !checkChannel(s.channels, args[i], literal) {
				return aclDeniedChannel, i, keys, done
			}
		}
	}
	return aclOK, 0, keys, done
}

// check checks a command (args in full, name first) against the rules. On
// a denial it returns the reason and, for a key or channel, its index in
// args, chosen as Redis does when selectors disagree.
func (r *aclRules) check(t *aclTable, cmd *command, args [][]byte) (aclDenial, int) {
	if r.deleted {
		return aclDeniedCmd, 0
	}
	var buf [8]keyRef
	keys, done := buf[:0], false
	relevant, lastIdx := aclDeniedCmd, 0
	for _, s := range r.selectors {
		var d aclDenial
		var idx int
		d, idx, keys, done = s.check(t, cmd, args, keys, done)
		if d == aclOK {
			return aclOK, 0
		}
		if d > relevant || d == relevant && idx > lastIdx {
			relevant, lastIdx = d, idx
		}
	}
	return relevant, lastIdx
}

// channelsAllowed reports whether the rules still allow a subscription
// (pattern: a PSUBSCRIBE pattern, matched literally).
func (r *aclRules) channelsAllowed(ch []byte, pattern bool) bool {
	for _, s := range r.selectors {
		if s.allChannels || checkChannel(s.channels, ch, pattern) {
			return true
		}
	}
	return false
}

// ---- the registry ----

// aclRegistry holds the users, the ACL log and the ACL file's name.
type aclRegistry struct {
	table *aclTable
	def   *aclUser // the default user; never replaced
	file  string   // --aclfile; "" when there is none

	mu    sync.RWMutex        // guards users and serialises changes
	users map[string]*aclUser // by name, default included

	log aclLog

	// compare compares password hashes: subtle.ConstantTimeCompare (a
	// field so that tests can watch how passwords are compared).
	compare func(x, y []byte) int
}

func newACLRegistry(t *aclTable, file string) *aclRegistry {
	a := &aclRegistry{table: t, file: file, users: make(map[string]*aclUser),
		compare: subtle.ConstantTimeCompare}
	a.def = &aclUser{name: "default"}
	a.def.publish(a.defaultRules(""))
	a.users["default"] = a.def
	a.log.maxLen.Store(128)
	return a
}

// defaultRules are the default user's rules at start: on, all permissions,
// and nopass, or the requirepass password.
func (a *aclRegistry) defaultRules(pass string) *aclRules {
	r := newRules(a.table)
	for _, op := range []string{"+@all", "~*", "&*", "on", "nopass"} {
		_ = r.apply(a.table, op)
	}
	if pass != "" {
		_ = r.apply(a.table, ">"+pass)
	}
	return r
}

// setDefaultPassword is requirepass: the default user's passwords become
// pass alone, or nopass when pass is empty (ACLUpdateDefaultUserPassword).
func (a *aclRegistry) setDefaultPassword(pass string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.def.rules.Load().clone()
	_ = r.apply(a.table, "resetpass")
	if pass != "" {
		_ = r.apply(a.table, ">"+pass)
	} else {
		_ = r.apply(a.table, "nopass")
	}
	a.def.publish(r)
}

// defaultOpen reports whether a new connection is authenticated at once:
// the default user is on and nopass.
func (a *aclRegistry) defaultOpen() bool { return a.def.rules.Load().canLogin() }

// defaultNoPass reports whether the default user needs no password (for
// protected mode, as Redis tests it).
func (a *aclRegistry) defaultNoPass() bool { return a.def.rules.Load().flags&userNoPass != 0 }

// user finds a user by name.
func (a *aclRegistry) user(name string) *aclUser {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.users[name]
}

// sortedUsers returns the users by name, as ACL LIST and SAVE order them.
func (a *aclRegistry) sortedUsers() []*aclUser {
	a.mu.RLock()
	out := make([]*aclUser, 0, len(a.users))
	for _, u := range a.users {
		out = append(out, u)
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y *aclUser) int { return strings.Compare(x.name, y.name) })
	return out
}

// authenticate checks a user name and password (ACLCheckUserCredentials).
// Every stored hash is compared, in constant time, whichever matches, and
// a missing user costs the same hashing as a present one.
func (a *aclRegistry) authenticate(name, pass []byte) *aclUser {
	sum := sha256.Sum256(pass)
	u := a.user(string(name))
	if u == nil {
		return nil
	}
	r := u.rules.Load()
	if r.deleted || r.flags&userOff != 0 || r.flags&userOn == 0 {
		return nil
	}
	if r.flags&userNoPass != 0 {
		return u
	}
	match := 0
	for i := range r.passwords {
		match |= a.compare(sum[:], r.passwords[i][:])
	}
	if match == 1 {
		return u
	}
	return nil
}

// errSetUser is a SETUSER failure: the rule refused and why.
type errSetUser struct {
	op  string
	err error
}

func (e *errSetUser) Error() string {
	return "Error in ACL SETUSER modifier '" + cstr(e.op) + "': " + e.err.Error()
}

// setUser applies ops to the user name, creating it, all or nothing
// (ACL SETUSER). It returns the user, its rules before (nil for a new
// user) and after.
func (a *aclRegistry) setUser(name string, ops []string) (u *aclUser, before, after *aclRules, err error) {
	merged, bad := mergeSelectorArgs(ops)
	if bad >= 0 {
		return nil, nil, nil, errors.New("Unmatched parenthesis in acl selector starting at '" + cstr(ops[bad]) + "'.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u = a.users[name]
	var r *aclRules
	if u != nil {
		before = u.rules.Load()
		r = before.clone()
	} else {
		r = newRules(a.table)
	}
	for _, op := range merged {
		if err := r.apply(a.table, op); err != nil {
			return nil, nil, nil, &errSetUser{op, err}
		}
	}
	if u == nil {
		u = &aclUser{name: name}
		a.users[name] = u
	}
	u.publish(r)
	return u, before, r, nil
}

// deleteUsers removes users by name (not default) and returns those that
// existed; their rules are marked deleted.
func (a *aclRegistry) deleteUsers(names []string) []*aclUser {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []*aclUser
	for _, n := range names {
		u := a.users[n]
		if u == nil || u == a.def {
			continue
		}
		delete(a.users, n)
		r := u.rules.Load().clone()
		r.deleted = true
		u.publish(r)
		gone = append(gone, u)
	}
	return gone
}

// loadFile reads the ACL file and, when every line is valid, replaces all
// users with its users (ACL LOAD, and at start). The default user keeps
// its identity; its rules become the file's, or Redis's defaults with the
// requirepass password pass. It returns the users that were replaced, or
// an error naming every bad line, as Redis words it.
func (a *aclRegistry) loadFile(pass string) ([]*aclUser, error) {
	data, err := os.ReadFile(a.file)
	if err != nil {
		msg := err.Error()
		var pe *os.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return nil, fmt.Errorf("Error loading ACLs, opening file '%s': %s", a.file, msg)
	}
	var errs strings.Builder
	users := make(map[string]*aclRules)
	for i, line := range strings.Split(string(data), "\n") {
		ln := i + 1
		line = strings.Trim(line, " \t\r\n")
		if line == "" {
			continue
		}
		argv := strings.Split(line, " ")
		if argv[0] != "user" || len(argv) < 2 {
			fmt.Fprintf(&errs, "%s:%d should start with user keyword followed by the username. ", a.file, ln)
			continue
		}
		name := argv[1]
		if hasSpace(name) {
			fmt.Fprintf(&errs, "'%s:%d: username '%s' contains invalid characters. ", a.file, ln, name)
			continue
		}
		if _, dup := users[name]; dup {
			fmt.Fprintf(&errs, "WARNING: Duplicate user '%s' found on line %d. ", name, ln)
			continue
		}
		r := newRules(a.table)
		users[name] = r
		ops, bad := mergeSelectorArgs(argv[2:])
		if bad >= 0 {
			fmt.Fprintf(&errs, "%s:%d: Unmatched parenthesis in selector definition.", a.file, ln)
			continue
		}
		reported := false
		for _, op := range ops {
			op = strings.Trim(op, "\t\r\n")
			if err := r.apply(a.table, op); err != nil {
				if errors.Is(err, aclErrUnknown) {
					fmt.Fprintf(&errs, "%s:%d: Error in applying operation '%s': %s. ", a.file, ln, op, err)
				} else if !reported {
					// Only the first other error of a line, which could
					// otherwise quote a password.
					fmt.Fprintf(&errs, "%s:%d: %s. ", a.file, ln, err)
					reported = true
				}
			}
		}
	}
	if errs.Len() > 0 {
		errs.WriteString("WARNING: ACL errors detected, no change to the previously active ACL rules was performed")
		return nil, errors.New(errs.String())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var replaced []*aclUser
	for n, u := range a.users {
		if u == a.def {
			continue
		}
		r := u.rules.Load().clone()
		r.deleted = true
		u.publish(r)
		replaced = append(replaced, u)
		delete(a.users, n)
	}
	for n, r := range users {
		if n == "default" {
			continue
		}
		u := &aclUser{name: n}
		u.publish(r)
		a.users[n] = u
	}
	def := users["default"]
	if def == nil {
		def = a.defaultRules(pass)
	}
	a.def.publish(def)
	return replaced, nil
}

// saveFile writes every user to the ACL file in its syntax, through a
// temporary file renamed over it.
func (a *aclRegistry) saveFile() error {
	var b strings.Builder
	for _, u := range a.sortedUsers() {
		b.WriteString("user " + u.name + " " + u.rules.Load().describe(a.table) + "\n")
	}
	dir := filepath.Dir(a.file)
	f, err := os.CreateTemp(dir, filepath.Base(a.file)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, a.file); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// genPass returns chars random hex digits (ACL GENPASS).
func genPass(chars int) string {
	b := make([]byte, (chars+1)/2)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)[:chars]
}

// ---- the log ----

// aclLogObjectMax bounds the key, channel or user name an entry keeps.
const aclLogObjectMax = 4096

// aclLogGroupWindow is how close in time a denial must be to an entry for
// it to be counted there rather than logged anew, as in Redis.
const aclLogGroupWindow = 60 * time.Second

// aclLogEntry is one ACL LOG entry.
type aclLogEntry struct {
	count    int64
	reason   aclDenial
	context  string // toplevel, multi, lua
	object   string
	username string
	ctime    time.Time
	cinfo    string
}

// aclLog is the security log: newest first, at most maxLen entries.
type aclLog struct {
	mu      sync.Mutex
	entries []*aclLogEntry // guarded by mu
	maxLen  atomic.Int64   // acllog-max-len
}

// add records an entry, or counts it in a similar recent one among the
// ten newest (ACLLogMatchEntry).
func (l *aclLog) add(e *aclLogEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range l.entries[:min(10, len(l.entries))] {
		d := e.ctime.Sub(o.ctime)
		if o.reason == e.reason && o.context == e.context && o.object == e.object &&
			o.username == e.username && d <= aclLogGroupWindow && d >= -aclLogGroupWindow {
			o.count++
			o.ctime, o.cinfo = e.ctime, e.cinfo
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = o
			return
		}
	}
	l.entries = slices.Insert(l.entries, 0, e)
	if n := int(l.maxLen.Load()); len(l.entries) > n {
		clear(l.entries[n:])
		l.entries = l.entries[:n]
	}
}

func (l *aclLog) reset() {
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
}

// newest returns copies of up to n newest entries.
func (l *aclLog) newest(n int) []aclLogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.entries))
	out := make([]aclLogEntry, n)
	for i := range n {
		out[i] = *l.entries[i]
	}
	return out
}

func (d aclDenial) String() string {
	switch d {
	case aclDeniedCmd:
		return "command"
	case aclDeniedKey:
		return "key"
	case aclDeniedChannel:
		return "channel"
	case aclDeniedAuth:
		return "auth"
	}
	return "unknown"
}

// ---- the server's side ----

// aclContext is where a denial happened, for ACL LOG.
func (c *client) aclContext() string {
	if c.multi != nil || c.inExec {
		return "multi"
	}
	return "toplevel"
}

// logDenial adds an ACL LOG entry for c. object is the denied command's
// name, key, channel or, for auth, the command as typed; username is the
// user c acts as, or for auth the one it tried.
func (s *Server) logDenial(c *client, reason aclDenial, context, object, username string) {
	s.acl.log.add(&aclLogEntry{
		count:    1,
		reason:   reason,
		context:  context,
		object:   truncate(object, aclLogObjectMax),
		username: truncate(username, aclLogObjectMax),
		ctime:    time.Now(),
		cinfo:    s.clientLine(c, time.Now()),
	})
}

// denialObject is what ACL LOG names for a denial.
func denialObject(d aclDenial, cmd *command, args [][]byte, pos int) string {
	if d == aclDeniedCmd {
		return cmd.name
	}
	return string(args[pos])
}

// aclPermit checks a command c is about to run or queue against its
// user's rules (dispatch calls it only when the user is not open). On a
// denial it logs it, answers Redis's NOPERM error and returns false.
func (s *Server) aclPermit(c *client, cmd *command, args [][]byte) bool {
	r := c.user.rules.Load()
	if r.deleted {
		// The user is gone and this connection is being closed (DELUSER,
		// ACL LOAD): commands it had already sent run no more.
		c.quitting = true
		return false
	}
	d, pos := r.check(s.acl.table, cmd, args)
	if d == aclOK {
		return true
	}
	c.setLastCmd(cmd)
	s.logDenial(c, d, c.aclContext(), denialObject(d, cmd, args, pos), c.user.name)
	switch d {
	case aclDeniedKey:
		c.rejectCmd(cmd, "NOPERM this user has no permissions to access one of the keys used as arguments")
	case aclDeniedChannel:
		c.rejectCmd(cmd, "NOPERM this user has no permissions to access one of the channels used as arguments")
	default:
		c.rejectCmd(cmd, "NOPERM this user has no permissions to run the '"+cmd.name+"' command")
	}
	return false
}

// permitted checks a command c runs on its user's behalf without going
// through dispatch (EXEC's queued commands; a script's redis.call, with
// context "lua") and logs a denial in ACL LOG under context. It returns
// aclOK or why the command is denied; the caller words the error.
func (s *Server) permitted(c *client, cmd *command, args [][]byte, context string) aclDenial {
	if c.user.open.Load() {
		return aclOK
	}
	d, pos := c.user.rules.Load().check(s.acl.table, cmd, args)
	if d != aclOK {
		s.logDenial(c, d, context, denialObject(d, cmd, args, pos), c.user.name)
	}
	return d
}

// aclExecPermit checks a queued command again when EXEC runs it, since
// the rules may have changed since it was queued; on a denial it answers
// Redis's error for that command and returns false.
func (s *Server) aclExecPermit(c *client, cmd *command, args [][]byte) bool {
	d := s.permitted(c, cmd, args, "multi")
	if d == aclOK {
		return true
	}
	reason := "no permission to execute the command or subcommand"
	switch d {
	case aclDeniedKey:
		reason = "no permission to touch the specified keys"
	case aclDeniedChannel:
		reason = "no permission to access one of the channels used as arguments"
	}
	c.w.Error("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: " + reason)
	return false
}

// setUser makes u the user c acts as (AUTH, HELLO, RESET).
func (c *client) setUser(u *aclUser) {
	c.metaMu.Lock()
	c.user = u
	c.metaMu.Unlock()
}

// defaultAuth makes c act as the default user, authenticated when that
// user needs no password (new connections, RESET).
func (s *Server) defaultAuth(c *client) {
	c.setUser(s.acl.def)
	c.authed = s.acl.defaultOpen()
	if c.rd != nil {
		c.rd.SetAuthRequired(!c.authed)
	}
}

// authRequired reports whether c, not authenticated, still needs to be:
// it no longer does once the default user is on and nopass (Redis decides
// this per command, so that CONFIG SET requirepass "" frees waiting
// connections).
func (s *Server) authRequired(c *client) bool {
	if s.acl.defaultOpen() {
		c.setAuthed(true)
		return false
	}
	return true
}

// login authenticates c as user with pass (AUTH, HELLO … AUTH): on
// success c acts as that user; on failure the attempt is logged (object:
// the command name as typed) and c keeps its user.
func (s *Server) login(c *client, cmdName, user, pass []byte) bool {
	u := s.acl.authenticate(user, pass)
	if u == nil {
		s.logDenial(c, aclDeniedAuth, c.aclContext(), string(cmdName), string(user))
		return false
	}
	c.setUser(u)
	c.setAuthed(true)
	return true
}

// disconnectUsers closes every connection acting as one of users; c, if
// among them, is closed after its reply (ACLFreeUserAndKillClients).
func (s *Server) disconnectUsers(c *client, users []*aclUser) {
	if len(users) == 0 {
		return
	}
	s.mu.Lock()
	var victims []*client
	for _, o := range s.clients {
		o.metaMu.Lock()
		hit := slices.Contains(users, o.user)
		o.metaMu.Unlock()
		if hit {
			victims = append(victims, o)
		}
	}
	s.mu.Unlock()
	for _, o := range victims {
		s.kill(c, o)
	}
}

// disconnectRevokedSubscribers closes the connections of u subscribed to
// a channel or pattern that its new rules no longer allow, as Redis does
// when SETUSER takes channel permissions away
// (ACLKillPubsubClientsIfNeeded).
func (s *Server) disconnectRevokedSubscribers(c *client, u *aclUser, after *aclRules) {
	for _, sel := range after.selectors {
		if sel.allChannels {
			return
		}
	}
	victims := map[*client]bool{}
	ps := &s.ps
	ps.mu.RLock()
	for _, reg := range []struct {
		m       map[string]map[*client]struct{}
		literal bool
	}{{ps.channels, false}, {ps.patterns, true}} {
		for name, subs := range reg.m {
			for o := range subs {
				if o.actsAs(u) && !after.channelsAllowed([]byte(name), reg.literal) {
					victims[o] = true
				}
			}
		}
	}
	ps.mu.RUnlock()
	for o := range victims {
		s.kill(c, o)
	}
}

// setupACL creates the users (New calls it once the command table is
// built): the default user with requirepass's password, then the ACL
// file's users, if there is one.
func (s *Server) setupACL(cfg Config) error {
	s.acl = newACLRegistry(newACLTable(s.cmds, s.findCommand), cfg.ACLFile)
	if cfg.RequirePass != "" {
		s.acl.setDefaultPassword(cfg.RequirePass)
	}
	s.conf.onRequirePass = s.acl.setDefaultPassword
	s.aclSettings()
	if cfg.ACLFile != "" {
		if _, err := s.acl.loadFile(cfg.RequirePass); err != nil {
			return fmt.Errorf("aclfile: %w", err)
		}
	}
	return nil
}

// actsAs reports whether c acts as u (for other clients' goroutines).
func (c *client) actsAs(u *aclUser) bool {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	return c.user == u
}

// cstr is s as Redis's "%s" formats it: up to its first NUL byte.
func cstr(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
