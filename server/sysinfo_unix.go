//go:build unix

package server

import (
	"syscall"
	"time"
)

// cpuTimes returns the process's system and user CPU time.
func cpuTimes() (sys, user time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Stime.Nano()), time.Duration(ru.Utime.Nano())
}
