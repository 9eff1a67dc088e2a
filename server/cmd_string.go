package server

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sessiond/sessiond/ttl"
)

func (s *Server) stringCommands() []*command {
	str := func(name string, arity int, flags cmdFlags, first, last, step int, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, firstKey: first, lastKey: last, step: step,
			group: "string", since: since, summary: summary, run: run}
	}
	const r, w, f, oom = flagReadonly, flagWrite, flagFast, flagDenyOOM
	return []*command{
		str("get", 2, r|f, 1, 1, 1, "1.0.0", "Returns the string value of a key.", s.cmdGet),
		str("set", -3, w|oom, 1, 1, 1, "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", s.cmdSet),
		str("setex", 4, w|oom, 1, 1, 1, "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", s.cmdSetEx),
		str("psetex", 4, w|oom, 1, 1, 1, "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", s.cmdPSetEx),
		str("setnx", 3, w|oom|f, 1, 1, 1, "1.0.0", "Set the string value of a key only when the key doesn't exist.", s.cmdSetNX),
		str("getex", -2, w|f, 1, 1, 1, "6.2.0", "Returns the string value of a key after setting its expiration time.", s.cmdGetEx),
		str("getdel", 2, w|f, 1, 1, 1, "6.2.0", "Returns the string value of a key after deleting the key.", s.cmdGetDel),
		str("getset", 3, w|oom|f, 1, 1, 1, "1.0.0", "Returns the previous string value of a key after setting it to a new value.", s.cmdGetSet),
		str("mget", -2, r|f, 1, -1, 1, "1.0.0", "Atomically returns the string values of one or more keys.", s.cmdMGet),
		str("mset", -3, w|oom, 1, -1, 2, "1.0.1", "Atomically creates or modifies the string values of one or more keys.", s.cmdMSet),
		str("msetnx", -3, w|oom, 1, -1, 2, "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", s.cmdMSetNX),
		str("append", 3, w|oom|f, 1, 1, 1, "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", s.cmdAppend),
		str("strlen", 2, r|f, 1, 1, 1, "2.2.0", "Returns the length of a string value.", s.cmdStrlen),
		str("getrange", 4, r, 1, 1, 1, "2.4.0", "Returns a substring of the string stored at a key.", s.cmdGetRange),
		str("substr", 4, r, 1, 1, 1, "1.0.0", "Returns a substring from a string value.", s.cmdGetRange),
		str("setrange", 4, w|oom, 1, 1, 1, "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", s.cmdSetRange),
		str("incr", 2, w|oom|f, 1, 1, 1, "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", s.cmdIncr),
		str("decr", 2, w|oom|f, 1, 1, 1, "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", s.cmdDecr),
		str("incrby", 3, w|oom|f, 1, 1, 1, "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", s.cmdIncrBy),
		str("decrby", 3, w|oom|f, 1, 1, 1, "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", s.cmdDecrBy),
		str("incrbyfloat", 3, w|oom|f, 1, 1, 1, "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", s.cmdIncrByFloat),
	}
}

func (c *client) hit()  { atomic.AddInt64(&c.stats.hits, 1) }
func (c *client) miss() { atomic.AddInt64(&c.stats.misses, 1) }

// getString looks key up for reading: it writes the WRONGTYPE error itself
// and reports ok=false for it; a missing key is found=false, ok=true.
func (c *client) getString(tx *ttl.Txn, key []byte) (e ttl.Entry, found, ok bool) {
	return c.lookupEntry(tx, key, kindString, true)
}

func (s *Server) cmdGet(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found, ok := c.getString(&tx, args[1])
	switch {
	case !ok:
	case !found:
		c.w.Null()
	default:
		c.w.Bulk(e.Blob)
	}
}

// Flags of the SET/GETEX family, as in Redis's parseExtendedStringArguments.
const (
	setNX = 1 << iota
	setXX
	setGet
	setKeepTTL
	setPersist
	setEX
	setPX
	setEXAT
	setPXAT
)

const (
	cmdTypeSet = iota
	cmdTypeGet
)

