package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, 1 µs .. 60 s at 3 significant
// digits; anything slower is recorded as 60 s and counted as clamped.
const histMaxUs = 60_000_000

func newHist() *hdr.Histogram { return hdr.New(1, histMaxUs, 3) }

// recordUs records v µs, clamping to the histogram's range; it reports whether
// it clamped.
func recordUs(h *hdr.Histogram, v int64) bool {
	clamped := false
	if v < 0 {
		v = 0
	}
	if v > histMaxUs {
		v, clamped = histMaxUs, true
	}
	_ = h.RecordValue(v)
	return clamped
}

// cmdBuilder encodes the workload's commands.
type cmdBuilder struct {
	keys *keyGen
	ttl  []byte // EX argument in seconds; nil: no EX
	pttl []byte // hash-session: PEXPIRE argument in milliseconds
	pay  *payloadGen
}

// sizes is the value size distribution (fixed ValueSize for a config built
// by hand).
func (c *config) sizes() sizeDist {
	if c.Sizes.hi == 0 {
		return fixedSize(c.ValueSize)
	}
	return c.Sizes
}

func newCmdBuilder(cfg *config) *cmdBuilder {
	kg, err := newKeyGen(cfg.KeyPrefix, cfg.KeySize)
	if err != nil {
		panic(err) // validated in parseArgs
	}
	b := &cmdBuilder{keys: kg, pay: newPayloadGen(cfg.sizes())}
	if cfg.TTL > 0 {
		b.ttl = strconv.AppendInt(nil, int64(cfg.TTL/time.Second), 10)
		b.pttl = strconv.AppendInt(nil, cfg.TTL.Milliseconds(), 10)
	}
	return b
}

