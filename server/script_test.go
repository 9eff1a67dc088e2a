package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// Replies the busy tests expect, byte for byte.
const (
	busyReply   = "-" + errBusyScript + "\r\n"
	killedShape = "-ERR Script killed by user with SCRIPT KILL... script: %s, on @user_script:1.\r\n"
)

// spinScript loops until killed; spinWriteScript writes first.
const (
	spinScript      = "local i = 0 while true do i = i + 1 end"
	spinWriteScript = "redis.call('set', 'written', '1') while true do end"
)

// scriptStarted returns a setup for startServer and a channel that
// receives once each time a script starts running.
func scriptStarted() (func(*Server), <-chan struct{}) {
	started := make(chan struct{}, 16)
	return func(s *Server) {
		s.gate.onScript = func() { started <- struct{}{} }
	}, started
}

// evalAsync sends EVAL on its own connection and returns the channel its
// reply arrives on; the reading goroutine ends by the test's cleanup.
func evalAsync(t *testing.T, addr, script string, args ...string) <-chan string {
	t.Helper()
	conn := redistest.Dial(t, addr)
	require.Equal(t, "+PONG\r\n", conn.DoString("PING"))
	conn.SendCommand(append([]string{"EVAL", script}, args...)...)
	out := make(chan string, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = conn.Close()
		wg.Wait()
	})
	wg.Go(func() {
		reply, err := conn.ReadReply()
		if err != nil {
			out <- "read error: " + err.Error()
			return
		}
		out <- string(reply)
	})
	return out
}

// TestScriptBusyAndKill: past busy-reply-threshold other clients get BUSY
// instead of waiting, allow_busy commands run, SCRIPT KILL stops a script
// that has not written, and its caller gets Redis's error. With one event
// loop every client shares the loop that runs the script, which must serve
// them (and a connection opened meanwhile) while the script runs.
func TestScriptBusyAndKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"goroutine", Config{IOModel: "goroutine"}},
		{"epoll-one-loop", Config{IOModel: "epoll", IOThreads: 1}},
		{"epoll-two-loops", Config{IOModel: "epoll", IOThreads: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.IOModel == "epoll" && !loopsSupported() {
				t.Skip("no event loops on this platform")
			}
			tc.cfg.BusyReplyThreshold = 20 * time.Millisecond
			setup, started := scriptStarted()
			ts := startServer(t, tc.cfg, setup)
			other := redistest.Dial(t, ts.addr)
			require.Equal(t, "+PONG\r\n", other.DoString("PING"))

			done := evalAsync(t, ts.addr, spinScript, "0")
			<-started
			// The script holds the gate: this waits until it is busy, then
			// answers BUSY (no sleeping: the reply comes when it turns busy).
			assert.Equal(t, busyReply, other.DoString("GET", "k"))
			assert.Equal(t, busyReply, other.DoString("PING"))
			assert.Equal(t, busyReply, other.DoString("SHUTDOWN"), "SHUTDOWN without NOSAVE")
			// Allowed while busy.
			assert.Equal(t, "+RESET\r\n", other.DoString("RESET"))
			assert.Contains(t, other.DoString("HELLO", "2"), "proto")
			// MULTI is allowed while busy, EXEC is not: Redis's EXECABORT
			// names the BUSY.
			assert.Equal(t, "+OK\r\n", other.DoString("MULTI"))
			assert.Equal(t, "-EXECABORT Transaction discarded because of: "+errBusyScript+"\r\n", other.DoString("EXEC"))
			// A connection opened while busy is served too.
			late := redistest.Dial(t, ts.addr)
			assert.Equal(t, busyReply, late.DoString("EVAL", "return 1", "0"))

			assert.Equal(t, "+OK\r\n", late.DoString("SCRIPT", "KILL"))
			sha := sha1hex([]byte(spinScript))
			assert.Equal(t, fmt.Sprintf(killedShape, sha), <-done)
			assert.Equal(t, "-"+errNotBusy+"\r\n", other.DoString("SCRIPT", "KILL"))
			assert.Equal(t, "$-1\r\n", other.DoString("GET", "k"), "served normally again")
			assert.Equal(t, ":1\r\n", other.DoString("EVAL", "return 1", "0"))
		})
	}
}

