//go:build !linux

package server

import "net"

// Event loops are Linux-only; elsewhere every connection has a goroutine.

type loop struct{}

func loopsSupported() bool { return false }

func newLoop(*Server) (*loop, error)                { panic("unreachable") }
func (l *loop) run(<-chan struct{})                 {}
func (l *loop) post(func()) bool                    { return false }
func (l *loop) close(*client)                       {}
func (l *loop) flush(*client)                       {}
func (s *Server) serveLoops(*net.TCPListener) error { panic("unreachable") }
