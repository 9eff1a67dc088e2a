package ttl

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero means defaults", Config{}, true},
		{"one shard", Config{Shards: 1}, true},
		{"256 shards", Config{Shards: 256, Databases: 256}, true},
		{"shards not a power of two", Config{Shards: 3}, false},
		{"too many shards", Config{Shards: 512}, false},
		{"negative shards", Config{Shards: -1}, false},
		{"too many databases", Config{Databases: 257}, false},
		{"negative databases", Config{Databases: -4}, false},
		{"negative batch", Config{ExpireBatch: -1}, false},
		{"chunk too small", Config{ChunkSize: 32 << 10}, false},
		{"chunk too big", Config{ChunkSize: 128 << 20}, false},
		{"chunk not a power of two", Config{ChunkSize: 100 << 10}, false},
		{"smallest chunk", Config{ChunkSize: 64 << 10}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.NoError(t, s.Close())
				require.NoError(t, s.Close(), "Close is idempotent")
				return
			}
			require.ErrorIs(t, err, ErrConfig)
			require.Nil(t, s)
		})
	}
}

func TestSetGetDeleteOverwrite(t *testing.T) {
	s := newStore(t, Config{Shards: 4, Databases: 2})
	k := []byte("session:1")
	_, ok := get(s, 0, k)
	require.False(t, ok)

	set(s, 0, k, []byte("v1"), 0)
	v, ok := get(s, 0, k)
	require.True(t, ok)
	require.Equal(t, "v1", string(v))
	_, ok = get(s, 1, k)
	require.False(t, ok, "databases are separate")

	set(s, 0, k, []byte("a longer second value"), 0)
	v, _ = get(s, 0, k)
	require.Equal(t, "a longer second value", string(v))
	require.Equal(t, 1, s.Len(0))

	require.True(t, del(s, 0, k))
	require.False(t, del(s, 0, k))
	_, ok = get(s, 0, k)
	require.False(t, ok)
	require.Equal(t, 0, s.Len(0))

	// Many keys, with growth and shrink of the indexes.
	for i := range 5000 {
		set(s, i%2, key(i), value(i, i%300), 0)
	}
	checkStore(t, s)
	for i := range 5000 {
		v, ok := get(s, i%2, key(i))
		require.True(t, ok, i)
		require.Equal(t, value(i, i%300), v, i)
		_, ok = get(s, 1-i%2, key(i))
		require.False(t, ok, i)
	}
	for i := range 5000 {
		if i%5 != 0 {
			require.True(t, del(s, i%2, key(i)))
		}
	}
	checkStore(t, s)
	require.Equal(t, 500, s.Len(0))
	require.Equal(t, 500, s.Len(1))
	for i := 0; i < 5000; i += 5 {
		v, ok := get(s, i%2, key(i))
		require.True(t, ok)
		require.Equal(t, value(i, i%300), v)
	}
}

func TestSetFromStoreMemory(t *testing.T) {
	s := newStore(t, Config{Shards: 1, ChunkSize: 64 << 10})
	k := []byte("k")
	set(s, 0, k, value(1, 1000), 0)
	tx := s.Lock(k)
	e, ok := tx.Get(0, k)
	require.True(t, ok)
	// Overwrite the key with its own value, aliasing the arena, many times
	// so that chunks are retired and unmapped behind it.
	for range 200 {
		tx.Set(0, k, 0, e.Blob, 0)
		e, _ = tx.Get(0, k)
	}
	require.Equal(t, value(1, 1000), e.Blob)
	tx.Unlock()
	checkStore(t, s)
}

type testObj struct{ n int }

func (o *testObj) MemoryUsage() int { return o.n }

