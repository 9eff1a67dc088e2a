//go:build !linux

package persist

import "os"

type writeback struct{}

func newWriteback(string) writeback { return writeback{} }
func (writeback) start()            {}
func (writeback) close()            {}

// datasync waits until f is on disk.
func datasync(f *os.File) error { return f.Sync() }
