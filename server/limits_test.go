package server

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// infoField returns one field of INFO's reply (its default sections).
func infoField(t *testing.T, c *redistest.Conn, name string) string {
	t.Helper()
	v, ok := infoFields(t, c)[name]
	require.True(t, ok, "INFO has no %s", name)
	return v
}

// clientCount is the number of clients CLIENT LIST shows.
func clientCount(t *testing.T, c *redistest.Conn) int {
	t.Helper()
	return strings.Count(c.DoString("CLIENT", "LIST"), "id=")
}

// waitFor polls cond (every 10 ms, at most closeWait): for the server to
// notice something another goroutine or the kernel does.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(closeWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutputBufferLimitConfig: client-output-buffer-limit in Redis's
// format and with its errors, and sessiond's bounded default for normal
// clients.
func TestOutputBufferLimitConfig(t *testing.T) {
	ts := startServer(t, Config{})
	c := redistest.Dial(t, ts.addr)
	get := func() string {
		t.Helper()
		reply := c.DoString("CONFIG", "GET", "client-output-buffer-limit")
		_, v, _ := strings.Cut(reply, "client-output-buffer-limit\r\n")
		_, v, _ = strings.Cut(v, "\r\n")
		return strings.TrimSuffix(v, "\r\n")
	}
	assert.Equal(t, "normal 268435456 67108864 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60", get())
	hard, soft, softFor := ts.srv.outputLimit(false)
	assert.Equal(t, []any{int64(256 << 20), int64(64 << 20), time.Minute}, []any{hard, soft, softFor})

	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "client-output-buffer-limit", "NORMAL 1K 2gb 0 replica 1 2 +3"))
	assert.Equal(t, "normal 1000 2147483648 0 slave 1 2 3 pubsub 33554432 8388608 60", get())
	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "client-output-buffer-limit", "pubsub 99999999999999999999 0 5"))
	assert.Equal(t, "normal 1000 2147483648 0 slave 1 2 3 pubsub 18446744073709551615 0 5", get())
	hard, soft, softFor = ts.srv.outputLimit(true)
	assert.Equal(t, []any{int64(1<<63 - 1), int64(0), 5 * time.Second}, []any{hard, soft, softFor})
	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "client-output-buffer-limit", ""))

	prefix := "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - "
	for v, msg := range map[string]string{
		"normal 1 2":                      "Wrong number of arguments in buffer limit configuration.",
		"master 1 2 3":                    "Invalid client class specified in buffer limit configuration.",
		"foo 1 2 3":                       "Invalid client class specified in buffer limit configuration.",
		"normal -1 0 0":                   "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
		"normal 1.5mb 0 0":                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
		"normal 1 2 -3":                   "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
		"normal 1 2 3a":                   "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
		"normal 0 0 99999999999999999999": "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
		"normal 1 1 1 pubsub x 0 0":       "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
	} {
		assert.Equal(t, prefix+msg+"\r\n", c.DoString("CONFIG", "SET", "client-output-buffer-limit", v), v)
	}
	// A failed CONFIG SET changes nothing, not even the valid groups.
	assert.Equal(t, "normal 1000 2147483648 0 slave 1 2 3 pubsub 18446744073709551615 0 5", get())

	_, err := New(Config{ClientOutputBufferLimit: "normal 1"}, ts.store)
	require.ErrorIs(t, err, ErrConfig)
	srv, err := New(Config{ClientOutputBufferLimit: "normal 0 0 0"}, ts.store)
	require.NoError(t, err)
	hard, soft, _ = srv.outputLimit(false)
	assert.Zero(t, hard+soft)
	hard, _, _ = srv.outputLimit(true)
	assert.Equal(t, int64(32<<20), hard)
}

// TestMaxClients: the client after maxclients is refused with Redis's
// error and closed, counted in rejected_connections; a slot frees when a
// client goes, and CONFIG SET maxclients takes effect at once.
func TestMaxClients(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, MaxClients: 3})
		admin := redistest.Dial(t, ts.addr)
		c1 := redistest.Dial(t, ts.addr)
		c2 := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+PONG\r\n", c1.DoString("PING"))
		assert.Equal(t, "+PONG\r\n", c2.DoString("PING"))

		extra := redistest.Dial(t, ts.addr)
		got, closed := readToClose(t, extra.NetConn())
		assert.Equal(t, "-ERR max number of clients reached\r\n", got)
		assert.True(t, closed)
		assert.Equal(t, "1", infoField(t, admin, "rejected_connections"))
		assert.Equal(t, "3", infoField(t, admin, "connected_clients"))

		require.NoError(t, c2.Close())
		waitFor(t, "the server to drop a closed client", func() bool { return clientCount(t, admin) == 2 })
		c3 := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+PONG\r\n", c3.DoString("PING"))

		assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "maxclients", "4"))
		assert.Equal(t, "$1\r\n4\r\n", admin.DoString("CONFIG", "GET", "maxclients")[len("*2\r\n$10\r\nmaxclients\r\n"):])
		c4 := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+PONG\r\n", c4.DoString("PING"))
		got, _ = readToClose(t, redistest.Dial(t, ts.addr).NetConn())
		assert.Equal(t, "-ERR max number of clients reached\r\n", got)
		assert.Equal(t, "2", infoField(t, admin, "rejected_connections"))
	})
}