func TestKindsAndObjects(t *testing.T) {
	s := newStore(t, Config{Shards: 2})
	k := []byte("h")
	tx := s.Lock(k)
	tx.Set(0, k, 3, []byte("blob"), 0)
	e, ok := tx.Get(0, k)
	require.True(t, ok)
	require.Equal(t, Kind(3), e.Kind)
	require.Nil(t, e.Obj)

	o := &testObj{n: 100}
	tx.SetObject(0, k, 7, o, 0)
	e, ok = tx.Get(0, k)
	require.True(t, ok)
	require.Equal(t, Kind(7), e.Kind)
	require.Nil(t, e.Blob)
	require.Same(t, o, e.Obj)
	tx.Unlock()
	require.EqualValues(t, 100, s.Stats().ObjectBytes)

	tx = s.Lock(k)
	e, _ = tx.Get(0, k)
	e.Obj.(*testObj).n = 250
	tx.Touched(0, k)
	tx.Unlock()
	require.EqualValues(t, 250, s.Stats().ObjectBytes)

	// A second object, then back to bytes.
	k2 := []byte("h2")
	tx = s.Lock(k2)
	tx.SetObject(0, k2, 7, &testObj{n: 5}, 0)
	tx.Unlock()
	require.EqualValues(t, 255, s.Stats().ObjectBytes)
	checkStore(t, s)

	tx = s.Lock(k)
	tx.Set(0, k, 1, []byte("bytes again"), 0)
	e, _ = tx.Get(0, k)
	require.Equal(t, "bytes again", string(e.Blob))
	require.Nil(t, e.Obj)
	require.True(t, tx.Delete(0, k))
	tx.Unlock()
	require.EqualValues(t, 5, s.Stats().ObjectBytes)
	require.True(t, del(s, 0, k2))
	require.EqualValues(t, 0, s.Stats().ObjectBytes)
	checkStore(t, s)

	// All 256 kinds round-trip, in every database.
	s2 := newStore(t, Config{Shards: 1, Databases: 256})
	for kind := range 256 {
		tx := s2.Lock(key(kind))
		tx.Set(kind, key(kind), Kind(kind), nil, 0)
		tx.Unlock()
	}
	for kind := range 256 {
		tx := s2.Lock(key(kind))
		e, ok := tx.Get(kind, key(kind))
		tx.Unlock()
		require.True(t, ok)
		require.Equal(t, Kind(kind), e.Kind)
	}
}

func TestDeadlines(t *testing.T) {
	s := newStore(t, Config{Shards: 1})
	k := []byte("k")
	tx := s.Lock(k)
	now := tx.Now()
	tx.Set(0, k, 0, []byte("v"), now+60_000)
	e, ok := tx.Get(0, k)
	require.True(t, ok)
	require.Equal(t, now+60_000, e.Deadline)

	require.True(t, tx.SetDeadline(0, k, now+120_000))
	e, _ = tx.Get(0, k)
	require.Equal(t, now+120_000, e.Deadline)

	require.True(t, tx.SetDeadline(0, k, 0))
	e, _ = tx.Get(0, k)
	require.Zero(t, e.Deadline)

	require.False(t, tx.SetDeadline(0, []byte("missing"), now+1000))

	// A past deadline deletes, without counting as expired.
	require.True(t, tx.SetDeadline(0, k, now))
	_, ok = tx.Get(0, k)
	require.False(t, ok)
	tx.Set(0, k, 0, []byte("v"), now-1)
	_, ok = tx.Get(0, k)
	require.False(t, ok)

	// Far deadlines are kept exactly.
	tx.Set(0, k, 0, []byte("v"), 1<<62)
	e, _ = tx.Get(0, k)
	require.Equal(t, int64(1<<62), e.Deadline)
	tx.Set(0, k, 0, []byte("v"), 1<<63-1)
	e, _ = tx.Get(0, k)
	require.Equal(t, int64(1<<63-1), e.Deadline)
	tx.Unlock()

	st := s.Stats()
	require.Zero(t, st.Expired)
	require.Equal(t, 1, st.Keys[0])
	require.Equal(t, 1, st.Expires[0])
	checkStore(t, s)
}