// parseExpireOptions parses SET (cmdTypeSet) or GETEX (cmdTypeGet) options
// from args[start:]. It returns the flags and the absolute deadline in ms
// (0 if none), or writes the error reply and returns ok=false.
func parseExpireOptions(c *client, name string, args [][]byte, start, cmdType int, now int64) (flags int, deadline int64, ok bool) {
	flags, expire, ok := parseExpireFlags(c, args, start, cmdType)
	if !ok {
		return 0, 0, false
	}
	if expire != nil {
		deadline, ok = expireValue(c, name, flags, expire, now)
		if !ok {
			return 0, 0, false
		}
	}
	return flags, deadline, true
}

// expireValue converts the expire argument of flags' EX/PX/EXAT/PXAT.
func expireValue(c *client, name string, flags int, expire []byte, now int64) (int64, bool) {
	seconds := flags&(setEX|setEXAT) != 0
	relative := flags&(setEX|setPX) != 0
	return expireMillis(c, name, expire, seconds, relative, now)
}

// parseExpireFlags is the syntax pass of parseExpireOptions: the flags and
// the expire argument (nil if none), not yet validated (GETEX checks the
// key's type in between, as Redis does).
func parseExpireFlags(c *client, args [][]byte, start, cmdType int) (flags int, expire []byte, ok bool) {
	const anyExp = setEX | setPX | setEXAT | setPXAT
	for j := start; j < len(args); j++ {
		opt := args[j]
		hasNext := j < len(args)-1
		switch {
		case eqFold(opt, "nx") && flags&setXX == 0 && cmdType == cmdTypeSet:
			flags |= setNX
		case eqFold(opt, "xx") && flags&setNX == 0 && cmdType == cmdTypeSet:
			flags |= setXX
		case eqFold(opt, "get") && cmdType == cmdTypeSet:
			flags |= setGet
		case eqFold(opt, "keepttl") && flags&(setPersist|anyExp) == 0 && cmdType == cmdTypeSet:
			flags |= setKeepTTL
		case eqFold(opt, "persist") && cmdType == cmdTypeGet && flags&(anyExp|setKeepTTL) == 0:
			flags |= setPersist
		case eqFold(opt, "ex") && flags&(setKeepTTL|setPersist|setEXAT|setPX|setPXAT) == 0 && hasNext:
			flags |= setEX
			expire = args[j+1]
			j++
		case eqFold(opt, "px") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setPX
			expire = args[j+1]
			j++
		case eqFold(opt, "exat") && flags&(setKeepTTL|setPersist|setEX|setPX|setPXAT) == 0 && hasNext:
			flags |= setEXAT
			expire = args[j+1]
			j++
		case eqFold(opt, "pxat") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPX) == 0 && hasNext:
			flags |= setPXAT
			expire = args[j+1]
			j++
		default:
			c.w.Error(errSyntax)
			return 0, nil, false
		}
	}
	return flags, expire, true
}

// expireMillis converts an expire argument of SET/GETEX/SETEX to an
// absolute deadline, with Redis's checks and wording.
func expireMillis(c *client, name string, arg []byte, seconds, relative bool, now int64) (int64, bool) {
	ms, ok := parseInt(arg)
	if !ok {
		c.w.Error(errNotInt)
		return 0, false
	}
	if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
		c.w.Error("ERR invalid expire time in '" + name + "' command")
		return 0, false
	}
	if seconds {
		ms *= 1000
	}
	if relative {
		if ms > math.MaxInt64-now {
			c.w.Error("ERR invalid expire time in '" + name + "' command")
			return 0, false
		}
		ms += now
	}
	return ms, true
}

// eqFold compares an argument with a lower-case ASCII word.
func eqFold(b []byte, word string) bool {
	if len(b) != len(word) {
		return false
	}
	for i := range b {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != word[i] {
			return false
		}
	}
	return true
}

func (s *Server) cmdSet(c *client, args [][]byte) {
	key, val := args[1], args[2]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	flags, deadline, ok := parseExpireOptions(c, "set", args, 3, cmdTypeSet, tx.Now())
	if !ok {
		return
	}
	// The old value matters only to GET, NX, XX and KEEPTTL; a plain SET
	// skips the lookup. (A deadline already due makes Set delete the key,
	// as Redis's checkAlreadyExpired does.)
	var old ttl.Entry
	var found bool
	if flags&(setGet|setNX|setXX|setKeepTTL) != 0 {
		old, found = tx.Get(c.db, key)
	}
	if flags&setGet != 0 {
		if found && old.Kind != kindString {
			c.w.Error(errWrongType)
			return
		}
		if found {
			c.w.Bulk(old.Blob)
		} else {
			c.w.Null()
		}
	}
	if (flags&setNX != 0 && found) || (flags&setXX != 0 && !found) {
		if flags&setGet == 0 {
			c.w.Null()
		}
		return
	}
	if flags&setKeepTTL != 0 && found {
		deadline = old.Deadline
	}
	tx.Set(c.db, key, kindString, val, deadline)
	c.changed(evString, "set", c.db, key)
	if deadline != 0 && flags&setKeepTTL == 0 {
		c.event(evGeneric, "expire", c.db, key)
	}
	if flags&setGet == 0 {
		c.w.Status("OK")
	}
}

