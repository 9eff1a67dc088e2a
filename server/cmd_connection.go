package server

import (
	"strconv"
	"strings"
	"time"
)

func (s *Server) connectionCommands() []*command {
	conn := func(name string, arity int, flags cmdFlags, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags | flagLoading | flagStale,
			group: "connection", since: "1.0.0", summary: summary, run: run}
	}
	cluster := &command{name: "cluster", arity: -2, group: "cluster", since: "3.0.0",
		summary: "A container for Redis Cluster commands.", run: s.cmdClusterOff, subs: map[string]*command{}}
	// Arities as in Redis 7, so argument-count errors come first, as there.
	for sub, arity := range map[string]int{"addslots": -3, "addslotsrange": -4, "bumpepoch": 2,
		"count-failure-reports": 3, "countkeysinslot": 3, "delslots": -3, "delslotsrange": -4,
		"failover": -2, "flushslots": 2, "forget": 3, "getkeysinslot": 4, "help": 2, "info": 2,
		"keyslot": 3, "links": 2, "meet": -4, "myid": 2, "myshardid": 2, "nodes": 2, "replicas": 3,
		"replicate": 3, "reset": -2, "saveconfig": 2, "set-config-epoch": 3, "setslot": -4,
		"shards": 2, "slaves": 3, "slots": 2} {
		cluster.subs[sub] = &command{name: sub, arity: arity, since: "3.0.0", run: s.cmdClusterOff,
			summary: "Redis Cluster command (cluster support is disabled)."}
	}
	client := &command{name: "client", arity: -2, group: "connection", since: "2.4.0",
		summary: "A container for client connection commands.",
		subs: map[string]*command{
			"setname": {name: "setname", arity: 3, flags: flagNoScript | flagLoading | flagStale, run: s.cmdClientSetName, summary: "Sets the connection name."},
			"getname": {name: "getname", arity: 2, flags: flagNoScript | flagLoading | flagStale, run: s.cmdClientGetName, summary: "Returns the name of the connection."},
			"id":      {name: "id", arity: 2, flags: flagNoScript | flagLoading | flagStale, run: s.cmdClientID, summary: "Returns the unique client ID of the connection."},
			"info":    {name: "info", arity: 2, flags: flagNoScript | flagLoading | flagStale, run: s.cmdClientInfo, summary: "Returns information about the connection."},
			"list":    {name: "list", arity: -2, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdClientList, summary: "Lists open connections."},
			"kill":    {name: "kill", arity: -3, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdClientKill, summary: "Terminates open connections."},
			"setinfo": {name: "setinfo", arity: 4, flags: flagNoScript | flagLoading | flagStale, run: s.cmdClientSetInfo, since: "7.2.0", summary: "Sets information specific to the client or connection."},
			"no-evict": {name: "no-evict", arity: 3, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdClientOnOff, since: "7.0.0",
				summary: "Sets the client eviction mode of the connection."},
			"no-touch": {name: "no-touch", arity: 3, flags: flagNoScript | flagLoading | flagStale, run: s.cmdClientOnOff, since: "7.2.0",
				summary: "Controls whether commands sent by the client affect the LRU/LFU of accessed keys."},
			"help": {name: "help", arity: 2, flags: flagLoading | flagStale, run: s.cmdClientHelp, summary: "Returns helpful text about the different subcommands."},
			"pause": {name: "pause", arity: -3, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdClientPause, since: "3.0.0",
				summary: "Suspends commands processing."},
			"unpause": {name: "unpause", arity: 2, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdClientUnpause, since: "6.2.0",
				summary: "Resumes processing commands from paused clients."},
		}}
	return []*command{
		conn("ping", -1, flagFast, "Returns the server's liveliness response.", s.cmdPing),
		conn("echo", 2, flagFast, "Returns the given string.", s.cmdEcho),
		conn("quit", -1, flagNoScript|flagNoAuth|flagFast|flagAllowBusy, "Closes the connection.", s.cmdQuit),
		conn("reset", 1, flagNoScript|flagNoAuth|flagFast|flagAllowBusy, "Resets the connection.", s.cmdReset),
		conn("hello", -1, flagNoScript|flagNoAuth|flagFast|flagAllowBusy, "Handshakes with the Redis server.", s.cmdHello),
		conn("auth", -2, flagNoScript|flagNoAuth|flagFast|flagAllowBusy, "Authenticates the connection.", s.cmdAuth),
		conn("select", 2, flagFast, "Changes the selected database.", s.cmdSelect),
		conn("readonly", 1, flagFast, "Enables read-only queries for a connection to a Redis Cluster replica node.", s.cmdClusterOff),
		conn("readwrite", 1, flagFast, "Enables read-write queries for a connection to a Reids Cluster replica node.", s.cmdClusterOff),
		client,
		cluster,
	}
}