func TestTxnMultiShard(t *testing.T) {
	s := newStore(t, Config{Shards: 8})
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = key(i)
	}
	tx := s.LockKeys(keys...)
	for i, k := range keys {
		tx.Set(0, k, 0, value(i, 10), 0)
	}
	tx.Unlock()
	require.Equal(t, 64, s.Len(0))

	// A Txn refuses keys of shards it does not hold.
	var other []byte
	for _, k := range keys {
		if s.shardIndex(k) != s.shardIndex(keys[0]) {
			other = k
			break
		}
	}
	require.NotNil(t, other)
	tx = s.Lock(keys[0])
	require.Panics(t, func() { tx.Get(0, other) })
	tx.Unlock()
	require.Panics(t, func() { tx.Unlock() })
	require.Panics(t, func() { tx.Get(0, keys[0]) })

	// Concurrent transfers between random pairs keep the sum.
	tx = s.LockAll()
	for _, k := range keys {
		tx.Set(0, k, 0, []byte{100}, 0)
	}
	tx.Unlock()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				a, b := keys[(g*7+i)%64], keys[(g*13+i*5+1)%64]
				if bytes.Equal(a, b) {
					continue
				}
				tx := s.LockKeys(a, b)
				ea, _ := tx.Get(0, a)
				eb, _ := tx.Get(0, b)
				va, vb := ea.Blob[0], eb.Blob[0]
				if va > 0 {
					tx.Set(0, a, 0, []byte{va - 1}, 0)
					tx.Set(0, b, 0, []byte{vb + 1}, 0)
				}
				tx.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			tx := s.LockAll()
			sum := 0
			for _, k := range keys {
				e, _ := tx.Get(0, k)
				sum += int(e.Blob[0])
			}
			tx.Unlock()
			assert.Equal(t, 6400, sum)
		}
	})
	wg.Wait()
	checkStore(t, s)
}

func (s *Store) shardIndex(k []byte) int {
	tx := s.Lock(k)
	defer tx.Unlock()
	for w, m := range tx.locked {
		if m != 0 {
			for b := range 64 {
				if m&(1<<b) != 0 {
					return w*64 + b
				}
			}
		}
	}
	return -1
}

func TestFlush(t *testing.T) {
	s := newStore(t, Config{Shards: 4, Databases: 3})
	for i := range 3000 {
		tx := s.Lock(key(i))
		var dl int64
		if i%2 == 1 {
			dl = tx.Now() + 100_000
		}
		tx.Set(i%3, key(i), 0, value(i, 50), dl)
		if i%100 == 0 {
			tx.SetObject(i%3, key(i), 9, &testObj{n: 10}, 0)
		}
		tx.Unlock()
	}
	st := s.Stats()
	require.Equal(t, []int{1000, 1000, 1000}, st.Keys)
	require.EqualValues(t, 300, st.ObjectBytes)

	s.Flush(1)
	checkStore(t, s)
	st = s.Stats()
	require.Equal(t, []int{1000, 0, 1000}, st.Keys)
	require.Equal(t, 0, st.Expires[1])
	require.EqualValues(t, 200, st.ObjectBytes)
	for i := range 3000 {
		_, ok := get(s, i%3, key(i))
		require.Equal(t, i%3 != 1, ok, i)
	}
	// The flushed database is usable again.
	set(s, 1, key(1), []byte("x"), 0)
	v, ok := get(s, 1, key(1))
	require.True(t, ok)
	require.Equal(t, "x", string(v))

	s.Flush(-1)
	checkStore(t, s)
	st = s.Stats()
	require.Equal(t, []int{0, 0, 0}, st.Keys)
	require.Zero(t, st.ArenaBytes)
	require.Zero(t, st.ArenaLive)
	require.Zero(t, st.ObjectBytes)
	set(s, 2, key(2), []byte("y"), 0)
	require.Equal(t, 1, s.Len(2))
	checkStore(t, s)
}

