package server

// Lua scripting: the script cache, the interpreter and the redis.* API.
//
// Scripts run in gopher-lua (Lua 5.1, as in Redis) inside an exclusive
// section of the gate, so a script is atomic with respect to every other
// client and at most one runs at a time; one interpreter, kept between
// runs, serves them all. Its redis.call runs commands on a connectionless
// client through the command table, as a client's command would, and
// parses the reply bytes back into Lua values the way Redis does.
//
// What differs from Redis 7.0 (the interpreter is not Redis's patched
// PUC-Rio Lua): runtime and compile error texts come from gopher-lua
// (common syntax errors are reworded as Lua words them); numbers convert
// to strings with Go's shortest representation, not "%.14g"; library
// tables are read-only through proxies, so pairs(string) is empty; the
// struct and cmsgpack libraries are missing; keys do not stop expiring
// while a script runs.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/sessiond/sessiond/server/internal/resp"
)

// Errors of the EVAL family, as Redis 7 words them.
const (
	errNoScript       = "NOSCRIPT No matching script. Please use EVAL."
	errNotBusy        = "NOTBUSY No scripts in execution right now."
	errUnkillable     = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
	errScriptKilled   = "ERR Script killed by user with SCRIPT KILL..."
	errWriteFlagOnRO  = "ERR Can not execute a script with write flag using *_ro command."
	errReadOnlyScript = "Write commands are not allowed from read-only scripts."
)

// scriptEngine is a Server's Lua state: the cache of compiled scripts and
// the interpreter that runs them. The zero value is ready to use.
type scriptEngine struct {
	mu      sync.Mutex            // guards scripts and vm
	scripts map[string]*luaScript // by lower-case SHA1 hex
	vm      *luaVM                // created by the first run; SCRIPT FLUSH drops it
	rng     lrand48               // math.random; touched only by running scripts
}

// luaScript is a compiled script.
type luaScript struct {
	sha   string
	proto *lua.FunctionProto
	// shebang: the script starts with "#!lua" (Redis 7's function flags;
	// without it the script runs in EVAL's compatibility mode).
	shebang bool
	noWrite bool // shebang flag no-writes
}

// sha1hex is the lower-case hex SHA1 Redis names scripts by.
func sha1hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

// lookup returns the cached script with the given SHA1 hex, in any case.
// It allocates nothing.
func (e *scriptEngine) lookup(sha []byte) *luaScript {
	var lower [2 * sha1.Size]byte
	if len(sha) != len(lower) {
		return nil
	}
	appendLower(lower[:0], sha)
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scripts[string(lower[:])]
}

