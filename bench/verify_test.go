package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSizeDist(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   sizeDist
		errSub string
	}{
		{in: "700", want: sizeDist{sizeFixed, 700, 700}},
		{in: " 1 ", want: sizeDist{sizeFixed, 1, 1}},
		{in: "200-2000", want: sizeDist{sizeRange, 200, 2000}},
		{in: "5-5", want: sizeDist{sizeRange, 5, 5}},
		{in: "skewed", want: sizeDist{sizeSkewed, 100, 64 << 10}},
		{in: "0", errSub: "want 1.."},
		{in: "2000-200", errSub: "low end above"},
		{in: "x", errSub: "skewed"},
		{in: "1-x", errSub: "want 1.."},
		{in: "67108865", errSub: "want 1.."},
	} {
		got, err := parseSizeDist(tc.in)
		if tc.errSub != "" {
			assert.ErrorContains(t, err, tc.errSub, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestSizeDistShape(t *testing.T) {
	for _, spec := range []string{"700", "200-2000", "skewed"} {
		d, err := parseSizeDist(spec)
		require.NoError(t, err)
		p := newPayloadGen(d)
		var small, sum int
		seen := map[int]bool{}
		const n = 30_000
		for i := range uint64(n) {
			s := p.size(i, i%7)
			if s < d.lo || s > d.hi {
				t.Fatalf("%s: size %d out of range", spec, s)
			}
			seen[s] = true
			sum += s
			if s <= 600 {
				small++
			}
		}
		switch spec {
		case "700":
			assert.Len(t, seen, 1)
		case "200-2000":
			assert.InDelta(t, 1100, sum/n, 20, "uniform mean")
			assert.Greater(t, len(seen), 1500)
		case "skewed":
			assert.InDelta(t, 0.60, float64(small)/n, 0.01, "60% small")
			assert.InDelta(t, 1550, sum/n, 100, "mean")
		}
	}
}

func TestPayloadCheck(t *testing.T) {
	p := newPayloadGen(sizeDist{sizeRange, 27, 3000})
	v := p.appendValue(nil, 1234, 99)
	assert.Equal(t, "v00000004d2.00000000000063:", string(v[:payloadHdrLen]))
	require.Len(t, v, p.size(1234, 99))
	gen, why := p.check(v, len(v), 1234)
	assert.Empty(t, why)
	assert.Equal(t, uint64(99), gen)
	_, why = p.check(v[:40], len(v), 1234)
	assert.Empty(t, why, "a prefix of a long value checks")

	flip := func(i int) []byte {
		b := bytes.Clone(v)
		b[i] ^= 1
		return b
	}
	other := p.appendValue(nil, 1235, 99)
	for _, tc := range []struct {
		name string
		v    []byte
		want string
	}{
		{"other key", other, "another key (index 1235)"},
		{"corrupt body", flip(len(v) - 1), "corrupted"},
		{"corrupt header", flip(0), "no bench value header"},
		{"bad gen digit", append(append(bytes.Clone(v[:15]), 'X'), v[16:]...), "no bench value header"},
		{"truncated", v[:len(v)-1], "length"},
		{"extended", append(bytes.Clone(v), 'A'), "length"},
		{"garbage", []byte("hello world, this is not a session value"), "no bench value header"},
		{"short", []byte("abc"), "not the value"},
	} {
		_, why := p.check(tc.v, len(tc.v), 1234)
		assert.Contains(t, why, tc.want, tc.name)
	}

	// Values shorter than the header: the population's only.
	small := newPayloadGen(fixedSize(10))
	sv := small.appendValue(nil, 5, 0)
	assert.Len(t, sv, 10)
	_, why = small.check(sv, 10, 5)
	assert.Empty(t, why)
	_, why = small.check(sv, 20, 5)
	assert.NotEmpty(t, why, "only a prefix of a longer value")
	_, why = small.check(small.appendValue(nil, 6, 0), 10, 5)
	assert.NotEmpty(t, why)
}

func TestWriteGenUnique(t *testing.T) {
	seen := map[uint64]bool{}
	for conn := range 3 {
		for round := 1; round <= 3; round++ {
			for seq := uint64(1); seq <= 100; seq++ {
				g := writeGen(conn, round, seq)
				require.NotZero(t, g)
				require.Less(t, g, uint64(1)<<56)
				require.False(t, seen[g])
				seen[g] = true
			}
		}
	}
}

func view(s string) replyView {
	r, err := reader2([]byte(s)).readView(make([]byte, 4096))
	if err != nil {
		panic(err)
	}
	return r
}

func bulk(b []byte) string { return "$" + strconv.Itoa(len(b)) + "\r\n" + string(b) + "\r\n" }

func TestVerifierExact(t *testing.T) {
	cfg := &config{Conns: 1, Keys: 10, TTL: 0, ValueSize: 100, Workload: wlSession}
	cfg.Mix, _ = parseMix("getex=1,set=1,del=1")
	p := newPayloadGen(fixedSize(100))
	kg, _ := newKeyGen("sess:", 37)
	now := time.Now()
	g0 := bulk(p.appendValue(nil, 3, 0))
	g7 := bulk(p.appendValue(nil, 3, 7))
	type step struct {
		op    opKind
		gen   uint64
		reply string
		want  string // "" right, else a substring of the mismatch
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"populated value", []step{{opGet, 0, g0, ""}}},
		{"populated nil", []step{{opGet, 0, "$-1\r\n", "nil, but generation 0"}}},
		{"write then read", []step{{opSet, 7, "+OK\r\n", ""}, {opGetex, 0, g7, ""}}},
		{"stale read", []step{{opSet, 7, "+OK\r\n", ""}, {opGet, 0, g0, "generation 0, but generation 7"}}},
		{"read after del", []step{{opDel, 0, ":1\r\n", ""}, {opGet, 0, g0, "deleted"}, {opGet, 0, "$-1\r\n", ""}}},
		{"del twice", []step{{opDel, 0, ":1\r\n", ""}, {opDel, 0, ":1\r\n", "1 for a key that was deleted"}}},
		{"del of present says 0", []step{{opDel, 0, ":0\r\n", "0, but generation 0"}}},
		{"set not OK", []step{{opSet, 7, "+QUEUED\r\n", "want +OK"}}},
		{"del not integer", []step{{opDel, 0, "+OK\r\n", "want integer 0 or 1"}}},
		{"del 2", []step{{opDel, 0, ":2\r\n", "want integer 0 or 1"}}},
		{"get integer", []step{{opGet, 0, ":1\r\n", "want a bulk string"}}},
		{"error reply is not WRONG", []step{{opGet, 0, "-ERR x\r\n", ""}, {opSet, 1, "-OOM y\r\n", ""}}},
		{"update keeps state", []step{{opUpdate, 9, "+OK\r\n", ""}, {opGet, 0, bulk(p.appendValue(nil, 3, 9)), ""}}},
	} {
		ks := newKeyState(cfg, now)
		// newKeyState only fills gen 0 for populating configs; emulate it.
		for i := range ks.state {
			ks.state[i] = stAbsent + 1
		}
		v := newVerifier(cfg, p, kg, ks)
		for i, s := range tc.steps {
			r := view(s.reply)
			var why string
			switch s.op {
			case opGet, opGetex:
				why = v.read(3, &r, now)
			case opSet, opUpdate:
				why = v.write(s.op, 3, s.gen, &r)
			case opDel:
				why = v.del(3, &r, now)
			}
			if s.want == "" {
				assert.Empty(t, why, "%s step %d", tc.name, i)
			} else {
				assert.Contains(t, why, s.want, "%s step %d", tc.name, i)
			}
		}
	}

	// EXPIRE after GET.
	ks := newKeyState(cfg, now)
	v := newVerifier(cfg, p, kg, ks)
	null, val, one, zero := view("$-1\r\n"), view(g0), view(":1\r\n"), view(":0\r\n")
	assert.Contains(t, v.expire(&null, &one, now), "1 right after GET answered nil")
	assert.Contains(t, v.expire(&val, &zero, now), "0 right after GET")
	assert.Empty(t, v.expire(&val, &one, now))
	assert.Empty(t, v.expire(&null, &zero, now))
}

func TestKeyStateMustExist(t *testing.T) {
	start := time.Now()
	ks := &keyState{start: start, ttl: 10 * time.Second}
	assert.True(t, ks.mustExist(start.Add(8*time.Second)))
	assert.False(t, ks.mustExist(start.Add(9*time.Second)))
	ks.ttl = 0
	assert.True(t, ks.mustExist(start.Add(time.Hour)))
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	cfg := &config{Conns: 2, Keys: 10, TTL: 1800e9, ValueSize: 700}
	p := newPayloadGen(fixedSize(700))
	kg, _ := newKeyGen("sess:", 37)
	v := newVerifier(cfg, p, kg, newKeyState(cfg, time.Now()))
	stream := []byte(bulk(p.appendValue(nil, 4, 77)) + "+OK\r\n:1\r\n$-1\r\n")
	br := bytes.NewReader(stream)
	r := newRespReader(br, 4096)
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		br.Reset(stream)
		r.br.Reset(br)
		rv, _ := r.readView(v.scratch)
		if v.read(4, &rv, now) != "" {
			panic("read")
		}
		rv, _ = r.readView(v.scratch)
		if v.write(opSet, 4, 5, &rv) != "" {
			panic("write")
		}
		rv, _ = r.readView(v.scratch)
		if v.del(4, &rv, now) != "" {
			panic("del")
		}
		rv, _ = r.readView(v.scratch)
		if v.read(4, &rv, now) != "" {
			panic("nil")
		}
	})
	assert.Zero(t, allocs)
}