func TestLenStats(t *testing.T) {
	s := newStore(t, Config{Shards: 4, Databases: 2})
	tx := s.LockAll()
	now := tx.Now()
	for i := range 100 {
		var dl int64
		if i%4 == 0 {
			dl = now + 10_000
		}
		tx.Set(i%2, key(i), 0, value(i, 100), dl)
	}
	tx.Unlock()
	require.Equal(t, 50, s.Len(0))
	require.Equal(t, 50, s.Len(1))
	st := s.Stats()
	require.Equal(t, []int{50, 50}, st.Keys)
	require.Equal(t, []int{25, 0}, st.Expires)
	require.InDelta(t, 10_000, st.AvgTTL[0], 1000)
	require.Zero(t, st.AvgTTL[1])
	require.Positive(t, st.ArenaBytes)
	require.GreaterOrEqual(t, st.ArenaBytes, st.ArenaLive)
	require.Greater(t, st.ArenaLive, int64(100*100))
	require.Positive(t, st.IndexBytes)
	require.Zero(t, st.Expired)
}

func TestEmptyKeyAndValue(t *testing.T) {
	s := newStore(t, Config{Shards: 2})
	set(s, 0, nil, nil, 0)
	set(s, 0, []byte("k"), []byte{}, 0)
	tx := s.LockKeys(nil, []byte("k"))
	e, ok := tx.Get(0, []byte{})
	require.True(t, ok)
	require.NotNil(t, e.Blob, "byte kinds have a non-nil Blob")
	require.Empty(t, e.Blob)
	e, ok = tx.Get(0, []byte("k"))
	require.True(t, ok)
	require.Empty(t, e.Blob)
	tx.Unlock()
	n := 0
	for c := s.Scan(0, 0, 10, func(k []byte, e Entry) { n++ }); c != 0; c = s.Scan(0, c, 10, func([]byte, Entry) { n++ }) {
	}
	require.Equal(t, 2, n)
	require.True(t, del(s, 0, nil))
	require.Equal(t, 1, s.Len(0))
	checkStore(t, s)
}

func TestBigValues(t *testing.T) {
	s := newStore(t, Config{Shards: 1, ChunkSize: 64 << 10})
	big := value(3, 300<<10) // > ChunkSize
	mid := value(4, 20<<10)  // > ChunkSize/4: own mapping too
	set(s, 0, []byte("big"), big, 0)
	set(s, 0, []byte("mid"), mid, 0)
	set(s, 0, []byte("small"), []byte("s"), 0)
	v, ok := get(s, 0, []byte("big"))
	require.True(t, ok)
	require.Equal(t, big, v)
	v, _ = get(s, 0, []byte("mid"))
	require.Equal(t, mid, v)
	st := s.Stats()
	require.GreaterOrEqual(t, st.ArenaBytes, int64(320<<10+64<<10))
	checkStore(t, s)

	set(s, 0, []byte("big"), []byte("now small"), 0)
	require.True(t, del(s, 0, []byte("mid")))
	st2 := s.Stats()
	require.Less(t, st2.ArenaBytes, st.ArenaBytes-300<<10, "dedicated mappings are unmapped")
	checkStore(t, s)
}

func TestCompaction(t *testing.T) {
	s := newStore(t, Config{Shards: 1, ChunkSize: 64 << 10})
	const n = 4000
	for i := range n {
		set(s, 0, key(i), value(i, 500), 0)
	}
	before := s.Stats()
	// Rewrite three keys out of four: the old chunks keep a quarter live.
	for i := range n {
		if i%4 != 0 {
			set(s, 0, key(i), value(i+1, 500), 0)
		}
	}
	sparse := s.Stats()
	require.Greater(t, sparse.ArenaBytes, before.ArenaBytes*3/2)
	sh := &s.shards[0]
	sh.mu.Lock()
	require.True(t, sh.arena.hint)
	for steps := 0; sh.arena.hint; steps++ {
		require.Less(t, steps, 1000)
		sh.compactStepLocked()
	}
	sh.mu.Unlock()
	after := s.Stats()
	t.Logf("arena: %d before, %d sparse, %d after compaction (live %d)", before.ArenaBytes, sparse.ArenaBytes, after.ArenaBytes, after.ArenaLive)
	require.Less(t, after.ArenaBytes, sparse.ArenaBytes*3/4)
	require.Less(t, after.ArenaBytes, after.ArenaLive*5/4+2*64<<10)
	checkStore(t, s)
	for i := range n {
		want := value(i, 500)
		if i%4 != 0 {
			want = value(i+1, 500)
		}
		v, ok := get(s, 0, key(i))
		require.True(t, ok)
		require.Equal(t, want, v, i)
	}
}

