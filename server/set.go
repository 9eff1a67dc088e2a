package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"unsafe"

	"github.com/sessiond/sessiond/ttl"
)

// ---- memberTab: the hash table behind sets and sorted sets ----

// memberEnt is one member of a memberTab. next links the bucket's chain: the
// index of the next entry plus one, 0 at the end.
type memberEnt[V any] struct {
	key  string
	val  V
	hash uint32
	next int32
}

// memberTab is a chained hash table of string keys, built for what sets and
// sorted sets need besides lookups:
//
//   - the entries are one dense slice, so a uniformly random member is one
//     index away (SRANDMEMBER, SPOP) and memory is a slice, not a node per
//     key;
//   - the buckets are a power of two and are visited by a reverse-binary
//     cursor, as Redis's dictScan does, so SSCAN/ZSCAN return every member
//     present for the whole iteration at least once even when the table
//     grows or shrinks between calls.
//
// Removal moves the last entry into the hole (O(1), one chain walk).
// Buckets hold the index of their first entry plus one (0 = empty).
type memberTab[V any] struct {
	seed     maphash.Seed
	heads    []int32
	ents     []memberEnt[V]
	keyBytes int // sum of len(key), for MemoryUsage
}

const memberTabMinBuckets = 4

func newMemberTab[V any](hint int) *memberTab[V] {
	t := &memberTab[V]{seed: maphash.MakeSeed()}
	t.heads = make([]int32, memberTabBuckets(hint))
	if hint > 0 {
		t.ents = make([]memberEnt[V], 0, hint)
	}
	return t
}

// memberTabBuckets is the bucket count for n entries: a power of two ≥ n.
func memberTabBuckets(n int) int {
	if n <= memberTabMinBuckets {
		return memberTabMinBuckets
	}
	return 1 << bits.Len(uint(n-1))
}

func (t *memberTab[V]) len() int { return len(t.ents) }

func (t *memberTab[V]) hashOf(key string) uint32 { return uint32(maphash.String(t.seed, key)) }

// find returns the index of key's entry, or -1.
func (t *memberTab[V]) find(key string) int {
	h := t.hashOf(key)
	for i := t.heads[h&uint32(len(t.heads)-1)]; i != 0; {
		e := &t.ents[i-1]
		if e.hash == h && e.key == key {
			return int(i - 1)
		}
		i = e.next
	}
	return -1
}

// findBytes is find for a key held as bytes, without copying them.
func (t *memberTab[V]) findBytes(key []byte) int {
	return t.find(unsafe.String(unsafe.SliceData(key), len(key)))
}

// at returns the entry at index i (valid until the next insert or remove).
func (t *memberTab[V]) at(i int) *memberEnt[V] { return &t.ents[i] }

// insert adds key with val unless it is there; it returns the entry's
// index and whether it was added. key is kept as is (the caller passes a
// string it owns).
func (t *memberTab[V]) insert(key string, val V) (int, bool) {
	if i := t.find(key); i >= 0 {
		return i, false
	}
	return t.insertNew(key, val), true
}

// insertNew adds key, which must not be in the table, and returns its
// index.
func (t *memberTab[V]) insertNew(key string, val V) int {
	if len(t.ents) >= len(t.heads) {
		t.resize(len(t.heads) * 2)
	}
	h := t.hashOf(key)
	b := h & uint32(len(t.heads)-1)
	t.ents = append(t.ents, memberEnt[V]{key: key, val: val, hash: h, next: t.heads[b]})
	t.heads[b] = int32(len(t.ents))
	t.keyBytes += len(key)
	return len(t.ents) - 1
}

// remove deletes key and returns its value.
func (t *memberTab[V]) remove(key string) (V, bool) {
	var zero V
	h := t.hashOf(key)
	link := &t.heads[h&uint32(len(t.heads)-1)]
	for *link != 0 {
		i := *link - 1
		e := &t.ents[i]
		if e.hash == h && e.key == key {
			val := e.val
			*link = e.next
			t.keyBytes -= len(e.key)
			t.moveLast(int(i))
			if len(t.heads) > memberTabMinBuckets && len(t.ents)*8 < len(t.heads) {
				t.resize(memberTabBuckets(len(t.ents) * 2))
			}
			return val, true
		}
		link = &e.next
	}
	return zero, false
}

// moveLast fills the unlinked slot i with the last entry and shrinks the
// slice by one.
func (t *memberTab[V]) moveLast(i int) {
	last := len(t.ents) - 1
	if i != last {
		moved := t.ents[last]
		link := &t.heads[moved.hash&uint32(len(t.heads)-1)]
		for *link != int32(last+1) {
			link = &t.ents[*link-1].next
		}
		*link = int32(i + 1)
		t.ents[i] = moved
	}
	t.ents[last] = memberEnt[V]{}
	t.ents = t.ents[:last]
	if cap(t.ents) > 64 && len(t.ents)*4 < cap(t.ents) {
		t.ents = slices.Clip(slices.Clone(t.ents))
	}
}

