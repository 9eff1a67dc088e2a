package server

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/sessiond/sessiond/ttl"
)

func (s *Server) setCommands() []*command {
	set := func(name string, arity int, flags cmdFlags, first, last, step int, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, firstKey: first, lastKey: last, step: step,
			group: "set", since: since, summary: summary, run: run}
	}
	const r, w, f, oom = flagReadonly, flagWrite, flagFast, flagDenyOOM
	return []*command{
		set("sadd", -3, w|oom|f, 1, 1, 1, "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", s.cmdSAdd),
		set("srem", -3, w|f, 1, 1, 1, "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", s.cmdSRem),
		set("smembers", 2, r, 1, 1, 1, "1.0.0", "Returns all members of a set.", s.cmdSMembers),
		set("sismember", 3, r|f, 1, 1, 1, "1.0.0", "Determines whether a member belongs to a set.", s.cmdSIsMember),
		set("smismember", -3, r|f, 1, 1, 1, "6.2.0", "Determines whether multiple members belong to a set.", s.cmdSMIsMember),
		set("scard", 2, r|f, 1, 1, 1, "1.0.0", "Returns the number of members in a set.", s.cmdSCard),
		set("sscan", -3, r, 1, 1, 1, "2.8.0", "Iterates over members of a set.", s.cmdSScan),
		set("spop", -2, w|f, 1, 1, 1, "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", s.cmdSPop),
		set("srandmember", -2, r, 1, 1, 1, "1.0.0", "Get one or multiple random members from a set", s.cmdSRandMember),
		set("sinter", -2, r, 1, -1, 1, "1.0.0", "Returns the intersect of multiple sets.", s.cmdSInter),
		set("sunion", -2, r, 1, -1, 1, "1.0.0", "Returns the union of multiple sets.", s.cmdSUnion),
		set("sdiff", -2, r, 1, -1, 1, "1.0.0", "Returns the difference of multiple sets.", s.cmdSDiff),
		set("sinterstore", -3, w|oom, 1, -1, 1, "1.0.0", "Stores the intersect of multiple sets in a key.", s.cmdSInterStore),
		set("sunionstore", -3, w|oom, 1, -1, 1, "1.0.0", "Stores the union of multiple sets in a key.", s.cmdSUnionStore),
		set("sdiffstore", -3, w|oom, 1, -1, 1, "1.0.0", "Stores the difference of multiple sets in a key.", s.cmdSDiffStore),
		set("sintercard", -3, r, 0, 0, 0, "7.0.0", "Returns the number of members of the intersect of multiple sets.", s.cmdSInterCard),
		set("smove", 4, w|f, 1, 2, 1, "1.0.0", "Moves a member from one set to another.", s.cmdSMove),
	}
}

func (s *Server) cmdSAdd(c *client, args [][]byte) {
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, key, false)
	if !ok {
		return
	}
	created := set == nil
	if created {
		set = newSetFor(args[2])
	}
	var added int64
	for _, m := range args[2:] {
		if set.add(m) {
			added++
		}
	}
	if added > 0 { // a new set gains its first member
		c.objectWritten(&tx, key, kindSet, set, created, evSet, "sadd")
	}
	c.w.Int(added)
}

func (s *Server) cmdSRem(c *client, args [][]byte) {
	removeParts(s, c, args, kindSet, (*setObj).remove, (*setObj).card, evSet, "srem")
}

// writeSetMembers replies with members as a set (RESP3 "~").
func (c *client) writeSetMembers(members []string) {
	c.w.Set(len(members))
	for _, m := range members {
		c.w.BulkString(m)
	}
}

// writeSet replies with the members of set (nil: empty) as a set, in the
// set's order.
func (c *client) writeSet(set *setObj) {
	c.w.Set(set.card())
	set.each(func(m string) { c.w.BulkString(m) })
}