func TestScanCompleteness(t *testing.T) {
	s := newStore(t, Config{Shards: 4, Databases: 2})
	const stable = 3000
	for i := range stable {
		set(s, 0, key(i), value(i, 20), 0)
		set(s, 1, key(i), value(i, 20), 0) // other db: never returned
	}
	seen := make(map[string]int)
	temp := 0
	var tempKeys [][]byte
	var cursor uint64
	calls := 0
	for {
		cursor = s.Scan(0, cursor, 25, func(k []byte, e Entry) {
			seen[string(k)]++
			require.NotNil(t, e.Blob)
		})
		calls++
		if cursor == 0 {
			break
		}
		// Churn between calls: grow to many temporary keys, then delete
		// them all, so that every index grows and shrinks mid-scan.
		if calls < 300 {
			for range 100 {
				k := []byte("temp:" + string(key(temp)))
				temp++
				set(s, 0, k, []byte("t"), 0)
				tempKeys = append(tempKeys, k)
			}
		} else {
			for range 300 {
				if len(tempKeys) == 0 {
					break
				}
				require.True(t, del(s, 0, tempKeys[0]))
				tempKeys = tempKeys[1:]
			}
		}
	}
	require.Greater(t, calls, 100)
	for i := range stable {
		require.Positive(t, seen[string(key(i))], "stable key %d missed", i)
	}
	for k := range seen {
		require.True(t, bytes.HasPrefix([]byte(k), []byte("key:")) || bytes.HasPrefix([]byte(k), []byte("temp:")))
	}
	checkStore(t, s)

	// Scan of an empty database completes at once.
	s2 := newStore(t, Config{})
	require.Zero(t, s2.Scan(3, 0, 10, func([]byte, Entry) { t.Fatal("no key expected") }))
}

func TestRandomKey(t *testing.T) {
	s := newStore(t, Config{Shards: 8, Databases: 2})
	_, ok := s.RandomKey(0, nil)
	require.False(t, ok)
	for i := range 100 {
		set(s, 1, key(i), []byte("v"), 0)
	}
	_, ok = s.RandomKey(0, nil)
	require.False(t, ok)
	seen := map[string]bool{}
	dst := []byte("prefix:")
	for range 2000 {
		k, ok := s.RandomKey(1, dst[:7])
		require.True(t, ok)
		require.True(t, bytes.HasPrefix(k, []byte("prefix:key:")))
		seen[string(k[7:])] = true
	}
	require.Greater(t, len(seen), 50)
}

func TestConcurrentUse(t *testing.T) {
	s := newStore(t, Config{Shards: 4, ChunkSize: 64 << 10})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				k := key(g*100000 + i%500)
				tx := s.Lock(k)
				switch i % 5 {
				case 0, 1:
					tx.Set(0, k, 0, value(i, i%900), tx.Now()+int64(i%3)*100_000)
				case 2:
					if e, ok := tx.Get(0, k); ok {
						_ = append([]byte(nil), e.Blob...)
					}
				case 3:
					tx.SetDeadline(0, k, tx.Now()+1_000_000)
				case 4:
					tx.Delete(0, k)
				}
				tx.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			var c uint64
			for {
				c = s.Scan(0, c, 50, func([]byte, Entry) {})
				if c == 0 {
					break
				}
			}
			s.Stats()
			s.RandomKey(0, nil)
		}
	})
	wg.Wait()
	checkStore(t, s)
}
