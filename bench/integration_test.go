package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startRedis starts a throwaway redis-server on a free 127.0.0.1 port and
// returns its address; it is killed and waited for in t.Cleanup. A server
// that exits at once (the port was taken meanwhile) is retried on another.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed; skipping the integration test")
	}
	return startServerProcess(t, bin, func(port string) []string {
		return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--loglevel", "warning"}
	})
}

// startServerProcess runs a RESP server binary on a free 127.0.0.1 port
// (args gets the port) until the test ends, and returns its address once it
// answers PING. A port taken between choosing and binding is retried.
func startServerProcess(t *testing.T, bin string, args func(port string) []string) string {
	t.Helper()
	var lastErr error
	for range 3 {
		addr, err := tryStartProcess(t, bin, args)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return ""
}

func tryStartProcess(t *testing.T, bin string, args func(port string) []string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	cmd := exec.Command(bin, args(port)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited // after this the log is complete and no longer written
	}
	name := filepath.Base(bin)
	addr := net.JoinHostPort("127.0.0.1", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialConn(context.Background(), addr, "")
		if err == nil {
			_, err = c.do("PING")
			c.close()
			if err == nil {
				t.Cleanup(stop)
				return addr, nil
			}
		}
		select {
		case <-exited:
			return "", fmt.Errorf("%s on %s exited: %s", name, addr, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("%s on %s did not come up: %v\n%s", name, addr, err, logs.String())
		}
	}
}

// bench runs the tool in-process with --json and decodes its report.
func bench(t *testing.T, ctx context.Context, args ...string) (int, *report) {
	t.Helper()
	var errOut bytes.Buffer
	cfg, err := parseArgs(append(args, "--json"), &errOut)
	require.NoError(t, err, errOut.String())
	var out bytes.Buffer
	code := execute(ctx, cfg, args, &out, nil)
	var rep report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	assert.Equal(t, code, rep.ExitCode)
	return code, &rep
}

func redisDo(t *testing.T, addr string, args ...string) reply {
	t.Helper()
	c, err := dialConn(context.Background(), addr, "")
	require.NoError(t, err)
	defer c.close()
	rep, err := c.do(args...)
	require.NoError(t, err)
	return rep
}

func TestIntegrationSession(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()

	code, rep := bench(t, ctx, "--target", addr, "-c", "2", "--duration", "300ms", "--warmup", "100ms", "--keys", "2000")
	require.Equal(t, exitOK, code, rep.Failures)
	require.Len(t, rep.Populate, 1)
	assert.Equal(t, int64(2000), rep.Populate[0].Keys)
	require.Len(t, rep.Runs, 1)
	run := rep.Runs[0]
	assert.Greater(t, run.Ops, int64(100))
	assert.Positive(t, run.WarmupOps)
	assert.Zero(t, run.ErrorTotal)
	assert.True(t, run.Verified)
	assert.Zero(t, run.Wrong, "redis-server answers correctly: %v", run.Mismatches)
	assert.GreaterOrEqual(t, run.Seconds, 0.25)
	assert.Less(t, run.Seconds, 3.0)
	assert.Greater(t, run.Latency.P50, int64(0))
	assert.LessOrEqual(t, run.Latency.P50, run.Latency.P99)
	assert.LessOrEqual(t, run.Latency.P99, run.Latency.Max)
	var sum int64
	cmds := map[string]commandResult{}
	for _, c := range run.Commands {
		sum += c.Count
		cmds[c.Command] = c
	}
	assert.Equal(t, run.Ops, sum)
	assert.InDelta(t, 0.80, float64(cmds["GETEX"].Count)/float64(run.Ops), 0.08)
	assert.InDelta(t, 0.15, float64(cmds["SET"].Count)/float64(run.Ops), 0.06)
	// The populated keyspace makes GETEX hit (DELs make a few miss).
	assert.Less(t, float64(cmds["GETEX"].Nulls)/float64(cmds["GETEX"].Count), 0.3)
	assert.Equal(t, "sess:9ca066f1a4ab2eea48cab1fb7ee5cf46", rep.Parameters.ExampleKey)
	ttl := redisDo(t, addr, "TTL", rep.Parameters.ExampleKey)
	if ttl.Int != -2 { // deleted by the mix
		assert.InDelta(t, 1800, ttl.Int, 5, "GETEX/SET set EX 1800")
	}
}

func TestIntegrationSideBySideAndOpenLoop(t *testing.T) {
	addr := startRedis(t)
	_, port, _ := net.SplitHostPort(addr)
	second := "localhost:" + port
	code, rep := bench(t, context.Background(), "--target", addr, "--target", second, "--rounds", "2",
		"-c", "2", "--duration", "250ms", "--warmup", "0s", "--keys", "500", "--rate", "2000")
	require.Equal(t, exitOK, code, rep.Failures)
	require.Len(t, rep.Runs, 4)
	// Rounds alternate between the targets.
	assert.Equal(t, []string{addr, second, addr, second},
		[]string{rep.Runs[0].Target, rep.Runs[1].Target, rep.Runs[2].Target, rep.Runs[3].Target})
	for _, r := range rep.Runs {
		// Open loop: 2000 ops/s for 250 ms is 500 ops, whatever the server does.
		assert.Equal(t, int64(500), r.Ops, "round %d %s", r.Round, r.Target)
		require.NotNil(t, r.SendLag)
		assert.Equal(t, int64(500), r.SendLag.Count)
		assert.Equal(t, 2000.0, r.TargetRate)
	}
	require.Len(t, rep.Summary, 2)
	assert.Equal(t, 2, rep.Summary[0].Rounds)
	require.Len(t, rep.Ratios, 1)
	assert.Equal(t, addr, rep.Ratios[0].Baseline)
	assert.InDelta(t, 1.0, rep.Ratios[0].Ratios["ops_per_sec"], 0.5, "same server, same schedule")
}

func TestIntegrationRequestsPipelined(t *testing.T) {
	addr := startRedis(t)
	code, rep := bench(t, context.Background(), "--target", addr, "--workload", "set", "-P", "16", "-c", "3",
		"--requests", "1000", "--warmup", "0s", "--keys", "100", "--value-size", "10", "--ttl", "0s")
	require.Equal(t, exitOK, code, rep.Failures)
	require.Len(t, rep.Runs, 1)
	assert.Equal(t, int64(1000), rep.Runs[0].Ops, "exactly --requests ops")
	assert.Empty(t, rep.Populate, "set does not populate")
	k := rep.Parameters.ExampleKey
	ttl := redisDo(t, addr, "TTL", k)
	if ttl.Int != -2 {
		assert.Equal(t, int64(-1), ttl.Int, "--ttl 0: no EX")
	}
}

func TestIntegrationErrorReplies(t *testing.T) {
	addr := startRedis(t)
	kg, _ := newKeyGen("sess:", 37)
	redisDo(t, addr, "RPUSH", kg.key(0), "x") // a list where GET expects a string
	code, rep := bench(t, context.Background(), "--target", addr, "--workload", "get", "--no-populate",
		"--keys", "1", "-c", "2", "--requests", "200", "--warmup", "0s")
	assert.Equal(t, exitFailed, code, "a run with error replies exits non-zero")
	require.Len(t, rep.Runs, 1)
	assert.Equal(t, map[string]int64{"WRONGTYPE": 200}, rep.Runs[0].Errors)
	assert.Equal(t, int64(200), rep.Runs[0].Commands[0].Errors)
	assert.NotEmpty(t, rep.Failures)
}

func TestIntegrationMemoryAndExpiry(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	redisDo(t, addr, "SET", "precious", "data")

	// Refuses to destroy data without --flush.
	code, rep := bench(t, ctx, "--target", addr, "--workload", "memory", "--keys", "2000")
	assert.Equal(t, exitFailed, code)
	require.NotEmpty(t, rep.Failures)
	assert.Contains(t, rep.Failures[0], "--flush")
	assert.Equal(t, "data", redisDo(t, addr, "GET", "precious").Str)

	code, rep = bench(t, ctx, "--target", addr, "--workload", "memory", "--keys", "2000", "--flush", "--load-pipeline", "64")
	require.Equal(t, exitOK, code, rep.Failures)
	require.Len(t, rep.Memory, 1)
	m := rep.Memory[0]
	assert.Equal(t, int64(0), m.Before.DBSize)
	assert.Equal(t, int64(2000), m.After.DBSize)
	assert.Contains(t, m.Process, "verified")
	assert.Positive(t, m.Before.ProcessRSS)
	assert.Greater(t, m.BytesPerSessionMem, 742.0, "at least key + value per session")
	ttl := redisDo(t, addr, "TTL", rep.Parameters.ExampleKey)
	assert.InDelta(t, 1800, ttl.Int, 5)
	assert.Len(t, rep.Parameters.ExampleKey, 42)

	redisDo(t, addr, "CONFIG", "SET", "notify-keyspace-events", "Kg")
	code, rep = bench(t, ctx, "--target", addr, "--workload", "expiry", "--keys", "2000", "--flush",
		"--ttl", "1s", "--max-wait", "5s")
	require.Equal(t, exitOK, code, rep.Failures)
	require.Len(t, rep.Expiry, 1)
	e := rep.Expiry[0]
	assert.True(t, e.AllFreed, "all 2000 keys expire within 5 s of the deadline")
	assert.GreaterOrEqual(t, e.FreedAfterS, 0.0)
	assert.Less(t, e.FreedAfterS, 5.0)
	assert.True(t, e.Events.Supported, e.Events.Note)
	assert.Equal(t, int64(2000), e.Events.Received)
	assert.Equal(t, int64(2000), e.Events.Matched)
	assert.Zero(t, e.Events.Early)
	assert.GreaterOrEqual(t, e.Events.LatenessMs.P50, 0.0)
	assert.LessOrEqual(t, e.Events.LatenessMs.P99, e.Events.LatenessMs.Max)
	assert.NotEmpty(t, e.Timeline)
	assert.Contains(t, e.Events.Note, `restored to "gK"`)
	// Restored to what it was (Redis normalizes the flag order).
	got := redisDo(t, addr, "CONFIG", "GET", "notify-keyspace-events")
	assert.Equal(t, "gK", got.Elems[1].Str)
	assert.Equal(t, int64(0), redisDo(t, addr, "DBSIZE").Int)
}

func TestIntegrationInterrupt(t *testing.T) {
	addr := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, rep := bench(t, ctx, "--target", addr, "-c", "4", "--duration", "20s", "--warmup", "0s", "--keys", "1000")
	assert.Equal(t, exitInterrupted, code)
	assert.Less(t, time.Since(start), 5*time.Second, "cancellation stops the run promptly")
	assert.True(t, rep.Interrupted)
	require.Len(t, rep.Runs, 1)
	assert.True(t, rep.Runs[0].Interrupted)
	assert.Positive(t, rep.Runs[0].Ops, "partial results are kept")
	assert.Empty(t, rep.Failures, fmt.Sprint(rep.Failures))
}

// startSessiond builds ../cmd/sessiond and runs it, black-box like any
// other target, on a free 127.0.0.1 port until the test ends.
func startSessiond(t *testing.T, extra ...string) string {
	t.Helper()
	return runSessiond(t, buildSessiond(t), extra...)
}

// buildSessiond builds ../cmd/sessiond into a temporary directory.
func buildSessiond(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH; cannot build sessiond")
	}
	bin := filepath.Join(t.TempDir(), "sessiond")
	out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/sessiond").CombinedOutput()
	require.NoError(t, err, "building sessiond: %s", out)
	return bin
}

// runSessiond runs the built sessiond with extra flags until the test ends.
func runSessiond(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	return startServerProcess(t, bin, func(port string) []string {
		return append([]string{"--port", port, "--loglevel", "warning"}, extra...)
	})
}

// TestIntegrationVerifiedMixes runs every kind of mix, with reply
// verification, against redis-server and against sessiond: both must answer
// every command correctly (exactly, with one connection).
func TestIntegrationVerifiedMixes(t *testing.T) {
	targets := map[string]string{"redis-server": startRedis(t), "sessiond": startSessiond(t)}
	for _, server := range []string{"redis-server", "sessiond"} {
		t.Run(server, func(t *testing.T) { verifiedMixes(t, targets[server]) })
	}
}

func verifiedMixes(t *testing.T, addr string) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"exact, all ops, skewed, zipf", []string{"-c", "1", "-P", "4", "--mix", "getex=40,get=10,set=15,del=10,update=10,get+expire=15",
			"--value-size", "skewed", "--dist", "zipf"}},
		{"exact, no TTL", []string{"-c", "1", "--ttl", "0s", "--mix", "get=40,set=20,del=20,update=20"}},
		{"shared, range sizes", []string{"-c", "4", "-P", "8", "--mix", "getex=50,set=20,del=10,update=10,get+expire=10",
			"--value-size", "200-2000", "--dist", "zipf", "--zipf-s", "1.5"}},
		{"get, population only", []string{"-c", "3", "-P", "16", "--workload", "get", "--value-size", "10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bf := filepath.Join(dir, "bench.txt")
			args := append([]string{"--target", addr, "--duration", "300ms", "--warmup", "50ms", "--keys", "300",
				"--benchfmt", bf}, tc.args...)
			code, rep := bench(t, context.Background(), args...)
			require.Equal(t, exitOK, code, rep.Failures)
			require.Len(t, rep.Runs, 1)
			run := rep.Runs[0]
			assert.True(t, run.Verified)
			assert.Zero(t, run.Wrong, run.Mismatches)
			assert.Zero(t, run.ErrorTotal, run.Errors)
			assert.Greater(t, run.Ops, int64(100))
			for _, c := range run.Commands {
				if c.Command != "DEL" && c.Command != "SET" && c.Command != "SET-KEEPTTL" {
					assert.Greater(t, c.Count, c.Nulls, "%s hits", c.Command)
				}
			}
			data, err := os.ReadFile(bf)
			require.NoError(t, err)
			assert.Regexp(t, `(?m)^Benchmark(Session|Get)/target=`+regexp.QuoteMeta(addr)+`/c=\d+/P=\d+\t\d+\t[0-9.]+ ns/op\t\d+ ops/s\t\d+ p50-µs`, string(data))
		})
	}
}

