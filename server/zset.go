package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"unsafe"

	"github.com/sessiond/sessiond/ttl"
)

// ---- the skiplist ----

// zslMaxLevel bounds a node's level; with p = 1/4 it covers 2^64 nodes.
const zslMaxLevel = 32

// zlevel is one level of a node: the next node at this level and how many
// level-0 steps it is away (its span), which gives ranks in O(log n).
type zlevel struct {
	forward *znode
	span    int
}

// znode is a sorted set member. Nodes are ordered by score, then by member
// bytes (Redis's order). level usually aliases one, so that the three
// nodes in four that have a single level need one allocation.
type znode struct {
	member   string
	score    float64
	backward *znode
	level    []zlevel
	one      [1]zlevel
}

func newZNode(lvl int, score float64, member string) *znode {
	n := &znode{member: member, score: score}
	if lvl == 1 {
		n.level = n.one[:]
	} else {
		n.level = make([]zlevel, lvl)
	}
	return n
}

// nodeBytes is what a node of lvl levels costs, member bytes excluded.
func nodeBytes(lvl int) int {
	n := int(unsafe.Sizeof(znode{}))
	if lvl > 1 {
		n += lvl * int(unsafe.Sizeof(zlevel{}))
	}
	return n
}

// zslRandomLevel returns a level ≥ 1 where each further level has
// probability 1/4: two random bits per level.
func zslRandomLevel() int {
	return 1 + bits.TrailingZeros64(rand.Uint64()|1<<62)/2
}

// zskiplist is Redis's skiplist with spans: ordered by (score, member),
// with O(log n) insert, delete, rank and access by rank. head is a
// sentinel whose levels grow and shrink with the list's highest level.
type zskiplist struct {
	head   *znode
	tail   *znode
	length int
	bytes  int // memory of the nodes, for MemoryUsage
}

func newZSkiplist() *zskiplist {
	h := &znode{}
	h.level = h.one[:]
	return &zskiplist{head: h}
}

// before reports whether n sorts before (score, member).
func (n *znode) before(score float64, member string) bool {
	return n.score < score || (n.score == score && n.member < member)
}

// insertNode links x, whose levels are allocated, at its place.
func (l *zskiplist) insertNode(x *znode) {
	var update [zslMaxLevel]*znode
	var rank [zslMaxLevel]int
	h := l.head
	top := len(h.level)
	cur := h
	for i := top - 1; i >= 0; i-- {
		if i < top-1 {
			rank[i] = rank[i+1]
		}
		for f := cur.level[i].forward; f != nil && f.before(x.score, x.member); f = cur.level[i].forward {
			rank[i] += cur.level[i].span
			cur = f
		}
		update[i] = cur
	}
	lvl := len(x.level)
	for i := top; i < lvl; i++ {
		rank[i] = 0
		update[i] = h
		h.level = append(h.level, zlevel{span: l.length})
	}
	for i := range lvl {
		u := &update[i].level[i]
		x.level[i].forward = u.forward
		u.forward = x
		x.level[i].span = u.span - (rank[0] - rank[i])
		u.span = rank[0] - rank[i] + 1
	}
	for i := lvl; i < len(h.level); i++ {
		update[i].level[i].span++
	}
	if update[0] == h {
		x.backward = nil
	} else {
		x.backward = update[0]
	}
	if f := x.level[0].forward; f != nil {
		f.backward = x
	} else {
		l.tail = x
	}
	l.length++
}

// insert adds a new node; the member must not be in the list.
func (l *zskiplist) insert(score float64, member string) *znode {
	x := newZNode(zslRandomLevel(), score, member)
	l.bytes += nodeBytes(len(x.level))
	l.insertNode(x)
	return x
}

// findUpdate fills update with the last node before (score, member) at
// each level.
func (l *zskiplist) findUpdate(score float64, member string, update *[zslMaxLevel]*znode) {
	cur := l.head
	for i := len(l.head.level) - 1; i >= 0; i-- {
		for f := cur.level[i].forward; f != nil && f.before(score, member); f = cur.level[i].forward {
			cur = f
		}
		update[i] = cur
	}
}

