package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// startStoreOnlyServer starts a server whose used memory is its store's
// arena alone (the Go runtime's part, which moves with everything the test
// process does, is taken as 0), on a store with small chunks so that a
// few MB make many of them.
func startStoreOnlyServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveStoreOnly(t, ln, cfg)
}

// startStoreOnlyPipeServer is startStoreOnlyServer in memory, for a
// synctest bubble: it returns the server and a connection to it (not to
// be pipelined, see redistest.NewConn).
func startStoreOnlyPipeServer(t *testing.T, cfg Config) (*testServer, *redistest.Conn) {
	t.Helper()
	ln := newPipeListener()
	return serveStoreOnly(t, ln, cfg), redistest.NewConn(t, ln.dial())
}

func serveStoreOnly(t *testing.T, ln net.Listener, cfg Config) *testServer {
	t.Helper()
	return serveOn(t, ln, ttl.Config{Shards: 4, ChunkSize: 64 << 10}, cfg,
		func(srv *Server) { srv.mem.goMemFn = func() int64 { return 0 } })
}

// infoFields returns the fields of INFO's reply for the sections named, or
// its default sections.
func infoFields(t *testing.T, c *redistest.Conn, sections ...string) map[string]string {
	t.Helper()
	r, err := redistest.ParseReply(c.Do(append([]string{"INFO"}, sections...)...))
	require.NoError(t, err)
	out := map[string]string{}
	for line := range strings.SplitSeq(string(r.Data), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

func infoInt(t *testing.T, c *redistest.Conn, section, field string) int64 {
	t.Helper()
	v, ok := infoFields(t, c, section)[field]
	require.True(t, ok, "INFO %s has no %s", section, field)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	return n
}

// writeSessions SETs sess:<i> for i in [from, to) with size-byte values
// and deadlines one second apart, 100 per pipeline, and returns the
// replies that were not +OK.
func writeSessions(t *testing.T, c *redistest.Conn, from, to, size int, base int64) []string {
	t.Helper()
	return writeSessionsBatch(t, c, 100, from, to, size, base)
}

// writeSessionsBatch is writeSessions with batch commands per pipeline (1
// on a net.Pipe).
func writeSessionsBatch(t *testing.T, c *redistest.Conn, batch, from, to, size int, base int64) []string {
	t.Helper()
	val := strings.Repeat("v", size)
	var bad []string
	for i := from; i < to; i += batch {
		end := min(i+batch, to)
		for j := i; j < end; j++ {
			c.SendCommand("SET", fmt.Sprintf("sess:%05d", j), val, "PXAT", strconv.FormatInt(base+int64(j)*1000, 10))
		}
		for range end - i {
			if r := string(c.MustReadReply()); r != "+OK\r\n" {
				bad = append(bad, r)
			}
		}
	}
	return bad
}

// Over maxmemory with volatile-ttl, writes evict the sessions nearest
// their deadline; each eviction is counted in INFO and published as an
// evicted event, and memory stays at the limit.
func TestMaxmemoryVolatileTTLEvictsNearestSessions(t *testing.T) {
	const limit = 4 << 20
	ts := startStoreOnlyServer(t, Config{MaxMemory: limit, MaxMemoryPolicy: "volatile-ttl",
		NotifyKeyspaceEvents: "Ee"})
	ctx := context.Background()
	ps := subscribeGoRedis(t, ts.addr, 3, false, "__keyevent@0__:evicted")

	c := redistest.Dial(t, ts.addr)
	const n = 8000 // 8 MB of 1 KiB sessions into 4 MB
	base := time.Now().Add(time.Hour).UnixMilli()
	require.Empty(t, writeSessions(t, c, 0, n, 1024, base))

	mem := infoFields(t, c, "memory")
	assert.Equal(t, strconv.Itoa(limit), mem["maxmemory"])
	assert.Equal(t, "4.00M", mem["maxmemory_human"])
	assert.Equal(t, "volatile-ttl", mem["maxmemory_policy"])
	used, err := strconv.ParseInt(mem["used_memory"], 10, 64)
	require.NoError(t, err)
	assert.LessOrEqual(t, used, int64(limit+128<<10), "a write maps at most one more chunk")
	assert.Equal(t, ts.store.MappedBytes(), used)

	evicted := infoInt(t, c, "stats", "evicted_keys")
	keys := int64(ts.store.Len(0))
	assert.Equal(t, int64(n), keys+evicted, "every session is either there or evicted")
	assert.Greater(t, evicted, int64(n/3))
	assert.Greater(t, keys, int64(n/3), "not much more was evicted than needed")

	// The events name exactly the evicted keys, which are gone.
	got := make([]string, 0, evicted)
	for range evicted {
		m, err := ps.ReceiveMessage(ctx)
		require.NoError(t, err)
		got = append(got, m.Payload)
	}
	slices.Sort(got)
	require.Len(t, slices.Compact(got), int(evicted), "no key evicted twice")
	assert.Equal(t, ":0\r\n", c.DoString(append([]string{"EXISTS"}, got...)...))
	// Nearest deadlines first, to a wheel slot and a chunk of each shard:
	// a slack of 1,500 of the 8,000 sessions (a loaded machine spreads the
	// writes over more slots).
	const slack = 1500
	idx := func(k string) int { i, _ := strconv.Atoi(strings.TrimPrefix(k, "sess:")); return i }
	assert.Less(t, idx(got[len(got)-1]), int(evicted)+slack, "latest evicted session")
	first := 0
	for _, k := range got {
		if idx(k) < int(evicted)-slack {
			first++
		}
	}
	assert.Equal(t, int(evicted)-slack, first, "every session far from the limit's edge was evicted")
}

// Under allkeys-lru the sessions that are read survive a flood of writes.
// In a synctest bubble (in memory, one command at a time), so that the
// LRU clock moves by the sleeps alone, however loaded the machine.
func TestMaxmemoryAllKeysLRUKeepsReadSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 2 << 20
		ts, c := startStoreOnlyPipeServer(t, Config{MaxMemory: limit, MaxMemoryPolicy: "allkeys-lru"})
		write := func(from, to int, base int64) []string {
			return writeSessionsBatch(t, c, 1, from, to, 1024, base)
		}
		base := time.Now().Add(time.Hour).UnixMilli()
		require.Empty(t, write(0, 100, base))
		for from := 100; from < 5700; from += 700 {
			// The LRU clock counts 64 ms: the reads must be newer than the
			// older writes, and the new writes newer than the reads.
			time.Sleep(70 * time.Millisecond)
			for i := range 20 { // the hot sessions
				require.Equal(t, "$1024\r\n", c.DoString("GET", fmt.Sprintf("sess:%05d", i))[:7], "hot session %d", i)
			}
			time.Sleep(70 * time.Millisecond)
			require.Empty(t, write(from, from+700, base))
		}
		assert.Positive(t, infoInt(t, c, "stats", "evicted_keys"))
		for i := range 20 {
			assert.Equal(t, ":1\r\n", c.DoString("EXISTS", fmt.Sprintf("sess:%05d", i)), "hot session %d", i)
		}
		assert.LessOrEqual(t, ts.store.MappedBytes(), int64(limit+128<<10))
	})
}

