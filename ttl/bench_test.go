package ttl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// Session-shaped data: 42-byte keys, 700-byte values.
const (
	benchKeys  = 100_000
	benchValue = 700
)

func sessionKey(i int) []byte { return fmt.Appendf(nil, "session:%034d", i) }

func benchStore(b *testing.B, n int, ttl int64) (*Store, [][]byte) {
	b.Helper()
	s := newStore(b, Config{})
	keys := make([][]byte, n)
	v := value(1, benchValue)
	for i := range keys {
		keys[i] = sessionKey(i)
		tx := s.Lock(keys[i])
		var dl int64
		if ttl > 0 {
			dl = tx.Now() + ttl
		}
		tx.Set(0, keys[i], 0, v, dl)
		tx.Unlock()
	}
	return s, keys
}

func BenchmarkGet(b *testing.B) {
	s, keys := benchStore(b, benchKeys, 3_600_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i += 7919
		tx := s.Lock(k)
		e, ok := tx.Get(0, k)
		if !ok || len(e.Blob) != benchValue {
			b.Fatal("missing")
		}
		tx.Unlock()
	}
}

// BenchmarkGetHot reads a working set that fits in the CPU caches.
func BenchmarkGetHot(b *testing.B) {
	s, keys := benchStore(b, 1000, 3_600_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i += 7
		tx := s.Lock(k)
		if _, ok := tx.Get(0, k); !ok {
			b.Fatal("missing")
		}
		tx.Unlock()
	}
}

func BenchmarkSet(b *testing.B) {
	s, keys := benchStore(b, benchKeys, 3_600_000)
	v := value(2, benchValue)
	b.SetBytes(benchValue)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i += 7919
		tx := s.Lock(k)
		tx.Set(0, k, 0, v, tx.Now()+3_600_000)
		tx.Unlock()
	}
}

func BenchmarkSetNew(b *testing.B) {
	s := newStore(b, Config{})
	v := value(2, benchValue)
	k := make([]byte, 0, 64)
	b.SetBytes(benchValue)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k = strconv.AppendInt(append(k[:0], "session:"...), int64(i), 10)
		i++
		tx := s.Lock(k)
		tx.Set(0, k, 0, v, tx.Now()+3_600_000)
		tx.Unlock()
	}
}

// BenchmarkSetDeadline is sliding expiry: every access pushes the deadline.
func BenchmarkSetDeadline(b *testing.B) {
	s, keys := benchStore(b, benchKeys, 1_800_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i += 7919
		tx := s.Lock(k)
		if !tx.SetDeadline(0, k, tx.Now()+1_800_000+int64(i%1000)) {
			b.Fatal("missing")
		}
		tx.Unlock()
	}
}

func BenchmarkDelete(b *testing.B) {
	s := newStore(b, Config{})
	v := value(2, benchValue)
	k := make([]byte, 0, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k = strconv.AppendInt(append(k[:0], "session:"...), int64(i), 10)
		i++
		tx := s.Lock(k)
		tx.Set(0, k, 0, v, 0)
		tx.Delete(0, k)
		tx.Unlock()
	}
}

// BenchmarkParallelMixed is 80% Get, 10% Set, 10% SetDeadline from all
// CPUs.
func BenchmarkParallelMixed(b *testing.B) {
	s, keys := benchStore(b, benchKeys, 3_600_000)
	v := value(3, benchValue)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 1))
		for pb.Next() {
			k := keys[r.IntN(len(keys))]
			tx := s.Lock(k)
			switch op := r.IntN(10); {
			case op < 8:
				tx.Get(0, k)
			case op == 8:
				tx.Set(0, k, 0, v, tx.Now()+3_600_000)
			default:
				tx.SetDeadline(0, k, tx.Now()+3_600_000)
			}
			tx.Unlock()
		}
	})
}

// BenchmarkExpire measures freeing: n keys expire at once and one call
// frees them all, reporting keys to OnExpire.
func BenchmarkExpire(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		b.StopTimer()
		var got int
		s, err := New(Config{OnExpire: func(_ int, keys [][]byte) { got += len(keys) }})
		if err != nil {
			b.Fatal(err)
		}
		v := value(1, benchValue)
		var dl int64
		for i := range n {
			k := sessionKey(i)
			tx := s.Lock(k)
			dl = tx.Now() + 3_600_000
			tx.Set(0, k, 0, v, dl)
			tx.Unlock()
		}
		b.StartTimer()
		s.expMu.Lock()
		s.expireDueLocked(context.Background(), dl+1, true)
		s.expMu.Unlock()
		b.StopTimer()
		if got != n || s.Stats().ArenaBytes != 0 {
			b.Fatalf("expired %d of %d, arena %d", got, n, s.Stats().ArenaBytes)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}

// rss returns the resident set size of the process in bytes.
func rss(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm:", err)
	}
	f := strings.Fields(string(data))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// settledRSS returns the RSS after a GC that returns free memory to the OS.
func settledRSS(b *testing.B) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rss(b)
}

// BenchmarkMemory1M loads 1,000,000 sessions (42-byte key, 700-byte value,
// deadline) and reports the process RSS growth per key, measured after a
// GC, with the Stats figures per key. Run it alone:
//
//	go test -run XXX -bench Memory1M -benchtime 1x ./ttl
func BenchmarkMemory1M(b *testing.B) {
	const n = 1_000_000
	keys := make([]byte, 0, 64)
	v := value(1, benchValue)
	var rssPerKey, rawPerKey, arena, live, index float64
	for b.Loop() {
		base := settledRSS(b)
		s, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			keys = fmt.Appendf(keys[:0], "session:%034d", i)
			tx := s.Lock(keys)
			tx.Set(0, keys, 0, v, tx.Now()+3_600_000+int64(i%1000))
			tx.Unlock()
		}
		raw := rss(b)
		after := settledRSS(b)
		st := s.Stats()
		if st.Keys[0] != n {
			b.Fatalf("%d keys", st.Keys[0])
		}
		rssPerKey = float64(after-base) / n
		rawPerKey = float64(raw-base) / n
		arena = float64(st.ArenaBytes) / n
		live = float64(st.ArenaLive) / n
		index = float64(st.IndexBytes) / n
		s.Close()
	}
	b.ReportMetric(rssPerKey, "rss-B/key")
	b.ReportMetric(rawPerKey, "rss-before-gc-B/key")
	b.ReportMetric(arena, "arena-B/key")
	b.ReportMetric(live, "live-B/key")
	b.ReportMetric(index, "index-B/key")
	b.ReportMetric(0, "ns/op")
}
