// Command bench is sessiond's load generator: a black-box RESP2 client that
// measures any Redis-compatible server (sessiond, redis-server) with session
// store workloads, side by side when given several targets. Run
// `go run ./bench -h` for the workloads and flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const (
	exitOK          = 0
	exitFailed      = 1 // error replies, connection or protocol failures
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\nrun 'go run ./bench -h' for usage\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := execute(ctx, cfg, args, stdout, &progress{w: stderr, enabled: isTerminal(stderr)})
	if code != exitOK {
		fmt.Fprintf(stderr, "bench: exit status %d\n", code)
	}
	return code
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// execute runs the configured workload on every target and writes the report.
func execute(ctx context.Context, cfg *config, args []string, stdout io.Writer, prog *progress) int {
	rep := &report{out: stdout, json: cfg.JSON, Parameters: makeParams(cfg, args)}
	rep.printParams()
	var replyErrors int64
	switch cfg.Workload {
	case wlMemory:
		replyErrors = runMemoryBench(ctx, cfg, rep, prog)
	case wlExpiry:
		replyErrors = runExpiryBench(ctx, cfg, rep, prog)
	default:
		replyErrors = runOpBench(ctx, cfg, rep, prog)
	}

	switch {
	case ctx.Err() != nil:
		rep.Interrupted, rep.ExitCode = true, exitInterrupted
		rep.textf("INTERRUPTED: the results above are partial\n")
	case len(rep.Failures) > 0:
		rep.ExitCode = exitFailed
	case replyErrors > 0:
		rep.ExitCode = exitFailed
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s error or WRONG replies", commas(replyErrors)))
		rep.textf("FAILED: %s error or WRONG replies (see the errors lines above)\n", commas(replyErrors))
	}
	if cfg.BenchFmt != "" {
		if err := writeFile(cfg.BenchFmt, func(w io.Writer) error { return writeBenchfmt(w, cfg, rep.Runs) }); err != nil {
			rep.fail(fmt.Errorf("--benchfmt: %w", err))
			rep.ExitCode = max(rep.ExitCode, exitFailed)
		}
	}
	if cfg.HTMLFile != "" {
		if err := writeHTMLReport(cfg.HTMLFile, rep); err != nil {
			rep.fail(fmt.Errorf("--html: %w", err))
			rep.ExitCode = max(rep.ExitCode, exitFailed)
		}
	}
	switch {
	case cfg.JSON:
		if err := rep.printJSON(stdout); err != nil && rep.ExitCode == exitOK {
			rep.ExitCode = exitFailed
		}
	case cfg.JSONFile != "":
		if err := writeFile(cfg.JSONFile, rep.printJSON); err != nil {
			rep.fail(fmt.Errorf("--json: %w", err))
			rep.ExitCode = max(rep.ExitCode, exitFailed)
		}
	}
	return rep.ExitCode
}

