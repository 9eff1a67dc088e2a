package ttl

import (
	"cmp"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Policy chooses the keys Evict removes. The names (String, ParsePolicy)
// are Redis's maxmemory-policy values.
type Policy uint8

// The eviction policies.
const (
	// NoEviction removes no key; Evict only compacts the arena.
	NoEviction Policy = iota
	// VolatileTTL removes the keys with a deadline nearest to it, taken
	// from the earliest occupied slots of the shards' timer wheels.
	VolatileTTL
	// VolatileLRU removes the least recently used keys that have a deadline.
	VolatileLRU
	// VolatileLFU removes the least frequently used keys that have a deadline.
	VolatileLFU
	// VolatileRandom removes random keys that have a deadline.
	VolatileRandom
	// AllKeysLRU removes the least recently used keys.
	AllKeysLRU
	// AllKeysLFU removes the least frequently used keys.
	AllKeysLFU
	// AllKeysRandom removes random keys.
	AllKeysRandom
)

// String returns the policy's Redis name.
func (p Policy) String() string {
	switch p {
	case NoEviction:
		return "noeviction"
	case VolatileTTL:
		return "volatile-ttl"
	case VolatileLRU:
		return "volatile-lru"
	case VolatileLFU:
		return "volatile-lfu"
	case VolatileRandom:
		return "volatile-random"
	case AllKeysLRU:
		return "allkeys-lru"
	case AllKeysLFU:
		return "allkeys-lfu"
	case AllKeysRandom:
		return "allkeys-random"
	}
	return "unknown"
}

// ParsePolicy returns the policy of a Redis maxmemory-policy name (lower case).
func ParsePolicy(name string) (Policy, bool) {
	for p := NoEviction; p <= AllKeysRandom; p++ {
		if p.String() == name {
			return p, true
		}
	}
	return NoEviction, false
}

func (p Policy) volatile() bool { return p >= VolatileTTL && p <= VolatileRandom }

// track is the access information the policy needs.
func (p Policy) track() uint8 {
	switch p {
	case VolatileLRU, AllKeysLRU:
		return trackLRU
	case VolatileLFU, AllKeysLFU:
		return trackLFU
	}
	return trackNone
}

const (
	trackNone uint8 = iota
	trackLRU
	trackLFU
)

const (
	// DefaultSamples is the number of keys sampled per eviction when
	// SetEviction is given 0 (Redis's maxmemory-samples default).
	DefaultSamples = 5
	// poolSize is the number of best candidates a shard keeps across
	// evictions, as Redis's eviction pool.
	poolSize = 16
	// lruShift: LRU stamps count units of 64 ms, so 32 bits wrap after
	// 8.7 years (Redis: 24 bits of seconds, 194 days).
	lruShift = 6
	// LFU counters as Redis's: a logarithmic 8-bit counter that starts at
	// lfuInit, grows with probability 1/((c-lfuInit)*lfuLogFactor+1) per
	// access and loses one per lfuDecayMinutes without access.
	lfuInit         = 5
	lfuLogFactor    = 10
	lfuDecayMinutes = 1
	lfuMinuteMask   = 1<<24 - 1
	// reclaimTries bounds the compactions of one evictStep.
	reclaimTries = 4
)

// storeEvict is the Store's eviction state.
type storeEvict struct {
	// mapped is the sum of the shards' arena.mapped, kept by the arenas.
	mapped atomic.Int64

	mu      sync.Mutex // serializes Evict and SetEviction; guards the fields below
	policy  Policy
	samples int
	cur     int   // shard being evicted from, when sticky
	limit   int64 // volatile-ttl: evict from cur deadlines before this
	sticky  bool  // cur has work left from the last step
	next    int   // round-robin position
	out     expOut
}

// shardEvict is a shard's access information and eviction pool, guarded by
// the shard's mutex.
type shardEvict struct {
	track uint8 // trackNone, trackLRU or trackLFU: what access holds
	// access is parallel to the entry table: an LRU stamp or an LFU
	// counter per id, allocated only while an LRU or LFU policy is set
	// (4 bytes per id, a sixth of the entry table).
	access []*[segSize]uint32
	pool   []evCand // best candidates first, at most poolSize after a pick
}

type evCand struct {
	id    uint32
	score int64 // higher: evict sooner
}

func lruStamp(now int64) uint32 { return uint32(uint64(now) >> lruShift) }

func lfuMinutes(now int64) uint32 { return uint32(now/60000) & lfuMinuteMask }

// lfuDecayed returns the counter of packed LFU value v at now, decayed by
// the minutes since it was last updated.
func lfuDecayed(v uint32, now int64) uint32 {
	c := v & 0xff
	periods := (lfuMinutes(now) - v>>8) & lfuMinuteMask / lfuDecayMinutes
	if periods >= c {
		return 0
	}
	return c - periods
}

func lfuIncr(c uint32) uint32 {
	if c == 255 {
		return c
	}
	base := max(float64(c)-lfuInit, 0)
	if rand.Float64() < 1/(base*lfuLogFactor+1) {
		c++
	}
	return c
}

func lfuPack(c uint32, now int64) uint32 { return lfuMinutes(now)<<8 | c }

// accessSlot returns the access word of id, growing the table as needed.
func (sh *shard) accessSlot(id uint32) *uint32 {
	si := int(id >> segShift)
	for si >= len(sh.ev.access) {
		sh.ev.access = append(sh.ev.access, new([segSize]uint32))
	}
	return &sh.ev.access[si][id&segMask]
}

// accessedLocked records a lookup of live entry id (reads and writes, as
// Redis's lookupKey). Only called while sh.ev.track != trackNone.
func (sh *shard) accessedLocked(id uint32, now int64) {
	p := sh.accessSlot(id)
	if sh.ev.track == trackLRU {
		*p = lruStamp(now)
		return
	}
	*p = lfuPack(lfuIncr(lfuDecayed(*p, now)), now)
}

// createdLocked records the creation of entry id.
func (sh *shard) createdLocked(id uint32, now int64) {
	p := sh.accessSlot(id)
	if sh.ev.track == trackLRU {
		*p = lruStamp(now)
		return
	}
	*p = lfuPack(lfuInit, now)
}

// setTrackLocked switches the access information kept to track; existing
// entries start as created now.
func (sh *shard) setTrackLocked(track uint8, now int64) {
	sh.ev.pool = sh.ev.pool[:0]
	if sh.ev.track == track {
		return
	}
	sh.ev.track = track
	sh.ev.access = nil
	if track == trackNone {
		return
	}
	for id := uint32(firstID); id < sh.nids; id++ {
		if sh.ent(id).meta != 0 {
			sh.createdLocked(id, now)
		}
	}
}

// MappedBytes returns the bytes of arena chunks mapped, over all shards:
// the off-heap part of the store's memory. It is one atomic load.
func (s *Store) MappedBytes() int64 { return s.ev.mapped.Load() }

// SetEviction sets the policy and the number of keys sampled per
// eviction (0 means DefaultSamples) that Evict uses. LRU and LFU policies
// make every lookup record an access: setting one allocates 4 bytes per
// entry id, setting another policy frees them. It locks each shard in
// turn and walks its entries once when the kind of access information
// changes.
func (s *Store) SetEviction(p Policy, samples int) {
	if samples <= 0 {
		samples = DefaultSamples
	}
	s.ev.mu.Lock()
	defer s.ev.mu.Unlock()
	s.ev.policy, s.ev.samples = p, samples
	s.ev.sticky = false
	now := Now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.setTrackLocked(p.track(), now)
		sh.mu.Unlock()
	}
}

