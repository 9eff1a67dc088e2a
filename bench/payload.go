package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Verifiable values. The value of key idx written at generation gen is
//
//	"v" + 10 hex digits of idx + "." + 14 hex digits of gen + ":" + filler
//
// (values shorter than the 27-byte header are just a window of the pool),
// where the filler
// is a window of a fixed printable pool and both the value's length and the
// window's start are hash functions of (idx, gen). So any value read back can
// be checked completely: its header names the key and the generation, and
// every other byte and the length are recomputed from those. Generation 0 is
// the pre-population; the session workload's writes use generations that
// encode the connection, round and a per-connection sequence number
// (writeGen). Values do not depend on --seed, so a keyspace populated by one
// run verifies in another (--no-populate).

const (
	payloadHdrLen = 27
	idxHexDigits  = 10 // keys < 2^40
	genHexDigits  = 14 // generations < 2^56
)

// Value size distributions (--value-size).
const (
	sizeFixed uint8 = iota
	sizeRange
	sizeSkewed
)

// skewedBuckets is the "skewed" value size distribution: most sessions are
// small, a few are large. Each bucket is uniform over [lo, hi] bytes and is
// picked with probability permille/1000. Mean about 1.55 KB, median about
// 520 B, 1% above 16 KB.
var skewedBuckets = []struct{ permille, lo, hi int }{
	{600, 100, 600},       // 60%: a login token and a few attributes
	{250, 601, 1500},      // 25%: a typical session
	{100, 1501, 4000},     // 10%: carts, preferences
	{40, 4001, 16000},     //  4%: big carts, cached profile data
	{10, 16001, 64 << 10}, //  1%: the tail
}

// sizeDist is the value size distribution.
type sizeDist struct {
	kind   uint8
	lo, hi int // fixed: lo == hi
}

func fixedSize(n int) sizeDist { return sizeDist{kind: sizeFixed, lo: n, hi: n} }

func parseSizeDist(s string) (sizeDist, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "skewed") {
		return sizeDist{kind: sizeSkewed, lo: skewedBuckets[0].lo, hi: skewedBuckets[len(skewedBuckets)-1].hi}, nil
	}
	num := func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 64<<20 {
			return 0, fmt.Errorf("size %q: want 1..%d bytes", v, 64<<20)
		}
		return n, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		lo, err := num(a)
		if err != nil {
			return sizeDist{}, err
		}
		hi, err := num(b)
		if err != nil {
			return sizeDist{}, err
		}
		if lo > hi {
			return sizeDist{}, fmt.Errorf("range %d-%d: low end above high end", lo, hi)
		}
		return sizeDist{kind: sizeRange, lo: lo, hi: hi}, nil
	}
	n, err := num(s)
	if err != nil {
		return sizeDist{}, errors.New(err.Error() + " (N), a range LO-HI or skewed")
	}
	return fixedSize(n), nil
}

// at maps a hash to a size.
func (d sizeDist) at(h uint64) int {
	switch d.kind {
	case sizeRange:
		return d.lo + int(h%uint64(d.hi-d.lo+1))
	case sizeSkewed:
		r := int(h % 1000)
		h /= 1000
		for _, b := range skewedBuckets {
			if r < b.permille {
				return b.lo + int(h%uint64(b.hi-b.lo+1))
			}
			r -= b.permille
		}
	}
	return d.lo
}

func (d sizeDist) String() string {
	switch d.kind {
	case sizeRange:
		return fmt.Sprintf("%d-%d B uniform", d.lo, d.hi)
	case sizeSkewed:
		return "skewed (60% 100-600 B, 25% -1.5 KB, 10% -4 KB, 4% -16 KB, 1% -64 KiB)"
	}
	return fmt.Sprintf("%d B", d.lo)
}

// payloadGen builds and checks values.
type payloadGen struct {
	sizes sizeDist
	pool  []byte // sizes.hi + payloadSlack printable bytes
}

func newPayloadGen(sizes sizeDist) *payloadGen {
	return &payloadGen{sizes: sizes, pool: newPayloadPool(0x73657373696f6e64, sizes.hi)}
}

func valueHash(idx, gen uint64) uint64 {
	return fmix64(fmix64(idx^keySalt1) ^ (gen + keySalt2))
}

// size is the length of the value of (idx, gen).
func (p *payloadGen) size(idx, gen uint64) int {
	if p.sizes.kind == sizeFixed {
		return p.sizes.lo
	}
	return p.sizes.at(valueHash(idx, gen) >> 12)
}

func appendHex(b []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hexDigits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendValue appends the value of (idx, gen); it does not allocate when b
// has room.
func (p *payloadGen) appendValue(b []byte, idx, gen uint64) []byte {
	n := p.size(idx, gen)
	off := int(valueHash(idx, gen) % (payloadSlack + 1))
	if n < payloadHdrLen {
		return append(b, p.pool[off:off+n]...)
	}
	var hdr [payloadHdrLen]byte
	h := append(hdr[:0], 'v')
	h = appendHex(h, idx, idxHexDigits)
	h = append(h, '.')
	h = appendHex(h, gen, genHexDigits)
	h = append(h, ':')
	b = append(b, h...)
	return append(b, p.pool[off:off+n-payloadHdrLen]...)
}

// appendBulkValue appends the value as a RESP bulk string.
func (p *payloadGen) appendBulkValue(b []byte, idx, gen uint64) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(p.size(idx, gen)), 10)
	b = append(b, '\r', '\n')
	b = p.appendValue(b, idx, gen)
	return append(b, '\r', '\n')
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// check reports whether v is a value bench writes for key idx and, if so,
// its generation; why says what is wrong. v may be only the first bytes of a
// value of total bytes. Values shorter than the header can only be generation
// 0. It does not allocate when the value is right.
func (p *payloadGen) check(v []byte, total int, idx uint64) (gen uint64, why string) {
	if total < payloadHdrLen {
		var buf [payloadHdrLen]byte
		if len(v) == total && string(v) == string(p.appendValue(buf[:0], idx, 0)) {
			return 0, ""
		}
		return 0, "not the value written for this key"
	}
	if v[0] != 'v' || v[1+idxHexDigits] != '.' || v[payloadHdrLen-1] != ':' {
		return 0, "no bench value header"
	}
	got, ok := parseHex(v[1 : 1+idxHexDigits])
	if !ok {
		return 0, "no bench value header"
	}
	if got != idx {
		return 0, "the value of another key (index " + strconv.FormatUint(got, 10) + ")"
	}
	gen, ok = parseHex(v[2+idxHexDigits : payloadHdrLen-1])
	if !ok {
		return 0, "no bench value header"
	}
	if n := p.size(idx, gen); n != total {
		return gen, "length " + strconv.Itoa(total) + ", written with length " + strconv.Itoa(n)
	}
	off := int(valueHash(idx, gen) % (payloadSlack + 1))
	if !bytes.Equal(v[payloadHdrLen:], p.pool[off:off+len(v)-payloadHdrLen]) {
		return gen, "corrupted bytes after the header"
	}
	return gen, ""
}

// writeGen is the generation of a session-workload write: unique per
// connection, round and sequence number, never 0 (the population).
func writeGen(conn, round int, seq uint64) uint64 {
	return (seq&(1<<32-1))<<24 | uint64(round&0x3ff)<<14 | uint64(conn+1)
}