// TestMaxClientsConfig: maxclients's range, and a value the open-file
// limit cannot hold, with Redis's words.
func TestMaxClientsConfig(t *testing.T) {
	ts := startServer(t, Config{})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive\r\n",
		c.DoString("CONFIG", "SET", "maxclients", "0"))
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n",
		c.DoString("CONFIG", "SET", "maxclients", "x"))
	fit, err := FitOpenFiles(4000000000)
	require.NoError(t, err)
	if fit.MaxClients < 4000000000 {
		assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with "+strconv.Itoa(fit.MaxClients)+"\r\n",
			c.DoString("CONFIG", "SET", "maxclients", "4000000000"))
	}
	assert.Equal(t, "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", c.DoString("CONFIG", "GET", "maxclients"))
	_, err = New(Config{MaxClients: -1}, ts.store)
	assert.ErrorIs(t, err, ErrConfig)
}

// nonLoopbackIP returns an address of this host that is not loopback, or
// skips the test.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP
		}
	}
	t.Skip("no non-loopback IPv4 address to connect from")
	return nil
}

// dialFrom connects to port on ip from ip itself, so the server sees a
// non-loopback peer.
func dialFrom(t *testing.T, ip net.IP, port string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: closeWait}
	nc, err := d.Dial("tcp", net.JoinHostPort(ip.String(), port))
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// TestProtectedMode: with no password, a client from another address than
// loopback gets Redis's DENIED text, byte for byte as redis-server 7.0
// sends it, and is closed; loopback clients, a password, or protected-mode
// no let clients in.
func TestProtectedMode(t *testing.T) {
	ip := nonLoopbackIP(t)
	forEachIOModel(t, func(t *testing.T, model string) {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		require.NoError(t, err)
		serveOn(t, ln, ttl.Config{}, Config{IOModel: model})
		_, port, _ := net.SplitHostPort(ln.Addr().String())

		got, closed := readToClose(t, dialFrom(t, ip, port))
		assert.Equal(t, refuseProtected, got)
		assert.True(t, closed)
		assert.True(t, strings.HasPrefix(got, "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."))

		local := redistest.Dial(t, "127.0.0.1:"+port)
		assert.Equal(t, "1", infoField(t, local, "rejected_connections"))
		assert.Equal(t, "+OK\r\n", local.DoString("CONFIG", "SET", "requirepass", "pw"))
		remote := dialFrom(t, ip, port)
		_, err = remote.Write(redistest.EncodeCommand("PING"))
		require.NoError(t, err)
		require.NoError(t, remote.SetReadDeadline(time.Now().Add(closeWait)))
		buf := make([]byte, len(errNoAuth)+3)
		_, err = io.ReadFull(remote, buf)
		require.NoError(t, err)
		assert.Equal(t, "-"+errNoAuth+"\r\n", string(buf))

		assert.Equal(t, "+OK\r\n", local.DoString("AUTH", "pw"))
		assert.Equal(t, "+OK\r\n", local.DoString("CONFIG", "SET", "requirepass", "", "protected-mode", "no"))
		assert.Equal(t, "*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n", local.DoString("CONFIG", "GET", "protected-mode"))
		got, closed = sendRaw(t, dialFrom(t, ip, port), string(redistest.EncodeCommand("PING")), false)
		assert.Equal(t, "+PONG\r\n", got)
		assert.False(t, closed)
	})
}

// TestProtectedModeDifferential compares the refusal with redis-server's.
func TestProtectedModeDifferential(t *testing.T) {
	ip := nonLoopbackIP(t)
	rd := redistest.StartRedis(t, "--bind", "0.0.0.0")
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	ts := serveOn(t, ln, ttl.Config{}, Config{})

	_, rport, _ := net.SplitHostPort(rd.Addr())
	_, sport, _ := net.SplitHostPort(ts.addr)
	want, wantClosed := readToClose(t, dialFrom(t, ip, rport))
	got, closed := readToClose(t, dialFrom(t, ip, sport))
	assert.Equal(t, want, got)
	assert.Equal(t, wantClosed, closed)
}