// Evict releases memory for a caller over its memory limit: it removes
// keys chosen by the policy set with SetEviction until about want bytes
// have been released, removing at most maxKeys keys, and calls fn with
// each removed key. It returns the bytes released and the number of keys
// removed; n == 0 and freed <= 0 means nothing could be released.
//
// Released bytes are those that leave the process: arena memory unmapped
// and the memory of removed Objects. Removing a key frees its record, but
// its chunk is unmapped only with its last record; so Evict also
// compacts: when a shard's dead record bytes in chunks other than the head
// exceed an eighth of its mapped bytes (at least a chunk), it moves the
// live records of its sparsest chunk to the head and unmaps it. The
// eighth bounds the memory lost to fragmentation under policies that
// remove keys all over the arena (LRU, LFU, random); volatile-ttl on
// sessions of similar lifetimes empties the oldest chunks whole. With
// NoEviction Evict only compacts.
//
// It works on one shard at a time (volatile-ttl: the one whose timer
// wheel holds the earliest deadline; others in turn) and stays on it
// until that shard has released memory. fn is called with no shard
// locked, after each shard step; key is valid only during the call; fn
// must not call Evict or SetEviction. Evicted keys are not counted as
// expired and not passed to OnExpire.
func (s *Store) Evict(want int64, maxKeys int, fn func(db int, key []byte)) (freed int64, n int) {
	s.ev.mu.Lock()
	defer s.ev.mu.Unlock()
	if want <= 0 || maxKeys <= 0 {
		return 0, 0
	}
	p, samples := s.ev.policy, s.ev.samples
	if samples <= 0 {
		samples = DefaultSamples
	}
	now := Now()
	var done [4]uint64 // shards that had nothing to give in this call
	for freed < want && n < maxKeys {
		si, ok := s.evictShardLocked(p, now, &done)
		if !ok {
			break
		}
		sh := &s.shards[si]
		stepWant := want - freed
		sh.mu.Lock()
		f, k, exhausted := sh.evictStepLocked(p, samples, stepWant, maxKeys-n, s.ev.limit, now, &s.ev.out)
		sh.mu.Unlock()
		s.emitLocked(fn)
		freed += f
		n += k
		if k == 0 && f <= 0 {
			done[si>>6] |= 1 << (si & 63)
		}
		// Stay on the shard while it has removed keys without getting
		// its memory back yet (the rest of a chunk).
		s.ev.cur, s.ev.sticky = si, !exhausted && f < stepWant
	}
	return freed, n
}

