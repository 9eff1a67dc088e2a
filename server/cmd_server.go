package server

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (s *Server) serverCommands() []*command {
	srv := func(name string, arity int, flags cmdFlags, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, group: "server", since: "1.0.0", summary: summary, run: run}
	}
	config := &command{name: "config", arity: -2, group: "server", since: "2.0.0",
		summary: "A container for server configuration commands.",
		subs: map[string]*command{
			"get":       {name: "get", arity: -3, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdConfigGet, summary: "Returns the effective values of configuration parameters."},
			"set":       {name: "set", arity: -4, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdConfigSet, summary: "Sets configuration parameters in-flight."},
			"resetstat": {name: "resetstat", arity: 2, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdConfigResetStat, summary: "Resets the server's statistics."},
			"rewrite":   {name: "rewrite", arity: 2, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: s.cmdConfigRewrite, summary: "Persists the effective configuration to file."},
			"help":      {name: "help", arity: 2, flags: flagLoading | flagStale, run: s.cmdConfigHelp, summary: "Returns helpful text about the different subcommands."},
		}}
	cmdCmd := &command{name: "command", arity: -1, flags: flagLoading | flagStale, group: "server", since: "2.8.13",
		summary: "Returns detailed information about all commands.", run: s.cmdCommand,
		subs: map[string]*command{
			"count":   {name: "count", arity: 2, flags: flagLoading | flagStale, run: s.cmdCommandCount, summary: "Returns a count of commands."},
			"info":    {name: "info", arity: -2, flags: flagLoading | flagStale, run: s.cmdCommandInfo, summary: "Returns information about one, multiple or all commands."},
			"docs":    {name: "docs", arity: -2, flags: flagLoading | flagStale, run: s.cmdCommandDocs, summary: "Returns documentary information about one, multiple or all commands."},
			"list":    {name: "list", arity: -2, flags: flagLoading | flagStale, run: s.cmdCommandList, summary: "Returns a list of command names."},
			"getkeys": {name: "getkeys", arity: -3, flags: flagLoading | flagStale, run: s.cmdCommandGetKeys, summary: "Extracts the key names from an arbitrary command."},
			"help":    {name: "help", arity: 2, flags: flagLoading | flagStale, run: s.cmdCommandHelp, summary: "Returns helpful text about the different subcommands."},
		}}
	return []*command{
		srv("info", -1, flagLoading|flagStale, "Returns information and statistics about the server.", s.cmdInfo),
		srv("dbsize", 1, flagReadonly|flagFast, "Returns the number of keys in the database.", s.cmdDBSize),
		srv("time", 1, flagLoading|flagStale|flagFast, "Returns the server time.", s.cmdTime),
		srv("flushdb", -1, flagWrite, "Removes all keys from the current database.", s.cmdFlushDB),
		srv("flushall", -1, flagWrite, "Removes all keys from all databases.", s.cmdFlushAll),
		srv("shutdown", -1, flagAdmin|flagNoScript|flagLoading|flagStale|flagNoAuth|flagAllowBusy|flagNoMulti, "Synchronously saves the database(s) to disk and shuts down the Redis server.", s.cmdShutdown),
		srv("role", 1, flagNoScript|flagLoading|flagStale|flagFast, "Returns the replication role.", s.cmdRole),
		srv("wait", 3, flagNoScript, "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", s.cmdWait),
		srv("lastsave", 1, flagLoading|flagStale|flagFast, "Returns the Unix timestamp of the last successful save to disk.", s.cmdLastSave),
		config,
		cmdCmd,
	}
}

func (s *Server) cmdDBSize(c *client, _ [][]byte) { c.w.Int(int64(s.store.Len(c.db))) }