// noeviction refuses writes with Redis's error once memory is over the
// limit, and takes them again once memory is back under it.
func TestMaxmemoryNoEviction(t *testing.T) {
	ts := startStoreOnlyServer(t, Config{MaxMemory: 1 << 20})
	c := redistest.Dial(t, ts.addr)
	bad := writeSessions(t, c, 0, 2000, 1024, time.Now().Add(time.Hour).UnixMilli())
	require.NotEmpty(t, bad)
	for _, r := range bad {
		require.Equal(t, "-OOM command not allowed when used memory > 'maxmemory'.\r\n", r)
	}
	assert.LessOrEqual(t, ts.store.MappedBytes(), int64(1<<20+128<<10))
	assert.Equal(t, "$1024\r\n", c.DoString("GET", "sess:00000")[:7], "reads go on")
	assert.Equal(t, "0", infoFields(t, c, "stats")["evicted_keys"])
	assert.Equal(t, "+OK\r\n", c.DoString("FLUSHALL"))
	assert.Equal(t, "+OK\r\n", c.DoString("SET", "k", "v"))
	// Raising the limit lets writes in at once.
	c.Do("CONFIG", "SET", "maxmemory", "0")
	assert.Empty(t, writeSessions(t, c, 0, 2000, 1024, time.Now().Add(time.Hour).UnixMilli()))
}

