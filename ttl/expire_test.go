package ttl

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expiries records what OnExpire receives.
type expiries struct {
	mu      sync.Mutex
	got     map[string]int // "db/key" -> times reported
	calls   int
	maxCall int
	total   int
}

func newExpiries() *expiries { return &expiries{got: make(map[string]int)} }

func (x *expiries) onExpire(db int, keys [][]byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.calls++
	x.maxCall = max(x.maxCall, len(keys))
	for _, k := range keys {
		x.got[string(rune('0'+db))+"/"+string(k)]++
		x.total++
	}
}

func (x *expiries) count(db int, k []byte) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.got[string(rune('0'+db))+"/"+string(k)]
}

// startRun runs s.Run in the bubble and stops it when the test ends.
func startRun(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func TestExpiryExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newExpiries()
		s := newStore(t, Config{Shards: 4, Databases: 2, OnExpire: x.onExpire})
		startRun(t, s)
		start := Now()
		// Deadlines spread over 5 seconds, so that keys sit on every level
		// the test can reach and cascade down.
		const n = 500
		deadline := func(i int) int64 { return start + 1 + int64(i*i)%5000 }
		for i := range n {
			tx := s.Lock(key(i))
			tx.Set(i%2, key(i), 0, value(i, 40), deadline(i))
			tx.Unlock()
		}
		for now := start; now <= start+5002; now++ {
			time.Sleep(time.Until(time.UnixMilli(now)))
			synctest.Wait()
			require.Equal(t, now, Now())
			for i := range n {
				dl := deadline(i)
				if dl != now && dl != now-1 {
					continue
				}
				tx := s.Lock(key(i))
				e, ok := tx.Get(i%2, key(i))
				tx.Unlock()
				if dl == now {
					require.True(t, ok, "key %d alive at its deadline", i)
					require.Equal(t, dl, e.Deadline)
					require.Zero(t, x.count(i%2, key(i)), "key %d reported before it expired", i)
				} else {
					require.False(t, ok, "key %d alive 1 ms after its deadline", i)
					require.Equal(t, 1, x.count(i%2, key(i)), "key %d reported once, 1 ms after its deadline", i)
				}
			}
		}
		require.Equal(t, n, x.total)
		st := s.Stats()
		require.EqualValues(t, n, st.Expired)
		require.Zero(t, st.Keys[0]+st.Keys[1])
		require.Zero(t, st.ArenaBytes)
		checkStore(t, s)
	})
}

func TestSlidingExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newExpiries()
		s := newStore(t, Config{Shards: 2, OnExpire: x.onExpire})
		startRun(t, s)
		k := []byte("session")
		set(s, 0, k, []byte("v"), Now()+1000)
		// Touch every 500 ms for 10 s: it never expires.
		for range 20 {
			time.Sleep(500 * time.Millisecond)
			tx := s.Lock(k)
			require.True(t, tx.SetDeadline(0, k, tx.Now()+1000))
			tx.Unlock()
		}
		synctest.Wait()
		require.Zero(t, x.count(0, k))
		last := Now()
		time.Sleep(time.Until(time.UnixMilli(last + 1000)))
		synctest.Wait()
		_, ok := get(s, 0, k)
		require.True(t, ok)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, 1, x.count(0, k))
		require.Equal(t, 0, s.Len(0))
	})
}

func TestMassExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newExpiries()
		const batch = 256
		s := newStore(t, Config{Shards: 8, ExpireBatch: batch, OnExpire: x.onExpire})
		startRun(t, s)
		const n = 200_000
		dl := Now() + 10_000
		v := value(1, 300)
		for i := range n {
			tx := s.Lock(key(i))
			tx.Set(0, key(i), 0, v, dl+int64(i%3))
			tx.Unlock()
		}
		full := s.Stats()
		require.Equal(t, n, full.Keys[0])
		require.Greater(t, full.ArenaBytes, int64(n*300))
		time.Sleep(time.Until(time.UnixMilli(dl + 4)))
		synctest.Wait()
		x.mu.Lock()
		require.Equal(t, n, x.total)
		require.Len(t, x.got, n)
		require.LessOrEqual(t, x.maxCall, batch)
		require.GreaterOrEqual(t, x.calls, n/batch)
		x.mu.Unlock()
		st := s.Stats()
		require.Zero(t, st.Keys[0])
		require.Zero(t, st.ArenaBytes, "every chunk is unmapped")
		require.Zero(t, st.ArenaLive)
		require.EqualValues(t, n, st.Expired)
		require.Less(t, st.IndexBytes, int64(8*(segSize*entrySize+4096)), "tables shrink back")
		checkStore(t, s)
	})
}

func TestRunCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{OnExpire: func(int, [][]byte) {}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		require.ErrorIs(t, s.Run(ctx), ErrRunning)
		require.ErrorIs(t, s.Close(), ErrRunning, "Close waits for Run to return")
		set(s, 0, key(1), []byte("v"), Now()+time.Hour.Milliseconds())
		synctest.Wait()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			require.NoError(t, err)
		default:
			t.Fatal("Run did not return on cancel")
		}
		// Run can be started again.
		ctx, cancel = context.WithCancel(context.Background())
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)
	})
}

func TestRunIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		s := newStore(t, Config{Shards: 2, OnExpire: func(int, [][]byte) { calls++ }})
		startRun(t, s)
		for i := range 100 {
			set(s, 0, key(i), []byte("v"), 0)
		}
		// No deadline anywhere: Run sleeps without a timer, so a whole day
		// of fake time passes at once.
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		require.Zero(t, calls)
		require.Equal(t, 100, s.Len(0))
		// A far deadline then a near one: the near one wakes Run early.
		set(s, 0, key(1), []byte("v"), Now()+time.Hour.Milliseconds())
		set(s, 0, key(2), []byte("v"), Now()+10)
		time.Sleep(11 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 1, calls)
		require.Equal(t, 99, s.Len(0))
	})
}

