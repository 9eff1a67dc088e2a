//go:build linux

package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sessiond/sessiond/server/internal/resp"
)

// The event-loop transport: like Redis, each loop waits in epoll_wait for
// ready sockets, reads once per readiness event, runs every complete command
// and writes the replies, with no goroutine per connection. Compared with
// the goroutine transport it saves, per request, the read that finds the
// socket empty, and the park/unpark of a goroutine with the runtime's
// wakeups that go with it. There is one loop per GOMAXPROCS; connections are
// spread over them round-robin.

// errWouldBlock is what loopReader returns when the event's read budget is
// spent or the socket is empty; resp.Reader keeps partial input across it.
var errWouldBlock = errors.New("server: would block")

const loopEvents = 256

// loop owns a set of connections. Everything but tasks is touched only by
// the loop's goroutine.
type loop struct {
	srv    *Server
	epfd   int
	wakefd int
	conns  map[int]*client
	events [loopEvents]unix.EpollEvent

	mu      sync.Mutex // guards tasks and stopped
	tasks   []func()
	stopped bool
	woken   atomic.Bool // a wake-up is pending on wakefd
}

func loopsSupported() bool { return true }

func closeFD(fd int) { unix.Close(fd) }

func newLoop(srv *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	l := &loop{srv: srv, epfd: epfd, wakefd: wakefd, conns: make(map[int]*client)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, err
	}
	return l, nil
}

// discard releases a loop that never ran.
func (l *loop) discard() {
	unix.Close(l.wakefd)
	unix.Close(l.epfd)
}

// post runs f on the loop's goroutine. It reports false if the loop has
// stopped (f is then not run).
func (l *loop) post(f func()) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, f)
	l.mu.Unlock()
	if l.woken.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wakefd, one[:])
	}
	return true
}

// run serves the loop's connections until stop is closed, then closes
// them all and returns.
func (l *loop) run(stop <-chan struct{}) {
	defer func() {
		l.mu.Lock()
		l.stopped = true
		tasks := l.tasks
		l.tasks = nil
		l.mu.Unlock()
		for _, f := range tasks {
			f() // registrations: they close what they would have added
		}
		for _, c := range l.conns {
			l.close(c)
		}
		unix.Close(l.wakefd)
		unix.Close(l.epfd)
	}()
	for {
		n := l.pollReady()
		var err error
		if n == 0 {
			n, err = unix.EpollWait(l.epfd, l.events[:], -1)
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			l.srv.log.Error("epoll_wait failed; loop stops", "err", err)
			return
		}
		for i := range n {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.wakefd {
				var buf [8]byte
				_, _ = unix.Read(l.wakefd, buf[:])
				l.woken.Store(false)
				continue
			}
			if c := l.conns[fd]; c != nil {
				l.serveEvent(c, ev.Events)
			}
		}
		l.runTasks()
		select {
		case <-stop:
			return
		default:
		}
	}
}

// serveEvent handles one readiness event of connection c: it sends what
// is pending, then reads and runs c's commands (run's step for each event,
// also serveWhileBusy's).
func (l *loop) serveEvent(c *client, events uint32) {
	if events&unix.EPOLLOUT != 0 {
		l.writable(c)
	}
	if c.parked != nil || c.held { // not read while paused or held; a reset ends it
		if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.close(c)
		}
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 && !c.closed && len(c.pending) == 0 {
		c.reads = 1
		l.process(c)
	}
}

func (l *loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
}

// add registers a new connection with the loop (on the loop's goroutine).
func (l *loop) add(c *client) {
	l.mu.Lock()
	stopped := l.stopped
	l.mu.Unlock()
	if stopped {
		c.closeUnregistered()
		l.srv.removeClient(c)
		return
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}); err != nil {
		l.srv.log.Warn("cannot watch connection", "addr", c.addr, "err", err)
		c.closeUnregistered()
		l.srv.removeClient(c)
		return
	}
	l.conns[c.fd] = c
}

