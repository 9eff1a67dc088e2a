package ttl

import (
	"encoding/binary"
	"math/bits"
	"os"
	"sync/atomic"
)

// A record is how a key and its byte value sit in an arena chunk:
//
//	[klen uvarint][vfield uvarint][key][value]
//
// where vfield is vlen<<1 | isObject. Object kinds store no value bytes
// (vfield is 1): their Object lives in the shard's side table. Records are
// never rewritten in place; a record is dead once no entry points at it.

// uvarintLen is the number of bytes binary.PutUvarint writes for x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// recordSize returns the header size and total size of a record.
func recordSize(klen, vlen int, obj bool) (hdr, total int) {
	vf := uint64(vlen) << 1
	if obj {
		vf |= 1
	}
	hdr = uvarintLen(uint64(klen)) + uvarintLen(vf)
	return hdr, hdr + klen + vlen
}

// writeRecord encodes a record into dst, which has exactly the record's size.
func writeRecord(dst, key, val []byte, obj bool) {
	vf := uint64(len(val)) << 1
	if obj {
		vf |= 1
	}
	n := binary.PutUvarint(dst, uint64(len(key)))
	n += binary.PutUvarint(dst[n:], vf)
	n += copy(dst[n:], key)
	copy(dst[n:], val)
}

// parseHeader decodes a record header: key length, vfield and header size.
func parseHeader(b []byte) (klen, vf, n int) {
	if c := b[0]; c < 0x80 {
		klen, n = int(c), 1
	} else {
		k, m := binary.Uvarint(b)
		klen, n = int(k), m
	}
	if c := b[n]; c < 0x80 {
		vf = int(c)
		n++
	} else {
		v, m := binary.Uvarint(b[n:])
		vf = int(v)
		n += m
	}
	return klen, vf, n
}

// recordKey returns the key of the record at the start of b and the
// record's total size.
func recordKey(b []byte) (key []byte, size int) {
	klen, vf, n := parseHeader(b)
	return b[n : n+klen : n+klen], n + klen + vf>>1
}

// chunk is one off-heap mapping. Regular chunks have the arena's chunk size
// and hold records appended at used; big chunks hold one record.
type chunk struct {
	mem  []byte // as returned by mapMem; nil for a free slot
	used int    // bytes of records written, from offset 0
	live int    // bytes of records still referenced by an entry
	big  bool
}

// arena is the record storage of one shard. A location (loc) is
// chunkIndex<<shift | offset; chunk index 0 is never used, so a location is
// never 0. It is guarded by its shard's mutex.
type arena struct {
	chunks    []chunk  // index 0 unused
	freeSlots []uint32 // free indexes of chunks
	head      uint32   // chunk receiving appends; 0 = none
	shift     uint     // log2 of the chunk size
	size      int      // chunk size
	bigMin    int      // records larger than this get a dedicated mapping
	page      int
	mapped    int64 // bytes mapped
	live      int64 // bytes of live records

	total *atomic.Int64 // the store's sum of mapped bytes, or nil

	// hint is set when some non-head chunk dropped below half live, so
	// that compaction has work; newHint when hint was set since the shard
	// last looked, so that it wakes Run.
	hint    bool
	newHint bool
	// victim is the chunk being compacted (0 = none), walked from victimOff.
	victim    uint32
	victimOff int
}

func newArena(chunkSize int) arena {
	return arena{
		chunks: make([]chunk, 1),
		shift:  uint(bits.TrailingZeros(uint(chunkSize))),
		size:   chunkSize,
		bigMin: chunkSize / 4,
		page:   os.Getpagesize(),
	}
}

// bytes returns the chunk memory starting at loc.
func (a *arena) bytes(loc uint64) []byte {
	return a.chunks[loc>>a.shift].mem[loc&(1<<a.shift-1):]
}

// slot returns a free chunk index.
func (a *arena) slot() uint32 {
	if n := len(a.freeSlots); n > 0 {
		ci := a.freeSlots[n-1]
		a.freeSlots = a.freeSlots[:n-1]
		return ci
	}
	if uint64(len(a.chunks)) >= 1<<(locBits-a.shift) {
		panic("ttl: arena address space of a shard exhausted")
	}
	a.chunks = append(a.chunks, chunk{})
	return uint32(len(a.chunks) - 1)
}