// append encodes one logical request for key idx (two commands for
// get+expire); gen is the generation of the value SET writes.
func (c *cmdBuilder) append(b []byte, op opKind, idx, gen uint64) []byte {
	switch op {
	case opGetex:
		if c.ttl == nil {
			b = append(b, "*2\r\n$5\r\nGETEX\r\n"...)
			return c.keys.appendBulkKey(b, idx)
		}
		b = append(b, "*4\r\n$5\r\nGETEX\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
		b = append(b, "$2\r\nEX\r\n"...)
		return appendBulk(b, c.ttl)
	case opGet:
		b = append(b, "*2\r\n$3\r\nGET\r\n"...)
		return c.keys.appendBulkKey(b, idx)
	case opSet:
		if c.ttl == nil {
			b = append(b, "*3\r\n$3\r\nSET\r\n"...)
		} else {
			b = append(b, "*5\r\n$3\r\nSET\r\n"...)
		}
		b = c.keys.appendBulkKey(b, idx)
		b = c.pay.appendBulkValue(b, idx, gen)
		if c.ttl != nil {
			b = append(b, "$2\r\nEX\r\n"...)
			b = appendBulk(b, c.ttl)
		}
		return b
	case opDel:
		b = append(b, "*2\r\n$3\r\nDEL\r\n"...)
		return c.keys.appendBulkKey(b, idx)
	case opUpdate:
		b = append(b, "*4\r\n$3\r\nSET\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
		b = c.pay.appendBulkValue(b, idx, gen)
		return append(b, "$7\r\nKEEPTTL\r\n"...)
	case opGetExpire:
		b = append(b, "*2\r\n$3\r\nGET\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
		b = append(b, "*3\r\n$6\r\nEXPIRE\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
		return appendBulk(b, c.ttl)
	case opHLogin, opHGetAll, opHMGet:
		return c.appendHash(b, op, idx, gen)
	}
	panic("unknown op")
}

// describe renders the command shape, e.g. "SET <key> <700 B> EX 1800".
func (c *cmdBuilder) describe(op opKind) string {
	ex := ""
	if c.ttl != nil {
		ex = " EX " + string(c.ttl)
	}
	switch op {
	case opGetex:
		return "GETEX <key>" + ex
	case opSet:
		return fmt.Sprintf("SET <key> <%s>%s", c.pay.sizes, ex)
	case opUpdate:
		return fmt.Sprintf("SET <key> <%s> KEEPTTL", c.pay.sizes)
	case opGetExpire:
		return "GET <key> + EXPIRE <key> " + string(c.ttl) + " (pipelined, one request)"
	case opHLogin, opHGetAll, opHMGet:
		return c.describeHash(op)
	default:
		return opNames[op] + " <key>"
	}
}

// schedule is the open-loop plan of one connection: the rate ops/s of the
// whole run are spread evenly over conns connections, connection conn sending
// its k-th op at offset (k*conns + conn) / rate from the start. Together the
// connections send one op every 1/rate seconds.
type schedule struct {
	conn, conns int
	rate        float64
}

func (s schedule) offset(k int64) time.Duration {
	return time.Duration((float64(k)*float64(s.conns) + float64(s.conn)) * 1e9 / s.rate)
}

// due returns how many of this connection's ops are scheduled at or before
// elapsed.
func (s schedule) due(elapsed time.Duration) int64 {
	x := elapsed.Seconds()*s.rate - float64(s.conn)
	n := max(int64(math.Floor(x/float64(s.conns)))+1, 0)
	// Float rounding may put a boundary op on the wrong side; offset decides.
	for n > 0 && s.offset(n-1) > elapsed {
		n--
	}
	for s.offset(n) <= elapsed {
		n++
	}
	return n
}

// phase is the timeline of one measured round.
type phase struct {
	start     time.Time // first send (open loop: schedule origin)
	measStart time.Time // ops sent (intended) before this are warmup
	end       time.Time // duration mode: nothing is sent at or after it; zero in requests mode
}

type workerStats struct {
	hist     [numOpKinds]*hdr.Histogram
	count    [numOpKinds]int64
	nulls    [numOpKinds]int64
	errCount [numOpKinds]int64
	errs     map[string]int64
	warmup   int64
	clamped  int64
	lastDone time.Time
	lag      *hdr.Histogram // open loop: send time - intended time, µs
}

type worker struct {
	id    int
	round int
	cfg   *config
	cmd   *cmdBuilder
	mix   mix
	c     *conn
	rng   *rand.Rand
	sched schedule
	quota int64 // requests mode: measured ops still to do; -1 in duration mode

	done atomic.Int64 // all replies so far, for the progress line
	meas atomic.Int64 // measured (not warmup) replies so far, for the throughput samples
	_    [48]byte     // keep neighbouring workers' counters off this cache line

	stats workerStats
	buf   []byte
	kinds []opKind
	idxs  []uint64
	gens  []uint64
	times []time.Time // open loop: intended send time per batch slot
	zipf  *rand.Zipf  // --dist zipf; nil: uniform
	ver   *verifier   // nil with --no-verify
	live  *liveHist   // the progress line's latencies; nil without it
	lats  []int64     // this batch's measured latencies, for live
	seq   uint64      // writes so far, for their generations
}

// nextKey draws a key index.
func (w *worker) nextKey(keys uint64) uint64 {
	if w.zipf != nil {
		return w.zipf.Uint64()
	}
	return w.rng.Uint64N(keys)
}

// readReplies reads the replies of batch slot j (two for get+expire) and
// verifies them. It returns the first error reply's first word, whether a
// read found nothing, and whether a reply was wrong.
func (w *worker) readReplies(j int) (errWord []byte, null, wrong bool, err error) {
	op := w.kinds[j]
	if w.ver == nil {
		kind, null, ew, err := w.c.rd.skip()
		if err == nil && op.replies() == 2 {
			if kind == '-' {
				ew = append([]byte(nil), ew...) // the next read may overwrite it
			}
			k2, _, ew2, err2 := w.c.rd.skip()
			if kind != '-' && k2 == '-' {
				kind, ew = k2, ew2
			}
			err = err2
		}
		if kind != '-' {
			ew = nil
		}
		if op == opHMGet {
			null = false // an array: a miss is not told apart without verification
		}
		return ew, null, false, err
	}
	if op.hash() {
		return w.readHashReplies(j)
	}
	v := w.ver
	r, err := w.c.rd.readView(v.scratch)
	if err != nil {
		return nil, false, false, err
	}
	now := time.Now()
	idx := w.idxs[j]
	var why string
	switch op {
	case opGet, opGetex, opGetExpire:
		why = v.read(idx, &r, now)
	case opSet, opUpdate:
		why = v.write(op, idx, w.gens[j], &r)
	case opDel:
		why = v.del(idx, &r, now)
	}
	if r.kind == '-' {
		errWord = firstWord(r.str)
	}
	null = r.null
	if op == opGetExpire {
		if why != "" {
			v.flag("GET", idx, why)
			wrong = true
		}
		// The GET's bulk is no longer needed, only its kind and nullness.
		get := replyView{kind: r.kind, null: r.null}
		r, err = w.c.rd.readView(v.scratch)
		if err != nil {
			return nil, false, false, err
		}
		if why = v.expire(&get, &r, now); why != "" {
			v.flag("EXPIRE", idx, why)
			wrong = true
		}
		if errWord == nil && r.kind == '-' {
			errWord = firstWord(r.str)
		}
		return errWord, null, wrong, nil
	}
	if why != "" {
		v.flag(opNames[op], idx, why)
		wrong = true
	}
	return errWord, null, wrong, nil
}

func firstWord(b []byte) []byte {
	for i, c := range b {
		if c == ' ' {
			return b[:i]
		}
	}
	if len(b) == 0 {
		return []byte("(empty)")
	}
	return b
}

// run drives one connection until the round ends, the quota is done or ctx is
// cancelled (a cancelled run is not an error).
func (w *worker) run(ctx context.Context, ph phase) error {
	P := w.cfg.Pipeline
	open := w.cfg.Rate > 0
	durationMode := w.quota < 0
	keys := uint64(w.cfg.Keys)
	var timer *time.Timer
	var k int64
	for ctx.Err() == nil && w.quota != 0 {
		now := time.Now()
		n := P
		if open {
			first := ph.start.Add(w.sched.offset(k))
			if durationMode && !first.Before(ph.end) {
				return nil
			}
			if d := first.Sub(now); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case <-timer.C:
				}
				now = time.Now()
			}
			n = 0
			for n < P {
				t := ph.start.Add(w.sched.offset(k + int64(n)))
				if n > 0 && (t.After(now) || (durationMode && !t.Before(ph.end))) {
					break
				}
				w.times[n] = t
				n++
			}
		} else if durationMode && !now.Before(ph.end) {
			return nil
		}
		batchTime := now
		if open {
			batchTime = w.times[0]
		}
		if !durationMode && !batchTime.Before(ph.measStart) {
			n = int(min(int64(n), w.quota))
		}

		buf := w.buf[:0]
		for j := range n {
			op := w.mix.pick(w.rng.Uint64N(w.mix.total))
			idx := w.nextKey(keys)
			var gen uint64
			if op.writes() {
				w.seq++
				gen = writeGen(w.id, w.round, w.seq)
			}
			buf = w.cmd.append(buf, op, idx, gen)
			w.kinds[j], w.idxs[j], w.gens[j] = op, idx, gen
		}
		w.buf = buf
		sent := time.Now()
		if open {
			for j := range n {
				if !w.times[j].Before(ph.measStart) {
					recordUs(w.stats.lag, sent.Sub(w.times[j]).Microseconds())
				}
			}
		}
		if _, err := w.c.nc.Write(buf); err != nil {
			return w.ioErr(ctx, "write", err)
		}
		var measured int64
		for j := range n {
			errWord, null, wrong, err := w.readReplies(j)
			if err != nil {
				return w.ioErr(ctx, "read", err)
			}
			if wrong {
				w.stats.errs["WRONG"]++ // warmup replies included
			}
			t := time.Now()
			opTime := sent
			if open {
				opTime = w.times[j]
			}
			if opTime.Before(ph.measStart) {
				w.stats.warmup++
				continue
			}
			op := w.kinds[j]
			us := t.Sub(opTime).Microseconds()
			if recordUs(w.stats.hist[op], us) {
				w.stats.clamped++
			}
			if w.live != nil {
				w.lats = append(w.lats, us)
			}
			w.stats.count[op]++
			measured++
			switch {
			case errWord != nil:
				w.stats.errCount[op]++
				w.stats.errs[string(errWord)]++
			case wrong:
				w.stats.errCount[op]++
			case null:
				w.stats.nulls[op]++
			}
			w.stats.lastDone = t
			if w.quota > 0 {
				w.quota--
			}
		}
		k += int64(n)
		w.done.Add(int64(n))
		if measured > 0 {
			w.meas.Add(measured)
		}
		if len(w.lats) > 0 {
			w.live.record(w.lats)
			w.lats = w.lats[:0]
		}
	}
	return nil
}

func (w *worker) ioErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return nil // interrupted: the deadline we set to unblock I/O
	}
	return fmt.Errorf("connection %d: %s: %w", w.id, what, err)
}

