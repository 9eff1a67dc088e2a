//go:build !linux

package persist

import "errors"

// lowerThreadPriority is Linux's SCHED_IDLE elsewhere unsupported: the
// writer keeps its thread's priority and the pacer alone spreads its work.
func lowerThreadPriority() error { return errors.ErrUnsupported }
