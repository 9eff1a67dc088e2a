package ttl

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// modelEntry is what the model keeps per key.
type modelEntry struct {
	kind     Kind
	val      []byte
	obj      Object // *testObj or *partObj, shared with the store
	deadline int64
	// parts is the model's own copy of a *partObj's parts: the parts
	// alive now, by name, with their deadlines.
	parts map[string]int64
}

// pendingKey is a key that expired and has not been reported yet. met
// tells whether a Txn met it (then Flush leaves it to be reported).
type pendingKey struct {
	db  int
	key string
	met bool
}

// fuzzModel is the reference: a plain map per database.
type fuzzModel struct {
	dbs     []map[string]modelEntry
	pending []pendingKey // expired, not reported yet
	// partReps is, per "db/key", whether parts expired and the object was
	// left empty (true) or not, since the last check.
	partReps map[string]bool
}

// expireParts removes the parts expired at now. With Run (chrono), Run
// removed them at their time, so only those due before the key's own
// deadline count (after it the key expired with them); without Run only
// objects without a key deadline have parts (see runFuzzOps).
func (m *fuzzModel) expireParts(now int64) {
	for db, keys := range m.dbs {
		for k, e := range keys {
			if e.parts == nil {
				continue
			}
			n := 0
			for name, d := range e.parts {
				if d != 0 && d < now && (e.deadline == 0 || d < e.deadline) {
					delete(e.parts, name)
					n++
				}
			}
			if n == 0 {
				continue
			}
			rk := fmt.Sprintf("%d/%q", db, k)
			m.partReps[rk] = m.partReps[rk] || len(e.parts) == 0
			if len(e.parts) == 0 {
				delete(keys, k)
			}
		}
	}
}

// fuzzPartDeadline decodes a part deadline: none, or in the future.
func fuzzPartDeadline(c byte, now int64) int64 {
	if c < 64 {
		return 0
	}
	return now + int64(c-63)
}

const (
	fuzzDBs  = 3
	fuzzKeys = 24
)

func fuzzKey(i int) []byte {
	if i == 0 {
		return []byte{}
	}
	return fmt.Appendf(nil, "k%d%s", i, bytes.Repeat([]byte{'x'}, i*5%37))
}

// expire moves the model's expired keys to pending.
func (m *fuzzModel) expire(now int64) {
	for db, keys := range m.dbs {
		for k, e := range keys {
			if e.deadline != 0 && now > e.deadline {
				delete(keys, k)
				m.pending = append(m.pending, pendingKey{db: db, key: k})
			}
		}
	}
}

// meet marks pending keys a Txn met.
func (m *fuzzModel) meet(db int, k string) {
	for i := range m.pending {
		if m.pending[i].db == db && m.pending[i].key == k {
			m.pending[i].met = true
		}
	}
}

// fuzzReader decodes the op stream.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func FuzzStoreOps(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 5, 1, 1, 1, 0, 1})
	f.Add([]byte{1, 0, 0, 3, 1, 2, 40, 4, 30, 1, 0, 3, 4, 50, 6, 0})
	f.Add([]byte{0, 0, 2, 7, 3, 3, 10, 0, 1, 7, 9, 2, 4, 255, 4, 12, 5, 2, 6, 1, 10, 0})
	f.Add([]byte{0x40, 12, 0, 1, 0, 3, 80, 90, 100, 8, 0, 0, 30, 13, 0, 1, 2, 200, 8, 0, 0, 40, 11, 0, 0, 8, 0, 0, 200, 10, 0, 0})
	f.Add([]byte{0x41, 12, 0, 1, 0, 2, 70, 0, 3, 0, 1, 10, 0, 2, 8, 0, 0, 20, 5, 0, 1, 11, 0, 0, 13, 0, 2, 1, 65})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) { runFuzzOps(t, data) })
	})
}

