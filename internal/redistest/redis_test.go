package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartRedisAndConn(t *testing.T) {
	r := StartRedis(t)
	require.NotZero(t, r.PID())
	require.True(t, strings.HasPrefix(r.Addr(), "127.0.0.1:"), r.Addr())

	c := Dial(t, r.Addr())
	assert.Equal(t, "+PONG\r\n", c.DoString("PING"))
	assert.Equal(t, "+OK\r\n", c.DoString("SET", "k", "a\r\nb"))
	assert.Equal(t, "$4\r\na\r\nb\r\n", c.DoString("GET", "k"))
	assert.Equal(t, "$-1\r\n", c.DoString("GET", "missing"))
	assert.Equal(t, "*2\r\n$4\r\na\r\nb\r\n$-1\r\n", c.DoString("MGET", "k", "missing"))
	assert.Equal(t, ":1\r\n", c.DoString("INCR", "n"))
	assert.Equal(t, "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n", c.DoString("foo", "a", "b"))
	assert.Equal(t, ":1\r\n", c.DoString("SADD", "s", "x"))
	assert.Equal(t, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", c.DoString("GET", "s"))

	// Pipelining: three commands in one write, three replies.
	c.Send(append(append(EncodeCommand("PING"), EncodeCommand("ECHO", "x")...), EncodeCommand("DBSIZE")...))
	assert.Equal(t, "+PONG\r\n", string(c.MustReadReply()))
	assert.Equal(t, "$1\r\nx\r\n", string(c.MustReadReply()))
	assert.Equal(t, ":3\r\n", string(c.MustReadReply()))

	// Inline commands are raw bytes too.
	c.Send([]byte("PING hello\r\n"))
	assert.Equal(t, "$5\r\nhello\r\n", string(c.MustReadReply()))

	// RESP3: maps, nulls, doubles, pushes.
	hello := c.Do("HELLO", "3")
	rep, err := ParseReply(hello)
	require.NoError(t, err)
	assert.Equal(t, byte('%'), rep.Type)
	assert.Equal(t, "_\r\n", c.DoString("GET", "missing"))
	assert.Equal(t, "*2\r\n$4\r\na\r\nb\r\n_\r\n", c.DoString("MGET", "k", "missing"))
	assert.Equal(t, "%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n", c.DoString("CONFIG", "GET", "databases"))
	assert.Equal(t, ":1\r\n", c.DoString("ZADD", "z", "1.5", "m"))
	assert.Equal(t, ",1.5\r\n", c.DoString("ZSCORE", "z", "m"))
	assert.Equal(t, "~1\r\n$1\r\nx\r\n", c.DoString("SMEMBERS", "s"))
	assert.Equal(t, ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", c.DoString("SUBSCRIBE", "ch"))

	// A second connection publishes; the first gets a push.
	p := Dial(t, r.Addr())
	assert.Equal(t, ":1\r\n", p.DoString("PUBLISH", "ch", "hi"))
	assert.Equal(t, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", string(c.MustReadReply()))

	// QUIT answers then closes.
	assert.Equal(t, "+OK\r\n", p.DoString("QUIT"))
	p.ExpectClosed()
	_, err = p.ReadReply()
	assert.True(t, IsClosed(err), "%v", err)

	// A protocol error is answered, then the connection is closed.
	q := Dial(t, r.Addr())
	q.Send([]byte("*1\r\n$x\r\n"))
	assert.Equal(t, "-ERR Protocol error: invalid bulk length\r\n", string(q.MustReadReply()))
	q.ExpectClosed()

	// No reply within the timeout is an error, not a hang.
	s := Dial(t, r.Addr())
	s.SetTimeout(100 * time.Millisecond)
	s.Send([]byte("*2\r\n$4\r\nECHO\r\n"))
	_, err = s.ReadReply()
	require.Error(t, err)
	assert.False(t, IsClosed(err))
}

func TestStartRedisArgs(t *testing.T) {
	r := StartRedis(t, "--requirepass", "secret", "--databases", "4")
	c := Dial(t, r.Addr())
	assert.Equal(t, "-NOAUTH Authentication required.\r\n", c.DoString("PING"))
	assert.Equal(t, "+OK\r\n", c.DoString("AUTH", "secret"))
	assert.Equal(t, "-ERR DB index is out of range\r\n", c.DoString("SELECT", "4"))
	dir := c.Do("CONFIG", "GET", "dir")
	assert.Contains(t, string(dir), r.Dir())
}

func TestStartRedisStop(t *testing.T) {
	r := StartRedis(t)
	pid := r.PID()
	r.Stop(t)
	// The process has been waited for: it no longer exists.
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	_, err := DialErr(t, r.Addr())
	assert.Error(t, err)
	r.Stop(t) // idempotent
}

func TestStartRedisBadArgs(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	// StartRedis fails the test through FailNow, which ends the goroutine
	// that calls it: give it its own, with a recorder for a test.
	rec := &recorder{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		StartRedis(rec, "--no-such-option", "x")
	}()
	wg.Wait()
	require.True(t, rec.Failed())
	assert.Contains(t, strings.Join(rec.msgs, "\n"), "no-such-option")
}

func TestRedisCLI(t *testing.T) {
	cli := RedisCLI(t)
	r := StartRedis(t)
	host, port, _ := strings.Cut(r.Addr(), ":")
	out, err := exec.Command(cli, "-h", host, "-p", port, "SET", "k", "from cli").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "$8\r\nfrom cli\r\n", Dial(t, r.Addr()).DoString("GET", "k"))
}

func TestRunScriptTwoServers(t *testing.T) {
	a, b := StartRedis(t), StartRedis(t)
	RunScript(t, strings.Join([]string{
		"SET a 1",
		"!type TIME",
		"!sort KEYS *",
		"SADD s a b c d e f g h i j k l m n o p q r s t u v w x y z",
		"HSET h f1 v1 f2 v2 f3 v3",
		"ZADD z 1 a 2 b 3 c",
		"!scan SSCAN s 0 COUNT 2",
		"!scan HSCAN h 0 MATCH f*",
		"!scan ZSCAN z 0",
		"!scan SCAN 0 TYPE set",
		"!scan SSCAN a 0",
		"GET a",
		"QUIT",
		"GET a",
	}, "\n"), a.Addr(), b.Addr())
}

func TestRunScriptReportsMismatches(t *testing.T) {
	a := StartRedis(t)
	b := StartRedis(t, "--databases", "4")
	rec := &recorder{TB: t}
	runScript(rec, strings.Join([]string{
		"SET k v",
		"CONFIG GET databases", // line 2 differs
		"!type CONFIG GET databases",
		"!approx 100 DBSIZE",
		"!type PING",
		"!sort KEYS *",
		"!scan SCAN 0",
		`!raw "PING\r\n"`,
		"SELECT 5",        // line 9 differs: b has 4 databases
		"!conn 1 SET k w", // a new connection is in db 0 on both
		"!conn 1 GET k",
		"GET k", // line 12 differs: a is in db 5, b still in db 0
		"QUIT",
	}, "\n"), a.Addr(), b.Addr(), DefaultTimeout)
	all := strings.Join(rec.msgs, "\n---\n")
	assert.Len(t, rec.msgs, 3, all)
	assert.Contains(t, all, "line 2: CONFIG GET databases\n\ta: \"*2\\r\\n$9\\r\\ndatabases\\r\\n$2\\r\\n16\\r\\n\"\n\tb: \"*2\\r\\n$9\\r\\ndatabases\\r\\n$1\\r\\n4\\r\\n\"")
	assert.Contains(t, all, "line 9: SELECT 5\n\ta: \"+OK\\r\\n\"\n\tb: \"-ERR DB index is out of range\\r\\n\"")
	assert.Contains(t, all, "line 12: GET k\n\ta: \"$-1\\r\\n\"\n\tb: \"$1\\r\\nw\\r\\n\"")
}

func TestRunScriptClosed(t *testing.T) {
	r := StartRedis(t)
	RunScript(t, strings.Join([]string{
		`!raw !closed "*1\r\n$x\r\n"`,
		"PING",
		`!raw "*1\r\n$4\r\nPING\r\n"`,
		"QUIT",
		"!conn 3 PING",
	}, "\n"), r.Addr(), r.Addr())
}

func TestRunScriptReportsNoClose(t *testing.T) {
	r := StartRedis(t)
	rec := &recorder{TB: t}
	runScript(rec, "!closed PING\nPING\n!raw \"*2\\r\\n$4\\r\\nECHO\\r\\n\"\nPING", r.Addr(), r.Addr(), 200*time.Millisecond)
	require.Len(t, rec.msgs, 2, strings.Join(rec.msgs, "\n---\n"))
	assert.Equal(t, "line 1: !closed PING\n\ta: did not close: <timed out>\n\tb: did not close: <timed out>\n\tafter the reply the server must close the connection", rec.msgs[0])
	assert.Equal(t, "line 3: !raw \"*2\\r\\n$4\\r\\nECHO\\r\\n\"\n\ta: <timed out>\n\tb: <timed out>", rec.msgs[1])
}

func TestRunScriptStopsAfterManyMismatches(t *testing.T) {
	a := StartRedis(t)
	b := StartRedis(t, "--databases", "4")
	rec := &recorder{TB: t}
	runScript(rec, strings.Repeat("CONFIG GET databases\n", 50), a.Addr(), b.Addr(), DefaultTimeout)
	require.Len(t, rec.msgs, maxMismatches+1)
	assert.Contains(t, rec.msgs[maxMismatches], "stopping the script after 20 mismatches")
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	msgs   []string
	failed bool
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprintln(args...)) }

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.FailNow()
}

func (r *recorder) FailNow() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}