// TestProtectedDenies covers the rule without sockets.
func TestProtectedDenies(t *testing.T) {
	ts := startServer(t, Config{})
	s := ts.srv
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 5000} }
	assert.False(t, s.protectedDenies(tcp("127.0.0.1"), false))
	assert.False(t, s.protectedDenies(tcp("127.1.2.3"), false))
	assert.False(t, s.protectedDenies(tcp("::1"), false))
	assert.False(t, s.protectedDenies(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, false))
	assert.True(t, s.protectedDenies(tcp("10.0.0.1"), false))
	assert.True(t, s.protectedDenies(tcp("2001:db8::1"), false))
	assert.False(t, s.protectedDenies(tcp("10.0.0.1"), true), "a verified client certificate")
	s.lim.protected.Store(false)
	assert.False(t, s.protectedDenies(tcp("10.0.0.1"), false))
}

// TestOutputBufferHardLimit: a client that asks for more than the hard
// limit and reads nothing is closed; the server goes on serving others.
func TestOutputBufferHardLimit(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, ClientOutputBufferLimit: "normal 1mb 0 0"})
		admin := redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", admin.DoString("SET", "big", strings.Repeat("v", 3<<20)))
		hog := redistest.Dial(t, ts.addr)
		var req []byte
		for range 10 {
			req = append(req, redistest.EncodeCommand("GET", "big")...)
		}
		hog.Send(req)
		waitFor(t, "the hog to be closed", func() bool { return clientCount(t, admin) == 1 })
		got, closed := readToClose(t, hog.NetConn())
		assert.True(t, closed)
		assert.Less(t, len(got), 10*(3<<20), "the hog got every reply")
		assert.Equal(t, "+PONG\r\n", admin.DoString("PING"))
	})
}

// TestOutputBufferSoftLimit: a client over the soft limit for longer than
// its seconds is closed by the cron, in fake time (goroutine transport
// over an in-memory pipe, whose writes wait for the reader).
func TestOutputBufferSoftLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts, ln := startPipeServer(t, Config{ClientOutputBufferLimit: "normal 0 100kb 2"})
		srv := ts.srv
		slow := ln.dial()
		defer slow.Close()
		big := strings.Repeat("v", 200<<10)
		go func() {
			_, _ = slow.Write(redistest.EncodeCommand("SET", "big", big))
			_, _ = slow.Write(redistest.EncodeCommand("GET", "big"))
		}()
		buf := make([]byte, 5)
		_, err := io.ReadFull(slow, buf) // +OK
		require.NoError(t, err)
		// The GET's 200 KiB reply is over the soft limit from 0 s and is
		// never read. Poll (in fake time) between the cron's ticks.
		start := time.Now()
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		clients := srv.clientsForTest()
		require.Len(t, clients, 1)
		assert.Equal(t, int64(len(big)+len("$204800\r\n\r\n")), clients[0].omem.Load())
		for len(srv.clientsForTest()) > 0 && time.Since(start) < 10*time.Second {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		// Over the soft limit for more than 2 s: closed at the cron tick
		// after that, 3 s.
		assert.Equal(t, 3*time.Second, time.Since(start).Truncate(100*time.Millisecond))
	})
}

// TestOutputBufferSoftLimitSubscriber: a subscriber that stops reading is
// cut off by the pub/sub soft limit alone (no hard limit) once the
// messages stop, by the cron: its unsent messages count against the limit
// (and show in CLIENT LIST's omem) wherever they wait.
func TestOutputBufferSoftLimitSubscriber(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, ClientOutputBufferLimit: "pubsub 0 256kb 1"})
		slow := dial(t, ts.addr)
		_, err := slow.Write(redistest.EncodeCommand("SUBSCRIBE", "firehose"))
		require.NoError(t, err)
		pub := redistest.Dial(t, ts.addr)
		waitFor(t, "the subscription", func() bool {
			return pub.DoString("PUBSUB", "NUMSUB", "firehose") == "*2\r\n$8\r\nfirehose\r\n:1\r\n"
		})
		payload := string(make([]byte, 64<<10))
		for range 64 { // 4 MiB, more than the socket buffers hold
			assert.Equal(t, ":1\r\n", pub.DoString("PUBLISH", "firehose", payload))
		}
		waitFor(t, "the subscriber to be cut off", func() bool { return clientCount(t, pub) == 1 })
		_, closed := readToClose(t, slow)
		assert.True(t, closed)
	})
}

