package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"unicode"
)

// writeBenchfmt writes the rounds in the Go benchmark format
// (https://go.googlesource.com/proposal/+/master/design/14313-benchmark-format.md),
// one line per round, so that `benchstat old.txt new.txt` compares runs:
//
//	BenchmarkSession/target=127.0.0.1:6379/c=50/P=1  1234567  8123 ns/op  123000 ops/s  354 p50-µs  ...
//
// The iteration count is the measured operations and ns/op the wall time
// per operation over all connections (1e9 / ops/s); the latency percentiles
// are per operation, in µs. Configuration lines ("key: value") come first.
func writeBenchfmt(w io.Writer, cfg *config, runs []*opRun) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "goos: %s\ngoarch: %s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(bw, "bench-workload: %s\n", cfg.Workload)
	if cfg.Workload == wlSession || cfg.Workload == wlHash {
		fmt.Fprintf(bw, "bench-mix: %s\n", cfg.MixText)
	}
	fmt.Fprintf(bw, "bench-keys: %d\nbench-key-dist: %s\nbench-value-size: %s\nbench-ttl: %s\n",
		cfg.Keys, cfg.Dist, cfg.ValueSizes, cfg.TTL)
	for _, r := range runs {
		if r.Ops == 0 || r.Seconds <= 0 {
			continue
		}
		l := r.Latency
		fmt.Fprintf(bw, "%s\t%d\t%.1f ns/op\t%.0f ops/s\t%d p50-µs\t%d p90-µs\t%d p99-µs\t%d p99.9-µs\t%d max-µs\n",
			benchName(cfg, r.Target, r.Phase), r.Ops, r.Seconds*1e9/float64(r.Ops), r.OpsPerSec, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	return bw.Flush()
}

// benchName is the benchmark name of a round:
// Benchmark<Workload>/target=…[/phase=…]/c=…/P=…[/rate=…]. Names may not
// contain white space.
func benchName(cfg *config, target, phase string) string {
	name := "Benchmark"
	for _, part := range strings.Split(cfg.Workload, "-") { // hash-session: HashSession
		name += strings.ToUpper(part[:1]) + part[1:]
	}
	name += "/target=" + target
	if phase != "" {
		name += "/phase=" + phase
	}
	name += fmt.Sprintf("/c=%d/P=%d", cfg.Conns, cfg.Pipeline)
	if cfg.Rate > 0 {
		name += fmt.Sprintf("/rate=%g", cfg.Rate)
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, name)
}

// writeFile creates path and writes it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(write(f), f.Close())
}
