package server

import (
	"math"
	"strconv"
	"strings"

	"github.com/sessiond/sessiond/ttl"
)

// cloner is implemented by object kinds that COPY can duplicate.
type cloner interface {
	Clone() ttl.Object
}

func (s *Server) keyCommands() []*command {
	gen := func(name string, arity int, flags cmdFlags, first, last, step int, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, firstKey: first, lastKey: last, step: step,
			group: "generic", since: since, summary: summary, run: run}
	}
	const r, w, f = flagReadonly, flagWrite, flagFast
	return []*command{
		gen("del", -2, w, 1, -1, 1, "1.0.0", "Deletes one or more keys.", s.cmdDel),
		gen("unlink", -2, w|f, 1, -1, 1, "4.0.0", "Asynchronously deletes one or more keys.", s.cmdDel),
		gen("exists", -2, r|f, 1, -1, 1, "1.0.0", "Determines whether one or more keys exist.", s.cmdExists),
		gen("touch", -2, r|f, 1, -1, 1, "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", s.cmdTouch),
		gen("type", 2, r|f, 1, 1, 1, "1.0.0", "Determines the type of value stored at a key.", s.cmdType),
		gen("rename", 3, w, 1, 2, 1, "1.0.0", "Renames a key and overwrites the destination.", s.cmdRename),
		gen("renamenx", 3, w|f, 1, 2, 1, "1.0.0", "Renames a key only when the target key name doesn't exist.", s.cmdRenameNX),
		gen("copy", -3, w|flagDenyOOM, 1, 2, 1, "6.2.0", "Copies the value of a key to a new key.", s.cmdCopy),
		gen("keys", 2, r, 0, 0, 0, "1.0.0", "Returns all key names that match a pattern.", s.cmdKeys),
		gen("scan", -2, r, 0, 0, 0, "2.8.0", "Iterates over the key names in the database.", s.cmdScan),
		gen("randomkey", 1, r, 0, 0, 0, "1.0.0", "Returns a random key name from the database.", s.cmdRandomKey),
		gen("expire", -3, w|f, 1, 1, 1, "1.0.0", "Sets the expiration time of a key in seconds.", s.cmdExpire),
		gen("pexpire", -3, w|f, 1, 1, 1, "2.6.0", "Sets the expiration time of a key in milliseconds.", s.cmdPExpire),
		gen("expireat", -3, w|f, 1, 1, 1, "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", s.cmdExpireAt),
		gen("pexpireat", -3, w|f, 1, 1, 1, "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", s.cmdPExpireAt),
		gen("ttl", 2, r|f, 1, 1, 1, "1.0.0", "Returns the expiration time in seconds of a key.", s.cmdTTL),
		gen("pttl", 2, r|f, 1, 1, 1, "2.6.0", "Returns the expiration time in milliseconds of a key.", s.cmdPTTL),
		gen("expiretime", 2, r|f, 1, 1, 1, "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", s.cmdExpireTime),
		gen("pexpiretime", 2, r|f, 1, 1, 1, "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", s.cmdPExpireTime),
		gen("persist", 2, w|f, 1, 1, 1, "2.2.0", "Removes the expiration time of a key.", s.cmdPersist),
	}
}

func (s *Server) cmdDel(c *client, args [][]byte) {
	keys := args[1:]
	tx := s.store.LockKeys(keys...)
	defer tx.Unlock()
	var n int64
	for _, k := range keys {
		if tx.Delete(c.db, k) {
			c.changed(evGeneric, "del", c.db, k)
			n++
		}
	}
	c.w.Int(n)
}

func (s *Server) cmdExists(c *client, args [][]byte) {
	keys := args[1:]
	tx := s.store.LockKeys(keys...)
	defer tx.Unlock()
	var n int64
	for _, k := range keys {
		if _, found := tx.Get(c.db, k); found {
			c.hit()
			n++
		} else {
			c.miss()
		}
	}
	c.w.Int(n)
}

