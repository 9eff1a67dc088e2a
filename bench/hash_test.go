package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hashReply is the HGETALL reply of a session hash bench wrote for key idx
// at generation gen, fields in the given order (nil: the usual order).
func hashReply(p *payloadGen, idx, gen uint64, order []int) string {
	vals := [numHashFields]string{
		string(appendCreation(nil, idx)), strconv.FormatUint(gen, 10), "1800",
		string(appendUser(nil, idx)), string(p.appendValue(nil, idx, gen)),
	}
	if order == nil {
		order = []int{0, 1, 2, 3, 4}
	}
	s := "*" + strconv.Itoa(2*len(order)) + "\r\n"
	for _, f := range order {
		s += bulk([]byte(hashFields[f])) + bulk([]byte(vals[f]))
	}
	return s
}

func hmgetReply(p *payloadGen, idx, gen uint64) string {
	return "*3\r\n" + bulk(appendCreation(nil, idx)) + bulk([]byte(strconv.FormatUint(gen, 10))) + bulk(appendUser(nil, idx))
}

func TestHashCommandEncoding(t *testing.T) {
	cfg := &config{KeyPrefix: "sess:", KeySize: 37, ValueSize: 30, TTL: 1800e9, Seed: 1}
	c := newCmdBuilder(cfg)
	rd := newRespReader(strings.NewReader(string(c.append(nil, opHLogin, 5, 7))), 4096)
	hset, err := rd.readReply()
	require.NoError(t, err)
	require.Len(t, hset.Elems, 12)
	assert.Equal(t, "HSET", hset.Elems[0].Str)
	assert.Equal(t, c.keys.key(5), hset.Elems[1].Str)
	got := map[string]string{}
	for i := 2; i < 12; i += 2 {
		got[hset.Elems[i].Str] = hset.Elems[i+1].Str
	}
	assert.Equal(t, "1700000000005", got["creationTime"])
	assert.Equal(t, "7", got["lastAccessedTime"])
	assert.Equal(t, "1800", got["maxInactiveInterval"])
	assert.Equal(t, "user-0000000005", got["attr:user"])
	assert.Len(t, got["attr:payload"], 30)
	pexp, err := rd.readReply()
	require.NoError(t, err)
	require.Len(t, pexp.Elems, 3)
	assert.Equal(t, []string{"PEXPIRE", c.keys.key(5), "1800000"}, []string{pexp.Elems[0].Str, pexp.Elems[1].Str, pexp.Elems[2].Str})
}

