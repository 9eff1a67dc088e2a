package persist

import (
	"os"
	"sync"
	"sync/atomic"
)

// readAhead reads the file at path front to back from a goroutine of its
// own, so that the page cache holds it by the time bbolt's memory map is
// walked: opening a file reads every leaf page of its block buckets, and
// loading it every block. On a cold cache those reads would otherwise be
// page faults, each waiting for the disk in turn (1 M sessions of 700 B:
// a restart took 10 s instead of 2.5 s with the file cached). The reads
// go into a small buffer that is thrown away; the kernel's readahead for
// sequential reads keeps the disk busy ahead of them. stop ends the
// reading and waits for it; it is safe to call more than once. Best
// effort: a file that cannot be opened is not read.
func readAhead(path string) (stop func()) {
	fh, err := os.Open(path)
	if err != nil {
		return func() {}
	}
	var quit atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1<<20)
		for !quit.Load() {
			if _, err := fh.Read(buf); err != nil {
				return // io.EOF included
			}
		}
	})
	return sync.OnceFunc(func() {
		quit.Store(true)
		wg.Wait()
		_ = fh.Close()
	})
}
