package server

import (
	"github.com/sessiond/sessiond/server/internal/resp"
	"github.com/sessiond/sessiond/ttl"
)

func (s *Server) zsetCommands() []*command {
	z := func(name string, arity int, flags cmdFlags, first, last, step int, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, firstKey: first, lastKey: last, step: step,
			group: "sorted-set", since: since, summary: summary, run: run}
	}
	const r, w, f, oom = flagReadonly, flagWrite, flagFast, flagDenyOOM
	return []*command{
		z("zadd", -4, w|oom|f, 1, 1, 1, "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", s.cmdZAdd),
		z("zincrby", 4, w|oom|f, 1, 1, 1, "1.2.0", "Increments the score of a member in a sorted set.", s.cmdZIncrBy),
		z("zrem", -3, w|f, 1, 1, 1, "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", s.cmdZRem),
		z("zscore", 3, r|f, 1, 1, 1, "1.2.0", "Returns the score of a member in a sorted set.", s.cmdZScore),
		z("zmscore", -3, r|f, 1, 1, 1, "6.2.0", "Returns the score of one or more members in a sorted set.", s.cmdZMScore),
		z("zcard", 2, r|f, 1, 1, 1, "1.2.0", "Returns the number of members in a sorted set.", s.cmdZCard),
		z("zrange", -4, r, 1, 1, 1, "1.2.0", "Returns members in a sorted set within a range of indexes.", s.cmdZRange),
		z("zrangestore", -5, w|oom, 1, 2, 1, "6.2.0", "Stores a range of members from sorted set in a key.", s.cmdZRangeStore),
		z("zrevrange", -4, r, 1, 1, 1, "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", s.cmdZRevRange),
		z("zrangebyscore", -4, r, 1, 1, 1, "1.0.5", "Returns members in a sorted set within a range of scores.", s.cmdZRangeByScore),
		z("zrevrangebyscore", -4, r, 1, 1, 1, "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", s.cmdZRevRangeByScore),
		z("zrangebylex", -4, r, 1, 1, 1, "2.8.9", "Returns members in a sorted set within a lexicographical range.", s.cmdZRangeByLex),
		z("zrevrangebylex", -4, r, 1, 1, 1, "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", s.cmdZRevRangeByLex),
		z("zremrangebyscore", 4, w, 1, 1, 1, "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", s.cmdZRemRangeByScore),
		z("zremrangebyrank", 4, w, 1, 1, 1, "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", s.cmdZRemRangeByRank),
		z("zremrangebylex", 4, w, 1, 1, 1, "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", s.cmdZRemRangeByLex),
		z("zrank", -3, r|f, 1, 1, 1, "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", s.cmdZRank),
		z("zrevrank", -3, r|f, 1, 1, 1, "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", s.cmdZRevRank),
		z("zcount", 4, r|f, 1, 1, 1, "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", s.cmdZCount),
		z("zlexcount", 4, r|f, 1, 1, 1, "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", s.cmdZLexCount),
		z("zscan", -3, r, 1, 1, 1, "2.8.0", "Iterates over members and scores of a sorted set.", s.cmdZScan),
		z("zpopmin", -2, w|f, 1, 1, 1, "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", s.cmdZPopMin),
		z("zpopmax", -2, w|f, 1, 1, 1, "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", s.cmdZPopMax),
	}
}

const (
	errZAddXXNX   = "ERR XX and NX options at the same time are not compatible"
	errZAddGTLTNX = "ERR GT, LT, and/or NX options at the same time are not compatible"
	errZAddIncr   = "ERR INCR option supports a single increment-element pair"
	errZAddNaN    = "ERR resulting score is not a number (NaN)"
	errMinMaxNum  = "ERR min or max is not a float"
	errMinMaxLex  = "ERR min or max not valid string range item"
)

