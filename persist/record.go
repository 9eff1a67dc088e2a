package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Op says what a record does to the data set when it is replayed.
type Op uint8

// The record operations. A snapshot holds only OpPut; the write-behind log
// holds all five, replayed in order.
const (
	OpPut      Op = 1 // store Key in DB with Kind, Deadline and Value
	OpDelete   Op = 2 // remove Key from DB
	OpFlushDB  Op = 3 // remove every key of DB
	OpFlushAll Op = 4 // remove every key of every database
	// OpExpire sets the Deadline of Key in DB, whose value is unchanged
	// (0: no deadline, PERSIST); no Kind, no Value. Format version 2.
	OpExpire Op = 5
)

// hasKey reports whether op's records name a key (all but the flushes).
func (op Op) hasKey() bool { return op == OpPut || op == OpDelete || op == OpExpire }

func (op Op) String() string {
	switch op {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpFlushDB:
		return "flushdb"
	case OpFlushAll:
		return "flushall"
	case OpExpire:
		return "expire"
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}

// Record is one entry of a file: a key with its value (OpPut), a
// deletion, or a flush. persist never looks inside Value: Kind is the
// server's tag and Value its encoding of the value.
type Record struct {
	Op       Op
	DB       int
	Key      []byte
	Kind     uint8
	Deadline int64 // absolute expiry in Unix milliseconds; 0 = none
	Value    []byte
}

// MaxDB bounds the database number of a record.
const MaxDB = 255

// ErrCorrupt is returned (wrapped, with where it was found) when a record
// or block fails its checksum or does not parse: the file is damaged.
var ErrCorrupt = errors.New("persist: damaged record")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The framing of one record in a block:
//
//	[crc32c of body, 4 bytes LE][body length, uvarint][body]
//	body: [op][db uvarint] then by op:
//	  put:      [key length uvarint][key][kind][deadline zigzag varint][value...]
//	  delete:   [key length uvarint][key]
//	  flushdb:  nothing more
//	  flushall: nothing more (db is 0)
//	  expire:   [key length uvarint][key][deadline zigzag varint]
//
// The checksum covers the body, so a flipped bit anywhere in a record is
// found; a truncated block fails to parse.

// bodyLen is the length of r's encoded body.
func bodyLen(r *Record) int {
	blen := 1 + uvarintLen(uint64(r.DB))
	if r.Op.hasKey() {
		blen += uvarintLen(uint64(len(r.Key))) + len(r.Key)
	}
	switch r.Op {
	case OpPut:
		blen += 1 + varintLen(r.Deadline) + len(r.Value)
	case OpExpire:
		blen += varintLen(r.Deadline)
	}
	return blen
}

// recordLen is the length of r's framed encoding.
func recordLen(r *Record) int {
	blen := bodyLen(r)
	return 4 + uvarintLen(uint64(blen)) + blen
}

// appendRecord appends the framed encoding of r to dst.
func appendRecord(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = appendUnsealed(dst, r)
	sealRecord(dst[start:])
	return dst
}

// appendUnsealed appends the framing of r to dst with its checksum left
// zero, for sealRecords to fill in later (off the capture's lock hold).
func appendUnsealed(dst []byte, r *Record) []byte {
	blen := bodyLen(r)
	dst = grow(dst, 4+binary.MaxVarintLen64+blen)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(blen))
	dst = append(dst, byte(r.Op))
	dst = binary.AppendUvarint(dst, uint64(r.DB))
	if r.Op.hasKey() {
		dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
		dst = append(dst, r.Key...)
	}
	switch r.Op {
	case OpPut:
		dst = append(dst, r.Kind)
		dst = binary.AppendVarint(dst, r.Deadline)
		dst = append(dst, r.Value...)
	case OpExpire:
		dst = binary.AppendVarint(dst, r.Deadline)
	}
	return dst
}