// TestScriptUnkillable: a script that wrote cannot be killed by SCRIPT
// KILL; SHUTDOWN NOSAVE stops it and asks the server to shut down.
func TestScriptUnkillable(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		setup, started := scriptStarted()
		ts := startServer(t, Config{IOModel: model, BusyReplyThreshold: 20 * time.Millisecond}, setup)
		other := redistest.Dial(t, ts.addr)
		require.Equal(t, "+PONG\r\n", other.DoString("PING"))
		done := evalAsync(t, ts.addr, spinWriteScript, "0")
		<-started
		assert.Equal(t, "-"+errUnkillable+"\r\n", other.DoString("SCRIPT", "KILL"))
		assert.Equal(t, busyReply, other.DoString("GET", "written"))
		other.SendCommand("SHUTDOWN", "NOSAVE")
		other.ExpectClosed()
		select {
		case <-ts.srv.ShutdownRequested():
		case <-time.After(closeWait):
			t.Fatal("SHUTDOWN NOSAVE did not request a shutdown")
		}
		assert.Equal(t, fmt.Sprintf(killedShape, sha1hex([]byte(spinWriteScript))), <-done)
	})
}

// TestScriptCloseStopsScript: closing the server stops a running script
// (whatever it wrote), so that Close returns.
func TestScriptCloseStopsScript(t *testing.T) {
	setup, started := scriptStarted()
	ts := startServer(t, Config{BusyReplyThreshold: -1}, setup)
	done := evalAsync(t, ts.addr, spinWriteScript, "0")
	<-started
	require.NoError(t, ts.srv.Close())
	reply := <-done
	assert.True(t, strings.Contains(reply, "Script killed") || strings.HasPrefix(reply, "read error"), reply)
}

// TestScriptAtomic: another client's command waits for a script to end;
// it never sees the script's intermediate state. The script pauses (in a
// Go function the test adds) until the other command is known to wait.
func TestScriptAtomic(t *testing.T) {
	for _, tc := range []Config{{IOModel: "goroutine"}, {IOModel: "epoll", IOThreads: 2}} {
		t.Run(tc.IOModel, func(t *testing.T) {
			if tc.IOModel == "epoll" && !loopsSupported() {
				t.Skip("no event loops on this platform")
			}
			waiting := make(chan struct{})
			var once sync.Once
			setup, started := scriptStarted()
			ts := startServer(t, tc, setup, func(s *Server) {
				s.gate.onWait = func() { once.Do(func() { close(waiting) }) }
				vm := s.scripts.machine(s)
				vm.globals.RawSetString("test_pause", vm.L.NewFunction(func(L *lua.LState) int {
					select {
					case <-waiting:
						L.Push(lua.LTrue)
					case <-time.After(closeWait):
						L.Push(lua.LFalse)
					}
					return 1
				}))
			})
			// Two connections, so with two loops they are on different loops.
			other := redistest.Dial(t, ts.addr)
			done := evalAsync(t, ts.addr, "redis.call('set', 'k', 'partial') local waited = test_pause() redis.call('set', 'k', 'final') return tostring(waited)", "0")
			<-started
			assert.Equal(t, "$5\r\nfinal\r\n", other.DoString("GET", "k"))
			assert.Equal(t, "$4\r\ntrue\r\n", <-done, "GET waited for the script")
		})
	}
}