func (s *Server) cmdSMembers(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, args[1], true)
	if ok {
		c.writeSet(set)
	}
}

func (s *Server) cmdSIsMember(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, args[1], true)
	if !ok {
		return
	}
	if set.has(args[2]) {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

func (s *Server) cmdSMIsMember(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, args[1], true)
	if !ok {
		return
	}
	c.w.Array(len(args) - 2)
	for _, m := range args[2:] {
		if set.has(m) {
			c.w.Int(1)
		} else {
			c.w.Int(0)
		}
	}
}

func (s *Server) cmdSCard(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, args[1], true)
	if !ok {
		return
	}
	c.w.Int(int64(set.card()))
}

// scanTab runs one SSCAN/ZSCAN step over a member table: whole buckets
// until about count entries were seen or ten times count buckets were
// visited, as Redis's scanGenericCommand does. fn receives each entry.
func scanTab[V any](t *memberTab[V], cursor uint64, count int, fn func(e *memberEnt[V])) uint64 {
	seen := 0
	maxBuckets := count * 10
	for {
		cursor = t.scan(cursor, func(e *memberEnt[V]) {
			seen++
			fn(e)
		})
		maxBuckets--
		if cursor == 0 || seen >= count || maxBuckets <= 0 {
			return cursor
		}
	}
}

func (s *Server) cmdSScan(c *client, args [][]byte) {
	scanObject(s, c, args, kindSet, 0, func(set *setObj, cursor uint64, opts scanOpts) {
		var items []string
		keep := func(m string) {
			if opts.matches(stringBytes(m)) {
				items = append(items, m)
			}
		}
		if set.tab == nil {
			// A compact set is returned whole, as Redis does for an intset.
			set.each(keep)
			c.writeScanReply(0, items)
			return
		}
		next := scanTab(set.tab, cursor, opts.count, func(e *memberEnt[struct{}]) { keep(e.key) })
		c.writeScanReply(next, items)
	})
}

// maxRandCount bounds the reply of SRANDMEMBER with a negative count (which
// repeats members): Redis streams any count, sessiond builds the reply in
// memory first.
const maxRandCount = 1 << 24

func (s *Server) cmdSPop(c *client, args [][]byte) {
	count, ok := parsePopCount(c, args)
	if !ok {
		return
	}
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, key, false)
	if !ok {
		return
	}
	if set == nil {
		if count < 0 {
			c.w.Null()
		} else {
			c.w.Set(0)
		}
		return
	}
	if count == 0 {
		c.w.Set(0)
		return
	}
	if count < 0 {
		m := set.randomMember()
		set.remove(stringBytes(m))
		c.w.BulkString(m)
	} else if count >= int64(set.card()) {
		c.writeSet(set)
		// The key goes as a whole: the set is left as it is.
		c.objectShrunk(&tx, key, true, evSet, "spop")
		return
	} else {
		popped := make([]string, 0, count)
		for range count {
			m := set.randomMember()
			set.remove(stringBytes(m))
			popped = append(popped, m)
		}
		c.writeSetMembers(popped)
	}
	c.objectShrunk(&tx, key, set.card() == 0, evSet, "spop")
}

func (s *Server) cmdSRandMember(c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	key := args[1]
	if len(args) == 2 {
		tx := s.store.Lock(key)
		defer tx.Unlock()
		set, ok := c.lookupSet(&tx, key, true)
		switch {
		case !ok:
		case set == nil:
			c.w.Null()
		default:
			c.w.BulkString(set.randomMember())
		}
		return
	}
	n, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	if n == math.MinInt64 || n < -maxRandCount {
		lo := -int64(math.MaxInt64)
		if n != math.MinInt64 {
			lo = -maxRandCount
		}
		c.w.Error("ERR value is out of range, value must between " + strconv.FormatInt(lo, 10) + " and " + strconv.FormatInt(math.MaxInt64, 10))
		return
	}
	tx := s.store.Lock(key)
	defer tx.Unlock()
	set, ok := c.lookupSet(&tx, key, true)
	if !ok {
		return
	}
	// Redis 7.0 answers arrays here, also in RESP3.
	if set == nil || n == 0 {
		c.w.Array(0)
		return
	}
	if n < 0 {
		// Repeats allowed: each pick is independent.
		c.w.Array(int(-n))
		for range -n {
			c.w.BulkString(set.randomMember())
		}
		return
	}
	members := distinctRandom(set, int(min(n, int64(set.card()))))
	c.w.Array(len(members))
	for _, m := range members {
		c.w.BulkString(m)
	}
}