func (s *Server) cmdTime(c *client, _ [][]byte) {
	now := time.Now()
	c.w.Array(2)
	c.w.BulkString(strconv.FormatInt(now.Unix(), 10))
	c.w.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

// flushMode validates the optional ASYNC|SYNC argument.
func flushMode(args [][]byte) bool {
	if len(args) > 2 {
		return false
	}
	if len(args) == 2 {
		m := strings.ToLower(string(args[1]))
		return m == "async" || m == "sync"
	}
	return true
}

func (s *Server) cmdFlushDB(c *client, args [][]byte) {
	if !flushMode(args) {
		c.w.Error(errSyntax)
		return
	}
	s.signalDB(c.db)
	s.flushStore(c, c.db)
	c.w.Status("OK")
}

func (s *Server) cmdFlushAll(c *client, args [][]byte) {
	if !flushMode(args) {
		c.w.Error(errSyntax)
		return
	}
	s.signalDB(-1)
	s.flushStore(c, -1)
	c.w.Status("OK")
}

func (s *Server) cmdShutdown(c *client, args [][]byte) {
	save := int32(0)
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "nosave":
			save = -1
		case "save":
			save = 1
		case "now", "force":
		case "abort":
			c.w.Error("ERR No shutdown in progress.")
			return
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if !c.authed {
		c.w.Error(errNoAuth)
		return
	}
	s.log.Info("shutdown requested by client", "id", c.id, "addr", c.addr)
	s.shutdownSave.Store(save)
	s.requestShutdown()
	// Redis closes the connection without a reply when shutdown succeeds.
	c.quitting = true
}

func (s *Server) cmdRole(c *client, _ [][]byte) {
	c.w.Array(3)
	c.w.BulkString("master")
	c.w.Int(0)
	c.w.Array(0)
}

func (s *Server) cmdWait(c *client, args [][]byte) {
	if _, ok := parseInt(args[1]); !ok {
		c.w.Error(errNotInt)
		return
	}
	if n, ok := parseInt(args[2]); !ok {
		c.w.Error("ERR timeout is not an integer or out of range")
		return
	} else if n < 0 {
		c.w.Error("ERR timeout is negative")
		return
	}
	c.w.Int(0)
}

func (s *Server) cmdLastSave(c *client, _ [][]byte) { c.w.Int(s.lastSave()) }

// ---- CONFIG ----

func (s *Server) cmdConfigGet(c *client, args [][]byte) {
	pats := make([]string, 0, len(args)-2)
	for _, a := range args[2:] {
		pats = append(pats, string(a))
	}
	pairs := s.conf.match(pats)
	c.w.Map(len(pairs))
	for _, p := range pairs {
		c.w.BulkString(p[0])
		c.w.BulkString(p[1])
	}
}

func (s *Server) cmdConfigSet(c *client, args [][]byte) {
	if len(args)%2 != 0 {
		c.w.Error(wrongArgs("config|set"))
		return
	}
	type change struct {
		p   *param
		arg string
		val string
	}
	var changes []change
	seen := map[*param]bool{}
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		p, ok := s.conf.params[name]
		if !ok {
			c.w.Error("ERR Unknown option or number of arguments for CONFIG SET - '" + sanitize(string(args[i])) + "'")
			return
		}
		if p.set == nil {
			c.w.Error("ERR CONFIG SET failed (possibly related to argument '" + sanitize(string(args[i])) + "') - can't set immutable config")
			return
		}
		if seen[p] {
			c.w.Error("ERR CONFIG SET failed (possibly related to argument '" + sanitize(string(args[i])) + "') - duplicate parameter")
			return
		}
		seen[p] = true
		changes = append(changes, change{p, string(args[i]), string(args[i+1])})
	}
	// Apply all or nothing: on a failure, restore what was applied.
	var undo []change
	for _, ch := range changes {
		old := ch.p.get()
		if err := ch.p.set(ch.val); err != nil {
			for _, u := range slices.Backward(undo) {
				_ = u.p.set(u.val)
			}
			c.w.Error("ERR CONFIG SET failed (possibly related to argument '" + sanitize(ch.arg) + "') - " + err.Error())
			return
		}
		undo = append(undo, change{ch.p, ch.arg, old})
	}
	// Then each distinct apply once (the TLS files are re-read together).
	applied := map[*applier]bool{}
	for _, ch := range changes {
		if ch.p.apply == nil || applied[ch.p.apply] {
			continue
		}
		applied[ch.p.apply] = true
		if err := ch.p.apply.run(); err != nil {
			for _, u := range slices.Backward(undo) {
				_ = u.p.set(u.val)
			}
			c.w.Error("ERR CONFIG SET failed (possibly related to argument '" + sanitize(ch.arg) + "') - " + err.Error())
			return
		}
	}
	c.w.Status("OK")
}

