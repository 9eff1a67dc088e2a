package ttl

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// evicted collects what Evict hands to its callback.
type evicted struct {
	keys []string
	dbs  []int
}

func (ev *evicted) fn(db int, key []byte) {
	ev.keys = append(ev.keys, string(key))
	ev.dbs = append(ev.dbs, db)
}

// evictN evicts until n keys are gone (or nothing is left to evict).
func evictN(s *Store, n int) *evicted {
	ev := &evicted{}
	for len(ev.keys) < n {
		_, k := s.Evict(1<<50, n-len(ev.keys), ev.fn)
		if k == 0 {
			break
		}
	}
	return ev
}

func TestPolicyNames(t *testing.T) {
	names := []string{"noeviction", "volatile-ttl", "volatile-lru", "volatile-lfu", "volatile-random",
		"allkeys-lru", "allkeys-lfu", "allkeys-random"}
	for _, name := range names {
		p, ok := ParsePolicy(name)
		require.True(t, ok, name)
		assert.Equal(t, name, p.String())
	}
	_, ok := ParsePolicy("allkeys-ttl")
	assert.False(t, ok)
}

// VolatileTTL takes the keys nearest their deadline, across shards, and
// never a key without one.
func TestEvictVolatileTTLNearestFirst(t *testing.T) {
	s := newStore(t, Config{})
	s.SetEviction(VolatileTTL, 0)
	now := Now()
	for i := range 100 {
		set(s, 0, fmt.Appendf(nil, "near:%d", i), value(i, 100), now+60_000+int64(i))
		set(s, 0, fmt.Appendf(nil, "far:%d", i), value(i, 100), now+86_400_000+int64(i))
		set(s, 1, fmt.Appendf(nil, "persistent:%d", i), value(i, 100), 0)
	}
	ev := evictN(s, 100)
	require.Len(t, ev.keys, 100)
	for i, k := range ev.keys {
		assert.Regexp(t, `^near:`, k)
		assert.Equal(t, 0, ev.dbs[i])
	}
	ev = evictN(s, 1000)
	assert.Len(t, ev.keys, 100, "only the far keys are left to evict")
	for _, k := range ev.keys {
		assert.Regexp(t, `^far:`, k)
	}
	assert.Equal(t, 0, s.Len(0))
	assert.Equal(t, 100, s.Len(1), "keys without a deadline stay")
	assert.Zero(t, s.Stats().Expired, "evicted keys are not expired keys")
	checkStore(t, s)
}

// Within a shard the order is the deadlines' (to the wheel slot, and
// within a slot among the samples), whatever the order of insertion.
func TestEvictVolatileTTLOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Start on a level-3 slot boundary of the wheel (64^3 ms), so that
		// the next 262 s of deadlines land in level-2 slots of 4 s.
		time.Sleep(time.Duration(262144-Now()%262144) * time.Millisecond)
		s := newStore(t, Config{Shards: 1})
		s.SetEviction(VolatileTTL, 0)
		now := Now()
		for _, i := range rand.Perm(200) {
			set(s, 0, key(i), value(i, 10), now+int64(i+1)*1000)
		}
		ev := evictN(s, 50)
		want := make([]string, 50)
		for i := range want {
			want[i] = string(key(i))
		}
		assert.Equal(t, want, ev.keys)
	})
}

// forPolicies runs f as a subtest for each policy, in a synctest bubble,
// with a one-shard store under that policy holding key(0)…key(99), each
// with an hour to live.
func forPolicies(t *testing.T, policies []Policy, f func(t *testing.T, s *Store)) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStore(t, Config{Shards: 1})
				s.SetEviction(p, 0)
				for i := range 100 {
					set(s, 0, key(i), value(i, 10), Now()+3_600_000)
				}
				f(t, s)
			})
		})
	}
}

func TestEvictLRUKeepsReadKeys(t *testing.T) {
	forPolicies(t, []Policy{AllKeysLRU, VolatileLRU}, func(t *testing.T, s *Store) {
		time.Sleep(time.Second)
		hot := []int{3, 17, 42, 64, 99}
		for _, i := range hot {
			_, ok := get(s, 0, key(i))
			require.True(t, ok)
		}
		time.Sleep(time.Second)
		ev := evictN(s, 80)
		require.Len(t, ev.keys, 80)
		for _, i := range hot {
			assert.NotContains(t, ev.keys, string(key(i)))
			_, ok := get(s, 0, key(i))
			assert.True(t, ok, "key %d was read, it stays", i)
		}
		checkStore(t, s)
	})
}

