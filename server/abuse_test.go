//go:build unix

package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// Abuse tests: each runs on loopback, bounded in time, and asserts that
// the server goes on serving a normal client with bounded memory while
// (or after) it is abused.

// heapLive returns the bytes of live heap objects after a collection.
func heapLive() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestHelperServerProcess is not a test: it is the server process of the
// tests that need one of their own (its own file descriptors and memory
// figures). They run the test binary again with SESSIOND_HELPER_SERVER
// set to a JSON Config; it prints "ADDR <address>" and serves until its
// standard input closes.
func TestHelperServerProcess(t *testing.T) {
	raw := os.Getenv("SESSIOND_HELPER_SERVER")
	if raw == "" {
		t.Skip("the server process of TestAbuseIdleConnections")
	}
	var cfg Config
	require.NoError(t, json.Unmarshal([]byte(raw), &cfg))
	ts := startServer(t, cfg) // stopped at cleanup
	fmt.Printf("ADDR %s\n", ts.addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startServerProcess runs a server in a child process (see
// TestHelperServerProcess) and returns its address; cleanup stops it.
func startServerProcess(t *testing.T, cfg Config) string {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SESSIOND_HELPER_SERVER="+string(raw))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	r := bufio.NewReader(stdout)
	var addr string
	for addr == "" {
		line, err := r.ReadString('\n')
		require.NoError(t, err, "the server process did not start")
		addr, _ = strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.Discard, r) })
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() {
			wg.Wait()
			_ = cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return addr
}

// idleConnTarget is how many idle clients TestAbuseIdleConnections opens:
// 10,000, less where this process cannot hold that many sockets (it keeps
// some descriptors for itself) or the race detector cannot run that many
// goroutines (the goroutine transport has one per client).
func idleConnTarget(t *testing.T, model string) int {
	n := 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		n = min(n, int(lim.Cur)-256)
	}
	if raceEnabled && model == "goroutine" {
		n = min(n, 7000)
	}
	if n < 10000 {
		t.Logf("opening %d idle connections, not 10000 (open-file limit %d, race detector %v)", n, lim.Cur, raceEnabled)
	}
	return n
}

// TestAbuseIdleConnections opens 10,000 idle clients (each after one
// command, as a pool's connections are) against a server in its own
// process, with maxclients exactly enough for them, a load client and an
// admin: the load is still served, every reply right; the next client is
// refused cleanly; the server's memory per idle client stays small.
func TestAbuseIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	forEachIOModel(t, func(t *testing.T, model string) {
		n := idleConnTarget(t, model)
		addr := startServerProcess(t, Config{IOModel: model, MaxClients: n + 2})
		admin := redistest.Dial(t, addr)
		rssBefore, err := strconv.ParseInt(infoField(t, admin, "used_memory_rss"), 10, 64)
		require.NoError(t, err)

		start := time.Now()
		idle := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		ping := redistest.EncodeCommand("PING")
		for len(idle) < n {
			nc, err := net.DialTimeout("tcp", addr, closeWait)
			require.NoError(t, err, "dial %d", len(idle))
			idle = append(idle, nc)
			_, err = nc.Write(ping)
			require.NoError(t, err)
		}
		buf := make([]byte, len("+PONG\r\n"))
		for i, nc := range idle {
			require.NoError(t, nc.SetReadDeadline(time.Now().Add(closeWait)))
			_, err := io.ReadFull(nc, buf)
			require.NoError(t, err, "client %d", i)
			require.Equal(t, "+PONG\r\n", string(buf))
		}
		t.Logf("%d idle clients connected in %v", n, time.Since(start))
		assert.Equal(t, strconv.Itoa(n+1), infoField(t, admin, "connected_clients"))

		// Load beside them: pipelined session traffic, every reply checked.
		load := redistest.Dial(t, addr)
		start = time.Now()
		for round := range 50 {
			var req []byte
			for i := range 100 {
				k := fmt.Sprintf("sess:%d:%d", round, i)
				req = append(req, redistest.EncodeCommand("SET", k, k, "EX", "60")...)
				req = append(req, redistest.EncodeCommand("GETEX", k, "EX", "120")...)
			}
			load.Send(req)
			for i := range 100 {
				k := fmt.Sprintf("sess:%d:%d", round, i)
				require.Equal(t, "+OK\r\n", string(load.MustReadReply()))
				require.Equal(t, fmt.Sprintf("$%d\r\n%s\r\n", len(k), k), string(load.MustReadReply()))
			}
		}
		t.Logf("10000 commands with %d idle clients in %v", n, time.Since(start))

		// maxclients + 1 is refused cleanly.
		got, closed := readToClose(t, redistest.Dial(t, addr).NetConn())
		assert.Equal(t, "-ERR max number of clients reached\r\n", got)
		assert.True(t, closed)
		assert.Equal(t, "1", infoField(t, admin, "rejected_connections"))
		assert.Equal(t, "+PONG\r\n", load.DoString("PING"))

		rss, err := strconv.ParseInt(infoField(t, admin, "used_memory_rss"), 10, 64)
		require.NoError(t, err)
		per := (rss - rssBefore) / int64(n)
		t.Logf("server RSS %d MiB with %d idle clients: %d bytes each", rss>>20, n, per)
		switch {
		case rss == 0:
			t.Log("no RSS figure on this platform")
			return
		case raceEnabled:
			t.Log("RSS not checked: the race detector's shadow memory inflates it")
			return
		}
		limit := int64(8 << 10) // the client, its socket state, no buffers
		if model == "goroutine" {
			limit = 32 << 10 // and a goroutine's stack
		}
		assert.Less(t, per, limit, "memory per idle client")
	})
}

// TestAbuseSlowloris: a client that sends a command one byte a second
// never completes a command, so the idle timeout (counted from the last
// complete command, not the last byte as in Redis) closes it; a normal
// client is served throughout. In fake time.
func TestAbuseSlowloris(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts, ln := startPipeServer(t, Config{Timeout: 10 * time.Second})
		loris, normal := ln.dial(), ln.dial()
		defer loris.Close()
		defer normal.Close()
		start := time.Now()
		closedAt := time.Duration(-1)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			req := fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$4\r\nsess\r\n$1000\r\n%s\r\n", strings.Repeat("x", 1000))
			for _, b := range req {
				if _, err := loris.Write([]byte{b}); err != nil {
					closedAt = time.Since(start)
					return
				}
				time.Sleep(time.Second)
			}
		})
		buf := make([]byte, 7)
		for range 30 {
			time.Sleep(time.Second)
			_, err := normal.Write([]byte("PING\r\n"))
			require.NoError(t, err)
			_, err = io.ReadFull(normal, buf)
			require.NoError(t, err)
			require.Equal(t, "+PONG\r\n", string(buf))
		}
		synctest.Wait()
		// Idle for more than 10 s at the 11 s tick; its next byte, at 11 s
		// or 12 s, finds the connection closed.
		assert.GreaterOrEqual(t, closedAt, 11*time.Second)
		assert.LessOrEqual(t, closedAt, 12*time.Second)
		assert.Len(t, ts.srv.clientsForTest(), 1)
	})
}

// TestAbuseSlowlorisSockets: many slow clients on real sockets, each
// sending a byte every 100 ms, hold a partial command each (a small query
// buffer, not what they announce) until the timeout closes them, while a
// normal client is served.
func TestAbuseSlowlorisSockets(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, Timeout: time.Second})
		normal := redistest.Dial(t, ts.addr)
		before := heapLive()
		const n = 200
		slow := make([]net.Conn, n)
		for i := range slow {
			nc, err := net.Dial("tcp", ts.addr)
			require.NoError(t, err)
			defer nc.Close()
			slow[i] = nc
		}
		req := []byte("*3\r\n$3\r\nSET\r\n$4\r\nsess\r\n$100000000\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
		var cut int
		start := time.Now()
		for i := 0; cut < n && time.Since(start) < closeWait; i++ {
			cut = 0
			for _, nc := range slow {
				_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := nc.Write(req[i%len(req) : i%len(req)+1]); err != nil {
					cut++
				}
			}
			if i == 5 {
				grown := heapLive() - before
				t.Logf("heap growth with %d slow clients: %d KiB", n, grown>>10)
				assert.Less(t, grown, int64(n*32<<10), "memory per slow client")
			}
			assert.Equal(t, "+PONG\r\n", normal.DoString("PING"))
			time.Sleep(100 * time.Millisecond)
		}
		assert.Equal(t, n, cut, "slow clients closed by the timeout")
		assert.Less(t, time.Since(start), 5*time.Second)
		waitFor(t, "the slow clients to go", func() bool { return clientCount(t, normal) == 1 })
	})
}

// TestAbusePipelinedGets: a client pipelines GETs of a large value and
// never reads. The server stops reading it once its socket is full (so
// its memory holds one batch of replies, not the 2 GiB it asked for) and
// serves others; with a small client-output-buffer-limit it is cut off.
func TestAbusePipelinedGets(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		admin := redistest.Dial(t, ts.addr)
		val := strings.Repeat("s", 1<<20)
		require.Equal(t, "+OK\r\n", admin.DoString("SET", "big", val))
		before := heapLive()

		var req []byte
		for range 2000 {
			req = append(req, redistest.EncodeCommand("GET", "big")...)
		}
		hogs := make([]*redistest.Conn, 4)
		for i := range hogs {
			hogs[i] = redistest.Dial(t, ts.addr)
			require.NoError(t, hogs[i].NetConn().SetWriteDeadline(time.Now().Add(closeWait)))
			_, _ = hogs[i].NetConn().Write(req) // may block once the server stops reading
		}
		// Until their sockets fill up the server keeps answering them.
		waitFor(t, "the hogs' output to stall", func() bool {
			for _, c := range ts.srv.clientsForTest() {
				if c.omem.Load() > 0 {
					return true
				}
			}
			return false
		})
		want := fmt.Sprintf("$%d\r\n%s\r\n", len(val), val)
		for range 5 {
			require.Equal(t, want, admin.DoString("GET", "big"))
		}
		grown := heapLive() - before
		t.Logf("heap growth with 4 clients asking for 2 GiB each: %d KiB", grown>>10)
		assert.Less(t, grown, int64(32<<20))

		// A limit below one reply cuts them off.
		assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "client-output-buffer-limit", "normal 8mb 512kb 1"))
		waitFor(t, "the hogs to be cut off", func() bool { return clientCount(t, admin) == 1 })
		for _, h := range hogs {
			_, closed := readToClose(t, h.NetConn())
			assert.True(t, closed)
		}
		assert.Equal(t, want, admin.DoString("GET", "big"))
	})
}

// TestAbuseOversizedHeaders: unauthenticated clients announcing huge
// multibulk counts and bulk lengths, or sending endless inline lines, get
// Redis's protocol errors and are closed, without the server allocating
// what they announce; authenticated clients are bound by
// proto-max-bulk-len.
func TestAbuseOversizedHeaders(t *testing.T) {
	cases := []struct{ send, reply string }{
		{"*1000000\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
		{"*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
		{"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*2\r\n$4\r\nAUTH\r\n$16385\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"},
		{"*1\r\n$100000000\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"},
		{"*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"}, // over proto-max-bulk-len first
		{"*1\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\n$99999999999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{strings.Repeat("a", 70<<10), "-ERR Protocol error: too big inline request\r\n"},
		{"*1\r\n" + strings.Repeat("$", 70<<10), "-ERR Protocol error: too big bulk count string\r\n"},
	}
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, RequirePass: "pw"})
		before := heapLive()
		var wg sync.WaitGroup
		for i := range 400 {
			tc := cases[i%len(cases)]
			wg.Go(func() {
				nc, err := net.Dial("tcp", ts.addr)
				if !assert.NoError(t, err) {
					return
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(closeWait))
				_, _ = nc.Write([]byte(tc.send)) // the server may close before all is sent
				got, err := io.ReadAll(nc)
				if err != nil && !redistest.IsClosed(err) {
					t.Errorf("%q: %v", tc.send[:min(len(tc.send), 20)], err)
				}
				assert.Equal(t, tc.reply, string(got), "%q", tc.send[:min(len(tc.send), 20)])
			})
		}
		wg.Wait()
		grown := heapLive() - before
		t.Logf("heap growth after 400 oversized headers: %d KiB", grown>>10)
		assert.Less(t, grown, int64(8<<20))

		admin := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+OK\r\n", admin.DoString("AUTH", "pw"))
		assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "proto-max-bulk-len", "1mb"))
		c := redistest.Dial(t, ts.addr) // the limit applies to new connections
		assert.Equal(t, "+OK\r\n", c.DoString("AUTH", "pw"))
		got, closed := sendRaw(t, c.NetConn(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n", true)
		assert.Equal(t, "-ERR Protocol error: invalid bulk length\r\n", got)
		assert.True(t, closed)
		d := redistest.Dial(t, ts.addr)
		assert.Equal(t, "+OK\r\n", d.DoString("AUTH", "pw"))
		assert.Equal(t, "+PONG\r\n", d.DoString("PING"))
	})
}

// dial connects without a buffered reader (closed at cleanup, if not
// before).
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, closeWait)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// TestAbuseWrongPasswords: clients flooding AUTH with wrong passwords get
// WRONGPASS each time and slow nobody else down much: a normal client's
// logins and session reads go on, each within a bound, and memory stays
// flat.
func TestAbuseWrongPasswords(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, RequirePass: "correct horse"})
		before := heapLive()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		wrong := 0
		for a := range 8 {
			wg.Go(func() {
				c, err := redistest.DialErr(t, ts.addr)
				if !assert.NoError(t, err) {
					return
				}
				var req []byte
				for i := range 500 {
					req = append(req, redistest.EncodeCommand("AUTH", fmt.Sprintf("guess-%d-%d", a, i))...)
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := c.Write(req); err != nil {
						t.Error(err)
						return
					}
					for range 500 {
						reply, err := c.ReadReply()
						if err != nil {
							t.Error(err)
							return
						}
						if string(reply) != "-"+errWrongPass+"\r\n" {
							t.Errorf("reply %q", reply)
							return
						}
					}
					mu.Lock()
					wrong += 500
					mu.Unlock()
				}
			})
		}
		var worst time.Duration
		for i := range 200 {
			k := fmt.Sprint("sess:", i)
			start := time.Now()
			nc := dial(t, ts.addr)
			got, closed := sendRaw(t, nc, string(redistest.EncodeCommand("AUTH", "correct horse"))+
				string(redistest.EncodeCommand("SET", k, "v", "EX", "60"))+string(redistest.EncodeCommand("GETEX", k, "EX", "60")), false)
			require.Equal(t, "+OK\r\n+OK\r\n$1\r\nv\r\n", got)
			require.False(t, closed)
			worst = max(worst, time.Since(start))
			require.NoError(t, nc.Close())
		}
		close(stop)
		wg.Wait()
		t.Logf("%d wrong passwords; slowest login and session read: %v", wrong, worst)
		assert.Greater(t, wrong, 8*500)
		assert.Less(t, worst, 2*time.Second)
		grown := heapLive() - before
		t.Logf("heap growth: %d KiB", grown>>10)
		assert.Less(t, grown, int64(8<<20))
	})
}
