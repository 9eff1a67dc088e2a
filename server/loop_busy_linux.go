//go:build linux

package server

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// serveWhileBusy is Redis's processEventsWhileBlocked for an event loop
// whose goroutine is running a script past busy-reply-threshold: it runs
// the loop's tasks (new connections must be served too), then takes the
// events already pending, without blocking, and serves every other
// connection of the loop: their commands get BUSY, or run if allowed while
// busy (SCRIPT KILL, SHUTDOWN NOSAVE, …).
//
// The connection running the script is protected, as Redis protects it: it
// is not read, and a task closing it meanwhile is dropped (only a server
// shutting down closes a busy client, and the loop closes every connection
// when it stops), so its descriptor cannot be closed and reused under the
// script. Descriptors of other connections closed here may be reused by a
// connection registered here; a stale event of the outer batch then costs
// that connection a read that finds nothing.
func (l *loop) serveWhileBusy(running *client) {
	wasClosed := running.closed
	running.closed = true
	l.runTasks()
	running.closed = wasClosed

	var events [64]unix.EpollEvent
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return
	}
	for i := range int(n) {
		ev := &events[i]
		fd := int(ev.Fd)
		if fd == l.wakefd || fd == running.fd {
			continue
		}
		c := l.conns[fd]
		if c == nil || c == running {
			continue
		}
		if ev.Events&unix.EPOLLOUT != 0 {
			l.writable(c)
		}
		if c.parked != nil { // held by CLIENT PAUSE, as in run
			if ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.close(c)
			}
			continue
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 && !c.closed && len(c.pending) == 0 {
			c.reads = 1
			l.process(c)
		}
	}
}
