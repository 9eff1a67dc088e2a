package persist

// replayer applies a file's records to a Sink at load, with now's view of
// the deadlines.
//
// An OpExpire changes only its key's deadline, so of a key's OpExpire
// records only the last one counts, and only if no other record of the key
// follows it. The deadline a key ends with must decide whether it is
// loaded, not the deadline of its OpPut: a sliding session (SET EX 60, then
// GETEX EX 3600 each minute) whose server was down past its first
// deadlines but not its last is live, although its OpPut and its early
// OpExpire records say expired. So a first pass over the log (the file's,
// then the segments beside it) finds the keys whose last record is an
// OpExpire, with its deadline (final); the replay then gives every OpPut
// of such a key that deadline, and skips the OpExpire records: each is
// either its key's final one, applied so, or followed by a record of its
// key that decides in its place.
type replayer struct {
	sink Sink
	now  int64
	// final: db byte + key → the deadline of the key's last record, when
	// that record is an OpExpire. Read-only once built (the snapshot's
	// workers read it concurrently).
	final map[string]int64
}

// expiredAt reports whether deadline d has passed at now.
func expiredAt(d, now int64) bool { return d != 0 && d <= now }

// newReplayer reads f's log and the log segments beside base for the
// final OpExpire of each key. A damaged record ends the search: the replay
// that follows reports it.
func newReplayer(f *file, base string, sink Sink, now int64) *replayer {
	p := &replayer{sink: sink, now: now}
	f.scanLog(base, func(r *Record) {
		p.final = noteFinal(p.final, r)
	})
	return p
}

// noteFinal updates final (created when first needed) with r, the next
// record of a log.
func noteFinal(final map[string]int64, r *Record) map[string]int64 {
	switch r.Op {
	case OpExpire:
		if final == nil {
			final = make(map[string]int64)
		}
		final[string(dbKey(nil, r))] = r.Deadline
	case OpPut, OpDelete:
		if len(final) > 0 {
			var buf [64]byte
			delete(final, string(dbKey(buf[:0], r)))
		}
	case OpFlushDB, OpFlushAll:
		dropFlushed(final, r)
	}
	return final
}

// dropFlushed deletes from m, keyed by database byte + key, the keys that
// r, an OpFlushDB or OpFlushAll, empties.
func dropFlushed[V any](m map[string]V, r *Record) {
	if r.Op == OpFlushAll {
		clear(m)
		return
	}
	for k := range m {
		if int(k[0]) == r.DB {
			delete(m, k)
		}
	}
}

// dbKey appends r's database byte and key to dst.
func dbKey(dst []byte, r *Record) []byte {
	return append(append(dst, byte(r.DB)), r.Key...)
}

// scanLog calls fn with each record of f's log, then of the log segments
// beside base, in order, until a damaged one.
func (f *file) scanLog(base string, fn func(r *Record)) {
	scan := func(block []byte) error {
		return eachRecord(block, func(r *Record) error {
			fn(r)
			return nil
		})
	}
	if f.logBytes > 0 {
		_ = f.each(bucketLog, func(_ uint64, block []byte) error { return scan(block) })
	}
	_ = replaySegments(base, func(walSegment, segmentData) {}, scan)
}

// settle gives r, an OpPut, its key's final deadline, if the log has one.
// Safe from several goroutines.
func (p *replayer) settle(r *Record) {
	if len(p.final) == 0 {
		return
	}
	var buf [64]byte
	if d, ok := p.final[string(dbKey(buf[:0], r))]; ok {
		r.Deadline = d
	}
}

// logBlock restores a log block's records into the sink: an OpPut whose
// (final) deadline has passed deletes its key, counted in st.Expired.
func (p *replayer) logBlock(block []byte, st *LoadStats) error {
	return eachRecord(block, func(r *Record) error {
		st.Records++
		switch r.Op {
		case OpExpire:
			return nil // settled by the first pass
		case OpPut:
			p.settle(r)
			if expiredAt(r.Deadline, p.now) {
				st.Expired++
				d := Record{Op: OpDelete, DB: r.DB, Key: r.Key}
				return p.sink.Restore(&d)
			}
			st.Keys++
		}
		return p.sink.Restore(r)
	})
}
