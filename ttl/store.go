package ttl

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// ErrRunning is returned by Run when another Run of the same Store has not
// returned yet, and by Close when Run has not returned.
var ErrRunning = errors.New("ttl: Run already running")

// Store is a sharded in-memory map from (database, key) to a value with an
// optional deadline. Keys and byte values live in off-heap arena chunks;
// expiry is driven by one hierarchical timer wheel per shard. All methods are
// safe for concurrent use.
type Store struct {
	shards    []shard
	mask      uint64
	ndb       int
	batch     int
	chunkSize int
	onExpire  func(db int, keys [][]byte)
	onObjExp  func(db int, key []byte, removed bool)
	seed      maphash.Seed

	// wake pokes Run when a shard's next due time moves before planned,
	// the Unix ms Run plans to wake at (math.MinInt64 while it works).
	wake    chan struct{}
	planned atomic.Int64
	running atomic.Bool

	// expMu serializes expiry passes that report keys (Run, Drain) and
	// guards out, the buffer expired keys are copied into.
	expMu sync.Mutex
	out   expOut

	ev storeEvict // eviction policy and state (evict.go)

	// preserve is the running capture's PreserveFunc (capture.go); written
	// with every shard locked, read with one locked.
	preserve PreserveFunc

	closeMu sync.Mutex
	closed  bool // guarded by closeMu
}

// New returns a Store configured by cfg. It starts no goroutine: the owner
// calls Run.
func New(cfg Config) (*Store, error) {
	if cfg.Shards == 0 {
		cfg.Shards = 32
	}
	if cfg.Databases == 0 {
		cfg.Databases = 16
	}
	if cfg.ExpireBatch == 0 {
		cfg.ExpireBatch = 512
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 256 << 10
	}
	switch {
	case cfg.Shards < 1 || cfg.Shards > 256 || cfg.Shards&(cfg.Shards-1) != 0:
		return nil, fmt.Errorf("%w: Shards %d is not a power of two between 1 and 256", ErrConfig, cfg.Shards)
	case cfg.Databases < 1 || cfg.Databases > 256:
		return nil, fmt.Errorf("%w: Databases %d is not between 1 and 256", ErrConfig, cfg.Databases)
	case cfg.ExpireBatch < 1:
		return nil, fmt.Errorf("%w: ExpireBatch %d is not positive", ErrConfig, cfg.ExpireBatch)
	case cfg.ChunkSize < 64<<10 || cfg.ChunkSize > 64<<20 || cfg.ChunkSize&(cfg.ChunkSize-1) != 0:
		return nil, fmt.Errorf("%w: ChunkSize %d is not a power of two between 64 KiB and 64 MiB", ErrConfig, cfg.ChunkSize)
	}
	s := &Store{
		shards:    make([]shard, cfg.Shards),
		mask:      uint64(cfg.Shards - 1),
		ndb:       cfg.Databases,
		batch:     cfg.ExpireBatch,
		chunkSize: cfg.ChunkSize,
		onExpire:  cfg.OnExpire,
		onObjExp:  cfg.OnObjectExpire,
		seed:      maphash.MakeSeed(),
		wake:      make(chan struct{}, 1),
	}
	s.planned.Store(math.MaxInt64)
	now := Now()
	for i := range s.shards {
		s.shards[i].init(s, now)
	}
	return s, nil
}

// Close releases the off-heap memory. Call it after Run has returned (else
// it returns ErrRunning and does nothing); the Store must not be used
// afterwards. It is idempotent.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	if s.running.Load() {
		return ErrRunning
	}
	s.closed = true
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.arena.reset()
		clear(sh.dbs)
		sh.objs = nil
		sh.objMem = 0
		sh.pheap = nil
		sh.pcur = 0
		sh.pend = partOut{}
		sh.segs = nil
		sh.nids = 0
		sh.mu.Unlock()
	}
	return nil
}

func (s *Store) checkDB(db int) {
	if uint(db) >= uint(s.ndb) {
		panic(fmt.Sprintf("ttl: database %d out of range [0, %d)", db, s.ndb))
	}
}

// Lock locks the shard that holds key and returns a Txn for it. The Txn
// sees time as it was when it was locked. Cost: one mutex acquisition.
func (s *Store) Lock(key []byte) Txn {
	i := maphash.Bytes(s.seed, key) & s.mask
	s.shards[i].mu.Lock()
	t := Txn{s: s}
	t.locked[i>>6] = 1 << (i & 63)
	t.now = Now()
	return t
}

