package server

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/sessiond/sessiond/ttl"
)

func (s *Server) hashCommands() []*command {
	hash := func(name string, arity int, flags cmdFlags, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, firstKey: 1, lastKey: 1, step: 1,
			group: "hash", since: since, summary: summary, run: run}
	}
	const r, w, f, oom = flagReadonly, flagWrite, flagFast, flagDenyOOM
	return []*command{
		hash("hset", -4, w|oom|f, "2.0.0", "Creates or modifies the value of a field in a hash.", s.cmdHSet),
		hash("hmset", -4, w|oom|f, "2.0.0", "Sets the values of multiple fields.", s.cmdHMSet),
		hash("hsetnx", 4, w|oom|f, "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", s.cmdHSetNX),
		hash("hget", 3, r|f, "2.0.0", "Returns the value of a field in a hash.", s.cmdHGet),
		hash("hmget", -3, r|f, "2.0.0", "Returns the values of all fields in a hash.", s.cmdHMGet),
		hash("hgetall", 2, r, "2.0.0", "Returns all fields and values in a hash.", s.cmdHGetAll),
		hash("hkeys", 2, r, "2.0.0", "Returns all fields in a hash.", s.cmdHKeys),
		hash("hvals", 2, r, "2.0.0", "Returns all values in a hash.", s.cmdHVals),
		hash("hdel", -3, w|f, "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", s.cmdHDel),
		hash("hlen", 2, r|f, "2.0.0", "Returns the number of fields in a hash.", s.cmdHLen),
		hash("hexists", 3, r|f, "2.0.0", "Determines whether a field exists in a hash.", s.cmdHExists),
		hash("hstrlen", 3, r|f, "3.2.0", "Returns the length of the value of a field.", s.cmdHStrlen),
		hash("hincrby", 4, w|oom|f, "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", s.cmdHIncrBy),
		hash("hincrbyfloat", 4, w|oom|f, "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", s.cmdHIncrByFloat),
		hash("hrandfield", -2, r, "6.2.0", "Returns one or more random fields from a hash.", s.cmdHRandField),
		hash("hscan", -3, r, "2.8.0", "Iterates over fields and values of a hash.", s.cmdHScan),
		hash("hexpire", -6, w|f, "7.4.0", "Set expiry for hash field using relative time to expire (seconds)", s.cmdHExpire),
		hash("hpexpire", -6, w|f, "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)", s.cmdHPExpire),
		hash("hexpireat", -6, w|f, "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)", s.cmdHExpireAt),
		hash("hpexpireat", -6, w|f, "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)", s.cmdHPExpireAt),
		hash("httl", -5, r|f, "7.4.0", "Returns the TTL in seconds of a hash field.", s.cmdHTTL),
		hash("hpttl", -5, r|f, "7.4.0", "Returns the TTL in milliseconds of a hash field.", s.cmdHPTTL),
		hash("hexpiretime", -5, r|f, "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", s.cmdHExpireTime),
		hash("hpexpiretime", -5, r|f, "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec.", s.cmdHPExpireTime),
		hash("hpersist", -5, w|f, "7.4.0", "Removes the expiration time for each specified field", s.cmdHPersist),
	}
}

// Error replies of the hash commands, as Redis 7.4 words them.
const (
	errHashNotInt      = "ERR hash value is not an integer"
	errHashNotFloat    = "ERR hash value is not a float"
	errIncrNaNInf      = "ERR value is NaN or Infinity"
	errOutOfRange      = "ERR value is out of range"
	errFieldsMissing   = "ERR Mandatory argument FIELDS is missing or not at the right position"
	errNumFieldsExpire = "ERR Parameter `numFields` should be greater than 0"
	errNumFields       = "ERR Number of fields must be a positive integer"
	errNumFieldsMatch  = "ERR The `numfields` parameter must match the number of arguments"
	errExpireNegative  = "ERR invalid expire time, must be >= 0"
)