// load returns the script for body, compiling and caching it if needed.
// On error it returns the error reply (without the leading '-').
func (e *scriptEngine) load(body []byte) (*luaScript, string) {
	sum := sha1.Sum(body)
	var sha [2 * sha1.Size]byte
	hex.Encode(sha[:], sum[:])
	if sc := e.lookup(sha[:]); sc != nil {
		return sc, ""
	}
	sc, msg := compileScript(string(sha[:]), body)
	if sc == nil {
		return nil, msg
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.scripts[sc.sha]; old != nil {
		return old, ""
	}
	if e.scripts == nil {
		e.scripts = make(map[string]*luaScript)
	}
	e.scripts[sc.sha] = sc
	return sc, ""
}

// flush empties the cache and drops the interpreter (SCRIPT FLUSH). No
// script is running: the caller holds the gate.
func (e *scriptEngine) flush() {
	e.mu.Lock()
	vm := e.vm
	e.scripts = nil
	e.vm = nil
	e.mu.Unlock()
	if vm != nil {
		vm.L.Close()
	}
}

// shebangFlags are the flags Redis 7 accepts in "#!lua flags=...".
var shebangFlags = []string{"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}

// compileScript parses a script's shebang line, if any, and compiles its
// body as a Lua chunk named user_script. On error it returns Redis's reply.
func compileScript(sha string, body []byte) (*luaScript, string) {
	sc := &luaScript{sha: sha}
	src := string(body)
	if strings.HasPrefix(src, "#!") {
		nl := strings.IndexByte(src, '\n')
		if nl < 0 {
			return nil, "ERR Invalid script shebang"
		}
		parts := strings.Fields(src[:nl])
		if len(parts) == 0 {
			return nil, "ERR Invalid engine in script shebang"
		}
		if parts[0] != "#!lua" {
			return nil, "ERR Unexpected engine in script shebang: " + parts[0]
		}
		for _, p := range parts[1:] {
			list, ok := strings.CutPrefix(p, "flags=")
			if !ok {
				return nil, "ERR Unknown lua shebang option: " + p
			}
			if list == "" {
				continue
			}
			for _, f := range strings.Split(list, ",") {
				if !slices.Contains(shebangFlags, f) {
					return nil, "ERR Unexpected flag in script shebang: " + f
				}
				if f == "no-writes" {
					sc.noWrite = true
				}
			}
		}
		sc.shebang = true
		src = src[nl:] // keep the newline: line numbers stay the script's
	}
	chunk, err := parse.Parse(strings.NewReader(src), scriptChunkName)
	if err != nil {
		return nil, "ERR Error compiling script (new function): " + luaSyntaxError(err, src)
	}
	proto, err := lua.Compile(chunk, scriptChunkName)
	if err != nil {
		return nil, "ERR Error compiling script (new function): " + scriptChunkName + ": " + strings.TrimSpace(err.Error())
	}
	// gopher-lua gives a main chunk that does not use "..." Lua 5.0's arg
	// table, built on every run though no name can reach it (it declares
	// the local arg only in nested functions); Lua 5.1 builds none for a
	// main chunk.
	proto.IsVarArg &^= lua.VarArgNeedsArg
	sc.proto = proto
	return sc, ""
}

// scriptChunkName is the chunk name of scripts: error positions read
// "user_script:<line>:", and the source of a frame "@user_script".
const scriptChunkName = "user_script"

// luaSyntaxError rewords a gopher-lua parse error the way Lua 5.1 words
// the common ones ("user_script:1: unexpected symbol near '+'").
func luaSyntaxError(err error, src string) string {
	var pe *parse.Error
	if !errors.As(err, &pe) {
		return scriptChunkName + ": " + strings.TrimSpace(err.Error())
	}
	msg := strings.TrimSpace(pe.Message)
	switch msg {
	case "syntax error":
		msg = "unexpected symbol"
	case "unterminated string":
		msg = "unfinished string"
	case "unterminated multiline string":
		msg = "unfinished long string"
	}
	line, near := pe.Pos.Line, pe.Token
	if line == parse.EOF {
		line, near = strings.Count(src, "\n")+1, "<eof>"
	}
	return scriptChunkName + ":" + strconv.Itoa(line) + ": " + msg + " near '" + near + "'"
}

// scriptRun is one execution of a script.
type scriptRun struct {
	srv      *Server
	vm       *luaVM
	caller   *client
	sha      string
	start    time.Time
	readOnly bool

	ticks uint32 // instructions, counted by scriptCtx.Done
	slow  bool   // already reported busy (the running goroutine's copy of busy)

	killed atomic.Bool // stop at the next instruction; set under gate.st

	// Guarded by srv.gate.st.
	busy  bool // running past busy-reply-threshold
	dirty bool // has run a write command: SCRIPT KILL refuses
}

// tickMask sets how often (in Lua instructions) a running script looks at
// the clock, and once busy serves its event loop's other connections.
const tickMask = 1<<16 - 1

// check runs every tickMask+1 instructions: it turns the run busy once it
// passes busy-reply-threshold, then lets the event loop of the caller serve
// its other connections, as Redis's processEventsWhileBlocked does. A
// server shutting down stops the script.
func (run *scriptRun) check() {
	s := run.srv
	select {
	case <-s.done:
		s.killScript(run)
		return
	default:
	}
	if !run.slow {
		limit := s.conf.busyReplyThreshold()
		elapsed := time.Since(run.start)
		if limit <= 0 || elapsed < limit {
			return
		}
		run.slow = true
		s.log.Warn("Slow script detected: still in execution after " + strconv.FormatInt(elapsed.Milliseconds(), 10) +
			" milliseconds. You can try killing the script using the SCRIPT KILL command.")
		s.gate.markBusy(run)
	}
	if lp := run.caller.lp; lp != nil {
		lp.serveWhileBusy(run.caller)
	}
}

// scriptCtx is the context of the interpreter. gopher-lua calls Done
// before every instruction: that is our count hook. It reports done once
// the running script is killed, which makes gopher-lua raise an error at
// each following instruction (so pcall cannot catch it for good).
type scriptCtx struct {
	run    *scriptRun    // nil between runs
	closed chan struct{} // closed at creation
}

func (x *scriptCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *scriptCtx) Err() error                  { return errors.New("script killed") }
func (x *scriptCtx) Value(any) any               { return nil }

func (x *scriptCtx) Done() <-chan struct{} {
	run := x.run
	if run == nil {
		return nil
	}
	run.ticks++
	if run.ticks&tickMask == 0 {
		run.check()
	}
	if run.killed.Load() {
		return x.closed
	}
	return nil
}

var _ context.Context = (*scriptCtx)(nil)

// luaVM is the interpreter with its sandbox, and the connectionless client
// scripts run commands on. It is used only inside the gate's exclusive
// section.
type luaVM struct {
	L       *lua.LState
	ctx     *scriptCtx
	fake    *client
	globals *lua.LTable // the real globals, behind the read-only proxy env
	handler *lua.LFunction
	fns     map[*lua.FunctionProto]*lua.LFunction
	ro      map[*lua.LTable]bool // tables rawset must not touch
	run     *scriptRun

	argbuf []byte   // scratch for redis.call's arguments
	ends   []int    // scratch
	args   [][]byte // scratch
}

// machine returns the interpreter, creating it on first use.
func (e *scriptEngine) machine(s *Server) *luaVM {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vm == nil {
		e.vm = newLuaVM(s, &e.rng)
	}
	return e.vm
}

// allowedGlobals are the globals Redis 7 leaves to scripts (besides the
// libraries and redis).
var allowedGlobals = []string{"xpcall", "tostring", "setmetatable", "next", "assert", "tonumber",
	"rawequal", "collectgarbage", "getmetatable", "rawset", "pcall", "coroutine", "type", "_G", "select",
	"unpack", "pairs", "rawget", "loadstring", "ipairs", "_VERSION", "load", "error",
	"string", "math", "table", "bit", "cjson"}

func newLuaVM(s *Server, rng *lrand48) *luaVM {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       1024,
		RegistrySize:        1024,
		RegistryMaxSize:     1 << 18,
		RegistryGrowStep:    4096,
		MinimizeStackMemory: true,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath}, {lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	vm := &luaVM{
		L:       L,
		ctx:     &scriptCtx{closed: make(chan struct{})},
		fns:     make(map[*lua.FunctionProto]*lua.LFunction),
		ro:      make(map[*lua.LTable]bool),
		globals: L.G.Global,
	}
	close(vm.ctx.closed)
	fake := s.initClient("", "")
	fake.authed = true
	vm.fake = fake

	g := vm.globals
	var drop []string
	g.ForEach(func(k, _ lua.LValue) {
		if name, ok := k.(lua.LString); !ok || !slices.Contains(allowedGlobals, string(name)) {
			drop = append(drop, k.String())
		}
	})
	for _, k := range drop {
		g.RawSetString(k, lua.LNil)
	}

	// Redis's pcall turns an error table into its message.
	basePcall := g.RawGetString("pcall").(*lua.LFunction)
	g.RawSetString("pcall", L.NewFunction(func(L *lua.LState) int {
		nargs := L.GetTop()
		L.Insert(basePcall, 1)
		L.Call(nargs, lua.MultRet)
		if L.GetTop() >= 2 && L.Get(1) == lua.LFalse {
			if t, ok := L.Get(2).(*lua.LTable); ok {
				switch msg := t.RawGetString("err").(type) {
				case lua.LString, lua.LNumber:
					L.Replace(2, msg)
				}
			}
		}
		return L.GetTop()
	}))
	// rawset and setmetatable cannot modify the read-only tables (an
	// error without position, as Redis's is raised inside the C API).
	for _, name := range []string{"rawset", "setmetatable"} {
		base := g.RawGetString(name).(*lua.LFunction)
		g.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok && vm.ro[t] {
				L.Error(lua.LString("Attempt to modify a readonly table"), 0)
			}
			nargs := L.GetTop()
			L.Insert(base, 1)
			L.Call(nargs, lua.MultRet)
			return L.GetTop()
		}))
	}
	// gcinfo: the interpreter's memory in KiB, as collectgarbage("count").
	collect := g.RawGetString("collectgarbage").(*lua.LFunction)
	g.RawSetString("gcinfo", L.NewFunction(func(L *lua.LState) int {
		L.Push(collect)
		L.Push(lua.LString("count"))
		L.Call(1, 1)
		n, _ := luaToNumber(L.Get(-1))
		L.Push(lua.LNumber(math.Floor(n)))
		return 1
	}))
	// tostring of numbers as in Lua 5.1 ("%.14g"; gopher-lua prints the
	// shortest exact form).
	baseToString := g.RawGetString("tostring").(*lua.LFunction)
	g.RawSetString("tostring", L.NewFunction(func(L *lua.LState) int {
		if n, ok := L.Get(1).(lua.LNumber); ok {
			L.Push(lua.LString(luaNumberString(float64(n))))
			return 1
		}
		nargs := L.GetTop()
		L.Insert(baseToString, 1)
		L.Call(nargs, 1)
		return 1
	}))
	// tonumber as in Lua 5.1 (gopher-lua's refuses exponents).
	baseToNumber := g.RawGetString("tonumber").(*lua.LFunction)
	g.RawSetString("tonumber", L.NewFunction(func(L *lua.LState) int {
		if str, ok := L.Get(1).(lua.LString); ok && (L.Get(2) == lua.LNil || L.Get(2) == lua.LNumber(10)) {
			if f, err := parseLuaNumber(string(str)); err == nil {
				L.Push(lua.LNumber(f))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		}
		nargs := L.GetTop()
		L.Insert(baseToNumber, 1)
		L.Call(nargs, 1)
		return 1
	}))
	// error as in Lua 5.1: numbers get a position too, and the value is
	// optional.
	g.RawSetString("error", L.NewFunction(func(L *lua.LState) int {
		v := L.Get(1)
		level := L.OptInt(2, 1)
		if n, ok := v.(lua.LNumber); ok {
			v = lua.LString(luaNumberString(float64(n)))
		}
		if msg, ok := v.(lua.LString); ok && level > 0 {
			v = lua.LString(luaWhere(L, level) + string(msg))
		}
		L.Error(v, 0)
		return 0
	}))

	// Coroutines run under the same count hook as the script.
	co := g.RawGetString("coroutine").(*lua.LTable)
	baseCreate := co.RawGetString("create").(*lua.LFunction)
	co.RawSetString("create", L.NewFunction(func(L *lua.LState) int {
		nargs := L.GetTop()
		L.Insert(baseCreate, 1)
		L.Call(nargs, 1)
		if th, ok := L.Get(-1).(*lua.LState); ok {
			th.SetContext(vm.ctx)
		}
		return 1
	}))
	baseWrap := co.RawGetString("wrap").(*lua.LFunction)
	co.RawSetString("wrap", L.NewFunction(func(L *lua.LState) int {
		nargs := L.GetTop()
		L.Insert(baseWrap, 1)
		L.Call(nargs, 1)
		if fn, ok := L.Get(-1).(*lua.LFunction); ok && len(fn.Upvalues) > 0 {
			if th, ok := fn.Upvalues[0].Value().(*lua.LState); ok {
				th.SetContext(vm.ctx)
			}
		}
		return 1
	}))

	g.RawSetString("unpack", L.NewFunction(luaUnpack))
	strLib := g.RawGetString("string").(*lua.LTable)
	strLib.RawSetString("rep", L.NewFunction(luaStringRep))
	strLib.RawSetString("format", L.NewFunction(luaFormat))

	mathLib := g.RawGetString("math").(*lua.LTable)
	mathLib.RawSetString("random", L.NewFunction(rng.luaRandom))
	mathLib.RawSetString("randomseed", L.NewFunction(rng.luaRandomSeed))

	g.RawSetString("redis", vm.redisAPI(s))
	g.RawSetString("bit", openBit(L))
	g.RawSetString("cjson", openCJSON(L))

	// Read-only globals and libraries, as in Redis 7: the environment of
	// scripts is an empty proxy whose reads go to the real globals (where
	// a missing name is an error) and whose writes fail; each library is
	// such a proxy of its table.
	readonly := L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Attempt to modify a readonly table")
		return 0
	})
	proxy := func(t *lua.LTable) *lua.LTable {
		p := L.NewTable()
		mt := L.NewTable()
		mt.RawSetString("__index", t)
		mt.RawSetString("__newindex", readonly)
		mt.RawSetString("__metatable", lua.LFalse)
		L.SetMetatable(p, mt)
		vm.ro[p] = true
		vm.ro[t] = true
		return p
	}
	for _, lib := range []string{"string", "math", "table", "coroutine", "redis", "bit", "cjson"} {
		g.RawSetString(lib, proxy(g.RawGetString(lib).(*lua.LTable)))
	}
	gmt := L.NewTable()
	gmt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.Get(2).String())
		return 0
	}))
	gmt.RawSetString("__newindex", readonly)
	gmt.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(g, gmt)
	env := proxy(g)
	g.RawSetString("_G", env)
	L.G.Global = env
	L.Env = env

	vm.handler = L.NewFunction(vm.errorHandler)
	L.SetContext(vm.ctx)
	return vm
}

