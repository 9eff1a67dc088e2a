package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchfmt(t *testing.T) {
	cfg, err := parseArgs([]string{"-c", "50", "--mix", "getex=80,set=20"}, &bytes.Buffer{})
	require.NoError(t, err)
	runs := []*opRun{
		{Target: "127.0.0.1:6379", Round: 1, Ops: 1230000, Seconds: 10, OpsPerSec: 123000,
			Latency: latencySummary{P50: 354, P90: 500, P99: 960, P999: 2000, Max: 9000}},
		{Target: "127.0.0.1:7000", Round: 1, Ops: 0}, // interrupted before measuring: left out
	}
	var buf bytes.Buffer
	require.NoError(t, writeBenchfmt(&buf, cfg, runs))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var bench []string
	config := regexp.MustCompile(`^[a-z][^\s:]*: `)
	for _, l := range lines {
		if strings.HasPrefix(l, "Benchmark") {
			bench = append(bench, l)
		} else {
			assert.Regexp(t, config, l, "configuration line")
		}
	}
	require.Len(t, bench, 1)
	assert.Equal(t, "BenchmarkSession/target=127.0.0.1:6379/c=50/P=1\t1230000\t8130.1 ns/op\t123000 ops/s\t354 p50-µs\t500 p90-µs\t960 p99-µs\t2000 p99.9-µs\t9000 max-µs", bench[0])
	// The documented format: name, iterations, then value-unit pairs.
	f := strings.Fields(bench[0])
	assert.Regexp(t, `^Benchmark[^\s]+$`, f[0])
	assert.Regexp(t, `^\d+$`, f[1])
	require.Zero(t, (len(f)-2)%2)
	for i := 2; i < len(f); i += 2 {
		assert.Regexp(t, `^[0-9.]+$`, f[i])
		assert.Regexp(t, `^[^\s]+$`, f[i+1])
	}
	cfg.Rate = 5000
	assert.Equal(t, "BenchmarkSession/target=h:1/c=50/P=1/rate=5000", benchName(cfg, "h:1", ""))
	// --during bgsave: the phase is a key of the name, for benchstat -col /phase.
	assert.Equal(t, "BenchmarkSession/target=h:1/phase=bgsave/c=50/P=1/rate=5000", benchName(cfg, "h:1", phaseBGSave))
}