func TestIntegrationJSONFile(t *testing.T) {
	addr := startRedis(t)
	file := filepath.Join(t.TempDir(), "r.json")
	var out, errOut bytes.Buffer
	code := run([]string{"--target", addr, "-c", "2", "--requests", "200", "--warmup", "0s", "--keys", "100",
		"--json", file}, &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	assert.Contains(t, out.String(), "verified     all replies correct", "the text report stays on stdout")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var rep report
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Len(t, rep.Runs, 1)
	assert.Equal(t, int64(200), rep.Runs[0].Ops)
	assert.True(t, rep.Runs[0].Verified)
}

// TestIntegrationHashSession runs the hash-session workload, verified, against
// redis-server (sessiond has no hashes yet: there it reports ERR replies and
// exits 1), exactly with one connection and shared with several, and writes
// the HTML report of the run.
func TestIntegrationHashSession(t *testing.T) {
	t.Parallel()
	addr := startRedis(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"exact", []string{"-c", "1", "-P", "4", "--dist", "zipf", "--value-size", "skewed"}},
		{"shared", []string{"-c", "4", "-P", "8", "--mix", "hgetall=50,hmget=20,login=20,logout=10", "--value-size", "100-3000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := filepath.Join(dir, tc.name+".html")
			args := append([]string{"--target", addr, "--workload", "hash-session", "--duration", "1200ms", "--warmup", "50ms",
				"--keys", "300", "--html", page}, tc.args...)
			code, rep := bench(t, context.Background(), args...)
			require.Equal(t, exitOK, code, rep.Failures)
			require.Len(t, rep.Runs, 1)
			run := rep.Runs[0]
			assert.True(t, run.Verified)
			assert.Zero(t, run.Wrong, run.Mismatches)
			assert.Zero(t, run.ErrorTotal, run.Errors)
			cmds := map[string]commandResult{}
			for _, c := range run.Commands {
				cmds[c.Command] = c
			}
			require.Len(t, cmds, 4)
			for _, c := range []string{"HGETALL+PEXPIRE", "HMGET+PEXPIRE"} {
				assert.Greater(t, cmds[c].Count, int64(50), c)
				assert.Greater(t, cmds[c].Count-cmds[c].Nulls, cmds[c].Nulls, "%s hits mostly", c)
			}
			assert.Positive(t, cmds["HSET+PEXPIRE"].Count)
			assert.Positive(t, cmds["DEL"].Count)
			require.NotEmpty(t, run.Throughput, "per-second samples")
			assert.InDelta(t, 1.0, run.Throughput[0].T, 0.3)
			assert.Len(t, run.LatencyCurve, curveNines*curveTicks+1)
			data, err := os.ReadFile(page)
			require.NoError(t, err)
			figs := figureRe.FindAllStringSubmatch(string(data), -1)
			require.Len(t, figs, 2, "throughput and latency of the one target")
			assert.NotEmpty(t, seriesPoints(figs[0][2]), "throughput series")
			assert.Len(t, seriesPoints(figs[1][2]), 5, "latency: all ops and the 4 commands")
		})
	}
	// A session the run left behind is a hash with the five fields and a TTL
	// of at most 1800 s.
	kg, _ := newKeyGen("sess:", 37)
	for i := range uint64(300) {
		h := redisDo(t, addr, "HGETALL", kg.key(i))
		if len(h.Elems) == 0 {
			continue
		}
		assert.Len(t, h.Elems, 2*numHashFields)
		pttl := redisDo(t, addr, "PTTL", kg.key(i))
		assert.InDelta(t, 1_800_000, pttl.Int, 10_000)
		return
	}
	t.Fatal("no session left")
}