// process runs the complete commands the connection has sent, starting
// with a command CLIENT PAUSE parked, if it may run now.
func (l *loop) process(c *client) {
	for {
		var args [][]byte
		if c.parked != nil {
			if l.srv.parkIfHeld(c) {
				l.flush(c)
				if !c.closed && len(c.pending) == 0 {
					l.watch(c, 0) // until resume; hangups are still reported
				}
				return
			}
			args, c.parked, c.parkedCmd = c.parked, nil, nil
			l.watch(c, unix.EPOLLIN|unix.EPOLLRDHUP)
		} else {
			var err error
			args, err = c.rd.ReadCommand()
			if err != nil {
				if errors.Is(err, errWouldBlock) {
					break
				}
				c.readFailed(err)
				l.flush(c)
				l.close(c)
				return
			}
		}
		c.run(args)
		if c.quitting || c.werr != nil {
			l.flush(c)
			l.close(c)
			return
		}
		if c.w.Len() >= flushThreshold {
			if l.flush(c); len(c.pending) > 0 || c.closed {
				return // wait until the socket takes the replies
			}
		}
	}
	c.rbs.Store(int64(c.rd.Cap()))
	c.qbuf.Store(int64(c.rd.Buffered()))
	if c.unsynced && l.srv.persist != nil && c.w.Len() > 0 {
		c.unsynced = false
		if seq, wait := l.srv.persist.DurableTarget(); wait {
			// appendfsync always: the replies wait for the changes to be
			// durable, and the client is not read meanwhile; the loop
			// serves the others, whose changes join the next group
			// commit.
			c.held = true
			l.watch(c, 0) // hangups are still reported
			l.srv.persist.OnDurable(seq, func() { l.post(func() { l.release(c) }) })
			return
		}
	}
	l.flush(c)
}

// release sends the replies of a held client once its changes are durable
// and reads it again (on the loop's goroutine).
func (l *loop) release(c *client) {
	c.held = false
	if c.closed {
		return
	}
	l.flush(c)
	if c.closed || len(c.pending) > 0 {
		return // writable resumes it once the replies are out
	}
	l.watch(c, unix.EPOLLIN|unix.EPOLLRDHUP)
	c.reads = 0 // buffered commands only; epoll reports new input
	l.process(c)
}

// resume carries on with a client whose parked command CLIENT PAUSE may
// have released (on the loop's goroutine). With replies still pending,
// writable resumes it once they are out.
func (l *loop) resume(c *client) {
	if c.closed || c.parked == nil || len(c.pending) > 0 || c.held {
		return
	}
	c.reads = 0 // buffered commands only; epoll reports new input
	l.process(c)
}

// flush writes the replies. What the socket does not take waits in
// c.pending, and the connection stops reading until it drains (so a client
// that does not read cannot grow our memory by pipelining).
func (l *loop) flush(c *client) {
	if c.out.has.Load() && !c.closed {
		if b := c.takeOutbox(); len(b) > 0 {
			c.w.Prepend(b) // messages first, then replies
		}
	}
	if c.closed || c.w.Len() == 0 {
		return
	}
	if c.werr != nil {
		c.w.Reset()
		return
	}
	c.awaitDurable()
	l.send(c, c.w.Bytes())
	c.w.Reset()
}

// send writes buf to the socket, behind any bytes already pending. What
// the socket does not take waits in c.pending (the connection is not read
// until it drains, so a client that does not read cannot grow our memory
// by pipelining) and counts against the client's output limit.
func (l *loop) send(c *client, buf []byte) {
	if len(c.pending) > 0 {
		c.pending = append(c.pending, buf...)
		l.checkPending(c)
		return
	}
	n, err := writeFD(c.fd, buf)
	atomic.AddInt64(&c.stats.netOutBytes, int64(n))
	switch {
	case err != nil && !errors.Is(err, unix.EAGAIN):
		c.werr = err
		l.close(c)
	case n < len(buf):
		c.pending = append(c.pending[:0], buf[n:]...)
		if l.checkPending(c) {
			l.watch(c, unix.EPOLLOUT)
		}
	default:
		c.outputDrained()
	}
}

// checkPending applies the output limit to the unsent bytes and closes the
// client over it; it reports whether the client is still open.
func (l *loop) checkPending(c *client) bool {
	if c.checkOutput(unsent(c), c.isPubSub()) {
		return true
	}
	c.pending, c.werr = nil, errOutputLimit
	l.close(c)
	return false
}

// drainPush writes c's outbox (messages other goroutines pushed).
func (l *loop) drainPush(c *client) {
	if c.closed {
		return
	}
	if b := c.takeOutbox(); len(b) > 0 {
		l.send(c, b)
	}
}

