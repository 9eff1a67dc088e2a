package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// The hash-session workload: a session is a hash, as Spring Session and
// ASP.NET's Redis session state keep it. Login writes every field at once and
// sets the expiry; a request reads the whole session (HGETALL) or a few
// fields (HMGET) and slides the expiry; logout deletes the key.
//
// The fields of key idx written at generation gen are
//
//	creationTime         1700000000000 + idx mod 10^9 (ms, a function of the key)
//	lastAccessedTime     gen in decimal
//	maxInactiveInterval  the TTL in seconds
//	attr:user            "user-" + 10 hex digits of idx
//	attr:payload         the value of (idx, gen), as the string workloads write
//
// so that every field read back can be checked: attr:payload names its key
// and generation (payload.go), lastAccessedTime must be that generation and
// the rest are recomputed.

const (
	hfCreation = iota
	hfLastAccess
	hfMaxInactive
	hfUser
	hfPayload
	numHashFields
)

var hashFields = [numHashFields]string{"creationTime", "lastAccessedTime", "maxInactiveInterval", "attr:user", "attr:payload"}

// hmgetFields are the fields a request reads with HMGET.
var hmgetFields = []int{hfCreation, hfLastAccess, hfUser}

// hashSmall bounds the fields other than attr:payload as read back.
const hashSmall = 64

func appendCreation(b []byte, idx uint64) []byte {
	return strconv.AppendUint(b, 1_700_000_000_000+idx%1_000_000_000, 10)
}

func appendUser(b []byte, idx uint64) []byte {
	return appendHex(append(b, "user-"...), idx, idxHexDigits)
}

// appendBulkUint appends v as a bulk string.
func appendBulkUint(b []byte, v uint64) []byte {
	var num [20]byte
	return appendBulk(b, strconv.AppendUint(num[:0], v, 10))
}