func (s *Server) setEx(c *client, args [][]byte, name string, seconds bool) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	deadline, ok := expireMillis(c, name, args[2], seconds, true, tx.Now())
	if !ok {
		return
	}
	tx.Set(c.db, args[1], kindString, args[3], deadline)
	c.changed(evString, "set", c.db, args[1])
	c.event(evGeneric, "expire", c.db, args[1])
	c.w.Status("OK")
}

func (s *Server) cmdSetEx(c *client, args [][]byte)  { s.setEx(c, args, "setex", true) }
func (s *Server) cmdPSetEx(c *client, args [][]byte) { s.setEx(c, args, "psetex", false) }

func (s *Server) cmdSetNX(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	if _, found := tx.Get(c.db, args[1]); found {
		c.w.Int(0)
		return
	}
	tx.Set(c.db, args[1], kindString, args[2], 0)
	c.changed(evString, "set", c.db, args[1])
	c.w.Int(1)
}

func (s *Server) cmdGetEx(c *client, args [][]byte) {
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	flags, expire, ok := parseExpireFlags(c, args, 2, cmdTypeGet)
	if !ok {
		return
	}
	e, found, ok := c.getString(&tx, key)
	if !ok {
		return
	}
	if !found {
		c.w.Null()
		return
	}
	var deadline int64
	if expire != nil {
		if deadline, ok = expireValue(c, "getex", flags, expire, tx.Now()); !ok {
			return
		}
	}
	c.w.Bulk(e.Blob)
	switch {
	case deadline != 0:
		tx.SetDeadline(c.db, key, deadline)
		if deadline <= tx.Now() {
			c.changed(evGeneric, "del", c.db, key)
		} else {
			c.deadlineChanged("expire", c.db, key)
		}
	case flags&setPersist != 0 && e.Deadline != 0:
		tx.SetDeadline(c.db, key, 0)
		c.deadlineChanged("persist", c.db, key)
	}
}

func (s *Server) cmdGetDel(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found, ok := c.getString(&tx, args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Null()
		return
	}
	c.w.Bulk(e.Blob)
	tx.Delete(c.db, args[1])
	c.changed(evGeneric, "del", c.db, args[1])
}

func (s *Server) cmdGetSet(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found := tx.Get(c.db, args[1])
	if found && e.Kind != kindString {
		c.w.Error(errWrongType)
		return
	}
	if found {
		c.w.Bulk(e.Blob)
	} else {
		c.w.Null()
	}
	tx.Set(c.db, args[1], kindString, args[2], 0)
	c.changed(evString, "set", c.db, args[1])
}

func (s *Server) cmdMGet(c *client, args [][]byte) {
	keys := args[1:]
	tx := s.store.LockKeys(keys...)
	defer tx.Unlock()
	c.w.Array(len(keys))
	for _, k := range keys {
		e, found := tx.Get(c.db, k)
		if !found {
			c.miss()
			c.w.Null()
			continue
		}
		c.hit()
		if e.Kind != kindString {
			c.w.Null()
			continue
		}
		c.w.Bulk(e.Blob)
	}
}

// pairKeys returns the keys of a k v k v ... argument list.
func pairKeys(c *client, args [][]byte) [][]byte {
	keys := c.keyScratch[:0]
	for i := 1; i < len(args); i += 2 {
		keys = append(keys, args[i])
	}
	c.keyScratch = keys
	return keys
}

func (s *Server) cmdMSet(c *client, args [][]byte) {
	if len(args)%2 != 1 {
		c.w.Error(wrongArgs("mset"))
		return
	}
	tx := s.store.LockKeys(pairKeys(c, args)...)
	defer tx.Unlock()
	for i := 1; i < len(args); i += 2 {
		tx.Set(c.db, args[i], kindString, args[i+1], 0)
		c.changed(evString, "set", c.db, args[i])
	}
	c.w.Status("OK")
}

