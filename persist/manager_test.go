package persist

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	future := time.Now().Add(time.Hour).UnixMilli()
	for i := range 3000 {
		src.set(i%16, fmt.Sprintf("sess:%d", i), strings.Repeat("v", i%700), future+int64(i))
	}
	src.set(0, "forever", "x", 0)
	src.set(0, "bin\x00key", "\xff\x00", 0)
	want := src.snapshot()

	require.NoError(t, m.Save())
	st := m.Stats()
	assert.True(t, st.LastSaveOK)
	assert.Equal(t, int64(1), st.Saves)
	assert.Equal(t, int64(0), st.ChangesSinceSave)
	src.set(0, "after", "not saved", 0)
	assert.Equal(t, int64(1), m.Stats().ChangesSinceSave)
	require.NoError(t, m.Close(false))

	got, ls := reload(t, dir)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(len(want)), ls.Keys)
	assert.Zero(t, ls.Expired)
}

func TestFinalSaveOnClose(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	src.set(1, "k", "v", 0)
	require.NoError(t, m.Close(true))
	got, _ := reload(t, dir)
	assert.Equal(t, src.snapshot(), got)
}

func TestExpiredWhileDownAreNotLoaded(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	past := time.Now().Add(-time.Second).UnixMilli()
	src.set(0, "live", "1", time.Now().Add(time.Hour).UnixMilli())
	src.set(0, "dead", "2", past)
	require.NoError(t, m.Save())
	require.NoError(t, m.Close(false))
	got, ls := reload(t, dir)
	assert.Len(t, got, 1)
	assert.Contains(t, got, mkey(0, "live"))
	assert.Equal(t, int64(1), ls.Keys)
	assert.Equal(t, int64(1), ls.Expired)
}

func TestBackgroundSaveInProgress(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	src.set(0, "k", "v", 0)
	src.mu.Lock() // the capture waits here: the save stays in progress
	require.NoError(t, m.BackgroundSave())
	assert.ErrorIs(t, m.BackgroundSave(), ErrSaveInProgress)
	assert.ErrorIs(t, m.Save(), ErrSaveInProgress)
	assert.True(t, m.Stats().SaveInProgress)
	src.mu.Unlock()
	require.NoError(t, m.Close(false)) // waits for the save
	got, _ := reload(t, dir)
	assert.Equal(t, src.snapshot(), got)
}

func TestAppendOnlyLogReplaysInOrder(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	src.set(0, "a", "1", 0)
	src.set(0, "b", "2", time.Now().Add(time.Hour).UnixMilli())
	src.set(2, "z", "in db 2", 0)
	require.NoError(t, m.flushLog())
	src.del(0, "a")
	src.flush(2)
	src.set(2, "y", "set after the flush", 0)
	src.set(3, "w", "1", 0)
	require.NoError(t, m.flushLog())
	src.set(3, "w", "2", 0) // same key twice in one batch: the last value
	src.set(3, "w", "3", 0)
	src.flush(-1)
	src.set(4, "v", "after flushall", 0)
	require.NoError(t, m.flushLog())
	st := m.Stats()
	assert.Equal(t, int64(3), st.Flushes)
	assert.Zero(t, st.DirtyKeys)
	assert.Positive(t, st.LogBytes)
	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
	assert.Equal(t, map[string]string{mkey(4, "v"): "after flushall|1|0"}, got)
}

func TestAppendOnlyCloseFlushesPending(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	src.set(0, "pending", "v", 0)
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, src.snapshot(), got)
}

func TestFsyncAlwaysWaitsForTheWrite(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true, Fsync: FsyncAlways, FlushInterval: time.Hour})
	runManager(t, m)
	var wg sync.WaitGroup
	for i := range 20 { // writers share flushes (group commit)
		wg.Go(func() {
			src.set(0, fmt.Sprint(i), "v", 0)
			m.WaitDurable()
		})
	}
	wg.Wait()
	st := m.Stats()
	assert.Zero(t, st.DirtyKeys)
	assert.LessOrEqual(t, st.Flushes, int64(20))
	assert.Positive(t, st.Flushes)
	// Durable means on disk: a copy of the data file and its log
	// segments, taken now as a crash would leave them, has every key.
	got, _ := reload(t, crashCopy(t, m))
	assert.Len(t, got, 20)
}

func TestCompactionCatchesUpConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	for i := range 5000 {
		src.set(i%4, fmt.Sprintf("k%d", i), strings.Repeat("x", 100), 0)
	}
	require.NoError(t, m.flushLog())
	before := m.Stats()
	require.Zero(t, before.BaseBytes)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // writes, deletes and flushes while the compaction runs
		src.churn(stop, 4, 7000, 1000, func(i int) {
			if i%500 == 0 {
				_ = m.flushLog()
			}
		})
	})
	require.NoError(t, m.Save())
	close(stop)
	wg.Wait()
	after := m.Stats()
	assert.Positive(t, after.BaseBytes)
	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
}

func TestAutomaticCompaction(t *testing.T) {
	// In a synctest bubble the 2 ms pauses are fake time: each ends once
	// Run's flush (every 10 ms) and any compaction it started are done.
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newMemStore()
		m := openManager(t, dir, src, Config{AppendOnly: true, CompactMinSize: 64 << 10, FlushInterval: 10 * time.Millisecond})
		runManager(t, m)
		// Rewrite the same 100 keys over and over: the log grows, the data
		// (about 100 KB) does not; compaction keeps the file within a few
		// times the data's size (a snapshot, a log up to its size, and what
		// is written while a compaction runs) while ten times more is written.
		val := strings.Repeat("x", 1000)
		var written, largest int64
		for written < 10<<20 {
			for i := range 100 {
				src.set(0, fmt.Sprint(i), val, 0)
			}
			written += 100 * 1000
			if st := m.Stats(); st.Saves > 0 {
				largest = max(largest, st.FileBytes)
			}
			time.Sleep(2 * time.Millisecond)
		}
		assert.GreaterOrEqual(t, m.Stats().Saves, int64(5), "compactions did not happen")
		assert.Less(t, largest, written/10)
	})
}

func TestUnreadableFilesRefused(t *testing.T) {
	cases := []struct {
		name    string
		content func(t *testing.T, path string)
		want    error
	}{
		{"not bbolt", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("REDIS0011"), 2000), 0o600))
		}, ErrForeign},
		{"foreign bbolt", func(t *testing.T, path string) {
			f, err := createTemp(path, fileOpts{timeout: time.Second})
			require.NoError(t, err)
			require.NoError(t, f.db.Update(func(tx *boltTx) error {
				require.NoError(t, tx.DeleteBucket(bucketMeta))
				_, err := tx.CreateBucket([]byte("other"))
				return err
			}))
			require.NoError(t, f.close())
		}, ErrForeign},
		{"incomplete snapshot", func(t *testing.T, path string) {
			f, err := createTemp(path, fileOpts{timeout: time.Second})
			require.NoError(t, err)
			require.NoError(t, f.close())
		}, ErrIncomplete},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.db")
			tc.content(t, path)
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			_, err = Open(Config{Path: path, Logger: slog.New(slog.DiscardHandler)}, newMemStore())
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), "--discard-unreadable-file")
			now, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, orig, now, "the file was changed")

			// With DiscardUnreadable: set aside, start empty.
			src := newMemStore()
			m := openManager(t, dir, src, Config{DiscardUnreadable: true})
			st, err := m.Load(src)
			require.NoError(t, err)
			assert.Zero(t, st.Keys)
			bad, _ := filepath.Glob(path + ".bad-*")
			require.Len(t, bad, 1)
			moved, err := os.ReadFile(bad[0])
			require.NoError(t, err)
			assert.Equal(t, orig, moved)
		})
	}
}

func TestDamagedBlockRefused(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	for i := range 100 {
		src.set(0, fmt.Sprint("key", i), fmt.Sprintf("value-%04d-end", i), 0)
	}
	require.NoError(t, m.Save())
	require.NoError(t, m.Close(false))
	path := filepath.Join(dir, "data.db")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(b, []byte("value-0042-end"))
	require.Positive(t, i)
	b[i+7] ^= 0x01 // one bit of one value
	require.NoError(t, os.WriteFile(path, b, 0o600))

	dst := newMemStore()
	m2, err := Open(Config{Path: path, Logger: slog.New(slog.DiscardHandler)}, dst)
	require.NoError(t, err)
	_, err = m2.Load(dst)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), path)
	require.NoError(t, m2.Close(false))

	dst = newMemStore()
	m3 := openManager(t, dir, dst, Config{DiscardUnreadable: true})
	_, err = m3.Load(dst)
	require.NoError(t, err)
	assert.Empty(t, dst.snapshot(), "a half-loaded data set was left")
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	openManager(t, dir, newMemStore(), Config{})
	start := time.Now()
	_, err := Open(Config{Path: filepath.Join(dir, "data.db"), LockTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, newMemStore())
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), filepath.Join(dir, "data.db"))
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestSaveLocksTheNewFile(t *testing.T) {
	// The rename keeps the path locked: the lock belongs to the open
	// file that is renamed into place.
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	src.set(0, "k", "v", 0)
	require.NoError(t, m.Save())
	_, err := Open(Config{Path: filepath.Join(dir, "data.db"), LockTimeout: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, newMemStore())
	require.ErrorIs(t, err, ErrLocked)
}

func TestUnwritableDirectoryKeepsServing(t *testing.T) {
	// A path under a regular file can never be created (unlike a
	// read-only directory, which root may write anyway).
	parent := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(parent, nil, 0o600))
	src := newMemStore()
	m, err := Open(Config{Path: filepath.Join(parent, "data.db"), Logger: slog.New(slog.DiscardHandler)}, src)
	require.NoError(t, err, "an unwritable directory must not stop the server")
	defer m.Close(false)
	st := m.Stats()
	require.Error(t, st.Err)
	err = m.Save()
	require.Error(t, err)
	assert.Contains(t, err.Error(), parent)
	st = m.Stats()
	assert.False(t, st.LastSaveOK)
	assert.Error(t, st.Err)
}

