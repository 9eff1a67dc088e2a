package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	startAttempts = 5                // ports tried before giving up
	readyTimeout  = 10 * time.Second // how long redis-server may take to answer PING
	stopTimeout   = 10 * time.Second // how long it may take to exit after SIGTERM
)

// Redis is a redis-server started by StartRedis.
type Redis struct {
	addr    string
	dir     string
	outPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has been waited for
	waitErr error         // valid once done is closed
	stopped bool
}

// StartRedis starts redis-server on a free port of 127.0.0.1, with
// persistence off and its working directory in tb.TempDir(), and returns
// once it answers PING. args are appended to the command line (e.g.
// "--requirepass", "secret"). A cleanup stops the server and waits for it.
// The test is skipped when redis-server is not installed.
func StartRedis(tb testing.TB, args ...string) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not installed: apt-get install redis-server")
	}
	dir := tb.TempDir()
	for attempt := 1; ; attempt++ {
		r, err := startRedis(bin, dir, attempt, args)
		if err == nil {
			tb.Cleanup(func() { r.stop(tb) })
			return r
		}
		var inUse *portInUseError
		if !errors.As(err, &inUse) || attempt == startAttempts {
			tb.Fatalf("starting redis-server: %v", err)
		}
	}
}

// RedisCLI returns the path of redis-cli, skipping the test when it is not
// installed.
func RedisCLI(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Skip("redis-cli not installed: apt-get install redis-tools")
	}
	return p
}

// Addr returns the server's host:port.
func (r *Redis) Addr() string { return r.addr }

// PID returns the server's process id.
func (r *Redis) PID() int { return r.cmd.Process.Pid }

// Dir returns the server's working directory (its --dir).
func (r *Redis) Dir() string { return r.dir }

// Output returns what the server has printed so far (its log).
func (r *Redis) Output() string {
	b, _ := os.ReadFile(r.outPath)
	return string(b)
}

// Stop stops the server now instead of at cleanup: SIGTERM, then SIGKILL
// if it has not exited within 10 s. It waits for the process.
func (r *Redis) Stop(tb testing.TB) {
	tb.Helper()
	r.stop(tb)
}

func (r *Redis) stop(tb testing.TB) {
	if r.stopped {
		return
	}
	r.stopped = true
	select {
	case <-r.done:
		tb.Logf("redis-server %s had exited on its own (%v); its output:\n%s", r.addr, r.waitErr, r.Output())
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	// Redis acts on SIGTERM in its next cron tick (100 ms at the default
	// hz); SHUTDOWN NOSAVE, where allowed, exits at once.
	shutdownNow(r.addr)
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		tb.Errorf("redis-server %s ignored SIGTERM for %v; killing it", r.addr, stopTimeout)
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// portInUseError means redis-server could not bind its port.
type portInUseError struct{ port int }

func (e *portInUseError) Error() string { return fmt.Sprintf("port %d already in use", e.port) }

// startRedis makes one attempt on a fresh port.
func startRedis(bin, dir string, attempt int, args []string) (*Redis, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:     dir,
		outPath: filepath.Join(dir, fmt.Sprintf("redis-server-%d.log", attempt)),
		done:    make(chan struct{}),
	}
	out, err := os.Create(r.outPath)
	if err != nil {
		return nil, err
	}
	argv := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
	}, args...)
	r.cmd = exec.Command(bin, argv...)
	r.cmd.Dir = dir
	r.cmd.Stdout = out // an *os.File: no copying goroutine
	r.cmd.Stderr = out
	err = r.cmd.Start()
	_ = out.Close()
	if err != nil {
		return nil, err
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	}()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-r.done:
			log := r.Output()
			if strings.Contains(log, "Address already in use") {
				return nil, &portInUseError{port: port}
			}
			return nil, fmt.Errorf("redis-server exited (%v) before answering PING; its output:\n%s", r.waitErr, log)
		default:
		}
		if ping(r.addr) {
			return r, nil
		}
		if time.Now().After(deadline) {
			_ = r.cmd.Process.Kill()
			<-r.done
			return nil, fmt.Errorf("redis-server on %s did not answer PING within %v; its output:\n%s", r.addr, readyTimeout, r.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shutdownNow sends SHUTDOWN NOSAVE to addr, ignoring any failure.
func shutdownNow(addr string) {
	nc, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return
	}
	defer nc.Close()
	if nc.SetDeadline(time.Now().Add(time.Second)) != nil {
		return
	}
	if _, err := nc.Write(EncodeCommand("SHUTDOWN", "NOSAVE")); err != nil {
		return
	}
	// The server closes the connection as it exits (or answers an error).
	_, _ = ReadReply(bufio.NewReader(nc))
}

// freePort asks the kernel for a free port of 127.0.0.1. Another process
// may take it before redis-server binds it; StartRedis retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// ping reports whether a server on addr answers PING: with PONG, or with
// an error other than LOADING (e.g. NOAUTH when a password is required).
func ping(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	if nc.SetDeadline(time.Now().Add(time.Second)) != nil {
		return false
	}
	if _, err := nc.Write(EncodeCommand("PING")); err != nil {
		return false
	}
	reply, err := ReadReply(bufio.NewReader(nc))
	if err != nil {
		return false
	}
	return string(reply) == "+PONG\r\n" || (reply[0] == '-' && !bytes.HasPrefix(reply, []byte("-LOADING")))
}
