package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	wlSession = "session"
	wlSet     = "set"
	wlGet     = "get"
	wlMemory  = "memory"
	wlExpiry  = "expiry"

	defaultTarget    = "127.0.0.1:6379"
	defaultMix       = "getex=80,set=15,del=5"
	defaultKeyPrefix = "sess:"
	defaultExpiryTTL = 2 * time.Second
)

var workloads = []string{wlSession, wlSet, wlGet, wlMemory, wlExpiry}

// config is the validated command line.
type config struct {
	Targets      []string
	Workload     string
	Conns        int
	Pipeline     int
	Duration     time.Duration
	Requests     int64
	Warmup       time.Duration
	Keys         int64
	KeySize      int
	KeyPrefix    string
	ValueSize    int
	TTL          time.Duration
	MixText      string
	Mix          mix
	Rate         float64
	Password     string
	JSON         bool
	Seed         uint64
	NoPopulate   bool
	Flush        bool
	Rounds       int
	MaxWait      time.Duration
	LoadConns    int
	LoadPipeline int
	PID          int

	set map[string]bool // flags given explicitly
}

func (c *config) opWorkload() bool {
	return c.Workload == wlSession || c.Workload == wlSet || c.Workload == wlGet
}

// populates reports whether the keyspace is written before the measured run.
func (c *config) populates() bool {
	return (c.Workload == wlSession || c.Workload == wlGet) && !c.NoPopulate
}

// targetList is the repeatable --target flag.
type targetList []string

func (t *targetList) String() string { return strings.Join(*t, ",") }

func (t *targetList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return fmt.Errorf("target %q: want host:port", s)
		}
		if host == "" {
			return fmt.Errorf("target %q: empty host", s)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("target %q: bad port %q", s, port)
		}
		*t = append(*t, s)
	}
	return nil
}

const usageHeader = `bench: black-box load generator for sessiond and any Redis-compatible server.

Usage:
  go run ./bench [flags]
  go run ./bench --target 127.0.0.1:7000 --target 127.0.0.1:6379 --rounds 3

It speaks RESP2 over its own lean client, one goroutine per connection, and
records every reply's latency in microseconds (HdrHistogram per connection,
merged at the end). Keys are "sess:" + 32 hex digits of a 128-bit id derived
from the key index (37 bytes by default); values are deterministic printable
bytes. With several --target flags the same workload runs on each target in
turn, rounds alternating between targets, and ratios are given relative to
the first target. A run that got any error reply or connection failure exits
non-zero (1); a usage error exits 2; an interrupted run (SIGINT) prints what it
has and exits 130.

Workloads (--workload):
  session  The session-store mix: GETEX key EX <ttl> / SET key <value> EX <ttl> /
           DEL key, weighted by --mix (default getex=80,set=15,del=5), keys
           uniform over --keys. The keyspace is populated first (pipelined SETs)
           unless --no-populate, so GETEX hits. Reports ops/s, latency
           percentiles overall and per command, GETEX hit ratio, errors.
  set      SET key <value> EX <ttl> (no EX with --ttl 0), random keys.
  get      GET key over a populated keyspace (as for session).
           set and get are the plain redis-benchmark style workloads; use -P 16
           for the pipelined figures.
  memory   FLUSHALL (only with --flush) then load --keys sessions (42-byte keys,
           --value-size values, EX --ttl) as fast as possible with pipelined SETs,
           and report INFO used_memory, DBSIZE and the server process RSS
           (/proc/<pid>/status VmRSS, pid from INFO server process_id or --pid,
           only when the server runs on this machine) before and after, and
           bytes per session = delta RSS / sessions.
  expiry   FLUSHALL (only with --flush) then write --keys sessions with EX --ttl
           (default 2s for this workload), recording each one's deadline; poll
           DBSIZE every 10 ms until it is back to its pre-run value and report
           when, relative to the last deadline, sampling RSS over time; if the
           server accepts CONFIG SET notify-keyspace-events Ex, subscribe to
           __keyevent@0__:expired and report (event arrival - deadline)
           p50/p99/max and the count received. Bounded by --max-wait after the
           last deadline; notify-keyspace-events is restored afterwards.
  memory and expiry refuse to run on a non-empty database unless --flush is
  given (which runs FLUSHALL: it destroys all data on the target).

Load model: closed loop by default (each connection sends its next batch of -P
commands as soon as the previous replies are in; latency from the send). With
--rate the loop is open: a fixed schedule of rate ops/s spread evenly over the
connections, and latency is measured from each command's intended send time,
so a stalled server shows up as latency instead of being hidden (no
coordinated omission).

Flags:
`

func usage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprint(out, usageHeader)
	fs.PrintDefaults()
}