// errorHandler is the message handler of a script's pcall: it makes the
// error a table {err=..., source=..., line=...} naming the Lua function
// that raised it (the caller, when a Go function such as redis.call or
// error raised it), as Redis's __redis__err__handler does.
func (vm *luaVM) errorHandler(L *lua.LState) int {
	errv := L.Get(1)
	var t *lua.LTable
	switch {
	case vm.run != nil && vm.run.killed.Load():
		t = L.NewTable()
		t.RawSetString("err", lua.LString(errScriptKilled))
	default:
		if tt, ok := errv.(*lua.LTable); ok {
			t = tt
		} else {
			t = L.NewTable()
			t.RawSetString("err", lua.LString("ERR "+errv.String()))
		}
	}
	for level := 1; ; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		fn, err := L.GetInfo("fSl", dbg, lua.LNil)
		if err != nil {
			break
		}
		if f, ok := fn.(*lua.LFunction); ok && !f.IsG {
			t.RawSetString("source", lua.LString("@"+dbg.Source))
			t.RawSetString("line", lua.LNumber(dbg.CurrentLine))
			break
		}
	}
	L.Push(t)
	return 1
}

// luaWhere is luaL_where: "source:line: " of the Lua function at the given
// level of the call stack (0 is the running Go function, 1 its caller), or
// "" if that is not a Lua function.
func luaWhere(L *lua.LState, level int) string {
	dbg, ok := L.GetStack(level)
	if !ok {
		return ""
	}
	fn, err := L.GetInfo("fSl", dbg, lua.LNil)
	if f, ok := fn.(*lua.LFunction); err != nil || !ok || f.IsG {
		return ""
	}
	return dbg.Source + ":" + strconv.Itoa(dbg.CurrentLine) + ": "
}