func TestHashVerifier(t *testing.T) {
	p := newPayloadGen(fixedSize(100))
	kg, _ := newKeyGen("sess:", 37)
	all := hashReply(p, 3, 0, nil)
	g1, g9 := writeGen(1, 1, 1), writeGen(0, 1, 9)
	type step struct {
		op    opKind
		gen   uint64
		reply string // both replies
		want  string // "" right, else a substring of the mismatch
		null  bool
		err   string
	}
	for _, tc := range []struct {
		name  string
		exact bool
		steps []step
	}{
		{"populated read", true, []step{{opHGetAll, 0, all + ":1\r\n", "", false, ""}, {opHMGet, 0, hmgetReply(p, 3, 0) + ":1\r\n", "", false, ""}}},
		{"any field order", true, []step{{opHGetAll, 0, hashReply(p, 3, 0, []int{4, 2, 0, 3, 1}) + ":1\r\n", "", false, ""}}},
		{"login then read", true, []step{{opHLogin, g9, ":0\r\n:1\r\n", "", false, ""},
			{opHGetAll, 0, hashReply(p, 3, g9, nil) + ":1\r\n", "", false, ""},
			{opHGetAll, 0, all + ":1\r\n", "generation 0, but generation " + strconv.FormatUint(g9, 10) + " was written last", false, ""}}},
		{"logout then read", true, []step{{opDel, 0, ":1\r\n", "", false, ""}, {opHGetAll, 0, "*0\r\n:0\r\n", "", true, ""},
			{opHMGet, 0, "*3\r\n$-1\r\n$-1\r\n$-1\r\n:0\r\n", "", true, ""}, {opHLogin, g1, ":5\r\n:1\r\n", "", false, ""}}},
		{"missing populated", true, []step{{opHGetAll, 0, "*0\r\n:0\r\n", "nil, but generation 0", true, ""}}},
		{"pexpire after a hit", true, []step{{opHGetAll, 0, all + ":0\r\n", "0 right after", false, ""}}},
		{"login adds to a present session", true, []step{{opHLogin, g1, ":5\r\n:1\r\n", "5 fields added", false, ""}}},
		{"hset odd count", false, []step{{opHLogin, g1, ":3\r\n:1\r\n", "want integer 0 or 5", false, ""}}},
		{"partial hash", false, []step{{opHGetAll, 0, "*4\r\n" + bulk([]byte("creationTime")) + bulk(appendCreation(nil, 3)) +
			bulk([]byte("attr:user")) + bulk(appendUser(nil, 3)) + ":1\r\n", "2 fields, want all 5", false, ""}}},
		{"partial hmget", false, []step{{opHMGet, 0, "*3\r\n$-1\r\n$1\r\n0\r\n$-1\r\n:1\r\n", "partial session", false, ""}}},
		{"wrong user", false, []step{{opHMGet, 0, "*3\r\n" + bulk(appendCreation(nil, 3)) + "$1\r\n0\r\n" + bulk(appendUser(nil, 4)) + ":1\r\n", "attr:user", false, ""}}},
		{"fields of different writes", false, []step{{opHGetAll, 0, strings.Replace(all, "$1\r\n0\r\n", bulk([]byte(strconv.FormatUint(g9, 10))), 1) + ":1\r\n", "different writes", false, ""}}},
		{"unknown field", false, []step{{opHGetAll, 0, "*2\r\n$1\r\nx\r\n$1\r\ny\r\n:1\r\n", `unexpected field "x"`, false, ""}}},
		{"not an array", false, []step{{opHGetAll, 0, "$1\r\nx\r\n:1\r\n", "want an array", false, ""}}},
		{"unknown command", false, []step{{opHGetAll, 0, "-ERR unknown command 'HGETALL'\r\n:0\r\n", "", false, "ERR"},
			{opHLogin, g1, "-ERR unknown command 'HSET'\r\n:0\r\n", "", false, "ERR"}}},
		{"wrongtype", false, []step{{opHMGet, 0, "-WRONGTYPE x\r\n-WRONGTYPE y\r\n", "", false, "WRONGTYPE"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config{Conns: 4, Keys: 10, TTL: 1800e9, ValueSize: 100, Workload: wlHash, KeyPrefix: "sess:", KeySize: 37}
			if tc.exact {
				cfg.Conns = 1
			}
			cfg.Mix, _ = parseMix(defaultHashMix)
			ks := newKeyState(cfg, time.Now())
			for i := range ks.state {
				ks.state[i] = stAbsent + 1 // populated
			}
			var stream string
			for _, s := range tc.steps {
				stream += s.reply
			}
			w := &worker{cfg: cfg, ver: newVerifier(cfg, p, kg, ks), kinds: make([]opKind, 1), idxs: []uint64{3}, gens: make([]uint64, 1),
				c: &conn{rd: newRespReader(strings.NewReader(stream), 4096)}}
			for i, s := range tc.steps {
				w.kinds[0], w.gens[0] = s.op, s.gen
				wrong0 := w.ver.wrong
				errWord, null, wrong, err := w.readReplies(0)
				require.NoError(t, err, "step %d", i)
				assert.Equal(t, s.err, string(errWord), "step %d", i)
				if s.op != opDel {
					assert.Equal(t, s.null, null, "step %d null", i)
				}
				if s.want == "" {
					assert.False(t, wrong, "step %d: %v", i, w.ver.mismatches)
				} else {
					assert.True(t, wrong, "step %d", i)
					require.Greater(t, w.ver.wrong, wrong0)
					assert.Contains(t, w.ver.mismatches[len(w.ver.mismatches)-1], s.want, "step %d", i)
				}
			}
		})
	}
}

func TestHashMixValidation(t *testing.T) {
	cfg, err := parseArgs([]string{"--workload", "hash-session"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, defaultHashMix, cfg.MixText)
	assert.True(t, cfg.populates())
	for args, want := range map[string]string{
		"--workload hash-session --mix getex=1":        "getex is not an op of --workload hash-session",
		"--workload session --mix hgetall=1":           "hgetall is not an op of --workload session",
		"--workload hash-session --ttl 0s":             "positive TTL",
		"--workload hash-session --mix del=1,logout=1": "given twice",
	} {
		_, err := parseArgs(strings.Fields(args), &strings.Builder{})
		assert.ErrorContains(t, err, want, args)
	}
	cfg, err = parseArgs(strings.Fields("--workload hash-session --mix login=1,logout=1"), &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []opKind{opHLogin, opDel}, cfg.Mix.ops)
}

func TestProgressLine(t *testing.T) {
	spec := progressSpec{label: "session a:1 round 1/2", unit: "ops"}
	assert.Equal(t, "session a:1 round 1/2    12s  1,234,567 ops  123,457 ops/s  p99 1,234 µs  ETA 8s",
		progressLine(spec, 12*time.Second, 1234567, 123456.7, 1234, 7600*time.Millisecond))
	spec = progressSpec{label: "populate", unit: "keys", total: 1000}
	assert.Equal(t, "populate     1s  250 keys (25%)  250 keys/s", progressLine(spec, time.Second, 250, 250, -1, -1))
}