// parseArgs parses and validates the command line. It returns flag.ErrHelp
// for -h.
func parseArgs(args []string, out io.Writer) (*config, error) {
	cfg := &config{}
	var targets targetList
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Var(&targets, "target", "server `host:port`; repeat (or comma-separate) to compare servers side by side (default "+defaultTarget+")")
	fs.StringVar(&cfg.Workload, "workload", wlSession, "workload: "+strings.Join(workloads, ", ")+" (see above)")
	fs.IntVar(&cfg.Conns, "c", 50, "client connections (one goroutine each)")
	fs.IntVar(&cfg.Pipeline, "P", 1, "pipeline depth: commands written per batch before reading their replies")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per round, after the warmup (session/set/get)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "measure exactly `N` operations per round instead of --duration (session/set/get)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "load sent before measuring starts; its replies are not recorded (session/set/get)")
	fs.Int64Var(&cfg.Keys, "keys", 1_000_000, "keyspace size; for memory and expiry the number of sessions written")
	fs.IntVar(&cfg.KeySize, "key-size", 0, "key length in bytes, >= len(prefix)+32 (0: 37 for session/set/get, 42 for memory/expiry)")
	fs.StringVar(&cfg.KeyPrefix, "key-prefix", defaultKeyPrefix, "key prefix, followed by hex digits of the session id")
	fs.IntVar(&cfg.ValueSize, "value-size", 700, "value size in bytes")
	fs.DurationVar(&cfg.TTL, "ttl", 1800*time.Second, "EX of SET/GETEX, whole seconds; 0 sends no EX (session/set/get); expiry defaults to 2s")
	fs.StringVar(&cfg.MixText, "mix", defaultMix, "session command `weights` (op=weight,...) over getex, get, set, del")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: total `ops/s` on a fixed schedule, latency from intended send time (0: closed loop, as fast as possible)")
	fs.StringVar(&cfg.Password, "password", "", "AUTH password sent on every connection")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON on stdout")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the command, key and value choices (keys themselves depend only on the index)")
	fs.BoolVar(&cfg.NoPopulate, "no-populate", false, "do not pre-populate the keyspace before session/get")
	fs.BoolVar(&cfg.Flush, "flush", false, "memory/expiry: FLUSHALL the target first (DESTROYS ALL ITS DATA)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "rounds per target; with several targets the rounds alternate between them")
	fs.DurationVar(&cfg.MaxWait, "max-wait", 30*time.Second, "expiry: how long to wait after the last deadline for the keys to go")
	fs.IntVar(&cfg.LoadConns, "load-conns", 4, "connections used to populate / load keys")
	fs.IntVar(&cfg.LoadPipeline, "load-pipeline", 128, "pipeline depth used to populate / load keys")
	fs.IntVar(&cfg.PID, "pid", 0, "memory/expiry: server pid for RSS when INFO does not report process_id (single target)")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	cfg.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.set[f.Name] = true })
	cfg.Targets = targets
	if len(cfg.Targets) == 0 {
		cfg.Targets = []string{defaultTarget}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks the flags against each other and fills in the
// workload-dependent defaults.
func (c *config) validate() error {
	if !slices.Contains(workloads, c.Workload) {
		return fmt.Errorf("--workload %q: want one of %s", c.Workload, strings.Join(workloads, ", "))
	}
	op := c.opWorkload()
	onlyFor := func(name, what string, ok bool) error {
		if c.set[name] && !ok {
			return fmt.Errorf("--%s applies only to %s, not to --workload %s", name, what, c.Workload)
		}
		return nil
	}
	for _, e := range []error{
		onlyFor("mix", "--workload session", c.Workload == wlSession),
		onlyFor("rate", "session, set and get", op),
		onlyFor("requests", "session, set and get", op),
		onlyFor("duration", "session, set and get", op),
		onlyFor("warmup", "session, set and get", op),
		onlyFor("P", "session, set and get (memory/expiry use --load-pipeline)", op),
		onlyFor("c", "session, set and get (memory/expiry use --load-conns)", op),
		onlyFor("no-populate", "session and get", c.Workload == wlSession || c.Workload == wlGet),
		onlyFor("flush", "memory and expiry", !op),
		onlyFor("max-wait", "--workload expiry", c.Workload == wlExpiry),
		onlyFor("pid", "memory and expiry", !op),
	} {
		if e != nil {
			return e
		}
	}
	switch {
	case c.Conns < 1 || c.Conns > 10000:
		return fmt.Errorf("-c %d: want 1..10000 connections", c.Conns)
	case c.Pipeline < 1 || c.Pipeline > 10000:
		return fmt.Errorf("-P %d: want a pipeline depth of 1..10000", c.Pipeline)
	case c.Requests < 0:
		return fmt.Errorf("--requests %d: must not be negative", c.Requests)
	case c.set["requests"] && c.set["duration"]:
		return errors.New("--duration and --requests are exclusive: give one")
	case c.Requests == 0 && c.Duration <= 0:
		return fmt.Errorf("--duration %v: must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup %v: must not be negative", c.Warmup)
	case c.Keys < 1 || c.Keys > 1<<40:
		return fmt.Errorf("--keys %d: want 1..%d", c.Keys, int64(1)<<40)
	case !op && c.Keys > 100_000_000:
		return fmt.Errorf("--keys %d: memory/expiry write at most 100000000 sessions", c.Keys)
	case len(c.KeyPrefix) > maxKeyPrefix:
		return fmt.Errorf("--key-prefix: at most %d bytes", maxKeyPrefix)
	case c.ValueSize < 1 || c.ValueSize > 64<<20:
		return fmt.Errorf("--value-size %d: want 1..%d bytes", c.ValueSize, 64<<20)
	case c.TTL < 0 || c.TTL%time.Second != 0:
		return fmt.Errorf("--ttl %v: want whole seconds (EX), e.g. 1800s", c.TTL)
	case c.Rate < 0:
		return fmt.Errorf("--rate %v: must not be negative", c.Rate)
	case c.Rounds < 1 || c.Rounds > 1000:
		return fmt.Errorf("--rounds %d: want 1..1000", c.Rounds)
	case c.MaxWait <= 0:
		return fmt.Errorf("--max-wait %v: must be positive", c.MaxWait)
	case c.LoadConns < 1 || c.LoadConns > 1000:
		return fmt.Errorf("--load-conns %d: want 1..1000", c.LoadConns)
	case c.LoadPipeline < 1 || c.LoadPipeline > 100000:
		return fmt.Errorf("--load-pipeline %d: want 1..100000", c.LoadPipeline)
	case c.PID < 0:
		return fmt.Errorf("--pid %d: must not be negative", c.PID)
	case c.PID > 0 && len(c.Targets) > 1:
		return errors.New("--pid applies to a single --target")
	}
	if c.Requests > 0 && c.Requests < int64(c.Conns) {
		return fmt.Errorf("--requests %d: fewer than the %d connections", c.Requests, c.Conns)
	}
	if c.Workload == wlExpiry && !c.set["ttl"] {
		c.TTL = defaultExpiryTTL
	}
	if !op && c.TTL == 0 {
		return fmt.Errorf("--ttl 0: %s writes sessions with EX, give a positive TTL", c.Workload)
	}
	if c.KeySize == 0 {
		c.KeySize = len(c.KeyPrefix) + idHexDigits
		if !op {
			c.KeySize += 5 // 42 bytes with "sess:"
		}
	}
	if _, err := newKeyGen(c.KeyPrefix, c.KeySize); err != nil {
		return fmt.Errorf("--key-size: %w", err)
	}
	var err error
	switch c.Workload {
	case wlSession:
		c.Mix, err = parseMix(c.MixText)
		if err != nil {
			return fmt.Errorf("--mix %q: %w", c.MixText, err)
		}
	case wlSet:
		c.Mix, _ = parseMix("set=1")
		c.MixText = "set=1"
	case wlGet:
		c.Mix, _ = parseMix("get=1")
		c.MixText = "get=1"
	}
	return nil
}

// Commands and the weighted mix.

type opKind uint8

const (
	opGetex opKind = iota
	opGet
	opSet
	opDel
	numOpKinds
)

var (
	opNames    = [numOpKinds]string{"GETEX", "GET", "SET", "DEL"}
	opMixNames = [numOpKinds]string{"getex", "get", "set", "del"}
)

// mix picks commands with fixed integer weights: pick(r) for r uniform in
// [0, total) returns each op with probability weight/total exactly.
type mix struct {
	ops     []opKind
	weights []uint64
	cum     []uint64 // cumulative weights
	total   uint64
}

func parseMix(s string) (mix, error) {
	var m mix
	seen := map[opKind]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return mix{}, fmt.Errorf("%q: want op=weight", part)
		}
		op := numOpKinds
		for i, n := range opMixNames {
			if strings.EqualFold(strings.TrimSpace(name), n) {
				op = opKind(i)
			}
		}
		if op == numOpKinds {
			return mix{}, fmt.Errorf("unknown op %q (want getex, get, set or del)", name)
		}
		if seen[op] {
			return mix{}, fmt.Errorf("op %q given twice", name)
		}
		seen[op] = true
		w, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
		if err != nil {
			return mix{}, fmt.Errorf("weight %q of %s: want a non-negative integer", val, name)
		}
		if w == 0 {
			continue
		}
		m.ops = append(m.ops, op)
		m.weights = append(m.weights, w)
		m.total += w
		m.cum = append(m.cum, m.total)
	}
	if m.total == 0 {
		return mix{}, errors.New("no op with a positive weight")
	}
	return m, nil
}

func (m *mix) pick(r uint64) opKind {
	for i, c := range m.cum {
		if r < c {
			return m.ops[i]
		}
	}
	return m.ops[len(m.ops)-1]
}

// has reports whether op can be picked.
func (m *mix) has(op opKind) bool { return slices.Contains(m.ops, op) }

// String renders the mix as percentages, e.g. "getex=80%,set=15%,del=5%".
func (m *mix) String() string {
	type kv struct {
		op opKind
		w  uint64
	}
	var parts []kv
	for i, op := range m.ops {
		parts = append(parts, kv{op, m.weights[i]})
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].w > parts[j].w })
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s%%", opNames[p.op], strconv.FormatFloat(100*float64(p.w)/float64(m.total), 'f', -1, 64))
	}
	return b.String()
}