// writable sends pending replies; once they are all out the connection
// reads again, starting with what is already buffered.
func (l *loop) writable(c *client) {
	if c.closed || len(c.pending) == 0 {
		return
	}
	n, err := writeFD(c.fd, c.pending)
	atomic.AddInt64(&c.stats.netOutBytes, int64(n))
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		c.werr = err
		l.close(c)
		return
	}
	rest := copy(c.pending, c.pending[n:])
	c.pending = c.pending[:rest]
	if rest > 0 {
		l.checkPending(c)
		return
	}
	c.outputDrained()
	if cap(c.pending) > flushThreshold {
		c.pending = nil
	}
	l.watch(c, unix.EPOLLIN|unix.EPOLLRDHUP)
	c.reads = 0 // buffered commands only; epoll reports new input
	l.process(c)
}

// unsent returns the reply bytes c has not taken: those in c.pending and
// those still in the socket's send queue (SIOCOUTQ). Counting the latter
// makes the output limits see a client that stopped reading whatever the
// kernel's buffer sizes; the loop stops producing replies for it anyway.
func unsent(c *client) int64 {
	n := int64(len(c.pending))
	if q, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ); err == nil && q > 0 {
		n += int64(q)
	}
	return n
}

func (l *loop) watch(c *client, events uint32) {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)}); err != nil {
		c.werr = err
		l.close(c)
	}
}

// close closes the connection once (on the loop's goroutine).
func (l *loop) close(c *client) {
	if c.closed {
		return
	}
	c.closed = true
	c.stopPush()
	if c.parked != nil {
		l.srv.forgetParked(c)
	}
	if len(c.pending) > 0 {
		_, _ = writeFD(c.fd, c.pending) // best effort, nonblocking
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	delete(l.conns, c.fd)
	l.srv.removeClient(c)
}

// rawRead and rawWrite call read(2) and write(2) without the runtime's
// blocking-syscall bookkeeping: the sockets are non-blocking, so the calls
// return at once, and the loop keeps its P.
func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2) (trap) on fd with p.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// pollReady returns the events already pending, without blocking and
// without the blocking-syscall bookkeeping; 0 means wait in EpollWait.
func (l *loop) pollReady() int {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), loopEvents, 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(n)
}

func writeFD(fd int, b []byte) (int, error) {
	total := 0
	for total < len(b) {
		n, err := rawWrite(fd, b[total:])
		if n > 0 {
			total += n
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// loopReader gives resp.Reader one socket read per readiness event.
type loopReader struct{ c *client }

func (r loopReader) Read(p []byte) (int, error) {
	c := r.c
	if c.reads <= 0 {
		return 0, errWouldBlock
	}
	c.reads--
	for {
		n, err := rawRead(c.fd, p)
		switch {
		case err == nil && n > 0:
			atomic.AddInt64(&c.stats.netInBytes, int64(n))
			return n, nil
		case err == nil:
			return 0, io.EOF
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, errWouldBlock
		default:
			return 0, err
		}
	}
}

// loopClient takes an accepted connection over from the runtime's poller
// for an event loop: it duplicates the socket (the duplicate shares
// O_NONBLOCK) and closes the runtime's copy. It returns nil, having logged
// why, if the socket cannot be taken.
func (s *Server) loopClient(tc *net.TCPConn) *client {
	nfd := -1
	var derr error
	if rc, err := tc.SyscallConn(); err == nil {
		err = rc.Control(func(fd uintptr) {
			nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		})
		if derr == nil {
			derr = err
		}
	} else {
		derr = err
	}
	addr, laddr := tc.RemoteAddr().String(), tc.LocalAddr().String()
	tc.Close()
	if derr != nil {
		s.log.Warn("cannot take over connection", "addr", addr, "err", derr)
		return nil
	}
	setSockOpts(nfd, int(s.lim.keepAlive.Load()))
	c := s.initClient(addr, laddr)
	c.fd = nfd
	c.rd = resp.NewReader(loopReader{c}, s.readerLimits())
	c.rd.SetAuthRequired(!c.authed)
	return c
}

// setSockOpts sets TCP_NODELAY and tcp-keepalive (keepalive seconds, 0
// off) as Redis's anetKeepAlive does: probes after keepalive idle seconds,
// then every third of it, three times.
func setSockOpts(fd, keepalive int) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if keepalive <= 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0)
		return
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepalive)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, max(keepalive/3, 1))
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3)
}