// CONFIG SET of the maxmemory parameters takes effect at once (and is
// reported by INFO); lowering maxmemory below the memory used evicts.
func TestMaxmemoryConfigSet(t *testing.T) {
	ts := startStoreOnlyServer(t, Config{})
	c := redistest.Dial(t, ts.addr)
	require.Empty(t, writeSessions(t, c, 0, 3000, 1024, time.Now().Add(time.Hour).UnixMilli()))
	mem := infoFields(t, c, "memory")
	assert.Equal(t, "0", mem["maxmemory"])
	assert.Equal(t, "noeviction", mem["maxmemory_policy"])

	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "maxmemory-policy", "ALLKEYS-RANDOM", "maxmemory-samples", "10"))
	assert.Equal(t, uint32(ttl.AllKeysRandom), ts.srv.mem.policy.Load())
	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "maxmemory", "2mb"))
	mem = infoFields(t, c, "memory")
	assert.Equal(t, "2097152", mem["maxmemory"])
	assert.Equal(t, "allkeys-random", mem["maxmemory_policy"])
	// CONFIG SET itself evicts (for up to evictTimeLimit); the next
	// commands finish the job.
	for range 100 {
		if ts.store.MappedBytes() <= 2<<20 {
			break
		}
		c.Do("PING")
	}
	assert.LessOrEqual(t, ts.store.MappedBytes(), int64(2<<20))
	assert.Positive(t, infoInt(t, c, "stats", "evicted_keys"))

	assert.Contains(t, c.DoString("CONFIG", "SET", "maxmemory-policy", "lru"), "must be one of the following")
	assert.Equal(t, uint32(ttl.AllKeysRandom), ts.srv.mem.policy.Load(), "a refused value changes nothing")
	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "RESETSTAT"))
	assert.Equal(t, "0", infoFields(t, c, "stats")["evicted_keys"])
}

func TestMaxmemoryConfigValidation(t *testing.T) {
	store, err := ttl.New(ttl.Config{})
	require.NoError(t, err)
	defer store.Close()
	for _, cfg := range []Config{
		{MaxMemory: -1},
		{MaxMemoryPolicy: "sometimes"},
		{MaxMemorySamples: 65},
	} {
		_, err := New(cfg, store)
		assert.ErrorIs(t, err, ErrConfig, "%+v", cfg)
	}
}