// hfeMaxAbsMs is the latest field deadline Redis 7.4 accepts (its
// HFE_MAX_ABS_TIME_MSEC, 2^46-1 ms, in the year 4199).
const hfeMaxAbsMs = (1<<48 - 1) >> 2

func (s *Server) hset(c *client, args [][]byte, name string) {
	if len(args)%2 == 1 {
		c.w.Error(wrongArgs(name))
		return
	}
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, false)
	if !ok {
		return
	}
	isNew := h == nil
	if isNew {
		size := 0
		for i := 2; i < len(args); i += 2 {
			size += packedSize(len(args[i]), len(args[i+1]), false)
		}
		h = newHash(size)
	}
	var created int64
	for i := 2; i < len(args); i += 2 {
		if h.set(args[i], args[i+1], false) {
			created++
		}
	}
	c.objectWritten(&tx, key, kindHash, h, isNew, evHash, "hset")
	if name == "hset" {
		c.w.Int(created)
	} else {
		c.w.OK()
	}
}

func (s *Server) cmdHSet(c *client, args [][]byte)  { s.hset(c, args, "hset") }
func (s *Server) cmdHMSet(c *client, args [][]byte) { s.hset(c, args, "hmset") }

func (s *Server) cmdHSetNX(c *client, args [][]byte) {
	key, f, v := args[1], args[2], args[3]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, false)
	if !ok {
		return
	}
	if _, exists := h.get(f); exists {
		c.w.Int(0)
		return
	}
	c.setField(&tx, key, h, f, v, "hset")
	c.w.Int(1)
}

func (s *Server) cmdHGet(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, args[1], true)
	if !ok {
		return
	}
	if v, found := h.get(args[2]); found {
		c.w.Bulk(v)
	} else {
		c.w.Null()
	}
}

func (s *Server) cmdHMGet(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, args[1], true)
	if !ok {
		return
	}
	c.w.Array(len(args) - 2)
	for _, f := range args[2:] {
		if v, found := h.get(f); found {
			c.w.Bulk(v)
		} else {
			c.w.Null()
		}
	}
}

// hgetall answers HGETALL (keys and values, a map), HKEYS and HVALS.
func (s *Server) hgetall(c *client, key []byte, keys, vals bool) {
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, true)
	if !ok {
		return
	}
	if keys && vals {
		c.w.Map(h.len())
	} else {
		c.w.Array(h.len())
	}
	h.each(func(f, v []byte, _ int64) bool {
		if keys {
			c.w.Bulk(f)
		}
		if vals {
			c.w.Bulk(v)
		}
		return true
	})
}

func (s *Server) cmdHGetAll(c *client, args [][]byte) { s.hgetall(c, args[1], true, true) }
func (s *Server) cmdHKeys(c *client, args [][]byte)   { s.hgetall(c, args[1], true, false) }
func (s *Server) cmdHVals(c *client, args [][]byte)   { s.hgetall(c, args[1], false, true) }

func (s *Server) cmdHDel(c *client, args [][]byte) {
	removeParts(s, c, args, kindHash, (*hashObj).del, (*hashObj).len, evHash, "hdel")
}

func (s *Server) cmdHLen(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, args[1], true)
	if !ok {
		return
	}
	c.w.Int(int64(h.len()))
}

func (s *Server) cmdHExists(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, args[1], true)
	if !ok {
		return
	}
	if _, found := h.get(args[2]); found {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

func (s *Server) cmdHStrlen(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, args[1], true)
	if !ok {
		return
	}
	v, _ := h.get(args[2])
	c.w.Int(int64(len(v)))
}

// setField sets field f of h, the hash under key (nil: none yet), to v and
// publishes event. An existing field keeps its deadline, as HINCRBY and
// HINCRBYFLOAT do in Redis 7.4 (HSETNX sets only new fields).
func (c *client) setField(tx *ttl.Txn, key []byte, h *hashObj, f, v []byte, event string) {
	isNew := h == nil
	if isNew {
		h = newHash(packedSize(len(f), len(v), false))
	}
	h.set(f, v, true)
	c.objectWritten(tx, key, kindHash, h, isNew, evHash, event)
}

