package ttl

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
)

// entry is the fixed part of a key, 24 bytes and pointer-free. Free
// entries have meta 0 and are linked through next.
type entry struct {
	// deadline is the expiry time in Unix ms, 0 for none, zombieDeadline
	// for an expired entry already removed from the index whose key still
	// waits to be reported to OnExpire.
	deadline int64
	// meta packs the record location (48 bits), the kind and the db.
	meta uint64
	// prev and next link the entry into a wheel list.
	prev, next uint32
}

const (
	locBits = 48
	locMask = 1<<locBits - 1

	zombieDeadline = math.MinInt64

	segShift = 10
	segSize  = 1 << segShift
	segMask  = segSize - 1

	entrySize = 24
)

func packMeta(loc uint64, kind Kind, db int) uint64 {
	return loc | uint64(kind)<<locBits | uint64(db)<<56
}

func (e *entry) loc() uint64 { return e.meta & locMask }
func (e *entry) kind() Kind  { return Kind(e.meta >> locBits) }
func (e *entry) db() int     { return int(e.meta >> 56) }

// expiredAt reports whether the entry is expired at now.
func (e *entry) expiredAt(now int64) bool { return e.deadline != 0 && now > e.deadline }

// objRec is an Object, the memory it reported last and, for a
// PartExpirer with part deadlines, its wake: the first ms at which it has
// an expired part (0 for none).
type objRec struct {
	obj  Object
	mem  int64
	wake int64
}

// shard is an independently locked part of the store.
type shard struct {
	mu sync.Mutex

	// The fields below are guarded by mu.

	s    *Store
	seed maphash.Seed
	// segs is the entry table in segments of segSize (they never move, so
	// growing never copies). Ids below firstID are wheel sentinels.
	segs    []*[segSize]entry
	nids    uint32 // ids below nids have been handed out
	freeID  uint32 // head of the free id list, linked through next
	used    int    // data ids in use, zombies included
	zombies int
	dbs     []dbIndex // per database
	objs    map[uint32]objRec
	objMem  int64
	arena   arena
	wheel   wheel
	expired uint64 // keys removed because they expired

	// pheap schedules the objects whose parts expire (parts.go); pcur
	// counts the objRecs with a wake; pend holds the reports of objects
	// whose parts a Txn, Scan or RandomKey expired, for Run to deliver.
	pheap        []pitem
	pcur         int
	pend         partOut
	expiredParts uint64     // parts removed by ExpireParts
	ev           shardEvict // access information and eviction pool (evict.go)

	// cap is the shard's part of a running capture (capture.go), nil when
	// none runs.
	cap *shardCapture

	// nextDue is the Unix ms at which Run should visit the shard next,
	// math.MaxInt64 for never. Written with mu held, read by Run without.
	nextDue atomic.Int64

	_ [64]byte // keep neighbouring shards off each other's cache lines
}

func (sh *shard) init(s *Store, now int64) {
	sh.s = s
	sh.seed = s.seed
	sh.dbs = make([]dbIndex, s.ndb)
	sh.arena = newArena(s.chunkSize)
	sh.arena.total = &s.ev.mapped
	sh.resetIDsLocked(now)
	sh.nextDue.Store(math.MaxInt64)
}

// resetIDsLocked empties the entry table and the wheel. Only valid when
// no data entry is in use.
func (sh *shard) resetIDsLocked(now int64) {
	var seg0 *[segSize]entry
	if len(sh.segs) > 0 {
		seg0 = sh.segs[0]
		clear(seg0[firstID:min(int(sh.nids), segSize)])
		clear(sh.segs[1:])
		sh.segs = sh.segs[:1]
	} else {
		seg0 = new([segSize]entry)
		sh.segs = append(sh.segs, seg0)
	}
	for id := uint32(1); id < firstID; id++ {
		seg0[id].prev, seg0[id].next = id, id
	}
	sh.nids = firstID
	sh.freeID = 0
	sh.used = 0
	sh.zombies = 0
	sh.pheap = sh.pheap[:0] // no object is left: every item is stale
	sh.pcur = 0
	sh.wheel = wheel{elapsed: uint64(max(now, 0))}
}