// LockKeys locks the shards that hold keys, in shard order (no deadlock
// between concurrent LockKeys), and returns a Txn covering them.
func (s *Store) LockKeys(keys ...[]byte) Txn {
	t := Txn{s: s}
	for _, k := range keys {
		i := maphash.Bytes(s.seed, k) & s.mask
		t.locked[i>>6] |= 1 << (i & 63)
	}
	for w, m := range t.locked {
		for m != 0 {
			b := bits.TrailingZeros64(m)
			m &^= 1 << b
			s.shards[w<<6|b].mu.Lock()
		}
	}
	t.now = Now()
	return t
}

// LockAll locks every shard. It blocks all other users of the store until
// Unlock: use it for multi-key atomic work whose keys are not known up front.
func (s *Store) LockAll() Txn {
	t := Txn{s: s}
	for i := range s.shards {
		s.shards[i].mu.Lock()
		t.locked[i>>6] |= 1 << (i & 63)
	}
	t.now = Now()
	return t
}

// Scan visits up to about count live entries of db, starting at cursor (0
// to begin), calling fn with the shard lock held (fn must not use the
// store; key and e.Blob are valid only during the call). It returns the
// cursor to continue from, 0 when the scan is complete. A key that exists
// during the whole scan is visited at least once.
//
// The cursor is a shard index and an entry id; ids do not change while a
// key lives, so index growth does not make the scan miss keys. One call
// looks at no more than about 10*count slots, so it may return fewer than
// count entries (even none) with a non-zero cursor.
func (s *Store) Scan(db int, cursor uint64, count int, fn func(key []byte, e Entry)) uint64 {
	s.checkDB(db)
	if count <= 0 {
		count = 10
	}
	count = min(count, 1<<24)
	si := int(cursor & 0xff)
	id64 := cursor >> 8
	if si >= len(s.shards) || id64 > math.MaxUint32 {
		return 0
	}
	id := max(uint32(id64), firstID)
	budget, found := count*10, 0
	now := Now()
	for {
		var end uint32
		id, end = s.shards[si].scan(db, id, now, count, &found, &budget, fn)
		if id < end {
			return uint64(id)<<8 | uint64(si)
		}
		si++
		budget--
		if si == len(s.shards) {
			return 0
		}
		id = firstID
		if found >= count || budget <= 0 {
			return uint64(id)<<8 | uint64(si)
		}
	}
}

// scan visits the live entries of db from id on, until count are found or
// the budget is spent, and returns the next id and the end of the ids.
func (sh *shard) scan(db int, id uint32, now int64, count int, found, budget *int, fn func([]byte, Entry)) (uint32, uint32) {
	sh.mu.Lock()
	defer sh.mu.Unlock() // fn may panic
	end := sh.nids
	if sh.dbs[db].count == 0 {
		return end, end
	}
	for ; id < end && *found < count && *budget > 0; id++ {
		*budget--
		e := sh.ent(id)
		if e.meta == 0 || e.db() != db || e.expiredAt(now) {
			continue
		}
		if sh.partsDueLocked(id, now) && sh.expirePartsLocked(id, e, -1, now, math.MaxInt, false) {
			// Its last parts expired and its key went; if it was the
			// shard's last entry, the entry table was reset.
			end = min(end, sh.nids)
			continue
		}
		*found++
		fn(sh.entryLocked(id, e))
	}
	return id, end
}

// entryLocked returns the key and Entry of entry id.
func (sh *shard) entryLocked(id uint32, e *entry) ([]byte, Entry) {
	b := sh.arena.bytes(e.loc())
	klen, vf, n := parseHeader(b)
	out := Entry{Kind: e.kind(), Deadline: e.deadline}
	if vf&1 != 0 {
		out.Obj = sh.objs[id].obj
	} else {
		v := n + klen + vf>>1
		out.Blob = b[n+klen : v : v]
	}
	return b[n : n+klen : n+klen], out
}

// RandomKey appends a random live key of db to dst.
func (s *Store) RandomKey(db int, dst []byte) ([]byte, bool) {
	s.checkDB(db)
	start := rand.IntN(len(s.shards))
	now := Now()
	for i := range s.shards {
		sh := &s.shards[(start+i)&int(s.mask)]
		sh.mu.Lock()
		if k := sh.randomLocked(&sh.dbs[db], now); k != nil {
			dst = append(dst, k...)
			sh.mu.Unlock()
			return dst, true
		}
		sh.mu.Unlock()
	}
	return dst, false
}

