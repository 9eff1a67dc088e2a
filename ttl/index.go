package ttl

import "math/bits"

// dbIndex is the hash index of one database within one shard: Robin Hood
// open addressing with linear probing over two pointer-free arrays, the
// entry id of each slot and its distance from the slot its hash chose (its
// home). Deletion shifts the following run back by one (no tombstones).
// Lookups stop at the first slot whose distance is shorter than the probe's,
// and compare keys only for slots with the same home. A table is sized
// freely (home = hash·n >> 32), grows past 7/8 load by half and shrinks
// under 1/4 to 5/8. It is guarded by its shard's mutex.
type dbIndex struct {
	ids  []uint32 // slot -> entry id; 0 = empty
	disp []uint8  // slot -> distance from home

	count   int    // indexed entries (live keys and expired keys not yet met)
	expires int    // of which have a deadline
	dlHi    uint64 // 128-bit sum of the deadlines of those,
	dlLo    uint64 // for Stats.AvgTTL
}

const (
	minIndex = 16
	maxDisp  = 255
)

// home returns the first slot to probe for hash h in a table of n slots.
func home(h uint64, n int) int { return int((h >> 32) * uint64(n) >> 32) }

// sizeFor returns a table size holding count entries at 5/8 load.
func sizeFor(count int) int {
	n := (count*8 + 4) / 5
	n = (n + 7) &^ 7
	return max(n, minIndex)
}

// addDeadline adds (sign=+1) or removes a deadline from the 128-bit sum.
func (ix *dbIndex) addDeadline(dl int64) {
	var c uint64
	ix.dlLo, c = bits.Add64(ix.dlLo, uint64(dl), 0)
	ix.dlHi += c
	ix.expires++
}

func (ix *dbIndex) subDeadline(dl int64) {
	var b uint64
	ix.dlLo, b = bits.Sub64(ix.dlLo, uint64(dl), 0)
	ix.dlHi -= b
	ix.expires--
}

// insert places id (whose key hashes to h) by Robin Hood insertion. If some
// entry would move past maxDisp it is left out of the table and returned;
// otherwise insert returns 0.
func (ix *dbIndex) insert(id uint32, h uint64) uint32 {
	n := len(ix.ids)
	pos := home(h, n)
	d := 0
	for {
		cur := ix.ids[pos]
		if cur == 0 {
			ix.ids[pos] = id
			ix.disp[pos] = uint8(d)
			return 0
		}
		if cd := int(ix.disp[pos]); cd < d {
			ix.ids[pos] = id
			ix.disp[pos] = uint8(d)
			id, d = cur, cd
		}
		pos++
		if pos == n {
			pos = 0
		}
		d++
		if d > maxDisp {
			return id
		}
	}
}

// removeAt empties slot pos and shifts the run after it back.
func (ix *dbIndex) removeAt(pos int) {
	n := len(ix.ids)
	for {
		next := pos + 1
		if next == n {
			next = 0
		}
		if ix.ids[next] == 0 || ix.disp[next] == 0 {
			ix.ids[pos] = 0
			ix.disp[pos] = 0
			return
		}
		ix.ids[pos] = ix.ids[next]
		ix.disp[pos] = ix.disp[next] - 1
		pos = next
	}
}

// findIDLocked returns the slot holding id, whose key hashes to h, or -1.
func (ix *dbIndex) findID(h uint64, id uint32) int {
	n := len(ix.ids)
	if n == 0 {
		return -1
	}
	pos := home(h, n)
	for d := 0; ; d++ {
		cur := ix.ids[pos]
		if cur == 0 || int(ix.disp[pos]) < d {
			return -1
		}
		if cur == id {
			return pos
		}
		pos++
		if pos == n {
			pos = 0
		}
	}
}

// findLocked returns the slot and id of key (hash h) in ix, or -1, 0.
func (sh *shard) findLocked(ix *dbIndex, key []byte, h uint64) (int, uint32) {
	n := len(ix.ids)
	if n == 0 {
		return -1, 0
	}
	pos := home(h, n)
	for d := 0; ; d++ {
		id := ix.ids[pos]
		if id == 0 {
			return -1, 0
		}
		pd := int(ix.disp[pos])
		if pd < d {
			return -1, 0
		}
		if pd == d && sh.keyIs(id, key) {
			return pos, id
		}
		pos++
		if pos == n {
			pos = 0
		}
	}
}

// keyIs reports whether entry id's key is key.
func (sh *shard) keyIs(id uint32, key []byte) bool {
	b := sh.arena.bytes(sh.ent(id).loc())
	klen, _, n := parseHeader(b)
	return klen == len(key) && string(b[n:n+klen]) == string(key)
}

// indexAddLocked adds id (hash h) to ix, growing it as needed.
func (sh *shard) indexAddLocked(ix *dbIndex, id uint32, h uint64) {
	ix.count++
	if n := len(ix.ids); ix.count*8 > n*7 {
		sh.resizeLocked(ix, max(sizeFor(ix.count), n+n/2), id)
		return
	}
	if out := ix.insert(id, h); out != 0 {
		sh.resizeLocked(ix, len(ix.ids)*2, out)
	}
}

// indexRemoveLocked removes slot pos of ix, shrinking it when sparse.
func (sh *shard) indexRemoveLocked(ix *dbIndex, pos int) {
	ix.removeAt(pos)
	ix.count--
	if n := len(ix.ids); n > minIndex && ix.count*4 < n {
		sh.resizeLocked(ix, sizeFor(ix.count), 0)
	}
}

// resizeLocked rebuilds ix with n slots, holding its entries plus extra
// (unless 0). Hashes are recomputed from the keys in the arena.
func (sh *shard) resizeLocked(ix *dbIndex, n int, extra uint32) {
	oldIDs := ix.ids
	for {
		ix.ids = make([]uint32, n)
		ix.disp = make([]uint8, n)
		ok := true
		for _, id := range oldIDs {
			if id != 0 && ix.insert(id, sh.hashID(id)) != 0 {
				ok = false
				break
			}
		}
		if ok && extra != 0 && ix.insert(extra, sh.hashID(extra)) != 0 {
			ok = false
		}
		if ok {
			return
		}
		n *= 2
	}
}
