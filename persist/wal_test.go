package persist

import (
	"encoding/binary"
	"fmt"
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

// crashCopy copies m's data file and log segments, as they are on disk
// now, into a new directory (what kill -9 would leave), and returns it.
func crashCopy(t *testing.T, m *Manager) string {
	t.Helper()
	dir := t.TempDir()
	m.fmu.Lock()
	defer m.fmu.Unlock()
	for _, p := range append([]string{m.path}, segmentsOf(t, m)...) {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		name := "data.db" + filepath.Base(p)[len(filepath.Base(m.path)):]
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	return dir
}

// segmentsOf returns the paths of m's log segments, oldest first.
func segmentsOf(t *testing.T, m *Manager) []string {
	t.Helper()
	return segmentPaths(t, m.path)
}

func segmentPaths(t *testing.T, base string) []string {
	t.Helper()
	segs, err := walSegments(base)
	require.NoError(t, err)
	paths := make([]string, len(segs))
	for i, s := range segs {
		paths[i] = s.path
	}
	return paths
}

// alwaysConfig is the always mode with no flush but those a test asks for.
var alwaysConfig = Config{AppendOnly: true, Fsync: FsyncAlways, FlushInterval: time.Hour}

// openAlways opens a Manager in the always mode on a new directory, with
// its base snapshot written.
func openAlways(t *testing.T) (string, *memStore, *Manager) {
	t.Helper()
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, alwaysConfig)
	require.NoError(t, m.Save())
	return dir, src, m
}

// TestAlwaysWritesTheLogNotTheFile: with appendfsync always a group
// commit goes to a log segment (one fdatasync), not to a bbolt commit;
// the segment alone brings the writes back after a crash.
func TestAlwaysWritesTheLogNotTheFile(t *testing.T) {
	_, src, m := openAlways(t)
	runManager(t, m)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			src.set(i%3, fmt.Sprint("k", i), fmt.Sprint("v", i), time.Now().Add(time.Hour).UnixMilli())
			m.WaitDurable()
		})
	}
	wg.Wait()
	src.del(0, "k0")
	m.WaitDurable()
	m.fmu.Lock()
	assert.Zero(t, m.cur.logBytes, "no write to the data file")
	m.fmu.Unlock()
	assert.Positive(t, m.Stats().LogBytes, "the segment counts as the log")
	assert.Len(t, segmentsOf(t, m), 1)
	want := src.snapshot()
	got, st := reload(t, crashCopy(t, m))
	assert.Equal(t, want, got)
	assert.Equal(t, int64(51), st.Records, "50 puts and a delete")
}

// TestSegmentsOutliveARestart: a clean stop keeps the segments; the next
// start replays them and writes a new one after them.
func TestSegmentsOutliveARestart(t *testing.T) {
	dir, src, m := openAlways(t)
	src.set(0, "a", "1", 0)
	src.set(0, "b", "1", 0)
	require.NoError(t, m.flushLog())
	require.NoError(t, m.Close(false))
	require.Len(t, segmentsOf(t, m), 1)

	m2 := openManager(t, dir, src, alwaysConfig)
	got := newMemStore()
	_, err := m2.Load(got)
	require.NoError(t, err)
	assert.Equal(t, src.snapshot(), got.snapshot())
	src.set(0, "a", "2", 0)
	src.del(0, "b")
	require.NoError(t, m2.flushLog())
	assert.Len(t, segmentsOf(t, m2), 2)
	want := src.snapshot()
	back, _ := reload(t, crashCopy(t, m2))
	assert.Equal(t, want, back)
	require.NoError(t, m2.Close(false))
}

