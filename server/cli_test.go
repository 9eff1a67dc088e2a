package server

import (
	"context"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// cli runs redis-cli against addr with args and returns its output.
func cli(t *testing.T, bin, addr string, stdin string, args ...string) string {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	require.True(t, ok)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "redis-cli %v: %s", args, out)
	return string(out)
}

// TestRedisCLI drives redis-cli against sessiond and against a real
// redis-server with the same invocations, the ones the README shows, and
// compares what redis-cli prints.
func TestRedisCLI(t *testing.T) {
	bin := redistest.RedisCLI(t)
	rd := redistest.StartRedis(t)
	ts := startServer(t, Config{})
	steps := []struct {
		name  string
		args  []string
		stdin string
		sort  bool
	}{
		{name: "set", args: []string{"SET", "sess:abc", `{"uid":42}`, "EX", "1800"}},
		{name: "getex", args: []string{"GETEX", "sess:abc", "EX", "1800"}},
		{name: "ttl", args: []string{"TTL", "sess:abc"}},
		{name: "more", args: []string{"MSET", "sess:def", "1", "user:1", "x"}},
		{name: "scan", args: []string{"--scan", "--pattern", "sess:*"}, sort: true},
		{name: "keys", args: []string{"KEYS", "*"}, sort: true},
		{name: "hello3", args: []string{"-3", "HELLO", "3"}},
		{name: "resp3 mget", args: []string{"-3", "MGET", "sess:abc", "nope"}},
		{name: "resp3 config", args: []string{"-3", "CONFIG", "GET", "timeout"}},
		{name: "stdin", stdin: "GET sess:abc\nINCR counter\nINCRBYFLOAT counter 0.1\nGET nope\n"},
		{name: "error", args: []string{"INCR", "sess:abc"}},
		{name: "unknown", args: []string{"NOPE", "a"}},
		{name: "raw", args: []string{"--raw", "GET", "sess:abc"}},
		{name: "del", args: []string{"DEL", "sess:abc", "sess:def", "user:1", "counter"}},
		{name: "dbsize", args: []string{"DBSIZE"}},
	}
	for _, st := range steps {
		want := cli(t, bin, rd.Addr(), st.stdin, st.args...)
		got := cli(t, bin, ts.addr, st.stdin, st.args...)
		if st.sort {
			want, got = sortLines(want), sortLines(got)
		}
		if st.name == "hello3" {
			// Server version and connection id legitimately differ.
			want, got = maskHello(want), maskHello(got)
		}
		assert.Equal(t, want, got, "step %s: redis-cli %v", st.name, st.args)
	}
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// maskHello blanks the values of "version" and "id" in redis-cli's
// printing of a HELLO reply ("key value" per line when not on a terminal).
func maskHello(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "version ") || strings.HasPrefix(l, "id ") {
			k, _, _ := strings.Cut(l, " ")
			lines[i] = k + " <masked>"
		}
	}
	return strings.Join(lines, "\n")
}