// sealRecord fills in the checksum of the framed record that b starts
// with, and returns its length.
func sealRecord(b []byte) int {
	blen, n := binary.Uvarint(b[4:])
	body := 4 + n
	end := body + int(blen)
	binary.LittleEndian.PutUint32(b, crc32.Checksum(b[body:end], castagnoli))
	return end
}

// sealRecords fills in the checksums of a block of records framed by
// appendUnsealed.
func sealRecords(block []byte) {
	for off := 0; off < len(block); {
		off += sealRecord(block[off:])
	}
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// decodeRecord parses the first record of b into r and returns its
// encoded length. r's Key and Value alias b.
func decodeRecord(b []byte, r *Record) (int, error) {
	if len(b) < 5 {
		return 0, fmt.Errorf("%w: truncated header", ErrCorrupt)
	}
	sum := binary.LittleEndian.Uint32(b)
	blen, n := uvarint(b[4:])
	if n <= 0 || blen > uint64(len(b)-4-n) {
		return 0, fmt.Errorf("%w: bad length", ErrCorrupt)
	}
	body := b[4+n : 4+n+int(blen)]
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	total := 4 + n + int(blen)
	if len(body) < 2 {
		return 0, fmt.Errorf("%w: short body", ErrCorrupt)
	}
	*r = Record{Op: Op(body[0])}
	db, m := uvarint(body[1:])
	if m <= 0 || db > MaxDB {
		return 0, fmt.Errorf("%w: bad database", ErrCorrupt)
	}
	r.DB = int(db)
	p := body[1+m:]
	switch r.Op {
	case OpPut, OpDelete, OpExpire:
		klen, m := uvarint(p)
		if m <= 0 || klen > uint64(len(p)-m) {
			return 0, fmt.Errorf("%w: bad key length", ErrCorrupt)
		}
		r.Key = p[m : m+int(klen) : m+int(klen)]
		p = p[m+int(klen):]
		if r.Op == OpDelete {
			if len(p) != 0 {
				return 0, fmt.Errorf("%w: trailing bytes", ErrCorrupt)
			}
			return total, nil
		}
		if r.Op == OpExpire {
			dl, m2 := deadline(p)
			if m2 <= 0 {
				return 0, fmt.Errorf("%w: bad deadline", ErrCorrupt)
			}
			if m2 != len(p) {
				return 0, fmt.Errorf("%w: trailing bytes", ErrCorrupt)
			}
			r.Deadline = dl
			return total, nil
		}
		if len(p) < 2 {
			return 0, fmt.Errorf("%w: truncated put", ErrCorrupt)
		}
		r.Kind = p[0]
		dl, m2 := deadline(p[1:])
		if m2 <= 0 {
			return 0, fmt.Errorf("%w: bad deadline", ErrCorrupt)
		}
		r.Deadline = dl
		r.Value = p[1+m2 : len(p) : len(p)]
	case OpFlushDB, OpFlushAll:
		if len(p) != 0 {
			return 0, fmt.Errorf("%w: trailing bytes", ErrCorrupt)
		}
	default:
		return 0, fmt.Errorf("%w: unknown op %d", ErrCorrupt, body[0])
	}
	return total, nil
}

// uvarint is binary.Uvarint that also refuses non-minimal encodings, so
// that every record has exactly one encoding.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 0 && n != uvarintLen(v) {
		return 0, -1
	}
	return v, n
}

// deadline decodes the zigzag varint deadline b starts with; n ≤ 0 for
// a malformed or negative one.
func deadline(b []byte) (int64, int) {
	udl, n := uvarint(b)
	dl := int64(udl >> 1)
	if udl&1 != 0 {
		dl = ^dl
	}
	if n <= 0 || dl < 0 {
		return 0, -1
	}
	return dl, n
}

// eachRecord calls fn for every record of a block, stopping at the first
// error. The records alias block.
func eachRecord(block []byte, fn func(r *Record) error) error {
	var r Record
	for off := 0; off < len(block); {
		n, err := decodeRecord(block[off:], &r)
		if err != nil {
			return fmt.Errorf("%w (at byte %d of the block)", err, off)
		}
		off += n
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}
