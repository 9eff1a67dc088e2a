//go:build linux

package persist

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropResident tells the kernel that the pages of f's memory map, read
// while loading, are no longer needed by this process: they leave its
// resident set (they stay in the page cache). Loading a file thus does not
// leave the process's RSS a file-size larger. Best effort.
func dropResident(f *file) {
	if f == nil || f.db == nil {
		return
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		return
	}
	info := f.db.Info()
	n := int(fi.Size()) &^ (os.Getpagesize() - 1)
	if info.Data == 0 || n <= 0 {
		return
	}
	// The address is bbolt's mapping of the file, alive while f is open.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(n), unix.MADV_DONTNEED)
}
