//go:build !linux

package persist

type writeback struct{}

func newWriteback(string) writeback { return writeback{} }
func (writeback) start()            {}
func (writeback) close()            {}
