package ttl

import (
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// partObj is a PartExpirer: named parts with deadlines (0 for none).
type partObj struct {
	parts map[string]int64
	calls int // ExpireParts calls
}

func newPartObj(parts map[string]int64) *partObj {
	return &partObj{parts: maps.Clone(parts)}
}

func (o *partObj) MemoryUsage() int { return 10 * len(o.parts) }

func (o *partObj) NextExpiry() int64 {
	var m int64
	for _, d := range o.parts {
		if d != 0 && (m == 0 || d < m) {
			m = d
		}
	}
	return m
}

func (o *partObj) ExpireParts(now int64, limit int) (removed, left int) {
	o.calls++
	for _, name := range slices.Sorted(maps.Keys(o.parts)) {
		if removed == limit {
			break
		}
		if d := o.parts[name]; d != 0 && now > d {
			delete(o.parts, name)
			removed++
		}
	}
	return removed, len(o.parts)
}

// partReport is one OnObjectExpire call.
type partReport struct {
	db      int
	key     string
	removed bool
	at      int64
}

// partReports records OnObjectExpire calls.
type partReports struct {
	mu  sync.Mutex
	got []partReport
}

func (p *partReports) onObjectExpire(db int, key []byte, removed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, partReport{db: db, key: string(key), removed: removed, at: Now()})
}

func (p *partReports) take() []partReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.got
	p.got = nil
	return out
}

func setObj(s *Store, db int, k []byte, o Object, deadline int64) {
	tx := s.Lock(k)
	tx.SetObject(db, k, 9, o, deadline)
	tx.Unlock()
}

// getParts returns the live parts of the object under k, as a reader sees them.
func getParts(s *Store, db int, k []byte) ([]string, bool) {
	tx := s.Lock(k)
	defer tx.Unlock()
	e, ok := tx.Get(db, k)
	if !ok {
		return nil, false
	}
	return slices.Sorted(maps.Keys(e.Obj.(*partObj).parts)), true
}

func sleepUntil(ms int64) {
	time.Sleep(time.Until(time.UnixMilli(ms)))
	synctest.Wait()
}

// TestPartExpiryExact: Run removes each part 1 ms after its deadline, not
// before, reports it once, and deletes the key with its last part; a
// reader never sees an expired part.
func TestPartExpiryExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &partReports{}
		s := newStore(t, Config{Shards: 2, OnObjectExpire: rep.onObjectExpire})
		startRun(t, s)
		t0 := Now()
		keep := []byte("keep") // keeps a part without deadline
		gone := []byte("gone") // every part expires
		setObj(s, 1, keep, newPartObj(map[string]int64{"a": t0 + 10, "b": t0 + 20, "c": t0 + 20, "p": 0}), 0)
		setObj(s, 1, gone, newPartObj(map[string]int64{"x": t0 + 15, "y": t0 + 30}), 0)

		sleepUntil(t0 + 10)
		p, ok := getParts(s, 1, keep)
		require.True(t, ok)
		require.Equal(t, []string{"a", "b", "c", "p"}, p, "alive at its deadline")
		require.Empty(t, rep.take())

		sleepUntil(t0 + 11)
		require.Equal(t, []partReport{{db: 1, key: "keep", at: t0 + 11}}, rep.take())
		p, _ = getParts(s, 1, keep)
		require.Equal(t, []string{"b", "c", "p"}, p)

		sleepUntil(t0 + 16)
		require.Equal(t, []partReport{{db: 1, key: "gone", at: t0 + 16}}, rep.take())
		sleepUntil(t0 + 21)
		require.Equal(t, []partReport{{db: 1, key: "keep", at: t0 + 21}}, rep.take(), "b and c in one report")
		p, _ = getParts(s, 1, keep)
		require.Equal(t, []string{"p"}, p)

		sleepUntil(t0 + 31)
		require.Equal(t, []partReport{{db: 1, key: "gone", removed: true, at: t0 + 31}}, rep.take())
		_, ok = getParts(s, 1, gone)
		require.False(t, ok)
		require.Equal(t, 1, s.Len(1))
		st := s.Stats()
		require.EqualValues(t, 5, st.ExpiredParts)
		require.EqualValues(t, 10, st.ObjectBytes)
		require.Zero(t, st.Expired, "no key expired")
		checkStore(t, s)

		// Nothing more is scheduled: a day passes without a wake.
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		require.Empty(t, rep.take())
	})
}

