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
// connection of the loop as run does (serveEvent): their commands get
// BUSY, or run if allowed while busy (SCRIPT KILL, SHUTDOWN NOSAVE, …).
// The wake-up descriptor is not a connection: run drains it afterwards.
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
	for _, ev := range events[:n] {
		if c := l.conns[int(ev.Fd)]; c != nil && c != running {
			l.serveEvent(c, ev.Events)
		}
	}
}
