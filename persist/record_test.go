package persist

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		rec  Record
	}{
		{"put", Record{Op: OpPut, DB: 3, Key: []byte("sess:abc"), Kind: 1, Deadline: 1_795_000_000_123, Value: []byte(`{"uid":42}`)}},
		{"put without deadline", Record{Op: OpPut, DB: 0, Key: []byte("k"), Kind: 2, Value: []byte{0, 1, 2, 255}}},
		{"put empty key and value", Record{Op: OpPut, DB: 255, Key: []byte{}, Kind: 1, Deadline: math.MaxInt64, Value: []byte{}}},
		{"delete", Record{Op: OpDelete, DB: 15, Key: []byte("gone")}},
		{"flushdb", Record{Op: OpFlushDB, DB: 7}},
		{"flushall", Record{Op: OpFlushAll}},
		{"expire", Record{Op: OpExpire, DB: 2, Key: []byte("sess:abc"), Deadline: 1_795_000_003_600}},
		{"expire to no deadline", Record{Op: OpExpire, DB: 255, Key: []byte("k"), Deadline: 0}},
		{"expire empty key", Record{Op: OpExpire, Key: []byte{}, Deadline: math.MaxInt64}},
	}
	var block []byte
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := appendRecord(nil, &tc.rec)
			var got Record
			n, err := decodeRecord(b, &got)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			assertRecord(t, tc.rec, got)
		})
		block = appendRecord(block, &tc.rec)
	}
	i := 0
	require.NoError(t, eachRecord(block, func(r *Record) error {
		assertRecord(t, cases[i].rec, *r)
		i++
		return nil
	}))
	assert.Equal(t, len(cases), i)
}

func assertRecord(t *testing.T, want, got Record) {
	t.Helper()
	assert.Equal(t, want.Op, got.Op)
	assert.Equal(t, want.DB, got.DB)
	assert.Equal(t, string(want.Key), string(got.Key))
	assert.Equal(t, want.Kind, got.Kind)
	assert.Equal(t, want.Deadline, got.Deadline)
	assert.Equal(t, string(want.Value), string(got.Value))
}

// TestSealRecords: a block framed without checksums and sealed later (as
// a snapshot's writer does) is byte for byte the block framed at once.
func TestSealRecords(t *testing.T) {
	recs := []Record{
		{Op: OpPut, DB: 3, Key: []byte("sess:abc"), Kind: 1, Deadline: 1_795_000_000_123, Value: bytes.Repeat([]byte("v"), 300)},
		{Op: OpDelete, DB: 15, Key: []byte("gone")},
		{Op: OpFlushDB, DB: 7},
		{Op: OpPut, Key: []byte{}, Value: []byte{}},
		{Op: OpExpire, DB: 4, Key: []byte("sess:abc"), Deadline: 1_795_000_003_600},
	}
	var want, got []byte
	for i := range recs {
		want = appendRecord(want, &recs[i])
		got = appendUnsealed(got, &recs[i])
	}
	require.NotEqual(t, want, got, "unsealed records carry no checksum")
	sealRecords(got)
	assert.Equal(t, want, got)
}

// TestRecordDamage: every flipped bit and every truncation of a record
// is detected.
func TestRecordDamage(t *testing.T) {
	for _, rec := range []Record{
		{Op: OpPut, DB: 1, Key: []byte("key"), Kind: 1, Deadline: 12345, Value: []byte("value")},
		{Op: OpExpire, DB: 0, Key: []byte("sess:0123456789abcdef0123456789abcdef"), Deadline: 1_795_000_003_600},
	} {
		t.Run(rec.Op.String(), func(t *testing.T) {
			b := appendRecord(nil, &rec)
			for i := range b {
				for bit := range 8 {
					d := bytes.Clone(b)
					d[i] ^= 1 << bit
					var r Record
					_, err := decodeRecord(d, &r)
					require.ErrorIs(t, err, ErrCorrupt, "byte %d bit %d", i, bit)
				}
			}
			for n := range len(b) {
				var r Record
				_, err := decodeRecord(b[:n], &r)
				require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
			}
		})
	}
}

