package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// --during bgsave: each round on each target is measured twice, first idle,
// then while one extra connection keeps a background save in flight all the
// time (BGSAVE; INFO persistence every 20 ms until rdb_bgsave_in_progress:0
// and aof_rewrite_in_progress:0; the next BGSAVE at once), so the latency cost of snapshots is measured in
// the same run, over one persistent connection instead of forked redis-cli
// processes.

const (
	duringNone   = "none"
	duringBGSave = "bgsave"

	phaseIdle   = "idle"
	phaseBGSave = "bgsave"

	// savePollInterval is how often a running save is polled.
	savePollInterval = 20 * time.Millisecond
	// saveQuiesceTimeout bounds the wait for a running save to end before
	// a phase starts.
	saveQuiesceTimeout = 5 * time.Minute
)

var duringModes = []string{duringNone, duringBGSave}

// cmdConn sends one command and reads its reply (an error reply as a
// *redisError); *conn is one.
type cmdConn interface {
	do(args ...string) (reply, error)
}

// persistInfo is what the saver reads of INFO persistence.
type persistInfo struct {
	// inProgress: rdb_bgsave_in_progress:1, or aof_rewrite_in_progress:1
	// (sessiond with --appendonly yes reports its snapshot so, and Redis
	// refuses BGSAVE during an AOF rewrite).
	inProgress bool
	lastOK     bool // rdb_last_bgsave_status:ok
}

// parsePersistence reads rdb_bgsave_in_progress, rdb_last_bgsave_status
// and, if present, aof_rewrite_in_progress from an INFO persistence reply.
func parsePersistence(r reply) (persistInfo, error) {
	s, err := r.text("INFO")
	if err != nil {
		return persistInfo{}, err
	}
	m := parseInfo(s)
	var pi persistInfo
	switch v := m["rdb_bgsave_in_progress"]; v {
	case "0":
	case "1":
		pi.inProgress = true
	case "":
		return pi, errors.New("INFO persistence has no rdb_bgsave_in_progress field")
	default:
		return pi, fmt.Errorf("INFO persistence: rdb_bgsave_in_progress:%s, want 0 or 1", v)
	}
	switch v := m["aof_rewrite_in_progress"]; v {
	case "", "0":
	case "1":
		pi.inProgress = true
	default:
		return pi, fmt.Errorf("INFO persistence: aof_rewrite_in_progress:%s, want 0 or 1", v)
	}
	switch v := m["rdb_last_bgsave_status"]; v {
	case "ok":
		pi.lastOK = true
	case "err":
	case "":
		return pi, errors.New("INFO persistence has no rdb_last_bgsave_status field")
	default:
		return pi, fmt.Errorf("INFO persistence: rdb_last_bgsave_status:%s, want ok or err", v)
	}
	return pi, nil
}

// saveRunning reports whether a BGSAVE error reply means only that another
// save (or, in Redis, an AOF rewrite) is running: wait for it, then retry.
func saveRunning(err error) bool {
	var re *redisError
	if !errors.As(err, &re) {
		return false
	}
	msg := strings.ToLower(re.msg)
	return strings.Contains(msg, "background save already in progress") ||
		strings.Contains(msg, "aof log rewriting in progress")
}

func queryPersistence(c cmdConn) (persistInfo, error) {
	r, err := c.do("INFO", "persistence")
	if err != nil {
		return persistInfo{}, fmt.Errorf("INFO persistence: %w", err)
	}
	return parsePersistence(r)
}

// sleepCtx waits d, or less if ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitSaveDone polls INFO persistence every poll until no save runs, ctx
// ends (stopped true) or bound passes (an error; bound <= 0: no bound).
func waitSaveDone(ctx context.Context, c cmdConn, poll, bound time.Duration) (pi persistInfo, stopped bool, err error) {
	start := time.Now()
	for {
		if pi, err = queryPersistence(c); err != nil || !pi.inProgress {
			return pi, false, err
		}
		if bound > 0 && time.Since(start) >= bound {
			return pi, false, fmt.Errorf("a background save was still running (INFO persistence: rdb_bgsave_in_progress or aof_rewrite_in_progress 1) after %v", bound)
		}
		if !sleepCtx(ctx, poll) {
			return pi, true, nil
		}
	}
}

// savePeriod is one background save bench started: sent is when BGSAVE was
// sent, done when INFO first showed it finished (zero: still running).
type savePeriod struct {
	sent, done time.Time
}

// saver keeps a background save in flight on its own connection.
type saver struct {
	c    cmdConn
	poll time.Duration

	// Owned by run until it returns.
	saves          []savePeriod
	alreadyRunning int64 // BGSAVEs answered "already in progress"
}