// evictShardLocked returns the shard to evict from next, skipping those
// in done, and sets s.ev.limit. s.ev.mu is held.
func (s *Store) evictShardLocked(p Policy, now int64, done *[4]uint64) (int, bool) {
	skip := func(i int) bool { return done[i>>6]&(1<<(i&63)) != 0 }
	if s.ev.sticky && !skip(s.ev.cur) {
		return s.ev.cur, true
	}
	s.ev.sticky = false
	s.ev.limit = math.MaxInt64
	start := s.ev.next
	s.ev.next = (start + 1) & int(s.mask)
	if p != VolatileTTL {
		for j := range s.shards {
			if i := (start + j) & int(s.mask); !skip(i) {
				s.ev.next = (i + 1) & int(s.mask)
				return i, true
			}
		}
		return 0, false
	}
	// The shard whose wheel has the earliest occupied slot; the step
	// evicts that slot's entries only (limit: the slot's end), so that
	// eviction follows the deadlines across shards to a slot's width.
	// Slots already due tie: Run is about to free their entries.
	best, bestT := -1, int64(math.MaxInt64)
	for j := range s.shards {
		i := (start + j) & int(s.mask)
		if skip(i) {
			continue
		}
		sh := &s.shards[i]
		sh.mu.Lock()
		t, lvl, _, ok := sh.wheel.next()
		sh.mu.Unlock()
		if !ok {
			continue
		}
		if ts := max(clampMs(t), now); ts < bestT {
			best, bestT = i, ts
			s.ev.limit = clampMs(t + 1<<(wheelBits*lvl))
		}
	}
	return best, best >= 0
}

// emitLocked hands the keys collected in s.ev.out to fn and empties it.
func (s *Store) emitLocked(fn func(db int, key []byte)) {
	o := &s.ev.out
	if fn != nil {
		for i := range o.len() {
			fn(int(o.dbs[i]), o.key(i))
		}
	}
	o.reset()
}

