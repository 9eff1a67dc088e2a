package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// A lean RESP2 client: commands are appended to a byte slice and written in
// one call (P pipelined commands per write), replies are read from a bufio
// reader. The hot path (skip) parses a reply without allocating.

const (
	maxBulkLen   = 512 << 20
	maxArrayLen  = 1 << 24
	maxNesting   = 64
	readBufSize  = 64 << 10
	dialTimeout  = 5 * time.Second
	ctrlDeadline = 2 * time.Minute // for control commands (FLUSHALL of millions of keys)
)

// protoError is a malformed or unsupported reply.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "RESP protocol error: " + e.msg }

func protoErrf(format string, args ...any) error {
	return &protoError{msg: fmt.Sprintf(format, args...)}
}

// redisError is an error reply ("-ERR ...").
type redisError struct{ msg string }

func (e *redisError) Error() string { return e.msg }

// prefix is the error's first word (ERR, WRONGTYPE, OOM, NOAUTH, ...).
func (e *redisError) prefix() string { return errorWord(e.msg) }

func errorWord(msg string) string {
	if i := strings.IndexByte(msg, ' '); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" {
		return "(empty)"
	}
	return msg
}

// reply is a fully decoded RESP2 reply.
type reply struct {
	Kind  byte // '+', '-', ':', '$', '*' or (RESP3 verbatim string) '='
	Str   string
	Int   int64
	Elems []reply
	Null  bool // $-1 or *-1
}

type respReader struct {
	br *bufio.Reader
}

func newRespReader(r io.Reader, size int) *respReader {
	return &respReader{br: bufio.NewReaderSize(r, size)}
}

// line returns the next line without its CRLF. The slice is only valid until
// the next read.
func (r *respReader) line() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErrf("line longer than %d bytes", r.br.Size())
		}
		if errors.Is(err, io.EOF) && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return nil, protoErrf("line %q not terminated by CRLF", b)
	}
	return b[:len(b)-2], nil
}

// parseInt parses a RESP decimal integer without allocating.
func parseInt(b []byte) (int64, error) {
	s := b
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg = true
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 19 {
		return 0, protoErrf("bad integer %q", b)
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, protoErrf("bad integer %q", b)
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, protoErrf("integer %q out of range", b)
		}
		return -int64(n), nil
	}
	if n > 1<<63-1 {
		return 0, protoErrf("integer %q out of range", b)
	}
	return int64(n), nil
}

// lengthOf parses a bulk or array length: -1 (null) or 0..max.
func lengthOf(b []byte, max int64, what string) (int64, error) {
	n, err := parseInt(b)
	if err != nil {
		return 0, err
	}
	if n < -1 || n > max {
		return 0, protoErrf("%s length %d out of range", what, n)
	}
	return n, nil
}

// stringLen parses the length of a bulk ('$') or, in RESP3, verbatim ('=')
// string: "=<len>\r\n<3-byte format>:<text>\r\n", never null, and at
// least its 4-byte format prefix long.
func stringLen(kind byte, rest []byte) (int64, error) {
	if kind == '$' {
		return lengthOf(rest, maxBulkLen, "bulk")
	}
	n, err := lengthOf(rest, maxBulkLen, "verbatim string")
	if err == nil && n < 4 {
		return 0, protoErrf("verbatim string of %d bytes has no format prefix", n)
	}
	return n, err
}

// checkFormat checks a verbatim string's format prefix ("txt:"), the first
// 4 bytes of head.
func checkFormat(head []byte) error {
	if head[3] != ':' {
		return protoErrf("verbatim string %q has no format prefix", head[:4])
	}
	return nil
}

// crlf consumes the CRLF that ends a bulk string.
func (r *respReader) crlf() error {
	c1, err := r.br.ReadByte()
	if err != nil {
		return err
	}
	c2, err := r.br.ReadByte()
	if err != nil {
		return err
	}
	if c1 != '\r' || c2 != '\n' {
		return protoErrf("bulk string not terminated by CRLF")
	}
	return nil
}