func (s *Server) cmdTouch(c *client, args [][]byte) {
	keys := args[1:]
	tx := s.store.LockKeys(keys...)
	defer tx.Unlock()
	var n int64
	for _, k := range keys {
		if _, found := tx.Get(c.db, k); found {
			n++
		}
	}
	c.w.Int(n)
}

func (s *Server) cmdType(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found := tx.Get(c.db, args[1])
	if !found {
		c.miss()
		c.w.Status("none")
		return
	}
	c.hit()
	c.w.Status(typeName(e.Kind))
}

// copyEntry stores e under key in db. It reports false when the object
// kind cannot be duplicated.
func copyEntry(tx *ttl.Txn, db int, key []byte, e ttl.Entry, deadline int64, clone bool) bool {
	if e.Obj == nil {
		tx.Set(db, key, e.Kind, e.Blob, deadline)
		return true
	}
	obj := e.Obj
	if clone {
		cl, ok := obj.(cloner)
		if !ok {
			return false
		}
		obj = cl.Clone()
	}
	tx.SetObject(db, key, e.Kind, obj, deadline)
	return true
}

func (s *Server) rename(c *client, args [][]byte, nx bool) {
	src, dst := args[1], args[2]
	tx := s.store.LockKeys(src, dst)
	defer tx.Unlock()
	e, found := tx.Get(c.db, src)
	if !found {
		c.w.Error(errNoSuchKey)
		return
	}
	if string(src) == string(dst) {
		if nx {
			c.w.Int(0)
		} else {
			c.w.Status("OK")
		}
		return
	}
	if nx {
		if _, exists := tx.Get(c.db, dst); exists {
			c.w.Int(0)
			return
		}
	}
	// Move the object as is; byte values are copied by Set before the
	// source is deleted.
	copyEntry(&tx, c.db, dst, e, e.Deadline, false)
	tx.Delete(c.db, src)
	c.changed(evGeneric, "rename_from", c.db, src)
	c.changed(evGeneric, "rename_to", c.db, dst)
	if nx {
		c.w.Int(1)
	} else {
		c.w.Status("OK")
	}
}

func (s *Server) cmdRename(c *client, args [][]byte)   { s.rename(c, args, false) }
func (s *Server) cmdRenameNX(c *client, args [][]byte) { s.rename(c, args, true) }

