package persist

import (
	"sync/atomic"
	"time"
)

// pacer holds a background job (a snapshot or compaction) to a share of
// one CPU core, so that the server's event loops keep the rest of the
// machine. The job's goroutines report the CPU time of each piece of
// work (their thread's CPU clock where the OS gives one, else the wall
// time of the piece), and the goroutine that produces the work sleeps in
// wait until the time elapsed since the start covers the CPU used divided
// by the share.
type pacer struct {
	share float64 // fraction of one core; ≥ 1 or ≤ 0 means unpaced
	start time.Time
	used  atomic.Int64 // CPU nanoseconds reported by the job's goroutines
}

func newPacer(share float64) *pacer {
	return &pacer{share: share, start: time.Now()}
}

// paced reports whether wait can sleep.
func (p *pacer) paced() bool { return p != nil && p.share > 0 && p.share < 1 }

// begin starts measuring a piece of work on the calling goroutine, which
// must be locked to its thread (runtime.LockOSThread) for the thread
// clock to measure the piece alone. It returns -1 when there is nothing
// to measure.
func (p *pacer) begin() int64 {
	if !p.paced() {
		return -1
	}
	return cpuNow()
}

// end adds the CPU used since begin returned t.
func (p *pacer) end(t int64) {
	if t < 0 {
		return
	}
	if now := cpuNow(); now > t {
		p.used.Add(now - t)
	}
}

// minSleep is the smallest debt wait sleeps for: shorter sleeps cost
// more in wake-ups than they spread (Go's timers park for ~1 ms at least
// when the process is otherwise idle).
const minSleep = 2 * time.Millisecond

// wait sleeps while the job is ahead of its share.
func (p *pacer) wait() {
	if !p.paced() {
		return
	}
	want := time.Duration(float64(p.used.Load()) / p.share)
	if d := want - time.Since(p.start); d >= minSleep {
		time.Sleep(d)
	}
}
