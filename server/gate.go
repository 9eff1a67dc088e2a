package server

import (
	"runtime"
	"sync"
)

// gateSlots is the number of reader slots of the gate's lock that
// clients share (by id); the slots of its other users follow them.
const gateSlots = 64

// slotRW is a reader-writer lock made of reader slots, each a mutex on its
// own cache line: a reader locks one slot (its client's), a writer locks
// them all. Commands from different cores thus never write to a shared
// cache line, which a sync.RWMutex's reader count costs on every command
// (12 % of pipelined GET throughput on two cores). Readers that share a
// slot take turns.
type slotRW struct {
	slots [gateSlots + ownSlots]struct {
		sync.Mutex
		_ [64 - 8]byte
	}
}

func (l *slotRW) TryRLock(slot int) bool { return l.slots[slot].TryLock() }
func (l *slotRW) RLock(slot int)         { l.slots[slot].Lock() }
func (l *slotRW) RUnlock(slot int)       { l.slots[slot].Unlock() }

// Lock takes every slot, in order.
func (l *slotRW) Lock() {
	for i := range l.slots {
		l.slots[i].Lock()
	}
}

func (l *slotRW) Unlock() {
	for i := range l.slots {
		l.slots[i].Unlock()
	}
}

// Slots of the gate's users that are not clients, each its own, so that
// no client's command ever waits behind them (HoldFlushes can hold its
// slot for a slice of persistence work).
const (
	sharedSlot  = gateSlots + iota // s.shared (eviction before a command)
	persistSlot                    // HoldFlushes (persistence goroutines)
	ownSlots    = iota
)

// gateSlot is c's reader slot.
func (c *client) gateSlot() int { return int(c.id & (gateSlots - 1)) }

// gate makes EXEC and scripts atomic with respect to every other client:
// each command runs holding the gate shared, an exclusive section holds it
// alone. Commands inside an exclusive section run through s.call directly
// and take the store's shard locks as usual (no other client holds any).
//
// A script that runs longer than busy-reply-threshold makes the server
// "busy", as in Redis: from then on the commands of other clients are not
// made to wait but answered BUSY, except those Redis flags allow_busy
// (SCRIPT KILL, SHUTDOWN NOSAVE, AUTH, HELLO, QUIT, RESET, MULTI, …), which
// run at once without the gate. No caller ever waits on the gate without
// also waking when the running script turns busy, so an event loop is
// never stuck behind a script: it answers BUSY and serves its other
// connections (one of which may be sending SCRIPT KILL).
type gate struct {
	mu slotRW // commands hold a slot of it; an exclusive section all of it

	st sync.Mutex // guards the fields below
	// owner is the client in an exclusive section (or waiting for mu in
	// one); exclusive sections take turns through it, so only the owner
	// ever waits in mu.Lock.
	owner *client
	// wake is closed (and set to nil) when the owner leaves or the
	// running script turns busy; nil until a waiter needs it.
	wake chan struct{}
	// script is the script running in the exclusive section, if any.
	script *scriptRun

	// Test hooks, nil outside tests (set before the server serves):
	// onScript runs when a script starts, onWait when a command starts
	// waiting for an exclusive section.
	onScript func()
	onWait   func()
}

// errBusyScript is Redis's answer to a command sent while a script runs
// past busy-reply-threshold.
const errBusyScript = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."

// wakeLocked returns the channel closed at the gate's next change of
// state. g.st is held.
func (g *gate) wakeLocked() chan struct{} {
	if g.wake == nil {
		g.wake = make(chan struct{})
	}
	return g.wake
}

// notifyLocked wakes every waiter. g.st is held.
func (g *gate) notifyLocked() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}

// runGated runs cmd for c holding the gate shared: dispatch's last step.
// The uncontended case is one TryRLock; when an exclusive section holds
// the gate, c waits for it to end unless it is a script past
// busy-reply-threshold, in which case c gets BUSY (or its allow_busy
// command runs at once).
func (s *Server) runGated(c *client, cmd *command, args [][]byte) {
	slot := c.gateSlot()
	if !s.gate.mu.TryRLock(slot) {
		if run := s.acquireShared(slot); run != nil {
			s.runWhileBusy(c, cmd, args, run)
			return
		}
	}
	c.gateShared = true
	s.call(c, cmd, args)
	if c.gateShared {
		c.gateShared = false
		s.gate.mu.RUnlock(slot)
	}
}

// acquireShared takes the gate shared, waiting for the exclusive section
// that holds it to end. If that section is (or becomes) a script past
// busy-reply-threshold, it returns the script without taking the gate.
func (s *Server) acquireShared(slot int) (busy *scriptRun) {
	g := &s.gate
	for {
		g.st.Lock()
		if run := g.busyLocked(); run != nil {
			g.st.Unlock()
			return run
		}
		// Take the channel before trying: an owner that leaves after
		// TryRLock fails closes this very channel, so no wake-up is lost.
		wake := g.wakeLocked()
		owned := g.owner != nil
		g.st.Unlock()
		if g.mu.TryRLock(slot) {
			return nil
		}
		if !owned {
			// Another reader has the slot, for one command.
			runtime.Gosched()
			continue
		}
		if g.onWait != nil {
			g.onWait()
		}
		<-wake
	}
}