// zadd is ZADD and ZINCRBY (flags = zaddIncr), as Redis's
// zaddGenericCommand: options, then the pair count, the option conflicts,
// every score, and only then the key.
func (s *Server) zadd(c *client, args [][]byte, flags int) {
	key := args[1]
	ch := false
	idx := 2
options:
	for ; idx < len(args); idx++ {
		a := args[idx]
		switch {
		case eqFold(a, "nx"):
			flags |= zaddNX
		case eqFold(a, "xx"):
			flags |= zaddXX
		case eqFold(a, "ch"):
			ch = true
		case eqFold(a, "incr"):
			flags |= zaddIncr
		case eqFold(a, "gt"):
			flags |= zaddGT
		case eqFold(a, "lt"):
			flags |= zaddLT
		default:
			break options
		}
	}
	rest := args[idx:]
	if len(rest) == 0 || len(rest)%2 != 0 {
		c.w.Error(errSyntax)
		return
	}
	incr := flags&zaddIncr != 0
	switch {
	case flags&zaddNX != 0 && flags&zaddXX != 0:
		c.w.Error(errZAddXXNX)
		return
	case flags&zaddNX != 0 && flags&(zaddGT|zaddLT) != 0, flags&zaddGT != 0 && flags&zaddLT != 0:
		c.w.Error(errZAddGTLTNX)
		return
	case incr && len(rest) > 2:
		c.w.Error(errZAddIncr)
		return
	}
	scores := make([]float64, len(rest)/2)
	for i := range scores {
		f, ok := parseScore(rest[2*i])
		if !ok {
			c.w.Error(errNotFloat)
			return
		}
		scores[i] = f
	}
	tx := s.store.Lock(key)
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, key, false)
	if !ok {
		return
	}
	created := false
	var added, updated, processed int64
	var score float64
	if z == nil && flags&zaddXX == 0 {
		z = newZSet(len(scores))
		created = true
	}
	if z != nil {
		for i, sc := range scores {
			newScore, out, ok := z.add(sc, rest[2*i+1], flags)
			if !ok {
				c.w.Error(errZAddNaN)
				return
			}
			switch {
			case out&zaddAdded != 0:
				added++
			case out&zaddUpdated != 0:
				updated++
			}
			if out&zaddNop == 0 {
				processed++
			}
			score = newScore
		}
	}
	if incr {
		if processed > 0 {
			c.w.Double(score)
		} else {
			c.w.Null()
		}
	} else if ch {
		c.w.Int(added + updated)
	} else {
		c.w.Int(added)
	}
	if added+updated > 0 { // always for a new set: its first member is added
		event := "zadd"
		if incr {
			event = "zincr"
		}
		c.objectWritten(&tx, key, kindZSet, z, created, evZSet, event)
	}
}

func (s *Server) cmdZAdd(c *client, args [][]byte)    { s.zadd(c, args, 0) }
func (s *Server) cmdZIncrBy(c *client, args [][]byte) { s.zadd(c, args, zaddIncr) }

func (s *Server) cmdZRem(c *client, args [][]byte) {
	removeParts(s, c, args, kindZSet, (*zsetObj).remove, (*zsetObj).card, evZSet, "zrem")
}

func (s *Server) cmdZScore(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, args[1], true)
	if !ok {
		return
	}
	if n := z.nodeOf(args[2]); n != nil {
		c.w.Double(n.score)
	} else {
		c.w.Null()
	}
}

func (s *Server) cmdZMScore(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, args[1], true)
	if !ok {
		return
	}
	c.w.Array(len(args) - 2)
	for _, m := range args[2:] {
		if n := z.nodeOf(m); n != nil {
			c.w.Double(n.score)
		} else {
			c.w.Null()
		}
	}
}

func (s *Server) cmdZCard(c *client, args [][]byte) {
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, args[1], true)
	if !ok {
		return
	}
	c.w.Int(int64(z.card()))
}

// ---- ZRANGE and friends ----

const (
	zrangeAuto = iota
	zrangeRank
	zrangeScore
	zrangeLex
)

const (
	zdirAuto = iota
	zdirForward
	zdirReverse
)

// zrangeSink receives a range's members: the client's reply, or the new
// sorted set of ZRANGESTORE.
type zrangeSink struct {
	w          *resp.Writer
	withScores bool
	pairs      bool     // RESP3 WITHSCORES: [member, score] arrays
	store      *zsetObj // ZRANGESTORE's result
}

// begin announces n members.
func (k *zrangeSink) begin(n int) {
	if k.store != nil {
		return
	}
	if k.withScores && !k.pairs {
		n *= 2
	}
	k.w.Array(n)
}

