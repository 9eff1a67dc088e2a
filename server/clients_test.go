package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests prove that real Redis client libraries work unchanged against
// sessiond for string-based sessions: each client connects with its own
// handshake (AUTH or HELLO 3 AUTH, CLIENT SETNAME, CLIENT SETINFO, SELECT,
// INFO probes), logs in (SET … EX / SETEX), reads with sliding expiry
// (GETEX EX, GET + EXPIRE), checks the TTL, reads a missing key, iterates
// with SCAN, gets a wrong-arity error as its own error type, pipelines and
// logs out (DEL).
//
// redigo runs in-process. The other clients (node-redis 4 and 6, ioredis 5
// and 6, redis-py, phpredis with PHP's session handler, redis-rb) run as
// scripts under testdata/clients, each printing a transcript that is
// compared line by line. A subtest skips when its runtime or library is
// missing (fails, with SESSIOND_REQUIRE_CLIENTS=1); .ci/run installs them.
//
// Every client talks to sessiond through a recording proxy, so a test also
// sees the client's handshake on the wire, every command sessiond answered
// with an error, and whether a pipeline really was sent before its first
// reply came back. Session frameworks built on these clients (phpredis's
// locking handler, hash-based stores, scs's MULTI/EXEC) are driven in
// frameworks_test.go.

const (
	clientsPassword = "s3cret"
	clientsDB       = 2
	clientsTimeout  = 30 * time.Second
)

// ---- recording proxy ----

// wireChunk is one read from a connection: the stream's length after it and
// the proxy-wide order in which it was recorded.
type wireChunk struct {
	end int
	seq int64
}

// wireStream is the bytes of one direction of a connection.
type wireStream struct {
	buf    bytes.Buffer
	chunks []wireChunk
}

// seqAt returns the order of the chunk holding byte off.
func (s *wireStream) seqAt(off int) int64 {
	for _, c := range s.chunks {
		if off < c.end {
			return c.seq
		}
	}
	return -1
}

type wireConn struct {
	req, rep wireStream // client to server, server to client
	fired    map[string]bool
	hold     bool // delay the next reply chunk
}

// recorder is a loopback TCP proxy in front of a server that keeps every
// byte both ways. Each chunk is recorded before it is forwarded, so a
// reply's chunk is always recorded after the request chunk it answers.
//
// The first request chunk naming one of holdKeys on a connection makes the
// proxy hold the next reply chunk back for holdDelay: a client that
// pipelines sends the rest of its pipeline meanwhile, one that waits for
// each reply cannot, so assertPipelined tells them apart however the
// client splits its writes.
type recorder struct {
	ln       net.Listener
	target   string
	holdKeys [][]byte
	wg       sync.WaitGroup
	mu       sync.Mutex
	seq      int64
	conns    []*wireConn
	socks    []net.Conn
	closed   bool
}

const holdDelay = 300 * time.Millisecond

func startRecorder(t *testing.T, target string, holdKeys ...string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &recorder{ln: ln, target: target}
	for _, k := range holdKeys {
		r.holdKeys = append(r.holdKeys, []byte("\r\n"+k+"\r\n"))
	}
	r.wg.Go(r.accept)
	t.Cleanup(r.stop)
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

func (r *recorder) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		wc := &wireConn{fired: map[string]bool{}}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		r.conns = append(r.conns, wc)
		r.socks = append(r.socks, c, s)
		r.mu.Unlock()
		r.wg.Go(func() { r.pump(s, c, wc, true) })
		r.wg.Go(func() { r.pump(c, s, wc, false) })
	}
}