// unlink removes x given the update vector findUpdate returned for it.
func (l *zskiplist) unlink(x *znode, update *[zslMaxLevel]*znode) {
	h := l.head
	for i := range h.level {
		u := &update[i].level[i]
		if u.forward == x {
			u.span += x.level[i].span - 1
			u.forward = x.level[i].forward
		} else {
			u.span--
		}
	}
	if f := x.level[0].forward; f != nil {
		f.backward = x.backward
	} else {
		l.tail = x.backward
	}
	for len(h.level) > 1 && h.level[len(h.level)-1].forward == nil {
		h.level = h.level[:len(h.level)-1]
	}
	l.length--
}

// remove unlinks node x (which is in the list) and frees its accounting.
func (l *zskiplist) remove(x *znode) {
	var update [zslMaxLevel]*znode
	l.findUpdate(x.score, x.member, &update)
	l.unlink(x, &update)
	l.bytes -= nodeBytes(len(x.level))
}

// updateScore moves x to newScore, in place when its neighbours allow.
func (l *zskiplist) updateScore(x *znode, newScore float64) {
	if (x.backward == nil || x.backward.score < newScore) &&
		(x.level[0].forward == nil || x.level[0].forward.score > newScore) {
		x.score = newScore
		return
	}
	var update [zslMaxLevel]*znode
	l.findUpdate(x.score, x.member, &update)
	l.unlink(x, &update)
	x.score = newScore
	l.insertNode(x)
}

// rankOf returns the 1-based rank of x, which is in the list.
func (l *zskiplist) rankOf(x *znode) int {
	rank := 0
	cur := l.head
	for i := len(l.head.level) - 1; i >= 0; i-- {
		for f := cur.level[i].forward; f != nil && (f.before(x.score, x.member) || f == x); f = cur.level[i].forward {
			rank += cur.level[i].span
			cur = f
		}
		if cur == x {
			return rank
		}
	}
	return rank
}

// byRank returns the node of 1-based rank (1 ≤ rank ≤ length).
func (l *zskiplist) byRank(rank int) *znode {
	traversed := 0
	cur := l.head
	for i := len(l.head.level) - 1; i >= 0; i-- {
		for cur.level[i].forward != nil && traversed+cur.level[i].span <= rank {
			traversed += cur.level[i].span
			cur = cur.level[i].forward
		}
		if traversed == rank {
			return cur
		}
	}
	return nil
}

// first returns the lowest node, or nil.
func (l *zskiplist) first() *znode { return l.head.level[0].forward }

// ---- ranges ----

// scoreRange is a ZRANGEBYSCORE interval; minEx/maxEx exclude the bound.
type scoreRange struct {
	min, max     float64
	minEx, maxEx bool
}

func (r *scoreRange) gteMin(v float64) bool {
	if r.minEx {
		return v > r.min
	}
	return v >= r.min
}

func (r *scoreRange) lteMax(v float64) bool {
	if r.maxEx {
		return v < r.max
	}
	return v <= r.max
}

func (r *scoreRange) empty() bool {
	return r.min > r.max || (r.min == r.max && (r.minEx || r.maxEx))
}

// lexBound is one end of a ZRANGEBYLEX interval: a string, or "-"/"+" (inf
// -1/+1), which sort before/after every string.
type lexBound struct {
	s   string
	inf int8
	ex  bool
}

// cmpLex compares a member with a bound.
func cmpLex(v string, b *lexBound) int {
	switch b.inf {
	case -1:
		return 1
	case 1:
		return -1
	}
	switch {
	case v < b.s:
		return -1
	case v > b.s:
		return 1
	}
	return 0
}

type lexRange struct{ min, max lexBound }