// TestScriptAtomicMany: concurrent scripts and plain commands on counters;
// each script increments two keys by the same amount, so no reader ever
// sees them differ.
func TestScriptAtomicMany(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	const script = "redis.call('incr', KEYS[1]) for i = 1, 200 do end redis.call('incr', KEYS[2]) return 1"
	var wg sync.WaitGroup
	for range 4 {
		rdb := newGoRedis(t, ts.addr, 2)
		wg.Go(func() {
			for range 100 {
				if err := rdb.Eval(ctx, script, []string{"a", "b"}).Err(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	rdb := newGoRedis(t, ts.addr, 3)
	for range 200 {
		vals, err := rdb.MGet(ctx, "a", "b").Result()
		require.NoError(t, err)
		require.Equal(t, vals[0], vals[1])
	}
	wg.Wait()
	vals, err := rdb.MGet(ctx, "a", "b").Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"400", "400"}, vals)
}

// phpredisRelease is the script phpredis runs to release a session lock.
const phpredisRelease = `if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end`

// TestScriptGoRedis runs the scripts frameworks send through go-redis's
// Script, which tries EVALSHA and falls back to EVAL on NOSCRIPT.
func TestScriptGoRedis(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			rdb := newGoRedis(t, ts.addr, proto)
			require.NoError(t, rdb.ScriptFlush(ctx).Err())
			release := redis.NewScript(phpredisRelease)

			require.NoError(t, rdb.Set(ctx, "PHPREDIS_SESSION:abc_LOCK", "host|pid", 0).Err())
			n, err := release.Run(ctx, rdb, []string{"PHPREDIS_SESSION:abc_LOCK"}, "other").Int64()
			require.NoError(t, err)
			assert.Equal(t, int64(0), n, "someone else's lock stays")
			n, err = release.Run(ctx, rdb, []string{"PHPREDIS_SESSION:abc_LOCK"}, "host|pid").Int64()
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			assert.Equal(t, int64(0), rdb.Exists(ctx, "PHPREDIS_SESSION:abc_LOCK").Val())
			exists, err := rdb.ScriptExists(ctx, release.Hash()).Result()
			require.NoError(t, err)
			assert.Equal(t, []bool{true}, exists, "EVAL cached it")

			_, err = rdb.EvalSha(ctx, "ffffffffffffffffffffffffffffffffffffffff", nil).Result()
			assert.EqualError(t, err, errNoScript)
			_, err = rdb.Eval(ctx, "return redis.call('nosuch')", nil).Result()
			assert.EqualError(t, err, "ERR Unknown Redis command called from script script: "+
				sha1hex([]byte("return redis.call('nosuch')"))+", on @user_script:1.")

			// Laravel's add: set with a TTL only if absent.
			add := redis.NewScript(`return redis.call('exists',KEYS[1])<1 and redis.call('setex',KEYS[1],ARGV[2],ARGV[1])`)
			ok, err := add.Run(ctx, rdb, []string{"laravel:k"}, "v", 60).Result()
			require.NoError(t, err)
			assert.Equal(t, "OK", ok)
			_, err = add.Run(ctx, rdb, []string{"laravel:k"}, "v", 60).Result()
			assert.ErrorIs(t, err, redis.Nil, "false becomes a nil reply")
			require.NoError(t, rdb.Del(ctx, "laravel:k").Err())
		})
	}
}

// TestScriptASPNetSession is ASP.NET Core's (≤ .NET 8) session write: HSET
// of three fields and EXPIRE, in one EVAL; it needs the hash commands.
func TestScriptASPNetSession(t *testing.T) {
	ts := startServer(t, Config{})
	if ts.srv.cmds["hset"] == nil {
		t.Skip("HSET is not in this tree yet")
	}
	ctx := context.Background()
	const setScript = `
redis.call('HSET', KEYS[1], 'absexp', ARGV[1], 'sldexp', ARGV[2], 'data', ARGV[4])
if ARGV[3] ~= '-1' then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1`
	rdb := newGoRedis(t, ts.addr, 2)
	n, err := redis.NewScript(setScript).Run(ctx, rdb, []string{"aspnet:sess"}, "-1", "12000000000", "1200", "payload").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	vals, err := rdb.HMGet(ctx, "aspnet:sess", "absexp", "sldexp", "data").Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"-1", "12000000000", "payload"}, vals)
	ttl, err := rdb.TTL(ctx, "aspnet:sess").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(1200*time.Second), float64(ttl), float64(2*time.Second))
}

