package resp

import (
	"math"
	"strconv"

	"github.com/tidwall/redcon"
)

// Writer encodes replies into a buffer in RESP2 or RESP3, the bytes Redis 7
// sends. The zero value is ready to use and speaks RESP2.
//
// Its methods only append to memory and never fail; the owner sends Bytes
// to the client (once per pipeline) and then calls Reset. Aggregates
// (Array, Map, Set, Push) write only their header: the caller writes the
// elements that follow (a Map's keys and values alternate). A Writer is not
// safe for concurrent use.
type Writer struct {
	buf   []byte
	proto int // 0 means 2
}

// SetProto selects the protocol version of the replies that follow: 3 for
// RESP3 (after HELLO 3), anything else RESP2.
func (w *Writer) SetProto(v int) {
	if v == 3 {
		w.proto = 3
	} else {
		w.proto = 2
	}
}

// Proto returns the protocol version, 2 or 3.
func (w *Writer) Proto() int {
	if w.proto == 3 {
		return 3
	}
	return 2
}

func (w *Writer) resp3() bool { return w.proto == 3 }

// Bytes returns the encoded replies. The slice aliases the buffer: it is
// valid until the next call that writes, Truncate or Reset.
func (w *Writer) Bytes() []byte { return w.buf }

// Len returns the number of bytes buffered.
func (w *Writer) Len() int { return len(w.buf) }

// Truncate drops everything written after the first n bytes (e.g. the
// partial reply of a command that failed). A mark beyond the current
// length (the bytes were moved out meanwhile) is ignored.
func (w *Writer) Truncate(n int) {
	if n <= len(w.buf) {
		w.buf = w.buf[:n]
	}
}

// Prepend inserts b before everything written so far.
func (w *Writer) Prepend(b []byte) {
	w.buf = append(b, w.buf...)
}

// Reset empties the buffer, keeping its memory for the next pipeline unless
// it grew big for one large reply and is now mostly unused.
func (w *Writer) Reset() {
	if cap(w.buf) > keepSize && len(w.buf) < cap(w.buf)/4 {
		w.buf = nil
		return
	}
	w.buf = w.buf[:0]
}

// Raw appends b as it is: it must be valid RESP for the client's protocol.
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// Status appends a simple string, "+s\r\n". CR and LF in s become spaces.
func (w *Writer) Status(s string) { w.buf = redcon.AppendString(w.buf, s) }

// OK appends "+OK\r\n".
func (w *Writer) OK() { w.buf = append(w.buf, "+OK\r\n"...) }

// Error appends an error reply, "-s\r\n". s starts with the error code, as
// in "ERR syntax error" or "WRONGTYPE ..."; CR and LF in s become spaces.
func (w *Writer) Error(s string) { w.buf = redcon.AppendError(w.buf, s) }

// Int appends an integer reply, ":n\r\n".
func (w *Writer) Int(n int64) { w.buf = redcon.AppendInt(w.buf, n) }

// Bulk appends a bulk string, "$len\r\nb\r\n".
func (w *Writer) Bulk(b []byte) { w.buf = redcon.AppendBulk(w.buf, b) }

// BulkString appends a bulk string, "$len\r\ns\r\n".
func (w *Writer) BulkString(s string) { w.buf = redcon.AppendBulkString(w.buf, s) }

