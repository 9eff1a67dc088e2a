package ttl

import "math"

// Objects whose parts expire (PartExpirer) are scheduled per shard in a
// binary min-heap of (wake, id) items, wake being the first millisecond at
// which the object has an expired part. The objRec's wake is the truth and
// an item a hint: an item is current while objs[id].wake equals its wake.
// A change of wake pushes a new item and leaves the old one stale; stale
// items are dropped when they reach the top, or all at once when they
// outnumber the current ones. So the entry stays 24 bytes, an object
// without part deadlines costs nothing, and a key's deleting, renaming or
// replacing needs no heap work: it only drops the objRec.

// pitem schedules object id at wake.
type pitem struct {
	wake int64
	id   uint32
}

func (a pitem) less(b pitem) bool {
	return a.wake < b.wake || a.wake == b.wake && a.id < b.id
}

// wakeOf returns the first ms at which obj has an expired part, 0 if none
// of its parts has a deadline.
func wakeOf(obj Object) int64 {
	x, ok := obj.(PartExpirer)
	if !ok {
		return 0
	}
	d := x.NextExpiry()
	switch {
	case d == 0:
		return 0
	case d == math.MaxInt64:
		return math.MaxInt64
	}
	return max(d+1, 1)
}

// rewakeLocked sets the wake of object id, whose record r the caller
// stores, and schedules it.
func (sh *shard) rewakeLocked(id uint32, r *objRec, wake int64) {
	if r.wake == wake {
		return
	}
	if r.wake != 0 {
		sh.pcur--
	}
	r.wake = wake
	if wake == 0 {
		return
	}
	sh.pcur++
	sh.pushLocked(pitem{wake: wake, id: id})
	sh.lowerDueLocked(wake)
}

// unwakeLocked unschedules object id, if it is one.
func (sh *shard) unwakeLocked(id uint32) {
	if sh.pcur == 0 {
		return
	}
	if r, ok := sh.objs[id]; ok && r.wake != 0 {
		r.wake = 0
		sh.pcur--
		sh.objs[id] = r
	}
}

// partsDueLocked reports whether object id has a part expired at now.
func (sh *shard) partsDueLocked(id uint32, now int64) bool {
	if sh.pcur == 0 {
		return false
	}
	r, ok := sh.objs[id]
	return ok && r.wake != 0 && r.wake <= now
}

// expirePartsLocked has the object of the live, indexed entry id expire
// its parts due at now, at most limit of them, and queues the report. An
// object left empty is deleted with its key; expirePartsLocked then
// reports true. pos is the entry's slot in its index, or -1 if unknown.
// From outside Run (fromRun false) it also wakes Run to deliver the report.
func (sh *shard) expirePartsLocked(id uint32, e *entry, pos int, now int64, limit int, fromRun bool) bool {
	sh.preserveLocked(id, e)
	r := sh.objs[id]
	x := r.obj.(PartExpirer)
	removed, left := x.ExpireParts(now, limit)
	db := e.db()
	key, _ := recordKey(sh.arena.bytes(e.loc()))
	if removed > 0 {
		sh.expiredParts += uint64(removed)
		if sh.s.onObjExp != nil {
			sh.pend.add(db, key, left == 0)
			if !fromRun {
				sh.lowerDueLocked(math.MinInt64)
			}
		}
	}
	if left == 0 {
		ix := &sh.dbs[db]
		if pos < 0 {
			pos = ix.findID(sh.hash(key), id)
		}
		sh.removeLocked(ix, pos, id, e)
		return true
	}
	mem := int64(r.obj.MemoryUsage())
	sh.objMem += mem - r.mem
	r.mem = mem
	wake := wakeOf(r.obj)
	if wake != 0 && wake <= now && removed < limit {
		wake = now + 1 // an object that does not remove what it says is due: retry later
	}
	if r.wake != 0 {
		sh.pcur--
		r.wake = 0 // so that rewake pushes an item: the caller may have popped the last one
	}
	sh.rewakeLocked(id, &r, wake)
	sh.objs[id] = r
	return false
}

// expirePartsDueLocked services the objects due by now, at most budget
// parts' worth, and returns the number of parts removed (objects without
// a removal count as one).
func (sh *shard) expirePartsDueLocked(now int64, budget int) int {
	done := 0
	for done < budget && len(sh.pheap) > 0 && sh.pheap[0].wake <= now && len(sh.pend.buf) < maxOutBytes {
		it := sh.popLocked()
		r, ok := sh.objs[it.id]
		if !ok || r.wake != it.wake {
			continue // stale
		}
		e := sh.ent(it.id)
		if e.expiredAt(now) {
			// The key itself expired: the wheel frees it with its parts.
			sh.unwakeLocked(it.id)
			continue
		}
		before := sh.expiredParts
		sh.expirePartsLocked(it.id, e, -1, now, budget-done, true)
		done += max(int(sh.expiredParts-before), 1)
	}
	return done
}

// pushLocked adds an item, first dropping every stale item when they
// outnumber the current ones.
func (sh *shard) pushLocked(it pitem) {
	if len(sh.pheap) >= 2*sh.pcur+64 {
		sh.compactHeapLocked()
	}
	h := append(sh.pheap, it)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	sh.pheap = h
}

// popLocked removes and returns the earliest item.
func (sh *shard) popLocked() pitem {
	h := sh.pheap
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	siftDown(h, 0)
	sh.pheap = h
	if cap(h) > 256 && n < cap(h)/4 {
		sh.pheap = append([]pitem(nil), h...)
	}
	return top
}

func siftDown(h []pitem, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// compactHeapLocked keeps the current items only, and restores the heap.
func (sh *shard) compactHeapLocked() {
	h := sh.pheap[:0]
	for _, it := range sh.pheap {
		if r, ok := sh.objs[it.id]; ok && r.wake == it.wake {
			h = append(h, it)
		}
	}
	clear(sh.pheap[len(h):])
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	sh.pheap = h
}

// partOut collects reports for OnObjectExpire: keys whose object was
// left empty if gone[i].
type partOut struct {
	keyList
	gone []bool
}

func (o *partOut) add(db int, key []byte, gone bool) {
	o.keyList.add(db, key)
	o.gone = append(o.gone, gone)
}

// take moves the reports of p to the end of o.
func (o *partOut) take(p *partOut) {
	if p.len() == 0 {
		return
	}
	o.appendList(&p.keyList)
	o.gone = append(o.gone, p.gone...)
	p.reset()
}

func (o *partOut) reset() {
	o.keyList.reset()
	o.gone = o.gone[:0]
}