func (r *lexRange) gteMin(v string) bool {
	c := cmpLex(v, &r.min)
	return c > 0 || (c == 0 && !r.min.ex)
}

func (r *lexRange) lteMax(v string) bool {
	c := cmpLex(v, &r.max)
	return c < 0 || (c == 0 && !r.max.ex)
}

func (r *lexRange) empty() bool {
	a, b := &r.min, &r.max
	var c int
	switch {
	case a.inf == b.inf && a.inf != 0:
		c = 0
	case a.inf == -1 || b.inf == 1:
		c = -1
	case a.inf == 1 || b.inf == -1:
		c = 1
	default:
		c = cmpLex(a.s, b)
	}
	return c > 0 || (c == 0 && (a.ex || b.ex))
}

// zrange is a score or a lex range, for the functions that walk either.
type zrange interface {
	empty() bool
	nodeGteMin(n *znode) bool
	nodeLteMax(n *znode) bool
}

func (r *scoreRange) nodeGteMin(n *znode) bool { return r.gteMin(n.score) }
func (r *scoreRange) nodeLteMax(n *znode) bool { return r.lteMax(n.score) }
func (r *lexRange) nodeGteMin(n *znode) bool   { return r.gteMin(n.member) }
func (r *lexRange) nodeLteMax(n *znode) bool   { return r.lteMax(n.member) }

// inRange reports whether some part of the list can be in r.
func (l *zskiplist) inRange(r zrange) bool {
	if r.empty() || l.tail == nil {
		return false
	}
	return r.nodeGteMin(l.tail) && r.nodeLteMax(l.first())
}

// firstIn returns the first node in r and its 1-based rank, or nil.
func (l *zskiplist) firstIn(r zrange) (*znode, int) {
	if !l.inRange(r) {
		return nil, 0
	}
	rank := 0
	cur := l.head
	for i := len(l.head.level) - 1; i >= 0; i-- {
		for f := cur.level[i].forward; f != nil && !r.nodeGteMin(f); f = cur.level[i].forward {
			rank += cur.level[i].span
			cur = f
		}
	}
	x := cur.level[0].forward
	if x == nil || !r.nodeLteMax(x) {
		return nil, 0
	}
	return x, rank + 1
}

// lastIn returns the last node in r and its 1-based rank, or nil.
func (l *zskiplist) lastIn(r zrange) (*znode, int) {
	if !l.inRange(r) {
		return nil, 0
	}
	rank := 0
	cur := l.head
	for i := len(l.head.level) - 1; i >= 0; i-- {
		for f := cur.level[i].forward; f != nil && r.nodeLteMax(f); f = cur.level[i].forward {
			rank += cur.level[i].span
			cur = f
		}
	}
	if cur == l.head || !r.nodeGteMin(cur) {
		return nil, 0
	}
	return cur, rank
}

// ---- zsetObj ----

// zsetObj is the value of a sorted set key: a skiplist for order and ranks,
// and a member table (member → node) for lookups and ZSCAN's cursor. Both
// share the member strings. A nil *zsetObj is the empty sorted set of a
// missing key to card, nodeOf and rank.
type zsetObj struct {
	zsl  *zskiplist
	dict *memberTab[*znode]
}

var _ persistedObject = (*zsetObj)(nil)

func newZSet(hint int) *zsetObj {
	return &zsetObj{zsl: newZSkiplist(), dict: newMemberTab[*znode](hint)}
}

func (z *zsetObj) card() int {
	if z == nil {
		return 0
	}
	return z.zsl.length
}

// node returns member's node, or nil.
func (z *zsetObj) node(member string) *znode {
	if i := z.dict.find(member); i >= 0 {
		return z.dict.at(i).val
	}
	return nil
}

// nodeOf is node for a member held as bytes (not copied).
func (z *zsetObj) nodeOf(member []byte) *znode {
	if z == nil {
		return nil
	}
	if i := z.dict.findBytes(member); i >= 0 {
		return z.dict.at(i).val
	}
	return nil
}