func (s *Server) cmdPing(c *client, args [][]byte) {
	if len(args) <= 2 && c.w.Proto() == 2 && c.subscriptions() > 0 {
		// A RESP2 subscriber gets its PONG in the shape of a message.
		c.w.Array(2)
		c.w.BulkString("pong")
		if len(args) == 2 {
			c.w.Bulk(args[1])
		} else {
			c.w.BulkString("")
		}
		return
	}
	switch len(args) {
	case 1:
		c.w.Status("PONG")
	case 2:
		c.w.Bulk(args[1])
	default:
		c.w.Error(wrongArgs("ping"))
	}
}

func (s *Server) cmdEcho(c *client, args [][]byte) { c.w.Bulk(args[1]) }

func (s *Server) cmdQuit(c *client, _ [][]byte) {
	// Leave channels and WATCHes now, as Redis frees the client right
	// after the reply: once a client has read +OK, PUBSUB no longer counts
	// this one.
	s.leavePubSub(c)
	s.unwatchAll(c)
	c.w.Status("OK")
	c.quitting = true
}

func (s *Server) cmdReset(c *client, _ [][]byte) {
	c.endMulti()
	s.unwatchAll(c)
	s.leavePubSub(c)
	c.setDB(0)
	c.setProto(2)
	s.defaultAuth(c)
	c.metaMu.Lock()
	c.name = ""
	c.metaMu.Unlock()
	c.w.Status("RESET")
}

func (s *Server) cmdAuth(c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	user, pass := []byte("default"), args[1]
	if len(args) == 3 {
		user, pass = args[1], args[2]
	} else if s.acl.def.rules.Load().flags&userNoPass != 0 {
		c.w.Error(errAuthNoPass)
		return
	}
	if !s.login(c, args[0], user, pass) {
		c.w.Error(errWrongPass)
		return
	}
	c.w.Status("OK")
}

func (s *Server) cmdHello(c *client, args [][]byte) {
	ver := int64(0)
	next := 1
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			c.w.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.w.Error("NOPROTO unsupported protocol version")
			return
		}
		ver = v
		next = 2
	}
	var user, pass, name []byte
	setName := false
	for j := next; j < len(args); j++ {
		more := len(args) - 1 - j
		opt := strings.ToLower(string(args[j]))
		switch {
		case opt == "auth" && more >= 2:
			user, pass = args[j+1], args[j+2]
			j += 2
		case opt == "setname" && more >= 1:
			name = args[j+1]
			if !validClientName(name) {
				c.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			setName = true
			j++
		default:
			c.w.Error("ERR Syntax error in HELLO option '" + sanitize(string(args[j])) + "'")
			return
		}
	}
	if user != nil && !s.login(c, args[0], user, pass) {
		c.w.Error(errWrongPass)
		return
	}
	if !c.authed {
		c.w.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		c.metaMu.Lock()
		c.name = string(name)
		c.metaMu.Unlock()
	}
	if ver != 0 {
		c.setProto(int(ver))
	}
	c.w.Map(7)
	c.w.BulkString("server")
	c.w.BulkString("redis")
	c.w.BulkString("version")
	c.w.BulkString(RedisVersion)
	c.w.BulkString("proto")
	c.w.Int(int64(c.w.Proto()))
	c.w.BulkString("id")
	c.w.Int(c.id)
	c.w.BulkString("mode")
	c.w.BulkString("standalone")
	c.w.BulkString("role")
	c.w.BulkString("master")
	c.w.BulkString("modules")
	c.w.Array(0)
}

func (s *Server) cmdSelect(c *client, args [][]byte) {
	n, ok := parseInt(args[1])
	if !ok || n < -1<<31 || n > 1<<31-1 {
		c.w.Error(errNotInt)
		return
	}
	if n < 0 || n >= int64(s.conf.databases) {
		c.w.Error(errDBIndex)
		return
	}
	c.setDB(int(n))
	c.w.Status("OK")
}