// resize rebuilds the buckets with n of them (a power of two).
func (t *memberTab[V]) resize(n int) {
	t.heads = make([]int32, n)
	mask := uint32(n - 1)
	for i := range t.ents {
		e := &t.ents[i]
		b := e.hash & mask
		e.next = t.heads[b]
		t.heads[b] = int32(i + 1)
	}
}

// scan calls fn for every entry of the bucket cursor selects and returns
// the next cursor (0 when the iteration is complete), with Redis's reverse
// binary increment: entries that stay in the table are visited at least
// once across resizes between calls.
func (t *memberTab[V]) scan(cursor uint64, fn func(e *memberEnt[V])) uint64 {
	mask := uint64(len(t.heads) - 1)
	for i := t.heads[cursor&mask]; i != 0; {
		e := &t.ents[i-1]
		fn(e)
		i = e.next
	}
	cursor |= ^mask
	cursor = bits.Reverse64(cursor)
	cursor++
	return bits.Reverse64(cursor)
}

// random returns the index of a uniformly chosen entry; the table must not
// be empty.
func (t *memberTab[V]) random() int { return rand.IntN(len(t.ents)) }

// clone returns an independent copy (keys are immutable strings and are
// shared).
func (t *memberTab[V]) clone() *memberTab[V] {
	return &memberTab[V]{seed: t.seed, heads: slices.Clone(t.heads), ents: slices.Clone(t.ents), keyBytes: t.keyBytes}
}

// memory estimates the bytes the table holds, keys included.
func (t *memberTab[V]) memory() int {
	var e memberEnt[V]
	return int(unsafe.Sizeof(*t)) + cap(t.heads)*4 + cap(t.ents)*int(unsafe.Sizeof(e)) + t.keyBytes + len(t.ents)*memberAllocSlack
}

// memberAllocSlack is the allocator's share of a string's backing array that
// its length does not count (rounding to size classes), roughly.
const memberAllocSlack = 8

// ---- setObj ----

// setMaxIntsetEntries is Redis's set-max-intset-entries default: an
// integer-only set keeps the compact sorted form up to this size.
const setMaxIntsetEntries = 512

// setObj is the value of a set key. While every member is the canonical
// decimal text of an int64 and there are at most setMaxIntsetEntries of
// them, the members are a sorted []int64 (Redis's intset, which also gives
// Redis's member order for such sets); otherwise a hash table. The
// conversion is one way, as in Redis. A nil *setObj is the empty set of a
// missing key to card, has and each.
type setObj struct {
	ints []int64              // the intset encoding, used when tab is nil
	tab  *memberTab[struct{}] // the hashtable encoding
}

var _ persistedObject = (*setObj)(nil)

// newSetFor returns an empty set whose encoding can hold first (Redis's
// setTypeCreate).
func newSetFor(first []byte) *setObj {
	if _, ok := parseInt(first); ok {
		return &setObj{}
	}
	return &setObj{tab: newMemberTab[struct{}](0)}
}

func (s *setObj) card() int {
	if s == nil {
		return 0
	}
	if s.tab != nil {
		return s.tab.len()
	}
	return len(s.ints)
}

// intsetFind returns the position of member in the sorted ints and whether
// it is there; a member that is not the canonical text of an int64 is not.
func (s *setObj) intsetFind(member []byte) (int, bool) {
	v, ok := parseInt(member)
	if !ok {
		return 0, false
	}
	return slices.BinarySearch(s.ints, v)
}

// convert moves an intset to the hashtable encoding.
func (s *setObj) convert(extra int) {
	t := newMemberTab[struct{}](len(s.ints) + extra)
	for _, v := range s.ints {
		t.insert(strconv.FormatInt(v, 10), struct{}{})
	}
	s.ints = nil
	s.tab = t
}

// add adds member and reports whether it was new.
func (s *setObj) add(member []byte) bool {
	if s.tab == nil {
		if v, ok := parseInt(member); ok {
			i, found := slices.BinarySearch(s.ints, v)
			if found {
				return false
			}
			if len(s.ints) < setMaxIntsetEntries {
				s.ints = slices.Insert(s.ints, i, v)
				return true
			}
		}
		s.convert(1)
	}
	if s.tab.findBytes(member) >= 0 {
		return false
	}
	s.tab.insertNew(string(member), struct{}{})
	return true
}

// addString is add for a member the caller already holds as a string.
func (s *setObj) addString(member string) bool {
	if s.tab == nil {
		return s.add(stringBytes(member))
	}
	_, added := s.tab.insert(member, struct{}{})
	return added
}

// remove removes member and reports whether it was there.
func (s *setObj) remove(member []byte) bool {
	if s.tab == nil {
		i, found := s.intsetFind(member)
		if found {
			s.ints = slices.Delete(s.ints, i, i+1)
		}
		return found
	}
	_, ok := s.tab.remove(unsafe.String(unsafe.SliceData(member), len(member)))
	return ok
}

func (s *setObj) has(member []byte) bool {
	if s == nil {
		return false
	}
	if s.tab == nil {
		_, found := s.intsetFind(member)
		return found
	}
	return s.tab.findBytes(member) >= 0
}