func TestExpiredMetByTxn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newExpiries()
		s := newStore(t, Config{Shards: 1, OnExpire: x.onExpire})
		// No Run: expired keys wait, invisible, until a Txn or Drain.
		for i := range 10 {
			set(s, 0, key(i), value(i, 100), Now()+5)
		}
		time.Sleep(6 * time.Millisecond)
		// Every kind of meeting removes the key and counts it.
		_, ok := get(s, 0, key(0))
		require.False(t, ok)
		require.False(t, del(s, 0, key(1)))
		tx := s.Lock(key(2))
		require.False(t, tx.SetDeadline(0, key(2), tx.Now()+1000))
		tx.Set(0, key(3), 0, []byte("new"), 0)
		tx.Touched(0, key(4))
		tx.Unlock()
		require.EqualValues(t, 5, s.Stats().Expired)
		require.Equal(t, 6, s.Len(0), "5 met and removed; key 3 set again; 5 not yet met")
		checkStore(t, s)
		require.Zero(t, x.total, "keys are reported by Run or Drain")

		n := 0
		for c := s.Scan(0, 0, 100, func([]byte, Entry) { n++ }); c != 0; c = s.Scan(0, c, 100, func([]byte, Entry) { n++ }) {
		}
		require.Equal(t, 1, n, "Scan skips expired keys")
		k, ok := s.RandomKey(0, nil)
		require.True(t, ok)
		require.Equal(t, "key:00000003", string(k))

		// Flush leaves the keys that already expired to be reported.
		s.Flush(-1)
		s.Drain()
		require.Equal(t, 5, x.total)
		for i := range 5 {
			require.Equal(t, 1, x.count(0, key(i)), i)
		}
		require.EqualValues(t, 5, s.Stats().Expired)
		require.Zero(t, s.Stats().ArenaBytes)
		checkStore(t, s)

		// Drain also frees keys nobody met.
		for i := range 10 {
			set(s, 0, key(i), value(i, 100), Now()+5)
		}
		time.Sleep(6 * time.Millisecond)
		s.Drain()
		require.Equal(t, 15, x.total)
		require.Zero(t, s.Len(0))
		checkStore(t, s)
	})
}

func TestNoOnExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{Shards: 2})
		startRun(t, s)
		for i := range 1000 {
			set(s, 0, key(i), value(i, 100), Now()+int64(1+i%50))
		}
		time.Sleep(20 * time.Millisecond)
		for i := range 1000 {
			_, ok := get(s, 0, key(i)) // some are met before Run frees them
			require.Equal(t, 1+i%50 >= 20, ok)
		}
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		st := s.Stats()
		require.EqualValues(t, 1000, st.Expired)
		require.Zero(t, st.ArenaBytes)
		checkStore(t, s)
	})
}

func TestCompactionByRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{Shards: 2, ChunkSize: 64 << 10})
		startRun(t, s)
		const n = 3000
		for i := range n {
			set(s, 0, key(i), value(i, 600), 0)
		}
		full := s.Stats()
		for i := range n {
			if i%5 != 0 {
				require.True(t, del(s, 0, key(i)))
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		after := s.Stats()
		t.Logf("arena %d -> %d bytes, live %d", full.ArenaBytes, after.ArenaBytes, after.ArenaLive)
		require.Less(t, after.ArenaBytes, full.ArenaBytes/2)
		require.LessOrEqual(t, after.ArenaBytes, 2*after.ArenaLive+2*64<<10, "no chunk is less than half live")
		for i := 0; i < n; i += 5 {
			v, ok := get(s, 0, key(i))
			require.True(t, ok)
			require.Equal(t, value(i, 600), v)
		}
		checkStore(t, s)
	})
}

func TestOnExpireMayUseStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *Store
		var seen []string
		s = newStore(t, Config{Shards: 2, OnExpire: func(db int, keys [][]byte) {
			for _, k := range keys {
				seen = append(seen, string(k))
				// Re-create the key, as a keyspace-notification handler
				// could; it must not deadlock.
				tx := s.Lock(k)
				tx.Set(db, k, 0, []byte("again"), 0)
				tx.Unlock()
			}
		}})
		startRun(t, s)
		set(s, 0, []byte("a"), []byte("v"), Now()+3)
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, []string{"a"}, seen)
		v, ok := get(s, 0, []byte("a"))
		require.True(t, ok)
		require.Equal(t, "again", string(v))
	})
}

func TestErrRunning(t *testing.T) {
	require.True(t, errors.Is(ErrRunning, ErrRunning))
}

// TestClockBack covers a wheel ahead of the clock: entries scheduled
// behind the wheel go to the overdue list and still expire on time.
func TestClockBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newExpiries()
		s := newStore(t, Config{Shards: 1, OnExpire: x.onExpire})
		startRun(t, s)
		sh := &s.shards[0]
		sh.mu.Lock()
		sh.wheel.elapsed = uint64(Now() + 1000) // as if the clock went back 1 s
		sh.mu.Unlock()
		set(s, 0, key(1), []byte("v"), Now()+10)
		set(s, 0, key(2), []byte("v"), Now()+2000)
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		_, ok := get(s, 0, key(1))
		require.True(t, ok)
		time.Sleep(6 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 1, x.count(0, key(1)))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, 1, x.count(0, key(2)))
		checkStore(t, s)
	})
}