// runScript runs sc for c with the given keys and arguments and writes the
// reply. The gate is held exclusively.
func (s *Server) runScript(c *client, sc *luaScript, keys, argv [][]byte, readOnly bool) {
	vm := s.scripts.machine(s)
	L := vm.L
	fn := vm.fns[sc.proto]
	if fn == nil {
		fn = L.NewFunctionFromProto(sc.proto)
		vm.fns[sc.proto] = fn
	}
	run := &scriptRun{srv: s, vm: vm, caller: c, sha: sc.sha, start: time.Now(),
		readOnly: readOnly || sc.noWrite}
	fake := vm.fake
	fake.setDB(c.db)
	fake.metaMu.Lock()
	fake.user = c.user // redis.call runs with the caller's ACL permissions
	fake.metaMu.Unlock()
	fake.w.SetProto(2)
	fake.w.Reset()
	vm.run = run
	vm.ctx.run = run
	s.gate.enterScript(run)
	defer func() {
		vm.ctx.run = nil
		vm.run = nil
		s.gate.leaveScript()
		if fake.unsynced { // the script's writes hold the caller's reply (persist.go)
			fake.unsynced = false
			c.unsynced = true
		}
		L.SetTop(0)
		if atomic.LoadInt64(&fake.stats.commands) != 0 {
			s.gone.Lock()
			s.gone.add(&fake.stats)
			s.gone.Unlock()
			fake.stats.reset()
		}
	}()

	vm.globals.RawSetString("KEYS", luaArray(L, keys))
	vm.globals.RawSetString("ARGV", luaArray(L, argv))
	L.Push(fn)
	if err := L.PCall(0, 1, vm.handler); err != nil {
		var obj lua.LValue = lua.LNil
		var aerr *lua.ApiError
		if errors.As(err, &aerr) {
			obj = aerr.Object
		}
		c.w.Error(vm.scriptError(obj, err))
		return
	}
	vm.luaToResp(&c.w, L.Get(-1), 0)
}