func TestEvictLFUKeepsHotKey(t *testing.T) {
	forPolicies(t, []Policy{AllKeysLFU, VolatileLFU}, func(t *testing.T, s *Store) {
		for range 200 {
			get(s, 0, key(7))
		}
		// Recency does not matter to LFU: the cold keys are read last,
		// once.
		time.Sleep(time.Second)
		for i := range 100 {
			if i != 7 {
				get(s, 0, key(i))
			}
		}
		ev := evictN(s, 90)
		require.Len(t, ev.keys, 90)
		assert.NotContains(t, ev.keys, string(key(7)))
		_, ok := get(s, 0, key(7))
		assert.True(t, ok)
	})
}

func TestLFUCounter(t *testing.T) {
	now := int64(10 * 60_000)
	v := lfuPack(lfuInit, now)
	assert.Equal(t, uint32(lfuInit), lfuDecayed(v, now))
	assert.Equal(t, uint32(lfuInit-3), lfuDecayed(v, now+3*60_000), "one per minute idle")
	assert.Zero(t, lfuDecayed(v, now+60*60_000))
	c := uint32(lfuInit)
	for range 100_000 {
		c = lfuIncr(c)
	}
	assert.Greater(t, c, uint32(20), "grows with the log of the accesses")
	assert.Less(t, c, uint32(255))
	assert.Equal(t, uint32(255), lfuIncr(255))
}

func TestEvictRandom(t *testing.T) {
	fill := func(s *Store) {
		for i := range 50 {
			set(s, 0, fmt.Appendf(nil, "volatile:%d", i), value(i, 10), Now()+3_600_000)
			set(s, 0, fmt.Appendf(nil, "persistent:%d", i), value(i, 10), 0)
		}
	}
	t.Run("volatile-random", func(t *testing.T) {
		s := newStore(t, Config{Shards: 4})
		s.SetEviction(VolatileRandom, 0)
		fill(s)
		ev := evictN(s, 1000)
		assert.Len(t, ev.keys, 50)
		for _, k := range ev.keys {
			assert.Regexp(t, `^volatile:`, k)
		}
		assert.Equal(t, 50, s.Len(0))
		checkStore(t, s)
	})
	t.Run("allkeys-random", func(t *testing.T) {
		s := newStore(t, Config{Shards: 4})
		s.SetEviction(AllKeysRandom, 0)
		fill(s)
		ev := evictN(s, 60)
		require.Len(t, ev.keys, 60)
		var vol, pers int
		for _, k := range ev.keys {
			if k[0] == 'v' {
				vol++
			} else {
				pers++
			}
		}
		assert.Positive(t, vol)
		assert.Positive(t, pers)
		assert.Equal(t, 40, s.Len(0))
		assert.Len(t, evictN(s, 1000).keys, 40, "allkeys: everything can go")
		checkStore(t, s)
	})
}

func TestEvictNoEviction(t *testing.T) {
	s := newStore(t, Config{})
	set(s, 0, key(1), value(1, 10), Now()+1000)
	freed, n := s.Evict(1<<20, 100, nil)
	assert.Zero(t, n)
	assert.Zero(t, freed)
	assert.Equal(t, 1, s.Len(0))
}

// Evict reports memory given back to the OS, not bytes of records: it
// keeps removing keys until chunks can be unmapped, and compacts so that
// memory lost to scattered holes stays under an eighth.
func TestEvictReleasesMappedMemory(t *testing.T) {
	for _, p := range []Policy{VolatileTTL, AllKeysLRU, AllKeysRandom} {
		t.Run(p.String(), func(t *testing.T) {
			const chunk = 64 << 10
			s := newStore(t, Config{Shards: 1, ChunkSize: chunk})
			s.SetEviction(p, 0)
			const n, size = 8192, 1000 // 8 MB of records
			for i := range n {
				set(s, 0, key(i), value(i, size), Now()+3_600_000+int64(i))
			}
			require.Equal(t, s.Stats().ArenaBytes, s.MappedBytes())
			start := s.MappedBytes()
			require.Greater(t, start, int64(n*size))
			target := start / 2
			for range 10_000 {
				over := s.MappedBytes() - target
				if over <= 0 {
					break
				}
				before := s.MappedBytes()
				freed, k := s.Evict(over, 64, nil)
				require.Positive(t, k+int(freed))
				require.Equal(t, before-s.MappedBytes(), freed, "freed is mapped memory given back")
			}
			st := s.Stats()
			assert.LessOrEqual(t, s.MappedBytes(), target)
			assert.Equal(t, st.ArenaBytes, s.MappedBytes())
			// Not much more was evicted than needed: live records fill
			// about 7/8 of what stays mapped (the eighth is reckoned on
			// the larger mapped size of earlier steps), less the head.
			assert.GreaterOrEqual(t, st.ArenaLive, s.MappedBytes()*7/8-3*chunk,
				"mapped %d live %d keys %d", s.MappedBytes(), st.ArenaLive, st.Keys[0])
			checkStore(t, s)
		})
	}
}

