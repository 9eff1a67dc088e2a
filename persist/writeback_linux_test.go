package persist

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// residentFraction is the share of the file at path's pages that are in
// the page cache (mincore over a fresh read-only map of it).
func residentFraction(t *testing.T, path string) float64 {
	t.Helper()
	fh, err := os.Open(path)
	require.NoError(t, err)
	defer fh.Close()
	fi, err := fh.Stat()
	require.NoError(t, err)
	data, err := unix.Mmap(int(fh.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer func() { _ = unix.Munmap(data) }()
	pages := (len(data) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0])))
	require.Zero(t, errno, "mincore")
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(pages)
}

// skipWithoutPageCache skips tests of the page cache where dir's file
// system keeps files in memory (tmpfs: dropping its pages does nothing).
func skipWithoutPageCache(t *testing.T, dir string) {
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		t.Skipf("%s is in memory (file system type %#x)", dir, st.Type)
	}
}

// A snapshot does not leave its file in the page cache: all but its last
// transactions are dropped once on disk.
func TestSnapshotLeavesThePageCache(t *testing.T) {
	dir := t.TempDir()
	skipWithoutPageCache(t, dir)
	src := &blobSource{n: 100_000, size: 700, val: make([]byte, 700)} // ~75 MB
	path := filepath.Join(dir, "data.db")
	m, err := Open(Config{Path: path, Logger: slog.New(slog.DiscardHandler), SaveCPU: 1}, src)
	require.NoError(t, err)
	defer m.Close(false)
	require.NoError(t, m.Save())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(64<<20))
	// What stays: the last two transactions (2 × 8 MiB), the meta,
	// freelist and branch pages, and pages bbolt reused below the drop.
	assert.Less(t, residentFraction(t, path), 0.4, "share of the snapshot's pages left in the page cache")
}

// readAhead brings a file that left the cache back into it, and stop ends
// it early, more than once.
func TestReadAhead(t *testing.T) {
	dir := t.TempDir()
	skipWithoutPageCache(t, dir)
	path := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(path, make([]byte, 32<<20), 0o600))
	evict := func() {
		fh, err := os.Open(path)
		require.NoError(t, err)
		defer fh.Close()
		require.NoError(t, fh.Sync())
		require.NoError(t, unix.Fadvise(int(fh.Fd()), 0, 0, unix.FADV_DONTNEED))
	}
	evict()
	require.Less(t, residentFraction(t, path), 0.1)
	stop := readAhead(path)
	require.Eventually(t, func() bool { return residentFraction(t, path) > 0.99 }, 10*time.Second, 5*time.Millisecond)
	stop()
	stop()

	evict()
	stop = readAhead(path)
	stop() // at once: returns after at most one read
	stop()
	readAhead(filepath.Join(dir, "missing"))() // nothing to read: a no-op
}