// appendHash encodes a hash-session request for key idx: the command and
// its PEXPIRE.
func (c *cmdBuilder) appendHash(b []byte, op opKind, idx, gen uint64) []byte {
	switch op {
	case opHLogin:
		b = append(b, "*12\r\n$4\r\nHSET\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
		b = appendBulkString(b, hashFields[hfCreation])
		b = appendBulkUint(b, 1_700_000_000_000+idx%1_000_000_000)
		b = appendBulkString(b, hashFields[hfLastAccess])
		b = appendBulkUint(b, gen)
		b = appendBulkString(b, hashFields[hfMaxInactive])
		b = appendBulk(b, c.ttl)
		b = appendBulkString(b, hashFields[hfUser])
		var user [5 + idxHexDigits]byte
		b = appendBulk(b, appendUser(user[:0], idx))
		b = appendBulkString(b, hashFields[hfPayload])
		b = c.pay.appendBulkValue(b, idx, gen)
	case opHGetAll:
		b = append(b, "*2\r\n$7\r\nHGETALL\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
	case opHMGet:
		b = appendArrayHeader(b, 2+len(hmgetFields))
		b = append(b, "$5\r\nHMGET\r\n"...)
		b = c.keys.appendBulkKey(b, idx)
		for _, f := range hmgetFields {
			b = appendBulkString(b, hashFields[f])
		}
	default:
		panic("not a hash op")
	}
	b = append(b, "*3\r\n$7\r\nPEXPIRE\r\n"...)
	b = c.keys.appendBulkKey(b, idx)
	return appendBulk(b, c.pttl)
}

func (c *cmdBuilder) describeHash(op opKind) string {
	pexp := " + PEXPIRE <key> " + string(c.pttl) + " (pipelined, one request)"
	switch op {
	case opHLogin:
		return fmt.Sprintf("HSET <key> creationTime <ms> lastAccessedTime <gen> maxInactiveInterval %s attr:user <user> attr:payload <%s>%s",
			c.ttl, c.pay.sizes, pexp)
	case opHGetAll:
		return "HGETALL <key>" + pexp
	default:
		return "HMGET <key> creationTime lastAccessedTime attr:user" + pexp
	}
}

// hashRead is what bench read back of one session hash.
type hashRead struct {
	have  [numHashFields]bool
	small [numHashFields][hashSmall]byte // every field but attr:payload (in the verifier's scratch)
	n     [numHashFields]int             // each field's full length
}

func (h *hashRead) value(f int) []byte { return h.small[f][:min(h.n[f], hashSmall)] }

// readHashReplies reads and verifies the two replies of a hash-session
// request (slot j).
func (w *worker) readHashReplies(j int) (errWord []byte, null, wrong bool, err error) {
	v, rd := w.ver, w.c.rd
	op, idx := w.kinds[j], w.idxs[j]
	now := time.Now()
	var why string
	present, checked := false, false
	if op == opHLogin {
		r, err := rd.readView(v.scratch)
		if err != nil {
			return nil, false, false, err
		}
		if r.kind == '-' {
			errWord = append([]byte(nil), firstWord(r.str)...)
		} else {
			why, checked, present = v.hset(idx, w.gens[j], &r, now), true, true
		}
	} else {
		var h hashRead
		var ew []byte
		ew, why, err = v.readHash(rd, op, idx, &h)
		if err != nil {
			return nil, false, false, err
		}
		if ew != nil {
			errWord = ew
		} else if why == "" {
			present = h.have[hfLastAccess]
			null = !present
			var gen uint64
			if present {
				gen, why = v.checkHash(op, idx, &h)
			}
			if why == "" {
				why = v.observe(idx, present, gen, now)
			}
			checked = why == ""
		}
	}
	if why != "" {
		v.flag(opNames[op][:len(opNames[op])-len("+PEXPIRE")], idx, why)
		wrong = true
	}
	r, err := rd.readView(v.scratch)
	if err != nil {
		return nil, false, false, err
	}
	if r.kind == '-' {
		if errWord == nil {
			errWord = firstWord(r.str)
		}
		return errWord, null, wrong, nil
	}
	why = zeroOne(&r)
	if why == "" && checked && v.ks.state != nil {
		switch {
		case !present && r.n != 0:
			why = "1 right after the read found no session"
		case present && r.n != 1 && v.ks.mustExist(now):
			why = "0 right after the session was written or read"
		}
	}
	if why != "" {
		v.flag("PEXPIRE", idx, why)
		wrong = true
	}
	return errWord, null, wrong, nil
}

// hset checks HSET's reply: the number of fields added, 5 for a new session
// and 0 for one that exists (all fields are always written together).
func (v *verifier) hset(idx, gen uint64, r *replyView, now time.Time) string {
	if r.kind != ':' || (r.n != 0 && r.n != numHashFields) {
		return fmt.Sprintf("want integer 0 or %d (fields added), got %s", numHashFields, showReply(r))
	}
	s := v.ks.state
	if s == nil {
		return ""
	}
	st := s[idx]
	s[idx] = stAbsent + 1 + gen
	switch {
	case st == stAbsent && r.n != numHashFields:
		return fmt.Sprintf("%d fields added to a session that was deleted (or found missing)", r.n)
	case st > stAbsent && r.n != 0 && v.ks.mustExist(now):
		return fmt.Sprintf("%d fields added, but generation %d was written and cannot have expired", r.n, st-stAbsent-1)
	}
	return ""
}

// readHash reads the reply of HGETALL or HMGET into h. It returns the error
// reply's first word, or why the reply is wrong.
func (v *verifier) readHash(rd *respReader, op opKind, idx uint64, h *hashRead) (errWord []byte, why string, err error) {
	first, err := rd.br.Peek(1)
	if err != nil {
		return nil, "", midReply(err)
	}
	if first[0] != '*' {
		r, err := rd.readView(v.scratch)
		if err != nil {
			return nil, "", err
		}
		if r.kind == '-' {
			return append([]byte(nil), firstWord(r.str)...), "", nil
		}
		return nil, "want an array, got " + showReply(&r), nil
	}
	line, err := rd.line()
	if err != nil {
		return nil, "", err
	}
	n, err := lengthOf(line[1:], maxArrayLen, "array")
	if err != nil {
		return nil, "", err
	}
	if n < 0 {
		return nil, "want an array, got a nil array", nil
	}
	var name [hashSmall]byte
	var junk [hashSmall]byte
	// readInto reads a bulk element into f's buffer (f < 0: a field name).
	readInto := func(f int) (r replyView, err error) {
		switch {
		case f < 0:
			return rd.readView(name[:])
		case f == hfPayload:
			return rd.readView(v.scratch)
		case f >= numHashFields:
			return rd.readView(junk[:])
		default:
			return rd.readView(h.small[f][:])
		}
	}
	bad := func(r *replyView) string {
		if r.kind != '$' || r.null {
			return "want a bulk string, got " + showReply(r)
		}
		return ""
	}
	if op == opHMGet {
		if n != int64(len(hmgetFields)) {
			why = fmt.Sprintf("want an array of %d, got an array of %d", len(hmgetFields), n)
		}
		nulls := 0
		for i := range n {
			f := numHashFields
			if i < int64(len(hmgetFields)) {
				f = hmgetFields[i]
			}
			r, err := readInto(f)
			if err != nil {
				return nil, "", err
			}
			switch {
			case r.kind == '$' && r.null:
				nulls++
			case r.kind != '$' && why == "":
				why = "want a bulk string or nil, got " + showReply(&r)
			case f < numHashFields:
				h.have[f], h.n[f] = true, int(r.n)
			}
		}
		if why == "" && nulls != 0 && nulls != int(n) {
			why = fmt.Sprintf("%d of the %d fields are nil: a partial session", nulls, n)
		}
		return nil, why, nil
	}
	for range n / 2 {
		r, err := readInto(-1)
		if err != nil {
			return nil, "", err
		}
		f := numHashFields
		if w := bad(&r); w != "" && why == "" {
			why = w
		} else {
			for i, fn := range hashFields {
				if r.n == int64(len(fn)) && string(r.str) == fn {
					f = i
				}
			}
			switch {
			case f == numHashFields && why == "":
				why = fmt.Sprintf("unexpected field %q", r.str)
			case f < numHashFields && h.have[f] && why == "":
				why = fmt.Sprintf("field %s twice", hashFields[f])
			}
		}
		r, err = readInto(f)
		if err != nil {
			return nil, "", err
		}
		if w := bad(&r); w != "" && why == "" {
			why = w
		}
		if f < numHashFields {
			h.have[f], h.n[f] = true, int(r.n)
		}
	}
	if n%2 != 0 {
		if _, err := rd.readView(junk[:]); err != nil {
			return nil, "", err
		}
		if why == "" {
			why = fmt.Sprintf("an array of %d: want field-value pairs", n)
		}
	}
	if why == "" && n != 0 && n != 2*numHashFields {
		why = fmt.Sprintf("%d fields, want all %d or none", n/2, numHashFields)
	}
	return nil, why, nil
}

// checkHash checks the fields read of a present session and returns its
// generation.
func (v *verifier) checkHash(op opKind, idx uint64, h *hashRead) (gen uint64, why string) {
	var buf [hashSmall]byte
	if got := h.value(hfCreation); !bytes.Equal(got, appendCreation(buf[:0], idx)) {
		return 0, fmt.Sprintf("creationTime %q, want %q", got, appendCreation(buf[:0], idx))
	}
	if got := h.value(hfUser); !bytes.Equal(got, appendUser(buf[:0], idx)) {
		return 0, fmt.Sprintf("attr:user %q, want %q", got, appendUser(buf[:0], idx))
	}
	la := h.value(hfLastAccess)
	gen, err := strconv.ParseUint(string(la), 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("lastAccessedTime %q: not a generation bench writes", la)
	}
	if why := v.checkGenShape(gen); why != "" || op != opHGetAll {
		return gen, why
	}
	if got := h.value(hfMaxInactive); !bytes.Equal(got, v.ttlSecs) {
		return 0, fmt.Sprintf("maxInactiveInterval %q, want %q", got, v.ttlSecs)
	}
	pgen, w := v.pay.check(v.scratch[:min(h.n[hfPayload], len(v.scratch))], h.n[hfPayload], idx)
	if w != "" {
		return 0, "attr:payload: " + w
	}
	if pgen != gen {
		return 0, fmt.Sprintf("attr:payload of generation %d, lastAccessedTime %d: fields of different writes", pgen, gen)
	}
	return gen, ""
}

// checkGenShape accepts generation 0 (the population) and the generations
// writeGen makes.
func (v *verifier) checkGenShape(gen uint64) string {
	if gen != 0 && gen&(1<<14-1) == 0 {
		return fmt.Sprintf("lastAccessedTime %d: not a generation bench writes", gen)
	}
	return ""
}