// TestLeavingAlwaysFoldsTheLog: after appendfsync always → everysec (or
// appendonly no), the segments are folded before anything else reaches
// the file, so a restart never replays an old value over a newer one.
func TestLeavingAlwaysFoldsTheLog(t *testing.T) {
	for _, leave := range []string{"everysec", "appendonly no"} {
		t.Run(leave, func(t *testing.T) {
			_, src, m := openAlways(t)
			src.set(0, "k", "old", 0)
			require.NoError(t, m.flushLog())
			require.Len(t, segmentsOf(t, m), 1)
			if leave == "everysec" {
				require.NoError(t, m.SetFsync(FsyncEverySec))
				src.set(0, "k", "new", 0)
				require.NoError(t, m.flushLog())
			} else {
				require.NoError(t, m.SetAppendOnly(false))
				src.set(0, "k", "new", 0)
				require.NoError(t, m.Save())
			}
			assert.Empty(t, segmentsOf(t, m))
			got, _ := reload(t, crashCopy(t, m))
			assert.Equal(t, "new|1|0", got[mkey(0, "k")])
			require.NoError(t, m.Close(false))
		})
	}
}

// TestCompactionReplacesTheLog: a compaction's file holds everything the
// segments do; they are deleted, and what is written after it is kept.
func TestCompactionReplacesTheLog(t *testing.T) {
	_, src, m := openAlways(t)
	for i := range 100 {
		src.set(0, fmt.Sprint(i), "x", 0)
		require.NoError(t, m.flushLog())
	}
	require.Len(t, segmentsOf(t, m), 1)
	require.NoError(t, m.Save())
	assert.Empty(t, segmentsOf(t, m))
	src.set(1, "after", "y", 0)
	require.NoError(t, m.flushLog())
	want := src.snapshot()
	got, _ := reload(t, crashCopy(t, m))
	assert.Equal(t, want, got)
	require.NoError(t, m.Close(false))
}

// TestTornLogTail: a frame cut short or damaged at a segment's end (the
// write a crash interrupted, never answered) is ignored with a warning;
// the frames before it load.
func TestTornLogTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(frame []byte) []byte
	}{
		{"header cut", func(f []byte) []byte { return f[:5] }},
		{"payload cut", func(f []byte) []byte { return f[:len(f)-3] }},
		{"payload damaged", func(f []byte) []byte { g := append([]byte(nil), f...); g[len(g)-1] ^= 1; return g }},
		{"length past the end", func(f []byte) []byte {
			g := append([]byte(nil), f...)
			binary.LittleEndian.PutUint32(g, 1<<30)
			return g
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, src, m := openAlways(t)
			src.set(0, "kept", "1", 0)
			require.NoError(t, m.flushLog())
			src.set(0, "torn", "2", 0)
			require.NoError(t, m.flushLog())
			copyDir := crashCopy(t, m)
			require.NoError(t, m.Close(false))

			segs := segmentPaths(t, filepath.Join(copyDir, "data.db"))
			require.Len(t, segs, 1)
			b, err := os.ReadFile(segs[0])
			require.NoError(t, err)
			d, err := readWAL(segs[0])
			require.NoError(t, err)
			require.Len(t, d.blocks, 2)
			require.Zero(t, d.tail)
			require.Equal(t, int64(len(b)), d.size)
			first := walFrameHeader + len(d.blocks[0])
			torn := append(b[:first:first], tc.tail(b[first:])...)
			require.NoError(t, os.WriteFile(segs[0], torn, 0o600))

			got, _ := reload(t, copyDir)
			assert.Equal(t, map[string]string{mkey(0, "kept"): "1|1|0"}, got)

			// Writes after the restart go to a new segment, after the
			// torn one: both load.
			src2 := newMemStore()
			m2 := openManager(t, copyDir, src2, alwaysConfig)
			_, err = m2.Load(src2)
			require.NoError(t, err)
			src2.set(0, "after", "3", 0)
			require.NoError(t, m2.flushLog())
			got, _ = reload(t, crashCopy(t, m2))
			assert.Equal(t, map[string]string{mkey(0, "kept"): "1|1|0", mkey(0, "after"): "3|1|0"}, got)
			require.NoError(t, m2.Close(false))
		})
	}
}