// scriptError formats the error that ended a script as Redis does:
// "<err> script: <sha>, on <source>:<line>.".
func (vm *luaVM) scriptError(obj lua.LValue, err error) string {
	t, ok := obj.(*lua.LTable)
	if !ok && obj.String() == "lua callstack overflow" {
		// No room left to call the handler: the position is unknown.
		return "ERR user_script: stack overflow script: " + vm.run.sha
	}
	if !ok {
		// Not through the handler (a Go panic): Redis's generic form.
		msg := "execution failure"
		if s, ok := obj.(lua.LString); ok {
			msg = string(s)
		} else if err != nil {
			msg = err.Error()
		}
		if len(msg) > 100 {
			msg = msg[:100]
		}
		return "ERR Error running script " + vm.run.sha + ", " + msg
	}
	var msg string
	switch e := t.RawGetString("err").(type) {
	case lua.LString, lua.LNumber:
		msg = e.String()
	default:
		msg = "ERR unknown error"
	}
	return vm.withPosition(msg, t)
}

// withPosition appends to an error message the position its error table
// t carries, if any, as Redis does: " script: <sha>, on <source>:<line>.".
func (vm *luaVM) withPosition(msg string, t *lua.LTable) string {
	src, line := t.RawGetString("source"), t.RawGetString("line")
	if vm.run == nil || !isLuaString(src) || !isLuaString(line) {
		return msg
	}
	return msg + " script: " + vm.run.sha + ", on " + src.String() + ":" + line.String() + "."
}

// isLuaString is lua_isstring: a string or a number.
func isLuaString(v lua.LValue) bool {
	switch v.(type) {
	case lua.LString, lua.LNumber:
		return true
	}
	return false
}

func luaArray(L *lua.LState, items [][]byte) *lua.LTable {
	t := L.CreateTable(len(items), 0)
	for i, it := range items {
		t.RawSetInt(i+1, lua.LString(it))
	}
	return t
}

// errorTable is Redis's luaPushErrorBuff: an error reply ("-CODE msg") or
// a bare message becomes {err="CODE msg"}, with ERR when there is no code.
func errorTable(L *lua.LState, buf string) *lua.LTable {
	code, msg := "ERR", buf
	if rest, ok := strings.CutPrefix(buf, "-"); ok {
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			code, msg = rest[:i], rest[i+1:]
		} else {
			msg = rest
		}
	}
	msg = strings.Trim(msg, "\r\n")
	t := L.CreateTable(0, 2)
	t.RawSetString("err", lua.LString(code+" "+msg))
	return t
}

