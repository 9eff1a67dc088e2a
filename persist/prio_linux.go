package persist

import "golang.org/x/sys/unix"

// lowerThreadPriority puts the calling thread in Linux's SCHED_IDLE class:
// it runs only on CPU time no thread of normal priority wants, and any of
// them that wakes takes the CPU from it at once. The caller must be locked
// to its thread and never unlock it (unprivileged threads cannot return
// to the normal class).
func lowerThreadPriority() error {
	return unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
}