func (s *Server) cmdHIncrBy(c *client, args [][]byte) {
	key, f := args[1], args[2]
	incr, ok := parseInt(args[3])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, false)
	if !ok {
		return
	}
	var cur int64
	if v, found := h.get(f); found {
		if cur, ok = parseInt(v); !ok {
			c.w.Error(errHashNotInt)
			return
		}
	}
	if (incr < 0 && cur < 0 && incr < math.MinInt64-cur) || (incr > 0 && cur > 0 && incr > math.MaxInt64-cur) {
		c.w.Error(errOverflow)
		return
	}
	cur += incr
	buf := strconv.AppendInt(c.tmp[:0], cur, 10)
	c.setField(&tx, key, h, f, buf, "hincrby")
	c.tmp = buf[:0]
	c.w.Int(cur)
}

func (s *Server) cmdHIncrByFloat(c *client, args [][]byte) {
	key, f := args[1], args[2]
	incr, ok := parseLongDouble(args[3])
	if !ok {
		c.w.Error(errNotFloat)
		return
	}
	if incr.IsInf() {
		c.w.Error(errIncrNaNInf)
		return
	}
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, false)
	if !ok {
		return
	}
	cur := new(big.Float).SetPrec(longDoublePrec)
	if v, found := h.get(f); found {
		if cur, ok = parseLongDouble(v); !ok {
			c.w.Error(errHashNotFloat)
			return
		}
	}
	out, ok := addLongDouble(cur, incr)
	if !ok {
		c.w.Error(errNaNInf)
		return
	}
	buf := append(c.tmp[:0], out...)
	c.setField(&tx, key, h, f, buf, "hincrbyfloat")
	c.tmp = buf[:0]
	c.w.BulkString(out)
}

func (s *Server) cmdHRandField(c *client, args [][]byte) {
	key := args[1]
	if len(args) == 2 {
		tx := s.store.Lock(key)
		defer tx.Unlock()
		h, ok := c.lookupHash(&tx, key, true)
		if !ok {
			return
		}
		if h == nil {
			c.w.Null()
			return
		}
		var scratch [packedMaxFields + 1]int
		pos := h.positions(scratch[:0])
		f, _ := h.entry(pos, rand.IntN(h.len()))
		c.w.Bulk(f)
		return
	}
	l, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	if l == math.MinInt64 {
		c.w.Error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return
	}
	withValues := false
	if len(args) > 4 || (len(args) == 4 && !eqFold(args[3], "withvalues")) {
		c.w.Error(errSyntax)
		return
	}
	if len(args) == 4 {
		withValues = true
		if l < -math.MaxInt64/2 || l > math.MaxInt64/2 {
			c.w.Error(errOutOfRange)
			return
		}
	}
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, true)
	if !ok {
		return
	}
	if h == nil || l == 0 {
		c.w.Array(0)
		return
	}
	var scratch [packedMaxFields + 1]int
	pos := h.positions(scratch[:0])
	size := h.len()
	pair := func(i int) {
		f, v := h.entry(pos, i)
		if withValues && c.w.Proto() == 3 {
			c.w.Array(2)
		}
		c.w.Bulk(f)
		if withValues {
			c.w.Bulk(v)
		}
	}
	header := func(n int) {
		if withValues && c.w.Proto() == 2 {
			c.w.Array(2 * n)
		} else {
			c.w.Array(n)
		}
	}
	if l < 0 {
		// With repetitions, in random order. The reply is built in memory:
		// refuse one far beyond what a client may send in a bulk.
		count := uint64(-l)
		per := uint64(h.MemoryUsage()/size) + 16
		if count > uint64(s.conf.protoMaxBulkLen())/per {
			c.w.Error(errOutOfRange)
			return
		}
		header(int(count))
		for range count {
			pair(rand.IntN(size))
		}
		return
	}
	if l >= int64(size) {
		header(size)
		for i := range size {
			pair(i)
		}
		return
	}
	// count distinct fields (Floyd's sampling), in the hash's order.
	count := int(l)
	picked := make(map[int]struct{}, count)
	for j := size - count; j < size; j++ {
		i := rand.IntN(j + 1)
		if _, dup := picked[i]; dup {
			i = j
		}
		picked[i] = struct{}{}
	}
	idx := make([]int, 0, count)
	for i := range picked {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	header(count)
	for _, i := range idx {
		pair(i)
	}
}