// run sends BGSAVE, polls until the save is done, and starts the next at
// once, until ctx ends (it does not wait for the running save then). A
// failed save (rdb_last_bgsave_status:err) or any other error ends it with
// an error.
func (s *saver) run(ctx context.Context) error {
	for ctx.Err() == nil {
		sent := time.Now()
		_, err := s.c.do("BGSAVE")
		ours := err == nil
		switch {
		case err == nil:
			s.saves = append(s.saves, savePeriod{sent: sent})
		case saveRunning(err):
			s.alreadyRunning++
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("BGSAVE: %w", err)
		}
		// Poll at least once a poll interval after the BGSAVE, so that a
		// refused one is retried at that pace.
		if !sleepCtx(ctx, s.poll) {
			return nil
		}
		pi, stopped, err := waitSaveDone(ctx, s.c, s.poll, 0)
		if stopped {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ours {
			s.saves[len(s.saves)-1].done = time.Now()
		}
		if !pi.lastOK {
			return errors.New("background save failed (INFO persistence: rdb_last_bgsave_status:err)")
		}
	}
	return nil
}

// saveStats describes the saves of a bgsave phase's measured window.
type saveStats struct {
	// Completed: saves bench started (warmup included) that ended within
	// the measured window; their wall duration, from BGSAVE sent to the
	// first INFO that showed them done (so up to one poll interval long).
	Completed int64   `json:"completed"`
	MeanS     float64 `json:"mean_s"`
	MaxS      float64 `json:"max_s"`
	// Started: BGSAVEs bench started during the phase, warmup included.
	Started int64 `json:"started"`
	// AlreadyRunning: BGSAVEs refused because another save was running.
	AlreadyRunning int64 `json:"already_running"`
	// BusyFraction: the share of the measured window during which a save
	// bench started was running.
	BusyFraction float64 `json:"busy_fraction"`
	PollMs       float64 `json:"poll_ms"`

	sumS, windowS float64
}

// summarizeSaves computes the figures of the window [from, to].
func summarizeSaves(saves []savePeriod, alreadyRunning int64, from, to time.Time, poll time.Duration) *saveStats {
	st := &saveStats{Started: int64(len(saves)), AlreadyRunning: alreadyRunning, PollMs: float64(poll) / float64(time.Millisecond)}
	if !to.After(from) {
		return st
	}
	var busy time.Duration
	for _, s := range saves {
		end := s.done
		if end.IsZero() {
			end = to // still running when the phase ended
		}
		if lo, hi := later(s.sent, from), earlier(end, to); hi.After(lo) {
			busy += hi.Sub(lo)
		}
		if s.done.IsZero() || s.done.Before(from) || s.done.After(to) {
			continue
		}
		d := s.done.Sub(s.sent).Seconds()
		st.Completed++
		st.sumS += d
		st.MaxS = math.Max(st.MaxS, d)
	}
	st.windowS = to.Sub(from).Seconds()
	st.BusyFraction = busy.Seconds() / st.windowS
	st.finish()
	return st
}

func (st *saveStats) finish() {
	st.MeanS = 0
	if st.Completed > 0 {
		st.MeanS = st.sumS / float64(st.Completed)
	}
}

// mergeSaves adds up the rounds' figures (nil entries are skipped).
func mergeSaves(all []*saveStats) *saveStats {
	var m *saveStats
	var busy float64
	for _, s := range all {
		if s == nil {
			continue
		}
		if m == nil {
			m = &saveStats{PollMs: s.PollMs}
		}
		m.Completed += s.Completed
		m.Started += s.Started
		m.AlreadyRunning += s.AlreadyRunning
		m.sumS += s.sumS
		m.MaxS = math.Max(m.MaxS, s.MaxS)
		m.windowS += s.windowS
		busy += s.BusyFraction * s.windowS
	}
	if m == nil {
		return nil
	}
	if m.windowS > 0 {
		m.BusyFraction = busy / m.windowS
	}
	m.finish()
	return m
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// String renders the figures for the text report.
func (st *saveStats) String() string {
	s := fmt.Sprintf("%s saves completed in the measured window", commas(st.Completed))
	if st.Completed > 0 {
		s += fmt.Sprintf(", wall time mean %.2f s, max %.2f s", st.MeanS, st.MaxS)
	}
	s += fmt.Sprintf("; a save of bench's in flight %.0f%% of it (%s BGSAVEs sent, INFO polled every %s ms", 100*st.BusyFraction,
		commas(st.Started), strconv.FormatFloat(st.PollMs, 'f', -1, 64))
	if st.AlreadyRunning > 0 {
		s += fmt.Sprintf("; %s refused: another save was running", commas(st.AlreadyRunning))
	}
	return s + ")"
}

// vsIdle is the ratio bgsave / idle of the p50, p99 and p99.9 latency of all
// commands.
func vsIdle(idle, bg *opRun) ratios {
	return runRatios(bg, idle, "p50", "p99", "p99_9")
}

// setVsIdle sets run.VsIdle when run is a bgsave phase and prev the idle
// phase before it, of the same target and round (or both all rounds merged).
func setVsIdle(prev, run *opRun) {
	if prev != nil && prev.Phase == phaseIdle && run.Phase == phaseBGSave && prev.Target == run.Target && prev.Round == run.Round {
		run.VsIdle = vsIdle(prev, run)
	}
}
