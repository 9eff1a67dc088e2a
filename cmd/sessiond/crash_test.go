package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessiond/sessiond/persist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Crash tests: they build the real binary, drive writes through go-redis,
// kill -9 the process at random moments (during a snapshot, during a
// write-behind flush, under load), restart it on the same file, and check
// that every write acknowledged before the last durable point is there,
// with its deadline, and that the file always loads.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sessiondBin builds cmd/sessiond once per test binary.
func sessiondBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sessiond-crash-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sessiond")
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build sessiond: %w", err)
			return
		}
		out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// TestMain removes the binary the crash tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a running sessiond.
type proc struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

var readyRE = regexp.MustCompile(`Ready to accept connections.*addrs="?\[([^\]\s]+)`)

// startProc starts the binary and waits until it accepts connections.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p, err := tryStartProc(t, args...)
	require.NoError(t, err)
	return p
}

func tryStartProc(t *testing.T, args ...string) (*proc, error) {
	t.Helper()
	bin := sessiondBin(t)
	cmd := exec.Command(bin, append([]string{"--port", "0", "--loglevel", "notice"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	require.NoError(t, cmd.Start())
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := readyRE.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	select {
	case p.addr = <-ready:
		return p, nil
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("sessiond exited before ready (%v):\n%s", err, p.output())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("sessiond not ready:\n%s", p.output())
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill9 kills the process without warning and waits for it.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	err := <-p.done
	p.done <- err
}

// stop shuts the process down gracefully.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		p.done <- err
		require.NoError(t, err, p.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM:\n%s", p.output())
	}
}

func (p *proc) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, PoolSize: 16, DialTimeout: 2 * time.Second})
}

// workload writes versioned sessions from several writers and remembers,
// per key, the last generation sent and the last acknowledged.
type workload struct {
	keys    int
	writers int
	base    int64 // deadlines are base + generation seconds: known exactly
	sent    []atomic.Int64
	acked   []atomic.Int64
	value   string
}

func newWorkload(writers, keysPerWriter int) *workload {
	n := writers * keysPerWriter
	return &workload{
		keys:    n,
		writers: writers,
		base:    time.Now().Add(time.Hour).UnixMilli(),
		sent:    make([]atomic.Int64, n),
		acked:   make([]atomic.Int64, n),
		value:   strings.Repeat("s", 300),
	}
}

func (w *workload) key(i int) string { return fmt.Sprintf("sess:%05d", i) }

func (w *workload) deadline(gen int64) int64 { return w.base + gen*1000 }

// run writes until ctx is done or the server goes away. Writer j owns keys
// j, j+writers, ...; each write of a key carries the next generation. A
// key's database is its index mod 4, so several databases are exercised.
func (w *workload) run(ctx context.Context, addr string) {
	var wg sync.WaitGroup
	for j := range w.writers {
		wg.Go(func() {
			rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second})
			defer rdb.Close()
			dbs := make([]*redis.Client, 4)
			for d := range dbs {
				dbs[d] = redis.NewClient(&redis.Options{Addr: addr, DB: d, MaxRetries: -1, DialTimeout: 2 * time.Second})
				defer dbs[d].Close()
			}
			for i := j; ctx.Err() == nil; i += w.writers {
				if i >= w.keys {
					i = j
				}
				gen := w.sent[i].Load() + 1
				w.sent[i].Store(gen)
				val := fmt.Sprintf("%s|%d|%s", w.key(i), gen, w.value)
				err := dbs[i%4].Do(ctx, "SET", w.key(i), val, "PXAT", w.deadline(gen)).Err()
				if err != nil {
					return // killed, or ctx done
				}
				w.acked[i].Store(gen)
			}
		})
	}
	wg.Wait()
}

// ackedNow copies the acknowledged generations: every one of them must
// survive once the server says a durable point after now was reached.
func (w *workload) ackedNow() []int64 {
	out := make([]int64, w.keys)
	for i := range out {
		out[i] = w.acked[i].Load()
	}
	return out
}