// TestScriptReplyConversions checks conversions a differential script
// cannot reach: a self-referencing table, a cjson round trip of nesting
// limits, and the args buffer reused between redis.call calls.
func TestScriptReplyConversions(t *testing.T) {
	ts := startServer(t, Config{})
	conn := redistest.Dial(t, ts.addr)
	// Nested one-element arrays down to an error, as Redis answers (deeper
	// than redistest's parser reads).
	reply, closed := sendRaw(t, conn.NetConn(), string(redistest.EncodeCommand("EVAL", "local t = {} t[1] = t return t", "0")), false)
	require.False(t, closed)
	assert.Equal(t, strings.Repeat("*1\r\n", maxReplyDepth+1)+"-ERR reached lua stack limit\r\n", reply)

	assert.Equal(t, "*3\r\n$3\r\nabc\r\n$1\r\n7\r\n$5\r\nxyzzy\r\n",
		conn.DoString("EVAL", "redis.call('set', 'a', 'abc') redis.call('set', 'b', 7) redis.call('set', 'c', 'xyzzy') return redis.call('mget', 'a', 'b', 'c')", "0"))
	assert.Contains(t, conn.DoString("EVAL", "local t = {} local c = t for i = 1, 1001 do c[1] = {} c = c[1] end return cjson.encode(t)", "0"),
		"Cannot serialise, excessive nesting (1001)")
}

// TestScriptMainChunkArg: a script's main chunk has no arg table (Lua 5.1
// builds none; compileScript stops gopher-lua's), while a vararg function
// in it still has one. Replies as redis-server 7.0.15 gives them.
func TestScriptMainChunkArg(t *testing.T) {
	ts := startServer(t, Config{})
	conn := redistest.Dial(t, ts.addr)
	for _, tc := range []struct{ script, want string }{
		{"local x return type(x)", "$3\r\nnil\r\n"},
		{"local a, b return {type(a), type(b), select('#', ...)}", "*3\r\n$3\r\nnil\r\n$3\r\nnil\r\n:0\r\n"},
		{"local function f(...) return arg.n end return f(1, 2)", ":2\r\n"},
	} {
		assert.Equal(t, tc.want, conn.DoString("EVAL", tc.script, "0"), tc.script)
	}
	assert.Contains(t, conn.DoString("EVAL", "return type(arg)", "0"), "Script attempted to access nonexistent global variable 'arg'")
}

// TestScriptLibrariesIsolated: what one script does to the interpreter's
// shared tables cannot leak into the next run.
func TestScriptLibrariesIsolated(t *testing.T) {
	ts := startServer(t, Config{})
	conn := redistest.Dial(t, ts.addr)
	for _, attack := range []string{
		"string.len = nil", "rawset(string, 'len', nil)", "redis.call = nil", "rawset(redis, 'call', nil)",
		"setmetatable(_G, nil)", "getmetatable(_G).__index = nil", "_G.KEYS = nil", "table.insert = nil",
	} {
		reply := conn.DoString("EVAL", attack, "0")
		assert.True(t, strings.HasPrefix(reply, "-"), "%s: %q", attack, reply)
	}
	assert.Equal(t, ":3\r\n", conn.DoString("EVAL", "return string.len('abc')", "0"))
	assert.Equal(t, "+PONG\r\n", conn.DoString("EVAL", "return redis.call('ping')", "0"))
	assert.Equal(t, "$1\r\nk\r\n", conn.DoString("EVAL", "return KEYS[1]", "1", "k"))
}