// redisAPI builds the redis table.
func (vm *luaVM) redisAPI(s *Server) *lua.LTable {
	L := vm.L
	t := L.NewTable()
	fns := map[string]lua.LGFunction{
		"call":  func(L *lua.LState) int { return vm.redisCall(s, L, true) },
		"pcall": func(L *lua.LState) int { return vm.redisCall(s, L, false) },
		"sha1hex": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				L.Error(errorTable(L, "wrong number of arguments"), 0)
			}
			var b string
			if isLuaString(L.Get(1)) {
				b = L.Get(1).String()
			}
			L.Push(lua.LString(sha1hex([]byte(b))))
			return 1
		},
		"error_reply": func(L *lua.LState) int {
			if L.GetTop() != 1 || L.Get(1).Type() != lua.LTString {
				L.Push(errorTable(L, "wrong number or type of arguments"))
				return 1
			}
			msg := L.Get(1).String()
			if !strings.HasPrefix(msg, "-") {
				msg = "-" + msg
			}
			L.Push(errorTable(L, msg))
			return 1
		},
		"status_reply": func(L *lua.LState) int {
			if L.GetTop() != 1 || L.Get(1).Type() != lua.LTString {
				L.Push(errorTable(L, "wrong number or type of arguments"))
				return 1
			}
			r := L.CreateTable(0, 1)
			r.RawSetString("ok", L.Get(1))
			L.Push(r)
			return 1
		},
		"log": func(L *lua.LState) int {
			argc := L.GetTop()
			if argc < 2 {
				L.Error(errorTable(L, "redis.log() requires two arguments or more."), 0)
			}
			level, ok := luaToNumber(L.Get(1))
			if !ok {
				L.Error(errorTable(L, "First argument must be a number (log level)."), 0)
			}
			lvl := int(level)
			if lvl < 0 || lvl > 3 {
				L.Error(errorTable(L, "Invalid debug level."), 0)
			}
			var b strings.Builder
			for i := 2; i <= argc; i++ {
				if v := L.Get(i); isLuaString(v) {
					if i != 2 {
						b.WriteByte(' ')
					}
					b.WriteString(v.String())
				}
			}
			lv := [...]slog.Level{slog.LevelDebug, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn}[lvl]
			s.log.Log(context.Background(), lv, b.String(), "source", "lua")
			return 0
		},
		"setresp": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				L.Error(errorTable(L, "redis.setresp() requires one argument."), 0)
			}
			n, _ := luaToNumber(L.Get(1))
			if p := int(n); p != 2 && p != 3 {
				L.Error(errorTable(L, "RESP version must be 2 or 3."), 0)
			}
			vm.fake.w.SetProto(int(n))
			return 0
		},
		"set_repl": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				L.Error(errorTable(L, "redis.set_repl() requires two arguments."), 0)
			}
			n, _ := luaToNumber(L.Get(1))
			if int(n)&^3 != 0 {
				L.Error(errorTable(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."), 0)
			}
			return 0
		},
		"replicate_commands": func(L *lua.LState) int {
			L.Push(lua.LTrue)
			return 1
		},
		"breakpoint": func(L *lua.LState) int {
			L.Push(lua.LFalse)
			return 1
		},
		"debug": func(L *lua.LState) int { return 0 },
		"acl_check_cmd": func(L *lua.LState) int {
			if L.GetTop() == 0 {
				L.Error(errorTable(L, "Please specify at least one argument for this redis lib call"), 0)
			}
			args := make([][]byte, L.GetTop())
			for i := range args {
				v := L.Get(i + 1)
				if !isLuaString(v) {
					L.Error(errorTable(L, "Lua redis lib command arguments must be strings or integers"), 0)
				}
				args[i] = []byte(v.String())
			}
			if vm.lookup(s, args) == nil {
				L.Error(errorTable(L, "Invalid command passed to redis.acl_check_cmd()"), 0)
			}
			L.Push(lua.LTrue)
			return 1
		},
	}
	for name, fn := range fns {
		t.RawSetString(name, L.NewFunction(fn))
	}
	for name, v := range map[string]int{"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3,
		"REPL_NONE": 0, "REPL_AOF": 1, "REPL_SLAVE": 2, "REPL_REPLICA": 2, "REPL_ALL": 3} {
		t.RawSetString(name, lua.LNumber(v))
	}
	t.RawSetString("REDIS_VERSION", lua.LString(RedisVersion))
	t.RawSetString("REDIS_VERSION_NUM", lua.LNumber(versionNum(RedisVersion)))
	return t
}

// versionNum is Redis's REDIS_VERSION_NUM: 0x00MMmmpp.
func versionNum(v string) int {
	n := 0
	for i, p := range strings.SplitN(v, ".", 3) {
		x, _ := strconv.Atoi(p)
		n |= (x & 0xff) << (16 - 8*i)
	}
	return n
}

// luaToNumber is lua_tonumber: numbers and numeric strings.
func luaToNumber(v lua.LValue) (float64, bool) {
	switch x := v.(type) {
	case lua.LNumber:
		return float64(x), true
	case lua.LString:
		n, err := parseLuaNumber(string(x))
		return n, err == nil
	}
	return 0, false
}

