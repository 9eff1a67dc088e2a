package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/server"
)

// startRun runs the program in a goroutine and returns its address; the
// returned channel yields run's result.
func startRun(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	addrs := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		done <- run(ctx, args, &bytes.Buffer{}, &stderr, func(a []net.Addr) { addrs <- a })
	})
	t.Cleanup(wg.Wait)
	select {
	case a := <-addrs:
		return a[0].String(), done
	case err := <-done:
		t.Fatalf("run failed before ready: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	return "", nil
}

// waitRun waits for run, started by startRun, to return without error
// after what stopped it.
func waitRun(t *testing.T, done <-chan error, after string) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return after %s", after)
	}
}

// stopRun sends SHUTDOWN and waits for run to return.
func stopRun(t *testing.T, addr string, done <-chan error) {
	t.Helper()
	c := redistest.Dial(t, addr)
	c.SendCommand("SHUTDOWN")
	waitRun(t, done, "SHUTDOWN")
}

func TestRunServesAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := startRun(t, ctx, "--port", "0", "--loglevel", "warning")
	c := redistest.Dial(t, addr)
	assert.Equal(t, "+OK\r\n", c.DoString("SET", "sess:1", "v", "EX", "100"))
	assert.Equal(t, "$1\r\nv\r\n", c.DoString("GET", "sess:1"))
	cancel()
	waitRun(t, done, "cancel")
}

func TestRunStopsOnShutdownCommand(t *testing.T) {
	addr, done := startRun(t, context.Background(), "--port", "0", "--loglevel", "warning")
	stopRun(t, addr, done)
}

func TestRunPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	err = run(context.Background(), []string{"--port", port}, &bytes.Buffer{}, &bytes.Buffer{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot listen on 127.0.0.1:"+port)
}

func TestRunFlags(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-version"}, &out, &bytes.Buffer{}, nil))
	assert.Contains(t, out.String(), "sessiond ")

	var help bytes.Buffer
	err := run(context.Background(), []string{"-h"}, &bytes.Buffer{}, &help, nil)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, help.String(), "--requirepass")

	for _, bad := range [][]string{
		{"--log-format", "xml"},
		{"--loglevel", "loud"},
		{"--proto-max-bulk-len", "huge"},
		{"--port", "70000"},
		{"--databases", "0"},
		{"--shards", "3"},
		{"--io-model", "threads"},
		{"--io-threads", "-1"},
		{"--busy-reply-threshold", "-1"},
		{"stray", "arg"},
	} {
		err := run(context.Background(), append([]string{"--port", "0"}, bad...), &bytes.Buffer{}, &bytes.Buffer{}, nil)
		assert.Error(t, err, "%v", bad)
	}
}

func TestRunConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessiond.conf")
	require.NoError(t, os.WriteFile(path, []byte("# test\nport 0\nrequirepass \"pw\"\nloglevel warning\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _ := startRun(t, ctx, path)
	c := redistest.Dial(t, addr)
	assert.Equal(t, "-NOAUTH Authentication required.\r\n", c.DoString("GET", "k"))
	assert.Equal(t, "+OK\r\n", c.DoString("AUTH", "pw"))

	bad := filepath.Join(t.TempDir(), "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("no-such-directive 1\n"), 0o600))
	err := run(context.Background(), []string{bad}, &bytes.Buffer{}, &bytes.Buffer{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown directive")
}

func TestRunLimitFlags(t *testing.T) {
	for _, bad := range [][]string{
		{"--tls-port", "70000"},
		{"--tcp-keepalive", "-1"},
		{"--maxclients", "0"},
		{"--protected-mode", "maybe"},
		{"--client-output-buffer-limit", "normal 1"},
		{"--tls-port", "1", "--port", "0"}, // TLS without a certificate
		{"--tls-auth-clients", "sometimes"},
	} {
		err := run(context.Background(), append([]string{"--port", "0"}, bad...), &bytes.Buffer{}, &bytes.Buffer{}, nil)
		assert.Error(t, err, "%v", bad)
	}

	path := filepath.Join(t.TempDir(), "sessiond.conf")
	require.NoError(t, os.WriteFile(path, []byte("port 0\nloglevel warning\n"+
		"client-output-buffer-limit normal 0 0 0\nclient-output-buffer-limit pubsub 1mb 1mb 0\n"+
		"maxclients 100000\ntcp-keepalive 0\nprotected-mode no\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _ := startRun(t, ctx, path)
	c := redistest.Dial(t, addr)
	assert.Equal(t, "*2\r\n$26\r\nclient-output-buffer-limit\r\n$65\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 1048576 0\r\n",
		c.DoString("CONFIG", "GET", "client-output-buffer-limit"))
	assert.Equal(t, "*2\r\n$13\r\ntcp-keepalive\r\n$1\r\n0\r\n", c.DoString("CONFIG", "GET", "tcp-keepalive"))
	assert.Equal(t, "*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n", c.DoString("CONFIG", "GET", "protected-mode"))
	assert.Equal(t, "*2\r\n$7\r\ntimeout\r\n$3\r\n300\r\n", c.DoString("CONFIG", "GET", "timeout"))
	// maxclients is what the open-file limit allows.
	fit, err := server.FitOpenFiles(100000)
	require.NoError(t, err)
	want := strconv.Itoa(fit.MaxClients)
	assert.Equal(t, "*2\r\n$10\r\nmaxclients\r\n$"+strconv.Itoa(len(want))+"\r\n"+want+"\r\n", c.DoString("CONFIG", "GET", "maxclients"))
}

func TestRunBusyReplyThreshold(t *testing.T) {
	for flagVal, want := range map[string]string{"250": "250", "0": "0"} {
		ctx, cancel := context.WithCancel(context.Background())
		addr, done := startRun(t, ctx, "--port", "0", "--loglevel", "warning", "--busy-reply-threshold", flagVal)
		c := redistest.Dial(t, addr)
		assert.Equal(t, "*2\r\n$14\r\nlua-time-limit\r\n$"+strconv.Itoa(len(want))+"\r\n"+want+"\r\n",
			c.DoString("CONFIG", "GET", "lua-time-limit"))
		cancel()
		require.NoError(t, <-done)
	}
}

func TestSpareProc(t *testing.T) {
	n := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(n)
	t.Setenv("GOMAXPROCS", "")
	ctx := withSpareProc(context.Background())
	assert.Equal(t, n+1, runtime.GOMAXPROCS(0), "one P more than loops")
	assert.Equal(t, n, ioThreads(ctx, 0), "a loop per CPU")
	assert.Equal(t, 1, ioThreads(ctx, 1), "the flag wins")
	runtime.GOMAXPROCS(n)

	t.Setenv("GOMAXPROCS", fmt.Sprint(n))
	ctx = withSpareProc(context.Background())
	assert.Equal(t, n, runtime.GOMAXPROCS(0), "GOMAXPROCS from the environment is kept")
	assert.Equal(t, 0, ioThreads(ctx, 0), "the server's default: one loop per GOMAXPROCS")
}