// TestIntegrationProgress runs a round with the live progress line on (as on
// a terminal): it shows ops/s, the p99 so far, the elapsed time and the ETA.
func TestIntegrationProgress(t *testing.T) {
	t.Parallel()
	addr := startRedis(t)
	cfg, err := parseArgs([]string{"--target", addr, "-c", "2", "--duration", "1500ms", "--warmup", "0s", "--keys", "1000"}, io.Discard)
	require.NoError(t, err)
	var status bytes.Buffer // written by the progress goroutine only until it is stopped
	code := execute(context.Background(), cfg, nil, io.Discard, &progress{w: &status, enabled: true})
	require.Equal(t, exitOK, code)
	assert.Regexp(t, `session \S+ round 1/1 +1s  [0-9,]+ ops  [0-9,]+ ops/s  p99 [0-9,]+ µs  ETA [01]s`, status.String())
}

// TestIntegrationDuringBGSave measures the session mix idle and then while
// background saves run back to back, against redis-server and against
// sessiond (each with a temporary --dir and --save ""): both phases are
// reported, saves completed during the bgsave phase, and none runs
// afterwards.
func TestIntegrationDuringBGSave(t *testing.T) {
	bin := buildSessiond(t)
	targets := map[string]string{
		"redis-server": startRedis(t),
		"sessiond":     runSessiond(t, bin, "--dir", t.TempDir(), "--save", ""),
	}
	for _, server := range []string{"redis-server", "sessiond"} {
		t.Run(server, func(t *testing.T) {
			addr := targets[server]
			before := parseInfo(redisDo(t, addr, "INFO", "persistence").Str)
			code, rep := bench(t, context.Background(), "--target", addr, "--workload", "session", "--keys", "2000",
				"--duration", "1s", "--warmup", "200ms", "--during", "bgsave")
			require.Equal(t, exitOK, code, rep.Failures)
			assert.Equal(t, duringBGSave, rep.Parameters.During)
			require.Len(t, rep.Runs, 2)
			idle, bg := rep.Runs[0], rep.Runs[1]
			assert.Equal(t, []string{phaseIdle, phaseBGSave}, []string{idle.Phase, bg.Phase})
			for _, r := range rep.Runs {
				assert.Equal(t, 1, r.Round)
				assert.Greater(t, r.Ops, int64(100), r.Phase)
				assert.Zero(t, r.ErrorTotal, r.Errors)
				assert.Zero(t, r.Wrong, r.Mismatches)
				assert.InDelta(t, 1.0, r.Seconds, 0.5, r.Phase)
			}
			assert.Nil(t, idle.BGSave)
			assert.Nil(t, idle.VsIdle)
			st := bg.BGSave
			require.NotNil(t, st)
			assert.GreaterOrEqual(t, st.Completed, int64(1), "saves completed in the measured window")
			assert.GreaterOrEqual(t, st.Started, st.Completed)
			assert.Positive(t, st.MeanS)
			assert.GreaterOrEqual(t, st.MaxS, st.MeanS)
			assert.Greater(t, st.BusyFraction, 0.5, "a save in flight most of the time")
			for _, k := range []string{"p50", "p99", "p99_9"} {
				assert.Positive(t, bg.VsIdle[k], k)
			}
			assert.InDelta(t, float64(bg.Latency.P99)/float64(idle.Latency.P99), bg.VsIdle["p99"], 1e-9)
			require.Len(t, rep.Summary, 2)
			assert.Equal(t, phaseBGSave, rep.Summary[1].Phase)
			assert.Equal(t, st.Completed, rep.Summary[1].BGSave.Completed)
			assert.NotNil(t, rep.Summary[1].VsIdle)

			// The server really saved, and nothing runs any more.
			after := parseInfo(redisDo(t, addr, "INFO", "persistence").Str)
			assert.Equal(t, "0", after["rdb_bgsave_in_progress"])
			assert.Equal(t, "ok", after["rdb_last_bgsave_status"])
			saves0, _ := strconv.ParseInt(before["rdb_saves"], 10, 64)
			saves1, err := strconv.ParseInt(after["rdb_saves"], 10, 64)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, saves1-saves0, st.Started, "every BGSAVE bench started completed")
		})
	}

	// A server that cannot save fails the run with its reason.
	noPersist := runSessiond(t, bin)
	code, rep := bench(t, context.Background(), "--target", noPersist, "--workload", "session", "--keys", "500",
		"-c", "2", "--duration", "300ms", "--warmup", "0s", "--during", "bgsave")
	assert.Equal(t, exitFailed, code)
	require.NotEmpty(t, rep.Failures)
	assert.Contains(t, rep.Failures[0], "round 1 phase bgsave: background saves: BGSAVE: ERR persistence is off")
}
