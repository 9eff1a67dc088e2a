package server

import (
	"sync"
	"sync/atomic"
)

// pushState is a client's outbox: messages other goroutines deliver to it
// (pub/sub, keyspace events). The owner writes the outbox before its own
// replies; between commands the outbox is drained by the owner's loop
// (epoll transport) or by a pusher goroutine (goroutine transport).
type pushState struct {
	mu     sync.Mutex // guards the fields below it
	outbox []byte
	wake   bool // a drain is scheduled
	dead   bool // the client is closing or was cut off; drop pushes
	// inflight is what the pusher is writing, taken from the outbox; it
	// still counts as the client's unsent output.
	inflight int64

	has atomic.Bool // outbox is not empty (owner's fast check)

	// goroutine transport only, owned by the client's goroutine.
	started bool
	wmu     sync.Mutex // serialises writes to nc between owner and pusher
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// push appends b to c's outbox and arranges its delivery. A client whose
// outbox passes its output limit (client-output-buffer-limit pubsub,
// checked by checkOutput like every other output) is disconnected. The
// check is made under mu, so that the figure it records is never newer
// than the drain that follows (which records its own, see pusher).
func (c *client) push(b []byte) {
	p := &c.out
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	p.outbox = append(p.outbox, b...)
	if !c.checkOutput(int64(len(p.outbox))+p.inflight, true) {
		p.dead = true
		p.outbox = nil
		p.has.Store(false)
		p.mu.Unlock()
		c.closeConn()
		return
	}
	p.has.Store(true)
	wake := !p.wake
	p.wake = true
	p.mu.Unlock()
	if wake {
		c.wakePush()
	}
}

// takeOutbox removes and returns the outbox (nil if empty).
func (c *client) takeOutbox() []byte { return c.takeOutboxAs(false) }

// takeOutboxAs is takeOutbox; with inflight, what it takes is recorded as
// in flight in the same critical section, so that no push in between
// measures the client's unsent output without it. The caller resets
// p.inflight once written.
func (c *client) takeOutboxAs(inflight bool) []byte {
	p := &c.out
	if !p.has.Load() {
		p.mu.Lock()
		p.wake = false
		p.mu.Unlock()
		return nil
	}
	p.mu.Lock()
	b := p.outbox
	p.outbox = nil
	p.wake = false
	p.has.Store(false)
	if inflight {
		p.inflight = int64(len(b))
	}
	p.mu.Unlock()
	return b
}

// moveToOutbox moves the replies c has written so far to the end of its
// outbox, so that they precede any message pushed from now on (a
// subscription's confirmation comes before its first message).
func (c *client) moveToOutbox() {
	if c.w.Len() == 0 {
		return
	}
	p := &c.out
	p.mu.Lock()
	if !p.dead {
		p.outbox = append(p.outbox, c.w.Bytes()...)
		p.has.Store(true)
	}
	p.mu.Unlock()
	c.w.Reset()
}

// startPush prepares delivery for a client about to subscribe: the
// goroutine transport gets a pusher goroutine, which the client's serve
// goroutine stops and waits for when the connection ends.
func (c *client) startPush() {
	p := &c.out
	if c.lp != nil || c.nc == nil || p.started {
		return
	}
	p.started = true
	p.kick = make(chan struct{}, 1)
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	go c.pusher()
}

// stopPush ends the pusher goroutine, if any, and waits for it. The
// connection must be closed first (a blocked write then fails).
func (c *client) stopPush() {
	p := &c.out
	p.mu.Lock()
	p.dead = true
	p.outbox = nil
	p.has.Store(false)
	p.mu.Unlock()
	if p.started {
		close(p.stop)
		<-p.done
	}
}

func (c *client) wakePush() {
	if c.lp != nil {
		c.lp.post(func() { c.lp.drainPush(c) })
		return
	}
	if c.out.kick != nil {
		select {
		case c.out.kick <- struct{}{}:
		default:
		}
	}
}

// pusher writes the outbox of a goroutine-transport client while its
// owner waits for the next command.
func (c *client) pusher() {
	p := &c.out
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		p.wmu.Lock()
		b := c.takeOutboxAs(true)
		var err error
		if len(b) > 0 {
			var n int
			n, err = c.nc.Write(b)
			atomic.AddInt64(&c.stats.netOutBytes, int64(n))
		}
		p.mu.Lock()
		p.inflight = 0
		if len(p.outbox) == 0 {
			// Everything pushed so far is sent (by this pass or the
			// owner's flush): no unsent figure of a push may linger for
			// the cron to cut a subscriber that reads off by.
			c.outputDrained()
		}
		p.mu.Unlock()
		p.wmu.Unlock()
		if err != nil {
			c.nc.Close()
			return
		}
	}
}