// Switching to and from an LRU/LFU policy allocates and frees the access
// words, and keeps the entries that exist as just created.
func TestSetEvictionAccessTable(t *testing.T) {
	s := newStore(t, Config{Shards: 1})
	for i := range 3000 {
		set(s, 0, key(i), value(i, 10), 0)
	}
	sh := &s.shards[0]
	assert.Nil(t, sh.ev.access, "no access words without an LRU/LFU policy")
	s.SetEviction(AllKeysLFU, 0)
	require.Len(t, sh.ev.access, len(sh.segs))
	assert.Equal(t, uint32(lfuInit), lfuDecayed(*sh.accessSlot(firstID), Now()))
	s.SetEviction(AllKeysLRU, 10)
	assert.Equal(t, 10, s.ev.samples)
	assert.Equal(t, trackLRU, sh.ev.track)
	s.SetEviction(VolatileTTL, 0)
	assert.Nil(t, sh.ev.access)
	assert.Equal(t, DefaultSamples, s.ev.samples)
}

// Objects count as released when their key is evicted.
func TestEvictObjects(t *testing.T) {
	s := newStore(t, Config{Shards: 1})
	s.SetEviction(AllKeysRandom, 0)
	tx := s.Lock(key(1))
	tx.SetObject(0, key(1), 2, fakeObj(5000), 0)
	tx.Unlock()
	freed, n := s.Evict(1, 10, nil)
	assert.Equal(t, 1, n)
	assert.GreaterOrEqual(t, freed, int64(5000))
	assert.Zero(t, s.Stats().ObjectBytes)
}

type fakeObj int

func (o fakeObj) MemoryUsage() int { return int(o) }

func TestForSlotsOrder(t *testing.T) {
	s := newStore(t, Config{Shards: 1})
	now := Now()
	// Deadlines spread over every level the next days use.
	var dls []int64
	for i := range 40 {
		d := now + int64(1)<<(i%36) + int64(i)
		dls = append(dls, d)
		set(s, 0, key(i), value(i, 4), d)
	}
	sh := &s.shards[0]
	var seen []int64
	sh.mu.Lock()
	sh.forSlotsLocked(func(sid uint32) bool {
		var slot []int64
		for id := sh.ent(sid).next; id != sid; id = sh.ent(id).next {
			slot = append(slot, sh.ent(id).deadline)
		}
		slices.Sort(slot)
		seen = append(seen, slot...)
		return true
	})
	sh.mu.Unlock()
	slices.Sort(dls)
	assert.Equal(t, dls, seen, "slots come in deadline order")
}

// Evictions interleaved with writes, reads, deadline changes, deletes,
// expiry and flushes, under every policy, keep the store consistent.
func TestEvictRandomOps(t *testing.T) {
	for p := NoEviction; p <= AllKeysRandom; p++ {
		t.Run(p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStore(t, Config{Shards: 2, Databases: 2, ChunkSize: 64 << 10})
				s.SetEviction(p, 3)
				r := rand.New(rand.NewPCG(1, uint64(p)))
				for step := range 6000 {
					k := key(r.IntN(3000))
					db := r.IntN(2)
					switch op := r.IntN(100); {
					case op < 50:
						var dl int64
						if r.IntN(3) > 0 {
							dl = Now() + int64(r.IntN(5000))
						}
						set(s, db, k, value(step, 1+r.IntN(2000)), dl)
					case op < 70:
						get(s, db, k)
					case op < 80:
						tx := s.Lock(k)
						tx.SetDeadline(db, k, Now()+int64(r.IntN(3000)))
						tx.Unlock()
					case op < 85:
						del(s, db, k)
					case op < 86:
						tx := s.Lock(k)
						tx.SetObject(db, k, 2, fakeObj(r.IntN(100)), 0)
						tx.Unlock()
					case op < 99:
						before := s.MappedBytes()
						freed, _ := s.Evict(int64(r.IntN(256<<10)), 1+r.IntN(100), func(db int, key []byte) {
							require.Less(t, db, 2)
							require.Regexp(t, `^key:`, string(key))
						})
						require.LessOrEqual(t, before-s.MappedBytes(), freed, "freed counts mapped memory and objects")
					default:
						if r.IntN(20) == 0 {
							s.Flush(-1)
						} else {
							time.Sleep(time.Duration(r.IntN(500)) * time.Millisecond)
							s.Drain()
						}
					}
					if step%1000 == 0 {
						checkStore(t, s)
					}
				}
				checkStore(t, s)
				require.Equal(t, s.Stats().ArenaBytes, s.MappedBytes())
			})
		})
	}
}
