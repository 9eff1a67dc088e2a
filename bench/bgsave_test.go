package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// persistenceText is an INFO persistence section as Redis 7 writes it
// (CRLF line ends), with the two fields the saver reads.
func persistenceText(inProgress int, status string) string {
	return "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:12\r\n" +
		"rdb_bgsave_in_progress:" + strconv.Itoa(inProgress) + "\r\nrdb_last_save_time:1700000000\r\n" +
		"rdb_last_bgsave_status:" + status + "\r\nrdb_last_bgsave_time_sec:1\r\nrdb_current_bgsave_time_sec:-1\r\n" +
		"aof_enabled:0\r\n"
}

func TestParsePersistence(t *testing.T) {
	bulk := func(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
	verbatim := func(s string) string { return "=" + strconv.Itoa(len(s)+4) + "\r\ntxt:" + s + "\r\n" }
	cases := []struct {
		name string
		wire string
		want persistInfo
		err  string
	}{
		{"RESP2 bulk, idle", bulk(persistenceText(0, "ok")), persistInfo{inProgress: false, lastOK: true}, ""},
		{"RESP2 bulk, saving", bulk(persistenceText(1, "ok")), persistInfo{inProgress: true, lastOK: true}, ""},
		{"RESP2 bulk, failed", bulk(persistenceText(0, "err")), persistInfo{inProgress: false, lastOK: false}, ""},
		{"RESP3 verbatim, saving", verbatim(persistenceText(1, "ok")), persistInfo{inProgress: true, lastOK: true}, ""},
		{"RESP3 verbatim, failed", verbatim(persistenceText(0, "err")), persistInfo{lastOK: false}, ""},
		{"LF line ends", bulk(strings.ReplaceAll(persistenceText(1, "err"), "\r\n", "\n")), persistInfo{inProgress: true}, ""},
		{"no final line end", bulk("rdb_last_bgsave_status:ok\r\nrdb_bgsave_in_progress:1"), persistInfo{inProgress: true, lastOK: true}, ""},
		{"no persistence section", bulk("# Server\r\nredis_version:7.0.15\r\n"), persistInfo{}, "no rdb_bgsave_in_progress field"},
		{"no status", bulk("rdb_bgsave_in_progress:0\r\n"), persistInfo{}, "no rdb_last_bgsave_status field"},
		{"bad in_progress", bulk("rdb_bgsave_in_progress:yes\r\nrdb_last_bgsave_status:ok\r\n"), persistInfo{}, "rdb_bgsave_in_progress:yes, want 0 or 1"},
		{"bad status", bulk("rdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:fine\r\n"), persistInfo{}, "rdb_last_bgsave_status:fine, want ok or err"},
		{"a field's name as a prefix", bulk("xrdb_bgsave_in_progress:1\r\nrdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\n"),
			persistInfo{lastOK: true}, ""},
		{"AOF rewrite running", bulk(persistenceText(0, "ok") + "aof_rewrite_in_progress:1\r\n"), persistInfo{inProgress: true, lastOK: true}, ""},
		{"AOF rewrite done", bulk(persistenceText(0, "ok") + "aof_rewrite_in_progress:0\r\n"), persistInfo{lastOK: true}, ""},
		{"bad aof_rewrite_in_progress", bulk(persistenceText(0, "ok") + "aof_rewrite_in_progress:x\r\n"), persistInfo{}, "aof_rewrite_in_progress:x, want 0 or 1"},
		{"integer reply", ":1\r\n", persistInfo{}, "expected a string reply"},
		{"nil", "$-1\r\n", persistInfo{}, "nil reply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := reader(tc.wire + "+NEXT\r\n").readReply()
			require.NoError(t, err)
			got, err := parsePersistence(r)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSaveRunning(t *testing.T) {
	assert.True(t, saveRunning(&redisError{msg: "ERR Background save already in progress"}), "Redis's and sessiond's wording")
	assert.True(t, saveRunning(fmt.Errorf("BGSAVE: %w", &redisError{msg: "ERR Background save already in progress"})))
	assert.True(t, saveRunning(&redisError{msg: "ERR An AOF log rewriting in progress: can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."}))
	assert.False(t, saveRunning(&redisError{msg: "ERR persistence is off (start sessiond with --dir, --save or --appendonly yes)"}))
	assert.False(t, saveRunning(fmt.Errorf("read: %w", context.DeadlineExceeded)))
	assert.False(t, saveRunning(nil))
}

// fakeSaveServer answers BGSAVE and INFO persistence like Redis, on the
// (fake, in a synctest bubble) clock: a save takes saveDur; BGSAVE during
// one is refused with Redis's error.
type fakeSaveServer struct {
	mu        sync.Mutex
	saveDur   time.Duration
	until     time.Time   // a save runs while now < until
	forever   bool        // the running save never ends
	failNext  bool        // the next save started fails
	pending   bool        // a save ran: its outcome is set when it ends
	pendingOK bool        // its outcome
	lastOK    bool        // rdb_last_bgsave_status
	bgsaveErr string      // answer every BGSAVE with this error
	started   []time.Time // saves started by BGSAVE
	refused   int
}

func (f *fakeSaveServer) running(now time.Time) bool {
	if f.forever {
		return true
	}
	if now.Before(f.until) {
		return true
	}
	if f.pending {
		f.pending, f.lastOK = false, f.pendingOK
	}
	return false
}

func (f *fakeSaveServer) do(args ...string) (reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	switch strings.ToUpper(args[0]) {
	case "BGSAVE":
		if f.bgsaveErr != "" {
			return reply{Kind: '-', Str: f.bgsaveErr}, &redisError{msg: f.bgsaveErr}
		}
		if f.running(now) {
			f.refused++
			msg := "ERR Background save already in progress"
			return reply{Kind: '-', Str: msg}, &redisError{msg: msg}
		}
		f.until = now.Add(f.saveDur)
		f.started = append(f.started, now)
		f.pending, f.pendingOK, f.failNext = true, !f.failNext, false
		return reply{Kind: '+', Str: "Background saving started"}, nil
	case "INFO":
		in, status := 0, "err"
		if f.running(now) {
			in = 1
		}
		if f.lastOK {
			status = "ok"
		}
		return reply{Kind: '$', Str: persistenceText(in, status)}, nil
	}
	return reply{}, fmt.Errorf("fake: unexpected %v", args)
}

func TestSaverWaitsForARunningSave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		// A save bench did not start runs for the first 100 ms.
		f := &fakeSaveServer{saveDur: 150 * time.Millisecond, until: t0.Add(100 * time.Millisecond), lastOK: true}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s := &saver{c: f, poll: savePollInterval}
		require.NoError(t, s.run(ctx))

		// The first BGSAVE was refused and waited for, not a failure; then
		// each save started as soon as INFO showed the previous one done
		// (150 ms, seen at the next 20 ms poll), never while one ran.
		assert.Equal(t, int64(1), s.alreadyRunning)
		assert.Equal(t, 1, f.refused)
		ms := func(d int) time.Time { return t0.Add(time.Duration(d) * time.Millisecond) }
		want := []savePeriod{{ms(100), ms(260)}, {ms(260), ms(420)}, {ms(420), ms(580)}, {ms(580), ms(740)}, {ms(740), ms(900)},
			{ms(900), time.Time{}}}
		assert.Equal(t, want, s.saves, "the last one still ran when the phase ended")
		assert.Len(t, f.started, len(want))

		st := summarizeSaves(s.saves, s.alreadyRunning, ms(200), ms(1000), s.poll)
		assert.Equal(t, int64(5), st.Completed, "saves that ended within [200 ms, 1 s]")
		assert.InDelta(t, 0.160, st.MeanS, 1e-9)
		assert.InDelta(t, 0.160, st.MaxS, 1e-9)
		assert.Equal(t, int64(6), st.Started)
		assert.Equal(t, int64(1), st.AlreadyRunning)
		assert.InDelta(t, 1.0, st.BusyFraction, 1e-9)
		assert.Equal(t, 20.0, st.PollMs)
	})
}

func TestSaverFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The fake clock bounds a saver that would go on regardless.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f := &fakeSaveServer{saveDur: 50 * time.Millisecond, lastOK: true, failNext: true}
		s := &saver{c: f, poll: savePollInterval}
		err := s.run(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "background save failed (INFO persistence: rdb_last_bgsave_status:err)")
		assert.Len(t, s.saves, 1)
		assert.Equal(t, time.Duration(60*time.Millisecond), s.saves[0].done.Sub(s.saves[0].sent))
	})
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSaveServer{lastOK: true, bgsaveErr: "ERR persistence is off (start sessiond with --dir, --save or --appendonly yes)"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s := &saver{c: f, poll: savePollInterval}
		err := s.run(ctx)
		require.Error(t, err)
		assert.Equal(t, "BGSAVE: ERR persistence is off (start sessiond with --dir, --save or --appendonly yes)", err.Error())
		assert.Empty(t, s.saves)
	})
}

func TestWaitSaveDoneBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSaveServer{lastOK: true, forever: true}
		start := time.Now()
		_, stopped, err := waitSaveDone(context.Background(), f, savePollInterval, time.Minute)
		assert.False(t, stopped)
		require.Error(t, err)
		assert.Equal(t, "a background save was still running (INFO persistence: rdb_bgsave_in_progress or aof_rewrite_in_progress 1) after 1m0s", err.Error())
		assert.Equal(t, time.Minute, time.Since(start))

		// Interrupted: stopped, no error.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, stopped, err = waitSaveDone(ctx, f, savePollInterval, time.Minute)
		assert.True(t, stopped)
		require.NoError(t, err)

		// A save that ends is waited for.
		f = &fakeSaveServer{lastOK: true, until: time.Now().Add(90 * time.Millisecond)}
		start = time.Now()
		pi, stopped, err := waitSaveDone(context.Background(), f, savePollInterval, time.Minute)
		require.NoError(t, err)
		assert.False(t, stopped)
		assert.Equal(t, persistInfo{lastOK: true}, pi)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
	})
}

func TestSaveStatsMerge(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := func(a, b int) savePeriod {
		p := savePeriod{sent: t0.Add(time.Duration(a) * time.Millisecond)}
		if b >= 0 {
			p.done = t0.Add(time.Duration(b) * time.Millisecond)
		}
		return p
	}
	// Window [1000 ms, 3000 ms]: the first save ended before it, the
	// second in it (started in the warmup), the third in it, the last ran
	// past its end.
	r1 := summarizeSaves([]savePeriod{s(0, 900), s(900, 1500), s(1600, 2600), s(2700, -1)}, 0, t0.Add(time.Second), t0.Add(3*time.Second), savePollInterval)
	assert.Equal(t, int64(2), r1.Completed)
	assert.InDelta(t, 0.8, r1.MeanS, 1e-9)
	assert.InDelta(t, 1.0, r1.MaxS, 1e-9)
	assert.InDelta(t, (0.5+1.0+0.3)/2, r1.BusyFraction, 1e-9)
	r2 := summarizeSaves([]savePeriod{s(0, 2000)}, 2, t0, t0.Add(4*time.Second), savePollInterval)
	assert.Equal(t, int64(1), r2.Completed)
	assert.InDelta(t, 0.5, r2.BusyFraction, 1e-9)

	m := mergeSaves([]*saveStats{nil, r1, r2})
	assert.Equal(t, int64(3), m.Completed)
	assert.Equal(t, int64(5), m.Started)
	assert.Equal(t, int64(2), m.AlreadyRunning)
	assert.InDelta(t, (0.6+1.0+2.0)/3, m.MeanS, 1e-9)
	assert.InDelta(t, 2.0, m.MaxS, 1e-9)
	assert.InDelta(t, (1.8+2.0)/6, m.BusyFraction, 1e-9, "weighted by the windows' lengths")
	assert.Nil(t, mergeSaves([]*saveStats{nil}))

	assert.Equal(t, "3 saves completed in the measured window, wall time mean 1.20 s, max 2.00 s; a save of bench's in flight 63% of it (5 BGSAVEs sent, INFO polled every 20 ms; 2 refused: another save was running)",
		m.String())
}