func (s *Server) cmdConfigResetStat(c *client, _ [][]byte) {
	s.gone.Lock()
	s.gone.counters = counters{}
	s.gone.Unlock()
	s.mu.Lock()
	for _, o := range s.clients {
		o.stats.reset()
	}
	s.mu.Unlock()
	s.connsReceived.Store(0)
	s.rejectedConns.Store(0)
	s.mem.evicted.Store(0)
	c.w.Status("OK")
}

func (s *Server) cmdConfigRewrite(c *client, _ [][]byte) {
	c.w.Error("ERR The server is running without a config file")
}

func (s *Server) cmdConfigHelp(c *client, _ [][]byte) {
	lines := []string{
		"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
		"SET <directive> <value>", "    Set the configuration <directive> to <value>.",
		"RESETSTAT", "    Reset statistics reported by the INFO command.",
		"REWRITE", "    Rewrite the configuration file.",
		"HELP", "    Print this help.",
	}
	c.helpReply(lines)
}

// ---- COMMAND ----

func (s *Server) writeCommandInfo(c *client, cmd *command) {
	c.w.Array(10)
	c.w.BulkString(cmd.name)
	c.w.Int(int64(cmd.arity))
	var flags []string
	for _, f := range flagNames {
		if cmd.flags&f.f != 0 {
			flags = append(flags, f.name)
		}
	}
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.Status(f)
	}
	c.w.Int(int64(cmd.firstKey))
	c.w.Int(int64(cmd.lastKey))
	c.w.Int(int64(cmd.step))
	cats := cmd.acl()
	c.w.Set(len(cats))
	for _, cat := range cats {
		c.w.Status(cat)
	}
	c.w.Set(0) // tips
	if cmd.firstKey > 0 {
		c.w.Array(1)
		c.w.Map(3)
		c.w.BulkString("flags")
		if cmd.flags&flagWrite != 0 {
			c.w.Set(1)
			c.w.Status("RW")
		} else {
			c.w.Set(1)
			c.w.Status("RO")
		}
		c.w.BulkString("begin_search")
		c.w.Map(2)
		c.w.BulkString("type")
		c.w.BulkString("index")
		c.w.BulkString("spec")
		c.w.Map(1)
		c.w.BulkString("index")
		c.w.Int(int64(cmd.firstKey))
		c.w.BulkString("find_keys")
		c.w.Map(2)
		c.w.BulkString("type")
		c.w.BulkString("range")
		c.w.BulkString("spec")
		c.w.Map(3)
		c.w.BulkString("lastkey")
		last := int64(cmd.lastKey)
		if last > 0 {
			last -= int64(cmd.firstKey)
		}
		c.w.Int(last)
		c.w.BulkString("keystep")
		c.w.Int(int64(cmd.step))
		c.w.BulkString("limit")
		c.w.Int(0)
	} else {
		c.w.Array(0)
	}
	subs := sortedSubs(cmd)
	c.w.Array(len(subs))
	for _, sub := range subs {
		s.writeCommandInfo(c, sub)
	}
}

