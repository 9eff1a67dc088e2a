package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	var out bytes.Buffer
	return parseArgs(args, &out)
}

func TestDefaults(t *testing.T) {
	cfg, err := parse(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:6379"}, cfg.Targets)
	assert.Equal(t, wlSession, cfg.Workload)
	assert.Equal(t, 50, cfg.Conns)
	assert.Equal(t, 1, cfg.Pipeline)
	assert.Equal(t, 10*time.Second, cfg.Duration)
	assert.Equal(t, 2*time.Second, cfg.Warmup)
	assert.Equal(t, int64(1_000_000), cfg.Keys)
	assert.Equal(t, 700, cfg.ValueSize)
	assert.Equal(t, 1800*time.Second, cfg.TTL)
	assert.Equal(t, 37, cfg.KeySize)
	assert.Equal(t, uint64(100), cfg.Mix.total)
	assert.True(t, cfg.populates())

	cfg, err = parse(t, "--workload", "memory")
	require.NoError(t, err)
	assert.Equal(t, 42, cfg.KeySize, "memory sessions have 42-byte keys")
	assert.Equal(t, 1800*time.Second, cfg.TTL)

	cfg, err = parse(t, "--workload", "expiry")
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, cfg.TTL, "expiry defaults to EX 2")
	cfg, err = parse(t, "--workload", "expiry", "--ttl", "5s")
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, cfg.TTL)

	cfg, err = parse(t, "--workload", "set", "-P", "16")
	require.NoError(t, err)
	assert.Equal(t, []opKind{opSet}, cfg.Mix.ops)
	assert.False(t, cfg.populates())

	cfg, err = parse(t, "--target", "127.0.0.1:1", "--target", "localhost:2,[::1]:3", "--rounds", "3")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:1", "localhost:2", "[::1]:3"}, cfg.Targets)
}