// verify checks the restarted server against the durable point: each key
// holds a generation at least as new as the one acknowledged before it,
// and no newer than the last one sent, with exactly that generation's
// deadline. Then it makes what the server holds the acknowledged state:
// writes acknowledged after the durable point may have been lost, and
// the next round's durable point must not count them.
func (w *workload) verify(t *testing.T, addr string, durable []int64) {
	t.Helper()
	ctx := context.Background()
	missing, older := 0, 0
	for d := range 4 {
		rdb := redis.NewClient(&redis.Options{Addr: addr, DB: d})
		pipe := rdb.Pipeline()
		type q struct {
			i   int
			get *redis.StringCmd
			exp *redis.Cmd
		}
		var qs []q
		for i := d; i < w.keys; i += 4 {
			qs = append(qs, q{i, pipe.Get(ctx, w.key(i)), pipe.Do(ctx, "PEXPIRETIME", w.key(i))})
		}
		_, err := pipe.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			require.NoError(t, err)
		}
		for _, x := range qs {
			v, err := x.get.Result()
			if errors.Is(err, redis.Nil) {
				if durable[x.i] > 0 {
					missing++
				}
				w.acked[x.i].Store(0)
				continue
			}
			require.NoError(t, err)
			parts := strings.SplitN(v, "|", 3)
			require.Len(t, parts, 3, "value of %s", w.key(x.i))
			require.Equal(t, w.key(x.i), parts[0])
			gen, err := strconv.ParseInt(parts[1], 10, 64)
			require.NoError(t, err)
			if gen < durable[x.i] {
				older++
			}
			w.acked[x.i].Store(gen)
			assert.LessOrEqual(t, gen, w.sent[x.i].Load(), "%s: a generation never sent", w.key(x.i))
			assert.Equal(t, w.value, parts[2])
			exp, err := x.exp.Int64()
			require.NoError(t, err)
			assert.Equal(t, w.deadline(gen), exp, "%s: deadline of generation %d", w.key(x.i), gen)
		}
		rdb.Close()
	}
	assert.Zero(t, missing, "acknowledged keys missing after the restart")
	assert.Zero(t, older, "keys older than their acknowledged write after the restart")
}

// infoField reads one INFO field.
func infoField(t *testing.T, rdb *redis.Client, field string) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "persistence").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in INFO", field)
	return 0
}

// crashRounds runs rounds of: load, reach a durable point (durablePoint
// returns the acknowledged generations it covers), more load, an optional
// trigger (a BGSAVE...), kill -9 at a random moment, restart, verify.
func crashRounds(t *testing.T, rounds int, args []string, durablePoint func(t *testing.T, rdb *redis.Client, w *workload) []int64, trigger func(rdb *redis.Client)) {
	dir := t.TempDir()
	args = append([]string{"--dir", dir}, args...)
	w := newWorkload(8, 400)
	p := startProc(t, args...)
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { w.run(ctx, p.addr) })
		time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond) // under load
		rdb := p.client()
		durable := durablePoint(t, rdb, w)
		if trigger != nil {
			trigger(rdb)
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		p.kill9(t)
		cancel()
		wg.Wait()
		rdb.Close()
		if durable == nil { // every acknowledged write is durable
			durable = w.ackedNow()
		}

		p = startProc(t, args...)
		t.Logf("round %d: restarted: %s", round, lastLine(p.output(), "DB loaded"))
		w.verify(t, p.addr, durable)
		if t.Failed() {
			t.Logf("server log:\n%s", p.output())
			return
		}
	}
	p.stop(t)
}