// hasString is has for a string member (no copy for the hash table).
func (s *setObj) hasString(member string) bool {
	if s.tab == nil {
		return s.has(stringBytes(member))
	}
	return s.tab.find(member) >= 0
}

// each calls fn with every member in the set's order (sorted for an
// intset). fn must not modify the set.
func (s *setObj) each(fn func(member string)) {
	if s == nil {
		return
	}
	if s.tab == nil {
		for _, v := range s.ints {
			fn(strconv.FormatInt(v, 10))
		}
		return
	}
	for i := range s.tab.ents {
		fn(s.tab.ents[i].key)
	}
}

// members returns every member in the set's order.
func (s *setObj) members() []string {
	out := make([]string, 0, s.card())
	s.each(func(m string) { out = append(out, m) })
	return out
}

// randomMember returns a uniformly chosen member; the set must not be empty.
func (s *setObj) randomMember() string {
	if s.tab == nil {
		return strconv.FormatInt(s.ints[rand.IntN(len(s.ints))], 10)
	}
	return s.tab.at(s.tab.random()).key
}

// MemoryUsage implements ttl.Object. It is O(1).
func (s *setObj) MemoryUsage() int {
	n := int(unsafe.Sizeof(*s))
	if s.tab != nil {
		return n + s.tab.memory()
	}
	return n + cap(s.ints)*8
}

// Clone implements COPY's duplication.
func (s *setObj) Clone() ttl.Object {
	if s.tab != nil {
		return &setObj{tab: s.tab.clone()}
	}
	return &setObj{ints: slices.Clone(s.ints)}
}

// Set encoding (appendBinary / decodeSet), version 1:
//
//	byte    1 (version)
//	byte    0: integers, 1: strings
//	uvarint n (number of members)
//	n ×     varint (integers, ascending) | uvarint len + bytes (strings)
const (
	setCodecVersion = 1
	setCodecInts    = 0
	setCodecStrings = 1
)

func (s *setObj) appendBinary(dst []byte) []byte {
	dst = append(dst, setCodecVersion)
	if s.tab == nil {
		dst = append(dst, setCodecInts)
		dst = binary.AppendUvarint(dst, uint64(len(s.ints)))
		for _, v := range s.ints {
			dst = binary.AppendVarint(dst, v)
		}
		return dst
	}
	dst = append(dst, setCodecStrings)
	dst = binary.AppendUvarint(dst, uint64(s.tab.len()))
	for i := range s.tab.ents {
		k := s.tab.ents[i].key
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
	}
	return dst
}

// strictUvarint reads a minimally encoded uvarint (k ≤ 0 on error), so that
// every value has one encoding.
func strictUvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k > 0 && k != strictUvarintSize(v) {
		return 0, -1
	}
	return v, k
}

// strictVarint reads a minimally encoded varint (k ≤ 0 on error).
func strictVarint(b []byte) (int64, int) {
	v, k := binary.Varint(b)
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	if k > 0 && k != strictUvarintSize(ux) {
		return 0, -1
	}
	return v, k
}

func strictUvarintSize(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// errMalformedSet is wrapped by decodeSet's errors.
var errMalformedSet = errors.New("server: malformed set encoding")

// decodeSet rebuilds a set from appendBinary's output. Malformed input
// (truncated, trailing bytes, duplicate or unsorted members, an empty set)
// is an error.
func decodeSet(b []byte) (*setObj, error) {
	if len(b) < 2 || b[0] != setCodecVersion {
		return nil, fmt.Errorf("%w: bad header", errMalformedSet)
	}
	enc := b[1]
	b = b[2:]
	n, k := strictUvarint(b)
	if k <= 0 || n == 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad member count", errMalformedSet)
	}
	b = b[k:]
	switch enc {
	case setCodecInts:
		if n > setMaxIntsetEntries {
			return nil, fmt.Errorf("%w: %d integers", errMalformedSet, n)
		}
		s := &setObj{ints: make([]int64, 0, n)}
		for range n {
			v, k := strictVarint(b)
			if k <= 0 {
				return nil, fmt.Errorf("%w: truncated integer", errMalformedSet)
			}
			if len(s.ints) > 0 && v <= s.ints[len(s.ints)-1] {
				return nil, fmt.Errorf("%w: integers out of order", errMalformedSet)
			}
			s.ints = append(s.ints, v)
			b = b[k:]
		}
		if len(b) != 0 {
			return nil, fmt.Errorf("%w: trailing bytes", errMalformedSet)
		}
		return s, nil
	case setCodecStrings:
		s := &setObj{tab: newMemberTab[struct{}](int(n))}
		for range n {
			l, k := strictUvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return nil, fmt.Errorf("%w: truncated member", errMalformedSet)
			}
			m := string(b[k : k+int(l)])
			b = b[k+int(l):]
			if _, added := s.tab.insert(m, struct{}{}); !added {
				return nil, fmt.Errorf("%w: duplicate member", errMalformedSet)
			}
		}
		if len(b) != 0 {
			return nil, fmt.Errorf("%w: trailing bytes", errMalformedSet)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: unknown encoding %d", errMalformedSet, enc)
}