func (s *Server) cmdCopy(c *client, args [][]byte) {
	src, dst := args[1], args[2]
	db := c.db
	replace := false
	for j := 3; j < len(args); j++ {
		switch {
		case eqFold(args[j], "replace"):
			replace = true
		case eqFold(args[j], "db") && j+1 < len(args):
			n, ok := parseInt(args[j+1])
			if !ok || n < math.MinInt32 || n > math.MaxInt32 {
				c.w.Error(errNotInt)
				return
			}
			if n < 0 || n >= int64(s.conf.databases) {
				c.w.Error(errDBIndex)
				return
			}
			db = int(n)
			j++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if db == c.db && string(src) == string(dst) {
		c.w.Error("ERR source and destination objects are the same")
		return
	}
	tx := s.store.LockKeys(src, dst)
	defer tx.Unlock()
	e, found := tx.Get(c.db, src)
	if !found {
		c.w.Int(0)
		return
	}
	if _, exists := tx.Get(db, dst); exists && !replace {
		c.w.Int(0)
		return
	}
	if !copyEntry(&tx, db, dst, e, e.Deadline, true) {
		c.w.Error("ERR this value kind cannot be copied")
		return
	}
	c.changed(evGeneric, "copy_to", db, dst)
	c.w.Int(1)
}

func (s *Server) cmdKeys(c *client, args [][]byte) {
	pat := args[1]
	all := len(pat) == 1 && pat[0] == '*'
	var keys []string
	var cursor uint64
	for {
		cursor = s.store.Scan(c.db, cursor, 1024, func(key []byte, _ ttl.Entry) {
			if all || globMatch(pat, key, false) {
				keys = append(keys, string(key))
			}
		})
		if cursor == 0 {
			break
		}
	}
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.BulkString(k)
	}
}

func (s *Server) cmdScan(c *client, args [][]byte) {
	cursor, ok := parseScanCursor(args[1])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	opts, ok := parseScanOpts(c, args[2:], scanOptType)
	if !ok {
		return
	}
	var keys []string
	next := s.store.Scan(c.db, cursor, min(opts.count, 1<<20), func(key []byte, e ttl.Entry) {
		if opts.typed && e.Kind != opts.kind {
			return
		}
		if opts.matches(key) {
			keys = append(keys, string(key))
		}
	})
	c.writeScanReply(next, keys)
}

// scanOpts are the options of SCAN, HSCAN, SSCAN and ZSCAN.
type scanOpts struct {
	count    int      // at most 1<<30
	match    []byte   // nil: everything
	typed    bool     // SCAN's TYPE: only keys of kind
	kind     ttl.Kind // 0 for an unknown type name, which matches nothing
	noValues bool     // HSCAN's NOVALUES
}

// The options only some of the SCAN commands take.
const (
	scanOptType     = 1 << iota // SCAN's TYPE
	scanOptNoValues             // HSCAN's NOVALUES
)

// parseScanOpts parses the options after a SCAN command's cursor, COUNT,
// MATCH and those of extra (scanOpt flags), writing the error reply on
// failure.
func parseScanOpts(c *client, args [][]byte, extra int) (scanOpts, bool) {
	o := scanOpts{count: 10}
	for j := 0; j < len(args); j++ {
		more := len(args) - j - 1
		switch {
		case eqFold(args[j], "count") && more >= 1:
			n, ok := parseInt(args[j+1])
			if !ok {
				c.w.Error(errNotInt)
				return o, false
			}
			if n < 1 {
				c.w.Error(errSyntax)
				return o, false
			}
			o.count = int(min(n, 1<<30))
			j++
		case eqFold(args[j], "match") && more >= 1:
			o.match = args[j+1]
			if len(o.match) == 1 && o.match[0] == '*' {
				o.match = nil
			}
			j++
		case extra&scanOptType != 0 && eqFold(args[j], "type") && more >= 1:
			o.typed = true
			o.kind = kindByName(strings.ToLower(string(args[j+1])))
			j++
		case extra&scanOptNoValues != 0 && eqFold(args[j], "novalues"):
			o.noValues = true
		default:
			c.w.Error(errSyntax)
			return o, false
		}
	}
	return o, true
}

// matches reports whether name passes MATCH.
func (o *scanOpts) matches(name []byte) bool {
	return o.match == nil || globMatch(o.match, name, false)
}

// writeScanReply writes [cursor, items].
func (c *client) writeScanReply(cursor uint64, items []string) {
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(cursor, 10))
	c.w.Array(len(items))
	for _, it := range items {
		c.w.BulkString(it)
	}
}

// kindByName maps a TYPE name to its kind; unknown names match nothing.
func kindByName(name string) ttl.Kind {
	for k := kindString; k <= kindList; k++ {
		if typeName(k) == name {
			return k
		}
	}
	return 0
}

func (s *Server) cmdRandomKey(c *client, _ [][]byte) {
	key, ok := s.store.RandomKey(c.db, c.tmp[:0])
	if !ok {
		c.w.Null()
		return
	}
	c.w.Bulk(key)
	c.keepTmp(key)
}

// Flags of EXPIRE and friends.
const (
	expNX = 1 << iota
	expXX
	expGT
	expLT
)