func (k *zrangeSink) emit(nd *znode) {
	if k.store != nil {
		k.store.insertNew(nd.score, nd.member)
		return
	}
	if k.pairs {
		k.w.Array(2)
	}
	k.w.BulkString(nd.member)
	if k.withScores {
		k.w.Double(nd.score)
	}
}

// emitRun sends n nodes from x on, forward or backward.
func (k *zrangeSink) emitRun(x *znode, n int, reverse bool) {
	k.begin(n)
	for ; n > 0 && x != nil; n-- {
		k.emit(x)
		if reverse {
			x = x.backward
		} else {
			x = x.level[0].forward
		}
	}
}

// zrangeGeneric is Redis's zrangeGenericCommand: the key at args[start],
// the range after it, then options. dst is ZRANGESTORE's destination.
func (s *Server) zrangeGeneric(c *client, args [][]byte, start int, dst []byte, rtype, dir int) {
	key := args[start]
	minIdx, maxIdx := start+1, start+2
	withScores := false
	offset, limit := int64(0), int64(-1)
	store := dst != nil
	for j := start + 3; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case !store && eqFold(a, "withscores"):
			withScores = true
		case eqFold(a, "limit") && left >= 2:
			var ok bool
			if offset, limit, ok = parseIntPair(args[j+1], args[j+2]); !ok {
				c.w.Error(errNotInt)
				return
			}
			j += 2
		case dir == zdirAuto && eqFold(a, "rev"):
			dir = zdirReverse
		case rtype == zrangeAuto && eqFold(a, "bylex"):
			rtype = zrangeLex
		case rtype == zrangeAuto && eqFold(a, "byscore"):
			rtype = zrangeScore
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if dir == zdirAuto {
		dir = zdirForward
	}
	if rtype == zrangeAuto {
		rtype = zrangeRank
	}
	if limit != -1 && rtype == zrangeRank {
		c.w.Error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return
	}
	if withScores && rtype == zrangeLex {
		c.w.Error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return
	}
	reverse := dir == zdirReverse
	if reverse && rtype != zrangeRank {
		minIdx, maxIdx = maxIdx, minIdx
	}
	rankStart, rankEnd, rng, ok := parseZRange(c, rtype, args[minIdx], args[maxIdx])
	if !ok {
		return
	}

	var tx ttl.Txn
	if store {
		tx = s.store.LockKeys(dst, key)
	} else {
		tx = s.store.Lock(key)
	}
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, key, true)
	if !ok {
		return
	}
	sink := zrangeSink{w: &c.w, withScores: withScores, pairs: withScores && c.w.Proto() == 3}
	if store {
		sink.store = newZSet(0)
	}
	switch {
	case z == nil:
		if !store {
			c.w.Array(0)
		}
	case rtype == zrangeRank:
		zrangeByRank(&sink, z, rankStart, rankEnd, reverse)
	default:
		zrangeByRange(&sink, z, rng, offset, limit, reverse)
	}
	if store {
		c.storeResult(&tx, dst, kindZSet, sink.store, sink.store.card(), evZSet, "zrangestore")
	}
}

// zrangeByRank emits the members between two 0-based ranks (negative from
// the end), as Redis's genericZrangebyrankCommand.
func zrangeByRank(k *zrangeSink, z *zsetObj, start, end int64, reverse bool) {
	n := int64(z.card())
	start, end, ok := rankSpan(start, end, n)
	if !ok {
		k.begin(0)
		return
	}
	count := int(end - start + 1)
	var x *znode
	if reverse {
		x = z.zsl.byRank(int(n - start))
	} else {
		x = z.zsl.byRank(int(start + 1))
	}
	k.emitRun(x, count, reverse)
}

// zrangeByRange emits the members in a score or lex range, skipping offset
// of them and sending at most limit (all when negative). A negative offset
// gives nothing, as in Redis.
func zrangeByRange(k *zrangeSink, z *zsetObj, r zrange, offset, limit int64, reverse bool) {
	first, lo := z.zsl.firstIn(r)
	last, hi := z.zsl.lastIn(r)
	if first == nil || last == nil || offset < 0 {
		k.begin(0)
		return
	}
	avail := int64(hi - lo + 1)
	if offset >= avail {
		k.begin(0)
		return
	}
	n := avail - offset
	if limit >= 0 {
		n = min(n, limit)
	}
	x := first
	if reverse {
		x = last
	}
	switch {
	case offset == 0:
	case offset <= 16:
		for range offset {
			if reverse {
				x = x.backward
			} else {
				x = x.level[0].forward
			}
		}
	case reverse:
		x = z.zsl.byRank(hi - int(offset))
	default:
		x = z.zsl.byRank(lo + int(offset))
	}
	k.emitRun(x, int(n), reverse)
}