// parseLuaNumber converts a string as Lua 5.1 does (strtod, or hex).
func parseLuaNumber(s string) (float64, error) {
	s = strings.Trim(s, " \t\n\r\f\v")
	digits, neg := s, false
	if len(digits) > 0 && (digits[0] == '-' || digits[0] == '+') {
		digits, neg = digits[1:], digits[0] == '-'
	}
	if h, ok := strings.CutPrefix(strings.ToLower(digits), "0x"); ok && !strings.ContainsAny(h, "p.") {
		n, err := strconv.ParseUint(h, 16, 64)
		if neg {
			return -float64(n), err
		}
		return float64(n), err
	}
	if strings.ContainsRune(s, '_') {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseFloat(s, 64)
}

// lookup finds the command for a script's arguments as Redis's
// lookupCommand does: a container command needs a known subcommand.
func (vm *luaVM) lookup(s *Server, args [][]byte) *command {
	vm.fake.lower = appendLower(vm.fake.lower[:0], args[0])
	cmd := s.cmds[string(vm.fake.lower)]
	if cmd == nil || cmd.subs == nil || len(args) < 2 {
		return cmd
	}
	vm.fake.lower = appendLower(vm.fake.lower[:0], args[1])
	return cmd.subs[string(vm.fake.lower)]
}

// redisCall is redis.call (raise) and redis.pcall.
func (vm *luaVM) redisCall(s *Server, L *lua.LState, raise bool) int {
	argc := L.GetTop()
	if argc == 0 {
		return vm.callFailed(L, raise, "Please specify at least one argument for this redis lib call", false)
	}
	buf, ends := vm.argbuf[:0], vm.ends[:0]
	for i := 1; i <= argc; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			buf = append(buf, v...)
		case lua.LNumber:
			buf = resp.AppendDouble(buf, float64(v))
		default:
			return vm.callFailed(L, raise, "Lua redis lib command arguments must be strings or integers", false)
		}
		ends = append(ends, len(buf))
	}
	args, start := vm.args[:0], 0
	for _, end := range ends {
		args = append(args, buf[start:end:end])
		start = end
	}
	vm.argbuf, vm.ends, vm.args = buf, ends, args

	run := vm.run
	cmd := vm.lookup(s, args)
	switch {
	case cmd == nil:
		return vm.callFailed(L, raise, "Unknown Redis command called from script", true)
	case !cmd.arityOK(len(args)):
		return vm.callFailed(L, raise, "Wrong number of args calling Redis command from script", true)
	case cmd.flags&flagNoScript != 0:
		return vm.callFailed(L, raise, "This Redis command is not allowed from script", true)
	}
	switch s.permitted(vm.fake, cmd, args, "lua") {
	case aclOK:
	case aclDeniedKey:
		return vm.callFailed(L, raise, "The user executing the script can't access at least one of the keys mentioned in the command arguments", true)
	case aclDeniedChannel:
		return vm.callFailed(L, raise, "The user executing the script can't publish to the channel mentioned in the command", true)
	default:
		return vm.callFailed(L, raise, "The user executing the script can't run this command or subcommand", true)
	}
	if cmd.flags&flagWrite != 0 {
		if run.readOnly {
			return vm.callFailed(L, raise, errReadOnlyScript, true)
		}
		if !s.gate.noteWrite(run) {
			L.Error(errorTable(L, errScriptKilled), 0)
		}
	}
	fake := vm.fake
	atomic.AddInt64(&fake.stats.commands, 1)
	s.call(fake, cmd, args)
	reply := fake.w.Bytes()
	v, _ := vm.respToLua(reply)
	isErr := len(reply) > 0 && reply[0] == '-'
	fake.w.Reset()
	if raise && isErr {
		L.Error(v, 0)
	}
	L.Push(v)
	return 1
}

// callFailed reports an error of redis.call/pcall itself: raised by call,
// returned by pcall.
func (vm *luaVM) callFailed(L *lua.LState, raise bool, msg string, noStats bool) int {
	t := errorTable(L, msg)
	if noStats {
		t.RawSetString("ignore_error_stats_update", lua.LTrue)
	}
	if raise {
		L.Error(t, 0)
	}
	L.Push(t)
	return 1
}

