package ttl

import (
	"math"
	"math/bits"
)

// The timer wheel of a shard is hierarchical with 1 ms resolution: level L
// has 64 slots of 64^L ms each, and 11 levels cover every uint64 time. An
// entry with a deadline is linked, through its prev/next ids, into a
// circular list whose head is a sentinel entry: ids 1..704 are the slots,
// id 705 the overdue list (entries already due when scheduled, and expired
// entries a Txn met). Scheduling and cancelling are O(1); a bitmap per
// level tells which slots are occupied, so finding the next due time never
// walks empty slots.
//
// An entry with deadline d is scheduled to fire at f = d+1, the first
// millisecond at which it counts as expired. The wheel's time, elapsed, is
// the time up to which the wheel has been advanced. An entry goes to the
// level of the highest 6-bit digit in which f differs from elapsed, at the
// slot of f's digit there; so every occupied slot of a level lies after
// elapsed's digit, and any slot of a lower level comes before any slot of
// a higher one. (A pass may stop while cascading a slot; that slot, at
// elapsed's digit, is then taken first.) When a slot of level > 0 comes due its entries are
// rescheduled into lower levels (cascading); when a slot of level 0 comes
// due its entries expire.
const (
	wheelBits   = 6
	wheelSlots  = 1 << wheelBits
	wheelMask   = wheelSlots - 1
	wheelLevels = 11
	overdueID   = 1 + wheelLevels*wheelSlots // sentinel of the overdue list
	firstID     = overdueID + 1              // first id of a data entry
)

type wheel struct {
	elapsed uint64
	occ     [wheelLevels]uint64 // occupied slots per level
}

func slotID(lvl, slot int) uint32 { return uint32(1 + lvl*wheelSlots + slot) }

// slotTime is the start time of slot of lvl relative to elapsed.
func slotTime(elapsed uint64, lvl, slot int) uint64 {
	var base uint64
	if s := wheelBits * (lvl + 1); s < 64 {
		base = elapsed >> s << s
	}
	return base | uint64(slot)<<(wheelBits*lvl)
}

// next returns the start time, level and slot of the earliest occupied slot.
func (w *wheel) next() (t uint64, lvl, slot int, ok bool) {
	// A slot of level > 0 at the wheel's own position is one whose
	// cascading a pass left unfinished: it comes first, as its entries may
	// be due before anything on the levels below.
	for lvl := 1; lvl < wheelLevels; lvl++ {
		cur := int(w.elapsed>>(wheelBits*lvl)) & wheelMask
		if w.occ[lvl]&(1<<cur) != 0 {
			return slotTime(w.elapsed, lvl, cur), lvl, cur, true
		}
	}
	for lvl := range wheelLevels {
		occ := w.occ[lvl]
		if occ == 0 {
			continue
		}
		cur := uint(w.elapsed>>(wheelBits*lvl)) & wheelMask
		m := occ &^ (1<<cur - 1)
		if m == 0 {
			// Cannot happen while the invariant holds; make the slot due
			// at once so that it is cascaded back into place.
			slot := bits.TrailingZeros64(occ)
			return w.elapsed, lvl, slot, true
		}
		slot := bits.TrailingZeros64(m)
		return slotTime(w.elapsed, lvl, slot), lvl, slot, true
	}
	return 0, 0, 0, false
}

// clampMs converts a wheel time to Unix ms.
func clampMs(t uint64) int64 {
	if t > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(t)
}

// linkLocked appends entry id to the list of sentinel s.
func (sh *shard) linkLocked(id uint32, e *entry, s uint32) {
	head := sh.ent(s)
	last := head.prev
	e.prev, e.next = last, s
	sh.ent(last).next = id
	head.prev = id
}

// unlinkLocked removes entry id from its wheel list.
func (sh *shard) unlinkLocked(id uint32, e *entry) {
	p, n := e.prev, e.next
	sh.ent(p).next = n
	sh.ent(n).prev = p
	e.prev, e.next = 0, 0
	// p == n only when the list is left with its sentinel alone.
	if p == n && p < overdueID {
		s := int(p - 1)
		sh.wheel.occ[s/wheelSlots] &^= 1 << (s % wheelSlots)
	}
}

// scheduleLocked links entry id, which has a deadline, into the wheel.
func (sh *shard) scheduleLocked(id uint32, e *entry) {
	w := &sh.wheel
	f := uint64(e.deadline) + 1
	if f <= w.elapsed {
		sh.linkLocked(id, e, overdueID)
		sh.lowerDueLocked(math.MinInt64)
		return
	}
	lvl := (bits.Len64(f^w.elapsed) - 1) / wheelBits
	slot := int(f>>(wheelBits*lvl)) & wheelMask
	sh.linkLocked(id, e, slotID(lvl, slot))
	w.occ[lvl] |= 1 << slot
	sh.lowerDueLocked(clampMs(slotTime(w.elapsed, lvl, slot)))
}

// lowerDueLocked makes Run visit the shard no later than t, waking Run if
// it planned to sleep past t.
func (sh *shard) lowerDueLocked(t int64) {
	if t < sh.nextDue.Load() {
		sh.nextDue.Store(t)
		if t < sh.s.planned.Load() {
			select {
			case sh.s.wake <- struct{}{}:
			default:
			}
		}
	}
}