// randomLocked returns the key of a random live entry of ix, or nil. It
// probes random slots, then sweeps a bounded run of slots, so that expired
// entries nobody met yet do not hide the live ones.
func (sh *shard) randomLocked(ix *dbIndex, now int64) []byte {
	// A probe that meets an object whose last parts expired deletes its
	// key, which may resize the index: probe again, each time with one key
	// fewer (work Run would do anyway).
	for {
		k, removed := sh.randomProbeLocked(ix, now)
		if !removed {
			return k
		}
	}
}

// randomProbeLocked is one round of randomLocked's probes. It stops with
// removed set when it deleted a key (see randomLocked).
func (sh *shard) randomProbeLocked(ix *dbIndex, now int64) (key []byte, removed bool) {
	n := len(ix.ids)
	if ix.count == 0 {
		return nil, false
	}
	try := func(pos int) []byte {
		if id := ix.ids[pos]; id != 0 {
			if e := sh.ent(id); !e.expiredAt(now) {
				if sh.partsDueLocked(id, now) && sh.expirePartsLocked(id, e, pos, now, math.MaxInt, false) {
					removed = true
					return nil
				}
				k, _ := recordKey(sh.arena.bytes(e.loc()))
				return k
			}
		}
		return nil
	}
	for range 16 {
		if k := try(rand.IntN(n)); k != nil || removed {
			return k, removed
		}
	}
	pos := rand.IntN(n)
	for range min(n, 4096) {
		if k := try(pos); k != nil || removed {
			return k, removed
		}
		pos++
		if pos == n {
			pos = 0
		}
	}
	return nil, false
}

// Len returns the number of live keys in db. Expired keys not yet freed
// are counted.
func (s *Store) Len(db int) int {
	s.checkDB(db)
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.dbs[db].count
		sh.mu.Unlock()
	}
	return n
}

// Flush removes every key of db, or of all databases when db < 0. Removed
// keys are not reported to OnExpire. Keys that expired before and still
// wait to be reported are reported later.
func (s *Store) Flush(db int) {
	if db >= 0 {
		s.checkDB(db)
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if db < 0 {
			sh.flushAllLocked()
		} else {
			sh.flushDBLocked(db)
		}
		sh.mu.Unlock()
	}
}

// Stats returns counters and memory figures. It locks each shard briefly.
func (s *Store) Stats() Stats {
	st := Stats{
		Keys:    make([]int, s.ndb),
		Expires: make([]int, s.ndb),
		AvgTTL:  make([]int64, s.ndb),
	}
	sums := make([][2]uint64, s.ndb)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for db := range sh.dbs {
			ix := &sh.dbs[db]
			st.Keys[db] += ix.count
			st.Expires[db] += ix.expires
			var c uint64
			sums[db][1], c = bits.Add64(sums[db][1], ix.dlLo, 0)
			sums[db][0] += ix.dlHi + c
			st.IndexBytes += int64(cap(ix.ids))*4 + int64(cap(ix.disp)) + 48
		}
		st.Expired += sh.expired
		st.ArenaBytes += sh.arena.mapped
		st.ArenaLive += sh.arena.live
		st.ObjectBytes += sh.objMem
		st.ExpiredParts += sh.expiredParts
		st.IndexBytes += int64(len(sh.segs))*(segSize*entrySize+8) + sh.arena.heapBytes() + wheelLevels*8 + int64(cap(sh.pheap))*16
		sh.mu.Unlock()
	}
	now := Now()
	for db, n := range st.Expires {
		if n <= 0 {
			continue
		}
		// The mean deadline fits in 64 bits, so hi < n.
		q, _ := bits.Div64(sums[db][0], sums[db][1], uint64(n))
		st.AvgTTL[db] = max(int64(q)-now, 0)
	}
	return st
}

// Drain hands the expired keys collected so far to OnExpire: it frees,
// and reports, every entry due by now. It must not be called from OnExpire.
func (s *Store) Drain() {
	s.expMu.Lock()
	defer s.expMu.Unlock()
	s.expireDueLocked(context.Background(), Now(), false)
}

// Txn is exclusive access to the shards a Lock call locked. It is a value
// owned by one goroutine; it must be unlocked exactly once.
type Txn struct {
	s      *Store
	now    int64
	locked [4]uint64 // bit i: shard i is locked
}

// shardOf returns the shard of key, which t must hold, and key's hash.
func (t *Txn) shardOf(db int, key []byte) (*shard, uint64) {
	s := t.s
	if s == nil {
		panic("ttl: use of an unlocked Txn")
	}
	s.checkDB(db)
	h := maphash.Bytes(s.seed, key)
	i := h & s.mask
	if t.locked[i>>6]&(1<<(i&63)) == 0 {
		panic("ttl: key's shard is not locked by this Txn")
	}
	return &s.shards[i], h
}

