package server

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// closeWait bounds how long a test waits for a server to act; it is reached
// only when a test is failing.
const closeWait = 10 * time.Second

// readToClose reads what the server sends until it closes the connection
// (closed) or closeWait passes (not closed).
func readToClose(t *testing.T, nc net.Conn) (data string, closed bool) {
	t.Helper()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(closeWait)))
	b, err := io.ReadAll(nc)
	var ne net.Error
	return string(b), !(errors.As(err, &ne) && ne.Timeout())
}

// sentinel follows the input of a case that must leave the connection open:
// its reply marks the end of what the case produced, so no test waits for
// silence.
var (
	sentinel      = "*2\r\n$4\r\nECHO\r\n$8\r\n--end--!\r\n"
	sentinelReply = "$8\r\n--end--!\r\n"
)

// sendRaw sends raw bytes and returns what the server answered and whether
// it closed the connection. A case expected to close is read to EOF; any
// other is followed by the sentinel and read up to its reply.
func sendRaw(t *testing.T, nc net.Conn, send string, expectClose bool) (data string, closed bool) {
	t.Helper()
	if expectClose {
		_, err := nc.Write([]byte(send))
		require.NoError(t, err)
		return readToClose(t, nc)
	}
	_, err := nc.Write([]byte(send + sentinel))
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(closeWait)))
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.HasSuffix(b.String(), sentinelReply) {
		n, err := nc.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), true
		}
	}
	return strings.TrimSuffix(b.String(), sentinelReply), false
}

// protocolCases are malformed or tricky requests, with what Redis 7 answers
// and whether it closes the connection.
var protocolCases = []struct {
	name   string
	send   string
	reply  string
	closed bool
}{
	{"redcon crash bytes", "*1\r\n$9223372036854775807\r\nabc\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
	{"empty query then ping", "\r\nPING\r\n", "+PONG\r\n", false},
	{"negative multibulk length", "*-10\r\nPING\r\n", "+PONG\r\n", false},
	{"zero multibulk length", "*0\r\nPING\r\n", "+PONG\r\n", false},
	{"out of range multibulk length", "*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
	{"non-number multibulk length", "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
	{"wrong multibulk payload header", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n", true},
	{"negative bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
	{"out of range bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
	{"non-number bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
	{"multibulk not followed by bulk", "*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n", true},
	{"unbalanced quotes", "set \"\"\"test-key\"\"\" test-value\r\nping\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n", true},
	{"inline command", "SET k \"a b\"\r\nGET k\r\n", "+OK\r\n$3\r\na b\r\n", false},
	{"inline wrong arity", "PING x y z\r\n", "-ERR wrong number of arguments for 'ping' command\r\n", false},
	{"unknown command", "FOO a b\r\n", "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n", false},
	{"pipelined mix", "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", "+PONG\r\n+PONG\r\n$2\r\nhi\r\n", false},
	{"too big inline request", strings.Repeat("a", 70*1024), "-ERR Protocol error: too big inline request\r\n", true},
	{"too big mbulk count string", "*" + strings.Repeat("1", 70*1024), "-ERR Protocol error: too big mbulk count string\r\n", true},
	{"too big bulk count string", "*1\r\n$" + strings.Repeat("1", 70*1024), "-ERR Protocol error: too big bulk count string\r\n", true},
	{"desync multibulk zeros", "*" + strings.Repeat("\x00", 70*1024), "-ERR Protocol error: too big mbulk count string\r\n", true},
	{"desync bulk zeros", "*1\r\n$" + strings.Repeat("\x00", 70*1024), "-ERR Protocol error: too big bulk count string\r\n", true},
	{"desync inline zeros", strings.Repeat("\x00", 70*1024), "-ERR Protocol error: too big inline request\r\n", true},
}

// TestProtocolErrors checks sessiond's answers to malformed input, byte for
// byte, and that the server goes on serving other clients.
func TestProtocolErrors(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		for _, tc := range protocolCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := redistest.Dial(t, ts.addr)
				got, closed := sendRaw(t, c.NetConn(), tc.send, tc.closed)
				assert.Equal(t, tc.reply, got)
				assert.Equal(t, tc.closed, closed, "connection closed")
			})
		}
	})
}

// TestProtocolErrorsDifferential sends the same malformed input to a real
// redis-server and compares everything it sends back.
func TestProtocolErrorsDifferential(t *testing.T) {
	rd := redistest.StartRedis(t)
	ts := startServer(t, Config{})
	for _, tc := range protocolCases {
		t.Run(tc.name, func(t *testing.T) {
			a := redistest.Dial(t, rd.Addr())
			b := redistest.Dial(t, ts.addr)
			ra, ca := sendRaw(t, a.NetConn(), tc.send, tc.closed)
			rb, cb := sendRaw(t, b.NetConn(), tc.send, tc.closed)
			assert.Equal(t, ra, rb)
			assert.Equal(t, ca, cb, "connection closed")
		})
	}
}

// TestUnauthenticatedLimits: before AUTH, at most 10 arguments of at most
// 16 KiB (CVE-2021-32675).
func TestUnauthenticatedLimits(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{RequirePass: "pw", IOModel: model})
		c := redistest.Dial(t, ts.addr)
		got, closed := sendRaw(t, c.NetConn(), string(redistest.EncodeCommand("SET", "k", "v", "1", "2", "3", "4", "5", "6", "7", "8")), true)
		assert.Equal(t, "-ERR Protocol error: unauthenticated multibulk length\r\n", got)
		assert.True(t, closed)

		c = redistest.Dial(t, ts.addr)
		got, closed = sendRaw(t, c.NetConn(), "*2\r\n$4\r\nAUTH\r\n$20000\r\n", true)
		assert.Equal(t, "-ERR Protocol error: unauthenticated bulk length\r\n", got)
		assert.True(t, closed)

		c = redistest.Dial(t, ts.addr)
		assert.Equal(t, "-NOAUTH Authentication required.\r\n", c.DoString("GET", "k"))
		assert.Equal(t, "+OK\r\n", c.DoString("AUTH", "pw"))
		big := strings.Repeat("x", 100000)
		assert.Equal(t, "+OK\r\n", c.DoString("SET", "k", big))
	})
}

