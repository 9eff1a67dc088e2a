package persist

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// memStore is a Source and Sink over a map, split into parts like the
// store's shards, that reports its changes to a Manager like the server.
type memStore struct {
	mu    sync.Mutex // guards data and at; held by CapturePart and CaptureKeys
	data  map[string]Record
	at    map[string]Record // the data as BeginCapture found it
	parts int
	m     *Manager // told of changes, when set
	marks []string // CapturePart's cursors: the last key emitted
	// onBegin, when set, is called by BeginCapture with the data it fixed
	// (without mu held: it may change the data).
	onBegin func(map[string]Record)
}

func newMemStore() *memStore { return &memStore{data: make(map[string]Record), parts: 4} }

func mkey(db int, key string) string { return fmt.Sprintf("%d/%s", db, key) }

func (s *memStore) part(k string) int { return int(crc32.ChecksumIEEE([]byte(k))) % s.parts }

func (s *memStore) Parts() int { return s.parts }

// BeginCapture fixes the data CapturePart emits: a copy of it now.
func (s *memStore) BeginCapture() error {
	s.mu.Lock()
	s.at = maps.Clone(s.data)
	at := maps.Clone(s.at)
	s.mu.Unlock()
	if s.onBegin != nil {
		s.onBegin(at)
	}
	return nil
}

func (s *memStore) EndCapture() {
	s.mu.Lock()
	s.at = nil
	s.mu.Unlock()
}

// CapturePart emits the part's keys as BeginCapture found them, in sorted
// order, resuming after the last key emitted (cursor n names the n-th key
// remembered in s.marks).
func (s *memStore) CapturePart(i int, cursor uint64, limit int, emit func(*Record) error) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	after := ""
	if cursor > 0 {
		after = s.marks[cursor-1]
	}
	var keys []string
	for k := range s.at {
		if s.part(k) == i && (cursor == 0 || k > after) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := 0
	for ; n < len(keys) && n < limit; n++ {
		r := s.at[keys[n]]
		if err := emit(&r); err != nil {
			return 0, err
		}
	}
	if n == len(keys) {
		return 0, nil
	}
	s.marks = append(s.marks, keys[n-1])
	return uint64(len(s.marks)), nil
}

func (s *memStore) CaptureKeys(take func() []Key, emit func(*Record) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range take() {
		r, ok := s.data[mkey(k.DB, string(k.Key))]
		switch {
		case !ok:
			r = Record{Op: OpDelete, DB: k.DB, Key: k.Key}
		case k.DeadlineOnly:
			r = Record{Op: OpExpire, DB: k.DB, Key: k.Key, Deadline: r.Deadline}
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
	case OpExpire: // Load settles deadlines itself (Sink's contract)
		return fmt.Errorf("an OpExpire record of %q reached the sink", r.Key)
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

// expire sets the deadline of a key that exists (0: none) and reports it,
// as EXPIRE, PERSIST or GETEX EX do.
func (s *memStore) expire(db int, key string, deadline int64) {
	s.mu.Lock()
	r, ok := s.data[mkey(db, key)]
	r.Deadline = deadline
	s.data[mkey(db, key)] = r
	s.mu.Unlock()
	if !ok {
		panic("expire of a missing key " + key)
	}
	if s.m != nil {
		s.m.DeadlineChanged(db, []byte(key))
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

// churn changes keys k0..k<keys-1> of databases 0..dbs-1 until stop is
// closed: at step i it sets or deletes a key, or at every flushEvery-th
// step flushes database dbs-1; then it calls each (if set) with i.
func (s *memStore) churn(stop <-chan struct{}, dbs, keys, flushEvery int, each func(i int)) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		switch i % 5 {
		case 0, 1, 2:
			s.set(i%dbs, fmt.Sprintf("k%d", i%keys), fmt.Sprint("new", i), 0)
		case 3:
			s.del(i%dbs, fmt.Sprintf("k%d", (i*7)%keys))
		case 4:
			if i%flushEvery == 4 {
				s.flush(dbs - 1)
			}
		}
		if each != nil {
			each(i)
		}
	}
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
