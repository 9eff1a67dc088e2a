//go:build !linux

package server

// serveWhileBusy has nothing to do without event loops: every connection
// has its own goroutine, which answers BUSY by itself.
func (l *loop) serveWhileBusy(*client) {}