// distinctRandom returns count distinct random members of set (count ≤
// card; all of them in the set's order when count = card): a partial Fisher-Yates shuffle of the members when count is a
// large share of them, else rejection sampling.
func distinctRandom(set *setObj, count int) []string {
	size := set.card()
	if count == size {
		return set.members()
	}
	if count*3 > size {
		all := set.members()
		for i := range count {
			j := i + rand.IntN(size-i)
			all[i], all[j] = all[j], all[i]
		}
		return all[:count]
	}
	picked := make(map[string]struct{}, count)
	out := make([]string, 0, count)
	for len(out) < count {
		m := set.randomMember()
		if _, dup := picked[m]; dup {
			continue
		}
		picked[m] = struct{}{}
		out = append(out, m)
	}
	return out
}

// lookupSets finds the sets under keys for SINTER and friends. A missing
// key is a nil set; any key of another type writes WRONGTYPE and returns
// ok=false (every key is checked, as Redis does).
func (c *client) lookupSets(tx *ttl.Txn, keys [][]byte, read bool) ([]*setObj, bool) {
	sets := make([]*setObj, len(keys))
	for i, k := range keys {
		set, ok := c.lookupSet(tx, k, read)
		if !ok {
			return nil, false
		}
		sets[i] = set
	}
	return sets, true
}

// intersect calls fn with each member of every set, iterating the
// smallest, until fn returns false. A nil set (a missing key) is empty:
// fn is not called.
func intersect(sets []*setObj, fn func(m string) bool) {
	if slices.Contains(sets, nil) {
		return
	}
	sorted := slices.Clone(sets)
	slices.SortStableFunc(sorted, func(a, b *setObj) int { return a.card() - b.card() })
	first := sorted[0]
	visit := func(m string) bool {
		for _, o := range sorted[1:] {
			if o != first && !o.hasString(m) {
				return true
			}
		}
		return fn(m)
	}
	if first.tab == nil {
		for _, v := range first.ints {
			if !visit(strconv.FormatInt(v, 10)) {
				return
			}
		}
		return
	}
	for i := range first.tab.ents {
		if !visit(first.tab.ents[i].key) {
			return
		}
	}
}

// lockSetKeys locks keys and, when not nil, dst.
func (s *Server) lockSetKeys(c *client, dst []byte, keys [][]byte) ttl.Txn {
	if dst == nil {
		return s.store.LockKeys(keys...)
	}
	all := append(c.keyScratch[:0], dst)
	all = append(all, keys...)
	c.keyScratch = all[:0]
	return s.store.LockKeys(all...)
}

// The operations of setOp.
const (
	setOpInter = iota
	setOpUnion
	setOpDiff
)

// setOpEvents are the events of the STORE forms by operation.
var setOpEvents = [...]string{setOpInter: "sinterstore", setOpUnion: "sunionstore", setOpDiff: "sdiffstore"}

