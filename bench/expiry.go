package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

const (
	expiredChannel = "__keyevent@0__:expired"
	pollInterval   = 10 * time.Millisecond
	rssEvery       = 10 // RSS is sampled every 10th DBSIZE poll (100 ms)
)

type expirySample struct {
	T      float64 `json:"t"` // seconds relative to the last deadline (negative: before it)
	DBSize int64   `json:"dbsize"`
	RSS    int64   `json:"rss"` // -1: not sampled / unavailable
}

type latencyMs struct {
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type eventStats struct {
	Supported  bool      `json:"supported"`
	Note       string    `json:"note,omitempty"`
	Received   int64     `json:"received"`
	Matched    int64     `json:"matched"`    // events for keys this run wrote
	Unmatched  int64     `json:"unmatched"`  // other keys
	Duplicates int64     `json:"duplicates"` // a key reported twice
	Early      int64     `json:"early"`      // arrived before the recorded deadline (should be 0)
	LatenessMs latencyMs `json:"lateness_ms"`
}

type expiryResult struct {
	Target     string      `json:"target"`
	Round      int         `json:"round"`
	Sessions   int64       `json:"sessions"`
	TTLSeconds int64       `json:"ttl_seconds"`
	Prepare    string      `json:"prepare"`
	Process    string      `json:"process"`
	Load       *loadResult `json:"load"`
	PreDBSize  int64       `json:"pre_dbsize"`
	// Deadlines are the time each SET was written + TTL, a lower bound of the
	// server's own deadline, in seconds from the start of the load.
	FirstDeadlineS float64 `json:"first_deadline_s"`
	LastDeadlineS  float64 `json:"last_deadline_s"`
	AllFreed       bool    `json:"all_freed"`
	// FreedAfterS: when DBSIZE was first seen back at PreDBSize, relative to
	// the last deadline (valid when AllFreed).
	FreedAfterS float64 `json:"freed_after_last_deadline_s"`
	// RemainingAtEnd: keys still counted by DBSIZE when the wait ended.
	RemainingAtEnd int64          `json:"remaining_at_end"`
	WaitedS        float64        `json:"waited_after_last_deadline_s"`
	RSSBefore      int64          `json:"rss_before"`
	RSSPeak        int64          `json:"rss_peak"`
	RSSAfter       int64          `json:"rss_after"`
	Events         eventStats     `json:"events"`
	Timeline       []expirySample `json:"timeline"`
	Interrupted    bool           `json:"interrupted,omitempty"`
	Failure        string         `json:"failure,omitempty"`
}

// subscriber records keyspace expiry events: which key, when it arrived.
type subscriber struct {
	c        *conn
	kg       *keyGen
	base     time.Time
	received atomic.Int64
	stopping atomic.Bool
	wg       sync.WaitGroup

	// owned by the reading goroutine until wg.Wait
	arrivals  []arrival
	unmatched int64
	err       error
}

type arrival struct {
	idx uint64
	at  time.Duration // since base
}

func startSubscriber(ctx context.Context, cfg *config, target string, kg *keyGen, base time.Time, n int64) (*subscriber, error) {
	c, err := dialConn(ctx, target, cfg.Password)
	if err != nil {
		return nil, err
	}
	s := &subscriber{c: c, kg: kg, base: base, arrivals: make([]arrival, 0, min(n, 1<<22))}
	rep, err := c.do("SUBSCRIBE", expiredChannel)
	if err == nil && (rep.Kind != '*' || len(rep.Elems) < 1 || rep.Elems[0].Str != "subscribe") {
		err = fmt.Errorf("unexpected SUBSCRIBE reply %+v", rep)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("SUBSCRIBE %s: %w", expiredChannel, err)
	}
	s.wg.Add(1)
	go s.read()
	return s, nil
}

func (s *subscriber) read() {
	defer s.wg.Done()
	var elems [][]byte
	for {
		var err error
		elems, err = s.c.rd.readStringArray(elems)
		if err != nil {
			if !s.stopping.Load() {
				s.err = err
			}
			return
		}
		now := time.Since(s.base)
		if len(elems) != 3 || string(elems[0]) != "message" {
			continue
		}
		s.received.Add(1)
		idx, ok := s.kg.index(elems[2])
		if !ok {
			s.unmatched++
			continue
		}
		s.arrivals = append(s.arrivals, arrival{idx: idx, at: now})
	}
}

// stop waits up to grace for want events, then closes the subscription.
func (s *subscriber) stop(want int64, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for s.received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.stopping.Store(true)
	_ = s.c.nc.SetDeadline(time.Unix(1, 0))
	s.wg.Wait()
	s.c.close()
}

// readStringArray reads an array of bulk strings / integers into reusable
// buffers (the expiry event stream: no allocation per message).
func (r *respReader) readStringArray(bufs [][]byte) ([][]byte, error) {
	line, err := r.line()
	if err != nil {
		return bufs, err
	}
	if len(line) == 0 || line[0] != '*' {
		return bufs, protoErrf("expected an array, got %q", line)
	}
	n, err := lengthOf(line[1:], 1024, "array")
	if err != nil {
		return bufs, err
	}
	bufs = bufs[:0]
	for i := range max(n, 0) {
		if int(i) < cap(bufs) {
			bufs = bufs[:i+1]
		} else {
			bufs = append(bufs, nil)
		}
		line, err := r.line()
		if err != nil {
			return bufs, midReply(err)
		}
		if len(line) == 0 {
			return bufs, protoErrf("empty line in array")
		}
		switch line[0] {
		case ':', '+':
			bufs[i] = append(bufs[i][:0], line[1:]...)
		case '$':
			size, err := lengthOf(line[1:], maxBulkLen, "bulk")
			if err != nil {
				return bufs, err
			}
			if size < 0 {
				bufs[i] = bufs[i][:0]
				continue
			}
			if int64(cap(bufs[i])) < size {
				bufs[i] = make([]byte, size)
			}
			bufs[i] = bufs[i][:size]
			if _, err := io.ReadFull(r.br, bufs[i]); err != nil {
				return bufs, midReply(err)
			}
			if err := r.crlf(); err != nil {
				return bufs, midReply(err)
			}
		default:
			return bufs, protoErrf("unexpected element type %q in array", line[0])
		}
	}
	return bufs, nil
}

// poller polls DBSIZE every 10 ms (RSS every 100 ms) until DBSIZE is back at
// pre after the load, or max-wait after the last deadline.
type poller struct {
	c       *conn
	proc    serverProc
	base    time.Time
	pre     int64
	maxWait time.Duration
	lastCh  chan time.Duration // the last deadline, once the load is done
	wg      sync.WaitGroup

	// owned by the polling goroutine until wg.Wait
	samples  []rawSample
	freed    bool
	freedAt  time.Duration
	endedAt  time.Duration
	lastSize int64
	err      error
}

type rawSample struct {
	at     time.Duration
	dbsize int64
	rss    int64
}

func startPoller(ctx context.Context, c *conn, proc serverProc, base time.Time, pre int64, maxWait time.Duration) *poller {
	p := &poller{c: c, proc: proc, base: base, pre: pre, maxWait: maxWait, lastCh: make(chan time.Duration, 1), lastSize: -1}
	p.wg.Add(1)
	go p.run(ctx)
	return p
}

func (p *poller) run(ctx context.Context) {
	defer p.wg.Done()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last time.Duration
	loaded := false
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			p.endedAt = time.Since(p.base)
			return
		case last = <-p.lastCh:
			loaded = true
		case <-tick.C:
		}
		n, err := p.c.doInt("DBSIZE")
		at := time.Since(p.base)
		if err != nil {
			p.err = err
			p.endedAt = at
			return
		}
		freed := loaded && n <= p.pre
		done := freed || (loaded && at >= last+p.maxWait)
		rss := int64(-1)
		if i%rssEvery == 0 || done {
			rss = p.proc.rss()
		}
		p.samples = append(p.samples, rawSample{at: at, dbsize: n, rss: rss})
		p.lastSize = n
		if done {
			p.freed, p.endedAt = freed, at
			if freed {
				p.freedAt = at
			}
			return
		}
	}
}

