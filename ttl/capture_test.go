package ttl

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCaptureShardSeesEveryLiveEntryOnce(t *testing.T) {
	s := newStore(t, Config{Shards: 4, Databases: 3})
	want := map[string]int64{}
	for i := range 1000 {
		db := i % 3
		dl := int64(0)
		if i%2 == 0 {
			dl = Now() + 3_600_000 + int64(i)
		}
		set(s, db, key(i), value(i, i%50), dl)
		want[string(rune('0'+db))+string(key(i))] = dl
	}
	// Deleted entries are not captured.
	tx := s.Lock(key(1))
	tx.Delete(1, key(1))
	tx.Unlock()
	delete(want, "1"+string(key(1)))
	tx = s.Lock([]byte("obj"))
	tx.SetObject(0, []byte("obj"), 7, captureObj{n: 10}, 0)
	tx.Unlock()
	want["0obj"] = 0

	got := map[string]int64{}
	require.Equal(t, 4, s.Shards())
	assert.Zero(t, s.CaptureShard(0, 0, 7, func(int, []byte, Entry) { t.Error("visited outside a capture") }))
	require.NoError(t, s.BeginCapture(func(int, int, []byte, Entry) { t.Error("nothing changes: nothing to preserve") }))
	defer s.EndCapture()
	captureAll(s, func(db int, k []byte, e Entry) {
		name := string(rune('0'+db)) + string(k)
		_, dup := got[name]
		assert.False(t, dup, "captured twice: %s", name)
		got[name] = e.Deadline
		if string(k) == "obj" {
			assert.Equal(t, Kind(7), e.Kind)
			assert.Equal(t, captureObj{n: 10}, e.Obj)
		} else {
			assert.NotNil(t, e.Blob)
		}
	}, 7, func() {})
	assert.Equal(t, want, got)
}

func TestAddExpiredCounts(t *testing.T) {
	s := newStore(t, Config{})
	s.AddExpired(5)
	assert.Equal(t, uint64(5), s.Stats().Expired)
}

type captureObj struct{ n int }

func (o captureObj) MemoryUsage() int { return o.n }

// boxObj is an object kind whose content its users change in place.
type boxObj struct{ v []byte }

func (o *boxObj) MemoryUsage() int { return len(o.v) }

// capState is a key's value as a capture reports it.
type capState struct {
	blob, obj string
	deadline  int64
}

func stateOf(e Entry) capState {
	st := capState{blob: string(e.Blob), deadline: e.Deadline}
	if b, ok := e.Obj.(*boxObj); ok {
		st.obj = string(b.v)
	}
	return st
}

// capturer collects what a capture hands out, visited and preserved,
// failing on a key seen twice.
type capturer struct {
	t   *testing.T
	mu  sync.Mutex
	got map[string]capState
}

func (c *capturer) add(db int, k []byte, e Entry) {
	name := fmt.Sprintf("%d/%s", db, k)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, dup := c.got[name]
	assert.False(c.t, dup, "captured twice: %s", name)
	c.got[name] = stateOf(e)
}

func (c *capturer) preserve(_, db int, k []byte, e Entry) { c.add(db, k, e) }

// captureAll runs CaptureShard with fn over the store in slices of
// limit, calling between after each slice.
func captureAll(s *Store, fn func(db int, key []byte, e Entry), limit int, between func()) {
	for i := range s.Shards() {
		for cursor := uint64(0); ; {
			cursor = s.CaptureShard(i, cursor, limit, fn)
			between()
			if cursor == 0 {
				break
			}
		}
	}
}

// model mirrors the store for the capture tests.
type model map[string]capState

// fillForCapture stores n keys of mixed kinds and deadlines in s and
// returns them.
func fillForCapture(s *Store, n int) model {
	m := model{}
	now := Now()
	for i := range n {
		db, k := i%2, key(i)
		tx := s.Lock(k)
		switch {
		case i%5 == 0:
			v := value(i, 8)
			tx.SetObject(db, k, 9, &boxObj{v: v}, 0)
			m[fmt.Sprintf("%d/%s", db, k)] = capState{obj: string(v)}
		default:
			dl := int64(0)
			if i%3 == 0 {
				dl = now + 3_600_000 + int64(i)
			}
			v := value(i, 20+i%40)
			tx.Set(db, k, 1, v, dl)
			m[fmt.Sprintf("%d/%s", db, k)] = capState{blob: string(v), deadline: dl}
		}
		tx.Unlock()
	}
	return m
}

// mutate changes the store at random: every kind of write a capture must
// see past.
func mutate(s *Store, rng *rand.Rand, n int, flushes bool) {
	i := rng.IntN(n + n/4) // some keys are new
	db, k := i%2, key(i)
	now := Now()
	switch op := rng.IntN(20); {
	case op == 0 && flushes:
		s.Flush(rng.IntN(3) - 1) // -1: all
	case op < 6:
		tx := s.Lock(k)
		tx.Set(db, k, 1, value(rng.Int(), 1+rng.IntN(60)), 0)
		tx.Unlock()
	case op < 9:
		tx := s.Lock(k)
		tx.Delete(db, k)
		tx.Unlock()
	case op < 12:
		tx := s.Lock(k)
		tx.SetDeadline(db, k, []int64{0, now + 7_200_000, now - 1}[rng.IntN(3)])
		tx.Unlock()
	case op < 16:
		tx := s.Lock(k)
		if e, ok := tx.Get(db, k); ok {
			if b, ok := e.Obj.(*boxObj); ok {
				b.v[0]++ // in place, as the server changes a hash
				b.v = append(b.v, 'x')
				tx.Touched(db, k)
			}
		}
		tx.Unlock()
	default:
		tx := s.Lock(k)
		tx.SetObject(db, k, 9, &boxObj{v: value(rng.Int(), 5)}, 0)
		tx.Unlock()
	}
}

