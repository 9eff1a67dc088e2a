//go:build !linux

package server

import "net"

// Event loops are Linux-only; elsewhere every connection has a goroutine
// and New refuses IOModel "epoll", so none of these is ever called.

type loop struct{}

func loopsSupported() bool { return false }

func newLoop(*Server) (*loop, error)              { panic("unreachable") }
func (l *loop) run(<-chan struct{})               {}
func (l *loop) post(func()) bool                  { return false }
func (l *loop) add(*client)                       {}
func (l *loop) close(*client)                     {}
func (l *loop) flush(*client)                     {}
func (l *loop) resume(*client)                    {}
func (l *loop) discard()                          {}
func (l *loop) drainPush(*client)                 {}
func (s *Server) loopClient(*net.TCPConn) *client { panic("unreachable") }
func closeFD(int)                                 {}