// Null appends the null bulk string: "$-1\r\n" in RESP2, "_\r\n" in RESP3.
func (w *Writer) Null() {
	if w.resp3() {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = redcon.AppendNull(w.buf)
}

// NullArray appends the null array: "*-1\r\n" in RESP2, "_\r\n" in RESP3.
func (w *Writer) NullArray() {
	if w.resp3() {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// Array appends the header of an array of n elements, "*n\r\n". n must not
// be negative (see NullArray).
func (w *Writer) Array(n int) { w.buf = redcon.AppendArray(w.buf, n) }

// Map appends the header of a map of n key-value pairs: "%n\r\n" in RESP3,
// a flat array of 2n elements in RESP2.
func (w *Writer) Map(n int) {
	if w.resp3() {
		w.buf = appendHeader(w.buf, '%', n)
		return
	}
	w.buf = redcon.AppendArray(w.buf, 2*n)
}

// Set appends the header of a set of n elements: "~n\r\n" in RESP3, an
// array in RESP2.
func (w *Writer) Set(n int) {
	if w.resp3() {
		w.buf = appendHeader(w.buf, '~', n)
		return
	}
	w.buf = redcon.AppendArray(w.buf, n)
}

// Push appends the header of an out-of-band push message of n elements
// (pub/sub): ">n\r\n" in RESP3, an array in RESP2.
func (w *Writer) Push(n int) {
	if w.resp3() {
		w.buf = appendHeader(w.buf, '>', n)
		return
	}
	w.buf = redcon.AppendArray(w.buf, n)
}

// Double appends a floating point reply as Redis 7.0 does: C's "%.17g"
// (e.g. 3.1400000000000001), "inf" or "-inf"; a bulk string in RESP2,
// ",<number>\r\n" in RESP3.
func (w *Writer) Double(f float64) {
	if w.resp3() {
		w.buf = append(w.buf, ',')
		w.buf = AppendDouble(w.buf, f)
		w.buf = append(w.buf, '\r', '\n')
		return
	}
	var tmp [32]byte
	w.buf = redcon.AppendBulk(w.buf, AppendDouble(tmp[:0], f))
}

// Bool appends a boolean: "#t\r\n" or "#f\r\n" in RESP3, the integer 1 or
// 0 in RESP2.
func (w *Writer) Bool(v bool) {
	switch {
	case w.resp3() && v:
		w.buf = append(w.buf, "#t\r\n"...)
	case w.resp3():
		w.buf = append(w.buf, "#f\r\n"...)
	case v:
		w.buf = append(w.buf, ":1\r\n"...)
	default:
		w.buf = append(w.buf, ":0\r\n"...)
	}
}

// Verbatim appends a verbatim string (INFO, CLIENT LIST, LATENCY DOCTOR):
// "=len\r\nfmt:s\r\n" in RESP3, a bulk string of s in RESP2. format is
// the three-byte type, "txt" or "mkd"; any other length is taken as "txt".
func (w *Writer) Verbatim(format string, s []byte) {
	if !w.resp3() {
		w.buf = redcon.AppendBulk(w.buf, s)
		return
	}
	if len(format) != 3 {
		format = "txt"
	}
	w.buf = appendHeader(w.buf, '=', len(s)+4)
	w.buf = append(w.buf, format...)
	w.buf = append(w.buf, ':')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// BigNumber writes s as a RESP3 big number, or as a bulk string under
// RESP2. A big number is an optional '-' and at least one digit; any other
// s (a script can return anything) goes out as a bulk string under RESP3
// too, so the client never reads a malformed frame. Redis would send such
// an s verbatim after '('.
func (w *Writer) BigNumber(s string) {
	if !w.resp3() || !isBigNumber(s) {
		w.buf = redcon.AppendBulkString(w.buf, s)
		return
	}
	w.buf = append(w.buf, '(')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// isBigNumber reports whether s is an optional '-' followed by digits.
func isBigNumber(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendHeader appends a type byte, n in decimal, and CRLF.
func appendHeader(b []byte, typ byte, n int) []byte {
	b = append(b, typ)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendDouble appends f formatted as C's printf("%.17g") does with glibc
// (Redis's text for doubles): 17 significant digits without trailing
// zeros, an exponent of at least two digits when it is below -4 or at
// least 17, "inf", "-inf", "nan" or "-nan".
func AppendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		if math.Signbit(f) {
			return append(b, "-nan"...)
		}
		return append(b, "nan"...)
	}
	// strconv's %g with an explicit precision follows C: correctly rounded
	// (ties to even, as glibc in the default rounding mode), %e when the
	// exponent is < -4 or ≥ the precision, trailing zeros removed, a
	// two-digit minimum exponent. TestAppendDoubleMatchesC checks it.
	return strconv.AppendFloat(b, f, 'g', 17, 64)
}
