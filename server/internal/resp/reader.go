package resp

import (
	"errors"
	"io"
	"math"
)

const (
	// initSize is the query buffer allocated on the first read, Redis's
	// PROTO_IOBUF_LEN.
	initSize = 16 << 10
	// minRead is the least free space offered to one Read; below it the
	// buffer is compacted, then grown.
	minRead = 4 << 10
	// keepSize is the largest buffer kept while idle: a bigger one, grown
	// for one big command, is dropped once commands are small again.
	keepSize = 64 << 10
	// keepArgs is the most argument slots kept between commands.
	keepArgs = 1024
	// maxEmptyReads is how many (0, nil) reads in a row count as a broken
	// io.Reader, as in bufio.
	maxEmptyReads = 100
)

// errNegativeRead reports an io.Reader that returned an impossible count.
var errNegativeRead = errors.New("resp: reader returned invalid count")

// span locates one argument in the query buffer, relative to the start of
// the command it belongs to (the buffer may move while a command arrives).
type span struct{ off, n int }

// parse results
const (
	needMore = iota // the command is incomplete
	parsed          // r.spans holds a command of r.pos bytes
	skipped         // an empty command of r.pos bytes was dropped
)

// Reader reads commands from a client connection. It owns a query buffer
// that holds the bytes read but not yet consumed; a command that arrives in
// pieces is parsed incrementally (nothing is parsed twice) and a read error
// loses nothing that was buffered.
//
// Memory follows the bytes that actually arrive, never a declared count or
// length: a client that announces a 512 MB bulk and sends ten bytes costs a
// 16 KiB buffer. A buffer grown for a big command is released once the
// client goes back to small ones.
//
// A Reader is not safe for concurrent use. After a *ProtocolError or
// ErrQueryBufferLimit it returns the same error forever.
type Reader struct {
	rd   io.Reader
	lim  Limits
	auth bool // the unauthenticated limits apply

	buf   []byte // len(buf) == cap(buf); buf[start:end] is unconsumed input
	start int
	end   int
	rerr  error // a read error that came with data, returned by the next fill
	err   error // sticky *ProtocolError or ErrQueryBufferLimit
	peak  int   // largest command since the buffer was last empty

	// The command in progress, which starts at buf[start]. Offsets are
	// relative to start.
	pos   int    // parse cursor
	scan  int    // the line being searched has no terminator before scan
	nul   bool   // the line being searched has a NUL before its terminator
	multi bool   // a multibulk command whose count is parsed
	left  int    // multibulk arguments still to parse
	bulk  int    // length of the bulk being read; -1 while its header is due
	spans []span // arguments parsed so far

	args [][]byte // the last command returned, aliasing buf
}

// NewReader returns a Reader over r. It allocates nothing until the first
// read.
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.withDefaults()
	return &Reader{rd: r, lim: lim, bulk: -1}
}

// SetAuthRequired turns the unauthenticated limits on or off. It takes
// effect from the next command, so an AUTH lifts the limits for the command
// that follows it in the same pipeline.
func (r *Reader) SetAuthRequired(on bool) { r.auth = on }

// Buffered returns the number of bytes read from the connection but not yet
// consumed by ReadCommand; 0 means the next ReadCommand will block on I/O,
// so pending replies should be flushed first. (A partial command also
// counts; the next ReadCommand then reads before it returns.)
func (r *Reader) Buffered() int { return r.end - r.start }

// Cap returns the capacity of the query buffer (for CLIENT LIST qbuf).
func (r *Reader) Cap() int { return len(r.buf) }