// pump copies src to dst, recording each chunk first; when either side is
// done it closes both.
func (r *recorder) pump(dst, src net.Conn, wc *wireConn, request bool) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	rec := &wc.rep
	if request {
		rec = &wc.req
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			hold := !request && wc.hold
			if hold {
				wc.hold = false
			}
			r.mu.Unlock()
			if hold {
				time.Sleep(holdDelay)
			}
			r.mu.Lock()
			r.seq++
			from := rec.buf.Len()
			rec.buf.Write(buf[:n])
			rec.chunks = append(rec.chunks, wireChunk{end: rec.buf.Len(), seq: r.seq})
			if request {
				for _, k := range r.holdKeys {
					// The key may straddle two chunks.
					tail := rec.buf.Bytes()[max(0, from-len(k)):]
					if !wc.fired[string(k)] && bytes.Contains(tail, k) {
						wc.fired[string(k)] = true
						wc.hold = true
					}
				}
			}
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stop closes the listener and every proxied connection and waits for the
// proxy's goroutines.
func (r *recorder) stop() {
	r.mu.Lock()
	r.closed = true
	socks := r.socks
	r.mu.Unlock()
	_ = r.ln.Close()
	for _, c := range socks {
		_ = c.Close()
	}
	r.wg.Wait()
}

// exchange is one command and what sessiond answered.
type exchange struct {
	conn     int
	args     []string
	errReply string // the error's text, or "" for any other reply
	reqEnd   int    // offset just past the command in the request stream
	repStart int    // offset of its reply in the reply stream (-1: none)
}

func (e exchange) String() string {
	s := strings.Join(e.args, " ")
	if e.errReply != "" {
		s += " -> " + e.errReply
	}
	return s
}

// wireValue is a parsed RESP2/RESP3 value: kind is its type byte.
type wireValue struct {
	kind  byte
	str   string
	elems []wireValue
}

// parseWire parses the RESP value at b[i:], returning it and the offset
// after it. A RESP3 attribute is skipped and the value it annotates
// returned.
func parseWire(b []byte, i int) (wireValue, int, error) {
	eol := bytes.Index(b[i:], []byte("\r\n"))
	if eol < 0 {
		return wireValue{}, 0, io.ErrUnexpectedEOF
	}
	if eol == 0 {
		return wireValue{}, 0, fmt.Errorf("empty RESP line at %d", i)
	}
	kind, line, next := b[i], string(b[i+1:i+eol]), i+eol+2
	switch kind {
	case '+', '-', ':', ',', '#', '(', '_':
		return wireValue{kind: kind, str: line}, next, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(line)
		if err != nil {
			return wireValue{}, 0, fmt.Errorf("bad length %q at %d", line, i)
		}
		if n < 0 {
			return wireValue{kind: kind}, next, nil
		}
		if next+n+2 > len(b) {
			return wireValue{}, 0, io.ErrUnexpectedEOF
		}
		return wireValue{kind: kind, str: string(b[next : next+n])}, next + n + 2, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(line)
		if err != nil {
			return wireValue{}, 0, fmt.Errorf("bad count %q at %d", line, i)
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		v := wireValue{kind: kind}
		for range max(n, 0) {
			var e wireValue
			if e, next, err = parseWire(b, next); err != nil {
				return wireValue{}, 0, err
			}
			v.elems = append(v.elems, e)
		}
		if kind == '|' {
			return parseWire(b, next)
		}
		return v, next, nil
	}
	return wireValue{}, 0, fmt.Errorf("unknown RESP type %q at %d (inline commands are not expected)", kind, i)
}

// exchanges pairs every command the clients sent with its reply, connection
// by connection, after the clients are done. RESP3 pushes are not replies.
func (r *recorder) exchanges(t *testing.T) []exchange {
	t.Helper()
	r.stop()
	var out []exchange
	for ci, c := range r.conns {
		req, rep := c.req.buf.Bytes(), c.rep.buf.Bytes()
		var cmds []exchange
		for off := 0; off < len(req); {
			v, next, err := parseWire(req, off)
			require.NoError(t, err, "conn %d: request stream", ci)
			require.Equal(t, byte('*'), v.kind, "conn %d: request at %d is not a multibulk", ci, off)
			ex := exchange{conn: ci, reqEnd: next, repStart: -1}
			for _, a := range v.elems {
				ex.args = append(ex.args, a.str)
			}
			cmds = append(cmds, ex)
			off = next
		}
		n := 0
		for off := 0; off < len(rep); {
			v, next, err := parseWire(rep, off)
			require.NoError(t, err, "conn %d: reply stream", ci)
			if v.kind != '>' {
				require.Less(t, n, len(cmds), "conn %d: more replies than commands", ci)
				cmds[n].repStart = off
				if v.kind == '-' || v.kind == '!' {
					cmds[n].errReply = v.str
				}
				n++
			}
			off = next
		}
		out = append(out, cmds...)
	}
	return out
}

// handshake returns the commands the client sent on its first connection
// before the script's first own command, CLIENT INFO.
func handshake(exs []exchange) []string {
	var hs []string
	for _, e := range exs {
		if e.conn != 0 || (len(e.args) == 2 && strings.EqualFold(e.args[0], "client") && strings.EqualFold(e.args[1], "info")) {
			break
		}
		hs = append(hs, e.String())
	}
	return hs
}

// errorReplies lists the commands sessiond answered with an error.
func errorReplies(exs []exchange) []string {
	var errs []string
	for _, e := range exs {
		if e.errReply != "" {
			errs = append(errs, e.String())
		}
	}
	return errs
}

// assertPipelined checks that the client sent every command from first to
// last (matched by their first two arguments, case-insensitively) before
// sessiond's reply to first reached it: a real pipeline, not a loop of
// round trips. The recorder must hold replies for first's key (its second
// argument).
func assertPipelined(t *testing.T, r *recorder, exs []exchange, first, last []string) {
	t.Helper()
	find := func(want []string) int {
		return slices.IndexFunc(exs, func(e exchange) bool {
			return len(e.args) >= len(want) && slices.EqualFunc(e.args[:len(want)], want, strings.EqualFold)
		})
	}
	i, j := find(first), find(last)
	require.True(t, i >= 0 && j >= i, "pipeline %v..%v not found in %v", first, last, exs)
	require.Equal(t, exs[i].conn, exs[j].conn)
	c := r.conns[exs[i].conn]
	require.GreaterOrEqual(t, exs[i].repStart, 0, "no reply to %v", first)
	sent := c.req.seqAt(exs[j].reqEnd - 1)
	replied := c.rep.seqAt(exs[i].repStart)
	assert.Less(t, sent, replied, "%v was sent only after the reply to %v arrived: not pipelined", last, first)
}

// ---- redigo, in process ----

// TestClientRedigo runs the session flow with redigo (RESP2) through a
// redis.Pool, the way Go web apps use it.
func TestClientRedigo(t *testing.T) {
	ts := startServer(t, Config{RequirePass: clientsPassword})
	rec := startRecorder(t, ts.addr, "sess:p")
	pool := &redigo.Pool{
		MaxIdle: 2,
		Dial: func() (redigo.Conn, error) {
			return redigo.Dial("tcp", rec.addr(),
				redigo.DialPassword(clientsPassword),
				redigo.DialDatabase(clientsDB),
				redigo.DialClientName("app-redigo"),
				redigo.DialConnectTimeout(5*time.Second),
				redigo.DialReadTimeout(5*time.Second),
				redigo.DialWriteTimeout(5*time.Second))
		},
		TestOnBorrow: func(c redigo.Conn, _ time.Time) error {
			_, err := c.Do("PING")
			return err
		},
	}
	c := pool.Get()

	info, err := redigo.String(c.Do("CLIENT", "INFO"))
	require.NoError(t, err)
	assert.Contains(t, info, " name=app-redigo ")
	assert.Contains(t, info, " db=2 ")
	assert.Contains(t, info, " resp=2 ")
	server, err := redigo.String(c.Do("INFO", "server"))
	require.NoError(t, err)
	assert.Contains(t, server, "redis_mode:standalone")

	// Login, then a request sliding the expiry both ways.
	ok, err := redigo.String(c.Do("SET", "sess:abc", "uid=42;name=ana", "EX", 1800))
	require.NoError(t, err)
	assert.Equal(t, "OK", ok)
	ok, err = redigo.String(c.Do("SETEX", "sess:def", 60, "uid=7"))
	require.NoError(t, err)
	assert.Equal(t, "OK", ok)
	v, err := redigo.String(c.Do("GETEX", "sess:abc", "EX", 1800))
	require.NoError(t, err)
	assert.Equal(t, "uid=42;name=ana", v)
	ttl, err := redigo.Int(c.Do("TTL", "sess:abc"))
	require.NoError(t, err)
	assert.InDelta(t, 1800, ttl, 10)
	v, err = redigo.String(c.Do("GET", "sess:def"))
	require.NoError(t, err)
	assert.Equal(t, "uid=7", v)
	slid, err := redigo.Bool(c.Do("EXPIRE", "sess:def", 1800))
	require.NoError(t, err)
	assert.True(t, slid)
	ttl, err = redigo.Int(c.Do("TTL", "sess:def"))
	require.NoError(t, err)
	assert.InDelta(t, 1800, ttl, 10)

	// A missing session is redigo's ErrNil.
	_, err = redigo.String(c.Do("GET", "sess:nope"))
	assert.ErrorIs(t, err, redigo.ErrNil)
	n, err := redigo.Int(c.Do("DBSIZE"))
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// SCAN iteration.
	want := map[string]bool{}
	for i := range 30 {
		k := fmt.Sprintf("sess:scan:%02d", i)
		want[k] = true
		_, err := c.Do("SET", k, "x", "EX", 600)
		require.NoError(t, err)
	}
	got := map[string]bool{}
	for cursor, calls := 0, 0; ; calls++ {
		require.Less(t, calls, 100, "SCAN does not terminate")
		vals, err := redigo.Values(c.Do("SCAN", cursor, "MATCH", "sess:scan:*", "COUNT", 7))
		require.NoError(t, err)
		var keys []string
		_, err = redigo.Scan(vals, &cursor, &keys)
		require.NoError(t, err)
		for _, k := range keys {
			assert.False(t, got[k], "SCAN returned %s twice", k)
			got[k] = true
		}
		if cursor == 0 {
			break
		}
	}
	assert.Equal(t, want, got)

	// A wrong-arity command is a redigo.Error, and the connection goes on.
	_, err = c.Do("GET", "a", "b")
	var rerr redigo.Error
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, "ERR wrong number of arguments for 'get' command", rerr.Error())
	assert.NoError(t, c.Err())

	// Pipelining: Send buffers, Flush writes, Receive reads in order.
	require.NoError(t, c.Send("SET", "sess:p", "uid=1", "EX", 600))
	require.NoError(t, c.Send("GETEX", "sess:p", "EX", 900))
	require.NoError(t, c.Send("TTL", "sess:p"))
	require.NoError(t, c.Send("DEL", "sess:p"))
	require.NoError(t, c.Flush())
	replies := make([]any, 4)
	for i := range replies {
		replies[i], err = c.Receive()
		require.NoError(t, err)
	}
	assert.Equal(t, []any{"OK", []byte("uid=1"), int64(900), int64(1)}, replies)

	// Logout.
	n, err = redigo.Int(c.Do("DEL", "sess:abc"))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = redigo.String(c.Do("GET", "sess:abc"))
	assert.ErrorIs(t, err, redigo.ErrNil)

	// Back to the pool and out again: TestOnBorrow PINGs the idle
	// connection, which still has its database.
	require.NoError(t, c.Close())
	c = pool.Get()
	n, err = redigo.Int(c.Do("DBSIZE"))
	require.NoError(t, err)
	assert.Equal(t, 31, n)
	require.NoError(t, c.Close())
	require.NoError(t, pool.Close())

	exs := rec.exchanges(t)
	assert.Equal(t, []string{"AUTH s3cret", "CLIENT SETNAME app-redigo", "SELECT 2"}, handshake(exs))
	require.GreaterOrEqual(t, len(exs), 2)
	assert.Equal(t, []string{"PING", "DBSIZE"}, []string{exs[len(exs)-2].String(), exs[len(exs)-1].String()})
	assert.Zero(t, exs[len(exs)-1].conn, "the pool reused its connection")
	assert.Equal(t, []string{"GET a b -> ERR wrong number of arguments for 'get' command"}, errorReplies(exs))
	assertPipelined(t, rec, exs, []string{"SET", "sess:p"}, []string{"DEL", "sess:p"})
}

// ---- clients in other languages, as scripts ----

// scriptClient is one client library driven through a script under
// testdata/clients.
type scriptClient struct {
	name  string
	dir   string   // under testdata/clients
	cmd   []string // the script's command line, run in dir
	probe []string // exits 0 when the runtime and library are there
	hint  string   // how to install them, for the skip message
	env   []string // more environment for the script

	transcript []string      // the script's exact output
	handshake  []string      // the commands before the script's own first one
	errors     []string      // every command sessiond answered with an error
	pipelines  [][2][]string // first and last command of each pipeline
}

// Lines every RESP client prints the same way, once values are rendered
// in the client's language.
const (
	wrongArity = "ERR wrong number of arguments for 'get' command"
	errGetAB   = "GET a b -> " + wrongArity
	errGetXY   = "GET x y -> " + wrongArity
)

// The scripts' pipelines: an explicit one and, for node-redis, the
// commands issued in one tick.
var (
	pipeSetDel  = [2][]string{{"SET", "sess:p"}, {"DEL", "sess:p"}}
	pipeAutoGet = [2][]string{{"GET", "sess:auto"}, {"EXISTS", "sess:def"}}
)

// nodeLines is the transcript of the node scripts, whose values render
// as JSON.
func nodeLines(connect, expire, errLine, pipeline string, extra ...string) []string {
	lines := []string{
		"connect: " + connect,
		"info: standalone",
		`ping: "PONG"`,
		`login: "OK"`,
		`setex: "OK"`,
		`getex: "uid=42;name=ana"`,
		"ttl: ok",
		`get: "uid=7"`,
		"expire: " + expire,
		"ttl-slid: ok",
		"missing: null",
		"dbsize: 2",
		"scan: 30 keys, 30 distinct",
		"error: " + errLine,
		"pipeline: " + pipeline,
	}
	lines = append(lines, extra...)
	return append(lines, "logout: 1", "after-logout: null", "quit: ok")
}

func scriptClients() []scriptClient {
	nodeProbe := []string{"node", "-e", "for (const m of ['redis4', 'redis6', 'ioredis', 'ioredis5']) require(m)"}
	nodeHint := "node and npm ci in server/testdata/clients/node"
	return []scriptClient{
		{
			name: "node-redis4", dir: "node", cmd: []string{"node", "redis4.js"}, probe: nodeProbe, hint: nodeHint,
			transcript: nodeLines("name=app-node-redis4 db=2 resp=2 lib-name=node-redis", "true",
				"ErrorReply true "+wrongArity, `"OK" "uid=1" 900 1`,
				`auto-pipeline: null "uid=42;name=ana" 1`),
			handshake: []string{
				"AUTH s3cret",
				"CLIENT SETNAME app-node-redis4",
				"CLIENT SETINFO LIB-NAME node-redis",
				"CLIENT SETINFO LIB-VER 1.6.0", // sic: @redis/client 1.6.1 reports 1.6.0
				"SELECT 2",
			},
			errors:    []string{errGetAB},
			pipelines: [][2][]string{pipeSetDel, pipeAutoGet},
		},
		{
			name: "node-redis6-resp3", dir: "node", cmd: []string{"node", "redis6.js"}, probe: nodeProbe, hint: nodeHint,
			transcript: nodeLines("name=app-node-redis6-resp3 db=2 resp=3 lib-name=node-redis", "1",
				"SimpleError true "+wrongArity, `"OK" "uid=1" 900 1`,
				`auto-pipeline: null "uid=42;name=ana" 1`),
			handshake: []string{
				"HELLO 3 AUTH default s3cret SETNAME app-node-redis6-resp3",
				"SELECT 2",
				"CLIENT SETINFO LIB-VER 6.3.1",
				"CLIENT SETINFO LIB-NAME node-redis",
				// Redis Enterprise's maintenance push notifications; open-source
				// Redis 7 answers the same error, which node-redis ignores.
				"CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type external-ip -> ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.",
			},
			errors: []string{
				"CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type external-ip -> ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.",
				errGetAB,
			},
			pipelines: [][2][]string{pipeSetDel, pipeAutoGet},
		},
		{
			name: "ioredis6-resp3", dir: "node", cmd: []string{"node", "ioredis.js", "ioredis"}, probe: nodeProbe, hint: nodeHint,
			transcript: nodeLines("name=app-ioredis6-resp3 db=2 resp=3 lib-name=ioredis", "1",
				"SimpleError true "+wrongArity, `"OK" "uid=1" 900 SimpleError 1`),
			handshake: []string{
				"hello 3 AUTH default s3cret",
				"select 2",
				"client setname app-ioredis6-resp3",
				"client SETINFO LIB-VER 6.0.0",
				"client SETINFO LIB-NAME ioredis",
				"info", // the ready check
			},
			errors:    []string{errGetAB, errGetXY},
			pipelines: [][2][]string{pipeSetDel},
		},
		{
			name: "ioredis5", dir: "node", cmd: []string{"node", "ioredis.js", "ioredis5"}, probe: nodeProbe, hint: nodeHint,
			transcript: nodeLines("name=app-ioredis5 db=2 resp=2 lib-name=ioredis", "1",
				"ReplyError true "+wrongArity, `"OK" "uid=1" 900 ReplyError 1`),
			handshake: []string{
				"auth s3cret",
				"select 2",
				"client setname app-ioredis5",
				"client SETINFO LIB-NAME ioredis",
				"client SETINFO LIB-VER 5.9.3",
				"info", // the ready check
			},
			errors:    []string{errGetAB, errGetXY},
			pipelines: [][2][]string{pipeSetDel},
		},
		{
			name: "redis-py", dir: "python", cmd: []string{"/usr/bin/python3", "session_flow.py"},
			probe: []string{"/usr/bin/python3", "-c", "import redis"},
			hint:  "apt-get install python3-redis",
			env:   []string{"PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1"},
			transcript: []string{
				"connect: name=app-redis-py db=2 resp=2 lib-name=",
				"info: standalone",
				"ping: True",
				"login: True",
				"setex: True",
				"getex: 'uid=42;name=ana'",
				"ttl: ok",
				"get: 'uid=7'",
				"expire: True",
				"ttl-slid: ok",
				"missing: None",
				"dbsize: 2",
				"scan: 30 keys, 30 distinct",
				"error: ResponseError wrong number of arguments for 'get' command",
				"pipeline: True 'uid=1' 900 ResponseError 1",
				"logout: 1",
				"after-logout: None",
				"quit: ok",
			},
			handshake: []string{"AUTH s3cret", "CLIENT SETNAME app-redis-py", "SELECT 2"},
			errors:    []string{errGetAB, errGetXY},
			pipelines: [][2][]string{pipeSetDel},
		},
		{
			name: "phpredis", dir: "php", cmd: []string{"php", "session_flow.php"},
			probe: []string{"php", "-r", "exit(extension_loaded('redis') ? 0 : 1);"},
			hint:  "apt-get install php-cli php-redis",
			transcript: []string{
				"connect: name=app-phpredis db=2 resp=2 lib-name=",
				"info: standalone",
				"ping: true",
				"login: true",
				"setex: true",
				"getex: 'uid=42;name=ana'",
				"ttl: ok",
				"get: 'uid=7'",
				"expire: true",
				"ttl-slid: ok",
				"missing: false",
				"dbsize: 2",
				"scan: 30 keys, 30 distinct",
				`error: false 'ERR wrong number of arguments for \'get\' command'`,
				"pipeline: true 'uid=1' 900 1",
				"logout: 1",
				"after-logout: false",
				"php-session-id: 26 chars",
				`php-session-stored: 'uid|i:42;name|s:3:"ana";'`,
				"php-session-ttl: ok",
				"php-session-read: array (",
				"  'uid' => 42,",
				"  'name' => 'ana',",
				")",
				"php-session-slid: ok",
				`php-session-updated: 'uid|i:42;name|s:3:"ana";seen|i:2;'`,
				"php-session-unknown: array (",
				") new-id=true",
				"php-session-destroy: true",
				"php-session-after-destroy: 0",
				"quit: ok",
			},
			// phpredis has no handshake of its own: these are the script's
			// auth(), select() and client('setname').
			handshake: []string{"AUTH s3cret", "SELECT 2", "CLIENT setname app-phpredis"},
			errors:    []string{errGetAB},
			pipelines: [][2][]string{pipeSetDel},
		},
		{
			name: "redis-rb", dir: "ruby", cmd: []string{"ruby", "session_flow.rb"},
			probe: []string{"ruby", "-e", "require 'redis'"},
			hint:  "apt-get install ruby ruby-redis",
			transcript: []string{
				"connect: name=app-redis-rb db=2 resp=2 lib-name=",
				`info: "standalone"`,
				`ping: "PONG"`,
				`login: "OK"`,
				`setex: "OK"`,
				`getex: "uid=42;name=ana"`,
				"ttl: ok",
				`get: "uid=7"`,
				"expire: true",
				"ttl-slid: ok",
				"missing: nil",
				"dbsize: 2",
				"scan: 30 keys, 30 distinct",
				"error: Redis::CommandError " + wrongArity,
				`pipeline: "OK" "uid=1" 900 1`,
				"logout: 1",
				"after-logout: nil",
				"quit: ok",
			},
			handshake: []string{"auth s3cret", "select 2", "client setname app-redis-rb"},
			errors:    []string{errGetAB},
			pipelines: [][2][]string{pipeSetDel},
		},
	}
}

// TestClientScripts runs each script client's session flow against its own
// sessiond, with a password and database 2, and checks its transcript, its
// handshake, the errors sessiond answered and its pipelining.
func TestClientScripts(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("testdata", "clients"))
	require.NoError(t, err)
	for _, sc := range scriptClients() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(root, sc.dir)
			requireRuntime(t, dir, sc)

			ts := startServer(t, Config{RequirePass: clientsPassword})
			var holdKeys []string
			for _, p := range sc.pipelines {
				holdKeys = append(holdKeys, p[0][1])
			}
			rec := startRecorder(t, ts.addr, holdKeys...)
			ctx, cancel := context.WithTimeout(context.Background(), clientsTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, sc.cmd[0], sc.cmd[1:]...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"SESSIOND_ADDR="+rec.addr(),
				"SESSIOND_PASSWORD="+clientsPassword,
				"SESSIOND_DB="+strconv.Itoa(clientsDB),
				"SESSIOND_CLIENT_NAME=app-"+sc.name)
			cmd.Env = append(cmd.Env, sc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exs := rec.exchanges(t)
			if err != nil || t.Failed() {
				logExchanges(t, exs)
			}
			require.NoError(t, err, "%s failed\nstdout:\n%s\nstderr:\n%s", strings.Join(sc.cmd, " "), &stdout, &stderr)
			if stderr.Len() > 0 {
				t.Logf("%s stderr:\n%s", sc.name, &stderr)
			}

			got := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
			assert.Equal(t, sc.transcript, got, "transcript of %s", sc.name)
			assert.Equal(t, sc.handshake, handshake(exs), "handshake of %s", sc.name)
			assert.Equal(t, sc.errors, errorReplies(exs), "commands sessiond answered with an error")
			for _, p := range sc.pipelines {
				assertPipelined(t, rec, exs, p[0], p[1])
			}
			if t.Failed() {
				logExchanges(t, exs)
			}
		})
	}
}

