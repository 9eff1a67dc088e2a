package server

// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (script.go runs them).

func (s *Server) scriptCommands() []*command {
	eval := func(name string, flags cmdFlags, since, summary string, run handler) *command {
		return &command{name: name, arity: -3, flags: flags | flagNoScript | flagStale,
			group: "scripting", since: since, summary: summary, run: run}
	}
	sub := func(name string, arity int, flags cmdFlags, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, since: since, summary: summary, run: run}
	}
	script := &command{name: "script", arity: -2, group: "scripting", since: "2.6.0",
		summary: "A container for Lua scripts management commands.",
		subs: map[string]*command{
			"debug":  sub("debug", 3, flagNoScript, "3.2.0", "Sets the debug mode of server-side Lua scripts.", s.cmdScriptDebug),
			"exists": sub("exists", -3, flagNoScript, "2.6.0", "Determines whether server-side Lua scripts exist in the script cache.", s.cmdScriptExists),
			"flush":  sub("flush", -2, flagNoScript, "2.6.0", "Removes all server-side Lua scripts from the script cache.", s.cmdScriptFlush),
			"help":   sub("help", 2, flagLoading|flagStale, "5.0.0", "Returns helpful text about the different subcommands.", s.cmdScriptHelp),
			"kill":   sub("kill", 2, flagNoScript|flagAllowBusy, "2.6.0", "Terminates a server-side Lua script during execution.", s.cmdScriptKill),
			"load":   sub("load", 3, flagNoScript|flagStale, "2.6.0", "Loads a server-side Lua script to the script cache.", s.cmdScriptLoad),
		}}
	return []*command{
		eval("eval", 0, "2.6.0", "Executes a server-side Lua script.", s.cmdEval),
		eval("evalsha", 0, "2.6.0", "Executes a server-side Lua script by SHA1 digest.", s.cmdEvalSha),
		eval("eval_ro", flagReadonly, "7.0.0", "Executes a read-only server-side Lua script.", s.cmdEvalRO),
		eval("evalsha_ro", flagReadonly, "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", s.cmdEvalShaRO),
		script,
	}
}

func (s *Server) cmdEval(c *client, args [][]byte)      { s.eval(c, args, false, false) }
func (s *Server) cmdEvalSha(c *client, args [][]byte)   { s.eval(c, args, true, false) }
func (s *Server) cmdEvalRO(c *client, args [][]byte)    { s.eval(c, args, false, true) }
func (s *Server) cmdEvalShaRO(c *client, args [][]byte) { s.eval(c, args, true, true) }

// eval is the EVAL family: byName is EVALSHA, ro the _RO variants. The
// checks come in Redis's order; the script itself runs in an exclusive
// section of the gate.
func (s *Server) eval(c *client, args [][]byte, bySHA, ro bool) {
	if bySHA && len(args[1]) != 40 {
		c.w.Error(errNoScript)
		return
	}
	numkeys, ok := parseInt(args[2])
	switch {
	case !ok:
		c.w.Error(errNotInt)
		return
	case numkeys > int64(len(args)-3):
		c.w.Error("ERR Number of keys can't be greater than number of args")
		return
	case numkeys < 0:
		c.w.Error("ERR Number of keys can't be negative")
		return
	}
	var sc *luaScript
	if bySHA {
		if sc = s.scripts.lookup(args[1]); sc == nil {
			c.w.Error(errNoScript)
			return
		}
	} else {
		var msg string
		if sc, msg = s.scripts.load(args[1]); sc == nil {
			c.w.Error(msg)
			return
		}
	}
	if ro && sc.shebang && !sc.noWrite {
		c.w.Error(errWriteFlagOnRO)
		return
	}
	keys, argv := args[3:3+numkeys], args[3+numkeys:]
	s.exclusive(c, func() { s.runScript(c, sc, keys, argv, ro) })
}

func (s *Server) cmdScriptLoad(c *client, args [][]byte) {
	sc, msg := s.scripts.load(args[2])
	if sc == nil {
		c.w.Error(msg)
		return
	}
	c.w.BulkString(sc.sha)
}

func (s *Server) cmdScriptExists(c *client, args [][]byte) {
	c.w.Array(len(args) - 2)
	for _, sha := range args[2:] {
		if s.scripts.lookup(sha) != nil {
			c.w.Int(1)
		} else {
			c.w.Int(0)
		}
	}
}

func (s *Server) cmdScriptFlush(c *client, args [][]byte) {
	if len(args) > 3 || len(args) == 3 && !eqFold(args[2], "sync") && !eqFold(args[2], "async") {
		c.w.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
		return
	}
	s.scripts.flush()
	c.w.OK()
}

// cmdScriptKill stops the running script if it has not written. It runs
// while the server is busy (allow_busy), without the gate.
func (s *Server) cmdScriptKill(c *client, _ [][]byte) {
	g := &s.gate
	g.st.Lock()
	defer g.st.Unlock()
	switch {
	case g.script == nil:
		c.w.Error(errNotBusy)
	case !g.killLocked(g.script, false):
		c.w.Error(errUnkillable)
	default:
		c.w.OK()
	}
}

// cmdScriptDebug: sessiond has no Lua debugger; NO is accepted.
func (s *Server) cmdScriptDebug(c *client, args [][]byte) {
	switch {
	case eqFold(args[2], "no"):
		c.w.OK()
	case eqFold(args[2], "yes"), eqFold(args[2], "sync"):
		c.w.Error("ERR SCRIPT DEBUG is not supported by sessiond")
	default:
		c.w.Error("ERR Use SCRIPT DEBUG YES/SYNC/NO")
	}
}

func (s *Server) cmdScriptHelp(c *client, _ [][]byte) {
	c.helpReply([]string{
		"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"DEBUG (YES|SYNC|NO)",
		"    Set the debug mode for subsequent scripts executed.",
		"EXISTS <sha1> [<sha1> ...]",
		"    Return information about the existence of the scripts in the script cache.",
		"FLUSH [ASYNC|SYNC]",
		"    Flush the Lua scripts cache. Very dangerous on replicas.",
		"    When called without the optional mode argument, the behavior is determined by the",
		"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
		"    * ASYNC: Asynchronously flush the scripts cache.",
		"    * SYNC: Synchronously flush the scripts cache.",
		"KILL",
		"    Kill the currently executing Lua script.",
		"LOAD <script>",
		"    Load a script into the scripts cache without executing it.",
		"HELP",
		"    Prints this help.",
	})
}