// TestCheckAndExportReadTheSegments: the offline tools see what a crash
// left in the log segments, as a start would load it.
func TestCheckAndExportReadTheSegments(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, alwaysConfig)
	src.set(0, "base", "1", 0)
	require.NoError(t, m.Save())
	src.set(0, "seg", "2", 0)
	src.del(0, "base")
	require.NoError(t, m.flushLog())
	copyDir := crashCopy(t, m)
	require.NoError(t, m.Close(false))

	path := filepath.Join(copyDir, "data.db")
	st, err := Check(path, time.Now().UnixMilli())
	require.NoError(t, err)
	assert.Equal(t, 1, st.Segments)
	assert.Zero(t, st.SegmentTail)
	assert.Equal(t, int64(1), st.LiveKeys())
	var keys []string
	require.NoError(t, Export(path, time.Now().UnixMilli(), func(r *Record) error {
		keys = append(keys, string(r.Key)+"="+string(r.Value))
		return nil
	}))
	assert.Equal(t, []string{"seg=2"}, keys)
}

// TestFullSegmentIsSealed: a segment that reaches its size is closed and
// the next write begins another; values of one key written across
// segments load as the last one.
func TestFullSegmentIsSealed(t *testing.T) {
	_, src, m := openAlways(t)
	m.fmu.Lock()
	m.wal.maxBytes = 1
	m.fmu.Unlock()
	for i := range 20 {
		src.set(0, "k", fmt.Sprint("v", i), 0)
		src.set(1, fmt.Sprint("other", i), "x", 0)
		require.NoError(t, m.flushLog())
		got, _ := reload(t, crashCopy(t, m))
		require.Equal(t, src.snapshot(), got, "after write %d", i)
	}
	assert.Len(t, segmentsOf(t, m), 20)
	require.NoError(t, m.Save())
	assert.Empty(t, segmentsOf(t, m))
	require.NoError(t, m.Close(false))
}

// TestSegmentsTriggerCompaction: the segments count as the log, so they
// start compactions like the everysec log does, which delete them. In a
// synctest bubble Run's ticks are fake time.
func TestSegmentsTriggerCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newMemStore()
		m := openManager(t, dir, src, Config{AppendOnly: true, Fsync: FsyncAlways, CompactMinSize: 64 << 10})
		runManager(t, m)
		val := strings.Repeat("x", 1000)
		for i := range 2000 {
			src.set(0, fmt.Sprint(i%100), val, 0)
			m.WaitDurable()
		}
		start := time.Now()
		for m.Stats().Saves < 2 {
			require.Less(t, time.Since(start), time.Minute, "fewer than two compactions")
			time.Sleep(10 * time.Millisecond) // fake time: Run ticks, compactions run
		}
		var size int64
		for _, p := range segmentsOf(t, m) {
			fi, err := os.Stat(p)
			require.NoError(t, err)
			size += fi.Size()
		}
		assert.Less(t, size, int64(1<<20), "2 MB written, the segments are compacted away")
		want := src.snapshot()
		got, _ := reload(t, crashCopy(t, m))
		assert.Equal(t, want, got)
	})
}

// TestUnreadableFileSetsTheSegmentsAside: with DiscardUnreadable, the
// segments of a damaged file go aside with it; replayed over the empty
// file that replaces it they would bring part of its data back.
func TestUnreadableFileSetsTheSegmentsAside(t *testing.T) {
	dir, src, m := openAlways(t)
	src.set(0, "k", "v", 0)
	require.NoError(t, m.flushLog())
	require.NoError(t, m.Close(false))
	require.Len(t, segmentsOf(t, m), 1)
	require.NoError(t, os.WriteFile(m.path, []byte("not a bbolt file"), 0o600))

	cfg := alwaysConfig
	cfg.DiscardUnreadable = true
	m2 := openManager(t, dir, newMemStore(), cfg)
	got := newMemStore()
	_, err := m2.Load(got)
	require.NoError(t, err)
	assert.Empty(t, got.snapshot())
	assert.Empty(t, segmentsOf(t, m2))
	aside, err := filepath.Glob(m.path + walSuffix + "*.bad-*")
	require.NoError(t, err)
	assert.Len(t, aside, 1, "the segment is kept, beside the file set aside")
	require.NoError(t, m2.Close(false))
	back, _ := reload(t, dir)
	assert.Empty(t, back)
}
