package ttl

import "errors"

// ErrCaptureRunning is returned by BeginCapture while another capture is
// under way.
var ErrCaptureRunning = errors.New("ttl: a capture is already running")

// PreserveFunc receives, with the shard locked, an entry that a capture
// has not visited yet and that is about to change or go: the entry as it
// was when the capture began. key and e.Blob are valid only during the
// call; e.Obj is about to be changed by its caller, so it must be encoded
// (or copied) before the call returns. It must not use the store.
type PreserveFunc func(shard, db int, key []byte, e Entry)

// shardCapture is a shard's part of a running capture: a bit per entry
// id that existed when it began, set once the entry was visited by
// CaptureShard, preserved, or known not to belong to the capture.
type shardCapture struct {
	index int    // the shard's index, for PreserveFunc
	n     uint32 // ids at or above n were handed out after the start
	done  []uint64
}

// BeginCapture starts a point-in-time capture of the whole store: from now
// until EndCapture, CaptureShard visits every key as it was at this
// moment, and nothing written after it. Keys that change or go before
// CaptureShard reached them are handed to preserve first, as they were
// (by whatever goroutine changes them, with the key's shard locked), so a
// capture never holds a lock longer than one CaptureShard call. Keys that
// expire or are evicted meanwhile are left out (they were about to go).
//
// BeginCapture locks every shard at once, briefly (it allocates a bit per
// entry), so the moment is the same for all shards.
func (s *Store) BeginCapture(preserve PreserveFunc) error {
	if preserve == nil {
		panic("ttl: BeginCapture without a PreserveFunc")
	}
	t := s.LockAll()
	defer t.Unlock()
	if s.shards[0].cap != nil {
		return ErrCaptureRunning
	}
	s.preserve = preserve
	for i := range s.shards {
		sh := &s.shards[i]
		sh.cap = &shardCapture{index: i, n: sh.nids, done: make([]uint64, (sh.nids+63)/64)}
	}
	return nil
}

// EndCapture ends the capture BeginCapture started; the store stops
// tracking. It is a no-op when none runs.
func (s *Store) EndCapture() {
	t := s.LockAll()
	defer t.Unlock()
	for i := range s.shards {
		s.shards[i].cap = nil
	}
	s.preserve = nil
}

// pending reports whether entry id still belongs to the capture,
// unvisited. c must not be nil.
func (c *shardCapture) pending(id uint32) bool {
	return id < c.n && c.done[id>>6]&(1<<(id&63)) == 0
}

// mark records entry id as visited; c may be nil (no capture runs).
func (c *shardCapture) mark(id uint32) {
	if c != nil && id < c.n {
		c.done[id>>6] |= 1 << (id & 63)
	}
}

// preserveLocked hands entry id to the capture's PreserveFunc if a
// capture runs and has not visited it yet; the caller is about to change
// it. It inlines to a nil check, the whole cost of the hooks in the write
// paths when no capture runs.
func (sh *shard) preserveLocked(id uint32, e *entry) {
	if sh.cap != nil {
		sh.preserveCapLocked(id, e)
	}
}

// preserveCapLocked is preserveLocked while a capture runs.
func (sh *shard) preserveCapLocked(id uint32, e *entry) {
	c := sh.cap
	if !c.pending(id) {
		return
	}
	c.mark(id)
	if e.deadline == zombieDeadline {
		return
	}
	key, out := sh.entryLocked(id, e)
	sh.s.preserve(c.index, e.db(), key, out)
}

// preserveAllLocked preserves every unvisited entry, before a flush of
// all databases that drops the shard's tables without visiting entries.
func (sh *shard) preserveAllLocked() {
	c := sh.cap
	if c == nil {
		return
	}
	for id := uint32(firstID); id < min(c.n, sh.nids); id++ {
		if e := sh.ent(id); e.meta != 0 {
			sh.preserveCapLocked(id, e)
		}
	}
}

// Shards returns the number of shards, the parts CaptureShard captures.
func (s *Store) Shards() int { return len(s.shards) }

// CaptureShard calls fn for the entries of shard i from cursor on (0 to
// begin), at most limit of them, with the shard locked for the call, and
// returns the cursor to continue from, 0 when the shard is done. It
// visits the entries as they were when the capture (BeginCapture) began,
// each once, except those handed to the PreserveFunc meanwhile; outside a
// capture it visits nothing. So a capture holds a lock for one short
// slice at a time, however large the shard.
// fn must not use the store; key and e.Blob are valid only during the
// call, and e.Obj only while the shard is locked (fn may encode it, not
// keep it).
func (s *Store) CaptureShard(i int, cursor uint64, limit int, fn func(db int, key []byte, e Entry)) uint64 {
	sh := &s.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock() // fn may panic
	c := sh.cap
	if c == nil {
		return 0
	}
	now := Now()
	end := min(sh.nids, c.n)
	id := max(uint32(min(cursor, uint64(^uint32(0)))), firstID)
	budget := 4 * limit // ids looked at, live or not
	for ; id < end && limit > 0 && budget > 0; id++ {
		budget--
		if !c.pending(id) {
			continue
		}
		c.mark(id)
		e := sh.ent(id)
		if e.meta == 0 || e.expiredAt(now) { // free, expired, or a zombie
			continue
		}
		limit--
		key, out := sh.entryLocked(id, e)
		fn(e.db(), key, out)
	}
	if id >= end {
		return 0
	}
	return uint64(id)
}

// AddExpired counts n keys as expired (Stats.Expired) without any key: a
// restore uses it for the entries whose deadline passed while the server
// was down, which it does not load.
func (s *Store) AddExpired(n uint64) {
	sh := &s.shards[0]
	sh.mu.Lock()
	sh.expired += n
	sh.mu.Unlock()
}
