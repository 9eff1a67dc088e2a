package persist

import (
	"sync"
)

// replayer applies a file's records to a Sink at load, with now's view of
// the deadlines.
//
// An OpExpire in the log can give a key a new deadline after the OpPut
// that stored it (a sliding session: SET EX 60, then GETEX EX 3600 before
// the 60 s passed). If the server was down past the first deadline but not
// the second, the key is live, although its OpPut alone says expired. So
// the keys that an OpExpire of the log gives a live deadline (revive,
// found by a first pass over the log) keep a copy of their expired OpPut
// (held) until the log says what becomes of them: an OpExpire restores
// the copy with its deadline; any other record of the key drops it.
type replayer struct {
	sink Sink
	now  int64
	// revive are the keys (db byte + key) of the log's OpExpire records
	// with a live deadline; nil when there are none.
	revive map[string]struct{}

	mu   sync.Mutex        // guards held, which base workers fill
	held map[string]Record // expired OpPut records of revive keys, copied
	kbuf []byte            // the log's key scratch (one goroutine)
}

// expiredAt reports whether deadline d has passed at now.
func expiredAt(d, now int64) bool { return d != 0 && d <= now }

// newReplayer finds, in f's log and the log segments beside base, the keys
// an OpExpire gives a live deadline at now. A damaged record ends the
// search: the replay that follows reports it.
func newReplayer(f *file, base string, sink Sink, now int64) *replayer {
	p := &replayer{sink: sink, now: now}
	scan := func(block []byte) error {
		return eachRecord(block, func(r *Record) error {
			if r.Op == OpExpire && !expiredAt(r.Deadline, now) {
				if p.revive == nil {
					p.revive = make(map[string]struct{})
				}
				p.revive[string(append([]byte{byte(r.DB)}, r.Key...))] = struct{}{}
			}
			return nil
		})
	}
	if f.logBytes > 0 {
		_ = f.each(bucketLog, func(_ uint64, block []byte) error { return scan(block) })
	}
	_ = replaySegments(base, func(walSegment, segmentData) {}, scan)
	return p
}

func (p *replayer) key(r *Record) []byte {
	p.kbuf = append(append(p.kbuf[:0], byte(r.DB)), r.Key...)
	return p.kbuf
}

// hold keeps a copy of r, an OpPut expired at now, if the log may revive
// its key. Safe from several goroutines (the snapshot's workers).
func (p *replayer) hold(r *Record) {
	if p.revive == nil {
		return
	}
	k := string(append([]byte{byte(r.DB)}, r.Key...))
	if _, ok := p.revive[k]; !ok {
		return
	}
	c := *r
	c.Key, c.Value = append([]byte(nil), r.Key...), append([]byte(nil), r.Value...)
	p.mu.Lock()
	if p.held == nil {
		p.held = make(map[string]Record)
	}
	p.held[k] = c
	p.mu.Unlock()
}

// logBlock restores a log block's records into the sink: an OpPut whose
// deadline has passed deletes its key (counted in st.Expired), and so does
// an OpExpire whose deadline has passed.
func (p *replayer) logBlock(block []byte, st *LoadStats) error {
	return eachRecord(block, func(r *Record) error {
		st.Records++
		if len(p.held) > 0 {
			if revived, err := p.unhold(r, st); revived || err != nil {
				return err
			}
		}
		switch {
		case r.Op == OpPut && expiredAt(r.Deadline, p.now):
			st.Expired++
			p.hold(r)
			d := Record{Op: OpDelete, DB: r.DB, Key: r.Key}
			return p.sink.Restore(&d)
		case r.Op == OpExpire && expiredAt(r.Deadline, p.now):
			st.Expired++
			d := Record{Op: OpDelete, DB: r.DB, Key: r.Key}
			return p.sink.Restore(&d)
		case r.Op == OpPut:
			st.Keys++
		}
		return p.sink.Restore(r)
	})
}

// unhold settles the held copies r concerns (there are some): an OpExpire
// of a held key restores it with its deadline (revived, when live) or
// drops it; any other record of a held key, or a flush, drops them.
func (p *replayer) unhold(r *Record, st *LoadStats) (revived bool, err error) {
	switch r.Op {
	case OpFlushAll:
		clear(p.held)
		return false, nil
	case OpFlushDB:
		for k := range p.held {
			if int(k[0]) == r.DB {
				delete(p.held, k)
			}
		}
		return false, nil
	}
	k := p.key(r)
	h, ok := p.held[string(k)]
	if !ok {
		return false, nil
	}
	delete(p.held, string(k))
	if r.Op != OpExpire {
		return false, nil
	}
	if expiredAt(r.Deadline, p.now) {
		return true, nil // gone already, and counted
	}
	h.Deadline = r.Deadline
	st.Expired-- // counted when its OpPut was skipped
	st.Keys++
	return true, p.sink.Restore(&h)
}