// TestOutputBufferSoftLimitReadingSubscriber: a subscriber that has read
// every message is not cut off, though one message passed the soft limit
// (goroutine transport, in fake time).
func TestOutputBufferSoftLimitReadingSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts, ln := startPipeServer(t, Config{ClientOutputBufferLimit: "pubsub 0 256kb 1"})
		sub, pub := redistest.NewConn(t, ln.dial()), redistest.NewConn(t, ln.dial())
		assert.Equal(t, "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", sub.DoString("SUBSCRIBE", "ch"))
		msg := strings.Repeat("m", 300<<10)
		assert.Equal(t, ":1\r\n", pub.DoString("PUBLISH", "ch", msg))
		assert.Equal(t, fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n", len(msg), msg), string(sub.MustReadReply()))
		time.Sleep(3 * time.Second) // the cron's ticks
		synctest.Wait()
		assert.Len(t, ts.srv.clientsForTest(), 2)
		assert.Equal(t, "*2\r\n$4\r\npong\r\n$0\r\n\r\n", sub.DoString("PING"))
	})
}

// clientsForTest returns the registered clients.
func (s *Server) clientsForTest() []*client {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		list = append(list, c)
	}
	return list
}

// TestTCPKeepAliveConfig: tcp-keepalive's range; the socket options are
// checked in limits_linux_test.go.
func TestTCPKeepAliveConfig(t *testing.T) {
	ts := startServer(t, Config{})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "*2\r\n$13\r\ntcp-keepalive\r\n$3\r\n300\r\n", c.DoString("CONFIG", "GET", "tcp-keepalive"))
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'tcp-keepalive') - argument must be between 0 and 2147483647 inclusive\r\n",
		c.DoString("CONFIG", "SET", "tcp-keepalive", "-1"))
	ts2 := startServer(t, Config{TCPKeepAlive: -1})
	c2 := redistest.Dial(t, ts2.addr)
	assert.Equal(t, "*2\r\n$13\r\ntcp-keepalive\r\n$1\r\n0\r\n", c2.DoString("CONFIG", "GET", "tcp-keepalive"))
}

// readWithin reads one reply, failing the test unless it arrives within d;
// it reports false, having read nothing, if none came.
func replyWithin(t *testing.T, c *redistest.Conn, d time.Duration) (string, bool) {
	t.Helper()
	c.SetTimeout(d)
	defer c.SetTimeout(redistest.DefaultTimeout)
	reply, err := c.ReadReply()
	if err != nil {
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		return "", false
	}
	return string(reply), true
}

