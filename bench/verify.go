package main

import (
	"fmt"
	"strconv"
	"time"
)

// Reply verification: a fast but wrong server must not win. Every reply of
// the session/set/get workloads is checked against what bench wrote:
//
//   - SET and SET KEEPTTL must answer +OK; DEL and EXPIRE the integer 0 or 1;
//   - GET/GETEX must answer nil or a value bench writes for that very key
//     (payload.go: the header names the key and generation, the length and
//     every other byte are recomputed from them);
//   - when the mix never writes (the get workload, a getex/get/del/get+expire
//     mix) over a populated keyspace, the value must be the population's
//     (generation 0), and without DEL nil is wrong while the keys cannot have
//     expired yet;
//   - with one connection (-c 1, keyspace up to exactKeysMax) replies are in
//     a total order, so bench tracks each key's state and the checks are
//     exact: GET returns the generation written last, nil only for a deleted
//     or possibly expired key, DEL and EXPIRE return 1 exactly when the key
//     exists. (Exact tracking assumes no other client writes these keys.)
//
// With several connections a read racing with writes on other connections may
// legitimately see any recent generation, so only the key/integrity checks
// apply. A key "cannot have expired" while less than the TTL minus a second
// has passed since the population started (or forever with --ttl 0).
// Anything else is counted as an error of kind WRONG, and the first few are
// described in the report.

// exactKeysMax bounds the per-key state of exact tracking (8 bytes a key).
const exactKeysMax = 1 << 23

const maxMismatches = 10 // described per round

// maxScratch bounds the part of a value read back that is checked.
const maxScratch = 1 << 20

// Per-key states of exact tracking.
const (
	stUnknown = 0 // not populated and not written yet
	stAbsent  = 1 // deleted, or found missing
	// stAbsent+1+gen: present with generation gen
)

// keyState is what bench knows about one target's keyspace; it lives from the
// population across the rounds.
type keyState struct {
	start       time.Time     // population start (or first round)
	ttl         time.Duration // 0: keys do not expire
	genZeroOnly bool          // populated and the mix never writes: every value is generation 0
	noDelete    bool          // genZeroOnly and the mix never deletes
	state       []uint64      // exact tracking (one connection); nil otherwise
}

func newKeyState(cfg *config, start time.Time) *keyState {
	ks := &keyState{start: start, ttl: cfg.TTL}
	writes := hasWrites(cfg.Mix)
	if cfg.populates() && !writes {
		ks.genZeroOnly = true
		ks.noDelete = !cfg.Mix.has(opDel)
	}
	if cfg.Conns == 1 && cfg.Keys <= exactKeysMax && !cfg.NoVerify {
		ks.state = make([]uint64, cfg.Keys)
		if cfg.populates() {
			for i := range ks.state {
				ks.state[i] = stAbsent + 1 // generation 0
			}
		}
	}
	return ks
}

// mustExist reports whether a key bench wrote (since start) cannot have
// expired by now.
func (k *keyState) mustExist(now time.Time) bool {
	return k.ttl == 0 || now.Sub(k.start) < k.ttl-time.Second
}

// verifier checks one connection's replies.
type verifier struct {
	pay        *payloadGen
	keys       *keyGen
	ks         *keyState
	scratch    []byte // bulk replies are read into it
	ttlSecs    []byte // hash-session: maxInactiveInterval
	wrong      int64
	mismatches []string
}

func newVerifier(cfg *config, pay *payloadGen, keys *keyGen, ks *keyState) *verifier {
	return &verifier{pay: pay, keys: keys, ks: ks, scratch: make([]byte, max(min(pay.sizes.hi, maxScratch), 64)),
		ttlSecs: strconv.AppendInt(nil, int64(cfg.TTL/time.Second), 10)}
}

// flag records a mismatch; why is only built on this slow path.
func (v *verifier) flag(cmd string, idx uint64, why string) {
	v.wrong++
	if len(v.mismatches) < maxMismatches {
		v.mismatches = append(v.mismatches, fmt.Sprintf("%s %s: %s", cmd, v.keys.key(idx), why))
	}
}