func TestFullDiskKeepsChangesForLater(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true, MaxFileSize: 1 << 20})
	big := strings.Repeat("x", 256<<10)
	for i := range 8 { // 2 MiB: more than the file may hold
		src.set(0, fmt.Sprint(i), big, 0)
	}
	err := m.flushLog()
	require.Error(t, err)
	st := m.Stats()
	assert.False(t, st.LastWriteOK)
	assert.Equal(t, int64(1), st.FlushFailures)
	assert.Equal(t, 8, st.DirtyKeys, "the changes were dropped")
	// Space comes back (here: the keys shrink); the next flush writes them.
	for i := range 8 {
		src.set(0, fmt.Sprint(i), "small", 0)
	}
	require.NoError(t, m.flushLog())
	assert.True(t, m.Stats().LastWriteOK)
	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
}

func TestSetAppendOnlyAtRuntime(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{})
	src.set(0, "before", "1", 0)
	require.NoError(t, m.SetAppendOnly(true)) // starts a full snapshot
	src.set(0, "during", "2", 0)
	m.wg.Wait()
	require.NoError(t, m.flushLog())
	src.set(0, "after", "3", 0)
	require.NoError(t, m.SetAppendOnly(false)) // writes what is pending
	assert.False(t, m.Stats().AppendOnly)
	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
}

func TestSaveRules(t *testing.T) {
	rules, err := ParseSaveRules("3600 1 300 100 60 10000")
	require.NoError(t, err)
	assert.Equal(t, DefaultSaveRules, rules)
	assert.Equal(t, "3600 1 300 100 60 10000", FormatSaveRules(rules))
	none, err := ParseSaveRules("")
	require.NoError(t, err)
	assert.Empty(t, none)
	for _, bad := range []string{"10", "a b", "10 x", "0 1", "-1 1", "1 -1"} {
		_, err := ParseSaveRules(bad)
		assert.ErrorIs(t, err, ErrSaveRules, bad)
	}
	assert.False(t, saveDue(rules, 0, 2*time.Hour))
	assert.True(t, saveDue(rules, 1, time.Hour))
	assert.False(t, saveDue(rules, 99, 299*time.Second))
	assert.True(t, saveDue(rules, 100, 300*time.Second))
	assert.True(t, saveDue(rules, 10000, time.Minute))
	assert.False(t, saveDue(nil, 1<<40, 1<<40))
}

// TestSnapshotIsPointInTime writes, deletes and flushes while a snapshot
// runs: the file holds the data as it was when the capture began, and
// snapshot mode tracks no changes.
func TestSnapshotIsPointInTime(t *testing.T) {
	dir := t.TempDir()
	mem := newMemStore()
	mem.parts = 2
	for i := range 4000 {
		mem.set(i%3, fmt.Sprintf("k%d", i), strings.Repeat("x", 50), 0)
	}
	began := make(chan map[string]Record, 1)
	mem.onBegin = func(at map[string]Record) { began <- at }
	m, err := Open(Config{Path: filepath.Join(dir, "data.db"), Logger: slog.New(slog.DiscardHandler)}, mem)
	require.NoError(t, err)
	mem.m = m
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { mem.churn(stop, 3, 6000, 2000, nil) })
	require.NoError(t, m.Save())
	close(stop)
	wg.Wait()
	want := (&memStore{data: <-began}).snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
	assert.False(t, m.tracking.Load(), "snapshot mode tracks no changes")
}