func midReply(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readReply reads and decodes one reply. A clean EOF before the reply starts
// is io.EOF; EOF inside it is io.ErrUnexpectedEOF.
func (r *respReader) readReply() (reply, error) {
	return r.read(0)
}

func (r *respReader) read(depth int) (reply, error) {
	line, err := r.line()
	if err != nil {
		if depth > 0 {
			err = midReply(err)
		}
		return reply{}, err
	}
	if len(line) == 0 {
		return reply{}, protoErrf("empty line where a reply was expected")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+', '-':
		return reply{Kind: kind, Str: string(rest)}, nil
	case ':':
		n, err := parseInt(rest)
		return reply{Kind: kind, Int: n}, err
	case '$', '=':
		n, err := stringLen(kind, rest)
		if err != nil || n < 0 {
			return reply{Kind: kind, Null: n < 0}, err
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return reply{}, midReply(err)
		}
		if err := r.crlf(); err != nil {
			return reply{}, midReply(err)
		}
		if kind == '=' { // Str is the text, without the format
			if err := checkFormat(buf); err != nil {
				return reply{}, err
			}
			buf = buf[4:]
		}
		return reply{Kind: kind, Str: string(buf)}, nil
	case '*':
		n, err := lengthOf(rest, maxArrayLen, "array")
		if err != nil || n < 0 {
			return reply{Kind: kind, Null: n < 0}, err
		}
		if depth >= maxNesting {
			return reply{}, protoErrf("arrays nested deeper than %d", maxNesting)
		}
		elems := make([]reply, 0, min(n, 1024))
		for range n {
			e, err := r.read(depth + 1)
			if err != nil {
				return reply{}, err
			}
			elems = append(elems, e)
		}
		return reply{Kind: kind, Elems: elems}, nil
	default:
		return reply{}, protoErrf("unexpected reply type byte %q", kind)
	}
}

// skip reads one reply without keeping it and without allocating. It returns
// the reply's type byte, whether it was null, and for an error reply its first
// word (valid only until the next read).
func (r *respReader) skip() (kind byte, null bool, errWord []byte, err error) {
	return r.skipDepth(0)
}

func (r *respReader) skipDepth(depth int) (kind byte, null bool, errWord []byte, err error) {
	line, err := r.line()
	if err != nil {
		if depth > 0 {
			err = midReply(err)
		}
		return 0, false, nil, err
	}
	if len(line) == 0 {
		return 0, false, nil, protoErrf("empty line where a reply was expected")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+':
		return kind, false, nil, nil
	case '-':
		w := rest
		for i, c := range w {
			if c == ' ' {
				w = w[:i]
				break
			}
		}
		return kind, false, w, nil
	case ':':
		_, err := parseInt(rest)
		return kind, false, nil, err
	case '$', '=':
		n, err := stringLen(kind, rest)
		if err != nil || n < 0 {
			return kind, n < 0, nil, err
		}
		if kind == '=' {
			head, err := r.br.Peek(4)
			if err != nil {
				return kind, false, nil, midReply(err)
			}
			if err := checkFormat(head); err != nil {
				return kind, false, nil, err
			}
		}
		if _, err := r.br.Discard(int(n)); err != nil {
			return kind, false, nil, midReply(err)
		}
		if err := r.crlf(); err != nil {
			return kind, false, nil, midReply(err)
		}
		return kind, false, nil, nil
	case '*':
		n, err := lengthOf(rest, maxArrayLen, "array")
		if err != nil || n < 0 {
			return kind, n < 0, nil, err
		}
		if depth >= maxNesting {
			return kind, false, nil, protoErrf("arrays nested deeper than %d", maxNesting)
		}
		for range n {
			if _, _, _, err := r.skipDepth(depth + 1); err != nil {
				return kind, false, nil, err
			}
		}
		return kind, false, nil, nil
	default:
		return 0, false, nil, protoErrf("unexpected reply type byte %q", kind)
	}
}

// Command encoding.

func appendArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkString(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendCommand(b []byte, args ...string) []byte {
	b = appendArrayHeader(b, len(args))
	for _, a := range args {
		b = appendBulkString(b, a)
	}
	return b
}

// conn is one client connection.
type conn struct {
	nc   net.Conn
	rd   *respReader
	wbuf []byte
}

// dialConn connects and authenticates (AUTH password when one is given).
func dialConn(ctx context.Context, addr, password string) (*conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, rd: newRespReader(nc, readBufSize), wbuf: make([]byte, 0, 4096)}
	if password != "" {
		if _, err := c.do("AUTH", password); err != nil {
			c.close()
			return nil, fmt.Errorf("AUTH on %s: %w", addr, err)
		}
	}
	return c, nil
}

func (c *conn) close() { _ = c.nc.Close() }

// do sends one command and reads its reply; an error reply is returned as a
// *redisError. Control commands get a generous deadline so a dead server
// cannot hang the run.
func (c *conn) do(args ...string) (reply, error) {
	_ = c.nc.SetDeadline(time.Now().Add(ctrlDeadline))
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	c.wbuf = appendCommand(c.wbuf[:0], args...)
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return reply{}, err
	}
	rep, err := c.rd.readReply()
	if err != nil {
		return rep, err
	}
	if rep.Kind == '-' {
		return rep, &redisError{msg: rep.Str}
	}
	return rep, nil
}