// runExpiry writes --keys sessions with EX --ttl and watches them go.
func runExpiry(ctx context.Context, cfg *config, target string, round int, prog *progress) (res *expiryResult, err error) {
	res = &expiryResult{Target: target, Round: round, Sessions: cfg.Keys, TTLSeconds: int64(cfg.TTL / time.Second),
		RSSBefore: -1, RSSPeak: -1, RSSAfter: -1}
	ctrl, err := dialConn(ctx, target, cfg.Password)
	if err != nil {
		return res, fmt.Errorf("%s: connect: %w", target, err)
	}
	defer ctrl.close()
	if res.Prepare, err = prepareEmpty(ctrl, cfg, target); err != nil {
		return res, err
	}
	proc := findServerProc(ctrl, target, cfg.PID)
	res.Process = proc.note
	if res.PreDBSize, err = ctrl.doInt("DBSIZE"); err != nil {
		return res, fmt.Errorf("%s: DBSIZE: %w", target, err)
	}
	res.RSSBefore = proc.rss()
	kg, _ := newKeyGen(cfg.KeyPrefix, cfg.KeySize)
	n := cfg.Keys
	base := time.Now()

	// Keyspace notifications, when the server has them.
	var sub *subscriber
	if old, err := configGet(ctrl, "notify-keyspace-events"); err != nil {
		res.Events.Note = "not supported: CONFIG GET notify-keyspace-events: " + err.Error()
	} else if _, err := ctrl.do("CONFIG", "SET", "notify-keyspace-events", "Ex"); err != nil {
		res.Events.Note = "not supported: CONFIG SET notify-keyspace-events Ex: " + err.Error()
	} else {
		defer func() {
			if _, rerr := ctrl.do("CONFIG", "SET", "notify-keyspace-events", old); rerr != nil {
				res.Events.Note += fmt.Sprintf("; FAILED to restore notify-keyspace-events %q: %v", old, rerr)
				err = errors.Join(err, fmt.Errorf("%s: restoring notify-keyspace-events %q: %w", target, old, rerr))
			} else {
				res.Events.Note += fmt.Sprintf("; notify-keyspace-events restored to %q", old)
			}
		}()
		sub, err = startSubscriber(ctx, cfg, target, kg, base, n)
		if err != nil {
			res.Events.Note = "subscribe failed: " + err.Error()
		} else {
			res.Events.Supported = true
			res.Events.Note = "CONFIG SET notify-keyspace-events Ex, SUBSCRIBE " + expiredChannel
		}
	}

	pollConn, err := dialConn(ctx, target, cfg.Password)
	if err != nil {
		if sub != nil {
			sub.stop(0, 0)
		}
		return res, fmt.Errorf("%s: connect: %w", target, err)
	}
	defer pollConn.close()
	poll := startPoller(ctx, pollConn, proc, base, res.PreDBSize, cfg.MaxWait)

	deadlines := make([]time.Duration, n)
	spec := loadSpec{n: n, kg: kg, ttl: cfg.TTL, pool: newPayloadPool(cfg.Seed, cfg.ValueSize), size: cfg.ValueSize,
		onBatch: func(first int64, count int, sent time.Time) {
			d := sent.Sub(base) + cfg.TTL
			for i := range int64(count) {
				deadlines[first+i] = d
			}
		}}
	res.Load, err = loadKeys(ctx, cfg, target, spec, prog, fmt.Sprintf("expiry %s: loading", target))
	loaded := deadlines[:res.Load.Keys]
	var first, last time.Duration
	for i, d := range loaded {
		if i == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	res.FirstDeadlineS, res.LastDeadlineS = first.Seconds(), last.Seconds()
	if err == nil {
		poll.lastCh <- last
		stopWait := prog.start(fmt.Sprintf("expiry %s: waiting for DBSIZE %d", target, res.PreDBSize), "events",
			func() int64 { return sub.count() }, int64(len(loaded)))
		poll.wg.Wait()
		stopWait()
	} else {
		_ = pollConn.nc.SetDeadline(time.Unix(1, 0))
		poll.wg.Wait()
	}
	if sub != nil {
		grace := 2 * time.Second
		if !poll.freed || err != nil || ctx.Err() != nil {
			grace = 0
		}
		sub.stop(int64(len(loaded)), grace)
		res.Events.fill(sub, loaded)
		if sub.err != nil {
			res.Events.Note += fmt.Sprintf("; subscriber connection lost after %d events: %v", sub.received.Load(), sub.err)
		}
	}
	res.AllFreed = poll.freed
	res.WaitedS = (poll.endedAt - last).Seconds()
	if poll.freed {
		res.FreedAfterS = (poll.freedAt - last).Seconds()
	} else if poll.lastSize >= 0 {
		res.RemainingAtEnd = poll.lastSize - res.PreDBSize
	}
	for _, s := range poll.samples {
		res.Timeline = append(res.Timeline, expirySample{T: (s.at - last).Seconds(), DBSize: s.dbsize, RSS: s.rss})
		res.RSSPeak = max(res.RSSPeak, s.rss)
	}
	res.RSSAfter = proc.rss()
	res.Interrupted = ctx.Err() != nil
	if err == nil && poll.err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%s: polling DBSIZE: %w", target, poll.err)
	}
	return res, err
}