func TestCaptureIsPointInTime(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			s := newStore(t, Config{Shards: 4, Databases: 2})
			const n = 3000
			want := fillForCapture(s, n)
			c := &capturer{t: t, got: map[string]capState{}}
			require.NoError(t, s.BeginCapture(c.preserve))
			require.ErrorIs(t, s.BeginCapture(c.preserve), ErrCaptureRunning)
			captureAll(s, c.add, 1+rng.IntN(50), func() {
				for range rng.IntN(40) {
					mutate(s, rng, n, seed%2 == 0)
				}
			})
			s.EndCapture()
			assert.Equal(t, want, model(c.got))
			checkStore(t, s)

			// A second capture sees the store as it is now.
			now := model{}
			c2 := &capturer{t: t, got: now}
			require.NoError(t, s.BeginCapture(c2.preserve))
			captureAll(s, c2.add, 100, func() {})
			s.EndCapture()
			n2 := 0
			for db := range 2 {
				n2 += s.Len(db)
			}
			assert.Len(t, now, n2)
		})
	}
}

func TestCaptureFlushMidway(t *testing.T) {
	for _, db := range []int{-1, 0, 1} {
		t.Run(fmt.Sprint(db), func(t *testing.T) {
			s := newStore(t, Config{Shards: 4, Databases: 2})
			want := fillForCapture(s, 500)
			c := &capturer{t: t, got: map[string]capState{}}
			require.NoError(t, s.BeginCapture(c.preserve))
			s.CaptureShard(0, 0, 10, c.add)
			s.Flush(db)
			set(s, 0, key(1), []byte("after the flush"), 0)
			captureAll(s, c.add, 10, func() {})
			s.EndCapture()
			assert.Equal(t, want, model(c.got))
			checkStore(t, s)
		})
	}
}

// TestCaptureConcurrentWriters runs writers on every core while a capture
// walks the store (run it with -race): the capture still reports the
// store as it was when it began.
func TestCaptureConcurrentWriters(t *testing.T) {
	s := newStore(t, Config{Shards: 8, Databases: 2})
	const n = 20000
	want := fillForCapture(s, n)
	c := &capturer{t: t, got: map[string]capState{}}
	require.NoError(t, s.BeginCapture(c.preserve))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				mutate(s, rng, n, w == 0 && rng.IntN(500) == 0)
			}
		})
	}
	captureAll(s, c.add, 64, runtime.Gosched)
	close(stop)
	wg.Wait()
	s.EndCapture()
	assert.Equal(t, want, model(c.got))
	checkStore(t, s)
}

func TestCaptureLeavesOutExpiredAndEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{Shards: 1})
		set(s, 0, []byte("short"), []byte("v"), Now()+30)
		set(s, 0, []byte("long"), []byte("v"), 0)
		for i := range 50 {
			set(s, 0, key(i), value(i, 10), 0)
		}
		c := &capturer{t: t, got: map[string]capState{}}
		require.NoError(t, s.BeginCapture(c.preserve))
		time.Sleep(40 * time.Millisecond) // "short" expires before the capture reaches it
		s.SetEviction(AllKeysRandom, 5)
		_, n := s.Evict(1<<20, 10, func(int, []byte) {})
		require.Positive(t, n)
		captureAll(s, c.add, 1000, func() {})
		s.EndCapture()
		assert.NotContains(t, c.got, "0/short")
		assert.Len(t, c.got, 51-n, "evicted keys are left out, the others are there")
	})
}

// TestCaptureAfterExpiry covers the writes expiry makes while a capture
// runs: an object whose parts expire is captured as it was, parts and
// all, and a key that expired gives its id to a new key, which the
// capture leaves out.
func TestCaptureAfterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{Shards: 1})
		now := Now()
		setObj(s, 0, []byte("obj"), newPartObj(map[string]int64{"a": now + 30, "b": 0}), 0)
		set(s, 0, []byte("short"), []byte("v"), now+30)
		set(s, 0, []byte("long"), []byte("v"), 0)
		got := map[string]string{}
		record := func(_ int, k []byte, e Entry) {
			v := string(e.Blob)
			if o, ok := e.Obj.(*partObj); ok {
				v = strings.Join(slices.Sorted(maps.Keys(o.parts)), ",")
			}
			got[string(k)] = v
		}
		require.NoError(t, s.BeginCapture(func(_, db int, k []byte, e Entry) { record(db, k, e) }))
		time.Sleep(40 * time.Millisecond)
		s.Drain()                                // part a and short expire
		set(s, 0, []byte("new"), []byte("v"), 0) // in short's id
		parts, ok := getParts(s, 0, []byte("obj"))
		require.True(t, ok)
		require.Equal(t, []string{"b"}, parts)
		captureAll(s, record, 10, func() {})
		s.EndCapture()
		assert.Equal(t, map[string]string{"obj": "a,b", "long": "v"}, got)
		checkStore(t, s)
	})
}