// Get returns the live entry under key in db. An entry whose deadline has
// passed is removed here (counted as expired, reported to OnExpire) and
// reported missing. A PartExpirer with parts expired at Now loses them
// here (reported to OnObjectExpire), and its key too if none is left.
func (t *Txn) Get(db int, key []byte) (Entry, bool) {
	sh, h := t.shardOf(db, key)
	pos, id, e := sh.lookupLocked(&sh.dbs[db], key, h, t.now)
	if id == 0 {
		return Entry{}, false
	}
	if sh.partsDueLocked(id, t.now) && sh.expirePartsLocked(id, e, pos, t.now, math.MaxInt, false) {
		return Entry{}, false
	}
	_, out := sh.entryLocked(id, e)
	if out.Obj != nil {
		sh.preserveLocked(id, e) // the caller may change it in place
	}
	return out, true
}

// Set stores blob under key with kind and deadline (0 = none), replacing
// any entry. blob may alias store memory; it is copied before anything is
// freed. A deadline at or before Now deletes the key instead (as Redis does
// for SET with a past PXAT), without counting it as expired.
func (t *Txn) Set(db int, key []byte, kind Kind, blob []byte, deadline int64) {
	sh, h := t.shardOf(db, key)
	if deadline != 0 && deadline <= t.now {
		sh.deleteLocked(db, key, h, t.now)
		return
	}
	sh.putLocked(db, key, h, kind, blob, false, nil, deadline, t.now)
}

// SetObject stores obj under key, replacing any entry. A deadline at or
// before Now deletes the key instead, as for Set.
func (t *Txn) SetObject(db int, key []byte, kind Kind, obj Object, deadline int64) {
	sh, h := t.shardOf(db, key)
	if deadline != 0 && deadline <= t.now {
		sh.deleteLocked(db, key, h, t.now)
		return
	}
	sh.putLocked(db, key, h, kind, nil, true, obj, deadline, t.now)
}

// SetDeadline changes the deadline of a live key (0 removes it) and reports
// whether the key existed. A deadline at or before Now deletes the key (as
// Redis does for EXPIRE with a past time) without counting it as expired.
func (t *Txn) SetDeadline(db int, key []byte, deadline int64) bool {
	sh, h := t.shardOf(db, key)
	ix := &sh.dbs[db]
	pos, id, e := sh.lookupLocked(ix, key, h, t.now)
	if id == 0 || sh.partsDueLocked(id, t.now) && sh.expirePartsLocked(id, e, pos, t.now, math.MaxInt, false) {
		return false
	}
	if deadline != 0 && deadline <= t.now {
		sh.removeLocked(ix, pos, id, e)
		return true
	}
	sh.setDeadlineLocked(ix, id, e, deadline)
	return true
}

// Delete removes key and reports whether a live entry was there (an
// object whose last parts expired is not).
func (t *Txn) Delete(db int, key []byte) bool {
	sh, h := t.shardOf(db, key)
	ix := &sh.dbs[db]
	pos, id, e := sh.lookupLocked(ix, key, h, t.now)
	if id == 0 || sh.partsDueLocked(id, t.now) && sh.expirePartsLocked(id, e, pos, t.now, math.MaxInt, false) {
		return false
	}
	sh.removeLocked(ix, pos, id, e)
	return true
}

// Touched tells the store that the Object under key changed: its memory
// usage, or for a PartExpirer the deadlines of its parts.
func (t *Txn) Touched(db int, key []byte) {
	sh, h := t.shardOf(db, key)
	_, id, _ := sh.lookupLocked(&sh.dbs[db], key, h, t.now)
	if id == 0 {
		return
	}
	if r, ok := sh.objs[id]; ok && r.obj != nil {
		mem := int64(r.obj.MemoryUsage())
		sh.objMem += mem - r.mem
		r.mem = mem
		sh.rewakeLocked(id, &r, wakeOf(r.obj))
		sh.objs[id] = r
	}
}

// Now is the time the Txn was locked, in Unix milliseconds.
func (t *Txn) Now() int64 { return t.now }

// Unlock releases the shards. Unlocking a Txn twice panics.
func (t *Txn) Unlock() {
	s := t.s
	if s == nil {
		panic("ttl: Unlock of an unlocked Txn")
	}
	t.s = nil
	for w := len(t.locked) - 1; w >= 0; w-- {
		m := t.locked[w]
		for m != 0 {
			b := 63 - bits.LeadingZeros64(m)
			m &^= 1 << b
			s.shards[w<<6|b].mu.Unlock()
		}
	}
}