// TestHandlerPanicIsContained: a panicking command answers an error, leaves
// no lock held, and the connection and server go on.
func TestHandlerPanicIsContained(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model}, func(srv *Server) {
			srv.cmds["boom"] = &command{name: "boom", arity: 2, run: func(c *client, args [][]byte) {
				tx := srv.store.Lock(args[1])
				defer tx.Unlock()
				c.w.Array(3) // a partial reply that must not reach the client
				panic("boom")
			}}
		})
		c := redistest.Dial(t, ts.addr)
		assert.Equal(t, "-ERR internal error while executing 'boom' (logged)\r\n", c.DoString("BOOM", "k"))
		assert.Equal(t, "+OK\r\n", c.DoString("SET", "k", "v"))
		assert.Equal(t, "$1\r\nv\r\n", c.DoString("GET", "k"))
	})
}

// TestQueryBufferLimit closes a client whose pending request is too big.
func TestQueryBufferLimit(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{ClientQueryBufferLimit: 1 << 20, IOModel: model})
		c := redistest.Dial(t, ts.addr)
		c.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000000\r\n"))
		chunk := []byte(strings.Repeat("x", 64<<10))
		var err error
		for range 40 {
			if err = c.Write(chunk); err != nil {
				break
			}
		}
		_, closed := readToClose(t, c.NetConn())
		assert.True(t, closed || err != nil)
		// The server is fine.
		d := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+PONG\r\n", d.DoString("PING"))
	})
}

// TestQuitAndShutdown: QUIT answers +OK and closes; SHUTDOWN signals the
// owner and closes without a reply.
func TestQuitAndShutdown(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		c := redistest.Dial(t, ts.addr)
		got, closed := sendRaw(t, c.NetConn(), string(redistest.EncodeCommand("QUIT")), true)
		assert.Equal(t, "+OK\r\n", got)
		assert.True(t, closed)

		d := redistest.Dial(t, ts.addr)
		got, closed = sendRaw(t, d.NetConn(), string(redistest.EncodeCommand("SHUTDOWN", "NOSAVE")), true)
		assert.Equal(t, "", got)
		assert.True(t, closed)
		select {
		case <-ts.srv.ShutdownRequested():
		case <-time.After(5 * time.Second):
			t.Fatal("SHUTDOWN did not reach the owner")
		}
	})
}