// TestPartExpiryFollowsTheKey: the schedule belongs to the entry, so
// RENAME (the object moved to another key), DEL and a replacing SET carry
// or cancel it; Touched moves it.
func TestPartExpiryFollowsTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &partReports{}
		s := newStore(t, Config{Shards: 4, OnObjectExpire: rep.onObjectExpire})
		startRun(t, s)
		t0 := Now()
		parts := map[string]int64{"f": t0 + 100, "g": 0}

		// Rename: move the object, delete the source.
		src, dst := []byte("src"), []byte("dst")
		o := newPartObj(parts)
		setObj(s, 0, src, o, 0)
		tx := s.LockKeys(src, dst)
		tx.SetObject(0, dst, 9, o, 0)
		tx.Delete(0, src)
		tx.Unlock()

		// Delete and replace cancel.
		del1, rep1 := []byte("deleted"), []byte("replaced")
		setObj(s, 0, del1, newPartObj(parts), 0)
		setObj(s, 0, rep1, newPartObj(parts), 0)
		require.True(t, del(s, 0, del1))
		set(s, 0, rep1, []byte("a string now"), 0)

		// Touched moves the wake later, then earlier.
		later, earlier := []byte("later"), []byte("earlier")
		lo, eo := newPartObj(parts), newPartObj(parts)
		setObj(s, 0, later, lo, 0)
		setObj(s, 0, earlier, eo, 0)
		tx = s.LockKeys(later, earlier)
		lo.parts["f"] = t0 + 200
		tx.Touched(0, later)
		eo.parts["f"] = t0 + 50
		tx.Touched(0, earlier)
		tx.Unlock()

		sleepUntil(t0 + 51)
		require.Equal(t, []partReport{{key: "earlier", at: t0 + 51}}, rep.take())
		sleepUntil(t0 + 101)
		require.Equal(t, []partReport{{key: "dst", at: t0 + 101}}, rep.take())
		p, ok := getParts(s, 0, dst)
		require.True(t, ok)
		require.Equal(t, []string{"g"}, p)
		sleepUntil(t0 + 201)
		require.Equal(t, []partReport{{key: "later", at: t0 + 201}}, rep.take())
		checkStore(t, s)
	})
}

// TestPartExpiryMetByReaders: without Run, Get, Scan and RandomKey
// remove expired parts themselves (and the key with the last one), so no
// reader sees them; Drain then reports.
func TestPartExpiryMetByReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &partReports{}
		s := newStore(t, Config{Shards: 1, OnObjectExpire: rep.onObjectExpire})
		t0 := Now()
		a, b, c := []byte("a"), []byte("b"), []byte("c")
		setObj(s, 0, a, newPartObj(map[string]int64{"x": t0 + 5, "y": 0}), 0)
		setObj(s, 0, b, newPartObj(map[string]int64{"x": t0 + 5}), 0)
		setObj(s, 0, c, newPartObj(map[string]int64{"x": t0 + 5}), 0)
		time.Sleep(6 * time.Millisecond)

		p, ok := getParts(s, 0, a)
		require.True(t, ok)
		require.Equal(t, []string{"y"}, p)
		_, ok = getParts(s, 0, b)
		require.False(t, ok, "b lost its last part")
		var seen []string
		for cur := s.Scan(0, 0, 100, func(k []byte, _ Entry) { seen = append(seen, string(k)) }); cur != 0; {
			cur = s.Scan(0, cur, 100, func(k []byte, _ Entry) { seen = append(seen, string(k)) })
		}
		require.Equal(t, []string{"a"}, seen, "Scan removed c")
		k, ok := s.RandomKey(0, nil)
		require.True(t, ok)
		require.Equal(t, "a", string(k))
		require.Empty(t, rep.take(), "reports wait for Run or Drain")

		s.Drain()
		got := rep.take()
		slices.SortFunc(got, func(x, y partReport) int { return int(x.key[0]) - int(y.key[0]) })
		now := Now()
		require.Equal(t, []partReport{
			{key: "a", at: now},
			{key: "b", removed: true, at: now},
			{key: "c", removed: true, at: now},
		}, got)
		require.EqualValues(t, 3, s.Stats().ExpiredParts)
		checkStore(t, s)

		// RandomKey meets a key whose last part expired: it removes it and
		// finds nothing else.
		setObj(s, 0, b, newPartObj(map[string]int64{"x": Now() + 1}), 0)
		tx := s.Lock(a)
		require.True(t, tx.Delete(0, a))
		tx.Unlock()
		time.Sleep(2 * time.Millisecond)
		for range 10 {
			if _, ok := s.RandomKey(0, nil); !ok {
				break
			}
		}
		_, ok = s.RandomKey(0, nil)
		require.False(t, ok)
		require.Zero(t, s.Len(0))
		checkStore(t, s)
	})
}

// TestPartExpiryAndKeyExpiry: when the key expires in the same
// millisecond as parts (or before a reader met them), the key's expiry
// wins and the parts are not reported.
func TestPartExpiryAndKeyExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &partReports{}
		keys := newExpiries()
		s := newStore(t, Config{Shards: 2, OnExpire: keys.onExpire, OnObjectExpire: rep.onObjectExpire})
		t0 := Now()
		same, met := []byte("same"), []byte("met")
		setObj(s, 0, same, newPartObj(map[string]int64{"x": t0 + 10, "y": 0}), t0+10)
		setObj(s, 0, met, newPartObj(map[string]int64{"x": t0 + 5, "y": 0}), t0+8)
		time.Sleep(9 * time.Millisecond)
		_, ok := getParts(s, 0, met) // a Txn meets the expired key first
		require.False(t, ok)
		startRun(t, s)
		sleepUntil(t0 + 11)
		require.Empty(t, rep.take())
		require.Equal(t, 1, keys.count(0, same))
		require.Equal(t, 1, keys.count(0, met))
		require.Zero(t, s.Stats().ExpiredParts)
		checkStore(t, s)
	})
}