// insertNew adds a member that is not in the set.
func (z *zsetObj) insertNew(score float64, member string) {
	if score == 0 {
		score = 0 // no -0: Redis's compact encoding stores it as 0
	}
	n := z.zsl.insert(score, member)
	z.dict.insertNew(member, n)
}

// setScore changes n's score.
func (z *zsetObj) setScore(n *znode, score float64) {
	if score == 0 {
		score = 0
	}
	z.zsl.updateScore(n, score)
}

// removeNode deletes n from the set.
func (z *zsetObj) removeNode(n *znode) {
	z.zsl.remove(n)
	z.dict.remove(n.member)
}

// ZADD flags (input) and outcomes.
const (
	zaddNX = 1 << iota
	zaddXX
	zaddGT
	zaddLT
	zaddIncr
)

const (
	zaddAdded = 1 << iota
	zaddUpdated
	zaddNop
)

// add is Redis's zsetAdd: it applies one score/member pair under flags and
// returns the resulting score, what happened, and ok=false when the result
// would be NaN (nothing changes then).
func (z *zsetObj) add(score float64, member []byte, flags int) (newScore float64, out int, ok bool) {
	if math.IsNaN(score) {
		return 0, 0, false
	}
	if n := z.nodeOf(member); n != nil {
		if flags&zaddNX != 0 {
			return 0, zaddNop, true
		}
		cur := n.score
		if flags&zaddIncr != 0 {
			score += cur
			if math.IsNaN(score) {
				return 0, 0, false
			}
		}
		if (flags&zaddLT != 0 && score >= cur) || (flags&zaddGT != 0 && score <= cur) {
			return 0, zaddNop, true
		}
		if score != cur {
			z.setScore(n, score)
			out = zaddUpdated
		}
		return score, out, true
	}
	if flags&zaddXX != 0 {
		return 0, zaddNop, true
	}
	z.insertNew(score, string(member))
	return score, zaddAdded, true
}

// remove deletes member and reports whether it was there.
func (z *zsetObj) remove(member []byte) bool {
	n := z.nodeOf(member)
	if n == nil {
		return false
	}
	z.removeNode(n)
	return true
}

// rank returns member's 0-based rank (from the top when reverse) and score.
func (z *zsetObj) rank(member []byte, reverse bool) (int, float64, bool) {
	n := z.nodeOf(member)
	if n == nil {
		return 0, 0, false
	}
	r := z.zsl.rankOf(n)
	if reverse {
		return z.card() - r, n.score, true
	}
	return r - 1, n.score, true
}

// MemoryUsage implements ttl.Object. It is O(1).
func (z *zsetObj) MemoryUsage() int {
	return int(unsafe.Sizeof(*z)) + int(unsafe.Sizeof(*z.zsl)) + nodeBytes(len(z.zsl.head.level)) +
		z.zsl.bytes + z.dict.memory()
}

// Clone implements COPY's duplication.
func (z *zsetObj) Clone() ttl.Object {
	c := newZSet(z.card())
	for n := z.zsl.first(); n != nil; n = n.level[0].forward {
		c.insertNew(n.score, n.member)
	}
	return c
}

// Sorted set encoding (appendBinary / decodeZSet), version 1:
//
//	byte    1 (version)
//	uvarint n (number of members, ≥ 1)
//	n ×     uvarint len, member bytes, 8-byte little-endian IEEE 754 score
//
// in ascending order.
const zsetCodecVersion = 1

func (z *zsetObj) appendBinary(dst []byte) []byte {
	dst = append(dst, zsetCodecVersion)
	dst = binary.AppendUvarint(dst, uint64(z.card()))
	for n := z.zsl.first(); n != nil; n = n.level[0].forward {
		dst = binary.AppendUvarint(dst, uint64(len(n.member)))
		dst = append(dst, n.member...)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(n.score))
	}
	return dst
}