// runOpBench: session, set and get. It returns the number of error replies.
func runOpBench(ctx context.Context, cfg *config, rep *report, prog *progress) int64 {
	var replyErrors int64
	states := make([]*keyState, len(cfg.Targets))
	for i := range states {
		states[i] = newKeyState(cfg, time.Now())
	}
	if cfg.populates() {
		for i, t := range cfg.Targets {
			states[i].start = time.Now()
			l, err := loadKeys(ctx, cfg, t, populateSpec(cfg), prog, "populate "+t)
			rep.Populate = append(rep.Populate, l)
			rep.printPopulate(l)
			replyErrors += l.errorTotal()
			if err != nil {
				rep.fail(fmt.Errorf("populate: %w", err))
				return replyErrors
			}
			if ctx.Err() != nil || l.errorTotal() > 0 {
				return replyErrors
			}
		}
		rep.textf("\n")
	}
	phases := []string{""}
	if cfg.During == duringBGSave {
		phases = []string{phaseIdle, phaseBGSave}
	}
	// runs[target][phase]: the measured rounds.
	runs := make([][][]*opRun, len(cfg.Targets))
	for i := range runs {
		runs[i] = make([][]*opRun, len(phases))
	}
	func() {
		for round := 1; round <= cfg.Rounds; round++ {
			for i, t := range cfg.Targets {
				var prev *opRun
				for p, ph := range phases {
					res, err := runOpRound(ctx, cfg, t, round, ph, states[i], prog)
					if res != nil {
						setVsIdle(prev, res)
						prev = res
						rep.Runs = append(rep.Runs, res)
						rep.printRun(res)
						runs[i][p] = append(runs[i][p], res)
						replyErrors += res.ErrorTotal
					}
					if err != nil {
						rep.fail(err)
						return
					}
					if ctx.Err() != nil {
						return
					}
				}
			}
		}
	}()
	for _, byPhase := range runs {
		var prev *opRun
		for _, rs := range byPhase {
			if len(rs) == 0 {
				continue
			}
			s := mergeRuns(rs)
			setVsIdle(prev, s)
			prev = s
			rep.Summary = append(rep.Summary, s)
			if cfg.Rounds > 1 {
				rep.printRun(s)
			}
		}
	}
	rep.compareRuns(rep.Summary)
	return replyErrors
}

func runMemoryBench(ctx context.Context, cfg *config, rep *report, prog *progress) int64 {
	var replyErrors int64
	for round := 1; round <= cfg.Rounds; round++ {
		for _, t := range cfg.Targets {
			res, err := runMemory(ctx, cfg, t, round, prog)
			if res.Load != nil {
				replyErrors += res.Load.errorTotal()
			}
			if err != nil {
				res.Failure = err.Error()
			}
			rep.Memory = append(rep.Memory, res)
			if res.Load != nil {
				rep.printMemory(res)
			}
			if err != nil {
				rep.fail(err)
				return replyErrors
			}
			if ctx.Err() != nil {
				return replyErrors
			}
		}
	}
	if len(cfg.Targets) > 1 {
		rep.textf("comparison: bytes per session (ΔRSS/N | Δused_memory/N)\n")
		for _, m := range rep.Memory {
			rep.textf("  %-22s round %d: %s | %s\n", m.Target, m.Round, bytesPer(m.BytesPerSessionRSS), bytesPer(m.BytesPerSessionMem))
		}
		rep.textf("\n")
	}
	return replyErrors
}

func runExpiryBench(ctx context.Context, cfg *config, rep *report, prog *progress) int64 {
	var replyErrors int64
	for round := 1; round <= cfg.Rounds; round++ {
		for _, t := range cfg.Targets {
			res, err := runExpiry(ctx, cfg, t, round, prog)
			if res.Load != nil {
				replyErrors += res.Load.errorTotal()
			}
			if err != nil {
				res.Failure = err.Error()
			}
			rep.Expiry = append(rep.Expiry, res)
			if res.Load != nil {
				rep.printExpiry(res)
			}
			if err != nil {
				rep.fail(err)
				return replyErrors
			}
			if ctx.Err() != nil {
				return replyErrors
			}
		}
	}
	if len(cfg.Targets) > 1 {
		rep.textf("comparison: all keys freed after the last deadline | expiry event lateness p50 / p99 / max\n")
		for _, e := range rep.Expiry {
			freed := fmt.Sprintf("not within %.0f s (%s left)", e.WaitedS, commas(e.RemainingAtEnd))
			if e.AllFreed {
				freed = fmt.Sprintf("%.3f s", e.FreedAfterS)
			}
			ev := "no events"
			if e.Events.Supported {
				l := e.Events.LatenessMs
				ev = fmt.Sprintf("%.1f / %.1f / %.1f ms (%s events)", l.P50, l.P99, l.Max, commas(e.Events.Matched))
			}
			rep.textf("  %-22s round %d: %s | %s\n", e.Target, e.Round, freed, ev)
		}
		rep.textf("\n")
	}
	return replyErrors
}