func lastLine(s, substr string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

func TestCrashSnapshotMode(t *testing.T) {
	crashRounds(t, 3, []string{"--save", ""},
		func(t *testing.T, rdb *redis.Client, w *workload) []int64 {
			// SAVE starts after acked is read: everything acknowledged
			// before is in the snapshot it writes.
			acked := w.ackedNow()
			require.NoError(t, rdb.Save(context.Background()).Err())
			return acked
		},
		func(rdb *redis.Client) { _ = rdb.BgSave(context.Background()).Err() }) // killed mid-snapshot, often
}

// afterTwoFlushes is the durable point of the write-behind mode: a flush
// that started after acked was read has completed once the flush counter
// moved by two.
func afterTwoFlushes(t *testing.T, rdb *redis.Client, w *workload) []int64 {
	acked := w.ackedNow()
	twoFlushes(t, rdb)
	return acked
}

// twoFlushes waits until the writes acknowledged before it are durable.
// A flush runs only when something changed: with dirty set, it keeps
// writing a key of its own meanwhile.
func twoFlushes(t *testing.T, rdb *redis.Client, dirty ...string) {
	start := infoField(t, rdb, "sessiond_aof_flushes")
	deadline := time.Now().Add(10 * time.Second)
	for infoField(t, rdb, "sessiond_aof_flushes") < start+2 {
		require.True(t, time.Now().Before(deadline), "no write-behind flush for 10 s")
		for _, k := range dirty {
			require.NoError(t, rdb.Set(context.Background(), k, "x", 0).Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashEverySec(t *testing.T) {
	crashRounds(t, 3, []string{"--appendonly", "yes", "--appendfsync", "everysec"}, afterTwoFlushes, nil)
}

func TestCrashAlways(t *testing.T) {
	crashRounds(t, 3, []string{"--appendonly", "yes", "--appendfsync", "always"},
		func(t *testing.T, rdb *redis.Client, w *workload) []int64 {
			return nil // every acknowledged write is durable: checked at the kill
		}, nil)
}

func TestCrashDuringCompaction(t *testing.T) {
	crashRounds(t, 3, []string{"--appendonly", "yes"}, afterTwoFlushes,
		func(rdb *redis.Client) { _ = rdb.BgRewriteAOF(context.Background()).Err() })
}

// TestCrashKeepsDeadlineChanges: GETEX EX, EXPIRE and PERSIST, which the
// write-behind log records as small OpExpire records, survive kill -9
// after a flush with their exact deadlines; so does a session whose first
// TTL passed while the server was down but which GETEX had extended.
func TestCrashKeepsDeadlineChanges(t *testing.T) {
	for _, fsync := range []string{"everysec", "always"} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--dir", dir, "--appendonly", "yes", "--appendfsync", fsync}
			p := startProc(t, args...)
			rdb := p.client()
			defer rdb.Close()
			ctx := context.Background()
			value := strings.Repeat("s", 700)
			set := time.Now()
			for _, k := range []string{"slide", "persist", "expire", "short"} {
				ttl := time.Minute
				if k == "short" {
					ttl = 4 * time.Second
				}
				require.NoError(t, rdb.Set(ctx, k, value+k, ttl).Err())
			}
			require.NoError(t, rdb.Set(ctx, "rewritten", "old", time.Minute).Err())
			twoFlushes(t, rdb, "sentinel")

			require.Equal(t, value+"slide", rdb.GetEx(ctx, "slide", 2*time.Hour).Val())
			require.Equal(t, value+"short", rdb.GetEx(ctx, "short", time.Hour).Val())
			require.True(t, rdb.Persist(ctx, "persist").Val())
			require.True(t, rdb.Expire(ctx, "expire", 500*time.Second).Val())
			require.NoError(t, rdb.Set(ctx, "rewritten", "new", 0).Err()) // value and deadline
			require.True(t, rdb.Expire(ctx, "rewritten", 600*time.Second).Val())
			want := map[string]int64{}
			for _, k := range []string{"slide", "short", "persist", "expire", "rewritten"} {
				want[k] = rdb.Do(ctx, "PEXPIRETIME", k).Val().(int64)
			}
			require.Equal(t, int64(-1), want["persist"])
			twoFlushes(t, rdb, "sentinel")
			p.kill9(t)

			st, err := persist.Check(filepath.Join(dir, "sessiond.db"), time.Now().UnixMilli())
			require.NoError(t, err)
			assert.GreaterOrEqual(t, st.Records[persist.OpExpire], int64(4), "deadline changes are logged as OpExpire")
			time.Sleep(time.Until(set.Add(4 * time.Second))) // short's first TTL passes while down

			p = startProc(t, args...)
			rdb2 := p.client()
			defer rdb2.Close()
			for k, dl := range want {
				v := value + k
				if k == "rewritten" {
					v = "new"
				}
				assert.Equal(t, v, rdb2.Get(ctx, k).Val(), k)
				assert.Equal(t, dl, rdb2.Do(ctx, "PEXPIRETIME", k).Val(), k)
			}
			p.stop(t)
		})
	}
}
