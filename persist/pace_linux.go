package persist

import (
	"time"

	"golang.org/x/sys/unix"
)

// cpuNow is the calling thread's CPU time (user and system) in
// nanoseconds.
func cpuNow() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return time.Now().UnixNano()
	}
	return ts.Nano()
}