func (sh *shard) ent(id uint32) *entry { return &sh.segs[id>>segShift][id&segMask] }

func (sh *shard) hash(key []byte) uint64 { return maphash.Bytes(sh.seed, key) }

// hashID hashes the key of entry id.
func (sh *shard) hashID(id uint32) uint64 {
	k, _ := recordKey(sh.arena.bytes(sh.ent(id).loc()))
	return sh.hash(k)
}

func (sh *shard) allocIDLocked() (uint32, *entry) {
	sh.used++
	if id := sh.freeID; id != 0 {
		e := sh.ent(id)
		sh.freeID = e.next
		e.next = 0
		return id, e
	}
	id := sh.nids
	if id == math.MaxUint32 {
		panic("ttl: too many entries in one shard")
	}
	if int(id>>segShift) == len(sh.segs) {
		sh.segs = append(sh.segs, new([segSize]entry))
	}
	sh.nids++
	return id, sh.ent(id)
}

func (sh *shard) freeIDLocked(id uint32, e *entry) {
	*e = entry{next: sh.freeID}
	sh.freeID = id
	sh.used--
	if sh.used == 0 {
		sh.resetIDsLocked(int64(sh.wheel.elapsed))
	}
}

// lookupLocked finds the live entry of key (hash h) in ix. An expired entry
// met here is expired.
func (sh *shard) lookupLocked(ix *dbIndex, key []byte, h uint64, now int64) (int, uint32, *entry) {
	if ix.count == 0 {
		return -1, 0, nil
	}
	pos, id := sh.findLocked(ix, key, h)
	if id == 0 {
		return -1, 0, nil
	}
	e := sh.ent(id)
	if e.expiredAt(now) {
		sh.expireMetLocked(ix, pos, id, e)
		return -1, 0, nil
	}
	if sh.ev.track != trackNone {
		sh.accessedLocked(id, now)
	}
	return pos, id, e
}

// expireMetLocked expires an entry a Txn met: it leaves the index at once
// and is counted; if OnExpire is set it becomes a zombie on the overdue
// list, so that Run reports its key and frees it, else it is freed now.
func (sh *shard) expireMetLocked(ix *dbIndex, pos int, id uint32, e *entry) {
	sh.unindexLocked(ix, pos, e)
	sh.expired++
	sh.unwakeLocked(id) // its parts go with it, unreported
	if sh.s.onExpire == nil {
		sh.releaseLocked(id, e)
		return
	}
	sh.unlinkLocked(id, e)
	e.deadline = zombieDeadline
	sh.zombies++
	sh.linkLocked(id, e, overdueID)
	sh.lowerDueLocked(math.MinInt64)
}

// unindexLocked removes the entry at slot pos of ix from ix and its counters.
func (sh *shard) unindexLocked(ix *dbIndex, pos int, e *entry) {
	if e.deadline != 0 {
		ix.subDeadline(e.deadline)
	}
	sh.indexRemoveLocked(ix, pos)
}

// releaseLocked frees an entry that is no longer indexed: its wheel link,
// record, object and id.
func (sh *shard) releaseLocked(id uint32, e *entry) {
	if e.next != 0 {
		sh.unlinkLocked(id, e)
	}
	if e.deadline == zombieDeadline {
		sh.zombies--
	}
	loc := e.loc()
	klen, vf, n := parseHeader(sh.arena.bytes(loc))
	if vf&1 != 0 {
		sh.dropObjectLocked(id)
	}
	sh.arena.free(loc, n+klen+vf>>1)
	sh.hintLocked()
	sh.freeIDLocked(id, e)
}

func (sh *shard) dropObjectLocked(id uint32) {
	if r, ok := sh.objs[id]; ok {
		sh.objMem -= r.mem
		if r.wake != 0 {
			sh.pcur-- // its heap items are stale now
		}
		delete(sh.objs, id)
	}
}

// removeLocked deletes the indexed entry at slot pos of ix.
func (sh *shard) removeLocked(ix *dbIndex, pos int, id uint32, e *entry) {
	sh.preserveLocked(id, e)
	sh.unindexLocked(ix, pos, e)
	sh.releaseLocked(id, e)
}