// alloc reserves size bytes for a record and returns its location and the
// memory to write it into. Existing records do not move.
func (a *arena) alloc(size int) (uint64, []byte) {
	if size > a.bigMin {
		n := (size + a.page - 1) / a.page * a.page
		mem := mapMem(n)
		ci := a.slot()
		a.chunks[ci] = chunk{mem: mem, used: size, live: size, big: true}
		a.addMapped(int64(n))
		a.live += int64(size)
		return uint64(ci) << a.shift, mem[:size:size]
	}
	if a.head == 0 || a.chunks[a.head].used+size > a.size {
		a.retireHead()
		mem := mapMem(a.size)
		ci := a.slot()
		a.chunks[ci] = chunk{mem: mem}
		a.addMapped(int64(a.size))
		a.head = ci
	}
	c := &a.chunks[a.head]
	off := c.used
	c.used += size
	c.live += size
	a.live += int64(size)
	return uint64(a.head)<<a.shift | uint64(off), c.mem[off : off+size : off+size]
}

// retireHead stops appending to the head chunk.
func (a *arena) retireHead() {
	if a.head == 0 {
		return
	}
	ci := a.head
	a.head = 0
	c := &a.chunks[ci]
	switch {
	case c.live == 0:
		a.unmap(ci)
	case c.live*2 < c.used:
		a.setHint()
	}
}

func (a *arena) setHint() {
	if !a.hint {
		a.hint, a.newHint = true, true
	}
}

// free marks the record of size bytes at loc dead. A chunk left without
// live records is unmapped at once, except the head, which is rewound.
func (a *arena) free(loc uint64, size int) {
	ci := uint32(loc >> a.shift)
	c := &a.chunks[ci]
	c.live -= size
	a.live -= int64(size)
	if c.live == 0 {
		if ci == a.head {
			c.used = 0
			return
		}
		a.unmap(ci)
		return
	}
	if ci != a.head && !c.big && c.live*2 < c.used && (c.live+size)*2 >= c.used {
		a.setHint()
	}
}

// unmap releases chunk ci.
func (a *arena) unmap(ci uint32) {
	c := &a.chunks[ci]
	a.addMapped(-int64(len(c.mem)))
	unmapMem(c.mem)
	*c = chunk{}
	if ci == a.victim {
		a.victim, a.victimOff = 0, 0
	}
	if ci == a.head {
		a.head = 0
	}
	if int(ci) == len(a.chunks)-1 {
		a.chunks = a.chunks[:ci]
		// Drop free slots at the new end as well, so the table shrinks
		// back after a mass expiry.
		for len(a.chunks) > 1 && a.chunks[len(a.chunks)-1].mem == nil {
			a.chunks = a.chunks[:len(a.chunks)-1]
		}
		n := 0
		for _, s := range a.freeSlots {
			if int(s) < len(a.chunks) {
				a.freeSlots[n] = s
				n++
			}
		}
		a.freeSlots = a.freeSlots[:n]
		return
	}
	a.freeSlots = append(a.freeSlots, ci)
}

// releaseEmptyHead unmaps the head chunk if it holds no live record.
func (a *arena) releaseEmptyHead() {
	if a.head != 0 && a.chunks[a.head].live == 0 {
		a.unmap(a.head)
	}
}

// reset unmaps every chunk.
func (a *arena) reset() {
	for ci := range a.chunks {
		if a.chunks[ci].mem != nil {
			unmapMem(a.chunks[ci].mem)
		}
	}
	a.addMapped(-a.mapped)
	*a = arena{chunks: make([]chunk, 1), shift: a.shift, size: a.size, bigMin: a.bigMin, page: a.page, total: a.total}
}

// addMapped adds n to the bytes mapped and to the store's total.
func (a *arena) addMapped(n int64) {
	a.mapped += n
	if a.total != nil {
		a.total.Add(n)
	}
}

// pickVictim chooses the regular, non-head chunk with the lowest live ratio
// below one half, or returns 0.
func (a *arena) pickVictim() uint32 {
	best, bestLive, bestUsed := uint32(0), 1, 1
	for i := 1; i < len(a.chunks); i++ {
		c := &a.chunks[i]
		if c.mem == nil || c.big || uint32(i) == a.head || c.live*2 >= c.used {
			continue
		}
		if c.live*bestUsed < bestLive*c.used {
			best, bestLive, bestUsed = uint32(i), c.live, c.used
		}
	}
	return best
}

// bytesSize is the cap-based size of the arena's Go-heap tables.
func (a *arena) heapBytes() int64 {
	return int64(cap(a.chunks))*int64(chunkStructSize) + int64(cap(a.freeSlots))*4
}

const chunkStructSize = 24 + 8 + 8 + 8