func (s *Server) cmdMSetNX(c *client, args [][]byte) {
	if len(args)%2 != 1 {
		c.w.Error(wrongArgs("msetnx"))
		return
	}
	tx := s.store.LockKeys(pairKeys(c, args)...)
	defer tx.Unlock()
	for i := 1; i < len(args); i += 2 {
		if _, found := tx.Get(c.db, args[i]); found {
			c.w.Int(0)
			return
		}
	}
	for i := 1; i < len(args); i += 2 {
		tx.Set(c.db, args[i], kindString, args[i+1], 0)
		c.changed(evString, "set", c.db, args[i])
	}
	c.w.Int(1)
}

func (s *Server) cmdAppend(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found := tx.Get(c.db, args[1])
	if !found {
		tx.Set(c.db, args[1], kindString, args[2], 0)
		c.changed(evString, "append", c.db, args[1])
		c.w.Int(int64(len(args[2])))
		return
	}
	if e.Kind != kindString {
		c.w.Error(errWrongType)
		return
	}
	n := int64(len(e.Blob)) + int64(len(args[2]))
	if n > s.conf.protoMaxBulkLen() {
		c.w.Error(errStringTooBig)
		return
	}
	buf := append(append(c.tmp[:0], e.Blob...), args[2]...)
	tx.Set(c.db, args[1], kindString, buf, e.Deadline)
	c.changed(evString, "append", c.db, args[1])
	c.keepTmp(buf)
	c.w.Int(n)
}

// keepTmp keeps a scratch buffer for reuse unless it grew large.
func (c *client) keepTmp(buf []byte) {
	if cap(buf) <= 64<<10 {
		c.tmp = buf[:0]
	} else {
		c.tmp = nil
	}
}

func (s *Server) cmdStrlen(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found, ok := c.getString(&tx, args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(len(e.Blob)))
}

func (s *Server) cmdGetRange(c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.w.Error(errNotInt)
		return
	}
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found, ok := c.getString(&tx, args[1])
	if !ok {
		return
	}
	if !found {
		c.w.BulkString("")
		return
	}
	n := int64(len(e.Blob))
	if start < 0 && end < 0 && start > end {
		c.w.BulkString("")
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(start, 0)
	end = max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		c.w.BulkString("")
		return
	}
	c.w.Bulk(e.Blob[start : end+1])
}

func (s *Server) cmdSetRange(c *client, args [][]byte) {
	off, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	if off < 0 {
		c.w.Error("ERR offset is out of range")
		return
	}
	val := args[3]
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found := tx.Get(c.db, args[1])
	if found && e.Kind != kindString {
		c.w.Error(errWrongType)
		return
	}
	if len(val) == 0 {
		c.w.Int(int64(len(e.Blob)))
		return
	}
	if off > s.conf.protoMaxBulkLen()-int64(len(val)) {
		c.w.Error(errStringTooBig)
		return
	}
	size := max(int64(len(e.Blob)), off+int64(len(val)))
	var buf []byte
	if size <= 64<<10 && int64(cap(c.tmp)) >= size {
		buf = c.tmp[:size]
		clear(buf[len(e.Blob):])
	} else {
		buf = make([]byte, size)
	}
	copy(buf, e.Blob)
	copy(buf[off:], val)
	tx.Set(c.db, args[1], kindString, buf, e.Deadline)
	c.changed(evString, "setrange", c.db, args[1])
	c.keepTmp(buf)
	c.w.Int(size)
}

// incrBy adds delta to the integer under key, keeping its TTL.
func (s *Server) incrBy(c *client, key []byte, delta int64) {
	tx := s.store.Lock(key)
	defer tx.Unlock()
	e, found := tx.Get(c.db, key)
	var cur int64
	if found {
		if e.Kind != kindString {
			c.w.Error(errWrongType)
			return
		}
		v, ok := parseInt(e.Blob)
		if !ok {
			c.w.Error(errNotInt)
			return
		}
		cur = v
	}
	if (delta < 0 && cur < 0 && delta < math.MinInt64-cur) || (delta > 0 && cur > 0 && delta > math.MaxInt64-cur) {
		c.w.Error(errOverflow)
		return
	}
	cur += delta
	buf := strconv.AppendInt(c.tmp[:0], cur, 10)
	tx.Set(c.db, key, kindString, buf, e.Deadline)
	c.changed(evString, "incrby", c.db, key)
	c.tmp = buf[:0]
	c.w.Int(cur)
}