// errMalformedZSet is wrapped by decodeZSet's errors.
var errMalformedZSet = errors.New("server: malformed sorted set encoding")

// decodeZSet rebuilds a sorted set from appendBinary's output. Malformed
// input (truncated, trailing bytes, a NaN score, a duplicate member, an
// empty set) is an error.
func decodeZSet(b []byte) (*zsetObj, error) {
	if len(b) < 1 || b[0] != zsetCodecVersion {
		return nil, fmt.Errorf("%w: bad header", errMalformedZSet)
	}
	b = b[1:]
	n, k := strictUvarint(b)
	// Each member takes at least 9 bytes, which bounds the preallocation.
	if k <= 0 || n == 0 || n > uint64(len(b))/9 {
		return nil, fmt.Errorf("%w: bad member count", errMalformedZSet)
	}
	b = b[k:]
	z := newZSet(int(n))
	for range n {
		l, k := strictUvarint(b)
		if k <= 0 || l > uint64(len(b)-k) || uint64(len(b)-k)-l < 8 {
			return nil, fmt.Errorf("%w: truncated member", errMalformedZSet)
		}
		m := string(b[k : k+int(l)])
		b = b[k+int(l):]
		score := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		if math.IsNaN(score) {
			return nil, fmt.Errorf("%w: NaN score", errMalformedZSet)
		}
		if z.node(m) != nil {
			return nil, fmt.Errorf("%w: duplicate member", errMalformedZSet)
		}
		z.insertNew(score, m)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errMalformedZSet)
	}
	return z, nil
}

// ---- number parsing as Redis does it ----

func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func isHexDigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'f')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// hasPrefixFold reports whether b starts with the lower-case ASCII word.
func hasPrefixFold(b []byte, word string) bool {
	return len(b) >= len(word) && eqFold(b[:len(word)], word)
}

// strtod parses the longest prefix of b that C's strtod (glibc) accepts:
// leading white space, a sign, then a decimal or hexadecimal ("0x…", with
// an optional binary exponent "p…") number, "inf", "infinity" or "nan"
// ("nan(…)"), case-insensitive. It returns the value, the length of the
// prefix (0 when there is no number, as strtod's end pointer equals its
// input then), and erange when a finite literal overflowed to an infinity
// or underflowed to zero (strtod's ERANGE cases that Redis rejects).
func strtod(b []byte) (f float64, n int, erange bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	sign := func(v float64) float64 {
		if neg {
			return -v
		}
		return v
	}
	rest := b[i:]
	switch {
	case hasPrefixFold(rest, "inf"):
		if hasPrefixFold(rest, "infinity") {
			return sign(math.Inf(1)), i + 8, false
		}
		return sign(math.Inf(1)), i + 3, false
	case hasPrefixFold(rest, "nan"):
		j := i + 3
		if j < len(b) && b[j] == '(' {
			k := j + 1
			for k < len(b) && (isDigit(b[k]) || ('a' <= b[k]|0x20 && b[k]|0x20 <= 'z') || b[k] == '_') {
				k++
			}
			if k < len(b) && b[k] == ')' {
				j = k + 1
			}
		}
		return sign(math.NaN()), j, false
	case len(rest) >= 2 && rest[0] == '0' && rest[1]|0x20 == 'x':
		if v, m, er, ok := parseHexFloat(rest[2:]); ok {
			return sign(v), i + 2 + m, er
		}
	}
	// Decimal: digits [. digits] [e [sign] digits], at least one digit.
	j, digits, nonzero := scanMantissa(b, i, false)
	if digits == 0 {
		return 0, 0, false
	}
	j = scanExponent(b, j, 'e')
	v, err := strconv.ParseFloat(string(b[i:j]), 64)
	erange = err != nil || (v == 0 && nonzero)
	return sign(v), j, erange
}

