package persist

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
)

// blobSource is a Source of n records of size-byte values over 32 parts,
// generated on the fly (no map), like the store's shards.
type blobSource struct {
	n, size int
	val     []byte
}

func (s *blobSource) Parts() int { return 32 }

func (s *blobSource) BeginCapture() error { return nil }
func (s *blobSource) EndCapture()         {}

func (s *blobSource) CapturePart(i int, cursor uint64, limit int, emit func(*Record) error) (uint64, error) {
	var key [32]byte
	j := i + 32*int(cursor)
	for n := 0; j < s.n && n < limit; j, n = j+32, n+1 {
		r := Record{Op: OpPut, DB: 0, Key: fmt.Appendf(key[:0], "sess:%024d", j), Kind: 1, Deadline: 4102444800000, Value: s.val}
		if err := emit(&r); err != nil {
			return 0, err
		}
	}
	if j >= s.n {
		return 0, nil
	}
	return uint64((j - i) / 32), nil
}

func (s *blobSource) CaptureKeys(take func() []Key, emit func(*Record) error) error {
	take()
	return nil
}

// BenchmarkSnapshot writes a snapshot of 200,000 sessions of 700 bytes
// (about 150 MB) per iteration, fsync included.
func BenchmarkSnapshot(b *testing.B) {
	src := &blobSource{n: 200_000, size: 700, val: make([]byte, 700)}
	// SaveCPU 1: the snapshot's own speed, not its pacing.
	m, err := Open(Config{Path: filepath.Join(b.TempDir(), "data.db"), Logger: slog.New(slog.DiscardHandler), SaveCPU: 1}, src)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(false)
	b.SetBytes(int64(src.n * (src.size + 42)))
	for b.Loop() {
		if err := m.Save(); err != nil {
			b.Fatal(err)
		}
	}
}
