package persist

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// memStore is a Source and Sink over a map, split into parts like the
// store's shards, that reports its changes to a Manager like the server.
type memStore struct {
	mu    sync.Mutex // guards data; held by CapturePart and CaptureKeys
	data  map[string]Record
	parts int
	m     *Manager // told of changes, when set
}

func newMemStore() *memStore { return &memStore{data: make(map[string]Record), parts: 4} }

func mkey(db int, key string) string { return fmt.Sprintf("%d/%s", db, key) }

func (s *memStore) part(k string) int { return int(crc32.ChecksumIEEE([]byte(k))) % s.parts }

func (s *memStore) Parts() int { return s.parts }

func (s *memStore) CapturePart(i int, emit func(*Record) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.data {
		if s.part(k) == i {
			if err := emit(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *memStore) CaptureKeys(take func() []Key, emit func(*Record) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range take() {
		r, ok := s.data[mkey(k.DB, string(k.Key))]
		if !ok {
			r = Record{Op: OpDelete, DB: k.DB, Key: k.Key}
		}
		if err := emit(&r); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Restore(r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Op {
	case OpPut:
		c := *r
		c.Key, c.Value = append([]byte(nil), r.Key...), append([]byte(nil), r.Value...)
		s.data[mkey(r.DB, string(r.Key))] = c
	case OpDelete:
		delete(s.data, mkey(r.DB, string(r.Key)))
	case OpFlushDB:
		for k, v := range s.data {
			if v.DB == r.DB {
				delete(s.data, k)
			}
		}
	case OpFlushAll:
		clear(s.data)
	}
	return nil
}

// set stores a string and reports it, as a write command does.
func (s *memStore) set(db int, key, val string, deadline int64) {
	s.mu.Lock()
	s.data[mkey(db, key)] = Record{Op: OpPut, DB: db, Key: []byte(key), Kind: 1, Deadline: deadline, Value: []byte(val)}
	s.mu.Unlock()
	if s.m != nil {
		s.m.KeyChanged(db, []byte(key))
	}
}

func (s *memStore) del(db int, key string) {
	s.mu.Lock()
	delete(s.data, mkey(db, key))
	s.mu.Unlock()
	if s.m != nil {
		s.m.KeyChanged(db, []byte(key))
	}
}

func (s *memStore) flush(db int) {
	s.mu.Lock()
	for k, v := range s.data {
		if db < 0 || v.DB == db {
			delete(s.data, k)
		}
	}
	if s.m != nil {
		s.m.DBFlushed(db)
	}
	s.mu.Unlock()
}

// snapshot returns key → value of the live data.
func (s *memStore) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.data))
	for k, r := range s.data {
		out[k] = fmt.Sprintf("%s|%d|%d", r.Value, r.Kind, r.Deadline)
	}
	return out
}

func (s *memStore) clone() map[string]string { return maps.Clone(s.snapshot()) }

// openManager opens a Manager on dir/data.db over src, closed at cleanup.
func openManager(t *testing.T, dir string, src *memStore, cfg Config) *Manager {
	t.Helper()
	cfg.Path = filepath.Join(dir, "data.db")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := Open(cfg, src)
	require.NoError(t, err)
	src.m = m
	t.Cleanup(func() { _ = m.Close(false) })
	return m
}

// runManager runs m.Run until the test ends.
func runManager(t *testing.T, m *Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// reload opens the file at dir in a fresh Manager and returns what it loads.
func reload(t *testing.T, dir string) (map[string]string, LoadStats) {
	t.Helper()
	dst := newMemStore()
	m, err := Open(Config{Path: filepath.Join(dir, "data.db"), Logger: slog.New(slog.DiscardHandler), LockTimeout: 100 * time.Millisecond}, dst)
	require.NoError(t, err)
	defer m.Close(false)
	st, err := m.Load(dst)
	require.NoError(t, err)
	return dst.snapshot(), st
}

type boltTx = bolt.Tx