// count is safe on a nil subscriber (no notifications).
func (s *subscriber) count() int64 {
	if s == nil {
		return 0
	}
	return s.received.Load()
}

// fill computes the event statistics once the subscriber has stopped.
func (e *eventStats) fill(s *subscriber, deadlines []time.Duration) {
	e.Received = s.received.Load()
	e.Unmatched = s.unmatched
	seen := make([]uint64, (len(deadlines)+63)/64)
	h := newHist()
	for _, a := range s.arrivals {
		if a.idx >= uint64(len(deadlines)) {
			e.Unmatched++
			continue
		}
		if seen[a.idx/64]&(1<<(a.idx%64)) != 0 {
			e.Duplicates++
			continue
		}
		seen[a.idx/64] |= 1 << (a.idx % 64)
		e.Matched++
		late := a.at - deadlines[a.idx]
		if late < 0 {
			e.Early++
		}
		recordUs(h, late.Microseconds())
	}
	if h.TotalCount() > 0 {
		l := summarize(h)
		ms := func(us int64) float64 { return float64(us) / 1000 }
		e.LatenessMs = latencyMs{Min: ms(l.Min), P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max), Mean: l.Mean / 1000}
	}
}

// configGet returns a CONFIG GET parameter's value.
func configGet(c *conn, name string) (string, error) {
	rep, err := c.do("CONFIG", "GET", name)
	if err != nil {
		return "", err
	}
	if rep.Kind != '*' || len(rep.Elems) != 2 {
		return "", fmt.Errorf("unexpected CONFIG GET reply (%d elements)", len(rep.Elems))
	}
	return rep.Elems[1].Str, nil
}
