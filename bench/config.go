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
	wlHash    = "hash-session"

	defaultTarget    = "127.0.0.1:6379"
	defaultMix       = "getex=80,set=15,del=5"
	defaultHashMix   = "hgetall=60,hmget=20,login=15,logout=5"
	defaultKeyPrefix = "sess:"
	defaultExpiryTTL = 2 * time.Second
)

var workloads = []string{wlSession, wlSet, wlGet, wlHash, wlMemory, wlExpiry}

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
	ValueSize    int    // the largest value size
	ValueSizes   string // --value-size as given
	Sizes        sizeDist
	Dist         string
	ZipfS        float64
	NoVerify     bool
	JSONFile     string // --json=FILE
	BenchFmt     string
	HTMLFile     string // --html FILE
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
	During       string // --during: none or bgsave

	set map[string]bool // flags given explicitly
}

func (c *config) opWorkload() bool {
	return c.Workload == wlSession || c.Workload == wlSet || c.Workload == wlGet || c.Workload == wlHash
}

// populates reports whether the keyspace is written before the measured run.
func (c *config) populates() bool {
	return (c.Workload == wlSession || c.Workload == wlGet || c.Workload == wlHash) && !c.NoPopulate
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
bytes that name their key (see Verification). With several --target flags the
same workload runs on each target in turn, rounds alternating between targets,
and ratios are given relative to the first target. A run that got any error
reply, any WRONG reply or a connection failure exits non-zero (1); a usage
error exits 2; an interrupted run (SIGINT) prints what it has and exits 130.

Workloads (--workload):
  session  The session-store mix, weighted by --mix (default getex=80,set=15,del=5)
           over the ops
             getex       GETEX key EX <ttl>
             get         GET key
             set         SET key <value> EX <ttl>
             del         DEL key
             update      SET key <value> KEEPTTL
             get+expire  GET key, then EXPIRE key <ttl> (pipelined together and
                         counted as one request, latency to the second reply)
           e.g. --mix getex=70,update=10,get+expire=15,del=5; keys over --keys
           drawn by --dist. The keyspace is populated first (pipelined SETs)
           unless --no-populate, so reads hit. Reports ops/s, latency
           percentiles overall and per command, hit ratios, errors.
  hash-session
           Sessions as hashes (Spring Session / ASP.NET style), weighted by
           --mix (default hgetall=60,hmget=20,login=15,logout=5) over
             login    HSET key creationTime <ms> lastAccessedTime <generation>
                      maxInactiveInterval <ttl s> attr:user <user>
                      attr:payload <value>, then PEXPIRE key <ttl ms>
             hgetall  HGETALL key, then PEXPIRE key <ttl ms> (sliding expiry)
             hmget    HMGET key creationTime lastAccessedTime attr:user,
                      then PEXPIRE key <ttl ms>
             logout   DEL key
           (each pair pipelined together and counted as one request, latency
           to the second reply). The keyspace is populated with logins first
           unless --no-populate. Verified like session: HGETALL returns the
           five fields written (attr:payload checked as a value, the others
           recomputed), HMGET three of them, nothing for a deleted key; HSET
           adds 0 or 5 fields, PEXPIRE answers 0 or 1. Needs a positive --ttl.
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

Keys and values (session/set/get): --dist uniform picks keys uniformly; --dist
zipf picks key rank i with probability proportional to 1/(1+i)^s (--zipf-s,
default 1.1: over 1M keys the hottest key gets 12% of the requests, the top
0.1% of keys 69%, the top 1% 82%). --value-size is N (fixed), LO-HI (uniform in
[LO, HI]) or skewed: 60% 100-600 B, 25% 601 B-1.5 KB, 10% 1.5-4 KB, 4% 4-16 KB,
1% 16-64 KiB, uniform within each bucket (mean ~1.55 KB, median ~520 B). A
value's size is a function of its key and write generation.

Verification (session/set/get; --no-verify turns it off): every reply is
checked and a wrong one counts as an error of kind WRONG (the first few are
described; the run exits 1). SET must answer +OK, DEL and EXPIRE 0 or 1, GET
and GETEX nil or a value bench wrote for that key: values start with a
27-byte header "v<key index, 10 hex>.<generation, 14 hex>:" and the length and
all the other bytes are recomputed from it (values shorter than 27 bytes are
only checked against the population's, so the mix must then not both read and
write). With -c 1 (one ordered stream, --keys up to 8388608) every key's state
is tracked and the check is exact: a read returns the value written last, nil
only for deleted keys or keys that may have expired (TTL minus 1 s after the
population started; never with --ttl 0), DEL/EXPIRE 1 exactly when the key
exists. With more connections reads may race writes, so any generation
written for the key is accepted; a read-only mix (get workload) must see the
population's values and, without DEL, no nil. Exact tracking assumes no other
client writes the keys. --no-populate accepts values of earlier runs only if
they were written with the same --value-size (sizes are recomputed) by a
bench version with verification; anything else is WRONG.

Output: a text report on stdout, or JSON with --json (on stdout), or both with
--json FILE (text on stdout, JSON to FILE). --html FILE also writes a
self-contained HTML page (no script, no network needed to view it): the
parameters, the summary, rounds and ratio tables, and per target the
throughput over time (ops/s sampled every second of each measured round) and
the latency percentile curve (p0 to p99.999, on HdrHistogram's log-scaled
1/(1-percentile) axis), as inline SVG. When stderr is a terminal, a live progress line
there shows per round the ops so far, ops/s over the last second, the p99
latency so far (measured ops), the elapsed time and the ETA. --benchfmt FILE writes one line
per round in the Go benchmark format (ns/op = wall time per op, ops/s,
p50/p90/p99/p99.9/max latency in µs); compare runs with
"benchstat old.txt new.txt", or the targets of one run with
"benchstat -col /target file.txt".

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
	fs.StringVar(&cfg.ValueSizes, "value-size", "700", "value size in bytes: `N` (fixed), LO-HI (uniform) or skewed (see above); memory/expiry: fixed only")
	fs.StringVar(&cfg.Dist, "dist", distUniform, "key popularity (session/set/get): uniform, or zipf (rank i drawn with probability ~ 1/(1+i)^s)")
	fs.Float64Var(&cfg.ZipfS, "zipf-s", 1.1, "exponent s of --dist zipf, > 1 (larger: more skewed)")
	fs.BoolVar(&cfg.NoVerify, "no-verify", false, "do not check the replies (see Verification above)")
	fs.StringVar(&cfg.BenchFmt, "benchfmt", "", "also write one Go benchmark format line per round to `FILE`, for benchstat")
	fs.StringVar(&cfg.HTMLFile, "html", "", "also write a self-contained HTML report (tables, throughput and latency percentile charts) to `FILE`")
	fs.DurationVar(&cfg.TTL, "ttl", 1800*time.Second, "EX of SET/GETEX, whole seconds; 0 sends no EX (session/set/get); expiry defaults to 2s")
	fs.StringVar(&cfg.MixText, "mix", defaultMix, "session command `weights` (op=weight,...) over getex, get, set, del, update, get+expire;\nhash-session: over login, hgetall, hmget, logout (default "+defaultHashMix+")")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: total `ops/s` on a fixed schedule, latency from intended send time (0: closed loop, as fast as possible)")
	fs.StringVar(&cfg.Password, "password", "", "AUTH password sent on every connection")
	fs.Var(jsonFlag{cfg}, "json", "print the report as JSON on stdout instead of text; --json FILE or --json=FILE writes it to FILE and keeps the text report on stdout")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the command, key and value choices (keys themselves depend only on the index)")
	fs.BoolVar(&cfg.NoPopulate, "no-populate", false, "do not pre-populate the keyspace before session/get")
	fs.BoolVar(&cfg.Flush, "flush", false, "memory/expiry: FLUSHALL the target first (DESTROYS ALL ITS DATA)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "rounds per target; with several targets the rounds alternate between them")
	fs.DurationVar(&cfg.MaxWait, "max-wait", 30*time.Second, "expiry: how long to wait after the last deadline for the keys to go")
	fs.IntVar(&cfg.LoadConns, "load-conns", 4, "connections used to populate / load keys")
	fs.IntVar(&cfg.LoadPipeline, "load-pipeline", 128, "pipeline depth used to populate / load keys")
	fs.StringVar(&cfg.During, "during", duringNone, "`MODE` none, or bgsave: measure each round idle, then again while one extra connection keeps a BGSAVE running back to back, and report bgsave/idle latency (session, set, get, hash-session)")
	fs.IntVar(&cfg.PID, "pid", 0, "memory/expiry: server pid for RSS when INFO does not report process_id (single target)")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(joinJSONArg(args)); err != nil {
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
	if !slices.Contains(duringModes, c.During) {
		return fmt.Errorf("--during %q: want %s", c.During, strings.Join(duringModes, " or "))
	}
	if c.During != duringNone && !op {
		return fmt.Errorf("--during %s applies only to the session, set, get and hash-session workloads (it compares their latency during snapshots with idle), not to --workload %s",
			c.During, c.Workload)
	}
	onlyFor := func(name, what string, ok bool) error {
		if c.set[name] && !ok {
			return fmt.Errorf("--%s applies only to %s, not to --workload %s", name, what, c.Workload)
		}
		return nil
	}
	for _, e := range []error{
		onlyFor("mix", "session and hash-session", c.Workload == wlSession || c.Workload == wlHash),
		onlyFor("rate", "session, set and get", op),
		onlyFor("requests", "session, set and get", op),
		onlyFor("duration", "session, set and get", op),
		onlyFor("warmup", "session, set and get", op),
		onlyFor("P", "session, set and get (memory/expiry use --load-pipeline)", op),
		onlyFor("c", "session, set and get (memory/expiry use --load-conns)", op),
		onlyFor("no-populate", "session, get and hash-session", c.Workload == wlSession || c.Workload == wlGet || c.Workload == wlHash),
		onlyFor("flush", "memory and expiry", !op),
		onlyFor("max-wait", "--workload expiry", c.Workload == wlExpiry),
		onlyFor("pid", "memory and expiry", !op),
		onlyFor("dist", "session, set and get", op),
		onlyFor("zipf-s", "--dist zipf", c.Dist == distZipf),
		onlyFor("no-verify", "session, set and get", op),
		onlyFor("benchfmt", "session, set and get", op),
		onlyFor("html", "session, set, get and hash-session", op),
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
	if c.Sizes, err = parseSizeDist(c.ValueSizes); err != nil {
		return fmt.Errorf("--value-size %s: %w", c.ValueSizes, err)
	}
	if !op && c.Sizes.kind != sizeFixed {
		return fmt.Errorf("--value-size %s: %s takes a fixed size", c.ValueSizes, c.Workload)
	}
	c.ValueSize = c.Sizes.hi
	switch c.Dist {
	case distUniform:
	case distZipf:
		if !(c.ZipfS > 1) || c.ZipfS > 100 {
			return fmt.Errorf("--zipf-s %v: want an exponent above 1 (at most 100)", c.ZipfS)
		}
	default:
		return fmt.Errorf("--dist %q: want uniform or zipf", c.Dist)
	}
	switch c.Workload {
	case wlSession, wlHash:
		if c.Workload == wlHash && !c.set["mix"] {
			c.MixText = defaultHashMix
		}
		c.Mix, err = parseMix(c.MixText)
		if err != nil {
			return fmt.Errorf("--mix %q: %w", c.MixText, err)
		}
		for _, op := range c.Mix.ops {
			if op != opDel && op.hash() != (c.Workload == wlHash) {
				return fmt.Errorf("--mix %q: %s is not an op of --workload %s", c.MixText, opMixNames[op], c.Workload)
			}
		}
		if c.Workload == wlHash && c.TTL == 0 {
			return errors.New("--ttl 0: hash-session sends PEXPIRE key <ttl>, give a positive TTL")
		}
	case wlSet:
		c.Mix, _ = parseMix("set=1")
		c.MixText = "set=1"
	case wlGet:
		c.Mix, _ = parseMix("get=1")
		c.MixText = "get=1"
	}
	if c.Mix.has(opGetExpire) && c.TTL == 0 {
		return errors.New("--mix get+expire needs a positive --ttl (EXPIRE key <ttl>)")
	}
	if op && !c.NoVerify && c.Sizes.lo < payloadHdrLen && hasWrites(c.Mix) && hasReads(c.Mix) {
		return fmt.Errorf("--value-size %s: values written during the run must be at least %d bytes to be verified (or give --no-verify)",
			c.ValueSizes, payloadHdrLen)
	}
	return nil
}

func hasWrites(m mix) bool { return m.has(opSet) || m.has(opUpdate) || m.has(opHLogin) }

func hasReads(m mix) bool {
	return m.has(opGet) || m.has(opGetex) || m.has(opGetExpire) || m.has(opHGetAll) || m.has(opHMGet)
}

const (
	distUniform = "uniform"
	distZipf    = "zipf"
)

// jsonFlag is --json: bare, JSON on stdout; with a value, JSON to that file.
type jsonFlag struct{ cfg *config }

func (j jsonFlag) IsBoolFlag() bool { return true }

func (j jsonFlag) String() string {
	if j.cfg == nil {
		return "false"
	}
	if j.cfg.JSONFile != "" {
		return j.cfg.JSONFile
	}
	return strconv.FormatBool(j.cfg.JSON)
}

func (j jsonFlag) Set(v string) error {
	switch v {
	case "true", "-":
		j.cfg.JSON, j.cfg.JSONFile = true, ""
	case "false":
		j.cfg.JSON, j.cfg.JSONFile = false, ""
	case "":
		return errors.New("empty file name")
	default:
		j.cfg.JSON, j.cfg.JSONFile = false, v
	}
	return nil
}

// joinJSONArg turns "--json FILE" into "--json=FILE" (the flag package takes
// a boolean flag's value only after "="). bench has no positional arguments,
// so a word after --json that is not a flag is its file.
func joinJSONArg(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--json" || a == "-json") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// Commands and the weighted mix.

type opKind uint8

const (
	opGetex opKind = iota
	opGet
	opSet
	opDel
	opUpdate    // SET key value KEEPTTL
	opGetExpire // GET key, then EXPIRE key ttl: one logical request
	opHLogin    // hash-session: HSET key <5 fields>, then PEXPIRE key ttl-ms
	opHGetAll   // hash-session: HGETALL key, then PEXPIRE key ttl-ms
	opHMGet     // hash-session: HMGET key <3 fields>, then PEXPIRE key ttl-ms
	numOpKinds
)

var (
	opNames    = [numOpKinds]string{"GETEX", "GET", "SET", "DEL", "SET-KEEPTTL", "GET+EXPIRE", "HSET+PEXPIRE", "HGETALL+PEXPIRE", "HMGET+PEXPIRE"}
	opMixNames = [numOpKinds]string{"getex", "get", "set", "del", "update", "get+expire", "login", "hgetall", "hmget"}
)

// writes reports whether op writes a value (and so takes a generation).
func (op opKind) writes() bool { return op == opSet || op == opUpdate || op == opHLogin }

// hash reports whether op is one of the hash-session workload's (its
// logout, DEL, is shared with session).
func (op opKind) hash() bool { return op == opHLogin || op == opHGetAll || op == opHMGet }

// replies is the number of replies of one request of op.
func (op opKind) replies() int {
	if op == opGetExpire || op.hash() {
		return 2
	}
	return 1
}

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
		if strings.EqualFold(strings.TrimSpace(name), "logout") {
			op = opDel
		}
		if op == numOpKinds {
			return mix{}, fmt.Errorf("unknown op %q (want getex, get, set, del, update or get+expire; hash-session: login, hgetall, hmget or logout)", name)
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