func TestReadViewLongBulk(t *testing.T) {
	in := "$10\r\n0123456789\r\n+OK\r\n*2\r\n:1\r\n$1\r\nx\r\n:5\r\n"
	r := reader2([]byte(in))
	scratch := make([]byte, 4)
	v, err := r.readView(scratch)
	require.NoError(t, err)
	assert.Equal(t, "0123", string(v.str), "the first len(scratch) bytes")
	assert.Equal(t, int64(10), v.n)
	v, err = r.readView(scratch)
	require.NoError(t, err)
	assert.Equal(t, "OK", string(v.str))
	v, err = r.readView(scratch)
	require.NoError(t, err)
	assert.Equal(t, byte('*'), v.kind)
	v, err = r.readView(scratch)
	require.NoError(t, err)
	assert.Equal(t, int64(5), v.n)
}

// fakeServer is a tiny in-memory RESP server (no TTLs) whose replies can be
// tampered with, to check that bench catches a wrong server.
type fakeServer struct {
	mu     sync.Mutex
	data   map[string][]byte
	prev   map[string][]byte
	tamper func(cmd string, key string, val []byte, prev []byte) []byte // the GET reply value (nil: nil reply)
	setOK  string
}

func startFake(t *testing.T, f *fakeServer) string {
	t.Helper()
	f.data, f.prev = map[string][]byte{}, map[string][]byte{}
	if f.setOK == "" {
		f.setOK = "+OK\r\n"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	var conns sync.Map
	t.Cleanup(func() {
		conns.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

func (f *fakeServer) serve(c net.Conn) {
	rd := newRespReader(c, 1<<16)
	var out []byte
	for {
		req, err := rd.readReply()
		if err != nil || len(req.Elems) == 0 {
			return
		}
		cmd := strings.ToUpper(req.Elems[0].Str)
		key := ""
		if len(req.Elems) > 1 {
			key = req.Elems[1].Str
		}
		out = out[:0]
		f.mu.Lock()
		switch cmd {
		case "SET":
			f.prev[key] = f.data[key]
			f.data[key] = []byte(req.Elems[2].Str)
			out = append(out, f.setOK...)
		case "GET", "GETEX":
			v, ok := f.data[key]
			if f.tamper != nil {
				v = f.tamper(cmd, key, v, f.prev[key])
				ok = v != nil
			}
			if ok {
				out = appendBulk(out, v)
			} else {
				out = append(out, "$-1\r\n"...)
			}
		case "DEL":
			_, ok := f.data[key]
			delete(f.data, key)
			if ok {
				out = append(out, ":1\r\n"...)
			} else {
				out = append(out, ":0\r\n"...)
			}
		case "EXPIRE":
			if _, ok := f.data[key]; ok {
				out = append(out, ":1\r\n"...)
			} else {
				out = append(out, ":0\r\n"...)
			}
		default:
			out = append(out, "-ERR unknown command\r\n"...)
		}
		f.mu.Unlock()
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func TestFakeServerWrongRepliesAreDetected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fake   *fakeServer
		args   []string
		wrong  bool
		reason string
	}{
		{name: "correct server", args: []string{"-c", "3"}},
		{name: "correct server exact", args: []string{"-c", "1", "--mix", "getex=50,set=20,del=10,update=10,get+expire=10"}},
		{name: "flipped byte", wrong: true, reason: "corrupted", fake: &fakeServer{tamper: func(_, _ string, v, _ []byte) []byte {
			if v == nil {
				return nil
			}
			b := bytes.Clone(v)
			b[len(b)-1] ^= 1
			return b
		}}},
		{name: "wrong key's value", wrong: true, reason: "another key", args: []string{"--workload", "get"},
			fake: &fakeServer{tamper: func(_, key string, v, _ []byte) []byte {
				return newPayloadGen(fixedSize(100)).appendValue(nil, 999999, 0)
			}}},
		{name: "constant payload", wrong: true, reason: "no bench value header", fake: &fakeServer{tamper: func(_, _ string, _, _ []byte) []byte {
			return bytes.Repeat([]byte("x"), 100)
		}}},
		{name: "get misses a populated key", wrong: true, reason: "nil for a populated key", args: []string{"--workload", "get"},
			fake: &fakeServer{tamper: func(_, _ string, _, _ []byte) []byte { return nil }}},
		{name: "stale value, exact", wrong: true, reason: "but generation", args: []string{"-c", "1", "--mix", "get=50,set=50"},
			fake: &fakeServer{tamper: func(_, _ string, v, prev []byte) []byte {
				if prev != nil {
					return prev
				}
				return v
			}}},
		{name: "SET not OK", wrong: true, reason: "want +OK", args: []string{"--workload", "set"}, fake: &fakeServer{setOK: "+QUEUED\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fake == nil {
				tc.fake = &fakeServer{}
			}
			addr := startFake(t, tc.fake)
			args := append([]string{"--target", addr, "--requests", "400", "--warmup", "0s", "--keys", "50",
				"--value-size", "100", "-c", "2"}, tc.args...)
			code, rep := bench(t, context.Background(), args...)
			require.Len(t, rep.Runs, 1)
			run := rep.Runs[0]
			assert.True(t, run.Verified)
			if !tc.wrong {
				assert.Equal(t, exitOK, code, rep.Failures)
				assert.Zero(t, run.Wrong, run.Mismatches)
				return
			}
			assert.Equal(t, exitFailed, code)
			assert.Positive(t, run.Wrong)
			assert.Equal(t, run.Wrong, run.Errors["WRONG"])
			require.NotEmpty(t, run.Mismatches)
			assert.Contains(t, run.Mismatches[0], tc.reason)
			assert.Contains(t, run.Mismatches[0], "sess:", "names the key")
		})
	}
}
