package server

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zpair is an element of the sorted-slice model.
type zpair struct {
	member string
	score  float64
}

func zpairCmp(a, b zpair) int {
	if c := cmp.Compare(a.score, b.score); c != 0 {
		return c
	}
	return cmp.Compare(a.member, b.member)
}

// zmodel is a sorted slice: the obviously correct sorted set.
type zmodel struct{ pairs []zpair }

func (m *zmodel) find(member string) int {
	return slices.IndexFunc(m.pairs, func(p zpair) bool { return p.member == member })
}

func (m *zmodel) set(member string, score float64) {
	if i := m.find(member); i >= 0 {
		m.pairs = slices.Delete(m.pairs, i, i+1)
	}
	p := zpair{member, score}
	i, _ := slices.BinarySearchFunc(m.pairs, p, zpairCmp)
	m.pairs = slices.Insert(m.pairs, i, p)
}

func (m *zmodel) remove(member string) bool {
	i := m.find(member)
	if i < 0 {
		return false
	}
	m.pairs = slices.Delete(m.pairs, i, i+1)
	return true
}

// inRange returns the model's members in r, in order.
func (m *zmodel) inRange(r zrange) []string {
	var out []string
	for _, p := range m.pairs {
		n := &znode{member: p.member, score: p.score}
		if r.nodeGteMin(n) && r.nodeLteMax(n) {
			out = append(out, p.member)
		}
	}
	return out
}

// checkZSet verifies the sorted set against the model: order both ways,
// spans (through ranks and access by rank), backward links, the member
// table, and the memory accounting of the nodes.
func checkZSet(t *testing.T, z *zsetObj, m *zmodel) {
	t.Helper()
	require.Equal(t, len(m.pairs), z.card())
	require.Equal(t, len(m.pairs), z.dict.len())
	i := 0
	var prev *znode
	bytes := 0
	for n := z.zsl.first(); n != nil; n = n.level[0].forward {
		require.Equal(t, m.pairs[i], zpair{n.member, n.score}, "position %d", i)
		require.Same(t, prev, n.backward, "backward link of %q", n.member)
		require.Equal(t, i+1, z.zsl.rankOf(n), "rank of %q", n.member)
		require.Same(t, n, z.zsl.byRank(i+1), "node of rank %d", i+1)
		require.Same(t, n, z.node(n.member))
		// Every level's span is the level-0 distance to its forward node
		// (to the end of the list for the last node of a level).
		for lv := range n.level {
			want := z.card() - (i + 1)
			if f := n.level[lv].forward; f != nil {
				want = z.zsl.rankOf(f) - (i + 1)
			}
			require.Equal(t, want, n.level[lv].span, "span of %q level %d", n.member, lv)
		}
		bytes += nodeBytes(len(n.level))
		prev = n
		i++
	}
	require.Equal(t, len(m.pairs), i)
	require.Same(t, prev, z.zsl.tail)
	require.Equal(t, bytes, z.zsl.bytes)
	h := z.zsl.head
	require.True(t, len(h.level) == 1 || h.level[len(h.level)-1].forward != nil, "no empty top level")
	for lv := range h.level {
		want := z.card()
		if f := h.level[lv].forward; f != nil {
			want = z.zsl.rankOf(f)
		}
		require.Equal(t, want, h.level[lv].span, "span of the head at level %d", lv)
	}
}