// evictStepLocked removes keys of the shard by policy p, compacting when
// dead bytes pass the budget, until want bytes are released or maxKeys
// removed. Under volatile-ttl it stops at a key that fires at or after
// limit. exhausted reports that the shard has no key left to remove (or
// none before limit).
func (sh *shard) evictStepLocked(p Policy, samples int, want int64, maxKeys int, limit, now int64, out *expOut) (freed int64, n int, exhausted bool) {
	a := &sh.arena
	start := a.mapped
	var objFreed int64
	dead := sh.deadBytesLocked()
	tries := 0
	for {
		if dead > max(int64(a.size), a.mapped/8) && tries < reclaimTries {
			tries++
			sh.reclaimLocked()
			dead = sh.deadBytesLocked()
		}
		freed = start - a.mapped + objFreed
		if freed >= want || n >= maxKeys || p == NoEviction {
			return freed, n, p == NoEviction
		}
		id := sh.victimLocked(p, samples, now)
		if id == 0 {
			return freed, n, true
		}
		e := sh.ent(id)
		if p == VolatileTTL && e.deadline >= limit-1 {
			return freed, n, true // the slot is done: choose a shard again
		}
		size, obj, inChunk := sh.evictLocked(id, e, out)
		objFreed += obj
		if inChunk {
			dead += int64(size)
		}
		n++
	}
}

// deadBytesLocked returns the bytes of regular chunks other than the head
// that hold no live record: what compaction can give back.
func (sh *shard) deadBytesLocked() int64 {
	a := &sh.arena
	var dead int64
	for i := 1; i < len(a.chunks); i++ {
		c := &a.chunks[i]
		if c.mem != nil && !c.big && uint32(i) != a.head {
			dead += int64(a.size - c.live)
		}
	}
	return dead
}

// reclaimLocked compacts the sparsest regular chunk other than the head
// (or finishes the chunk being compacted): its live records move to the
// head and it is unmapped.
func (sh *shard) reclaimLocked() {
	a := &sh.arena
	if a.victim == 0 {
		best, bestLive := uint32(0), a.size
		for i := 1; i < len(a.chunks); i++ {
			c := &a.chunks[i]
			if c.mem != nil && !c.big && uint32(i) != a.head && c.live < bestLive {
				best, bestLive = uint32(i), c.live
			}
		}
		if best == 0 {
			return
		}
		a.victim, a.victimOff = best, 0
	}
	for v := a.victim; a.victim == v; {
		sh.compactStepLocked()
	}
}

// evictLocked removes indexed entry id, copying its key into out, and
// returns its record size, its Object's memory and whether the record sat
// in a regular chunk.
func (sh *shard) evictLocked(id uint32, e *entry, out *expOut) (size int, obj int64, inChunk bool) {
	a := &sh.arena
	loc := e.loc()
	b := a.bytes(loc)
	klen, vf, hn := parseHeader(b)
	key := b[hn : hn+klen : hn+klen]
	size = hn + klen + vf>>1
	inChunk = !a.chunks[loc>>a.shift].big
	db := e.db()
	out.add(db, key)
	if vf&1 != 0 {
		obj = sh.objs[id].mem
	}
	ix := &sh.dbs[db]
	pos := ix.findID(sh.hash(key), id)
	if pos < 0 {
		panic("ttl: evicting an entry that is not indexed")
	}
	sh.cap.mark(id) // left out of a running capture: it is going anyway
	sh.removeLocked(ix, pos, id, e)
	return size, obj, inChunk
}

// candidateLocked returns entry id if it is live at now and a candidate
// for a volatile policy when vol is set, else nil.
func (sh *shard) candidateLocked(id uint32, vol bool, now int64) *entry {
	if id < firstID || id >= sh.nids {
		return nil
	}
	e := sh.ent(id)
	if e.meta == 0 || e.deadline == zombieDeadline || e.expiredAt(now) || vol && e.deadline == 0 {
		return nil
	}
	return e
}

// scoreLocked rates candidate id for policy p: the higher, the sooner it
// goes.
func (sh *shard) scoreLocked(p Policy, id uint32, e *entry, now int64) int64 {
	switch p {
	case VolatileTTL:
		return math.MaxInt64 - e.deadline
	case VolatileLRU, AllKeysLRU:
		return int64(lruStamp(now) - *sh.accessSlot(id)) // idle time, wrapping
	case VolatileLFU, AllKeysLFU:
		return 255 - int64(lfuDecayed(*sh.accessSlot(id), now))
	}
	return 0
}