// TestBusyReplyThresholdConfig: the flag's value, CONFIG GET/SET under
// both names, and 0 meaning never busy.
func TestBusyReplyThresholdConfig(t *testing.T) {
	ts := startServer(t, Config{BusyReplyThreshold: 1500 * time.Millisecond})
	conn := redistest.Dial(t, ts.addr)
	assert.Equal(t, "*2\r\n$20\r\nbusy-reply-threshold\r\n$4\r\n1500\r\n", conn.DoString("CONFIG", "GET", "busy-reply-threshold"))
	assert.Equal(t, "+OK\r\n", conn.DoString("CONFIG", "SET", "lua-time-limit", "300"))
	assert.Equal(t, "*2\r\n$14\r\nlua-time-limit\r\n$3\r\n300\r\n", conn.DoString("CONFIG", "GET", "lua-time-limit"))
	assert.Equal(t, 300*time.Millisecond, ts.srv.conf.busyReplyThreshold())
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'busy-reply-threshold') - argument must be between 0 and 9223372036854775807 inclusive\r\n",
		conn.DoString("CONFIG", "SET", "busy-reply-threshold", "-1"))

	def := startServer(t, Config{})
	assert.Equal(t, 5*time.Second, def.srv.conf.busyReplyThreshold())
	never := startServer(t, Config{BusyReplyThreshold: -1})
	assert.Equal(t, time.Duration(0), never.srv.conf.busyReplyThreshold())
}

// TestLrand48 pins Redis's math.random sequence (values from redis-server
// 7.0.15 after math.randomseed(7)).
func TestLrand48(t *testing.T) {
	var r lrand48
	r.seed(7)
	f := float64(r.next()%lrand48Max) / lrand48Max
	assert.Equal(t, 267.0, float64(int(f*1000))+1)
}

func TestVersionNum(t *testing.T) {
	assert.Equal(t, 0x070204, versionNum("7.2.4"))
	assert.Equal(t, 0x07000f, versionNum("7.0.15"))
}

func TestLuaSyntaxError(t *testing.T) {
	for src, want := range map[string]string{
		"return 1 +":             "user_script:1: unexpected symbol near '<eof>'",
		"return +":               "user_script:1: unexpected symbol near '+'",
		"local x = 1\nlocal y =": "user_script:2: unexpected symbol near '<eof>'",
		"return 'abc":            "user_script:1: unfinished string near '<eof>'",
	} {
		sc, msg := compileScript("sha", []byte(src))
		require.Nil(t, sc, src)
		assert.Equal(t, "ERR Error compiling script (new function): "+want, msg, src)
	}
}

// BenchmarkEvalShaRelease is phpredis's lock release by EVALSHA, through
// dispatch: the lock is set again before each release.
func BenchmarkEvalShaRelease(b *testing.B) {
	srv, c := benchClient(b)
	sha := sha1hex([]byte(phpredisRelease))
	srv.dispatch(c, [][]byte{[]byte("SCRIPT"), []byte("LOAD"), []byte(phpredisRelease)})
	require.Equal(b, "$40\r\n"+sha+"\r\n", string(c.w.Bytes()))
	set := splitArgs("SET PHPREDIS_SESSION:abc_LOCK host|1234")
	release := splitArgs("EVALSHA " + sha + " 1 PHPREDIS_SESSION:abc_LOCK host|1234")
	b.ReportAllocs()
	for b.Loop() {
		c.w.Reset()
		srv.dispatch(c, set)
		srv.dispatch(c, release)
	}
	if got := string(c.w.Bytes()); got != "+OK\r\n:1\r\n" {
		b.Fatalf("reply %q", got)
	}
}