// ReadCommand returns the next command's arguments (never empty). They alias
// the reader's buffer and are valid until the next call; each has its
// capacity clipped to its length, so appending to one copies. Empty
// commands (a blank inline line, a multibulk count ≤ 0) are skipped.
//
// It calls Read on the underlying reader only when the buffered bytes do
// not hold a whole command. Errors: the underlying read error (io.EOF;
// then ReadCommand may be called again, nothing buffered is lost),
// *ProtocolError, ErrQueryBufferLimit.
func (r *Reader) ReadCommand() ([][]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		if r.start == r.end {
			r.rewind()
		} else {
			st, err := r.parse()
			if err != nil {
				r.err = err
				return nil, err
			}
			switch st {
			case parsed:
				return r.finish(), nil
			case skipped:
				r.consume()
				continue
			}
			if int64(r.end-r.start) > r.lim.MaxQueryBuf {
				r.err = ErrQueryBufferLimit
				return nil, r.err
			}
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// rewind resets the empty buffer, and drops it, or the argument slots, if
// they grew big for a command that is now done.
func (r *Reader) rewind() {
	r.start, r.end = 0, 0
	if len(r.buf) > keepSize && r.peak < len(r.buf)/4 {
		r.buf = nil
	}
	r.peak = 0
	if cap(r.spans) > keepArgs {
		r.spans = nil
	}
	if cap(r.args) > keepArgs {
		r.args = nil
	}
}

// finish turns the parsed spans into arguments and consumes the command.
func (r *Reader) finish() [][]byte {
	b := r.buf[r.start:]
	args := r.args[:0]
	for _, s := range r.spans {
		args = append(args, b[s.off:s.off+s.n:s.off+s.n])
	}
	r.args = args
	r.consume()
	return args
}

// consume drops the r.pos bytes of the command just parsed and resets the
// parse state.
func (r *Reader) consume() {
	r.start += r.pos
	r.peak = max(r.peak, r.pos)
	r.pos, r.scan, r.nul, r.multi, r.left, r.bulk = 0, 0, false, false, 0, -1
	r.spans = r.spans[:0]
}

// fill reads more input, making room first.
func (r *Reader) fill() error {
	if r.rerr != nil {
		err := r.rerr
		r.rerr = nil
		return err
	}
	if r.buf == nil {
		r.buf = make([]byte, initSize)
	}
	if len(r.buf)-r.end < minRead {
		if r.start > 0 {
			copy(r.buf, r.buf[r.start:r.end])
			r.end -= r.start
			r.start = 0
		}
		if len(r.buf)-r.end < minRead {
			r.grow()
		}
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return errNegativeRead
		}
		r.end += n
		if err != nil {
			if n > 0 {
				r.rerr = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// grow replaces the buffer (which starts at the command in progress) by a
// bigger one: twice the size, so memory tracks the bytes received, but no
// more than the command is known to need.
func (r *Reader) grow() {
	used := r.end
	size := 2 * len(r.buf)
	if r.multi && r.bulk >= 0 {
		// Waiting for a bulk: it fixes the least size of the command. A
		// little slack takes the small arguments that usually follow.
		size = min(size, r.pos+r.bulk+2+minRead)
	} else {
		// Waiting for a line, which ends within MaxInlineLen+2 bytes of
		// r.pos or fails.
		size = min(size, r.pos+r.lim.MaxInlineLen+2+minRead)
	}
	if q := r.lim.MaxQueryBuf; q < math.MaxInt-minRead-1 {
		size = min(size, int(q)+1+minRead)
	}
	size = max(size, used+minRead)
	nb := make([]byte, size)
	copy(nb, r.buf[:used])
	r.buf = nb
}

// parse advances the command at buf[start], within MaxQueryBuf bytes: the
// same input gives the same result however it was split across reads.
func (r *Reader) parse() (int, error) {
	b := r.buf[r.start:r.end]
	if int64(len(b)) > r.lim.MaxQueryBuf {
		b = b[:r.lim.MaxQueryBuf]
	}
	if b[0] != '*' {
		return r.parseInline(b)
	}
	if !r.multi {
		i, err := r.line(b, 0, '\r', msgTooBigMbulk)
		if i < 0 || err != nil {
			return needMore, err
		}
		n, ok := parseInt(b[1:i])
		if !ok || n > math.MaxInt32 {
			return 0, protoErr(msgInvalidMbulk)
		}
		if r.auth && n > int64(r.lim.UnauthMaxArgs) {
			return 0, protoErr(msgUnauthMbulk)
		}
		r.pos = i + 2
		if n <= 0 {
			return skipped, nil
		}
		r.multi, r.left, r.bulk = true, int(n), -1
	}
	for r.left > 0 {
		if r.bulk < 0 {
			i, err := r.line(b, r.pos, '\r', msgTooBigBulk)
			if i < 0 || err != nil {
				return needMore, err
			}
			if b[r.pos] != '$' {
				return 0, protoErr(msgExpected + string(b[r.pos:r.pos+1]) + "'")
			}
			n, ok := parseInt(b[r.pos+1 : i])
			if !ok || n < 0 || n > r.lim.MaxBulkLen {
				return 0, protoErr(msgInvalidBulk)
			}
			if r.auth && n > r.lim.UnauthMaxBulk {
				return 0, protoErr(msgUnauthBulk)
			}
			r.pos, r.bulk = i+2, int(n)
		}
		// Like Redis, the two bytes after the bulk are skipped unchecked.
		if len(b)-r.pos < r.bulk+2 {
			return needMore, nil
		}
		r.spans = append(r.spans, span{r.pos, r.bulk})
		r.pos += r.bulk + 2
		r.bulk = -1
		r.left--
	}
	return parsed, nil
}

// line finds the end of the line that starts at b[from]: the index of the
// first term byte, which must be followed by one more byte when term is
// '\r' (Redis skips it unchecked). It returns -1 while more input is needed,
// and a protocol error (tooBig) when the line has not ended within
// MaxInlineLen bytes. Like Redis's strchr, the search stops for good at a
// NUL byte, so such a line only ever ends in tooBig.
func (r *Reader) line(b []byte, from int, term byte, tooBig string) (int, error) {
	limit := r.lim.MaxInlineLen
	if !r.nul {
		end := len(b)
		if end-from > limit+1 {
			end = from + limit + 1
		}
		i := max(r.scan, from)
		for ; i < end; i++ {
			if c := b[i]; c == term {
				r.scan = i
				if term == '\r' && i+1 >= len(b) {
					return -1, nil // the byte after '\r' is due
				}
				return i, nil
			} else if c == 0 {
				r.nul = true
				break
			}
		}
		r.scan = i
	}
	if len(b)-from > limit {
		return -1, protoErr(tooBig)
	}
	return -1, nil
}

// parseInline parses an inline command: one line split like Redis's
// sdssplitargs.
func (r *Reader) parseInline(b []byte) (int, error) {
	i, err := r.line(b, 0, '\n', msgTooBigInline)
	if i < 0 || err != nil {
		return needMore, err
	}
	r.pos = i + 1
	if i > 0 && b[i-1] == '\r' {
		i--
	}
	if !r.splitInline(b[:i]) {
		return 0, protoErr(msgUnbalanced)
	}
	if len(r.spans) == 0 {
		return skipped, nil
	}
	return parsed, nil
}

// splitInline splits line into arguments the way Redis's sdssplitargs does,
// unquoting in place (an argument never grows), and appends their spans.
// It reports false for unbalanced quotes.
func (r *Reader) splitInline(line []byte) bool {
	n := len(line)
	at := func(i int) byte { // the C string's bytes, NUL past the end
		if i < n {
			return line[i]
		}
		return 0
	}
	i := 0
	for {
		for i < n && isSpace(line[i]) {
			i++
		}
		if i == n {
			return true
		}
		tok, w := i, i
		inq, insq := false, false
	token:
		for {
			c := at(i)
			switch {
			case inq:
				switch {
				case c == '\\' && at(i+1) == 'x' && isHex(at(i+2)) && isHex(at(i+3)):
					line[w] = unhex(at(i+2))<<4 | unhex(at(i+3))
					w++
					i += 4
				case c == '\\' && at(i+1) != 0:
					line[w] = unescape(at(i + 1))
					w++
					i += 2
				case c == '"':
					if next := at(i + 1); next != 0 && !isSpace(next) {
						return false
					}
					i++
					break token
				case c == 0 && i >= n:
					return false
				default:
					line[w] = c
					w++
					i++
				}
			case insq:
				switch {
				case c == '\\' && at(i+1) == '\'':
					line[w] = '\''
					w++
					i += 2
				case c == '\'':
					if next := at(i + 1); next != 0 && !isSpace(next) {
						return false
					}
					i++
					break token
				case c == 0 && i >= n:
					return false
				default:
					line[w] = c
					w++
					i++
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					if i < n {
						i++
					}
					break token
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					line[w] = c
					w++
				}
				i++
			}
		}
		r.spans = append(r.spans, span{tok, w - tok})
	}
}

// SplitArgs splits line into arguments the way Redis's sdssplitargs does,
// as an inline command is split (quotes, escapes, blanks), unquoting in
// place: line's bytes are overwritten and the arguments alias them. It
// reports false for unbalanced quotes. (Redis's ACL selectors "(…)" are
// split this way too.)
func SplitArgs(line []byte) ([][]byte, bool) {
	var r Reader
	if !r.splitInline(line) {
		return nil, false
	}
	args := make([][]byte, len(r.spans))
	for i, s := range r.spans {
		args[i] = line[s.off : s.off+s.n : s.off+s.n]
	}
	return args, true
}

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// unescape maps the byte after a backslash inside double quotes.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// parseInt parses a decimal integer as strictly as Redis's string2ll: an
// optional '-', no '+', no leading zeros, no spaces, at most 20 bytes, no
// overflow.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		d := uint64(c - '0')
		if v > math.MaxUint64-d {
			return 0, false
		}
		v += d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }
