package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// TestSlowReaderBackpressure pipelines far more reply bytes than the socket
// buffers hold before reading any: the server must keep every reply, in
// order, and stop reading the client's input while its output is stuck
// (the event loop's EPOLLOUT path), then finish when the client reads.
func TestSlowReaderBackpressure(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		c := redistest.Dial(t, ts.addr)
		val := strings.Repeat("x", 100<<10)
		require.Equal(t, "+OK\r\n", c.DoString("SET", "big", val))

		const n = 200 // 20 MB of replies
		nc := c.NetConn()
		req := redistest.EncodeCommand("GET", "big")
		done := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < n && err == nil; i++ {
				_, err = nc.Write(req)
			}
			_, err2 := nc.Write(redistest.EncodeCommand("ECHO", "end"))
			if err == nil {
				err = err2
			}
			done <- err
		}()
		// Read nothing until the server has replies it cannot send (its
		// unsent output, omem, is recorded once the socket is full).
		waitFor(t, "the replies to back up", func() bool {
			for _, sc := range ts.srv.clientsForTest() {
				if sc.omem.Load() > 0 {
					return true
				}
			}
			return false
		})
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(30*time.Second)))
		r := bufio.NewReaderSize(nc, 1<<20)
		want := fmt.Sprintf("$%d\r\n%s\r\n", len(val), val)
		buf := make([]byte, len(want))
		for i := range n {
			_, err := io.ReadFull(r, buf)
			require.NoError(t, err, "reply %d", i)
			require.Equal(t, want, string(buf), "reply %d", i)
		}
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "$3\r\n", line)
		require.NoError(t, <-done)
	})
}

// TestIdleTimeout closes clients idle for longer than the timeout, within
// one cron tick, and keeps active ones — in fake time.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ln := startPipeServer(t, Config{Timeout: time.Second})
		buf := make([]byte, 7)
		ping := func(c net.Conn) string {
			_, err := c.Write([]byte("PING\r\n"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			return string(buf)
		}
		idle, active := ln.dial(), ln.dial()
		require.Equal(t, "+PONG\r\n", ping(idle))
		start := time.Now()
		closedAt := time.Duration(-1)
		go func() {
			_, _ = idle.Read(make([]byte, 1)) // returns when the server closes it
			closedAt = time.Since(start)
		}()
		for range 30 { // 3 s of fake time, the active client busy throughout
			time.Sleep(100 * time.Millisecond)
			require.Equal(t, "+PONG\r\n", ping(active))
		}
		synctest.Wait()
		// Idle for more than 1 s is noticed at the cron tick after that: 2 s.
		assert.Equal(t, 2*time.Second, closedAt.Truncate(100*time.Millisecond), "idle client closed at")
		require.Equal(t, "+PONG\r\n", ping(active))
	})
}

// TestClientKillAcrossLoops kills a client served by another loop. A
// command the victim sends after CLIENT KILL has answered does not run (the
// kill takes effect at once, as in Redis, though the close is posted to the
// victim's loop).
func TestClientKillAcrossLoops(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, IOThreads: 2})
		victims := make([]*redistest.Conn, 4)
		for i := range victims {
			victims[i] = redistest.Dial(t, ts.addr)
			require.Equal(t, "+OK\r\n", victims[i].DoString("CLIENT", "SETNAME", "victim"))
		}
		killer := redistest.Dial(t, ts.addr)
		for _, v := range victims {
			id := strings.TrimSpace(strings.TrimPrefix(v.DoString("CLIENT", "ID"), ":"))
			assert.Equal(t, ":1\r\n", killer.DoString("CLIENT", "KILL", "ID", id))
			_ = v.Write(redistest.EncodeCommand("PING")) // may find the socket closed already
			v.ExpectClosed()
		}
		list := killer.DoString("CLIENT", "LIST")
		assert.NotContains(t, list, "name=victim")
		assert.Equal(t, "+PONG\r\n", killer.DoString("PING"))
	})
}

// TestTransportStress runs pipelining clients while another client lists
// and kills connections at random, then shuts the server down under load:
// no panic, no race, no deadlock, and Shutdown returns.
func TestTransportStress(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, IOThreads: 2})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					nc, err := net.Dial("tcp", ts.addr)
					if err != nil {
						return // the server is shutting down
					}
					var req []byte
					for i := range 200 {
						k := fmt.Sprintf("k%d:%d", w, i%17)
						req = append(req, redistest.EncodeCommand("SET", k, strings.Repeat("v", i), "PX", "50")...)
						req = append(req, redistest.EncodeCommand("GETEX", k, "EX", "10")...)
						req = append(req, redistest.EncodeCommand("DEL", k)...)
					}
					_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
					_, _ = nc.Write(req)
					_, _ = io.Copy(io.Discard, io.LimitReader(nc, 4096))
					nc.Close()
				}
			})
		}
		wg.Go(func() {
			killer, err := net.Dial("tcp", ts.addr)
			if err != nil {
				return
			}
			defer killer.Close()
			r := bufio.NewReader(killer)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cmd := redistest.EncodeCommand("CLIENT", "LIST")
				if i%2 == 1 {
					cmd = redistest.EncodeCommand("CLIENT", "KILL", "ID", fmt.Sprint(i%40+1))
				}
				_ = killer.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := killer.Write(cmd); err != nil {
					return
				}
				if _, err := redistest.ReadReply(r); err != nil {
					return
				}
			}
		})
		time.Sleep(700 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, ts.srv.Shutdown(ctx))
		close(stop)
		wg.Wait()
	})
}

// TestConcurrentConfigAndInfo runs CONFIG SET and INFO/CONFIG GET from
// several clients at once (the settings map is shared).
func TestConcurrentConfigAndInfo(t *testing.T) {
	ts := startServer(t, Config{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			c, err := redistest.DialErr(t, ts.addr)
			if err != nil {
				return
			}
			for i := range 200 {
				var got string
				switch (w + i) % 3 {
				case 0:
					got = c.DoString("CONFIG", "SET", "maxmemory-policy", "volatile-ttl", "hz", fmt.Sprint(10+i%5))
				case 1:
					got = c.DoString("INFO")
				default:
					got = c.DoString("CONFIG", "GET", "*")
				}
				if strings.HasPrefix(got, "-") {
					t.Errorf("unexpected error: %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