// TestZSetModel drives the skiplist with random adds (ZADD's flags
// included), score updates, removals, rank and range queries and range
// removals, and compares every step with a sorted slice.
func TestZSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	scores := []float64{math.Inf(-1), -2.5, -1, 0, 0, 0, 1, 1, 2, 3.75, 10, math.Inf(1)}
	for round := range 4 {
		z := newZSet(0)
		m := &zmodel{}
		universe := 20 + round*150
		member := func() string { return fmt.Sprintf("m%03d", rng.IntN(universe)) }
		score := func() float64 {
			if rng.IntN(3) == 0 {
				return float64(rng.IntN(100)) / 4
			}
			return scores[rng.IntN(len(scores))]
		}
		for step := range 3000 {
			switch op := rng.IntN(10); {
			case op < 4: // ZADD with flags
				mem, sc := member(), score()
				flags := []int{0, zaddNX, zaddXX, zaddGT, zaddLT, zaddIncr}[rng.IntN(6)]
				i := m.find(mem)
				newScore, out, ok := z.add(sc, []byte(mem), flags)
				var cur float64
				if i >= 0 {
					cur = m.pairs[i].score
				}
				want := sc
				if flags == zaddIncr && i >= 0 {
					want = cur + sc
				}
				switch {
				case math.IsNaN(want):
					require.False(t, ok)
				case i < 0 && flags == zaddXX, i >= 0 && flags == zaddNX,
					i >= 0 && flags == zaddGT && want <= cur, i >= 0 && flags == zaddLT && want >= cur:
					require.True(t, ok)
					require.Equal(t, zaddNop, out)
				case i < 0:
					require.Equal(t, zaddAdded, out)
					require.Equal(t, want, newScore)
					m.set(mem, want)
				default:
					require.Equal(t, want, newScore)
					if want != cur {
						require.Equal(t, zaddUpdated, out)
					} else {
						require.Zero(t, out)
					}
					m.set(mem, want)
				}
			case op < 6: // ZREM
				mem := member()
				require.Equal(t, m.remove(mem), z.remove([]byte(mem)))
			case op < 7: // ZRANK / ZREVRANK
				mem := member()
				r, sc, ok := z.rank([]byte(mem), false)
				i := m.find(mem)
				require.Equal(t, i >= 0, ok)
				if ok {
					require.Equal(t, i, r)
					require.Equal(t, m.pairs[i].score, sc)
					rr, _, _ := z.rank([]byte(mem), true)
					require.Equal(t, len(m.pairs)-1-i, rr)
				}
			case op < 8: // score and lex ranges: first, last, count
				var r zrange
				if rng.IntN(2) == 0 {
					a, b := score(), score()
					r = &scoreRange{min: a, max: b, minEx: rng.IntN(2) == 0, maxEx: rng.IntN(2) == 0}
				} else {
					bound := func() lexBound {
						switch rng.IntN(6) {
						case 0:
							return lexBound{inf: -1, ex: true}
						case 1:
							return lexBound{inf: 1, ex: true}
						}
						return lexBound{s: member(), ex: rng.IntN(2) == 0}
					}
					r = &lexRange{min: bound(), max: bound()}
				}
				want := m.inRange(r)
				// Lex ranges are only meaningful with equal scores: compare
				// them on a copy of the model whose scores are all 0.
				if _, lex := r.(*lexRange); lex {
					flat := newZSet(0)
					fm := &zmodel{}
					for _, p := range m.pairs {
						flat.insertNew(0, p.member)
						fm.set(p.member, 0)
					}
					checkRange(t, flat, r, fm.inRange(r))
				} else {
					checkRange(t, z, r, want)
				}
			case op < 9: // ZREMRANGEBYSCORE over a small interval
				a := score()
				r := &scoreRange{min: a, max: a + float64(rng.IntN(3))}
				want := m.inRange(r)
				removed := 0
				for x, _ := z.zsl.firstIn(r); x != nil && r.nodeLteMax(x); {
					next := x.level[0].forward
					z.removeNode(x)
					removed++
					x = next
				}
				require.Len(t, want, removed)
				for _, mem := range want {
					m.remove(mem)
				}
			default: // ZPOPMIN / ZPOPMAX
				if len(m.pairs) == 0 {
					continue
				}
				x, want := z.zsl.first(), m.pairs[0]
				if rng.IntN(2) == 0 {
					x, want = z.zsl.tail, m.pairs[len(m.pairs)-1]
				}
				require.Equal(t, want, zpair{x.member, x.score})
				z.removeNode(x)
				m.remove(want.member)
			}
			if step%50 == 0 {
				checkZSet(t, z, m)
			}
		}
		checkZSet(t, z, m)
		c := z.Clone().(*zsetObj)
		checkZSet(t, c, m)
	}
}

// checkRange compares firstIn, lastIn and the ranks between them with the
// model's members of r.
func checkRange(t *testing.T, z *zsetObj, r zrange, want []string) {
	t.Helper()
	first, lo := z.zsl.firstIn(r)
	last, hi := z.zsl.lastIn(r)
	if len(want) == 0 {
		require.Nil(t, first, "%+v", r)
		require.Nil(t, last, "%+v", r)
		return
	}
	require.NotNil(t, first, "%+v", r)
	require.NotNil(t, last, "%+v", r)
	require.Equal(t, want[0], first.member)
	require.Equal(t, want[len(want)-1], last.member)
	require.Equal(t, z.zsl.rankOf(first), lo)
	require.Equal(t, z.zsl.rankOf(last), hi)
	require.Equal(t, len(want), hi-lo+1)
}