// busy reports whether a script past busy-reply-threshold holds the gate
// (a command inside MULTI is then refused rather than queued, as in Redis).
func (g *gate) busy() bool {
	g.st.Lock()
	defer g.st.Unlock()
	return g.busyLocked() != nil
}

// busyLocked returns the script holding the gate if it runs past
// busy-reply-threshold, else nil. g.st is held.
func (g *gate) busyLocked() *scriptRun {
	if run := g.script; run != nil && run.busy {
		return run
	}
	return nil
}

// shared runs fn holding the gate shared, for work outside dispatch that
// must not overlap EXEC or a script (eviction before a command). When a
// script past busy-reply-threshold holds the gate, fn does not run and
// shared reports false: nobody waits on a busy script.
func (s *Server) shared(fn func()) bool {
	if !s.gate.mu.TryRLock(sharedSlot) && s.acquireShared(sharedSlot) != nil {
		return false
	}
	defer s.gate.mu.RUnlock(sharedSlot)
	fn()
	return true
}

// runWhileBusy answers a command sent while run is busy: BUSY, unless
// Redis allows the command while busy; those run without the gate (they
// touch only their client or the script's state).
func (s *Server) runWhileBusy(c *client, cmd *command, args [][]byte, run *scriptRun) {
	if cmd.flags&flagAllowBusy == 0 {
		c.rejectCmd(cmd, errBusyScript)
		return
	}
	if cmd.name == "shutdown" {
		// Only SHUTDOWN NOSAVE goes through, and it stops the script
		// (written or not) so that the server can stop.
		nosave := false
		for _, a := range args[1:] {
			nosave = nosave || eqFold(a, "nosave")
		}
		if !nosave {
			c.w.Error(errBusyScript)
			return
		}
		s.killScript(run)
	}
	s.call(c, cmd, args)
}

// exclusive runs fn with no other command running. c is the client asking
// (it holds the gate shared while its command runs; that hold is given up
// for good: the command ends without it). A client already in an
// exclusive section (EVAL inside EXEC) runs fn directly.
//
// Exclusive sections take turns. If the section c waits for is a script
// that turns busy, exclusive does not run fn: it writes Redis's BUSY error
// to c.w instead and returns.
func (s *Server) exclusive(c *client, fn func()) {
	g := &s.gate
	g.st.Lock()
	nested := g.owner == c
	g.st.Unlock()
	if nested {
		fn()
		return
	}
	if c.gateShared {
		c.gateShared = false
		g.mu.RUnlock(c.gateSlot())
	}
	for {
		g.st.Lock()
		if g.owner == nil {
			g.owner = c
			g.st.Unlock()
			break
		}
		if g.busyLocked() != nil {
			g.st.Unlock()
			c.w.Error(errBusyScript)
			return
		}
		wake := g.wakeLocked()
		g.st.Unlock()
		if g.onWait != nil {
			g.onWait()
		}
		<-wake
	}
	// Only the owner locks: this waits for the commands in flight, never
	// for another exclusive section.
	g.mu.Lock()
	defer func() {
		g.mu.Unlock()
		g.st.Lock()
		g.owner = nil
		g.notifyLocked()
		g.st.Unlock()
	}()
	fn()
}

// enterScript registers run as the script of the exclusive section.
func (g *gate) enterScript(run *scriptRun) {
	g.st.Lock()
	g.script = run
	g.st.Unlock()
	if g.onScript != nil {
		g.onScript()
	}
}

// leaveScript unregisters the section's script.
func (g *gate) leaveScript() {
	g.st.Lock()
	g.script = nil
	g.st.Unlock()
}

// markBusy records that run has passed busy-reply-threshold and wakes the
// clients waiting for the gate, so that they answer BUSY.
func (g *gate) markBusy(run *scriptRun) {
	g.st.Lock()
	run.busy = true
	g.notifyLocked()
	g.st.Unlock()
}

// killScript asks run to stop at its next Lua instruction, whatever it
// has written (a server stopping, SHUTDOWN NOSAVE).
func (s *Server) killScript(run *scriptRun) {
	g := &s.gate
	g.st.Lock()
	g.killLocked(run, true)
	g.st.Unlock()
}

// killLocked asks run to stop at its next Lua instruction. Unless force, a
// script that has written is not killed (Redis's UNKILLABLE); it reports
// whether the kill was requested. g.st is held.
func (g *gate) killLocked(run *scriptRun, force bool) bool {
	if run.dirty && !force {
		return false
	}
	run.killed.Store(true)
	return true
}

// noteWrite records, before a script's write command runs, that the script
// has written (so that SCRIPT KILL no longer applies). It reports false if
// the script was killed meanwhile: the write must not run.
func (g *gate) noteWrite(run *scriptRun) bool {
	g.st.Lock()
	defer g.st.Unlock()
	if run.killed.Load() {
		return false
	}
	run.dirty = true
	return true
}