func sortedSubs(cmd *command) []*command {
	out := make([]*command, 0, len(cmd.subs))
	for _, sub := range cmd.subs {
		out = append(out, sub)
	}
	slices.SortFunc(out, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return out
}

func (s *Server) cmdCommand(c *client, args [][]byte) {
	if len(args) > 1 {
		// Container with an unknown subcommand is answered by dispatch;
		// this is only reached for "COMMAND".
		c.w.Error(errSyntax)
		return
	}
	cmds := s.sortedCommands()
	c.w.Array(len(cmds))
	for _, cmd := range cmds {
		s.writeCommandInfo(c, cmd)
	}
}

func (s *Server) cmdCommandCount(c *client, _ [][]byte) { c.w.Int(int64(len(s.cmds))) }

func (s *Server) findCommand(name string) *command {
	name = strings.ToLower(name)
	if parent, sub, ok := strings.Cut(name, "|"); ok {
		if p := s.cmds[parent]; p != nil {
			return p.subs[sub]
		}
		return nil
	}
	return s.cmds[name]
}

func (s *Server) cmdCommandInfo(c *client, args [][]byte) {
	if len(args) == 2 {
		s.cmdCommand(c, args[:1])
		return
	}
	c.w.Array(len(args) - 2)
	for _, a := range args[2:] {
		if cmd := s.findCommand(string(a)); cmd != nil {
			s.writeCommandInfo(c, cmd)
		} else {
			c.w.NullArray()
		}
	}
}

func (s *Server) writeCommandDoc(c *client, cmd *command) {
	n := 4
	if len(cmd.subs) > 0 {
		n++
	}
	c.w.Map(n)
	c.w.BulkString("summary")
	c.w.BulkString(cmd.summary)
	c.w.BulkString("since")
	c.w.BulkString(cmd.since)
	c.w.BulkString("group")
	c.w.BulkString(cmd.group)
	c.w.BulkString("complexity")
	if cmd.flags&flagFast != 0 {
		c.w.BulkString("O(1)")
	} else {
		c.w.BulkString("O(N)")
	}
	if len(cmd.subs) > 0 {
		c.w.BulkString("subcommands")
		subs := sortedSubs(cmd)
		c.w.Map(len(subs))
		for _, sub := range subs {
			c.w.BulkString(sub.name)
			s.writeCommandDoc(c, sub)
		}
	}
}

func (s *Server) cmdCommandDocs(c *client, args [][]byte) {
	var cmds []*command
	if len(args) == 2 {
		cmds = s.sortedCommands()
	} else {
		for _, a := range args[2:] {
			if cmd := s.findCommand(string(a)); cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	c.w.Map(len(cmds))
	for _, cmd := range cmds {
		c.w.BulkString(cmd.name)
		s.writeCommandDoc(c, cmd)
	}
}

func (s *Server) cmdCommandList(c *client, args [][]byte) {
	var filter func(*command) bool
	if len(args) > 2 {
		if len(args) != 5 || !strings.EqualFold(string(args[2]), "filterby") {
			c.w.Error(errSyntax)
			return
		}
		val := string(args[4])
		switch strings.ToLower(string(args[3])) {
		case "module":
			filter = func(*command) bool { return false }
		case "aclcat":
			filter = func(cmd *command) bool { return slices.Contains(cmd.acl(), "@"+strings.ToLower(val)) }
		case "pattern":
			filter = func(cmd *command) bool { return globMatch([]byte(val), []byte(cmd.name), true) }
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	var names []string
	for _, cmd := range s.sortedCommands() {
		if filter == nil || filter(cmd) {
			names = append(names, cmd.name)
		}
		for _, sub := range sortedSubs(cmd) {
			if filter == nil || filter(sub) {
				names = append(names, sub.name)
			}
		}
	}
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
}

func (s *Server) cmdCommandGetKeys(c *client, args [][]byte) {
	cmd := s.findCommand(string(args[2]))
	if cmd == nil {
		c.w.Error("ERR Invalid command specified")
		return
	}
	sub := args[2:]
	if !cmd.arityOK(len(sub)) {
		c.w.Error("ERR Invalid number of arguments specified for command")
		return
	}
	if len(s.acl.table.specs[cmd.id]) == 0 {
		c.w.Error("ERR The command has no key arguments")
		return
	}
	// The same key extraction as the ACL checks (acl.go).
	keys := s.acl.table.commandKeys(nil, cmd, sub)
	if len(keys) == 0 && !noMandatoryKeys(cmd) {
		c.w.Error("ERR Invalid arguments specified for command")
		return
	}
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.Bulk(sub[k.pos])
	}
}

func (s *Server) cmdCommandHelp(c *client, _ [][]byte) {
	lines := []string{
		"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"(no subcommand)", "    Return details about all Redis commands.",
		"COUNT", "    Return the total number of commands in this Redis server.",
		"LIST", "    Return a list of all commands in this Redis server.",
		"INFO [<command-name> ...]", "    Return details about multiple Redis commands.",
		"DOCS [<command-name> ...]", "    Return documentation details about multiple Redis commands.",
		"GETKEYS <full-command>", "    Return the keys from a full Redis command.",
		"HELP", "    Print this help.",
	}
	c.helpReply(lines)
}

// ---- INFO ----

var infoDefault = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"}

func (s *Server) cmdInfo(c *client, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		sec := strings.ToLower(string(a))
		switch sec {
		case "all", "everything":
			for _, d := range infoDefault {
				want[d] = true
			}
			want["commandstats"] = true
		case "default":
			for _, d := range infoDefault {
				want[d] = true
			}
		default:
			want[sec] = true
		}
	}
	if len(args) == 1 {
		for _, d := range infoDefault {
			want[d] = true
		}
	}
	c.w.Verbatim("txt", []byte(s.info(want)))
}

func human(n int64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", f/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", f/(1<<20))
	case n < 1<<40:
		return fmt.Sprintf("%.2fG", f/(1<<30))
	default:
		return fmt.Sprintf("%.2fT", f/(1<<40))
	}
}

// rss returns the process's resident set size in bytes (Linux), or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// goMemory returns the bytes the Go runtime holds for live data (heap
// objects, stacks, runtime metadata), without stopping the world.
func goMemory() int64 {
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(samples)
	var v [3]int64
	for i, smp := range samples {
		if smp.Value.Kind() == metrics.KindUint64 {
			v[i] = int64(smp.Value.Uint64())
		}
	}
	return v[0] - v[1] - v[2]
}

func (s *Server) info(want map[string]bool) string {
	var b strings.Builder
	section := func(name string) bool {
		if !want[strings.ToLower(name)] {
			return false
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		return true
	}
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	now := time.Now()
	st := s.store.Stats()
	tot := s.totals()
	s.mu.Lock()
	nclients := len(s.clients)
	s.mu.Unlock()

	if section("Server") {
		kv("redis_version", RedisVersion)
		kv("redis_git_sha1", "00000000")
		kv("redis_git_dirty", 0)
		kv("redis_build_id", "0")
		kv("redis_mode", "standalone")
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", strconv.IntSize)
		kv("monotonic_clock", "POSIX clock_gettime")
		kv("multiplexing_api", "epoll")
		kv("atomicvar_api", "c11-builtin")
		kv("gcc_version", "0.0.0")
		kv("process_id", os.Getpid())
		kv("process_supervised", "no")
		kv("run_id", s.runID)
		kv("tcp_port", s.conf.params["port"].get())
		kv("server_time_usec", now.UnixMicro())
		up := now.Sub(s.start)
		kv("uptime_in_seconds", int64(up/time.Second))
		kv("uptime_in_days", int64(up/(24*time.Hour)))
		kv("hz", 10)
		kv("configured_hz", 10)
		kv("lru_clock", now.Unix()&(1<<24-1))
		exe, _ := os.Executable()
		kv("executable", exe)
		kv("config_file", "")
		kv("io_threads_active", 0)
		kv("sessiond_version", s.confVersion())
		kv("go_version", runtime.Version())
	}
	if section("Clients") {
		kv("connected_clients", nclients)
		kv("cluster_connections", 0)
		kv("maxclients", s.conf.params["maxclients"].get())
		kv("client_recent_max_input_buffer", 0)
		kv("client_recent_max_output_buffer", 0)
		kv("blocked_clients", 0)
		kv("tracking_clients", 0)
		kv("clients_in_timeout_table", 0)
		kv("total_blocking_keys", 0)
		kv("total_blocking_keys_on_nokey", 0)
	}
	if section("Memory") {
		goMem := goMemory()
		used := s.usedMemory()
		r := rss()
		peak := s.notePeak(used)
		kv("used_memory", used)
		kv("used_memory_human", human(used))
		kv("used_memory_rss", r)
		kv("used_memory_rss_human", human(r))
		kv("used_memory_peak", peak)
		kv("used_memory_peak_human", human(peak))
		kv("used_memory_peak_perc", fmt.Sprintf("%.2f%%", 100*float64(used)/float64(max(peak, 1))))
		kv("used_memory_overhead", st.IndexBytes+goMem-st.IndexBytes)
		kv("used_memory_startup", 0)
		kv("used_memory_dataset", st.ArenaLive+st.ObjectBytes)
		kv("used_memory_arena", st.ArenaBytes)
		kv("used_memory_arena_live", st.ArenaLive)
		kv("used_memory_index", st.IndexBytes)
		kv("used_memory_go", goMem)
		kv("total_system_memory", totalSystemMemory())
		kv("total_system_memory_human", human(totalSystemMemory()))
		maxmem := s.mem.max.Load()
		kv("maxmemory", maxmem)
		kv("maxmemory_human", human(maxmem))
		kv("maxmemory_policy", s.conf.params["maxmemory-policy"].get())
		kv("mem_fragmentation_ratio", fmt.Sprintf("%.2f", float64(r)/float64(max(used, 1))))
		kv("mem_allocator", "sessiond-arena")
		kv("lazyfree_pending_objects", 0)
		kv("lazyfreed_objects", 0)
	}
	if section("Persistence") {
		s.infoPersistence(kv)
	}
	if section("Stats") {
		kv("total_connections_received", s.connsReceived.Load())
		kv("total_commands_processed", tot.commands)
		kv("instantaneous_ops_per_sec", s.opsPerSec.Load())
		kv("total_net_input_bytes", tot.netInBytes)
		kv("total_net_output_bytes", tot.netOutBytes)
		kv("instantaneous_input_kbps", "0.00")
		kv("instantaneous_output_kbps", "0.00")
		kv("rejected_connections", s.rejectedConns.Load())
		kv("sync_full", 0)
		kv("sync_partial_ok", 0)
		kv("sync_partial_err", 0)
		kv("expired_keys", st.Expired)
		kv("expired_subkeys", st.ExpiredParts)
		kv("expired_stale_perc", "0.00")
		kv("expired_time_cap_reached_count", 0)
		kv("evicted_keys", s.mem.evicted.Load())
		kv("evicted_clients", 0)
		kv("keyspace_hits", tot.hits)
		kv("keyspace_misses", tot.misses)
		chans, pats := s.pubsubCounts()
		kv("pubsub_channels", chans)
		kv("pubsub_patterns", pats)
		kv("pubsubshard_channels", 0)
		kv("latest_fork_usec", 0)
		kv("total_forks", 0)
		kv("migrate_cached_sockets", 0)
		kv("total_error_replies", 0)
		kv("unexpected_error_replies", 0)
		kv("total_reads_processed", 0)
		kv("total_writes_processed", 0)
		kv("io_threaded_reads_processed", 0)
		kv("io_threaded_writes_processed", 0)
	}
	if section("Replication") {
		kv("role", "master")
		kv("connected_slaves", 0)
		kv("master_failover_state", "no-failover")
		kv("master_replid", s.runID)
		kv("master_replid2", strings.Repeat("0", 40))
		kv("master_repl_offset", 0)
		kv("second_repl_offset", -1)
		kv("repl_backlog_active", 0)
		kv("repl_backlog_size", 1048576)
		kv("repl_backlog_first_byte_offset", 0)
		kv("repl_backlog_histlen", 0)
	}
	if section("CPU") {
		sys, user := cpuTimes()
		kv("used_cpu_sys", fmt.Sprintf("%.6f", sys.Seconds()))
		kv("used_cpu_user", fmt.Sprintf("%.6f", user.Seconds()))
		kv("used_cpu_sys_children", "0.000000")
		kv("used_cpu_user_children", "0.000000")
	}
	section("Modules")
	section("Errorstats")
	if section("Cluster") {
		kv("cluster_enabled", 0)
	}
	if section("Keyspace") {
		for db := range st.Keys {
			if st.Keys[db] == 0 {
				continue
			}
			fmt.Fprintf(&b, "db%d:keys=%d,expires=%d,avg_ttl=%d\r\n", db, st.Keys[db], st.Expires[db], st.AvgTTL[db])
		}
	}
	return b.String()
}