// doInt runs a command whose reply is an integer (DBSIZE, ...).
func (c *conn) doInt(args ...string) (int64, error) {
	rep, err := c.do(args...)
	if err != nil {
		return 0, err
	}
	if rep.Kind != ':' {
		return 0, fmt.Errorf("%s: expected an integer reply, got %q", args[0], rep.Kind)
	}
	return rep.Int, nil
}

// doString runs a command whose reply is a simple, bulk or verbatim string
// (INFO, ...).
func (c *conn) doString(args ...string) (string, error) {
	rep, err := c.do(args...)
	if err != nil {
		return "", err
	}
	return rep.text(args[0])
}

// text is the string of a reply to cmd that must be a simple, bulk or
// (RESP3, whose "txt:" format prefix the reader removed) verbatim string; a
// nil bulk string or any other reply is an error.
func (r reply) text(cmd string) (string, error) {
	switch r.Kind {
	case '+', '$', '=':
		if r.Null {
			return "", fmt.Errorf("%s: nil reply", cmd)
		}
		return r.Str, nil
	}
	return "", fmt.Errorf("%s: expected a string reply, got %q", cmd, r.Kind)
}

// replyView is one reply read by readView; its byte slices are valid only
// until the next read.
type replyView struct {
	kind byte
	null bool
	str  []byte // '+' and '-': the line; '$': the value, or its first len(scratch) bytes
	n    int64  // ':' the integer; '$' the length
}

// readView reads one reply without allocating, copying a bulk string into
// scratch (of a longer one only the first len(scratch) bytes; n is its
// length). Arrays are skipped.
func (r *respReader) readView(scratch []byte) (v replyView, err error) {
	line, err := r.line()
	if err != nil {
		return v, err
	}
	if len(line) == 0 {
		return v, protoErrf("empty line where a reply was expected")
	}
	v.kind = line[0]
	rest := line[1:]
	switch v.kind {
	case '+', '-':
		v.str = rest
		return v, nil
	case ':':
		v.n, err = parseInt(rest)
		return v, err
	case '$':
		n, err := lengthOf(rest, maxBulkLen, "bulk")
		if err != nil || n < 0 {
			v.null = n < 0
			return v, err
		}
		v.n = n
		v.str = scratch[:min(n, int64(len(scratch)))]
		if _, err := io.ReadFull(r.br, v.str); err != nil {
			return v, midReply(err)
		}
		if _, err := r.br.Discard(int(n) - len(v.str)); err != nil {
			return v, midReply(err)
		}
		return v, midReply(r.crlf())
	case '*':
		n, err := lengthOf(rest, maxArrayLen, "array")
		if err != nil || n < 0 {
			v.null = n < 0
			return v, err
		}
		v.n = n
		for range n {
			if _, _, _, err := r.skipDepth(1); err != nil {
				return v, err
			}
		}
		return v, nil
	default:
		return v, protoErrf("unexpected reply type byte %q", v.kind)
	}
}