// setDeadlineLocked changes the deadline of an indexed entry.
func (sh *shard) setDeadlineLocked(ix *dbIndex, id uint32, e *entry, dl int64) {
	if e.deadline == dl {
		return
	}
	sh.preserveLocked(id, e)
	if e.deadline != 0 {
		ix.subDeadline(e.deadline)
		sh.unlinkLocked(id, e)
	}
	e.deadline = dl
	if dl != 0 {
		ix.addDeadline(dl)
		sh.scheduleLocked(id, e)
	}
}

// putLocked stores a record for key in db, replacing any entry; obj != nil
// or isObj selects an object kind.
func (sh *shard) putLocked(db int, key []byte, h uint64, kind Kind, blob []byte, isObj bool, obj Object, deadline, now int64) {
	ix := &sh.dbs[db]
	_, id, e := sh.lookupLocked(ix, key, h, now)
	if id != 0 {
		sh.preserveLocked(id, e)
	}
	if isObj {
		blob = nil
	}
	// Write the new record first: blob may alias the old one.
	_, size := recordSize(len(key), len(blob), isObj)
	loc, dst := sh.arena.alloc(size)
	writeRecord(dst, key, blob, isObj)
	if id != 0 {
		old := e.loc()
		klen, vf, n := parseHeader(sh.arena.bytes(old))
		if vf&1 != 0 {
			sh.dropObjectLocked(id)
		}
		e.meta = packMeta(loc, kind, db)
		sh.arena.free(old, n+klen+vf>>1)
		sh.setDeadlineLocked(ix, id, e, deadline)
	} else {
		id, e = sh.allocIDLocked()
		sh.cap.mark(id) // written after the capture began
		e.meta = packMeta(loc, kind, db)
		if sh.ev.track != trackNone {
			sh.createdLocked(id, now)
		}
		sh.indexAddLocked(ix, id, h)
		if deadline != 0 {
			e.deadline = deadline
			ix.addDeadline(deadline)
			sh.scheduleLocked(id, e)
		}
	}
	if isObj {
		if sh.objs == nil {
			sh.objs = make(map[uint32]objRec)
		}
		r := objRec{obj: obj}
		if obj != nil {
			r.mem = int64(obj.MemoryUsage())
			sh.rewakeLocked(id, &r, wakeOf(obj))
		}
		sh.objs[id] = r
		sh.objMem += r.mem
	}
	sh.hintLocked()
}

// hintLocked wakes Run when compaction got work.
func (sh *shard) hintLocked() {
	if sh.arena.newHint {
		sh.arena.newHint = false
		sh.lowerDueLocked(math.MinInt64)
	}
}

// deleteLocked removes key from db and reports whether it was live.
func (sh *shard) deleteLocked(db int, key []byte, h uint64, now int64) bool {
	ix := &sh.dbs[db]
	pos, id, e := sh.lookupLocked(ix, key, h, now)
	if id == 0 {
		return false
	}
	sh.removeLocked(ix, pos, id, e)
	return true
}

// flushDBLocked removes every indexed entry of db (zombies stay to be
// reported).
func (sh *shard) flushDBLocked(db int) {
	ix := &sh.dbs[db]
	if ix.count == 0 {
		return
	}
	*ix = dbIndex{}
	for id := uint32(firstID); id < sh.nids; id++ {
		e := sh.ent(id)
		if e.meta != 0 && e.db() == db && e.deadline != zombieDeadline {
			sh.preserveLocked(id, e) // before its deadline goes
			e.deadline = 0           // counters are gone with the index
			sh.releaseLocked(id, e)
			if sh.used == 0 {
				break
			}
		}
	}
}

// flushAllLocked removes everything. Zombies stay to be reported.
func (sh *shard) flushAllLocked() {
	if sh.zombies > 0 {
		for db := range sh.dbs {
			sh.flushDBLocked(db)
		}
		return
	}
	sh.preserveAllLocked()
	sh.arena.reset()
	clear(sh.dbs)
	sh.objs = nil
	sh.objMem = 0
	sh.resetIDsLocked(int64(sh.wheel.elapsed))
	sh.nextDue.Store(math.MaxInt64)
}
