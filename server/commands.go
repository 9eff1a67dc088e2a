package server

import (
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// cmdFlags mirror the Redis command flags that matter to dispatch and to
// COMMAND INFO.
type cmdFlags uint32

const (
	flagWrite cmdFlags = 1 << iota
	flagReadonly
	flagFast
	flagNoAuth
	flagAdmin
	flagDenyOOM
	flagLoading
	flagStale
	flagNoScript
	flagAllowBusy
	flagNoMulti // refused inside MULTI, as Redis's no-multi commands
)

var flagNames = []struct {
	f    cmdFlags
	name string
}{
	{flagWrite, "write"}, {flagReadonly, "readonly"}, {flagDenyOOM, "denyoom"},
	{flagAdmin, "admin"}, {flagNoScript, "noscript"}, {flagLoading, "loading"},
	{flagStale, "stale"}, {flagFast, "fast"}, {flagNoAuth, "no_auth"},
	{flagNoMulti, "no_multi"}, {flagAllowBusy, "allow_busy"},
}

// handler runs one command. args[0] is the command name as sent.
type handler func(c *client, args [][]byte)

// command is an entry of the command table (built per Server, no globals).
type command struct {
	name     string // lower case; "client|setname" for subcommands
	arity    int    // Redis convention: n exact, -n at least n
	flags    cmdFlags
	firstKey int
	lastKey  int
	step     int
	group    string // COMMAND DOCS group: string, generic, connection, server
	summary  string
	since    string
	run      handler
	subs     map[string]*command
	parent   *command
	id       int // index in the ACL rule bitmaps (acl.go)
}

// acl returns the ACL categories Redis shows in COMMAND INFO (acl.go
// derives them).
func (cmd *command) acl() []string { return aclCategoriesOf(cmd).names() }

// arityOK reports whether n arguments (the name included) fit the
// command's arity: exactly arity, or at least -arity when negative.
func (cmd *command) arityOK(n int) bool {
	if cmd.arity > 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// commandTable builds the table of every command the server knows.
func (s *Server) commandTable() map[string]*command {
	t := make(map[string]*command)
	add := func(cmds ...*command) {
		for _, cmd := range cmds {
			for _, sub := range cmd.subs {
				sub.parent = cmd
				sub.name = cmd.name + "|" + sub.name
				if sub.group == "" {
					sub.group = cmd.group
				}
				if sub.since == "" {
					sub.since = cmd.since
				}
			}
			t[cmd.name] = cmd
		}
	}
	add(s.connectionCommands()...)
	add(s.serverCommands()...)
	add(s.stringCommands()...)
	add(s.keyCommands()...)
	add(s.pubsubCommands()...)
	add(s.transactionCommands()...)
	add(s.hashCommands()...)
	add(s.setCommands()...)
	add(s.zsetCommands()...)
	add(s.aclCommands()...)
	add(s.scriptCommands()...)
	add(s.persistCommands()...)
	return t
}

// sortedCommands returns the table's commands by name (for COMMAND).
func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.cmds))
	for _, cmd := range s.cmds {
		out = append(out, cmd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// lookup finds the command for args, lower-casing the name into scratch.
func (s *Server) lookup(c *client, name []byte) *command {
	c.lower = appendLower(c.lower[:0], name)
	return s.cmds[string(c.lower)]
}

func appendLower(dst, src []byte) []byte {
	for _, b := range src {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}

// dispatch runs one command for c, writing its reply.
func (s *Server) dispatch(c *client, args [][]byte) {
	atomic.AddInt64(&c.stats.commands, 1)
	c.lastActive.Store(time.Now().UnixNano())
	cmd := s.lookup(c, args[0])
	if cmd == nil {
		c.reject(unknownCommandError(args))
		return
	}
	if cmd.subs != nil && len(args) >= 2 {
		sub := cmd.subs[strings.ToLower(string(args[1]))]
		if sub == nil {
			if !c.authed && cmd.flags&flagNoAuth == 0 && s.authRequired(c) {
				c.reject(errNoAuth)
				return
			}
			c.reject("ERR unknown subcommand '" + truncate(sanitize(string(args[1])), 128) + "'. Try " + strings.ToUpper(string(args[0])) + " HELP.")
			return
		}
		cmd = sub
	}
	if !c.authed && cmd.flags&flagNoAuth == 0 && s.authRequired(c) {
		c.rejectCmd(cmd, errNoAuth)
		return
	}
	arityOK := cmd.arityOK(len(args))
	if arityOK && !c.user.open.Load() && !s.aclPermit(c, cmd, args) {
		return
	}
	if arityOK && s.mem.max.Load() != 0 && !s.memoryOK(c, cmd) {
		return
	}
	if c.isPubSub() && c.w.Proto() == 2 && !subscribedOK(cmd.name) {
		c.rejectCmd(cmd, "ERR Can't execute '"+cmd.name+"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	if c.multi != nil && !inMultiDirect(cmd.name) {
		if cmd.flags&flagAllowBusy == 0 && s.gate.busy() {
			c.reject(errBusyScript)
			return
		}
		s.queue(c, cmd, args, arityOK)
		return
	}
	if !arityOK {
		c.rejectCmd(cmd, wrongArgs(cmd.name))
		return
	}
	if s.pause.active.Load() && s.paused(c, cmd, args) {
		return // parked until CLIENT PAUSE ends (limits.go)
	}
	c.setLastCmd(cmd)
	s.runGated(c, cmd, args)
}

// reject answers a command that cannot run; inside MULTI it also dooms the
// transaction, as in Redis.
func (c *client) reject(msg string) {
	if c.multi != nil {
		c.multi.aborted = true
	}
	c.w.Error(msg)
}

// rejectCmd is reject for a known command: a rejected EXEC (wrong arity,
// NOAUTH, NOPERM, OOM, BUSY, …) ends the transaction with Redis's
// EXECABORT wording instead.
func (c *client) rejectCmd(cmd *command, msg string) {
	if cmd.name != "exec" {
		c.reject(msg)
		return
	}
	c.endMulti()
	c.srv.unwatchAll(c)
	c.w.Error("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(msg, "ERR "))
}

// call runs the handler, turning a panic into an error reply for this
// command only: the reply written so far is dropped, the panic logged with
// the command name, and the connection and server go on. Handlers release
// store locks with defer, so a panic leaves no shard locked.
func (s *Server) call(c *client, cmd *command, args [][]byte) {
	mark := c.w.Len()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in command handler", "cmd", cmd.name, "panic", r, "stack", string(debug.Stack()))
			c.w.Truncate(mark)
			c.w.Error("ERR internal error while executing '" + cmd.name + "' (logged)")
		}
	}()
	cmd.run(c, args)
}

// unknownCommandError formats Redis 7's reply to an unknown command.
func unknownCommandError(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(truncate(string(args[0]), 128))
	b.WriteString("', with args beginning with: ")
	n := 0
	for _, a := range args[1:] {
		if n >= 128 {
			break
		}
		s := truncate(string(a), 128-n)
		b.WriteString("'")
		b.WriteString(s)
		b.WriteString("' ")
		n += len(s) + 3
	}
	return sanitize(b.String())
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sanitize replaces newlines, which cannot appear in an error reply.
func sanitize(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, s)
	}
	return s
}

func (c *client) setLastCmd(cmd *command) {
	if c.lastCmdPtr.Load() != cmd {
		c.lastCmdPtr.Store(cmd)
	}
}

// parseInt parses a Redis integer argument (strict: no spaces, no '+').
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if b[0] == '+' || (len(b) > 1 && b[0] == '0') || (len(b) > 2 && b[0] == '-' && b[1] == '0') || string(b) == "-0" {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
