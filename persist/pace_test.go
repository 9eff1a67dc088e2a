package persist

import (
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPacerHoldsItsShare runs on synctest's clock: wait's sleep is exact
// and the test does not sleep.
func TestPacerHoldsItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(0.25)
		p.used.Store(int64(5 * time.Millisecond)) // 5 ms of CPU at a quarter of a core: 20 ms
		p.wait()
		assert.Equal(t, 20*time.Millisecond, time.Since(p.start))
		p.used.Add(int64(time.Millisecond / 4)) // 1 ms owed: below minSleep, no sleep
		p.wait()
		assert.Equal(t, 20*time.Millisecond, time.Since(p.start))

		for _, share := range []float64{0, 1, 2} {
			p := newPacer(share)
			p.used.Store(int64(time.Hour))
			p.wait() // unpaced: returns at once
			assert.Zero(t, time.Since(p.start), "share %v", share)
			assert.Equal(t, int64(-1), p.begin(), "an unpaced job does not read the clock")
		}
	})
}

func TestPacerMeasuresThreadCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p := newPacer(0.5)
	t0 := p.begin()
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
	}
	p.end(t0)
	used := time.Duration(p.used.Load())
	assert.Greater(t, used, 5*time.Millisecond, "a busy loop is counted")
	assert.Less(t, used, time.Second)
}

// TestStarvedWriterMovesOn starves the idle-priority writer at once (every
// wait for it counts as starvation): it hands its work to a writer of
// normal priority and the snapshot is complete.
func TestStarvedWriterMovesOn(t *testing.T) {
	dir := t.TempDir()
	// Large values captured fast: the capture soon waits for the writer.
	src := &blobSource{n: 4000, size: 16000, val: make([]byte, 16000)}
	f, err := createTemp(filepath.Join(dir, "data.db"), fileOpts{timeout: time.Second})
	require.NoError(t, err)
	var handoffs atomic.Int32
	plan := savePlan{share: 1, idle: true, starveAfter: time.Nanosecond, onHandoff: func() { handoffs.Add(1) }}
	require.NoError(t, writeSnapshot(f, src, plan))
	require.NoError(t, f.finish())
	require.NoError(t, f.close())
	assert.Equal(t, int32(1), handoffs.Load(), "one handoff, to a writer that stays")
	got, st := reload(t, dir)
	assert.Len(t, got, 4000)
	assert.Equal(t, int64(4000), st.Keys)
}

func TestSaveCPUConfig(t *testing.T) {
	_, err := Open(Config{Path: filepath.Join(t.TempDir(), "d.db"), SaveCPU: -1, Logger: slog.New(slog.DiscardHandler)}, newMemStore())
	assert.ErrorIs(t, err, ErrConfig)
}