func runFuzzOps(t *testing.T, data []byte) {
	r := &fuzzReader{b: data}
	mode := r.byte()
	withRun := mode&1 == 0
	withParts := mode&0x40 != 0 // enables ops 12 and 13 (leaves older inputs as they were)
	var reported []pendingKey
	reportedParts := map[string]bool{}
	s, err := New(Config{
		Shards:      1 << (mode >> 1 & 3), // 1 to 8
		Databases:   fuzzDBs,
		ExpireBatch: 1 + int(mode>>3&7),
		ChunkSize:   64 << 10,
		OnExpire: func(db int, keys [][]byte) {
			for _, k := range keys {
				reported = append(reported, pendingKey{db: db, key: string(k)})
			}
		},
		OnObjectExpire: func(db int, key []byte, removed bool) {
			rk := fmt.Sprintf("%d/%q", db, key)
			reportedParts[rk] = reportedParts[rk] || removed
		},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	if withRun {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() {
			cancel()
			require.NoError(t, <-done)
		}()
	}
	m := &fuzzModel{partReps: map[string]bool{}}
	for range fuzzDBs {
		m.dbs = append(m.dbs, make(map[string]modelEntry))
	}
	serial := 0
	// checkReported compares what OnExpire got with the model's pending
	// keys, once everything due has been reported.
	checkReported := func() {
		key := func(p pendingKey) string { return fmt.Sprintf("%d/%q", p.db, p.key) }
		var got, want []string
		for _, p := range reported {
			got = append(got, key(p))
		}
		for _, p := range m.pending {
			want = append(want, key(p))
		}
		slices.Sort(got)
		slices.Sort(want)
		require.Equal(t, want, got, "keys reported to OnExpire")
		reported, m.pending = nil, nil
		if withRun {
			// Without Run, which reader meets an object first is up to
			// RandomKey's choice.
			require.Equal(t, m.partReps, reportedParts, "objects reported to OnObjectExpire")
		}
		clear(m.partReps)
		clear(reportedParts)
	}
	// checkParts compares an object the store returned with the model.
	checkParts := func(want modelEntry, e Entry) {
		if want.parts == nil {
			return
		}
		require.Equal(t, want.parts, e.Obj.(*partObj).parts, "parts")
	}

	for len(r.b) > 0 {
		op := r.byte()
		if withParts {
			op %= 14
		} else {
			op %= 12
		}
		db := int(r.byte() % fuzzDBs)
		ki := int(r.byte() % fuzzKeys)
		k := fuzzKey(ki)
		tx := s.Lock(k)
		now := tx.Now()
		m.expireParts(now)
		m.expire(now)
		switch op {
		case 0, 1: // set
			c := r.byte()
			var n int
			switch c & 3 {
			case 0:
				n = int(c >> 2)
			case 1:
				n = 64 + int(c>>2)*30
			case 2:
				n = int(c>>2) * 400 // up to 25 KB: some own mappings
			case 3:
				n = 70<<10 + int(c>>2) // bigger than a chunk
			}
			serial++
			v := value(serial, n)
			dl := fuzzDeadline(r.byte(), now)
			kind := Kind(r.byte())
			tx.Set(db, k, kind, v, dl)
			m.meet(db, string(k))
			if dl != 0 && dl <= now {
				delete(m.dbs[db], string(k))
			} else {
				m.dbs[db][string(k)] = modelEntry{kind: kind, val: v, deadline: dl}
			}
		case 2: // set object
			dl := fuzzDeadline(r.byte(), now)
			o := &testObj{n: int(r.byte())}
			tx.SetObject(db, k, 200, o, dl)
			m.meet(db, string(k))
			if dl != 0 && dl <= now {
				delete(m.dbs[db], string(k))
			} else {
				m.dbs[db][string(k)] = modelEntry{kind: 200, obj: o, deadline: dl}
			}
		case 3, 4: // get
			e, ok := tx.Get(db, k)
			m.meet(db, string(k))
			want, wok := m.dbs[db][string(k)]
			require.Equal(t, wok, ok, "Get(%d, %q)", db, k)
			if ok {
				require.Equal(t, want.kind, e.Kind)
				require.Equal(t, want.deadline, e.Deadline)
				if want.obj != nil {
					require.Same(t, want.obj, e.Obj)
					require.Nil(t, e.Blob)
					checkParts(want, e)
				} else {
					require.Nil(t, e.Obj)
					require.True(t, bytes.Equal(want.val, e.Blob), "value of %q", k)
				}
			}
		case 5: // delete
			ok := tx.Delete(db, k)
			m.meet(db, string(k))
			_, wok := m.dbs[db][string(k)]
			require.Equal(t, wok, ok, "Delete(%d, %q)", db, k)
			delete(m.dbs[db], string(k))
		case 6: // set deadline
			dl := fuzzDeadline(r.byte(), now)
			if want := m.dbs[db][string(k)]; !withRun && want.parts != nil {
				break // without Run, objects with parts have no key deadline
			}
			ok := tx.SetDeadline(db, k, dl)
			m.meet(db, string(k))
			want, wok := m.dbs[db][string(k)]
			require.Equal(t, wok, ok, "SetDeadline(%d, %q)", db, k)
			if wok {
				if dl != 0 && dl <= now {
					delete(m.dbs[db], string(k))
				} else {
					want.deadline = dl
					m.dbs[db][string(k)] = want
				}
			}
		case 7: // touch an object
			e, ok := tx.Get(db, k)
			m.meet(db, string(k))
			if o, isTest := e.Obj.(*testObj); ok && isTest {
				o.n += 3
				tx.Touched(db, k)
			}
		case 12: // set an object with parts
			dl := int64(0)
			if withRun {
				dl = fuzzDeadline(r.byte(), now)
			}
			n := 1 + int(r.byte()%4)
			parts := make(map[string]int64, n)
			for i := range n {
				parts[fmt.Sprintf("p%d", i)] = fuzzPartDeadline(r.byte(), now)
			}
			o := newPartObj(parts)
			tx.SetObject(db, k, 201, o, dl)
			m.meet(db, string(k))
			if dl != 0 && dl <= now {
				delete(m.dbs[db], string(k))
			} else {
				m.dbs[db][string(k)] = modelEntry{kind: 201, obj: o, deadline: dl, parts: parts}
			}
		case 13: // change (or add) a part's deadline
			name := fmt.Sprintf("p%d", r.byte()%6)
			d := fuzzPartDeadline(r.byte(), now)
			e, ok := tx.Get(db, k)
			m.meet(db, string(k))
			if o, isParts := e.Obj.(*partObj); ok && isParts {
				o.parts[name] = d
				tx.Touched(db, k)
				m.dbs[db][string(k)].parts[name] = d
			}
		}
		tx.Unlock()
		switch op {
		case 8: // advance time
			d := time.Duration(r.byte()) * time.Millisecond
			if d > 200*time.Millisecond {
				d = 10 * time.Second
			}
			time.Sleep(d)
			synctest.Wait()
			if withRun {
				m.expireParts(Now())
				m.expire(Now())
				checkReported()
			}
		case 9: // flush
			if ki%4 == 0 {
				s.Flush(-1)
				for db := range m.dbs {
					clear(m.dbs[db])
				}
			} else {
				s.Flush(db)
				clear(m.dbs[db])
			}
			// Expired keys nobody met go with the flush, unreported.
			m.pending = slices.DeleteFunc(m.pending, func(p pendingKey) bool {
				return !p.met && (ki%4 == 0 || p.db == db)
			})
		case 10: // full scan, with a small count
			got := map[string]int{}
			var c uint64
			for calls := 0; ; calls++ {
				require.Less(t, calls, 10_000)
				c = s.Scan(db, c, 1+ki%5, func(key []byte, e Entry) {
					got[string(key)]++
					want, ok := m.dbs[db][string(key)]
					require.True(t, ok, "Scan returned %q", key)
					require.Equal(t, want.deadline, e.Deadline)
					if want.obj == nil {
						require.True(t, bytes.Equal(want.val, e.Blob))
					}
					checkParts(want, e)
				})
				if c == 0 {
					break
				}
			}
			require.Len(t, got, len(m.dbs[db]))
			for k, n := range got {
				require.Equal(t, 1, n, "key %q visited once without changes", k)
			}
		case 11: // counts, random key, drain, invariants
			if withRun {
				require.Equal(t, len(m.dbs[db]), s.Len(db))
			}
			k, ok := s.RandomKey(db, nil)
			if ok {
				_, live := m.dbs[db][string(k)]
				require.True(t, live, "RandomKey returned %q", k)
			} else if withRun {
				require.Empty(t, m.dbs[db])
			}
			var objMem int64
			for _, keys := range m.dbs {
				for _, e := range keys {
					if e.obj != nil {
						objMem += int64(e.obj.MemoryUsage())
					}
				}
			}
			if withRun {
				require.Equal(t, objMem, s.Stats().ObjectBytes)
			}
			if ki%3 == 1 { // compact now, as Run would
				for i := range s.shards {
					sh := &s.shards[i]
					sh.mu.Lock()
					for n := 0; sh.arena.hint && n < 100; n++ {
						sh.compactStepLocked()
					}
					sh.mu.Unlock()
				}
			}
			if ki%2 == 0 {
				s.Drain()
				m.expireParts(Now())
				m.expire(Now())
				checkReported()
			}
			checkStore(t, s)
		}
	}
	s.Drain()
	m.expireParts(Now())
	m.expire(Now())
	checkReported()
	checkStore(t, s)
}

// fuzzDeadline decodes a deadline relative to now: none, past, near, far.
func fuzzDeadline(c byte, now int64) int64 {
	switch {
	case c < 64:
		return 0
	case c < 80:
		return now - int64(c-64) // at or before now: deletes
	case c < 250:
		return now + int64(c-79)
	default:
		return now + int64(c)*1_000_000
	}
}
