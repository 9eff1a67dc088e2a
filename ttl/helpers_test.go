package ttl

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// newStore returns a Store closed when the test ends.
func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		if !t.Failed() { // a failed test may have left a shard locked
			require.NoError(t, s.Close())
		}
	})
	return s
}

func key(i int) []byte { return fmt.Appendf(nil, "key:%08d", i) }

// value returns n deterministic bytes for seed.
func value(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*7 + i*31 + i>>8)
	}
	return b
}

func set(s *Store, db int, k, v []byte, deadline int64) {
	t := s.Lock(k)
	t.Set(db, k, 0, v, deadline)
	t.Unlock()
}

func get(s *Store, db int, k []byte) ([]byte, bool) {
	t := s.Lock(k)
	defer t.Unlock()
	e, ok := t.Get(db, k)
	if !ok {
		return nil, false
	}
	return append([]byte{}, e.Blob...), true
}

func del(s *Store, db int, k []byte) bool {
	t := s.Lock(k)
	defer t.Unlock()
	return t.Delete(db, k)
}

// checkStore verifies the internal invariants of every shard.
func checkStore(t testing.TB, s *Store) {
	t.Helper()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		err := sh.check()
		sh.mu.Unlock()
		require.NoError(t, err, "shard %d", i)
	}
}

func (sh *shard) check() error {
	a := &sh.arena
	chunkLive := make([]int, len(a.chunks))
	counts := make([]int, len(sh.dbs))
	expires := make([]int, len(sh.dbs))
	used, zombies, free := 0, 0, 0
	for id := uint32(firstID); id < sh.nids; id++ {
		e := sh.ent(id)
		if e.meta == 0 {
			free++
			continue
		}
		used++
		ci := e.loc() >> a.shift
		if int(ci) >= len(a.chunks) || a.chunks[ci].mem == nil {
			return fmt.Errorf("id %d points at unmapped chunk %d", id, ci)
		}
		k, size := recordKey(a.bytes(e.loc()))
		chunkLive[ci] += size
		_, vf, _ := parseHeader(a.bytes(e.loc()))
		if _, ok := sh.objs[id]; ok != (vf&1 != 0) {
			return fmt.Errorf("id %d: object flag %v, side table %v", id, vf&1 != 0, ok)
		}
		if e.deadline == zombieDeadline {
			zombies++
			if e.next == 0 {
				return fmt.Errorf("zombie %d not linked", id)
			}
			continue
		}
		db := e.db()
		counts[db]++
		if e.deadline != 0 {
			expires[db]++
			if e.next == 0 {
				return fmt.Errorf("id %d has a deadline and is not in the wheel", id)
			}
		} else if e.next != 0 {
			return fmt.Errorf("id %d has no deadline and is in the wheel", id)
		}
		ix := &sh.dbs[db]
		if _, got := sh.findLocked(ix, k, sh.hash(k)); got != id {
			return fmt.Errorf("id %d (%q) not found in index of db %d (got %d)", id, k, db, got)
		}
	}
	if used != sh.used || zombies != sh.zombies {
		return fmt.Errorf("used %d/%d zombies %d/%d", used, sh.used, zombies, sh.zombies)
	}
	n := 0
	for id := sh.freeID; id != 0; id = sh.ent(id).next {
		n++
		if n > free {
			return fmt.Errorf("free list longer than %d", free)
		}
	}
	if n != free {
		return fmt.Errorf("free list %d, free ids %d", n, free)
	}
	for db := range sh.dbs {
		ix := &sh.dbs[db]
		if counts[db] != ix.count || expires[db] != ix.expires {
			return fmt.Errorf("db %d: count %d/%d expires %d/%d", db, counts[db], ix.count, expires[db], ix.expires)
		}
		slots := 0
		for pos, id := range ix.ids {
			if id == 0 {
				continue
			}
			slots++
			want := (home(sh.hashID(id), len(ix.ids)) + int(ix.disp[pos])) % len(ix.ids)
			if want != pos {
				return fmt.Errorf("db %d slot %d: id %d belongs at %d", db, pos, id, want)
			}
		}
		if slots != ix.count {
			return fmt.Errorf("db %d: %d slots used, count %d", db, slots, ix.count)
		}
	}
	var mapped, live int64
	for ci := 1; ci < len(a.chunks); ci++ {
		c := &a.chunks[ci]
		if c.mem == nil {
			continue
		}
		mapped += int64(len(c.mem))
		live += int64(c.live)
		if c.live != chunkLive[ci] {
			return fmt.Errorf("chunk %d: live %d, records %d", ci, c.live, chunkLive[ci])
		}
		if c.live == 0 && uint32(ci) != a.head {
			return fmt.Errorf("chunk %d empty but mapped", ci)
		}
	}
	if mapped != a.mapped || live != a.live {
		return fmt.Errorf("arena mapped %d/%d live %d/%d", mapped, a.mapped, live, a.live)
	}
	woken := 0
	items := make(map[pitem]bool, len(sh.pheap))
	for i, it := range sh.pheap {
		items[it] = true
		if i > 0 && sh.pheap[i].less(sh.pheap[(i-1)/2]) {
			return fmt.Errorf("part heap: item %d before its parent", i)
		}
	}
	for id, r := range sh.objs {
		if r.wake == 0 {
			continue
		}
		woken++
		if !items[pitem{wake: r.wake, id: id}] {
			return fmt.Errorf("object %d: wake %d not in the part heap", id, r.wake)
		}
		if e := sh.ent(id); e.deadline == zombieDeadline {
			return fmt.Errorf("zombie %d has a wake", id)
		}
	}
	if woken != sh.pcur {
		return fmt.Errorf("pcur %d, objects with a wake %d", sh.pcur, woken)
	}
	for lvl := range wheelLevels {
		for slot := range wheelSlots {
			sid := slotID(lvl, slot)
			empty := sh.ent(sid).next == sid
			if empty == (sh.wheel.occ[lvl]&(1<<slot) != 0) {
				return fmt.Errorf("wheel level %d slot %d: empty %v, bitmap disagrees", lvl, slot, empty)
			}
		}
	}
	return nil
}