// TestClientPause: CLIENT PAUSE WRITE holds writes (they wait, they do not
// fail) and lets reads through; ALL holds everything, CLIENT UNPAUSE
// included (as in Redis); a held pipeline resumes in order; the pause ends
// at its timeout or at CLIENT UNPAUSE; a client gone while held is no
// trouble.
func TestClientPause(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, IOThreads: 2})
		admin := redistest.Dial(t, ts.addr)
		writer := redistest.Dial(t, ts.addr)
		reader := redistest.Dial(t, ts.addr)

		// WRITE: a pipeline whose first command writes waits whole.
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "100000", "WRITE"))
		var pipe []byte
		pipe = append(pipe, redistest.EncodeCommand("SET", "k", "1")...)
		pipe = append(pipe, redistest.EncodeCommand("GET", "k")...)
		pipe = append(pipe, redistest.EncodeCommand("PING")...)
		writer.Send(pipe)
		assert.Equal(t, "$-1\r\n", reader.DoString("GET", "k"))
		assert.Equal(t, ":0\r\n", reader.DoString("EXISTS", "k"))
		_, ok := replyWithin(t, writer, 100*time.Millisecond)
		assert.False(t, ok, "a write ran during CLIENT PAUSE WRITE")
		assert.Equal(t, "+OK\r\n", reader.DoString("CLIENT", "UNPAUSE"))
		assert.Equal(t, "+OK\r\n", string(writer.MustReadReply()))
		assert.Equal(t, "$1\r\n1\r\n", string(writer.MustReadReply()))
		assert.Equal(t, "+PONG\r\n", string(writer.MustReadReply()))

		// ALL: reads and CLIENT UNPAUSE wait too; the timeout ends it.
		start := time.Now()
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "300", "ALL"))
		reader.SendCommand("CLIENT", "UNPAUSE")
		writer.SendCommand("GET", "k")
		assert.Equal(t, "+OK\r\n", string(reader.MustReadReply()))
		assert.Equal(t, "$1\r\n1\r\n", string(writer.MustReadReply()))
		assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

		// A pause is extended, never shortened, and WRITE becomes ALL.
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "100000", "WRITE"))
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "1", "WRITE"))
		writer.SendCommand("DEL", "k")
		_, ok = replyWithin(t, writer, 100*time.Millisecond)
		assert.False(t, ok, "the pause was shortened")
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "1", "ALL"))
		reader.SendCommand("GET", "nokey")
		_, ok = replyWithin(t, reader, 100*time.Millisecond)
		assert.False(t, ok, "a read ran after WRITE became ALL")

		// A held client that goes away; then the end of the pause (by
		// another client, since this pause holds every command) is fine.
		gone := redistest.Dial(t, ts.addr)
		gone.SendCommand("SET", "gone", "1")
		waitFor(t, "the writer, the reader and the gone client to be held", func() bool { return heldClients(ts.srv) == 3 })
		require.NoError(t, gone.Close())
		ts.srv.setPause(pauseOff, time.Time{})
		assert.Equal(t, ":1\r\n", string(writer.MustReadReply()))
		assert.Equal(t, "$-1\r\n", string(reader.MustReadReply()))
		waitFor(t, "the gone client to go", func() bool { return clientCount(t, admin) == 3 })

		// Paused clients are not idle (timeout skips them) and the pause
		// does not stall the loops: other clients' reads go on.
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "100000", "WRITE"))
		for i := range 20 {
			c := redistest.Dial(t, ts.addr)
			c.SendCommand("SET", fmt.Sprint("w", i), "1")
		}
		for range 20 {
			assert.Equal(t, "+PONG\r\n", reader.DoString("PING"))
		}
		assert.Equal(t, ":0\r\n", reader.DoString("EXISTS", "w0", "w19"))
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "UNPAUSE"))
		waitFor(t, "the held writes", func() bool { return reader.DoString("EXISTS", "w0", "w19") == ":2\r\n" })
	})
}

// heldClients counts the clients in the middle of a command: during a
// pause, those it holds (waiting in dispatch, or parked by their loop).
func heldClients(s *Server) int {
	n := 0
	for _, c := range s.clientsForTest() {
		if c.busy.Load() {
			n++
		}
	}
	return n
}

// TestClientPauseClose: closing the server while clients are held by a
// pause returns.
func TestClientPauseClose(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		admin := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+OK\r\n", admin.DoString("CLIENT", "PAUSE", "100000", "ALL"))
		for range 3 {
			redistest.Dial(t, ts.addr).SendCommand("SET", "k", "v")
		}
		admin.SendCommand("PING")
		waitFor(t, "every client to be held", func() bool { return heldClients(ts.srv) == 4 })
		done := make(chan struct{})
		go func() {
			_ = ts.srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
			t.Fatal("Close hangs with paused clients")
		}
	})
}

// TestClientListBuffers: CLIENT LIST shows a partial command in qbuf and
// replies a client has not read in omem.
func TestClientListBuffers(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		admin := redistest.Dial(t, ts.addr)
		field := func(name, key string) int64 {
			t.Helper()
			for _, line := range strings.Split(admin.DoString("CLIENT", "LIST"), "\n") {
				if !strings.Contains(line, " name="+name+" ") {
					continue
				}
				for _, f := range strings.Fields(line) {
					if v, ok := strings.CutPrefix(f, key+"="); ok {
						n, err := strconv.ParseInt(v, 10, 64)
						require.NoError(t, err)
						return n
					}
				}
			}
			t.Fatalf("no client %s in CLIENT LIST", name)
			return 0
		}
		partial := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+OK\r\n", partial.DoString("CLIENT", "SETNAME", "partial"))
		const part = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc"
		partial.Send([]byte(part))
		waitFor(t, "qbuf", func() bool { return field("partial", "qbuf") == int64(len(part)) })

		require.Equal(t, "+OK\r\n", admin.DoString("SET", "big", strings.Repeat("v", 1<<20)))
		hog := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+OK\r\n", hog.DoString("CLIENT", "SETNAME", "hog"))
		var req []byte
		for range 30 {
			req = append(req, redistest.EncodeCommand("GET", "big")...)
		}
		hog.Send(req)
		waitFor(t, "omem", func() bool { return field("hog", "omem") > 0 })
		assert.Equal(t, int64(0), field("partial", "omem"))
	})
}