func (s *Server) expire(c *client, args [][]byte, name string, seconds, relative bool) {
	flags := 0
	for _, a := range args[3:] {
		switch {
		case eqFold(a, "nx"):
			flags |= expNX
		case eqFold(a, "xx"):
			flags |= expXX
		case eqFold(a, "gt"):
			flags |= expGT
		case eqFold(a, "lt"):
			flags |= expLT
		default:
			c.w.Error("ERR Unsupported option " + sanitize(string(a)))
			return
		}
	}
	if flags&expNX != 0 && flags&(expXX|expGT|expLT) != 0 {
		c.w.Error("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expGT != 0 && flags&expLT != 0 {
		c.w.Error("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	badTime := "ERR invalid expire time in '" + name + "' command"
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			c.w.Error(badTime)
			return
		}
		when *= 1000
	}
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	if relative {
		now := tx.Now()
		if when > math.MaxInt64-now {
			c.w.Error(badTime)
			return
		}
		when += now
	}
	e, found := tx.Get(c.db, args[1])
	if !found {
		c.w.Int(0)
		return
	}
	cur := e.Deadline
	switch {
	case flags&expNX != 0 && cur != 0,
		flags&expXX != 0 && cur == 0,
		flags&expGT != 0 && (cur == 0 || when <= cur),
		flags&expLT != 0 && cur != 0 && when >= cur:
		c.w.Int(0)
		return
	}
	// SetDeadline would delete for a past deadline too, but a deadline of
	// exactly 0 (PEXPIREAT k 0) means "none" to the store.
	if when <= tx.Now() {
		tx.Delete(c.db, args[1])
		c.changed(evGeneric, "del", c.db, args[1])
	} else {
		tx.SetDeadline(c.db, args[1], when)
		c.deadlineChanged("expire", c.db, args[1])
	}
	c.w.Int(1)
}

func (s *Server) cmdExpire(c *client, args [][]byte)    { s.expire(c, args, "expire", true, true) }
func (s *Server) cmdPExpire(c *client, args [][]byte)   { s.expire(c, args, "pexpire", false, true) }
func (s *Server) cmdExpireAt(c *client, args [][]byte)  { s.expire(c, args, "expireat", true, false) }
func (s *Server) cmdPExpireAt(c *client, args [][]byte) { s.expire(c, args, "pexpireat", false, false) }

// ttlReply answers TTL, PTTL, EXPIRETIME and PEXPIRETIME.
func (s *Server) ttlReply(c *client, key []byte, ms, abs bool) {
	tx := s.store.Lock(key)
	defer tx.Unlock()
	e, found := tx.Get(c.db, key)
	if !found {
		c.miss()
		c.w.Int(-2)
		return
	}
	c.hit()
	if e.Deadline == 0 {
		c.w.Int(-1)
		return
	}
	v := e.Deadline
	if !abs {
		v = max(e.Deadline-tx.Now(), 0)
	}
	if !ms {
		// Unsigned, so deadlines near the int64 limit round like Redis's.
		v = int64((uint64(v) + 500) / 1000)
	}
	c.w.Int(v)
}

func (s *Server) cmdTTL(c *client, args [][]byte)         { s.ttlReply(c, args[1], false, false) }
func (s *Server) cmdPTTL(c *client, args [][]byte)        { s.ttlReply(c, args[1], true, false) }
func (s *Server) cmdExpireTime(c *client, args [][]byte)  { s.ttlReply(c, args[1], false, true) }
func (s *Server) cmdPExpireTime(c *client, args [][]byte) { s.ttlReply(c, args[1], true, true) }

func (s *Server) cmdPersist(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found := tx.Get(c.db, args[1])
	if !found || e.Deadline == 0 {
		c.w.Int(0)
		return
	}
	tx.SetDeadline(c.db, args[1], 0)
	c.deadlineChanged("persist", c.db, args[1])
	c.w.Int(1)
}

// parseScanCursor parses a SCAN cursor the way Redis does with strtoul: an
// optional sign (a negative value wraps around), "" means 0, no leading
// space, no trailing characters, no overflow.
func parseScanCursor(b []byte) (uint64, bool) {
	neg := false
	digits := b
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		neg = digits[0] == '-'
		digits = digits[1:]
		if len(digits) == 0 {
			return 0, false
		}
	}
	if len(b) == 0 {
		return 0, true
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}