// victimLocked picks the entry to evict next, or 0 if there is none.
func (sh *shard) victimLocked(p Policy, samples int, now int64) uint32 {
	if p == VolatileRandom || p == AllKeysRandom {
		var one [1]evCand
		if c := sh.sampleLocked(p, 1, now, one[:0]); len(c) > 0 {
			return c[0].id
		}
		return 0
	}
	vol := p.volatile()
	pool := sh.ev.pool[:0]
	for _, c := range sh.ev.pool {
		if e := sh.candidateLocked(c.id, vol, now); e != nil {
			pool = append(pool, evCand{c.id, sh.scoreLocked(p, c.id, e, now)})
		}
	}
	pool = sh.sampleLocked(p, samples, now, pool)
	slices.SortFunc(pool, func(a, b evCand) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	pool = slices.CompactFunc(pool, func(a, b evCand) bool { return a.id == b.id })
	if len(pool) == 0 {
		sh.ev.pool = pool
		return 0
	}
	best := pool[0].id
	pool = append(pool[:0], pool[1:min(len(pool), poolSize+1)]...)
	sh.ev.pool = pool
	return best
}

// sampleLocked appends up to n candidates for policy p to dst, with their
// scores. volatile-ttl takes them from the earliest occupied wheel slots;
// the others probe random entry ids, then (volatile) fall back on the
// wheel or (allkeys) sweep a run of ids.
func (sh *shard) sampleLocked(p Policy, n int, now int64, dst []evCand) []evCand {
	if sh.used-sh.zombies == 0 {
		return dst
	}
	if p == VolatileTTL {
		return sh.sampleWheelLocked(p, n, now, dst)
	}
	vol := p.volatile()
	span := sh.nids - firstID
	found := 0
	for try := 0; try < 4*n+8 && found < n; try++ {
		id := firstID + rand.Uint32N(span)
		if e := sh.candidateLocked(id, vol, now); e != nil {
			dst = append(dst, evCand{id, sh.scoreLocked(p, id, e, now)})
			found++
		}
	}
	if found > 0 {
		return dst
	}
	if vol {
		return sh.sampleWheelLocked(p, n, now, dst)
	}
	id := firstID + rand.Uint32N(span)
	for range min(span, 1<<14) {
		if e := sh.candidateLocked(id, false, now); e != nil {
			dst = append(dst, evCand{id, sh.scoreLocked(p, id, e, now)})
			if found++; found == n {
				break
			}
		}
		if id++; id == sh.nids {
			id = firstID
		}
	}
	return dst
}

// sampleWheelLocked appends up to n live entries from the wheel's slots in
// deadline order (slot by slot; a slot's entries in list order), looking
// at no more than 4n+64 entries.
func (sh *shard) sampleWheelLocked(p Policy, n int, now int64, dst []evCand) []evCand {
	budget, found := 4*n+64, 0
	sh.forSlotsLocked(func(s uint32) bool {
		for id := sh.ent(s).next; id != s; id = sh.ent(id).next {
			if budget--; budget < 0 {
				return false
			}
			if e := sh.candidateLocked(id, true, now); e != nil {
				dst = append(dst, evCand{id, sh.scoreLocked(p, id, e, now)})
				if found++; found == n {
					return false
				}
			}
		}
		return true
	})
	return dst
}

// forSlotsLocked calls fn with the sentinel id of each occupied wheel slot,
// earliest first, until fn returns false. The order is that of the slots'
// start times: a slot a pass left half-cascaded, then level by level from
// the wheel's position (see wheel.next).
func (sh *shard) forSlotsLocked(fn func(sentinel uint32) bool) {
	w := &sh.wheel
	var seen [wheelLevels]uint64
	for lvl := 1; lvl < wheelLevels; lvl++ {
		cur := uint(w.elapsed>>(wheelBits*lvl)) & wheelMask
		if w.occ[lvl]&(1<<cur) != 0 {
			seen[lvl] = 1 << cur
			if !fn(slotID(lvl, int(cur))) {
				return
			}
		}
	}
	for lvl := range wheelLevels {
		cur := uint(w.elapsed>>(wheelBits*lvl)) & wheelMask
		occ := w.occ[lvl] &^ seen[lvl]
		// From the wheel's position on, then (not expected) before it.
		for _, m := range [2]uint64{occ &^ (1<<cur - 1), occ & (1<<cur - 1)} {
			for m != 0 {
				slot := bits.TrailingZeros64(m)
				m &= m - 1
				if !fn(slotID(lvl, slot)) {
					return
				}
			}
		}
	}
}