// dialAll opens n connections to target.
func dialAll(ctx context.Context, cfg *config, target string, n int) ([]*conn, error) {
	conns := make([]*conn, 0, n)
	for range n {
		c, err := dialConn(ctx, target, cfg.Password)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*conn) {
	for _, c := range conns {
		c.close()
	}
}

// unblockOnCancel makes blocked reads and writes on conns return once ctx is
// cancelled. The returned stop must be called before the conns are reused.
func unblockOnCancel(ctx context.Context, conns []*conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.nc.SetDeadline(time.Unix(1, 0))
		}
	})
}

// runOpRound runs one measured round of session/set/get against target;
// with --during bgsave, one phase of it (phaseIdle or phaseBGSave, "" for
// --during none).
func runOpRound(ctx context.Context, cfg *config, target string, round int, phaseName string, ks *keyState, prog *progress) (*opRun, error) {
	conns, err := dialAll(ctx, cfg, target, cfg.Conns)
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", target, err)
	}
	defer closeAll(conns)
	// The rounds' streams of commands, keys and write generations differ;
	// so do the two phases of a round.
	stream := round
	if cfg.During == duringBGSave {
		stream = 2*round - 1
		if phaseName == phaseBGSave {
			stream++
		}
		// No save may run (ours of the previous phase, or the server's own)
		// when a phase starts.
		if _, stopped, err := waitSaveDone(ctx, conns[0], savePollInterval, saveQuiesceTimeout); err != nil {
			return nil, fmt.Errorf("%s round %d: before the %s phase: %w", target, round, phaseName, err)
		} else if stopped {
			return nil, nil
		}
	}
	var saveConn *conn
	if phaseName == phaseBGSave {
		if saveConn, err = dialConn(ctx, target, cfg.Password); err != nil {
			return nil, fmt.Errorf("%s: connect: %w", target, err)
		}
		defer saveConn.close()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	unblock := conns
	if saveConn != nil {
		unblock = append(slices.Clip(conns), saveConn)
	}
	stopUnblock := unblockOnCancel(runCtx, unblock)
	defer stopUnblock()

	// The server process, for the CPU accounting (when it runs here).
	serverPID := findServerProc(conns[0], target, 0).pid

	cmd := newCmdBuilder(cfg)
	workers := make([]*worker, cfg.Conns)
	bufCap := cfg.Pipeline*(min(cfg.ValueSize, 4096)+2*cfg.KeySize+96) + cfg.ValueSize
	for i := range workers {
		w := &worker{
			id:    i,
			round: stream,
			cfg:   cfg,
			cmd:   cmd,
			mix:   cfg.Mix,
			c:     conns[i],
			rng:   rand.New(rand.NewPCG(cfg.Seed, uint64(i)<<20|uint64(stream))),
			sched: schedule{conn: i, conns: cfg.Conns, rate: cfg.Rate},
			quota: -1,
			buf:   make([]byte, 0, bufCap),
			kinds: make([]opKind, cfg.Pipeline),
			idxs:  make([]uint64, cfg.Pipeline),
			gens:  make([]uint64, cfg.Pipeline),
			times: make([]time.Time, cfg.Pipeline),
		}
		if cfg.Dist == distZipf && cfg.Keys > 1 {
			w.zipf = rand.NewZipf(w.rng, cfg.ZipfS, 1, uint64(cfg.Keys-1))
		}
		if !cfg.NoVerify {
			w.ver = newVerifier(cfg, cmd.pay, cmd.keys, ks)
		}
		w.stats.errs = map[string]int64{}
		if cfg.Rate > 0 {
			w.stats.lag = newHist()
		}
		for _, op := range cfg.Mix.ops {
			w.stats.hist[op] = newHist()
		}
		if cfg.Requests > 0 {
			w.quota = cfg.Requests / int64(cfg.Conns)
			if int64(i) < cfg.Requests%int64(cfg.Conns) {
				w.quota++
			}
		}
		workers[i] = w
	}

	start := time.Now()
	ph := phase{start: start, measStart: start.Add(cfg.Warmup)}
	if cfg.Requests == 0 {
		ph.end = ph.measStart.Add(cfg.Duration)
	}
	label := fmt.Sprintf("%s %s round %d/%d", cfg.Workload, target, round, cfg.Rounds)
	if phaseName != "" {
		label += " " + phaseName
	}
	spec := progressSpec{label: label, unit: "ops", done: func() int64 {
		var n int64
		for _, w := range workers {
			n += w.done.Load()
		}
		return n
	}}
	if prog.on() {
		// p99 so far: the workers' latencies are handed over once a batch.
		acc := hdr.New(1, histMaxUs, 2)
		for _, w := range workers {
			w.live = &liveHist{h: hdr.New(1, histMaxUs, 2)}
		}
		spec.p99 = func() int64 {
			for _, w := range workers {
				w.live.drainInto(acc)
			}
			if acc.TotalCount() == 0 {
				return -1
			}
			return acc.ValueAtQuantile(99)
		}
		spec.eta = func(_ int64, rate float64) time.Duration {
			if cfg.Requests == 0 {
				return max(time.Until(ph.end), 0)
			}
			var measured int64
			for _, w := range workers {
				measured += w.meas.Load()
			}
			if rate <= 0 {
				return -1
			}
			left := float64(max(cfg.Requests-measured, 0)) / rate
			return max(time.Until(ph.measStart), 0) + time.Duration(left*float64(time.Second))
		}
	}
	stopProgress := prog.startSpec(spec)

	// The saver keeps a background save in flight from the phase's start
	// (warmup included) until its workers are done.
	var sv *saver
	var saverErr error
	var saving sync.WaitGroup
	saverCtx, stopSaver := context.WithCancel(runCtx)
	defer stopSaver()
	if saveConn != nil {
		sv = &saver{c: saveConn, poll: savePollInterval}
		saving.Go(func() {
			if saverErr = sv.run(saverCtx); saverErr != nil {
				cancel() // the phase would not measure what it says
			}
		})
	}

	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(runCtx, ph); err != nil {
				errs[i] = err
				cancel() // one broken connection ends the round
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	var throughput []rateSample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		throughput = sampleThroughput(ph.measStart, allDone, func() int64 {
			var n int64
			for _, w := range workers {
				n += w.meas.Load()
			}
			return n
		})
	}()
	// Account CPU over the measured window only.
	var cpu *cpuSampler
	select {
	case <-time.After(time.Until(ph.measStart)):
		cpu = startCPU(serverPID)
	case <-allDone:
	}
	<-allDone
	measEnd := time.Now()
	stopSaver()
	saving.Wait()
	<-sampled
	stopProgress()

	res := aggregateWorkers(cfg, target, round, ph, workers)
	res.Phase = phaseName
	res.Throughput = throughput
	if cpu != nil {
		res.CPU = cpu.stop()
	}
	res.Interrupted = ctx.Err() != nil
	if sv != nil {
		res.BGSave = summarizeSaves(sv.saves, sv.alreadyRunning, ph.measStart, measEnd, sv.poll)
		switch {
		case saverErr != nil:
			errs = append(errs, fmt.Errorf("background saves: %w", saverErr))
		case runCtx.Err() == nil:
			// The next phase must not start while our save still runs.
			pi, stopped, err := waitSaveDone(runCtx, saveConn, savePollInterval, saveQuiesceTimeout)
			switch {
			case stopped || ctx.Err() != nil: // interrupted
			case err != nil:
				errs = append(errs, fmt.Errorf("after the bgsave phase: %w; not starting the next phase", err))
			case !pi.lastOK:
				errs = append(errs, errors.New("after the bgsave phase: the last background save failed (rdb_last_bgsave_status:err)"))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		res.Failure = err.Error()
		return res, fmt.Errorf("%s round %d%s: %w", target, round, phaseSuffix(phaseName), err)
	}
	return res, nil
}

// phaseSuffix is " phase <name>" for --during bgsave, else "".
func phaseSuffix(phaseName string) string {
	if phaseName == "" {
		return ""
	}
	return " phase " + phaseName
}

func aggregateWorkers(cfg *config, target string, round int, ph phase, workers []*worker) *opRun {
	res := &opRun{Target: target, Round: round, Rounds: 1, Errors: map[string]int64{}, TargetRate: cfg.Rate, Verified: !cfg.NoVerify}
	var last time.Time
	for op := range numOpKinds {
		if !cfg.Mix.has(op) {
			continue
		}
		res.hist[op] = newHist()
	}
	for _, w := range workers {
		s := &w.stats
		for op := range numOpKinds {
			if s.hist[op] == nil {
				continue
			}
			res.hist[op].Merge(s.hist[op])
			res.count[op] += s.count[op]
			res.nulls[op] += s.nulls[op]
			res.errCount[op] += s.errCount[op]
		}
		for k, v := range s.errs {
			res.Errors[k] += v
		}
		if w.ver != nil {
			res.Wrong += w.ver.wrong
			for _, m := range w.ver.mismatches {
				if len(res.Mismatches) < maxMismatches {
					res.Mismatches = append(res.Mismatches, m)
				}
			}
		}
		res.WarmupOps += s.warmup
		res.Clamped += s.clamped
		if s.lag != nil {
			if res.lag == nil {
				res.lag = newHist()
			}
			res.lag.Merge(s.lag)
		}
		if s.lastDone.After(last) {
			last = s.lastDone
		}
	}
	if !last.IsZero() {
		res.Seconds = last.Sub(ph.measStart).Seconds()
	}
	res.finish()
	return res
}

// rateSample is the throughput of one interval of a measured round: the
// interval ends T seconds after the measurement started (one second long,
// but the last may be shorter).
type rateSample struct {
	T         float64 `json:"t_s"`
	OpsPerSec float64 `json:"ops_per_sec"`
}

// sampleThroughput samples measured() once a second from measStart until
// done is closed, and returns the ops/s of each interval (the last, partial
// one only when it lasted at least 100 ms).
func sampleThroughput(measStart time.Time, done <-chan struct{}, measured func() int64) []rateSample {
	wait := time.NewTimer(time.Until(measStart))
	defer wait.Stop()
	select {
	case <-done:
		return nil
	case <-wait.C:
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var out []rateSample
	var prev int64
	last := measStart
	for {
		select {
		case now := <-tick.C:
			n := measured()
			out = append(out, rateSample{T: now.Sub(measStart).Seconds(), OpsPerSec: float64(n-prev) / now.Sub(last).Seconds()})
			prev, last = n, now
		case <-done:
			now := time.Now()
			if dt := now.Sub(last); dt >= 100*time.Millisecond {
				out = append(out, rateSample{T: now.Sub(measStart).Seconds(), OpsPerSec: float64(measured()-prev) / dt.Seconds()})
			}
			return out
		}
	}
}

// liveHist is a worker's recent measured latencies, for the progress line.
type liveHist struct {
	mu sync.Mutex
	h  *hdr.Histogram
}

func (l *liveHist) record(us []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range us {
		recordUs(l.h, v)
	}
}

// drainInto moves the latencies into acc.
func (l *liveHist) drainInto(acc *hdr.Histogram) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h.TotalCount() > 0 {
		acc.Merge(l.h)
		l.h.Reset()
	}
}

// progress prints a live status line on stderr once per second when stderr
// is a terminal.
type progress struct {
	w       io.Writer
	enabled bool
}

func (p *progress) on() bool { return p != nil && p.enabled }

// progressSpec says what the status line shows.
type progressSpec struct {
	label, unit string
	done        func() int64 // ops or keys so far
	total       int64        // > 0: adds a percentage and the ETA
	p99         func() int64 // optional: latency p99 so far in µs, -1 when none yet
	// eta, optional, is the time left given done() and the current rate (per
	// second); negative when unknown. Without it the ETA comes from total.
	eta func(done int64, rate float64) time.Duration
}

// start begins reporting done() (ops or keys) under label; total > 0 adds a
// percentage and the ETA. The returned stop waits for the printer and
// clears the line.
func (p *progress) start(label, unit string, done func() int64, total int64) (stop func()) {
	return p.startSpec(progressSpec{label: label, unit: unit, done: done, total: total})
}

// startSpec begins reporting as spec says.
func (p *progress) startSpec(spec progressSpec) (stop func()) {
	if !p.on() {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t0 := time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var prev int64
		last := t0
		for {
			select {
			case <-quit:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case now := <-tick.C:
				n := spec.done()
				rate := float64(n-prev) / now.Sub(last).Seconds()
				prev, last = n, now
				p99 := int64(-1)
				if spec.p99 != nil {
					p99 = spec.p99()
				}
				eta := time.Duration(-1)
				switch {
				case spec.eta != nil:
					eta = spec.eta(n, rate)
				case spec.total > 0 && rate > 0:
					eta = time.Duration(float64(max(spec.total-n, 0)) / rate * float64(time.Second))
				}
				fmt.Fprint(p.w, "\r\033[K"+progressLine(spec, now.Sub(t0), n, rate, p99, eta))
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
	}
}

// progressLine renders the status line, e.g.
// "session 127.0.0.1:6379 round 1/1  12s  1,234,567 ops  123,456 ops/s  p99 1,234 µs  ETA 8s".
func progressLine(spec progressSpec, elapsed time.Duration, n int64, rate float64, p99 int64, eta time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %4.0fs  %s %s", spec.label, elapsed.Seconds(), commas(n), spec.unit)
	if spec.total > 0 {
		fmt.Fprintf(&b, " (%.0f%%)", 100*float64(n)/float64(spec.total))
	}
	fmt.Fprintf(&b, "  %s %s/s", commasF(rate), spec.unit)
	if p99 >= 0 {
		fmt.Fprintf(&b, "  p99 %s µs", commas(p99))
	}
	if eta >= 0 {
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	return b.String()
}
