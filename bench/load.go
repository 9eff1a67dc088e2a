package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult describes one bulk load (populate, memory, expiry).
type loadResult struct {
	Target        string           `json:"target"`
	Keys          int64            `json:"keys"`
	Seconds       float64          `json:"seconds"`
	KeysPerSec    float64          `json:"keys_per_sec"`
	Connections   int              `json:"connections"`
	Pipeline      int              `json:"pipeline"`
	MaxBatchRTTms float64          `json:"max_batch_rtt_ms"`
	Errors        map[string]int64 `json:"errors,omitempty"`
	Interrupted   bool             `json:"interrupted,omitempty"`
}

func (l *loadResult) errorTotal() int64 {
	var n int64
	for _, v := range l.Errors {
		n += v
	}
	return n
}

// loadSpec says what to write: SET key(i) value(i) [EX ttl] for i in [0, n).
type loadSpec struct {
	n    int64
	kg   *keyGen
	ttl  time.Duration // 0: no EX
	pool []byte
	size int
	pay  *payloadGen // when set, the values are pay's generation 0 (pool and size unused)
	hash *cmdBuilder // when set, hash-session logins (generation 0) instead of SETs
	// onBatch, when set, is called from the loading goroutines just before a
	// batch of keys [first, first+count) is written (disjoint ranges).
	onBatch func(first int64, count int, sent time.Time)
}

// loadKeys writes spec.n keys with --load-conns connections, each pipelining
// --load-pipeline SETs, batches handed out in key order.
func loadKeys(ctx context.Context, cfg *config, target string, spec loadSpec, prog *progress, label string) (*loadResult, error) {
	res := &loadResult{Target: target, Keys: spec.n, Connections: cfg.LoadConns, Pipeline: cfg.LoadPipeline, Errors: map[string]int64{}}
	conns, err := dialAll(ctx, cfg, target, cfg.LoadConns)
	if err != nil {
		return res, fmt.Errorf("%s: connect: %w", target, err)
	}
	defer closeAll(conns)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer unblockOnCancel(runCtx, conns)()

	var ttlArg []byte
	if spec.ttl > 0 {
		ttlArg = strconv.AppendInt(nil, int64(spec.ttl/time.Second), 10)
	}
	P := int64(cfg.LoadPipeline)
	batches := (spec.n + P - 1) / P
	var next, done atomic.Int64
	stopProgress := prog.start(label, "keys", done.Load, spec.n)

	type connStats struct {
		errs   map[string]int64
		maxRTT time.Duration
		err    error
	}
	stats := make([]connStats, len(conns))
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &stats[i]
			st.errs = map[string]int64{}
			buf := make([]byte, 0, int(P)*(spec.size+spec.kg.size+64))
			for runCtx.Err() == nil {
				b := next.Add(1) - 1
				if b >= batches {
					return
				}
				first := b * P
				count := int(min(P, spec.n-first))
				buf = buf[:0]
				for j := range int64(count) {
					idx := uint64(first + j)
					if spec.hash != nil {
						buf = spec.hash.append(buf, opHLogin, idx, 0)
						continue
					}
					if ttlArg != nil {
						buf = append(buf, "*5\r\n$3\r\nSET\r\n"...)
					} else {
						buf = append(buf, "*3\r\n$3\r\nSET\r\n"...)
					}
					buf = spec.kg.appendBulkKey(buf, idx)
					if spec.pay != nil {
						buf = spec.pay.appendBulkValue(buf, idx, 0)
					} else {
						buf = appendBulk(buf, payloadAt(spec.pool, spec.size, idx))
					}
					if ttlArg != nil {
						buf = append(buf, "$2\r\nEX\r\n"...)
						buf = appendBulk(buf, ttlArg)
					}
				}
				sent := time.Now()
				if spec.onBatch != nil {
					spec.onBatch(first, count, sent)
				}
				if _, err := c.nc.Write(buf); err != nil {
					st.err = err
					cancel()
					return
				}
				replies := count
				if spec.hash != nil {
					replies *= opHLogin.replies()
				}
				for range replies {
					kind, _, errWord, err := c.rd.skip()
					if err != nil {
						st.err = err
						cancel()
						return
					}
					if kind == '-' {
						st.errs[string(errWord)]++
					}
				}
				st.maxRTT = max(st.maxRTT, time.Since(sent))
				done.Add(int64(count))
			}
		}()
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)

	var errs []error
	var maxRTT time.Duration
	for i, st := range stats {
		for k, v := range st.errs {
			res.Errors[k] += v
		}
		maxRTT = max(maxRTT, st.maxRTT)
		if st.err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("load connection %d: %w", i, st.err))
		}
	}
	res.Keys = done.Load()
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.KeysPerSec = float64(res.Keys) / res.Seconds
	}
	res.MaxBatchRTTms = float64(maxRTT.Microseconds()) / 1000
	res.Interrupted = ctx.Err() != nil
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("%s: %w", target, err)
	}
	return res, nil
}

// populateSpec is the session/get pre-population: the whole keyspace.
func populateSpec(cfg *config) loadSpec {
	kg, _ := newKeyGen(cfg.KeyPrefix, cfg.KeySize)
	spec := loadSpec{n: cfg.Keys, kg: kg, ttl: cfg.TTL, pay: newPayloadGen(cfg.sizes()), size: min(cfg.ValueSize, 4096)}
	if cfg.Workload == wlHash {
		spec.hash = newCmdBuilder(cfg)
	}
	return spec
}
