package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// latencySummary is in microseconds.
type latencySummary struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	P9999 int64   `json:"p99_99"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
}

func summarize(h *hdr.Histogram) latencySummary {
	if h == nil || h.TotalCount() == 0 {
		return latencySummary{}
	}
	p := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9, 99.99})
	return latencySummary{
		Count: h.TotalCount(), Min: h.Min(), Max: h.Max(), Mean: math.Round(h.Mean()*10) / 10,
		P50: p[50], P90: p[90], P99: p[99], P999: p[99.9], P9999: p[99.99],
	}
}

// pctPoint is one point of a latency percentile curve.
type pctPoint struct {
	Percentile float64 `json:"percentile"`
	Us         int64   `json:"us"`
}

// Percentile curves run from p0 to p(100 - 10^-curveNines * 100), i.e.
// p99.999, with curveTicks points per decade of 1/(1-percentile), the
// HdrHistogram plots' log-scaled axis.
const (
	curveNines = 5
	curveTicks = 10
)

// nines maps a percentile to the log-scaled axis: log10(1/(1-p/100)); 0 for
// p0, 2 for p99, 5 for p99.999.
func nines(p float64) float64 { return -math.Log10(1 - p/100) }

// percentileCurve returns h's latency at percentiles evenly spaced on the
// log-scaled axis, nil for an empty histogram.
func percentileCurve(h *hdr.Histogram) []pctPoint {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	ps := make([]float64, 0, curveNines*curveTicks+1)
	for i := 0; i <= curveNines*curveTicks; i++ {
		x := float64(i) / curveTicks
		p := 100 * (1 - math.Pow(10, -x))
		ps = append(ps, math.Round(p*1e6)/1e6)
	}
	vals := h.ValueAtPercentiles(ps)
	out := make([]pctPoint, len(ps))
	for i, p := range ps {
		out[i] = pctPoint{Percentile: p, Us: vals[p]}
	}
	out[0].Us = h.Min()
	return out
}

type commandResult struct {
	Command string         `json:"command"`
	Count   int64          `json:"count"`
	Nulls   int64          `json:"nulls"` // null replies: GET/GETEX misses
	Errors  int64          `json:"errors"`
	Latency latencySummary `json:"latency_us"`
}

// opRun is one measured round (Round >= 1) or all rounds of a target merged
// (Round 0).
type opRun struct {
	Target     string           `json:"target"`
	Phase      string           `json:"phase,omitempty"` // --during bgsave: "idle", or "bgsave" (saves running back to back)
	Round      int              `json:"round"`
	Rounds     int              `json:"rounds"`
	Ops        int64            `json:"ops"`
	Seconds    float64          `json:"seconds"`
	OpsPerSec  float64          `json:"ops_per_sec"`
	Latency    latencySummary   `json:"latency_us"`
	Commands   []commandResult  `json:"commands"`
	Errors     map[string]int64 `json:"errors"`
	ErrorTotal int64            `json:"error_total"`
	WarmupOps  int64            `json:"warmup_ops"`
	TargetRate float64          `json:"target_rate,omitempty"`
	// SendLag: open loop, how late commands left versus their schedule (µs);
	// it is part of the latency, and mostly the client's timer granularity.
	SendLag     *latencySummary `json:"send_lag_us,omitempty"`
	Clamped     int64           `json:"clamped_latencies,omitempty"`
	CPU         *cpuUsage       `json:"cpu,omitempty"` // over the measured window
	Interrupted bool            `json:"interrupted,omitempty"`
	Failure     string          `json:"failure,omitempty"`
	// Verified: the replies were checked (not --no-verify); Wrong of them
	// failed the check (also counted in Errors as WRONG, warmup included);
	// Mismatches describes the first few.
	Verified   bool     `json:"verified"`
	Wrong      int64    `json:"wrong"`
	Mismatches []string `json:"mismatches,omitempty"`
	// Throughput: a round's ops/s, sampled once a second while measuring.
	Throughput []rateSample `json:"throughput,omitempty"`
	// LatencyCurve: the latency percentile distribution of all ops, from p0
	// to p99.999 (10 points per decade of 1/(1-percentile)).
	LatencyCurve []pctPoint `json:"latency_curve_us,omitempty"`
	// BGSave: the saves of the bgsave phase.
	BGSave *saveStats `json:"bgsave,omitempty"`
	// VsIdle: the bgsave phase's p50, p99 and p99.9 of all commands over the
	// idle phase's of the same round (of all rounds, merged).
	VsIdle ratios `json:"vs_idle,omitempty"`

	hist     [numOpKinds]*hdr.Histogram
	all      *hdr.Histogram
	lag      *hdr.Histogram
	count    [numOpKinds]int64
	nulls    [numOpKinds]int64
	errCount [numOpKinds]int64
}

// label names the run's target, and its phase with --during bgsave.
func (r *opRun) label() string { return targetLabel(r.Target, r.Phase) }

// targetLabel names a target, and a phase with --during bgsave:
// "host:port (bgsave)".
func targetLabel(target, phase string) string {
	if phase == "" {
		return target
	}
	return target + " (" + phase + ")"
}

// finish derives the reported fields from the histograms and counters.
func (r *opRun) finish() {
	r.all = newHist()
	r.Commands = nil
	r.Ops, r.ErrorTotal = 0, 0
	for op := range numOpKinds {
		if r.hist[op] == nil {
			continue
		}
		r.all.Merge(r.hist[op])
		r.Ops += r.count[op]
		r.Commands = append(r.Commands, commandResult{
			Command: opNames[op], Count: r.count[op], Nulls: r.nulls[op], Errors: r.errCount[op],
			Latency: summarize(r.hist[op]),
		})
	}
	for _, v := range r.Errors {
		r.ErrorTotal += v
	}
	r.Latency = summarize(r.all)
	r.LatencyCurve = percentileCurve(r.all)
	if r.lag != nil {
		l := summarize(r.lag)
		r.SendLag = &l
	}
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Ops) / r.Seconds
	}
}

// mergeRuns merges a target's rounds: counts and histograms add up, ops/s is
// total ops over total measured seconds.
func mergeRuns(runs []*opRun) *opRun {
	m := &opRun{Target: runs[0].Target, Phase: runs[0].Phase, Errors: map[string]int64{}, TargetRate: runs[0].TargetRate, Verified: runs[0].Verified}
	var saves []*saveStats
	for _, r := range runs {
		saves = append(saves, r.BGSave)
		m.Rounds++
		m.Wrong += r.Wrong
		for _, s := range r.Mismatches {
			if len(m.Mismatches) < maxMismatches {
				m.Mismatches = append(m.Mismatches, s)
			}
		}
		m.Seconds += r.Seconds
		m.WarmupOps += r.WarmupOps
		m.Clamped += r.Clamped
		if r.lag != nil {
			if m.lag == nil {
				m.lag = newHist()
			}
			m.lag.Merge(r.lag)
		}
		m.Interrupted = m.Interrupted || r.Interrupted
		for k, v := range r.Errors {
			m.Errors[k] += v
		}
		for op := range numOpKinds {
			if r.hist[op] == nil {
				continue
			}
			if m.hist[op] == nil {
				m.hist[op] = newHist()
			}
			m.hist[op].Merge(r.hist[op])
			m.count[op] += r.count[op]
			m.nulls[op] += r.nulls[op]
			m.errCount[op] += r.errCount[op]
		}
	}
	m.BGSave = mergeSaves(saves)
	m.finish()
	return m
}

// ratio compares a target with the first one (value / baseline value).
type ratio struct {
	Target   string `json:"target"`
	Phase    string `json:"phase,omitempty"` // --during bgsave: the phase compared
	Baseline string `json:"baseline"`
	Ratios   ratios `json:"ratios"`
}

// ratios are figures of a run over a baseline run's, by name; a figure whose
// baseline is not positive is left out (JSON has no NaN or Inf).
type ratios map[string]float64

// ratioFigures are the figures ratios compare, by name.
var ratioFigures = map[string]func(*opRun) float64{
	"ops_per_sec": func(r *opRun) float64 { return r.OpsPerSec },
	"p50":         func(r *opRun) float64 { return float64(r.Latency.P50) },
	"p90":         func(r *opRun) float64 { return float64(r.Latency.P90) },
	"p99":         func(r *opRun) float64 { return float64(r.Latency.P99) },
	"p99_9":       func(r *opRun) float64 { return float64(r.Latency.P999) },
	"p99_99":      func(r *opRun) float64 { return float64(r.Latency.P9999) },
	"max":         func(r *opRun) float64 { return float64(r.Latency.Max) },
}

// runRatios compares the named figures (keys of ratioFigures) of run with
// those of baseline.
func runRatios(run, baseline *opRun, names ...string) ratios {
	m := ratios{}
	for _, name := range names {
		fig := ratioFigures[name]
		if b, v := fig(baseline), fig(run); b > 0 && v >= 0 {
			m[name] = v / b
		}
	}
	return m
}

// text renders a ratio, "n/a" when it was left out.
func (m ratios) text(name string) string {
	v, ok := m[name]
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("x%.2f", v)
}

// params is the exact set of parameters, printed at the top of the report.
type params struct {
	Workload     string   `json:"workload"`
	Targets      []string `json:"targets"`
	Commands     []string `json:"commands"`
	Mix          string   `json:"mix,omitempty"`
	Connections  int      `json:"connections,omitempty"`
	Pipeline     int      `json:"pipeline,omitempty"`
	Loop         string   `json:"loop,omitempty"`
	Rate         float64  `json:"rate,omitempty"`
	DurationS    float64  `json:"duration_s,omitempty"`
	Requests     int64    `json:"requests,omitempty"`
	WarmupS      float64  `json:"warmup_s"`
	Keys         int64    `json:"keys"`
	KeySize      int      `json:"key_size"`
	ExampleKey   string   `json:"example_key"`
	ValueSize    int      `json:"value_size"` // the largest
	ValueSizes   string   `json:"value_sizes"`
	KeyDist      string   `json:"key_dist,omitempty"`
	Verify       string   `json:"verify,omitempty"`
	TTLSeconds   int64    `json:"ttl_s"`
	Seed         uint64   `json:"seed"`
	During       string   `json:"during,omitempty"` // --during bgsave
	Populate     bool     `json:"populate"`
	Flush        bool     `json:"flush"`
	Rounds       int      `json:"rounds"`
	MaxWaitS     float64  `json:"max_wait_s,omitempty"`
	LoadConns    int      `json:"load_conns"`
	LoadPipeline int      `json:"load_pipeline"`
	PasswordSet  bool     `json:"password_set"`
	Client       string   `json:"client"`
	Started      string   `json:"started"`
	CommandLine  []string `json:"command_line"`
}

func makeParams(cfg *config, args []string) params {
	cmd := newCmdBuilder(cfg)
	p := params{
		Workload: cfg.Workload, Targets: cfg.Targets, Keys: cfg.Keys, KeySize: cfg.KeySize,
		ExampleKey: cmd.keys.key(0), ValueSize: cfg.ValueSize, TTLSeconds: int64(cfg.TTL / time.Second),
		Seed: cfg.Seed, Populate: cfg.populates(), Flush: cfg.Flush, Rounds: cfg.Rounds,
		LoadConns: cfg.LoadConns, LoadPipeline: cfg.LoadPipeline, PasswordSet: cfg.Password != "",
		Client: fmt.Sprintf("%s %s/%s, GOMAXPROCS %d, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH,
			runtime.GOMAXPROCS(0), runtime.NumCPU()),
		Started:     time.Now().Format(time.RFC3339),
		CommandLine: args,
	}
	p.ValueSizes = cfg.sizes().String()
	if cfg.opWorkload() {
		p.KeyDist = "uniform random"
		if cfg.Dist == distZipf {
			p.KeyDist = fmt.Sprintf("zipf, s=%g (rank i ~ 1/(1+i)^s)", cfg.ZipfS)
		}
		p.Verify = verifyMode(cfg)
		p.Mix = cfg.Mix.String()
		for _, op := range cfg.Mix.ops {
			w := 0.0
			for i, o := range cfg.Mix.ops {
				if o == op {
					w = 100 * float64(cfg.Mix.weights[i]) / float64(cfg.Mix.total)
				}
			}
			p.Commands = append(p.Commands, fmt.Sprintf("%s  (%s%%)", cmd.describe(op), strconv.FormatFloat(w, 'f', -1, 64)))
		}
		p.Connections, p.Pipeline, p.WarmupS = cfg.Conns, cfg.Pipeline, cfg.Warmup.Seconds()
		p.Loop = "closed (each connection sends its next batch when the previous replies are in)"
		if cfg.Rate > 0 {
			p.Rate = cfg.Rate
			p.Loop = fmt.Sprintf("open: %s ops/s on a fixed schedule, latency from the intended send time", commasF(cfg.Rate))
		}
		if cfg.Requests > 0 {
			p.Requests = cfg.Requests
		} else {
			p.DurationS = cfg.Duration.Seconds()
		}
	} else {
		p.Commands = []string{fmt.Sprintf("SET <%d-byte key> <%d B> EX %d", cfg.KeySize, cfg.ValueSize, cfg.TTL/time.Second)}
	}
	if cfg.Workload == wlExpiry {
		p.MaxWaitS = cfg.MaxWait.Seconds()
	}
	if cfg.During == duringBGSave {
		p.During = duringBGSave
	}
	return p
}

// report collects everything; text mode prints as results arrive, JSON mode
// prints the whole document at the end.
type report struct {
	Parameters  params          `json:"parameters"`
	Populate    []*loadResult   `json:"populate,omitempty"`
	Runs        []*opRun        `json:"runs,omitempty"`
	Summary     []*opRun        `json:"summary,omitempty"`
	Ratios      []ratio         `json:"ratios,omitempty"`
	Memory      []*memoryResult `json:"memory,omitempty"`
	Expiry      []*expiryResult `json:"expiry,omitempty"`
	Failures    []string        `json:"failures,omitempty"`
	Interrupted bool            `json:"interrupted,omitempty"`
	ExitCode    int             `json:"exit_code"`

	out  io.Writer `json:"-"`
	json bool
}

func (r *report) textf(format string, args ...any) {
	if !r.json {
		fmt.Fprintf(r.out, format, args...)
	}
}

func (r *report) fail(err error) {
	r.Failures = append(r.Failures, err.Error())
	r.textf("FAILED: %v\n", err)
}

func (r *report) printParams() {
	p := &r.Parameters
	r.textf("bench %s — %s\n", p.Workload, p.Started)
	r.textf("  command line  %s\n", strings.Join(append([]string{"bench"}, p.CommandLine...), " "))
	ts := p.Targets[0]
	if len(p.Targets) > 1 {
		ts = p.Targets[0] + " (baseline for ratios), " + strings.Join(p.Targets[1:], ", ")
	}
	r.textf("  targets       %s\n", ts)
	for i, c := range p.Commands {
		label := "commands"
		if i > 0 {
			label = ""
		}
		r.textf("  %-12s  %s\n", label, c)
	}
	if p.Loop != "" {
		r.textf("  load          %d connections, pipeline %d, %s\n", p.Connections, p.Pipeline, p.Loop)
		if p.Requests > 0 {
			r.textf("  measure       %s requests per round after %gs warmup, %d round(s) per target\n", commas(p.Requests), p.WarmupS, p.Rounds)
		} else {
			r.textf("  measure       %gs per round after %gs warmup, %d round(s) per target\n", p.DurationS, p.WarmupS, p.Rounds)
		}
		pop := "no (--no-populate)"
		if p.Populate {
			pop = fmt.Sprintf("yes, once per target before the rounds (%d conns x pipeline %d)", p.LoadConns, p.LoadPipeline)
		} else if p.Workload == wlSet {
			pop = "no (set workload)"
		}
		r.textf("  keyspace      %s keys, %s; %d-byte keys like %s; populate %s\n", commas(p.Keys), p.KeyDist, p.KeySize, p.ExampleKey, pop)
		r.textf("  verify        %s\n", p.Verify)
		if p.During == duringBGSave {
			r.textf("  phases        each round twice: idle, then bgsave (one more connection keeps a BGSAVE running: INFO persistence every %v, the next BGSAVE when rdb_bgsave_in_progress:0)\n",
				savePollInterval)
		}
	} else {
		r.textf("  sessions      %s, %d-byte keys like %s, written by %d conns x pipeline %d\n", commas(p.Keys), p.KeySize, p.ExampleKey, p.LoadConns, p.LoadPipeline)
		fl := "no: refuses a non-empty database"
		if p.Flush {
			fl = "yes: FLUSHALL before each run"
		}
		r.textf("  flush         %s\n", fl)
		if p.MaxWaitS > 0 {
			r.textf("  max wait      %gs after the last deadline; DBSIZE polled every %v\n", p.MaxWaitS, pollInterval)
		}
	}
	r.textf("  values        %s printable, deterministic; ttl %ds; seed %d; password %v\n", p.ValueSizes, p.TTLSeconds, p.Seed, p.PasswordSet)
	r.textf("  client        %s\n\n", p.Client)
}

func (r *report) printPopulate(l *loadResult) {
	r.textf("populate %s: %s keys in %.2f s (%s keys/s)%s\n", l.Target, commas(l.Keys), l.Seconds, commasF(l.KeysPerSec), errSuffix(l.Errors))
}

func errSuffix(errs map[string]int64) string {
	if len(errs) == 0 {
		return ""
	}
	return "; ERRORS: " + errString(errs)
}

func errString(errs map[string]int64) string {
	if len(errs) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(errs))
	var total int64
	for k, v := range errs {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %s", k, commas(errs[k]))
	}
	return fmt.Sprintf("%s (%s)", commas(total), strings.Join(parts, ", "))
}

const latHeader = "  latency µs           count      min      p50      p90      p99    p99.9   p99.99      max     mean\n"

func latRow(name string, l latencySummary) string {
	return fmt.Sprintf("  %-15s %10s %8d %8d %8d %8d %8d %8d %8d %8.1f", name, commas(l.Count), l.Min, l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max, l.Mean)
}

func (r *report) printRun(run *opRun) {
	phase := ""
	if run.Phase != "" {
		phase = "  phase " + run.Phase
	}
	if run.Round > 0 {
		r.textf("%s  round %d/%d%s\n", run.Target, run.Round, r.Parameters.Rounds, phase)
	} else {
		r.textf("%s  all %d rounds merged%s\n", run.Target, run.Rounds, phase)
	}
	r.textf("  throughput   %s ops/s  (%s ops in %.2f s; %s warmup ops not counted)\n",
		commasF(run.OpsPerSec), commas(run.Ops), run.Seconds, commas(run.WarmupOps))
	if run.TargetRate > 0 {
		r.textf("  open loop    target %s ops/s; latency counts from the intended send time\n", commasF(run.TargetRate))
		if l := run.SendLag; l != nil {
			r.textf("  send lag µs  (sent - scheduled, included in latency) p50 %d  p90 %d  p99 %d  p99.9 %d  max %d\n",
				l.P50, l.P90, l.P99, l.P999, l.Max)
		}
	}
	r.textf("  errors       %s\n", errString(run.Errors))
	if run.Verified {
		if run.Wrong == 0 {
			r.textf("  verified     all replies correct\n")
		} else {
			r.textf("  WRONG        %s replies failed verification; first %d:\n", commas(run.Wrong), len(run.Mismatches))
			for _, m := range run.Mismatches {
				r.textf("                 %s\n", m)
			}
		}
	}
	if run.Round > 0 {
		r.textf("  cpu          %s\n", run.CPU)
	}
	if run.BGSave != nil {
		r.textf("  saves        %s\n", run.BGSave)
	}
	r.textf("%s", latHeader)
	r.textf("%s\n", latRow("all", run.Latency))
	for _, c := range run.Commands {
		extra := ""
		if c.Command == "GET" || c.Command == "GETEX" || c.Command == "GET+EXPIRE" || c.Command == "HGETALL+PEXPIRE" || c.Command == "HMGET+PEXPIRE" {
			extra = fmt.Sprintf("   hits %.2f%%", 100*float64(c.Count-c.Nulls-c.Errors)/math.Max(1, float64(c.Count)))
		}
		r.textf("%s%s\n", latRow(c.Command, c.Latency), extra)
	}
	if run.Clamped > 0 {
		r.textf("  note         %s latencies above %ds were recorded as %ds\n", commas(run.Clamped), histMaxUs/1_000_000, histMaxUs/1_000_000)
	}
	if run.VsIdle != nil {
		r.textf("  vs idle      all commands, bgsave / idle: p50 %s   p99 %s   p99.9 %s\n",
			run.VsIdle.text("p50"), run.VsIdle.text("p99"), run.VsIdle.text("p99_9"))
	}
	if run.Interrupted {
		r.textf("  INTERRUPTED: partial round\n")
	}
	r.textf("\n")
}

// compareRuns prints the per-target summary and the ratios to the first
// target (phase by phase with --during bgsave, where it also prints each
// target's idle and bgsave latency side by side).
func (r *report) compareRuns(summ []*opRun) {
	if len(summ) == 0 {
		return
	}
	// Phase by phase, in the order they first appear: the phase's first
	// target is its baseline.
	var phases []string
	for _, s := range summ {
		if !slices.Contains(phases, s.Phase) {
			phases = append(phases, s.Phase)
		}
	}
	for _, ph := range phases {
		var base *opRun
		for _, s := range summ {
			switch {
			case s.Phase != ph:
			case base == nil:
				base = s
			default:
				r.Ratios = append(r.Ratios, ratio{Target: s.Target, Phase: ph, Baseline: base.Target,
					Ratios: runRatios(s, base, "ops_per_sec", "p50", "p90", "p99", "p99_9", "p99_99", "max")})
			}
		}
	}
	if r.Parameters.During == duringBGSave {
		r.printSnapshotTable(summ)
	}
	if len(r.Ratios) == 0 {
		return
	}
	name := func(target, phase string) string {
		if phase == "" {
			return target
		}
		return target + " " + phase
	}
	w := 22
	if len(phases) > 1 {
		w = 29
	}
	r.textf("comparison (all rounds merged)\n")
	r.textf("  %-*s %6s %12s %8s %8s %8s %8s %8s %8s\n", w, "target", "rounds", "ops/s", "p50", "p90", "p99", "p99.9", "max", "errors")
	for _, s := range summ {
		r.textf("  %-*s %6d %12s %8d %8d %8d %8d %8d %8s\n", w, name(s.Target, s.Phase), s.Rounds, commasF(s.OpsPerSec),
			s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.P999, s.Latency.Max, commas(s.ErrorTotal))
	}
	r.textf("ratios vs %s (value / baseline; ops/s: higher is better, latency: lower is better)\n", r.Ratios[0].Baseline)
	for _, rt := range r.Ratios {
		r.textf("  %-*s ops/s %s   p50 %s   p90 %s   p99 %s   p99.9 %s   max %s\n", w, name(rt.Target, rt.Phase), rt.Ratios.text("ops_per_sec"),
			rt.Ratios.text("p50"), rt.Ratios.text("p90"), rt.Ratios.text("p99"), rt.Ratios.text("p99_9"), rt.Ratios.text("max"))
	}
	r.textf("\n")
}

// printSnapshotTable prints, per target, the idle and bgsave latency of all
// commands (all rounds merged) and their ratio.
func (r *report) printSnapshotTable(summ []*opRun) {
	r.textf("latency during back-to-back background saves (all rounds merged, all commands; ratio = bgsave / idle)\n")
	r.textf("  %-22s %6s %12s %12s %10s %10s %9s %9s %11s %6s %9s\n", "target", "rounds", "idle ops/s", "bgsave ops/s",
		"idle p99", "bgsave p99", "ratio p50", "ratio p99", "ratio p99.9", "saves", "mean save")
	for _, bg := range summ {
		if bg.Phase != phaseBGSave {
			continue
		}
		var idle *opRun
		for _, s := range summ {
			if s.Target == bg.Target && s.Phase == phaseIdle {
				idle = s
			}
		}
		if idle == nil {
			continue
		}
		saves, mean := int64(0), "-"
		if st := bg.BGSave; st != nil {
			saves = st.Completed
			if st.Completed > 0 {
				mean = fmt.Sprintf("%.2f s", st.MeanS)
			}
		}
		r.textf("  %-22s %6d %12s %12s %10d %10d %9s %9s %11s %6d %9s\n", bg.Target, bg.Rounds, commasF(idle.OpsPerSec), commasF(bg.OpsPerSec),
			idle.Latency.P99, bg.Latency.P99, bg.VsIdle.text("p50"), bg.VsIdle.text("p99"), bg.VsIdle.text("p99_9"),
			saves, mean)
	}
	r.textf("\n")
}

func mb(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func bytesPer(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f B", v)
}

func orNA(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return commas(v)
}

func (r *report) printMemory(m *memoryResult) {
	r.textf("%s  round %d/%d\n", m.Target, m.Round, r.Parameters.Rounds)
	r.textf("  prepare      %s\n", m.Prepare)
	r.textf("  process      %s\n", m.Process)
	if l := m.Load; l != nil {
		r.textf("  load         %s sessions in %.2f s (%s/s)%s\n", commas(l.Keys), l.Seconds, commasF(l.KeysPerSec), errSuffix(l.Errors))
	}
	r.textf("  %-12s %16s %16s %16s\n", "", "before", "after", "delta")
	row := func(name string, b, a int64, f func(int64) string) {
		d := "n/a"
		if a >= 0 && b >= 0 {
			d = f(a - b)
		}
		r.textf("  %-12s %16s %16s %16s\n", name, f(b), f(a), d)
	}
	row("DBSIZE", m.Before.DBSize, m.After.DBSize, orNA)
	row("used_memory", m.Before.UsedMemory, m.After.UsedMemory, mb)
	row("INFO rss*", m.Before.UsedMemoryRSS, m.After.UsedMemoryRSS, mb)
	row("process RSS", m.Before.ProcessRSS, m.After.ProcessRSS, mb)
	r.textf("  per session  %s of process RSS (ΔRSS/N), %s of used_memory (Δused_memory/N); payload %d B + key %d B\n",
		bytesPer(m.BytesPerSessionRSS), bytesPer(m.BytesPerSessionMem), r.Parameters.ValueSize, r.Parameters.KeySize)
	r.textf("  (* used_memory_rss as INFO reports it; Redis refreshes it periodically, so it can lag the process RSS)\n")
	if m.Load != nil && m.Load.Interrupted {
		r.textf("  INTERRUPTED  during the load: the after column covers only the sessions written\n")
	}
	if m.Load != nil && m.After.DBSize >= 0 && m.Before.DBSize >= 0 && m.After.DBSize-m.Before.DBSize != m.Load.Keys {
		r.textf("  WARNING      DBSIZE grew by %s, not by the %s sessions written\n", commas(m.After.DBSize-m.Before.DBSize), commas(m.Load.Keys))
	}
	r.textf("\n")
}

func (r *report) printExpiry(e *expiryResult) {
	r.textf("%s  round %d/%d\n", e.Target, e.Round, r.Parameters.Rounds)
	r.textf("  prepare      %s\n", e.Prepare)
	r.textf("  process      %s\n", e.Process)
	if l := e.Load; l != nil {
		r.textf("  load         %s sessions with EX %d in %.2f s (%s/s), worst batch round trip %.1f ms%s\n",
			commas(l.Keys), e.TTLSeconds, l.Seconds, commasF(l.KeysPerSec), l.MaxBatchRTTms, errSuffix(l.Errors))
	}
	r.textf("  deadlines    first %.3f s, last %.3f s after the load started (send time + TTL)\n", e.FirstDeadlineS, e.LastDeadlineS)
	switch {
	case e.AllFreed:
		r.textf("  DBSIZE       back to %s: all freed %.3f s after the last deadline\n", commas(e.PreDBSize), e.FreedAfterS)
	case e.Interrupted:
		r.textf("  DBSIZE       INTERRUPTED %.1f s after the last deadline, with %s keys of this run still counted\n", e.WaitedS, commas(e.RemainingAtEnd))
	default:
		r.textf("  DBSIZE       after %.1f s past the last deadline, %s expired keys still counted\n", e.WaitedS, commas(e.RemainingAtEnd))
	}
	ev := e.Events
	if ev.Supported {
		l := ev.LatenessMs
		r.textf("  events       %s received (%s for this run's keys, %d others, %d duplicates, %d early)\n",
			commas(ev.Received), commas(ev.Matched), ev.Unmatched, ev.Duplicates, ev.Early)
		r.textf("  lateness ms  event arrival - deadline: min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
			l.Min, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	}
	r.textf("  events note  %s\n", ev.Note)
	r.textf("  RSS          before %s, peak %s, after %s\n", mb(e.RSSBefore), mb(e.RSSPeak), mb(e.RSSAfter))
	// The timeline at about one line per second.
	r.textf("  timeline     t(s, vs last deadline)      DBSIZE        RSS\n")
	next := math.Inf(-1)
	for i, s := range e.Timeline {
		if i != len(e.Timeline)-1 && (s.T < next || s.RSS < 0 && e.RSSBefore >= 0) {
			continue
		}
		next = s.T + 1
		r.textf("  %12s %20.2f %12s %12s\n", "", s.T, commas(s.DBSize), mb(s.RSS))
	}
	r.textf("\n")
}

func (r *report) printJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// commas formats an integer with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func commasF(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return commas(int64(math.Round(v)))
}

// verifyMode describes how the replies are checked.
func verifyMode(cfg *config) string {
	switch {
	case cfg.NoVerify:
		return "off (--no-verify)"
	case cfg.Conns == 1 && cfg.Keys <= exactKeysMax:
		return "exact: one connection, every key's state tracked (GET returns the last write, DEL/EXPIRE 0/1 as expected)"
	case cfg.populates() && !hasWrites(cfg.Mix):
		return "values must be the population's; +OK/0/1 replies"
	default:
		return "values must be ones written for the key (header, length, bytes); +OK/0/1 replies"
	}
}
