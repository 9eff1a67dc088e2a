package persist

import "golang.org/x/sys/unix"

// cpuNow is the calling thread's CPU time (user and system) in
// nanoseconds, or -1 if the clock cannot be read.
func cpuNow() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return -1
	}
	return ts.Nano()
}