func TestZSetUpdateScoreKeepsNode(t *testing.T) {
	z := newZSet(0)
	for i := range 100 {
		z.insertNew(float64(i), "m"+strconv.Itoa(i))
	}
	n := z.node("m50")
	for _, sc := range []float64{50.5, 1000, -1000, 7, 7} {
		_, _, ok := z.add(sc, []byte("m50"), 0)
		require.True(t, ok)
		require.Same(t, n, z.node("m50"), "the member table keeps pointing at the node")
		require.Equal(t, sc, n.score)
	}
	z.add(math.Copysign(0, -1), []byte("neg0"), 0)
	assert.False(t, math.Signbit(z.node("neg0").score), "-0 is stored as 0")
}

func TestStrtod(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in     string
		f      float64
		n      int
		erange bool
	}{
		{"1.5", 1.5, 3, false}, {"-0.25", -0.25, 5, false}, {"  +7x", 7, 4, false},
		{"1e10", 1e10, 4, false}, {"1E-3", 1e-3, 4, false}, {".5", .5, 2, false}, {"5.", 5, 2, false},
		{"1e", 1, 1, false}, {"1e+", 1, 1, false}, {"1e+2", 100, 4, false}, {"00012", 12, 5, false},
		{"0x10", 16, 4, false}, {"0X1.8p1", 3, 7, false}, {"0x1p-3", .125, 6, false}, {"0x", 0, 1, false},
		{"0x.8", .5, 4, false}, {"0x1p", 1, 3, false}, {"0xg", 0, 1, false},
		{"inf", math.Inf(1), 3, false}, {"-Infinity", math.Inf(-1), 9, false}, {"infinit", math.Inf(1), 3, false},
		{"nan", nan, 3, false}, {"-nan(12_ab)", nan, 11, false}, {"nan(", nan, 3, false},
		{"1e400", math.Inf(1), 5, true}, {"-1e400", math.Inf(-1), 6, true}, {"1e-400", 0, 6, true},
		{"0e-400", 0, 6, false}, {"4.9e-324", 5e-324, 8, false}, {"0x1p-1080", 0, 9, true},
		{"", 0, 0, false}, {" ", 0, 0, false}, {"-", 0, 0, false}, {".", 0, 0, false}, {"e5", 0, 0, false},
		{"1_000", 1, 1, false}, {"1,5", 1, 1, false}, {"\t\n\v\f\r 2", 2, 7, false},
	} {
		f, n, erange := strtod([]byte(tc.in))
		assert.Equal(t, tc.n, n, "%q length", tc.in)
		assert.Equal(t, tc.erange, erange, "%q erange", tc.in)
		if math.IsNaN(tc.f) {
			assert.True(t, math.IsNaN(f), "%q", tc.in)
		} else {
			assert.Equal(t, tc.f, f, "%q", tc.in)
		}
	}
}