func (s *Server) cmdClusterOff(c *client, _ [][]byte) { c.w.Error(errClusterOff) }

// validClientName mirrors Redis: printable ASCII without spaces.
func validClientName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func (s *Server) cmdClientSetName(c *client, args [][]byte) {
	if !validClientName(args[2]) {
		c.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	c.metaMu.Lock()
	c.name = string(args[2])
	c.metaMu.Unlock()
	c.w.Status("OK")
}

func (s *Server) cmdClientGetName(c *client, _ [][]byte) {
	c.metaMu.Lock()
	name := c.name
	c.metaMu.Unlock()
	if name == "" {
		c.w.Null()
		return
	}
	c.w.BulkString(name)
}

func (s *Server) cmdClientID(c *client, _ [][]byte) { c.w.Int(c.id) }

func (s *Server) cmdClientSetInfo(c *client, args [][]byte) {
	attr := strings.ToLower(string(args[2]))
	if attr != "lib-name" && attr != "lib-ver" {
		c.w.Error("ERR Unrecognized option '" + sanitize(string(args[2])) + "'")
		return
	}
	for _, ch := range args[3] {
		if ch < '!' || ch > '~' {
			c.w.Error("ERR " + sanitize(string(args[2])) + " cannot contain spaces, newlines or special characters.")
			return
		}
	}
	c.metaMu.Lock()
	if attr == "lib-name" {
		c.libName = string(args[3])
	} else {
		c.libVer = string(args[3])
	}
	c.metaMu.Unlock()
	c.w.Status("OK")
}

func (s *Server) cmdClientOnOff(c *client, args [][]byte) {
	switch strings.ToLower(string(args[2])) {
	case "on", "off":
		c.w.Status("OK")
	default:
		c.w.Error(errSyntax)
	}
}

// clientLine formats one CLIENT LIST line (without the trailing newline),
// with Redis 7.2's fields.
func (s *Server) clientLine(c *client, now time.Time) string {
	c.metaMu.Lock()
	name, libName, libVer, user := c.name, c.libName, c.libVer, c.user.name
	c.metaMu.Unlock()
	cmd := "NULL"
	if last := c.lastCmdPtr.Load(); last != nil {
		cmd = last.name
	}
	idle := now.Sub(time.Unix(0, c.lastActive.Load())) / time.Second
	var b strings.Builder
	b.Grow(256)
	field := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	field("id", itoa(c.id))
	field("addr", c.addr)
	field("laddr", c.laddr)
	field("fd", itoa(int64(c.fd)))
	field("name", name)
	field("age", itoa(int64(now.Sub(c.created)/time.Second)))
	field("idle", itoa(int64(idle)))
	nsub, npsub := c.subs.nsub.Load(), c.subs.npsub.Load()
	flags := "N"
	if nsub+npsub > 0 {
		flags = "P"
	}
	multi := int64(c.multiLen.Load())
	if multi >= 0 && flags == "N" {
		flags = "x"
	}
	field("flags", flags)
	field("db", itoa(int64(c.dbSnapshot())))
	field("sub", itoa(int64(nsub)))
	field("psub", itoa(int64(npsub)))
	field("ssub", "0")
	field("multi", itoa(multi))
	qbuf, rbs, omem := c.qbuf.Load(), c.rbs.Load(), c.omem.Load()
	field("qbuf", itoa(qbuf))
	field("qbuf-free", itoa(max(rbs-qbuf, 0)))
	field("argv-mem", "0")
	field("multi-mem", "0")
	field("rbs", itoa(rbs))
	field("rbp", "0")
	field("obl", "0")
	field("oll", "0")
	field("omem", itoa(omem))
	field("tot-mem", itoa(rbs+omem+1024))
	field("events", "r")
	field("cmd", cmd)
	field("user", user)
	field("redir", "-1")
	field("resp", itoa(int64(c.protoSnapshot())))
	field("lib-name", libName)
	field("lib-ver", libVer)
	return b.String()
}

func (s *Server) cmdClientInfo(c *client, _ [][]byte) {
	c.w.Verbatim("txt", []byte(s.clientLine(c, time.Now())+"\n"))
}

func (s *Server) cmdClientList(c *client, args [][]byte) {
	var ids map[int64]bool
	for i := 2; i < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		switch {
		case opt == "type" && i+1 < len(args):
			t := strings.ToLower(string(args[i+1]))
			switch t {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				ids = map[int64]bool{} // no such clients (yet)
			default:
				c.w.Error("ERR Unknown client type '" + sanitize(string(args[i+1])) + "'")
				return
			}
			i++
		case opt == "id" && i+1 < len(args):
			if ids == nil {
				ids = map[int64]bool{}
			}
			for i++; i < len(args); i++ {
				n, ok := parseInt(args[i])
				if !ok || n <= 0 {
					c.w.Error("ERR Invalid client ID")
					return
				}
				ids[n] = true
			}
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	now := time.Now()
	s.mu.Lock()
	list := make([]*client, 0, len(s.clients))
	for _, o := range s.clients {
		if ids == nil || ids[o.id] {
			list = append(list, o)
		}
	}
	s.mu.Unlock()
	sortClients(list)
	var b strings.Builder
	for _, o := range list {
		b.WriteString(s.clientLine(o, now))
		b.WriteByte('\n')
	}
	c.w.Verbatim("txt", []byte(b.String()))
}

func (s *Server) cmdClientKill(c *client, args [][]byte) {
	if len(args) == 3 {
		// Old form: CLIENT KILL addr:port.
		addr := string(args[2])
		s.mu.Lock()
		var victim *client
		for _, o := range s.clients {
			if o.addr == addr {
				victim = o
				break
			}
		}
		s.mu.Unlock()
		if victim == nil {
			c.w.Error("ERR No such client")
			return
		}
		s.kill(c, victim)
		c.w.Status("OK")
		return
	}
	var (
		id          int64
		addr, laddr string
		user        *aclUser
		typ         string
		skipMe      = true
	)
	if (len(args)-2)%2 != 0 {
		c.w.Error(errSyntax)
		return
	}
	for i := 2; i+1 < len(args); i += 2 {
		opt, val := strings.ToLower(string(args[i])), string(args[i+1])
		switch opt {
		case "id":
			n, ok := parseInt(args[i+1])
			if !ok || n <= 0 {
				c.w.Error("ERR client-id should be greater than 0")
				return
			}
			id = n
		case "addr":
			addr = val
		case "laddr":
			laddr = val
		case "user":
			if user = s.acl.user(val); user == nil {
				c.w.Error("ERR No such user '" + sanitize(cstr(val)) + "'")
				return
			}
		case "type":
			typ = strings.ToLower(val)
			switch typ {
			case "normal", "master", "replica", "slave", "pubsub":
			default:
				c.w.Error("ERR Unknown client type '" + sanitize(val) + "'")
				return
			}
		case "skipme":
			switch strings.ToLower(val) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				c.w.Error(errSyntax)
				return
			}
		case "maxage":
			if _, ok := parseInt(args[i+1]); !ok {
				c.w.Error(errNotInt)
				return
			}
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	s.mu.Lock()
	var victims []*client
	for _, o := range s.clients {
		if (id != 0 && o.id != id) || (addr != "" && o.addr != addr) || (laddr != "" && o.laddr != laddr) ||
			(user != nil && !o.actsAs(user)) || (typ != "" && typ != "normal") || (skipMe && o == c) {
			continue
		}
		victims = append(victims, o)
	}
	s.mu.Unlock()
	for _, o := range victims {
		s.kill(c, o)
	}
	c.w.Int(int64(len(victims)))
}

// kill closes victim; a client killing itself is closed after the reply.
func (s *Server) kill(c, victim *client) {
	if victim == c {
		c.quitting = true
		return
	}
	victim.killed.Store(true)
	victim.closeConn()
}

func (s *Server) cmdClientHelp(c *client, _ [][]byte) {
	lines := []string{
		"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GETNAME", "    Return the name of the current connection.",
		"ID", "    Return the ID of the current connection.",
		"INFO", "    Return information about the current client connection.",
		"KILL <ip:port>", "    Kill connection made from <ip:port>.",
		"KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are: ID, ADDR, LADDR, USER, TYPE, SKIPME.",
		"LIST [options ...]", "    Return information about client connections. Options: TYPE, ID.",
		"SETNAME <name>", "    Assign the name <name> to the current connection.",
		"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
		"UNPAUSE", "    Stop the current client pause, resuming traffic.",
		"PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
		"NO-EVICT (ON|OFF)", "    Accepted for compatibility.",
		"NO-TOUCH (ON|OFF)", "    Accepted for compatibility.",
		"HELP", "    Print this help.",
	}
	c.helpReply(lines)
}