func TestFlagValidation(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--workload", "hash"}, "want one of"},
		{[]string{"-c", "0"}, "-c 0"},
		{[]string{"-P", "0"}, "-P 0"},
		{[]string{"--duration", "0s"}, "must be positive"},
		{[]string{"--duration", "5s", "--requests", "100"}, "exclusive"},
		{[]string{"--requests", "-1"}, "must not be negative"},
		{[]string{"--requests", "10"}, "fewer than the 50 connections"},
		{[]string{"--warmup", "-1s"}, "must not be negative"},
		{[]string{"--keys", "0"}, "--keys 0"},
		{[]string{"--value-size", "0"}, "--value-size 0"},
		{[]string{"--ttl", "1500ms"}, "whole seconds"},
		{[]string{"--ttl", "-1s"}, "whole seconds"},
		{[]string{"--rate", "-5"}, "must not be negative"},
		{[]string{"--rounds", "0"}, "--rounds 0"},
		{[]string{"--mix", "getex=1,zadd=2"}, "unknown op"},
		{[]string{"--workload", "set", "--mix", "get=1"}, "--mix applies only to session and hash-session"},
		{[]string{"--workload", "memory", "--rate", "100"}, "--rate applies only"},
		{[]string{"--workload", "memory", "-P", "16"}, "use --load-pipeline"},
		{[]string{"--workload", "expiry", "--requests", "100"}, "--requests applies only"},
		{[]string{"--workload", "memory", "--max-wait", "5s"}, "--max-wait applies only to --workload expiry"},
		{[]string{"--workload", "memory", "--ttl", "0s"}, "give a positive TTL"},
		{[]string{"--workload", "expiry", "--keys", "200000000"}, "at most 100000000"},
		{[]string{"--flush"}, "--flush applies only to memory and expiry"},
		{[]string{"--workload", "memory", "--no-populate"}, "--no-populate applies only"},
		{[]string{"--key-size", "30"}, "--key-size"},
		{[]string{"--key-prefix", strings.Repeat("p", 200)}, "--key-prefix"},
		{[]string{"--target", "127.0.0.1"}, "want host:port"},
		{[]string{"--target", ":6379"}, "empty host"},
		{[]string{"--target", "localhost:99999"}, "bad port"},
		{[]string{"--workload", "memory", "--pid", "5", "--target", "a:1", "--target", "b:2"}, "single --target"},
		{[]string{"--load-pipeline", "0"}, "--load-pipeline 0"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"--value-size", "2000-200"}, "low end above"},
		{[]string{"--value-size", "big"}, "skewed"},
		{[]string{"--workload", "memory", "--value-size", "skewed"}, "fixed size"},
		{[]string{"--dist", "pareto"}, "want uniform or zipf"},
		{[]string{"--dist", "zipf", "--zipf-s", "1"}, "above 1"},
		{[]string{"--zipf-s", "2"}, "--zipf-s applies only to --dist zipf"},
		{[]string{"--workload", "memory", "--dist", "zipf"}, "--dist applies only"},
		{[]string{"--workload", "expiry", "--no-verify"}, "--no-verify applies only"},
		{[]string{"--workload", "memory", "--benchfmt", "x.txt"}, "--benchfmt applies only"},
		{[]string{"--mix", "get+expire=1", "--ttl", "0s"}, "get+expire needs a positive --ttl"},
		{[]string{"--mix", "get=1,set=1", "--value-size", "10"}, "at least 27 bytes"},
		{[]string{"--json="}, "empty file name"},
		{[]string{"--during", "always"}, `--during "always": want none or bgsave`},
		{[]string{"--workload", "expiry", "--during", "bgsave"}, "--during bgsave applies only to the session, set, get and hash-session workloads"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parse(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestValidCombinations(t *testing.T) {
	for _, args := range [][]string{
		{"--requests", "1000", "--warmup", "0s"},
		{"--rate", "5000", "-P", "4"},
		{"--ttl", "0s", "--workload", "set"},
		{"--workload", "get", "--no-populate", "-P", "16"},
		{"--workload", "memory", "--flush", "--keys", "1000", "--load-conns", "2", "--pid", "1"},
		{"--workload", "expiry", "--flush", "--ttl", "1s", "--max-wait", "5s"},
		{"--key-prefix", "", "--key-size", "40"},
		{"--mix", "getex=70,update=10,get+expire=15,del=5", "--dist", "zipf", "--zipf-s", "1.3", "--value-size", "skewed"},
		{"--mix", "get=1,set=1", "--value-size", "10", "--no-verify"},
		{"--workload", "set", "--value-size", "10"},
		{"--value-size", "200-2000", "--benchfmt", "b.txt", "--json", "r.json"},
		{"--during", "bgsave", "--rate", "30000", "--rounds", "3"},
		{"--workload", "hash-session", "--during", "bgsave"},
		{"--workload", "memory", "--during", "none"},
	} {
		_, err := parse(t, args...)
		assert.NoError(t, err, strings.Join(args, " "))
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseArgs([]string{"-h"}, &out)
	assert.ErrorIs(t, err, flag.ErrHelp)
	for _, want := range []string{"session", "memory", "expiry", "coordinated omission", "--flush", "-rate",
		"WRONG", "-benchfmt", "-dist", "zipf", "skewed", "get+expire", "KEEPTTL", "-no-verify", "-during MODE"} {
		assert.Contains(t, out.String(), want)
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run([]string{"-h"}, &stdout, &stderr))
	assert.Equal(t, exitUsage, run([]string{"-c", "0"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-c 0")
}

// TestDuringBGSaveRejectsMemory: --during bgsave measures op workloads
// only; with memory it is a usage error (exit 2) that says why.
func TestDuringBGSaveRejectsMemory(t *testing.T) {
	_, err := parse(t, "--workload", "memory", "--during", "bgsave", "--flush")
	require.Error(t, err)
	assert.Equal(t, "--during bgsave applies only to the session, set, get and hash-session workloads "+
		"(it compares their latency during snapshots with idle), not to --workload memory", err.Error())
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitUsage, run([]string{"--during", "bgsave", "--workload", "memory"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "bench: --during bgsave applies only to the session, set, get and hash-session workloads")
	assert.Empty(t, stdout.String(), "nothing was run")

	cfg, err := parse(t)
	require.NoError(t, err)
	assert.Equal(t, duringNone, cfg.During, "the default")
	cfg, err = parse(t, "--during", "bgsave")
	require.NoError(t, err)
	assert.Equal(t, duringBGSave, cfg.During)
}

func TestCommas(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		assert.Equal(t, want, commas(in))
	}
}

func TestJSONFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		json bool
		file string
	}{
		{nil, false, ""},
		{[]string{"--json"}, true, ""},
		{[]string{"-json", "-c", "4"}, true, ""},
		{[]string{"--json=-"}, true, ""},
		{[]string{"--json", "out.json"}, false, "out.json"},
		{[]string{"--json=out.json", "-c", "4"}, false, "out.json"},
		{[]string{"-c", "4", "--json", "r.json", "--rounds", "2"}, false, "r.json"},
	} {
		cfg, err := parse(t, tc.args...)
		require.NoError(t, err, tc.args)
		assert.Equal(t, tc.json, cfg.JSON, tc.args)
		assert.Equal(t, tc.file, cfg.JSONFile, tc.args)
	}
}

func TestNewFlagDefaults(t *testing.T) {
	cfg, err := parse(t)
	require.NoError(t, err)
	assert.Equal(t, fixedSize(700), cfg.Sizes)
	assert.Equal(t, distUniform, cfg.Dist)
	assert.Equal(t, 1.1, cfg.ZipfS)
	assert.False(t, cfg.NoVerify)
	cfg, err = parse(t, "--value-size", "skewed")
	require.NoError(t, err)
	assert.Equal(t, 64<<10, cfg.ValueSize, "ValueSize is the largest size")
}