// frame frames body with its checksum, as appendRecord does.
func frame(body []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, crc32.Checksum(body, castagnoli))
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// TestExpireRecord: an OpExpire record is the key and its deadline, no
// kind and no value (a 700-byte session's deadline change is ~30 bytes),
// and the decoder refuses every malformed one whose checksum is right
// (TestRecordDamage: and every damaged one).
func TestExpireRecord(t *testing.T) {
	key := []byte("sess:0123456789abcdef0123456789abcdef")
	r := Record{Op: OpExpire, DB: 0, Key: key, Deadline: 1_795_000_003_600}
	b := appendRecord(nil, &r)
	// crc 4, length 1, op 1, db 1, key length 1, key, deadline 6.
	assert.Len(t, b, 4+1+1+1+1+len(key)+6)
	assert.Equal(t, len(b), recordLen(&r))

	body := func(tail ...byte) []byte {
		b := append([]byte{byte(OpExpire), 0, byte(len(key))}, key...)
		return append(b, tail...)
	}
	good := binary.AppendVarint(nil, 1_795_000_003_600)
	var got Record
	n, err := decodeRecord(frame(body(good...)), &got)
	require.NoError(t, err)
	assert.Equal(t, len(b), n)
	assertRecord(t, r, got)
	for name, bad := range map[string][]byte{
		"no deadline":       body(),
		"negative deadline": body(binary.AppendVarint(nil, -5)...),
		"trailing bytes":    body(append(good, 'v')...),
		"truncated varint":  body(0x80),
		"non-minimal":       body(0x80, 0x00),
		"key past the end":  {byte(OpExpire), 0, 200, 'k', 2},
		"database too big":  append([]byte{byte(OpExpire), 0x80, 0x02, 1, 'k'}, good...),
	} {
		_, err := decodeRecord(frame(bad), &got)
		assert.ErrorIs(t, err, ErrCorrupt, name)
	}
}

// FuzzRecordDecoder feeds arbitrary blocks to the decoder: it must never
// panic, and whatever it accepts must encode back to the same bytes.
func FuzzRecordDecoder(f *testing.F) {
	f.Add(appendRecord(nil, &Record{Op: OpPut, DB: 1, Key: []byte("k"), Kind: 1, Deadline: 99, Value: []byte("v")}))
	f.Add(appendRecord(appendRecord(nil, &Record{Op: OpDelete, Key: []byte("x")}), &Record{Op: OpFlushAll}))
	f.Add(appendRecord(nil, &Record{Op: OpFlushDB, DB: 200}))
	f.Add(appendRecord(nil, &Record{Op: OpExpire, DB: 3, Key: []byte("sess:1"), Deadline: 1_795_000_003_600}))
	f.Add(appendRecord(appendRecord(nil, &Record{Op: OpExpire, Key: []byte("p")}), &Record{Op: OpPut, Key: []byte("p"), Value: []byte("v")}))
	f.Add(frame([]byte{byte(OpExpire), 0, 1, 'k', 0x80, 0x00}))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		var again []byte
		err := eachRecord(block, func(r *Record) error {
			if r.Op < OpPut || r.Op > OpExpire || r.DB > MaxDB || r.Deadline < 0 {
				t.Fatalf("accepted an invalid record %+v", r)
			}
			if r.Op == OpExpire && (r.Kind != 0 || r.Value != nil) {
				t.Fatalf("an expire record with a kind or value %+v", r)
			}
			again = appendRecord(again, r)
			return nil
		})
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.True(t, bytes.Equal(block, again), "re-encoding differs")
	})
}

func TestRecordLen(t *testing.T) {
	for _, r := range []Record{
		{Op: OpPut, DB: 200, Key: make([]byte, 300), Kind: 1, Deadline: 1 << 40, Value: make([]byte, 20000)},
		{Op: OpDelete, Key: []byte("k")},
		{Op: OpFlushAll},
		{Op: OpExpire, DB: 200, Key: make([]byte, 300), Deadline: 1 << 40},
		{Op: OpExpire, Key: []byte("k")},
	} {
		assert.Equal(t, len(appendRecord(nil, &r)), recordLen(&r))
	}
}