// TestPartExpiryBatches: one object with many parts due together is
// worked through in passes of at most ExpireBatch parts, each reported.
func TestPartExpiryBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &partReports{}
		s := newStore(t, Config{Shards: 1, ExpireBatch: 16, OnObjectExpire: rep.onObjectExpire})
		startRun(t, s)
		t0 := Now()
		parts := map[string]int64{"keep": 0}
		for i := range 100 {
			parts[string(key(i))] = t0 + 3
		}
		o := newPartObj(parts)
		setObj(s, 0, []byte("big"), o, 0)
		sleepUntil(t0 + 4)
		got := rep.take()
		require.Len(t, got, 7, "100 parts in passes of 16")
		for _, r := range got {
			require.Equal(t, t0+4, r.at)
			require.False(t, r.removed)
		}
		require.Equal(t, 7, o.calls)
		require.Equal(t, map[string]int64{"keep": 0}, o.parts)
		checkStore(t, s)
	})
}

// TestPartExpiryFlushAndChurn: flushed objects are never reported, and a
// wake that keeps moving leaves a bounded heap.
func TestPartExpiryFlushAndChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &partReports{}
		s := newStore(t, Config{Shards: 1, Databases: 2, OnObjectExpire: rep.onObjectExpire})
		startRun(t, s)
		t0 := Now()
		for i := range 10 {
			setObj(s, i%2, key(i), newPartObj(map[string]int64{"x": t0 + 5, "y": 0}), 0)
		}
		s.Flush(1)
		sleepUntil(t0 + 6)
		got := rep.take()
		require.Len(t, got, 5)
		for _, r := range got {
			require.Zero(t, r.db)
		}
		s.Flush(-1)
		checkStore(t, s)

		// Slide one part's deadline 10,000 times, as a session refresh would.
		k := []byte("sliding")
		o := newPartObj(map[string]int64{"x": Now() + 1000, "y": 0})
		setObj(s, 0, k, o, 0)
		for i := range 10_000 {
			tx := s.Lock(k)
			e, ok := tx.Get(0, k)
			require.True(t, ok)
			e.Obj.(*partObj).parts["x"] = Now() + 1000 + int64(i%7)
			tx.Touched(0, k)
			tx.Unlock()
		}
		sh := &s.shards[0]
		sh.mu.Lock()
		n := len(sh.pheap)
		sh.mu.Unlock()
		assert.LessOrEqual(t, n, 2*1+64, "stale items are dropped")
		checkStore(t, s)
		sleepUntil(Now() + 1007)
		require.Len(t, rep.take(), 1)
		require.Equal(t, map[string]int64{"y": 0}, o.parts)
		checkStore(t, s)
	})
}

// badObj claims a due part it never removes: the store must not spin.
type badObj struct{ calls int }

func (o *badObj) MemoryUsage() int                           { return 1 }
func (o *badObj) NextExpiry() int64                          { return 1 }
func (o *badObj) ExpireParts(int64, int) (removed, left int) { o.calls++; return 0, 1 }

func TestPartExpiryMisbehavingObject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{Shards: 1})
		startRun(t, s)
		o := &badObj{}
		setObj(s, 0, []byte("bad"), o, 0)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		require.LessOrEqual(t, o.calls, 102, "at most one retry per ms")
	})
}

// TestPartExpiryReadersAcrossResets: Scan and RandomKey delete keys whose
// last parts expired while they walk; the entry table may be reset (the
// shard's last key went) and the index shrink under them.
func TestPartExpiryReadersAcrossResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, Config{Shards: 1})
		t0 := Now()
		// The object's id just below the end of the first segment, then ids
		// past it, all freed.
		for i := range 1500 {
			if i == segSize-firstID-5 {
				setObj(s, 0, []byte("obj"), newPartObj(map[string]int64{"x": t0 + 1}), 0)
			}
			set(s, 0, key(i), []byte("v"), 0)
		}
		for i := range 1500 {
			require.True(t, del(s, 0, key(i)))
		}
		time.Sleep(2 * time.Millisecond)
		n := 0
		for c := s.Scan(0, 0, 10, func([]byte, Entry) { n++ }); c != 0; {
			c = s.Scan(0, c, 10, func([]byte, Entry) { n++ })
		}
		require.Zero(t, n)
		require.Zero(t, s.Len(0))
		checkStore(t, s)

		// Many dead objects around one live key: RandomKey finds the key.
		t0 = Now()
		for i := range 300 {
			setObj(s, 0, key(i), newPartObj(map[string]int64{"x": t0 + 1}), 0)
		}
		set(s, 0, []byte("live"), []byte("v"), 0)
		time.Sleep(2 * time.Millisecond)
		var got []byte
		for range 100 {
			k, ok := s.RandomKey(0, nil)
			require.True(t, ok)
			if string(k) == "live" {
				got = k
				break
			}
		}
		require.Equal(t, "live", string(got))
		checkStore(t, s)
	})
}