// TestMaxmemoryEndurance runs the built sessiond with maxmemory 64mb under
// endless writes of 1 KiB sessions by several pipelining clients for a few
// seconds (tens of times the limit in all), per policy: the memory it
// accounts stays within the limit plus the slack of a command, and its RSS
// within 1.25 times the limit.
func TestMaxmemoryEndurance(t *testing.T) {
	if testing.Short() {
		t.Skip("endurance test")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the server's RSS")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH; cannot build sessiond")
	}
	bin := filepath.Join(t.TempDir(), "sessiond")
	out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/sessiond").CombinedOutput()
	require.NoError(t, err, "building sessiond: %s", out)
	const limit = 64 << 20
	for _, policy := range []string{"volatile-ttl", "allkeys-lru"} {
		t.Run(policy, func(t *testing.T) {
			pid, addr := startSessiondProcess(t, bin, "--maxmemory", "64mb", "--maxmemory-policy", policy)
			r := floodSessions(t, addr, pid, 4*time.Second)
			t.Logf("%s: %d sessions written (%d MiB), %d evicted; max used_memory %.1f MiB, max RSS %.1f MiB (%.2f× maxmemory); at the end used %.1f MiB, RSS %.1f MiB",
				policy, r.written, r.written>>10, r.evicted, mib(r.maxUsed), mib(r.maxRSS), float64(r.maxRSS)/limit, mib(r.lastUsed), mib(r.lastRSS))
			assert.Greater(t, r.written, int64(2*limit>>10), "the writes went well past the limit")
			assert.Positive(t, r.evicted)
			assert.LessOrEqual(t, r.maxUsed, int64(limit+2<<20), "accounted memory")
			assert.LessOrEqual(t, r.maxRSS, int64(limit*5/4), "RSS")
		})
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// startSessiondProcess runs bin on a free loopback port until the test
// ends and returns its pid and address once it answers PING.
func startSessiondProcess(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, append([]string{"--port", port, "--loglevel", "warning"}, args...)...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sessiond output:\n%s", logs.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", port)
	require.Eventually(t, func() bool {
		c, err := redistest.DialErr(t, addr)
		if err != nil {
			return false
		}
		defer c.Close()
		if c.Write(redistest.EncodeCommand("PING")) != nil {
			return false
		}
		r, err := c.ReadReply()
		return err == nil && string(r) == "+PONG\r\n"
	}, 10*time.Second, 20*time.Millisecond, "sessiond did not start: %s", &logs)
	return cmd.Process.Pid, addr
}

type floodResult struct {
	written, evicted  int64
	maxUsed, maxRSS   int64
	lastUsed, lastRSS int64
}

// floodSessions writes 1 KiB sessions with EX 1800 from 4 connections,
// 64 commands per pipeline, for d, sampling INFO used_memory and the
// process's VmRSS every 20 ms.
func floodSessions(t *testing.T, addr string, pid int, d time.Duration) floodResult {
	t.Helper()
	var res floodResult
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			rd := bufio.NewReaderSize(nc, 64<<10)
			val := strings.Repeat("s", 1024)
			var buf []byte
			for i := 0; ; {
				select {
				case <-stop:
					return
				default:
				}
				buf = buf[:0]
				for range 64 {
					k := fmt.Sprintf("sess:%d:%012d", w, i)
					i++
					buf = fmt.Appendf(buf, "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$4\r\n1800\r\n", len(k), k, len(val), val)
				}
				if _, err := nc.Write(buf); err != nil {
					errs <- err
					return
				}
				for range 64 {
					line, err := rd.ReadString('\n')
					if err != nil {
						errs <- err
						return
					}
					if line != "+OK\r\n" {
						errs <- fmt.Errorf("SET answered %q", line)
						return
					}
				}
				written.Add(64)
			}
		})
	}
	c := redistest.Dial(t, addr)
	sample := func() {
		used := infoInt(t, c, "memory", "used_memory")
		rss := vmRSS(t, pid)
		res.maxUsed, res.maxRSS = max(res.maxUsed, used), max(res.maxRSS, rss)
		res.lastUsed, res.lastRSS = used, rss
	}
	tick := time.NewTicker(20 * time.Millisecond)
	end := time.After(d)
loop:
	for {
		select {
		case <-tick.C:
			sample()
		case err := <-errs:
			close(stop)
			wg.Wait()
			require.NoError(t, err)
		case <-end:
			break loop
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	sample()
	res.written = written.Load()
	res.evicted = infoInt(t, c, "stats", "evicted_keys")
	return res
}

// vmRSS reads the resident set size of process pid, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