// requireRuntime skips the test when the client's runtime or library is
// missing, or fails it when SESSIOND_REQUIRE_CLIENTS=1 (as CI sets it, so
// that a broken install step cannot pass as skipped tests).
func requireRuntime(t *testing.T, dir string, sc scriptClient) {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("SESSIOND_REQUIRE_CLIENTS") == "1" {
		missing = t.Fatalf
	}
	if _, err := exec.LookPath(sc.cmd[0]); err != nil {
		missing("%s: %s not found (%s)", sc.name, sc.cmd[0], sc.hint)
	}
	if sc.dir == "node" {
		if _, err := os.Stat(filepath.Join(dir, "node_modules")); errors.Is(err, os.ErrNotExist) {
			missing("%s: %s/node_modules missing (%s)", sc.name, dir, sc.hint)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientsTimeout)
	defer cancel()
	probe := exec.CommandContext(ctx, sc.probe[0], sc.probe[1:]...)
	probe.Dir = dir
	probe.Env = append(os.Environ(), sc.env...)
	if out, err := probe.CombinedOutput(); err != nil {
		missing("%s: library missing (%s): %v\n%s", sc.name, sc.hint, err, out)
	}
}

func logExchanges(t *testing.T, exs []exchange) {
	t.Helper()
	var b strings.Builder
	for _, e := range exs {
		fmt.Fprintf(&b, "conn %d: %s\n", e.conn, e)
	}
	t.Logf("commands on the wire:\n%s", &b)
}
