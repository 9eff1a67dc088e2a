package main

import (
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMix(t *testing.T) {
	m, err := parseMix("getex=80,set=15,del=5")
	require.NoError(t, err)
	assert.Equal(t, []opKind{opGetex, opSet, opDel}, m.ops)
	assert.Equal(t, uint64(100), m.total)
	assert.Equal(t, "GETEX 80%, SET 15%, DEL 5%", m.String())

	m, err = parseMix(" GET = 1 , set=1,del=0 ")
	require.NoError(t, err)
	assert.Equal(t, []opKind{opGet, opSet}, m.ops, "zero weights are dropped")
	assert.False(t, m.has(opDel))

	m, err = parseMix("getex=70,update=10,get+expire=15,del=5")
	require.NoError(t, err)
	assert.Equal(t, []opKind{opGetex, opUpdate, opGetExpire, opDel}, m.ops)
	assert.Equal(t, "GETEX 70%, GET+EXPIRE 15%, SET-KEEPTTL 10%, DEL 5%", m.String())

	for in, want := range map[string]string{
		"":                 "no op with a positive weight",
		"del=0":            "no op with a positive weight",
		"getex":            "want op=weight",
		"hget=1":           "unknown op",
		"get=1,get=2":      "given twice",
		"get=-1":           "non-negative integer",
		"get=1.5":          "non-negative integer",
		"get=99999999999x": "non-negative integer",
	} {
		_, err := parseMix(in)
		assert.ErrorContains(t, err, want, in)
	}
}

func TestMixPickExact(t *testing.T) {
	// Over every r in [0, total) each op is picked exactly weight times.
	m, err := parseMix("getex=80,set=15,del=5")
	require.NoError(t, err)
	got := map[opKind]uint64{}
	for r := range m.total {
		got[m.pick(r)]++
	}
	assert.Equal(t, map[opKind]uint64{opGetex: 80, opSet: 15, opDel: 5}, got)
}

func TestMixPickRatios(t *testing.T) {
	// Driven by the workers' generator, the observed ratios match the weights.
	m, err := parseMix("getex=80,set=15,del=5")
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 0))
	const n = 1_000_000
	var got [numOpKinds]int
	for range n {
		got[m.pick(rng.Uint64N(m.total))]++
	}
	assert.InDelta(t, 0.80, float64(got[opGetex])/n, 0.003)
	assert.InDelta(t, 0.15, float64(got[opSet])/n, 0.003)
	assert.InDelta(t, 0.05, float64(got[opDel])/n, 0.002)
	assert.Zero(t, got[opGet])
}

func TestScheduleOffsets(t *testing.T) {
	// 4 connections at 1000 ops/s: together one op per ms, each connection
	// one per 4 ms, staggered by 1 ms.
	const conns = 4
	var all []time.Duration
	for c := range conns {
		s := schedule{conn: c, conns: conns, rate: 1000}
		assert.Equal(t, time.Duration(c)*time.Millisecond, s.offset(0))
		assert.Equal(t, 4*time.Millisecond, s.offset(1)-s.offset(0))
		for k := range int64(250) {
			all = append(all, s.offset(k))
		}
	}
	// Merged, the schedule is exactly one op per 1/rate.
	seen := map[time.Duration]bool{}
	for _, d := range all {
		seen[d] = true
	}
	for i := range 1000 {
		assert.True(t, seen[time.Duration(i)*time.Millisecond], "op at %d ms", i)
	}
}

func TestScheduleDue(t *testing.T) {
	for _, tc := range []struct {
		conn, conns int
		rate        float64
	}{{0, 1, 1000}, {3, 4, 1000}, {7, 50, 123_456.7}, {1, 3, 7}} {
		s := schedule{conn: tc.conn, conns: tc.conns, rate: tc.rate}
		assert.Equal(t, int64(0), s.due(s.offset(0)-1))
		for k := range int64(2000) {
			o := s.offset(k)
			require.Equal(t, k+1, s.due(o), "at op %d's own time", k)
			require.Equal(t, k+1, s.due(s.offset(k+1)-1), "just before op %d", k+1)
		}
	}
	// Over a long window the connections together are due rate * window ops.
	const conns, rate = 50, 100_000.0
	window := 10 * time.Second
	var total int64
	for c := range conns {
		total += schedule{conn: c, conns: conns, rate: rate}.due(window - 1)
	}
	assert.Equal(t, int64(rate*window.Seconds()), total)
}

func TestZipfKeys(t *testing.T) {
	// --dist zipf: rank 0 is the most popular key, about 1/(1+i)^s.
	cfg, err := parseArgs([]string{"--dist", "zipf", "--zipf-s", "1.1", "--keys", "100000"}, io.Discard)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	w := &worker{rng: rng, zipf: rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Keys-1))}
	counts := map[uint64]int{}
	const n = 50_000
	for range n {
		k := w.nextKey(uint64(cfg.Keys))
		if k >= uint64(cfg.Keys) {
			t.Fatalf("key %d out of range", k)
		}
		counts[k]++
	}
	assert.Greater(t, counts[0], counts[1])
	assert.Greater(t, counts[1], counts[10])
	assert.InDelta(t, math.Pow(2, 1.1), float64(counts[0])/float64(counts[1]), 0.3)
	assert.Greater(t, float64(counts[0])/n, 0.05, "the top key alone takes several percent")

	u := &worker{rng: rand.New(rand.NewPCG(1, 2))}
	top := 0
	for range n {
		if u.nextKey(100000) == 0 {
			top++
		}
	}
	assert.Less(t, top, 10, "uniform: no hot key")
}
