package server

import (
	"sync"
	"sync/atomic"

	"github.com/sessiond/sessiond/ttl"
)

// multiState is a transaction being queued (between MULTI and EXEC).
type multiState struct {
	queue   []queued
	aborted bool // a command failed to queue: EXEC answers EXECABORT
}

type queued struct {
	cmd  *command
	args [][]byte
}

// watchKey names a key in a database.
type watchKey struct {
	db  int
	key string
}

// watchState is a client's WATCHed keys. dirty is set by other clients.
type watchState struct {
	keys  []watched
	dirty atomic.Bool
}

type watched struct {
	watchKey
	deadline int64 // the key's deadline when WATCHed (0: none or missing)
}

// watchers maps watched keys to the clients watching them.
type watchers struct {
	mu   sync.Mutex
	keys map[watchKey]map[*client]struct{} // guarded by mu
	n    atomic.Int64                      // len(keys), for the fast path
}

// touch marks every client watching key in db as dirty.
func (w *watchers) touch(db int, key []byte) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for c := range w.keys[watchKey{db, string(key)}] {
		c.watch.dirty.Store(true)
	}
	w.mu.Unlock()
}

// touchDB marks every client watching a key of db (-1: any db) for which
// exists reports true as dirty, for FLUSHDB and FLUSHALL. exists is called
// without w.mu held.
func (w *watchers) touchDB(db int, exists func(db int, key []byte) bool) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	var keys []watchKey
	for k := range w.keys {
		if db < 0 || k.db == db {
			keys = append(keys, k)
		}
	}
	w.mu.Unlock()
	for _, k := range keys {
		if !exists(k.db, []byte(k.key)) {
			continue
		}
		w.mu.Lock()
		for c := range w.keys[k] {
			c.watch.dirty.Store(true)
		}
		w.mu.Unlock()
	}
}

func (s *Server) unwatchAll(c *client) {
	if len(c.watch.keys) > 0 {
		w := &s.watchers
		w.mu.Lock()
		for _, k := range c.watch.keys {
			if cs := w.keys[k.watchKey]; cs != nil {
				delete(cs, c)
				if len(cs) == 0 {
					delete(w.keys, k.watchKey)
				}
			}
		}
		w.n.Store(int64(len(w.keys)))
		w.mu.Unlock()
		c.watch.keys = c.watch.keys[:0]
	}
	c.watch.dirty.Store(false)
}

func (s *Server) transactionCommands() []*command {
	tx := func(name string, arity int, flags cmdFlags, first, last int, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags | flagNoScript | flagLoading | flagStale,
			firstKey: first, lastKey: last, step: min(first, 1), group: "transactions", since: since, summary: summary, run: run}
	}
	return []*command{
		// Allowed while a script is busy, as in Redis, but EXEC: it
		// answers EXECABORT … BUSY, as Redis's does.
		tx("multi", 1, flagFast|flagAllowBusy, 0, 0, "1.2.0", "Starts a transaction.", s.cmdMulti),
		tx("exec", 1, 0, 0, 0, "1.2.0", "Executes all commands in a transaction.", s.cmdExec),
		tx("discard", 1, flagFast|flagAllowBusy, 0, 0, "2.0.0", "Discards a transaction.", s.cmdDiscard),
		tx("watch", -2, flagFast|flagAllowBusy, 1, -1, "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", s.cmdWatch),
		tx("unwatch", 1, flagFast|flagAllowBusy, 0, 0, "2.2.0", "Forgets about watched keys of a transaction.", s.cmdUnwatch),
	}
}

func (s *Server) cmdMulti(c *client, _ [][]byte) {
	if c.multi != nil {
		c.w.Error("ERR MULTI calls can not be nested")
		return
	}
	c.multi = &multiState{}
	c.multiLen.Store(0)
	c.w.OK()
}

func (s *Server) cmdDiscard(c *client, _ [][]byte) {
	if c.multi == nil {
		c.w.Error("ERR DISCARD without MULTI")
		return
	}
	c.endMulti()
	s.unwatchAll(c)
	c.w.OK()
}

func (s *Server) cmdWatch(c *client, args [][]byte) {
	if c.multi != nil {
		c.w.Error("ERR WATCH inside MULTI is not allowed")
		return
	}
	w := &s.watchers
	for _, k := range args[1:] {
		wk := watchKey{c.db, string(k)}
		dup := false
		for _, have := range c.watch.keys {
			if have.watchKey == wk {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		tx := s.store.Lock(k)
		e, ok := tx.Get(c.db, k)
		w.mu.Lock()
		if w.keys == nil {
			w.keys = make(map[watchKey]map[*client]struct{})
		}
		cs := w.keys[wk]
		if cs == nil {
			cs = make(map[*client]struct{})
			w.keys[wk] = cs
		}
		cs[c] = struct{}{}
		w.n.Store(int64(len(w.keys)))
		w.mu.Unlock()
		tx.Unlock()
		dl := int64(0)
		if ok {
			dl = e.Deadline
		}
		c.watch.keys = append(c.watch.keys, watched{wk, dl})
	}
	c.w.OK()
}

func (s *Server) cmdUnwatch(c *client, _ [][]byte) {
	s.unwatchAll(c)
	c.w.OK()
}

// watchFailed reports whether EXEC must abort: a watched key was modified,
// or had a deadline when watched that has passed since (expired keys
// count as modified, as in Redis).
func (s *Server) watchFailed(c *client) bool {
	if c.watch.dirty.Load() {
		return true
	}
	now := ttl.Now()
	for _, k := range c.watch.keys {
		if k.deadline != 0 && now > k.deadline {
			return true
		}
	}
	return false
}

func (s *Server) cmdExec(c *client, _ [][]byte) {
	m := c.multi
	if m == nil {
		c.w.Error("ERR EXEC without MULTI")
		return
	}
	c.endMulti()
	if m.aborted {
		s.unwatchAll(c)
		c.w.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	s.exclusive(c, func() {
		if s.watchFailed(c) {
			c.w.NullArray()
			return
		}
		c.w.Array(len(m.queue))
		c.inExec = true
		for _, q := range m.queue {
			if !s.aclExecPermit(c, q.cmd, q.args) {
				continue
			}
			c.setLastCmd(q.cmd)
			s.call(c, q.cmd, q.args)
		}
		c.inExec = false
	})
	s.unwatchAll(c)
	c.setLastCmd(s.cmds["exec"])
}

// queue adds a command to c's transaction, or answers why it cannot be
// queued (then EXEC will abort).
func (s *Server) queue(c *client, cmd *command, args [][]byte, arityOK bool) {
	if cmd.flags&flagNoMulti != 0 {
		c.reject("ERR Command not allowed inside a transaction")
		return
	}
	if !arityOK {
		c.reject(wrongArgs(cmd.name))
		return
	}
	cp := make([][]byte, len(args))
	n := 0
	for _, a := range args {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	for i, a := range args {
		buf = append(buf, a...)
		cp[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	c.multi.queue = append(c.multi.queue, queued{cmd, cp})
	c.multiLen.Add(1)
	c.w.Status("QUEUED")
}

// inMultiDirect lists the commands that run at once inside MULTI.
func inMultiDirect(name string) bool {
	switch name {
	case "exec", "discard", "multi", "watch", "quit", "reset":
		return true
	}
	return false
}

func (c *client) endMulti() {
	c.multi = nil
	c.multiLen.Store(-1)
}