func (s *Server) cmdHScan(c *client, args [][]byte) {
	scanObject(s, c, args, kindHash, scanOptNoValues, func(h *hashObj, cursor uint64, opts scanOpts) {
		// The reply's length comes first, and MATCH filters: collect, then write.
		var items [][]byte
		next := h.scan(cursor, min(opts.count, 1<<20), func(f, v []byte) {
			if opts.matches(f) {
				items = append(items, f)
				if !opts.noValues {
					items = append(items, v)
				}
			}
		})
		c.w.Array(2)
		c.w.BulkString(strconv.FormatUint(next, 10))
		c.w.Array(len(items))
		for _, it := range items {
			c.w.Bulk(it)
		}
	})
}

// Conditions of the HEXPIRE family.
const (
	hexpNX = iota + 1
	hexpXX
	hexpGT
	hexpLT
)

// hexpire implements HEXPIRE, HPEXPIRE, HEXPIREAT and HPEXPIREAT with
// Redis 7.4's checks in its order: the key's type, the time, the
// condition, FIELDS and the count. Per field it answers -2 (no such
// field), 0 (condition not met), 1 (deadline set) or 2 (deleted: the time
// is not in the future).
func (s *Server) hexpire(c *client, args [][]byte, name string, seconds, relative bool) {
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, false)
	if !ok {
		return
	}
	when, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	if when < 0 {
		c.w.Error(errExpireNegative)
		return
	}
	badTime := "ERR invalid expire time in '" + name + "' command"
	if seconds {
		if when > hfeMaxAbsMs/1000 {
			c.w.Error(badTime)
			return
		}
		when *= 1000
	}
	now := tx.Now()
	var base int64
	if relative {
		base = now
	}
	if when > hfeMaxAbsMs-base {
		c.w.Error(badTime)
		return
	}
	when += base
	cond, at := 0, 3
	switch {
	case eqFold(args[3], "nx"):
		cond = hexpNX
	case eqFold(args[3], "xx"):
		cond = hexpXX
	case eqFold(args[3], "gt"):
		cond = hexpGT
	case eqFold(args[3], "lt"):
		cond = hexpLT
	}
	if cond != 0 {
		at++
	}
	fields, ok := parseFields(c, args, at, errNumFieldsExpire)
	if !ok {
		return
	}
	c.w.Array(len(fields))
	updated, deleted := 0, 0
	for _, f := range fields {
		dl, exists := h.deadline(f)
		switch {
		case !exists:
			c.w.Int(-2)
		case dl == 0 && (cond == hexpXX || cond == hexpGT),
			dl != 0 && (cond == hexpNX || cond == hexpGT && dl >= when || cond == hexpLT && dl <= when):
			c.w.Int(0)
		case when <= now:
			h.del(f)
			deleted++
			c.w.Int(2)
		default:
			h.setDeadline(f, when)
			updated++
			c.w.Int(1)
		}
	}
	if updated+deleted == 0 {
		return
	}
	event := "hexpire"
	if deleted > 0 {
		event = "hdel"
	}
	c.objectShrunk(&tx, key, h.len() == 0, evHash, event)
}

