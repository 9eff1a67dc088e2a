//go:build linux

package persist

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeback starts the kernel's writeback of a file being written, so
// that dirty pages go to disk while more are written and the final fsync
// waits for little. Best effort: errors are ignored (the fsync decides).
type writeback struct{ f *os.File }

func newWriteback(path string) writeback {
	f, err := os.Open(path)
	if err != nil {
		return writeback{}
	}
	return writeback{f}
}

// start asks for the writeback of every dirty page of the file, without
// waiting for it.
func (w writeback) start() {
	if w.f != nil {
		_ = unix.SyncFileRange(int(w.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
}

func (w writeback) close() {
	if w.f != nil {
		_ = w.f.Close()
	}
}

// datasync waits until f's data (and the size that reaches it) is on
// disk: fdatasync, which skips metadata a read does not need.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