// respToLua converts one reply, as a command wrote it, into the Lua value
// Redis gives scripts; it returns the bytes after it.
func (vm *luaVM) respToLua(b []byte) (lua.LValue, []byte) {
	L := vm.L
	if len(b) < 3 {
		return lua.LNil, nil
	}
	typ := b[0]
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return lua.LNil, nil
	}
	line, rest := b[1:i], b[i+2:]
	switch typ {
	case '+':
		t := L.CreateTable(0, 1)
		t.RawSetString("ok", lua.LString(line))
		return t, rest
	case '-':
		t := errorTable(L, "-"+string(line))
		t.RawSetString("ignore_error_stats_update", lua.LTrue)
		return t, rest
	case ':':
		n, _ := strconv.ParseInt(string(line), 10, 64)
		return lua.LNumber(n), rest
	case '$', '=':
		n, _ := strconv.Atoi(string(line))
		if n < 0 {
			return lua.LFalse, rest
		}
		if n+2 > len(rest) {
			return lua.LNil, nil
		}
		body := rest[:n]
		rest = rest[n+2:]
		if typ == '$' {
			return lua.LString(body), rest
		}
		format, text := "txt", body
		if len(body) >= 4 {
			format, text = string(body[:3]), body[4:]
		}
		v := L.CreateTable(0, 2)
		v.RawSetString("string", lua.LString(text))
		v.RawSetString("format", lua.LString(format))
		t := L.CreateTable(0, 1)
		t.RawSetString("verbatim_string", v)
		return t, rest
	case '*', '~', '%', '>', '|':
		n, _ := strconv.Atoi(string(line))
		if n < 0 {
			return lua.LFalse, rest
		}
		switch typ {
		case '*', '>':
			t := L.CreateTable(n, 0)
			for j := 1; j <= n; j++ {
				var v lua.LValue
				v, rest = vm.respToLua(rest)
				t.RawSetInt(j, v)
			}
			return t, rest
		case '~':
			set := L.CreateTable(0, n)
			for range n {
				var v lua.LValue
				v, rest = vm.respToLua(rest)
				if v != lua.LNil {
					set.RawSet(v, lua.LTrue)
				}
			}
			t := L.CreateTable(0, 1)
			t.RawSetString("set", set)
			return t, rest
		case '%':
			m := L.CreateTable(0, n)
			for range n {
				var k, v lua.LValue
				k, rest = vm.respToLua(rest)
				v, rest = vm.respToLua(rest)
				if k != lua.LNil {
					m.RawSet(k, v)
				}
			}
			t := L.CreateTable(0, 1)
			t.RawSetString("map", m)
			return t, rest
		default: // attributes: skipped, the reply follows
			for range 2 * n {
				_, rest = vm.respToLua(rest)
			}
			return vm.respToLua(rest)
		}
	case '_':
		return lua.LNil, rest
	case '#':
		return lua.LBool(len(line) == 1 && line[0] == 't'), rest
	case ',':
		f, _ := strconv.ParseFloat(string(line), 64)
		t := L.CreateTable(0, 1)
		t.RawSetString("double", lua.LNumber(f))
		return t, rest
	case '(':
		t := L.CreateTable(0, 1)
		t.RawSetString("big_number", lua.LString(line))
		return t, rest
	}
	return lua.LNil, nil
}

// maxReplyDepth bounds the nesting of a script's reply (a table that
// contains itself would otherwise never end).
const maxReplyDepth = 1000

// luaToResp writes a script's return value as Redis converts it.
func (vm *luaVM) luaToResp(w *resp.Writer, v lua.LValue, depth int) {
	if depth > maxReplyDepth {
		w.Error("ERR reached lua stack limit")
		return
	}
	switch x := v.(type) {
	case lua.LString:
		w.BulkString(string(x))
	case lua.LBool:
		switch {
		case vm.fake.w.Proto() == 3:
			w.Bool(bool(x))
		case bool(x):
			w.Int(1)
		default:
			w.Null()
		}
	case lua.LNumber:
		w.Int(luaInteger(float64(x)))
	case *lua.LTable:
		vm.tableToResp(w, x, depth)
	default:
		w.Null()
	}
}

// luaInteger is C's (long long) cast of a Lua number as Redis's x86-64
// build does it: truncation, and LLONG_MIN when out of range or NaN.
func luaInteger(f float64) int64 {
	if f != f || f >= 1<<63 || f < -(1<<63) {
		return math.MinInt64
	}
	return int64(f)
}

// pairsToResp writes the pairs of t, in next's order, as a map, or as a
// set of its keys.
func (vm *luaVM) pairsToResp(w *resp.Writer, t *lua.LTable, depth int, isMap bool) {
	n := 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n++
	}
	if isMap {
		w.Map(n)
	} else {
		w.Set(n)
	}
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		vm.luaToResp(w, k, depth+1)
		if isMap {
			vm.luaToResp(w, v, depth+1)
		}
	}
}

func (vm *luaVM) tableToResp(w *resp.Writer, t *lua.LTable, depth int) {
	if e, ok := t.RawGetString("err").(lua.LString); ok {
		w.Error(vm.withPosition(string(e), t))
		return
	}
	if ok, isStr := t.RawGetString("ok").(lua.LString); isStr {
		w.Status(string(ok))
		return
	}
	if d, ok := t.RawGetString("double").(lua.LNumber); ok {
		w.Double(float64(d))
		return
	}
	if bn, ok := t.RawGetString("big_number").(lua.LString); ok {
		w.BigNumber(strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, string(bn)))
		return
	}
	if vs, ok := t.RawGetString("verbatim_string").(*lua.LTable); ok {
		format, ok1 := vs.RawGetString("format").(lua.LString)
		str, ok2 := vs.RawGetString("string").(lua.LString)
		if ok1 && ok2 {
			w.Verbatim(string(format), []byte(str))
			return
		}
	}
	if m, ok := t.RawGetString("map").(*lua.LTable); ok {
		vm.pairsToResp(w, m, depth, true)
		return
	}
	if set, ok := t.RawGetString("set").(*lua.LTable); ok {
		vm.pairsToResp(w, set, depth, false)
		return
	}
	n := 0
	for t.RawGetInt(n+1) != lua.LNil {
		n++
	}
	w.Array(n)
	for j := 1; j <= n; j++ {
		vm.luaToResp(w, t.RawGetInt(j), depth+1)
	}
}
