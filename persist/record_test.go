package persist

import (
	"bytes"
	"errors"
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

func TestRecordDamage(t *testing.T) {
	rec := Record{Op: OpPut, DB: 1, Key: []byte("key"), Kind: 1, Deadline: 12345, Value: []byte("value")}
	b := appendRecord(nil, &rec)
	// Every flipped bit and every truncation is detected.
	for i := range b {
		for bit := range 8 {
			d := bytes.Clone(b)
			d[i] ^= 1 << bit
			var r Record
			_, err := decodeRecord(d, &r)
			require.Error(t, err, "byte %d bit %d", i, bit)
			assert.True(t, errors.Is(err, ErrCorrupt))
		}
	}
	for n := range len(b) {
		var r Record
		_, err := decodeRecord(b[:n], &r)
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
}

// FuzzRecordDecoder feeds arbitrary blocks to the decoder: it must never
// panic, and whatever it accepts must encode back to the same bytes.
func FuzzRecordDecoder(f *testing.F) {
	f.Add(appendRecord(nil, &Record{Op: OpPut, DB: 1, Key: []byte("k"), Kind: 1, Deadline: 99, Value: []byte("v")}))
	f.Add(appendRecord(appendRecord(nil, &Record{Op: OpDelete, Key: []byte("x")}), &Record{Op: OpFlushAll}))
	f.Add(appendRecord(nil, &Record{Op: OpFlushDB, DB: 200}))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		var again []byte
		err := eachRecord(block, func(r *Record) error {
			if r.Op < OpPut || r.Op > OpFlushAll || r.DB > MaxDB || r.Deadline < 0 {
				t.Fatalf("accepted an invalid record %+v", r)
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
	} {
		assert.Equal(t, len(appendRecord(nil, &r)), recordLen(&r))
	}
}