// parseHexFloat parses the part of a hexadecimal float after "0x": hex
// digits with an optional point (at least one digit), then an optional
// binary exponent. ok is false when there is no digit (strtod then reads
// just the "0").
func parseHexFloat(b []byte) (v float64, n int, erange, ok bool) {
	j, digits, nonzero := scanMantissa(b, 0, true)
	if digits == 0 {
		return 0, 0, false, false
	}
	mant := b[:j]
	exp := "p0"
	if k := scanExponent(b, j, 'p'); k > j {
		exp = "p" + string(b[j+1:k])
		j = k
	}
	v, err := strconv.ParseFloat("0x"+string(mant)+exp, 64)
	return v, j, err != nil || (v == 0 && nonzero), true
}

// scanMantissa reads the digits (hexadecimal ones when hex) of a number's
// mantissa, with an optional point, from b[j:]: where they end, how many
// digits there are, and whether one is not 0.
func scanMantissa(b []byte, j int, hex bool) (end, digits int, nonzero bool) {
	isDig := isDigit
	if hex {
		isDig = isHexDigit
	}
	point := false
	for ; j < len(b); j++ {
		switch {
		case isDig(b[j]):
			nonzero = nonzero || b[j] != '0'
			digits++
		case b[j] == '.' && !point:
			point = true
		default:
			return j, digits, nonzero
		}
	}
	return j, digits, nonzero
}

// scanExponent reads an exponent at b[j:], the marker (lower case, matched
// in either case), an optional sign and at least one decimal digit, and
// returns where it ends: j itself when there is none.
func scanExponent(b []byte, j int, marker byte) int {
	if j >= len(b) || b[j]|0x20 != marker {
		return j
	}
	k := j + 1
	if k < len(b) && (b[k] == '+' || b[k] == '-') {
		k++
	}
	if k >= len(b) || !isDigit(b[k]) {
		return j
	}
	for k < len(b) && isDigit(b[k]) {
		k++
	}
	return k
}

// parseScore parses a score or increment the way Redis's string2d does:
// the whole argument must be a number, without leading space, not NaN, and
// not out of range.
func parseScore(b []byte) (float64, bool) {
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	f, n, erange := strtod(b)
	if n != len(b) || erange || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseScoreBound parses one end of a score range as Redis's zslParseRange:
// an optional "(" for an exclusive bound, then strtod, which must stop at
// the end of the argument (or a NUL byte); NaN is rejected, anything else
// (an empty string is 0, leading space, overflow to inf) accepted.
func parseScoreBound(b []byte) (v float64, ex, ok bool) {
	if len(b) > 0 && b[0] == '(' {
		ex = true
		b = b[1:]
	}
	f, n, _ := strtod(b)
	if (n != len(b) && b[n] != 0) || math.IsNaN(f) {
		return 0, false, false
	}
	return f, ex, true
}

func parseScoreRange(minArg, maxArg []byte) (scoreRange, bool) {
	var r scoreRange
	var ok1, ok2 bool
	r.min, r.minEx, ok1 = parseScoreBound(minArg)
	r.max, r.maxEx, ok2 = parseScoreBound(maxArg)
	return r, ok1 && ok2
}

// parseLexBound parses "-", "+", "(member" or "[member".
func parseLexBound(b []byte) (lexBound, bool) {
	if len(b) == 0 {
		return lexBound{}, false
	}
	switch b[0] {
	case '+', '-':
		if len(b) > 1 && b[1] != 0 {
			return lexBound{}, false
		}
		if b[0] == '+' {
			return lexBound{inf: 1, ex: true}, true
		}
		return lexBound{inf: -1, ex: true}, true
	case '(':
		return lexBound{s: string(b[1:]), ex: true}, true
	case '[':
		return lexBound{s: string(b[1:])}, true
	}
	return lexBound{}, false
}

func parseLexRange(minArg, maxArg []byte) (lexRange, bool) {
	var r lexRange
	var ok1, ok2 bool
	r.min, ok1 = parseLexBound(minArg)
	r.max, ok2 = parseLexBound(maxArg)
	return r, ok1 && ok2
}