func TestParseScoreAndBounds(t *testing.T) {
	for in, ok := range map[string]bool{
		"1": true, "-1.5e3": true, "inf": true, "-inf": true, "0x10": true, "4.9e-324": true,
		"": false, " 1": false, "1 ": false, "nan": false, "1e400": false, "1e-400": false, "abc": false, "1\x00": false,
	} {
		_, got := parseScore([]byte(in))
		assert.Equal(t, ok, got, "%q", in)
	}
	for _, tc := range []struct {
		in     string
		v      float64
		ex, ok bool
	}{
		{"1", 1, false, true}, {"(1", 1, true, true}, {"", 0, false, true}, {"(", 0, true, true},
		{" 2", 2, false, true}, {"1e400", math.Inf(1), false, true}, {"2\x00junk", 2, false, true},
		{"2 ", 0, false, false}, {"nan", 0, false, false}, {"((1", 0, false, false}, {"[1", 0, false, false},
	} {
		v, ex, ok := parseScoreBound([]byte(tc.in))
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		if tc.ok {
			assert.Equal(t, tc.v, v, "%q", tc.in)
			assert.Equal(t, tc.ex, ex, "%q", tc.in)
		}
	}
	for in, want := range map[string]lexBound{
		"-": {inf: -1, ex: true}, "+": {inf: 1, ex: true}, "(a": {s: "a", ex: true}, "[a": {s: "a"},
		"[": {s: ""}, "(": {s: "", ex: true},
	} {
		got, ok := parseLexBound([]byte(in))
		assert.True(t, ok, "%q", in)
		assert.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{"", "a", "-a", "+b", "]a"} {
		_, ok := parseLexBound([]byte(in))
		assert.False(t, ok, "%q", in)
	}
}

func TestZSetCodec(t *testing.T) {
	z := newZSet(0)
	for i, m := range []string{"a", "", "\x00\xff", "with space", "z"} {
		z.insertNew([]float64{1.5, math.Inf(-1), math.Inf(1), 0, 1.5}[i], m)
	}
	b := z.appendBinary([]byte("prefix"))
	require.Equal(t, "prefix", string(b[:6]))
	got, err := decodeZSet(b[6:])
	require.NoError(t, err)
	checkZSet(t, got, &zmodel{pairs: []zpair{{"", math.Inf(-1)}, {"with space", 0}, {"a", 1.5}, {"z", 1.5}, {"\x00\xff", math.Inf(1)}}})
	assert.Equal(t, b[6:], got.appendBinary(nil))
	obj, err := decodeObject(kindZSet, b[6:], 0)
	require.NoError(t, err)
	assert.IsType(t, &zsetObj{}, obj)

	nanBits := make([]byte, 8)
	for i := range nanBits {
		nanBits[i] = 0xff
	}
	one := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}
	for name, b := range map[string][]byte{
		"empty input":      {},
		"bad version":      append([]byte{2, 1, 1, 'a'}, one...),
		"no members":       {1, 0},
		"count too big":    append([]byte{1, 2, 1, 'a'}, one...),
		"truncated score":  {1, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0},
		"truncated member": append([]byte{1, 1, 9, 'a'}, one...),
		"NaN score":        append([]byte{1, 1, 1, 'a'}, nanBits...),
		"duplicate member": append(append(append([]byte{1, 2, 1, 'a'}, one...), 1, 'a'), one...),
		"trailing bytes":   append(append([]byte{1, 1, 1, 'a'}, one...), 0),
	} {
		_, err := decodeZSet(b)
		require.ErrorIs(t, err, errMalformedZSet, name)
		obj, err := decodeObject(kindZSet, b, 0)
		require.Error(t, err, name)
		require.True(t, obj == nil, "%s: a typed nil would look like a value", name) // not require.Nil, which passes one
	}
}

// FuzzZSetCodec decodes arbitrary bytes: never a panic, and whatever
// decodes is a valid sorted set that re-encodes in order.
func FuzzZSetCodec(f *testing.F) {
	z := newZSet(0)
	z.insertNew(1, "a")
	z.insertNew(math.Inf(-1), "b")
	z.insertNew(2.5, "")
	f.Add(z.appendBinary(nil))
	f.Add([]byte{1, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0xf0, 0x3f})
	f.Fuzz(func(t *testing.T, b []byte) {
		z, err := decodeZSet(b)
		if err != nil {
			require.Nil(t, z)
			return
		}
		m := &zmodel{}
		for n := z.zsl.first(); n != nil; n = n.level[0].forward {
			m.pairs = append(m.pairs, zpair{n.member, n.score})
		}
		require.True(t, slices.IsSortedFunc(m.pairs, zpairCmp))
		checkZSet(t, z, m)
		again, err := decodeZSet(z.appendBinary(nil))
		require.NoError(t, err)
		checkZSet(t, again, m)
	})
}

// TestZSetMemoryUsage checks MemoryUsage against the heap a sorted set
// really holds (within 25%).
func TestZSetMemoryUsage(t *testing.T) {
	for _, n := range []int{10, 1000, 20000} {
		members := make([][]byte, n)
		for i := range members {
			members[i] = []byte(fmt.Sprintf("session:%016x", i))
		}
		measured, v := memoryDelta(func() any {
			z := newZSet(0)
			for i, m := range members {
				z.add(float64(i%97), m, 0)
			}
			return z
		})
		runtime.KeepAlive(members)
		z := v.(*zsetObj)
		est := z.MemoryUsage()
		t.Logf("%d members: MemoryUsage %d, measured %d", z.card(), est, measured)
		assert.InEpsilon(t, float64(measured), float64(est), 0.25, "%d members", n)
	}
}