func (s *Server) cmdZRange(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 1, nil, zrangeAuto, zdirAuto)
}
func (s *Server) cmdZRangeStore(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 2, args[1], zrangeAuto, zdirAuto)
}
func (s *Server) cmdZRevRange(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 1, nil, zrangeRank, zdirReverse)
}
func (s *Server) cmdZRangeByScore(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 1, nil, zrangeScore, zdirForward)
}
func (s *Server) cmdZRevRangeByScore(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 1, nil, zrangeScore, zdirReverse)
}
func (s *Server) cmdZRangeByLex(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 1, nil, zrangeLex, zdirForward)
}
func (s *Server) cmdZRevRangeByLex(c *client, args [][]byte) {
	s.zrangeGeneric(c, args, 1, nil, zrangeLex, zdirReverse)
}

// ---- ZREMRANGEBY* ----

func (s *Server) zremRange(c *client, args [][]byte, rtype int) {
	key := args[1]
	start, end, rng, ok := parseZRange(c, rtype, args[2], args[3])
	if !ok {
		return
	}
	tx := s.store.Lock(key)
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, key, false)
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	removed := 0
	if rtype == zrangeRank {
		start, end, ok := rankSpan(start, end, int64(z.card()))
		if !ok {
			c.w.Int(0)
			return
		}
		x := z.zsl.byRank(int(start + 1))
		for i := start; i <= end; i++ {
			next := x.level[0].forward
			z.removeNode(x)
			removed++
			x = next
		}
	} else {
		for x, _ := z.zsl.firstIn(rng); x != nil && rng.nodeLteMax(x); {
			next := x.level[0].forward
			z.removeNode(x)
			removed++
			x = next
		}
	}
	if removed > 0 {
		c.objectShrunk(&tx, key, z.card() == 0, evZSet, zremRangeEvents[rtype])
	}
	c.w.Int(int64(removed))
}

// zremRangeEvents are the events of ZREMRANGEBY* by range type.
var zremRangeEvents = [...]string{zrangeRank: "zremrangebyrank", zrangeScore: "zremrangebyscore", zrangeLex: "zremrangebylex"}

// parseZRange parses the two ends of a range of rtype (zrangeRank,
// zrangeScore or zrangeLex): ranks, or a score or lex range. It writes the
// error reply and returns ok=false for invalid ends.
func parseZRange(c *client, rtype int, minArg, maxArg []byte) (start, end int64, rng zrange, ok bool) {
	switch rtype {
	case zrangeRank:
		if start, end, ok = parseIntPair(minArg, maxArg); !ok {
			c.w.Error(errNotInt)
		}
		return start, end, nil, ok
	case zrangeScore:
		r, ok := parseScoreRange(minArg, maxArg)
		if !ok {
			c.w.Error(errMinMaxNum)
			return 0, 0, nil, false
		}
		return 0, 0, &r, true
	}
	r, ok := parseLexRange(minArg, maxArg)
	if !ok {
		c.w.Error(errMinMaxLex)
		return 0, 0, nil, false
	}
	return 0, 0, &r, true
}

// parseIntPair parses two integer arguments.
func parseIntPair(a, b []byte) (x, y int64, ok bool) {
	x, ok1 := parseInt(a)
	y, ok2 := parseInt(b)
	return x, y, ok1 && ok2
}

// rankSpan resolves the 0-based ranks start and end (negative ones count
// from the end) in a list of n, clamped to it as Redis does; ok is false
// when the span is empty.
func rankSpan(start, end, n int64) (int64, int64, bool) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(start, 0)
	if start > end || start >= n {
		return 0, 0, false
	}
	return start, min(end, n-1), true
}

func (s *Server) cmdZRemRangeByScore(c *client, args [][]byte) { s.zremRange(c, args, zrangeScore) }
func (s *Server) cmdZRemRangeByRank(c *client, args [][]byte)  { s.zremRange(c, args, zrangeRank) }
func (s *Server) cmdZRemRangeByLex(c *client, args [][]byte)   { s.zremRange(c, args, zrangeLex) }