// setOp answers SINTER, SUNION, SDIFF (dst nil) and their STORE forms.
func (s *Server) setOp(c *client, keys [][]byte, dst []byte, op int) {
	tx := s.lockSetKeys(c, dst, keys)
	defer tx.Unlock()
	sets, ok := c.lookupSets(&tx, keys, dst == nil)
	if !ok {
		return
	}
	if op == setOpInter && dst == nil {
		var members []string // the reply straight from intersect
		intersect(sets, func(m string) bool { members = append(members, m); return true })
		c.writeSetMembers(members)
		return
	}
	res := &setObj{}
	switch op {
	case setOpInter:
		intersect(sets, func(m string) bool { res.addString(m); return true })
	case setOpUnion:
		for _, set := range sets {
			if set != nil {
				set.each(func(m string) { res.addString(m) })
			}
		}
	case setOpDiff:
		if first := sets[0]; first != nil {
			first.each(func(m string) {
				for _, o := range sets[1:] {
					if o == first || (o != nil && o.hasString(m)) {
						return
					}
				}
				res.addString(m)
			})
		}
	}
	if dst == nil {
		c.writeSet(res)
		return
	}
	c.storeResult(&tx, dst, kindSet, res, res.card(), evSet, setOpEvents[op])
}

func (s *Server) cmdSInter(c *client, args [][]byte)      { s.setOp(c, args[1:], nil, setOpInter) }
func (s *Server) cmdSInterStore(c *client, args [][]byte) { s.setOp(c, args[2:], args[1], setOpInter) }
func (s *Server) cmdSUnion(c *client, args [][]byte)      { s.setOp(c, args[1:], nil, setOpUnion) }
func (s *Server) cmdSUnionStore(c *client, args [][]byte) { s.setOp(c, args[2:], args[1], setOpUnion) }
func (s *Server) cmdSDiff(c *client, args [][]byte)       { s.setOp(c, args[1:], nil, setOpDiff) }
func (s *Server) cmdSDiffStore(c *client, args [][]byte)  { s.setOp(c, args[2:], args[1], setOpDiff) }

func (s *Server) cmdSInterCard(c *client, args [][]byte) {
	n, ok := parseInt(args[1])
	if !ok || n <= 0 {
		c.w.Error("ERR numkeys should be greater than 0")
		return
	}
	if n > int64(len(args)-2) {
		c.w.Error("ERR Number of keys can't be greater than number of args")
		return
	}
	keys := args[2 : 2+n]
	limit := int64(0)
	for j := 2 + int(n); j < len(args); j++ {
		if eqFold(args[j], "limit") && j+1 < len(args) {
			l, ok := parseInt(args[j+1])
			if !ok || l < 0 {
				c.w.Error("ERR LIMIT can't be negative")
				return
			}
			limit = l
			j++
			continue
		}
		c.w.Error(errSyntax)
		return
	}
	tx := s.store.LockKeys(keys...)
	defer tx.Unlock()
	sets, ok := c.lookupSets(&tx, keys, true)
	if !ok {
		return
	}
	var card int64
	intersect(sets, func(string) bool { card++; return limit == 0 || card < limit })
	c.w.Int(card)
}

func (s *Server) cmdSMove(c *client, args [][]byte) {
	src, dst, member := args[1], args[2], args[3]
	tx := s.store.LockKeys(src, dst)
	defer tx.Unlock()
	from, ok := c.lookupSet(&tx, src, false)
	if !ok {
		return
	}
	if from == nil {
		c.w.Int(0)
		return
	}
	to, ok := c.lookupSet(&tx, dst, false)
	if !ok {
		return
	}
	if from == to {
		if from.has(member) {
			c.w.Int(1)
		} else {
			c.w.Int(0)
		}
		return
	}
	if !from.remove(member) {
		c.w.Int(0)
		return
	}
	c.objectShrunk(&tx, src, from.card() == 0, evSet, "srem")
	created := to == nil
	if created {
		to = newSetFor(member)
	}
	if to.add(member) { // always for a new set
		c.objectWritten(&tx, dst, kindSet, to, created, evSet, "sadd")
	} else {
		c.signal(c.db, dst) // as Redis: dst is signalled even when unchanged
	}
	c.w.Int(1)
}