// TestGateShared: work outside dispatch under the gate waits for an
// exclusive section, but not for a script past busy-reply-threshold.
func TestGateShared(t *testing.T) {
	setup, started := scriptStarted()
	ts := startServer(t, Config{BusyReplyThreshold: 20 * time.Millisecond}, setup)
	ran := false
	assert.True(t, ts.srv.shared(func() { ran = true }))
	assert.True(t, ran)

	done := evalAsync(t, ts.addr, spinScript, "0")
	<-started
	ran = false
	assert.False(t, ts.srv.shared(func() { ran = true }), "returns once the script is busy")
	assert.False(t, ran)
	kill := redistest.Dial(t, ts.addr)
	assert.Equal(t, "+OK\r\n", kill.DoString("SCRIPT", "KILL"))
	<-done
	assert.True(t, ts.srv.shared(func() { ran = true }))
	assert.True(t, ran)
}

// FuzzScript runs arbitrary scripts with arbitrary keys and arguments:
// each must answer exactly one well-formed reply (RESP2 and RESP3) without
// reaching the panic handler, and the server must answer PING afterwards.
// A script still running after a second is killed.
func FuzzScript(f *testing.F) {
	for _, seed := range []string{
		"return {1, 'two', {3, {4}}, nil, 5}",
		"return {map = {a = 1, [2] = {set = {x = true}}}, double = 1.5}",
		"redis.setresp(3) return {redis.call('mget', KEYS[1], 'x'), redis.call('incrbyfloat', 'f', '1.5')}",
		"return redis.pcall(ARGV[1] or 'nosuch', KEYS[1] or 'k')",
		"return cjson.decode(ARGV[1] or '[1,{\"a\":null}]')",
		"return cjson.encode({KEYS, ARGV, {n = 1/3}})",
		"return string.format(ARGV[1] or '%5.2f %q', 1.5, 'x')",
		"return {bit.tohex(-1), bit.band(255, 15), math.random(10)}",
		"local t = {} t[1] = t return t",
		"error({err = ARGV[1]})",
		"while true do end",
		"return redis.error_reply(ARGV[1] or 'E x')",
		"return {verbatim_string = {format = 'txt', string = 's'}, big_number = '1'}",
	} {
		f.Add(seed, "k", "%d", uint8(0))
	}
	store, err := ttl.New(ttl.Config{})
	require.NoError(f, err)
	f.Cleanup(func() { _ = store.Close() })
	var errs atomic.Int64
	srv, err := New(Config{Logger: slog.New(countingHandler{&errs}), ProtoMaxBulkLen: 1 << 20, BusyReplyThreshold: -1}, store)
	require.NoError(f, err)
	a, b := net.Pipe()
	f.Cleanup(func() { a.Close(); b.Close() })
	c := srv.newClient(a)
	f.Fuzz(func(t *testing.T, script, key, arg string, mode uint8) {
		store.Flush(-1)
		c.setProto(2 + int(mode&1))
		cmd := "EVAL"
		if mode&2 != 0 {
			cmd = "EVAL_RO"
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			select {
			case <-stop:
			case <-time.After(time.Second):
				srv.gate.st.Lock()
				run := srv.gate.script
				srv.gate.st.Unlock()
				if run != nil {
					srv.killScript(run)
				}
			}
		})
		c.w.Reset()
		before := errs.Load()
		srv.dispatch(c, [][]byte{[]byte(cmd), []byte(script), []byte("1"), []byte(key), []byte(arg)})
		close(stop)
		wg.Wait()
		require.Equal(t, before, errs.Load(), "script %q reached the panic handler", script)
		out := c.w.Bytes()
		// A table nested deeper than redistest reads (a table holding
		// itself) ends in Redis's error, after maxReplyDepth arrays.
		if deep := "-ERR reached lua stack limit\r\n"; !bytes.HasSuffix(out, []byte(deep)) || len(out) < (maxReplyDepth+1)*4 {
			n, err := redistest.ReplyLen(out)
			require.NoError(t, err, "script %q: malformed reply %.200q", script, out)
			require.Equal(t, len(out), n, "script %q: more than one reply: %.200q", script, out)
		}
		c.w.Reset()
		srv.dispatch(c, [][]byte{[]byte("PING")})
		require.Equal(t, "+PONG\r\n", string(c.w.Bytes()))
	})
}