func (s *Server) cmdIncr(c *client, args [][]byte) { s.incrBy(c, args[1], 1) }
func (s *Server) cmdDecr(c *client, args [][]byte) { s.incrBy(c, args[1], -1) }

func (s *Server) cmdIncrBy(c *client, args [][]byte) {
	n, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	s.incrBy(c, args[1], n)
}

func (s *Server) cmdDecrBy(c *client, args [][]byte) {
	n, ok := parseInt(args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	if n == math.MinInt64 {
		c.w.Error("ERR decrement would overflow")
		return
	}
	s.incrBy(c, args[1], -n)
}

// longDoublePrec is the significand of the x87 80-bit long double Redis
// uses for INCRBYFLOAT; computing with it gives Redis's exact results.
const longDoublePrec = 64

// parseLongDouble parses like Redis's string2ld (C's strtold): optional
// sign, decimal or 0x hexadecimal digits, optional exponent, inf/infinity;
// no spaces, no trailing garbage, no NaN.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) > 5*1024 {
		return nil, false
	}
	s := string(b)
	body := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+"))
	if len(body) < len(s)-1 {
		return nil, false // more than one sign
	}
	if body == "inf" || body == "infinity" {
		return new(big.Float).SetPrec(longDoublePrec).SetInf(s[0] == '-'), true
	}
	if body == "" || strings.ContainsAny(body, "_ \t\n\r\v\f") || strings.HasPrefix(body, "0b") || strings.HasPrefix(body, "0o") {
		return nil, false
	}
	hex := strings.HasPrefix(body, "0x")
	for _, ch := range body {
		switch {
		case ch >= '0' && ch <= '9', ch == '.':
		case hex && (ch >= 'a' && ch <= 'f' || ch == 'x' || ch == 'p' || ch == '+' || ch == '-'):
		case !hex && (ch == 'e' || ch == '+' || ch == '-'):
		default:
			return nil, false
		}
	}
	f, _, err := big.ParseFloat(s, 0, longDoublePrec, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	// strtold's ERANGE, which string2ld rejects: beyond the largest long
	// double, or so small that it rounds to zero.
	if exp := f.MantExp(nil); f.Sign() != 0 && (exp > longDoubleMaxExp || exp <= longDoubleMinExp) {
		return nil, false
	}
	return f, true
}

// longDoubleMinExp is the MantExp exponent at and below which a value
// rounds to zero as an x87 long double (half the smallest subnormal).
const longDoubleMinExp = -16446

// longDoubleMaxExp is the largest binary exponent of an x87 long double.
const longDoubleMaxExp = 16384

func (s *Server) cmdIncrByFloat(c *client, args [][]byte) {
	incr, ok := parseLongDouble(args[2])
	if !ok {
		c.w.Error(errNotFloat)
		return
	}
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found := tx.Get(c.db, args[1])
	cur := new(big.Float).SetPrec(longDoublePrec)
	if found {
		if e.Kind != kindString {
			c.w.Error(errWrongType)
			return
		}
		v, ok := parseLongDouble(e.Blob)
		if !ok {
			c.w.Error(errNotFloat)
			return
		}
		cur = v
	}
	out, ok := addLongDouble(cur, incr)
	if !ok {
		c.w.Error(errNaNInf)
		return
	}
	tx.Set(c.db, args[1], kindString, []byte(out), e.Deadline)
	c.changed(evString, "incrbyfloat", c.db, args[1])
	c.w.BulkString(out)
}

// addLongDouble adds incr to cur in the x87 long double arithmetic of
// Redis's INCRBYFLOAT and HINCRBYFLOAT and formats the sum; ok is false
// (errNaNInf) when either is infinite or the sum overflows.
func addLongDouble(cur, incr *big.Float) (string, bool) {
	if cur.IsInf() || incr.IsInf() {
		return "", false
	}
	sum := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).Add(cur, incr)
	if sum.MantExp(nil) > longDoubleMaxExp {
		return "", false
	}
	return formatLongDouble(sum), true
}

// formatLongDouble renders like Redis's "human friendly" ld2string:
// %.17Lf with trailing zeros (and a trailing dot) removed.
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
