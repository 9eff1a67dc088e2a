package ttl

import (
	"context"
	"math"
	"time"
)

const (
	// maxOutBytes bounds the key bytes one pass copies out for OnExpire.
	maxOutBytes = 1 << 20
	// compactBytes bounds the bytes of records one compaction step walks.
	compactBytes = 512 << 10
	// compactDelay is the pause, in ms, between compaction steps of a shard.
	compactDelay = 1
)

// Run frees expired entries and compacts arena chunks until ctx is done,
// then returns nil. Call it once, from a goroutine the owner waits for; a
// second concurrent call returns ErrRunning.
//
// Run sleeps until the earliest time a shard has work; an idle store costs
// nothing. Each pass over a shard frees at most Config.ExpireBatch entries
// with the shard locked, then reports their keys to OnExpire unlocked.
func (s *Store) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		s.planned.Store(math.MinInt64)
		select {
		case <-s.wake:
		default:
		}
		s.expMu.Lock()
		s.expireDueLocked(ctx, Now(), true)
		s.expMu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		next := s.minDue()
		s.planned.Store(next)
		if s.minDue() < next {
			continue // a shard scheduled earlier work meanwhile
		}
		if next == math.MaxInt64 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
			}
			continue
		}
		d := time.Until(time.UnixMilli(next))
		if d <= 0 {
			continue
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// minDue returns the earliest next due time over the shards.
func (s *Store) minDue() int64 {
	m := int64(math.MaxInt64)
	for i := range s.shards {
		m = min(m, s.shards[i].nextDue.Load())
	}
	return m
}

// expireDueLocked visits every shard due by now, pass after pass, until
// none is due. Keys are reported after each pass. s.expMu must be held.
// A done ctx stops it early.
func (s *Store) expireDueLocked(ctx context.Context, now int64, compact bool) {
	for i := range s.shards {
		sh := &s.shards[i]
		for sh.nextDue.Load() <= now {
			if ctx.Err() != nil {
				return
			}
			sh.mu.Lock()
			sh.passLocked(now, &s.out, compact)
			sh.mu.Unlock()
			s.deliver()
		}
	}
}

// passLocked frees up to ExpireBatch due entries of the shard, and
// expired parts of objects, copying their keys into out, then, when
// nothing is due and compact is set, runs a compaction step. It always
// leaves nextDue > now unless work remains.
func (sh *shard) passLocked(now int64, out *expOut, compact bool) {
	s := sh.s
	w := &sh.wheel
	report := s.onExpire != nil
	freed, moves := 0, 0
	if sh.pcur > 0 {
		freed = sh.expirePartsDueLocked(now, s.batch)
	}
	var skipped uint32 // first not-yet-due entry put back on the overdue list
	overdue := sh.ent(overdueID)
	for freed < s.batch && moves < 4*s.batch && len(out.buf) < maxOutBytes {
		if id := overdue.next; id != overdueID && id != skipped {
			e := sh.ent(id)
			sh.unlinkLocked(id, e)
			if e.deadline == zombieDeadline || e.expiredAt(now) {
				sh.expireLocked(id, e, out, report)
				freed++
			} else {
				// Only when the clock went back: retry later.
				sh.linkLocked(id, e, overdueID)
				if skipped == 0 {
					skipped = id
				}
			}
			continue
		}
		t, lvl, slot, ok := w.next()
		if !ok || t > uint64(max(now, 0)) {
			break
		}
		w.elapsed = max(w.elapsed, t)
		id := sh.ent(slotID(lvl, slot)).next
		e := sh.ent(id)
		sh.unlinkLocked(id, e)
		if lvl == 0 && e.expiredAt(now) {
			sh.expireLocked(id, e, out, report)
			freed++
		} else {
			sh.scheduleLocked(id, e)
			moves++
		}
	}
	due := int64(math.MaxInt64)
	if id := overdue.next; id != overdueID {
		if id == skipped {
			due = now + compactDelay
		} else {
			due = now
		}
	}
	t, _, _, ok := w.next()
	if ok {
		due = min(due, clampMs(t))
	}
	switch {
	case sh.pcur == 0:
		sh.pheap = sh.pheap[:0] // every item is stale
	case len(sh.pheap) > 0:
		// An item still due means the batch ran out.
		due = min(due, max(sh.pheap[0].wake, now))
	}
	out.parts.take(&sh.pend)
	if nowU := uint64(max(now, 0)); (!ok || t > nowU) && nowU > w.elapsed {
		// Nothing is due by now: every occupied slot lies after now, so
		// the wheel may advance to now, which keeps later schedules on
		// low levels.
		w.elapsed = nowU
	}
	if freed > 0 {
		sh.arena.releaseEmptyHead()
	}
	if sh.arena.hint {
		if compact && due > now {
			sh.compactStepLocked()
		}
		if sh.arena.hint {
			due = min(due, now+compactDelay)
		}
	}
	sh.arena.newHint = false // the due time above covers it
	sh.nextDue.Store(due)
}

// expireLocked frees an expired entry, unlinked from the wheel, and copies
// its key into out if report is set. A zombie was already unindexed and
// counted.
func (sh *shard) expireLocked(id uint32, e *entry, out *expOut, report bool) {
	key, _ := recordKey(sh.arena.bytes(e.loc()))
	db := e.db()
	if report {
		out.add(db, key)
	}
	if e.deadline != zombieDeadline {
		ix := &sh.dbs[db]
		if pos := ix.findID(sh.hash(key), id); pos >= 0 {
			ix.subDeadline(e.deadline)
			sh.indexRemoveLocked(ix, pos)
		}
		sh.expired++
	}
	sh.releaseLocked(id, e)
}

// keyList holds keys of several databases packed in one buffer: key i
// is buf[ends[i-1]:ends[i]], of database dbs[i]. Expiry, part expiry and
// eviction collect their reports in one under shard locks and hand them
// out after unlocking.
type keyList struct {
	buf  []byte
	ends []int
	dbs  []uint8
}

func (l *keyList) add(db int, key []byte) {
	l.buf = append(l.buf, key...)
	l.ends = append(l.ends, len(l.buf))
	l.dbs = append(l.dbs, uint8(db))
}

func (l *keyList) len() int { return len(l.ends) }

// key returns the i-th key.
func (l *keyList) key(i int) []byte {
	start := 0
	if i > 0 {
		start = l.ends[i-1]
	}
	return l.buf[start:l.ends[i]:l.ends[i]]
}

// appendList adds the keys of p after l's.
func (l *keyList) appendList(p *keyList) {
	base := len(l.buf)
	l.buf = append(l.buf, p.buf...)
	for _, end := range p.ends {
		l.ends = append(l.ends, base+end)
	}
	l.dbs = append(l.dbs, p.dbs...)
}

// reset empties l, dropping a buffer that grew past 4×maxOutBytes.
func (l *keyList) reset() {
	l.buf, l.ends, l.dbs = l.buf[:0], l.ends[:0], l.dbs[:0]
	if cap(l.buf) > 4*maxOutBytes {
		l.buf = nil
	}
}

// expOut collects the expired keys of a pass, and the part-expiry reports.
type expOut struct {
	keyList
	keys  [][]byte // scratch handed to OnExpire
	parts partOut  // reports for OnObjectExpire
}

// deliver hands the collected keys to OnExpire, one call per database, and
// empties o. s.expMu must be held.
func (s *Store) deliver() {
	o := &s.out
	if p := &o.parts; p.len() > 0 {
		for i := range p.len() {
			s.onObjExp(int(p.dbs[i]), p.key(i), p.gone[i])
		}
		p.reset()
	}
	if o.len() == 0 {
		return
	}
	var done [4]uint64 // databases already delivered
	for first := range o.dbs {
		db := o.dbs[first]
		if done[db>>6]&(1<<(db&63)) != 0 {
			continue
		}
		done[db>>6] |= 1 << (db & 63)
		o.keys = o.keys[:0]
		for i := first; i < len(o.dbs); i++ {
			if o.dbs[i] == db {
				o.keys = append(o.keys, o.key(i))
			}
		}
		s.onExpire(int(db), o.keys)
	}
	clear(o.keys)
	o.keys = o.keys[:0]
	o.reset()
}

// compactStepLocked relocates the live records of the sparsest chunk into
// the head chunk, walking at most compactBytes, and unmaps the chunk once
// it is empty. A record is live iff an indexed entry points at it; a
// zombie's record stays (it is freed soon) and keeps its chunk mapped.
func (sh *shard) compactStepLocked() {
	a := &sh.arena
	if a.victim == 0 {
		a.victim = a.pickVictim()
		a.victimOff = 0
		if a.victim == 0 {
			a.hint = false
			return
		}
	}
	vi := a.victim
	walked := 0
	for a.victimOff < a.chunks[vi].used && walked < compactBytes {
		off := a.victimOff
		loc := uint64(vi)<<a.shift | uint64(off)
		key, size := recordKey(a.chunks[vi].mem[off:])
		a.victimOff += size
		walked += size
		e := sh.ownerLocked(loc, key)
		if e == nil {
			continue
		}
		nloc, dst := a.alloc(size) // may retire the head, never the victim
		copy(dst, a.chunks[vi].mem[off:off+size])
		e.meta = e.meta&^locMask | nloc
		a.chunks[vi].live -= size
		a.live -= int64(size)
	}
	if a.victimOff >= a.chunks[vi].used {
		if a.chunks[vi].live == 0 {
			a.unmap(vi)
		}
		a.victim, a.victimOff = 0, 0
		if a.pickVictim() == 0 {
			a.hint = false
		}
	}
}

// ownerLocked returns the indexed entry whose record is at loc, or nil.
func (sh *shard) ownerLocked(loc uint64, key []byte) *entry {
	h := sh.hash(key)
	for db := range sh.dbs {
		ix := &sh.dbs[db]
		n := len(ix.ids)
		if n == 0 {
			continue
		}
		pos := home(h, n)
		for d := 0; ; d++ {
			id := ix.ids[pos]
			if id == 0 || int(ix.disp[pos]) < d {
				break
			}
			if int(ix.disp[pos]) == d {
				if e := sh.ent(id); e.loc() == loc {
					return e
				}
			}
			pos++
			if pos == n {
				pos = 0
			}
		}
	}
	return nil
}