// showReply renders a reply for a mismatch message.
func showReply(r *replyView) string {
	switch r.kind {
	case '+', '-':
		return strconv.Quote(string(r.kind) + string(r.str))
	case ':':
		return "integer " + strconv.FormatInt(r.n, 10)
	case '$':
		if r.null {
			return "nil"
		}
		s := r.str
		suffix := ""
		if len(s) > 48 {
			s, suffix = s[:48], fmt.Sprintf("... (%d bytes)", r.n)
		}
		return strconv.Quote(string(s)) + suffix
	case '*':
		if r.null {
			return "nil array"
		}
		return fmt.Sprintf("an array of %d", r.n)
	}
	return fmt.Sprintf("type %q", r.kind)
}

// read checks a GET/GETEX reply; it returns "" when right.
func (v *verifier) read(idx uint64, r *replyView, now time.Time) string {
	if r.kind == '-' {
		return "" // error replies are counted by their own kind
	}
	if r.kind != '$' {
		return "want a bulk string or nil, got " + showReply(r)
	}
	if r.null {
		return v.observe(idx, false, 0, now)
	}
	gen, why := v.pay.check(r.str, int(r.n), idx)
	if why != "" {
		return why + "; got " + showReply(r)
	}
	return v.observe(idx, true, gen, now)
}

// observe checks what a read found, the key absent or present with value
// generation gen, against what is known of the key.
func (v *verifier) observe(idx uint64, present bool, gen uint64, now time.Time) string {
	ks := v.ks
	st := uint64(stUnknown)
	if ks.state != nil {
		st = ks.state[idx]
	}
	if !present {
		switch {
		case st > stAbsent && ks.mustExist(now):
			return fmt.Sprintf("nil, but generation %d was written and cannot have expired", st-stAbsent-1)
		case st == stUnknown && ks.noDelete && ks.mustExist(now):
			return "nil for a populated key that is never deleted and cannot have expired"
		}
		if ks.state != nil {
			ks.state[idx] = stAbsent
		}
		return ""
	}
	switch {
	case st == stAbsent:
		return fmt.Sprintf("generation %d for a key that was deleted (or found missing)", gen)
	case st > stAbsent && gen != st-stAbsent-1:
		return fmt.Sprintf("generation %d, but generation %d was written last", gen, st-stAbsent-1)
	case ks.genZeroOnly && gen != 0:
		return fmt.Sprintf("generation %d, but nothing but the population (generation 0) writes", gen)
	}
	return ""
}

// write checks a SET (opSet) or SET KEEPTTL (opUpdate) reply.
func (v *verifier) write(op opKind, idx, gen uint64, r *replyView) string {
	if r.kind == '-' {
		return ""
	}
	if r.kind != '+' || string(r.str) != "OK" {
		return "want +OK, got " + showReply(r)
	}
	if s := v.ks.state; s != nil && (op == opSet || s[idx] != stUnknown) {
		// SET KEEPTTL of a key of unknown age keeps an unknown TTL.
		s[idx] = stAbsent + 1 + gen
	}
	return ""
}

// zeroOne checks an integer reply of 0 or 1.
func zeroOne(r *replyView) string {
	if r.kind != ':' || (r.n != 0 && r.n != 1) {
		return "want integer 0 or 1, got " + showReply(r)
	}
	return ""
}

// del checks a DEL reply.
func (v *verifier) del(idx uint64, r *replyView, now time.Time) string {
	if r.kind == '-' {
		return ""
	}
	if why := zeroOne(r); why != "" {
		return why
	}
	s := v.ks.state
	if s == nil {
		return ""
	}
	st := s[idx]
	s[idx] = stAbsent
	switch {
	case st == stAbsent && r.n != 0:
		return "1 for a key that was deleted (or found missing)"
	case st > stAbsent && r.n != 1 && v.ks.mustExist(now):
		return fmt.Sprintf("0, but generation %d was written and cannot have expired", st-stAbsent-1)
	}
	return ""
}

// expire checks the EXPIRE of get+expire; get is the GET's reply (already
// checked).
func (v *verifier) expire(get, r *replyView, now time.Time) string {
	if r.kind == '-' {
		return ""
	}
	if why := zeroOne(r); why != "" {
		return why
	}
	if v.ks.state == nil || get.kind != '$' {
		return ""
	}
	switch {
	case get.null && r.n != 0:
		return "1 right after GET answered nil"
	case !get.null && r.n != 1 && v.ks.mustExist(now):
		return "0 right after GET returned the value"
	}
	return ""
}