// parseFields checks "FIELDS numfields field..." at args[at:] and returns
// the fields, or writes the error (numErr for a bad count) and ok=false.
func parseFields(c *client, args [][]byte, at int, numErr string) ([][]byte, bool) {
	if at >= len(args) || !eqFold(args[at], "fields") {
		c.w.Error(errFieldsMissing)
		return nil, false
	}
	if at+1 >= len(args) {
		c.w.Error(numErr)
		return nil, false
	}
	n, ok := parseInt(args[at+1])
	if !ok || n < 1 {
		c.w.Error(numErr)
		return nil, false
	}
	fields := args[at+2:]
	if n != int64(len(fields)) {
		c.w.Error(errNumFieldsMatch)
		return nil, false
	}
	return fields, true
}

func (s *Server) cmdHExpire(c *client, args [][]byte)   { s.hexpire(c, args, "hexpire", true, true) }
func (s *Server) cmdHPExpire(c *client, args [][]byte)  { s.hexpire(c, args, "hpexpire", false, true) }
func (s *Server) cmdHExpireAt(c *client, args [][]byte) { s.hexpire(c, args, "hexpireat", true, false) }
func (s *Server) cmdHPExpireAt(c *client, args [][]byte) {
	s.hexpire(c, args, "hpexpireat", false, false)
}

// httl answers HTTL, HPTTL, HEXPIRETIME and HPEXPIRETIME: per field -2 (no
// such field), -1 (no deadline), or the time left or the deadline, in
// seconds (rounded up, as Redis 7.4 does) or milliseconds.
func (s *Server) httl(c *client, args [][]byte, ms, abs bool) {
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, true)
	if !ok {
		return
	}
	fields, ok := parseFields(c, args, 2, errNumFields)
	if !ok {
		return
	}
	now := tx.Now()
	c.w.Array(len(fields))
	for _, f := range fields {
		dl, exists := h.deadline(f)
		switch {
		case !exists:
			c.w.Int(-2)
		case dl == 0:
			c.w.Int(-1)
		default:
			v := dl
			if !abs {
				v -= now
			}
			if !ms {
				v = (v + 999) / 1000
			}
			c.w.Int(v)
		}
	}
}

func (s *Server) cmdHTTL(c *client, args [][]byte)         { s.httl(c, args, false, false) }
func (s *Server) cmdHPTTL(c *client, args [][]byte)        { s.httl(c, args, true, false) }
func (s *Server) cmdHExpireTime(c *client, args [][]byte)  { s.httl(c, args, false, true) }
func (s *Server) cmdHPExpireTime(c *client, args [][]byte) { s.httl(c, args, true, true) }

// cmdHPersist removes field deadlines: per field -2 (no such field), -1
// (no deadline) or 1.
func (s *Server) cmdHPersist(c *client, args [][]byte) {
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	h, ok := c.lookupHash(&tx, key, false)
	if !ok {
		return
	}
	fields, ok := parseFields(c, args, 2, errNumFields)
	if !ok {
		return
	}
	c.w.Array(len(fields))
	changed := false
	for _, f := range fields {
		dl, exists := h.deadline(f)
		switch {
		case !exists:
			c.w.Int(-2)
		case dl == 0:
			c.w.Int(-1)
		default:
			h.setDeadline(f, 0)
			changed = true
			c.w.Int(1)
		}
	}
	if changed {
		c.objectWritten(&tx, key, kindHash, h, false, evHash, "hpersist")
	}
}

// ObjectExpired is the store's ttl.Config.OnObjectExpire: fields of the
// hash under key in db expired (and the key with them when removed). It
// signals the change and publishes Redis 7.4's events: hexpired, and del
// when the key went.
func (s *Server) ObjectExpired(db int, key []byte, removed bool) {
	s.signalKey(db, key)
	s.publishEvent(evHash, "hexpired", db, key)
	if removed {
		s.publishEvent(evGeneric, "del", db, key)
	}
}