// ---- ZRANK, ZCOUNT, ZLEXCOUNT ----

// zrank is ZRANK/ZREVRANK with Redis 7.2's WITHSCORE option.
func (s *Server) zrank(c *client, args [][]byte, reverse bool) {
	if len(args) > 4 {
		c.w.Error(wrongArgs(string(appendLower(nil, args[0]))))
		return
	}
	withScore := false
	if len(args) == 4 {
		if !eqFold(args[3], "withscore") {
			c.w.Error(errSyntax)
			return
		}
		withScore = true
	}
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, args[1], true)
	if !ok {
		return
	}
	rank, score, found := z.rank(args[2], reverse)
	switch {
	case !found && withScore:
		c.w.NullArray()
	case !found:
		c.w.Null()
	case withScore:
		c.w.Array(2)
		c.w.Int(int64(rank))
		c.w.Double(score)
	default:
		c.w.Int(int64(rank))
	}
}

func (s *Server) cmdZRank(c *client, args [][]byte)    { s.zrank(c, args, false) }
func (s *Server) cmdZRevRank(c *client, args [][]byte) { s.zrank(c, args, true) }

// zcount answers ZCOUNT and ZLEXCOUNT from the ranks of the range's ends.
func (s *Server) zcount(c *client, args [][]byte, rtype int) {
	_, _, rng, ok := parseZRange(c, rtype, args[2], args[3])
	if !ok {
		return
	}
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, args[1], true)
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	first, lo := z.zsl.firstIn(rng)
	last, hi := z.zsl.lastIn(rng)
	if first == nil || last == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(hi - lo + 1))
}

func (s *Server) cmdZCount(c *client, args [][]byte)    { s.zcount(c, args, zrangeScore) }
func (s *Server) cmdZLexCount(c *client, args [][]byte) { s.zcount(c, args, zrangeLex) }

// ---- ZSCAN ----

// zscanWholeMax is the size up to which ZSCAN returns a sorted set in one
// reply with cursor 0, as Redis does for its compact (listpack) encoding
// (zset-max-listpack-entries).
const zscanWholeMax = 128

func (s *Server) cmdZScan(c *client, args [][]byte) {
	scanObject(s, c, args, kindZSet, 0, func(z *zsetObj, cursor uint64, opts scanOpts) {
		var items []string
		keep := func(n *znode) {
			if opts.matches(stringBytes(n.member)) {
				var tmp [32]byte
				items = append(items, n.member, string(resp.AppendDouble(tmp[:0], n.score)))
			}
		}
		if z.card() <= zscanWholeMax {
			for n := z.zsl.first(); n != nil; n = n.level[0].forward {
				keep(n)
			}
			c.writeScanReply(0, items)
			return
		}
		next := scanTab(z.dict, cursor, opts.count, func(e *memberEnt[*znode]) { keep(e.val) })
		c.writeScanReply(next, items)
	})
}

// ---- ZPOPMIN, ZPOPMAX ----

func (s *Server) zpop(c *client, args [][]byte, fromMax bool) {
	count, ok := parsePopCount(c, args)
	if !ok {
		return
	}
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	z, ok := c.lookupZSet(&tx, key, false)
	if !ok {
		return
	}
	if z == nil || count == 0 {
		c.w.Array(0)
		return
	}
	nested := count != -1 && c.w.Proto() == 3
	n := int(min(max(count, 1), int64(z.card())))
	if nested {
		c.w.Array(n)
	} else {
		c.w.Array(2 * n)
	}
	for range n {
		x := z.zsl.first()
		if fromMax {
			x = z.zsl.tail
		}
		if nested {
			c.w.Array(2)
		}
		c.w.BulkString(x.member)
		c.w.Double(x.score)
		z.removeNode(x)
	}
	event := "zpopmin"
	if fromMax {
		event = "zpopmax"
	}
	c.objectShrunk(&tx, key, z.card() == 0, evZSet, event)
}

func (s *Server) cmdZPopMin(c *client, args [][]byte) { s.zpop(c, args, false) }
func (s *Server) cmdZPopMax(c *client, args [][]byte) { s.zpop(c, args, true) }
