package server

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/sessiond/sessiond/ttl"
)

// hashObj is the value of a hash key (kindHash): fields, their values and,
// as in Redis 7.4, optional per-field deadlines (absolute Unix ms; a field
// expires when now > its deadline, the rule for keys).
//
// A small hash, which is what session stores write (a handful of fields,
// one value often large), is one packed byte slice scanned linearly, like
// Redis's listpack. Each field is an entry
//
//	[flen uvarint][vlen<<1 | hasDeadline uvarint][deadline, 8 bytes LE, if set][field][value]
//
// in insertion order; deleting closes the gap, an update of the same size
// is done in place. Past packedMaxFields fields or packedMaxBytes bytes the
// hash turns, for good, into its dense form (denseHash).
//
// The store calls NextExpiry and ExpireParts (ttl.PartExpirer) to expire
// fields on time; a handler that changes deadlines calls Txn.Touched.
// Methods taking a field or value never keep the slice they are given, and
// it must not alias the hash's own memory. A nil *hashObj is the empty hash
// of a missing key to len, get, deadline and each.
type hashObj struct {
	buf []byte     // packed form: the entries
	d   *denseHash // dense form, nil while packed

	n        int   // fields
	nttl     int   // fields with a deadline
	minDL    int64 // packed: earliest deadline (0: none), unless minStale
	minStale bool
}

const (
	packedMaxFields = 32
	packedMaxBytes  = 16 << 10
	// hashHeaderBytes is what MemoryUsage counts for the hashObj itself.
	hashHeaderBytes = 64
)

// denseHash is the form of a big hash: entries in a slice, a map from
// field to position (deleting moves the last entry into the gap), and a
// min-heap of (deadline, field) items for expiry. A heap item is a hint:
// it is current while the field has that deadline; stale items are
// dropped when they reach the top or when they outnumber the current ones.
type denseHash struct {
	ents  []hentry
	idx   map[string]int32
	dls   []dlItem
	bytes int // sum of field and value lengths
}

type hentry struct {
	name string
	val  []byte
	dl   int64
}

type dlItem struct {
	dl   int64
	name string
}

// newHash returns an empty hash with room for size bytes of packed entries.
func newHash(size int) *hashObj {
	return &hashObj{buf: make([]byte, 0, min(size, packedMaxBytes))}
}

// packedSize is the size of the packed entry of a field and value.
func packedSize(flen, vlen int, hasDL bool) int {
	n := uvarintLen(uint64(flen)) + uvarintLen(uint64(vlen)<<1) + flen + vlen
	if hasDL {
		n += 8
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// pent is a parsed packed entry: the offsets of the varint holding the
// deadline flag, of the field, the value and the end, and the deadline.
type pent struct {
	vfAt, f, v, end int
	dl              int64
}

// pat parses the packed entry at off.
func (h *hashObj) pat(off int) pent {
	b := h.buf
	flen, n := binary.Uvarint(b[off:])
	i := off + n
	vf, m := binary.Uvarint(b[i:])
	p := pent{vfAt: i}
	i += m
	if vf&1 != 0 {
		p.dl = int64(binary.LittleEndian.Uint64(b[i:]))
		i += 8
	}
	p.f = i
	p.v = i + int(flen)
	p.end = p.v + int(vf>>1)
	return p
}

// pfind finds field f in the packed form.
func (h *hashObj) pfind(f []byte) (off int, p pent, ok bool) {
	for off < len(h.buf) {
		p = h.pat(off)
		if p.v-p.f == len(f) && string(h.buf[p.f:p.v]) == string(f) {
			return off, p, true
		}
		off = p.end
	}
	return 0, pent{}, false
}

// splice resizes the region [off, off+oldN) of b to newN bytes, moving
// what follows; the region's new content is undefined.
func splice(b []byte, off, oldN, newN int) []byte {
	switch {
	case newN == oldN:
		return b
	case newN < oldN:
		copy(b[off+newN:], b[off+oldN:])
		b = b[:len(b)-(oldN-newN)]
		if cap(b) > 256 && cap(b) > 2*len(b) {
			b = append(make([]byte, 0, len(b)+len(b)/4), b...)
		}
		return b
	}
	end := len(b)
	b = slices.Grow(b, newN-oldN)[:end+newN-oldN]
	copy(b[off+newN:], b[off+oldN:end])
	return b
}

// putEntry writes a packed entry at off, which has exactly its size.
func (h *hashObj) putEntry(off int, f, v []byte, dl int64) {
	b := h.buf[off:]
	vf := uint64(len(v)) << 1
	if dl != 0 {
		vf |= 1
	}
	n := binary.PutUvarint(b, uint64(len(f)))
	n += binary.PutUvarint(b[n:], vf)
	if dl != 0 {
		binary.LittleEndian.PutUint64(b[n:], uint64(dl))
		n += 8
	}
	n += copy(b[n:], f)
	copy(b[n:], v)
}

func (h *hashObj) len() int {
	if h == nil {
		return 0
	}
	return h.n
}

// get returns the value of field f. The slice aliases the hash: it is
// valid until the hash changes.
func (h *hashObj) get(f []byte) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	if h.d != nil {
		i, ok := h.d.idx[string(f)]
		if !ok {
			return nil, false
		}
		return h.d.ents[i].val, true
	}
	_, p, ok := h.pfind(f)
	if !ok {
		return nil, false
	}
	return h.buf[p.v:p.end:p.end], true
}

// deadline returns the deadline of field f (0 for none) and whether f exists.
func (h *hashObj) deadline(f []byte) (int64, bool) {
	if h == nil {
		return 0, false
	}
	if h.d != nil {
		i, ok := h.d.idx[string(f)]
		if !ok {
			return 0, false
		}
		return h.d.ents[i].dl, true
	}
	_, p, ok := h.pfind(f)
	return p.dl, ok
}

// set sets field f to v and reports whether f is new. An existing field
// loses its deadline unless keepTTL (HSET clears it, HINCRBY keeps it, as
// in Redis 7.4).
func (h *hashObj) set(f, v []byte, keepTTL bool) bool {
	if h.d != nil {
		return h.d.set(h, f, v, keepTTL)
	}
	off, p, ok := h.pfind(f)
	if !ok {
		off = len(h.buf)
		size := packedSize(len(f), len(v), false)
		h.buf = splice(h.buf, off, 0, size)
		h.putEntry(off, f, v, 0)
		h.n++
		h.maybeDense()
		return true
	}
	dl := p.dl
	if !keepTTL && dl != 0 {
		h.dropDL(dl)
		dl = 0
	}
	oldN := p.end - off
	newN := packedSize(len(f), len(v), dl != 0)
	if newN == oldN && dl == p.dl {
		copy(h.buf[p.v:p.end], v) // same layout: the value in place
		return false
	}
	h.buf = splice(h.buf, off, oldN, newN)
	h.putEntry(off, f, v, dl)
	h.maybeDense()
	return false
}

// dropDL accounts for a field losing deadline dl.
func (h *hashObj) dropDL(dl int64) {
	h.nttl--
	switch {
	case h.nttl == 0:
		h.minDL, h.minStale = 0, false
	case dl == h.minDL:
		h.minStale = true
	}
}

// addDL accounts for a field gaining deadline dl (packed form).
func (h *hashObj) addDL(dl int64) {
	h.nttl++
	if !h.minStale && (h.minDL == 0 || dl < h.minDL) {
		h.minDL = dl
	}
}

// del removes field f and reports whether it was there.
func (h *hashObj) del(f []byte) bool {
	if h.d != nil {
		return h.d.del(h, f)
	}
	off, p, ok := h.pfind(f)
	if !ok {
		return false
	}
	h.pdelAt(off, p)
	return true
}

func (h *hashObj) pdelAt(off int, p pent) {
	if p.dl != 0 {
		h.dropDL(p.dl)
	}
	h.buf = splice(h.buf, off, p.end-off, 0)
	h.n--
}

// setDeadline sets the deadline of field f (0 removes it) and reports
// whether f exists.
func (h *hashObj) setDeadline(f []byte, dl int64) bool {
	if h.d != nil {
		return h.d.setDeadline(h, f, dl)
	}
	_, p, ok := h.pfind(f)
	if !ok {
		return false
	}
	switch {
	case p.dl == dl:
	case p.dl != 0 && dl != 0:
		binary.LittleEndian.PutUint64(h.buf[p.f-8:], uint64(dl))
		if dl > p.dl && p.dl == h.minDL {
			h.minStale = true
		} else if !h.minStale && dl < h.minDL {
			h.minDL = dl
		}
	case dl != 0: // the field gains a deadline: 8 bytes before the field
		h.buf = splice(h.buf, p.f, 0, 8)
		binary.LittleEndian.PutUint64(h.buf[p.f:], uint64(dl))
		h.buf[p.vfAt] |= 1 // the flag is the low bit of the varint's first byte
		h.addDL(dl)
		h.maybeDense()
	default: // persist
		h.buf = splice(h.buf, p.f-8, 8, 0)
		h.buf[p.vfAt] &^= 1
		h.dropDL(p.dl)
	}
	return true
}

// maybeDense turns a packed hash that grew past the limits dense.
func (h *hashObj) maybeDense() {
	if h.d != nil || (h.n <= packedMaxFields && len(h.buf) <= packedMaxBytes) {
		return
	}
	d := &denseHash{ents: make([]hentry, 0, h.n+h.n/4), idx: make(map[string]int32, h.n)}
	for off := 0; off < len(h.buf); {
		p := h.pat(off)
		name := string(h.buf[p.f:p.v])
		d.idx[name] = int32(len(d.ents))
		d.ents = append(d.ents, hentry{name: name, val: slices.Clone(h.buf[p.v:p.end]), dl: p.dl})
		d.bytes += p.end - p.f
		if p.dl != 0 {
			d.dls = append(d.dls, dlItem{dl: p.dl, name: name})
		}
		off = p.end
	}
	slices.SortFunc(d.dls, func(a, b dlItem) int { return cmp.Compare(a.dl, b.dl) }) // a sorted slice is a heap
	h.d, h.buf, h.minDL, h.minStale = d, nil, 0, false
}

// each calls fn with every field, value and deadline, in order, until fn
// returns false. The slices alias the hash.
func (h *hashObj) each(fn func(f, v []byte, dl int64) bool) {
	if h == nil {
		return
	}
	if h.d != nil {
		for i := range h.d.ents {
			e := &h.d.ents[i]
			if !fn(stringBytes(e.name), e.val, e.dl) {
				return
			}
		}
		return
	}
	for off := 0; off < len(h.buf); {
		p := h.pat(off)
		if !fn(h.buf[p.f:p.v:p.v], h.buf[p.v:p.end:p.end], p.dl) {
			return
		}
		off = p.end
	}
}

// stringBytes returns the bytes of s without copying; they must not be
// modified.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// positions returns, for a packed hash, the offset of each entry, so that
// the i-th field can be read directly (HRANDFIELD); nil for a dense one.
func (h *hashObj) positions(dst []int) []int {
	if h.d != nil {
		return nil
	}
	for off := 0; off < len(h.buf); off = h.pat(off).end {
		dst = append(dst, off)
	}
	return dst
}

// entry returns the i-th field and value (pos from positions).
func (h *hashObj) entry(pos []int, i int) (f, v []byte) {
	if h.d != nil {
		e := &h.d.ents[i]
		return stringBytes(e.name), e.val
	}
	p := h.pat(pos[i])
	return h.buf[p.f:p.v:p.v], h.buf[p.v:p.end:p.end]
}

// scan visits fields for HSCAN from cursor and returns the cursor to go
// on from, 0 at the end. A packed hash is visited whole (as Redis does
// for a listpack). A dense one is visited from its last entry down, count
// entries per call; the cursor is the number of entries left to visit.
// Deleting moves the last entry into the gap, so an entry present for the
// whole iteration is never skipped: it either stays below the cursor or
// was visited before it moved (then it may come twice).
func (h *hashObj) scan(cursor uint64, count int, fn func(f, v []byte)) uint64 {
	if h.d == nil {
		h.each(func(f, v []byte, _ int64) bool { fn(f, v); return true })
		return 0
	}
	n := uint64(len(h.d.ents))
	if cursor == 0 || cursor > n {
		cursor = n
	}
	for ; cursor > 0 && count > 0; count-- {
		cursor--
		e := &h.d.ents[cursor]
		fn(stringBytes(e.name), e.val)
	}
	return cursor
}

// MemoryUsage implements ttl.Object.
func (h *hashObj) MemoryUsage() int {
	if h.d == nil {
		return hashHeaderBytes + cap(h.buf)
	}
	d := h.d
	// Per entry: the hentry, a map slot (~40 bytes at the map's load),
	// allocation rounding of the name and value (~16).
	return hashHeaderBytes + 48 + cap(d.ents)*48 + len(d.idx)*56 + d.bytes + cap(d.dls)*24
}

// NextExpiry implements ttl.PartExpirer.
func (h *hashObj) NextExpiry() int64 {
	if h.nttl == 0 {
		return 0
	}
	if h.d != nil {
		return h.d.next()
	}
	if h.minStale {
		h.minDL, h.minStale = 0, false
		for off := 0; off < len(h.buf); {
			p := h.pat(off)
			if p.dl != 0 && (h.minDL == 0 || p.dl < h.minDL) {
				h.minDL = p.dl
			}
			off = p.end
		}
	}
	return h.minDL
}

// ExpireParts implements ttl.PartExpirer: it removes up to limit fields
// expired at now.
func (h *hashObj) ExpireParts(now int64, limit int) (removed, left int) {
	if h.nttl == 0 {
		return 0, h.n
	}
	if h.d != nil {
		for removed < limit {
			top := h.d.next()
			if top == 0 || top >= now {
				break
			}
			h.d.del(h, stringBytes(h.d.dls[0].name))
			removed++
		}
		return removed, h.n
	}
	for off := 0; off < len(h.buf) && removed < limit; {
		p := h.pat(off)
		if p.dl != 0 && p.dl < now {
			h.pdelAt(off, p)
			removed++
			continue
		}
		off = p.end
	}
	return removed, h.n
}

// Clone implements COPY's deep copy.
func (h *hashObj) Clone() ttl.Object {
	c := *h
	if h.d == nil {
		c.buf = slices.Clone(h.buf)
		return &c
	}
	d := &denseHash{
		ents:  make([]hentry, len(h.d.ents)),
		idx:   make(map[string]int32, len(h.d.ents)),
		bytes: h.d.bytes,
	}
	for i, e := range h.d.ents {
		e.val = slices.Clone(e.val)
		d.ents[i] = e
		d.idx[e.name] = int32(i)
		if e.dl != 0 {
			d.dls = append(d.dls, dlItem{dl: e.dl, name: e.name})
		}
	}
	slices.SortFunc(d.dls, func(a, b dlItem) int { return cmp.Compare(a.dl, b.dl) })
	c.d = d
	return &c
}

// set is hashObj.set for the dense form.
func (d *denseHash) set(h *hashObj, f, v []byte, keepTTL bool) bool {
	i, ok := d.idx[string(f)]
	if !ok {
		name := string(f)
		d.idx[name] = int32(len(d.ents))
		d.ents = append(d.ents, hentry{name: name, val: slices.Clone(v)})
		d.bytes += len(f) + len(v)
		h.n++
		return true
	}
	e := &d.ents[i]
	d.bytes += len(v) - len(e.val)
	if cap(e.val) >= len(v) && cap(e.val) <= 2*len(v)+16 {
		e.val = append(e.val[:0], v...)
	} else {
		e.val = slices.Clone(v)
	}
	if !keepTTL && e.dl != 0 {
		e.dl = 0 // its heap item is stale now
		h.nttl--
	}
	return false
}

func (d *denseHash) del(h *hashObj, f []byte) bool {
	i, ok := d.idx[string(f)]
	if !ok {
		return false
	}
	e := d.ents[i]
	if e.dl != 0 {
		h.nttl--
	}
	d.bytes -= len(e.name) + len(e.val)
	delete(d.idx, e.name)
	last := int32(len(d.ents) - 1)
	if i != last {
		d.ents[i] = d.ents[last]
		d.idx[d.ents[i].name] = i
	}
	d.ents[last] = hentry{}
	d.ents = d.ents[:last]
	if cap(d.ents) > 64 && cap(d.ents) > 4*len(d.ents) {
		d.ents = slices.Clone(d.ents)
	}
	h.n--
	return true
}

func (d *denseHash) setDeadline(h *hashObj, f []byte, dl int64) bool {
	i, ok := d.idx[string(f)]
	if !ok {
		return false
	}
	e := &d.ents[i]
	if e.dl == dl {
		return true
	}
	switch {
	case e.dl == 0:
		h.nttl++
	case dl == 0:
		h.nttl--
	}
	e.dl = dl
	if dl != 0 {
		d.push(h, dlItem{dl: dl, name: e.name})
	}
	return true
}

// current reports whether heap item it still describes its field.
func (d *denseHash) current(it dlItem) bool {
	i, ok := d.idx[it.name]
	return ok && d.ents[i].dl == it.dl
}

// next drops stale items from the top of the heap and returns the
// earliest deadline, 0 if none.
func (d *denseHash) next() int64 {
	for len(d.dls) > 0 {
		if d.current(d.dls[0]) {
			return d.dls[0].dl
		}
		d.pop()
	}
	return 0
}

func (d *denseHash) push(h *hashObj, it dlItem) {
	if len(d.dls) >= 2*h.nttl+32 {
		keep := d.dls[:0]
		for _, x := range d.dls {
			if d.current(x) {
				keep = append(keep, x)
			}
		}
		clear(d.dls[len(keep):])
		d.dls = keep
		for i := len(keep)/2 - 1; i >= 0; i-- {
			d.down(i)
		}
	}
	d.dls = append(d.dls, it)
	for i := len(d.dls) - 1; i > 0; {
		p := (i - 1) / 2
		if d.dls[p].dl <= d.dls[i].dl {
			break
		}
		d.dls[i], d.dls[p] = d.dls[p], d.dls[i]
		i = p
	}
}

func (d *denseHash) pop() {
	n := len(d.dls) - 1
	d.dls[0] = d.dls[n]
	d.dls[n] = dlItem{}
	d.dls = d.dls[:n]
	d.down(0)
}

func (d *denseHash) down(i int) {
	h := d.dls
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].dl < h[l].dl {
			m = r
		}
		if h[i].dl <= h[m].dl {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Serialization (persistedObject).
//
//	[version 1][count uvarint] count × [flen uvarint][field][vlen uvarint][value][deadline uvarint, 0 for none]

const hashCodecVersion = 1

// errObjectExpired is returned by decodeHash when every field of the hash
// had expired: the key is to be left out.
var errObjectExpired = errors.New("server: every field of the hash expired")

// appendBinary implements persistedObject.
func (h *hashObj) appendBinary(dst []byte) []byte {
	dst = append(dst, hashCodecVersion)
	dst = binary.AppendUvarint(dst, uint64(h.n))
	h.each(func(f, v []byte, dl int64) bool {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
		dst = binary.AppendUvarint(dst, uint64(dl))
		return true
	})
	return dst
}

// decodeHash rebuilds a hash from appendBinary's output, leaving out the
// fields expired at now. It returns errObjectExpired when none is left,
// and an error, never a panic, for malformed input.
func decodeHash(b []byte, now int64) (*hashObj, error) {
	if len(b) == 0 || b[0] != hashCodecVersion {
		return nil, fmt.Errorf("server: hash encoding: bad version")
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count == 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("server: hash encoding: bad field count")
	}
	b = b[n:]
	next := func(what string) ([]byte, error) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, fmt.Errorf("server: hash encoding: bad %s length", what)
		}
		out := b[n : n+int(l)]
		b = b[n+int(l):]
		return out, nil
	}
	h := newHash(len(b))
	for range count {
		f, err := next("field")
		if err != nil {
			return nil, err
		}
		v, err := next("value")
		if err != nil {
			return nil, err
		}
		dl, n := binary.Uvarint(b)
		if n <= 0 || dl > math.MaxInt64 {
			return nil, fmt.Errorf("server: hash encoding: bad deadline")
		}
		b = b[n:]
		if dl != 0 && now > int64(dl) {
			continue
		}
		if _, dup := h.get(f); dup {
			return nil, fmt.Errorf("server: hash encoding: field %q twice", f)
		}
		h.set(f, v, false)
		if dl != 0 {
			h.setDeadline(f, int64(dl))
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("server: hash encoding: %d trailing bytes", len(b))
	}
	if h.n == 0 {
		return nil, errObjectExpired
	}
	return h, nil
}

var (
	_ persistedObject = (*hashObj)(nil)
	_ ttl.PartExpirer = (*hashObj)(nil)
	_ cloner          = (*hashObj)(nil)
)
