package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits of the reply parser. They only guard against garbage: Redis's own
// replies are far below them.
const (
	maxLineLen = 1 << 20   // longest header or simple-string line
	maxBulkLen = 512 << 20 // Redis's proto-max-bulk-len default
	maxDepth   = 256       // deepest nesting of aggregates and attributes
)

// ProtocolError describes a reply that is not valid RESP2/RESP3.
type ProtocolError struct {
	Offset int // byte offset of the offending line from the reply's start
	Msg    string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("redistest: bad reply at byte %d: %s", e.Offset, e.Msg)
}

// Reply is a parsed reply. Its byte slices alias the parser's buffer: do
// not modify them.
type Reply struct {
	// Type is the RESP type byte: + - : $ * _ , # ! = ( % ~ >.
	Type byte
	// Raw is the complete encoding of the reply, including Attr's bytes
	// when Attr is set.
	Raw []byte
	// Header is the first line without its type byte and CRLF: the text of
	// a simple string, error, integer, double, boolean or big number, or the
	// length of a bulk or aggregate ("-1" for RESP2 nulls, "?" for
	// streamed ones).
	Header string
	// Data is the payload of a bulk string, blob error or verbatim string
	// (the chunks joined, for a streamed string).
	Data []byte
	// Elems are the elements of an aggregate; a map's and an attribute's
	// are its keys and values alternately.
	Elems []Reply
	// Attr is the attribute (type '|') that preceded the reply, if any.
	Attr *Reply
}

// IsNull reports whether the reply is a null: RESP3 _ or RESP2 $-1 / *-1.
func (r *Reply) IsNull() bool {
	return r.Type == '_' || ((r.Type == '$' || r.Type == '*') && r.Header == "-1")
}

// IsAggregate reports whether the reply has elements (array, map, set,
// push), null arrays included.
func (r *Reply) IsAggregate() bool {
	switch r.Type {
	case '*', '%', '~', '>':
		return true
	}
	return false
}

// ReadReply reads one complete reply from r and returns its exact bytes. An
// attribute (|) is returned together with the reply it precedes; a push (>)
// is a reply of its own. The reply is validated as it is read: a malformed
// one gives a *ProtocolError, and a stream that ends inside a reply
// io.ErrUnexpectedEOF (io.EOF if it ends before the first byte).
func ReadReply(r *bufio.Reader) ([]byte, error) {
	p := parser{src: r}
	n, err := p.value(0, false)
	if err != nil {
		if errors.Is(err, io.EOF) && len(p.buf) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p.buf[n.start:n.end], nil
}

// ParseReply parses b, which must hold exactly one reply. It returns
// io.ErrUnexpectedEOF when b ends early and a *ProtocolError when b is malformed
// or has bytes after the reply.
func ParseReply(b []byte) (Reply, error) {
	r, n, err := parsePrefix(b)
	if err != nil {
		return Reply{}, err
	}
	if n != len(b) {
		return Reply{}, &ProtocolError{Offset: n, Msg: fmt.Sprintf("%d bytes after the reply", len(b)-n)}
	}
	return r, nil
}

// ReplyLen returns the length of the reply b starts with,
// io.ErrUnexpectedEOF if b holds only part of one, or a *ProtocolError.
func ReplyLen(b []byte) (int, error) {
	_, n, err := parsePrefix(b)
	return n, err
}

func parsePrefix(b []byte) (Reply, int, error) {
	p := parser{src: bufio.NewReader(bytes.NewReader(b))}
	n, err := p.value(0, false)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Reply{}, 0, err
	}
	return n.reply(p.buf), n.end, nil
}

// node is a Reply whose byte slices are still offsets into parser.buf,
// which may move while it grows.
type node struct {
	typ              byte
	start, end       int // whole reply, attribute included
	hdrStart, hdrEnd int // header text
	data             []byte
	elems            []node
	attr             *node
}

func (n *node) reply(buf []byte) Reply {
	r := Reply{
		Type:   n.typ,
		Raw:    buf[n.start:n.end:n.end],
		Header: string(buf[n.hdrStart:n.hdrEnd]),
		Data:   n.data,
	}
	if n.elems != nil {
		r.Elems = make([]Reply, len(n.elems))
		for i := range n.elems {
			r.Elems[i] = n.elems[i].reply(buf)
		}
	}
	if n.attr != nil {
		a := n.attr.reply(buf)
		r.Attr = &a
	}
	return r
}

type parser struct {
	src *bufio.Reader
	buf []byte // every byte read so far
}

func (p *parser) errorf(at int, format string, args ...any) error {
	return &ProtocolError{Offset: at, Msg: fmt.Sprintf(format, args...)}
}

// line reads up to and including the next CRLF and returns the offsets of
// the line's content.
func (p *parser) line() (start, end int, err error) {
	start = len(p.buf)
	for {
		chunk, err := p.src.ReadSlice('\n')
		p.buf = append(p.buf, chunk...)
		if len(p.buf)-start > maxLineLen {
			return 0, 0, p.errorf(start, "line longer than %d bytes", maxLineLen)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(p.buf) > start {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	end = len(p.buf) - 2
	if end < start || p.buf[end] != '\r' {
		return 0, 0, p.errorf(start, "line not terminated by CRLF: %q", p.buf[start:])
	}
	if i := bytes.IndexByte(p.buf[start:end], '\r'); i >= 0 {
		return 0, 0, p.errorf(start, "CR inside a line: %q", p.buf[start:end+2])
	}
	if start == end {
		return 0, 0, p.errorf(start, "empty line")
	}
	return start, end, nil
}

// payload reads n bytes followed by CRLF and returns the n bytes.
func (p *parser) payload(at int, n int64) ([]byte, error) {
	start := len(p.buf)
	var b bytes.Buffer
	if _, err := io.CopyN(&b, p.src, n+2); err != nil {
		p.buf = append(p.buf, b.Bytes()...)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	p.buf = append(p.buf, b.Bytes()...)
	if p.buf[len(p.buf)-2] != '\r' || p.buf[len(p.buf)-1] != '\n' {
		return nil, p.errorf(at, "payload of %d bytes not followed by CRLF", n)
	}
	return p.buf[start : start+int(n) : start+int(n)], nil
}

// value reads one value. nested tells whether it is an element of an
// aggregate (where a push may not appear); depth bounds the recursion.
func (p *parser) value(depth int, nested bool) (node, error) {
	start, end, err := p.line()
	if err != nil {
		return node{}, err
	}
	return p.valueFrom(start, end, depth, nested)
}

// valueFrom parses the value whose first line is buf[start:end].
func (p *parser) valueFrom(start, end, depth int, nested bool) (node, error) {
	if depth > maxDepth {
		return node{}, p.errorf(start, "nesting deeper than %d", maxDepth)
	}
	n := node{typ: p.buf[start], start: start, hdrStart: start + 1, hdrEnd: end}
	hdr := string(p.buf[start+1 : end])
	switch n.typ {
	case '+', '-':
		// Any text; line() already rejected CR and LF.
	case ':':
		if _, err := strconv.ParseInt(hdr, 10, 64); err != nil || !plainInt(hdr) {
			return node{}, p.errorf(start, "bad integer %q", hdr)
		}
	case '_':
		if hdr != "" {
			return node{}, p.errorf(start, "null with data %q", hdr)
		}
	case ',':
		if !validDouble(hdr) {
			return node{}, p.errorf(start, "bad double %q", hdr)
		}
	case '#':
		if hdr != "t" && hdr != "f" {
			return node{}, p.errorf(start, "bad boolean %q", hdr)
		}
	case '(':
		if !validBigNumber(hdr) {
			return node{}, p.errorf(start, "bad big number %q", hdr)
		}
	case '$', '!', '=':
		if n.typ == '$' && hdr == "?" {
			data, err := p.streamedString()
			if err != nil {
				return node{}, err
			}
			n.data = data
			break
		}
		l, ok := parseLen(hdr, n.typ == '$')
		if !ok || l > maxBulkLen {
			return node{}, p.errorf(start, "bad length %q", hdr)
		}
		if l < 0 {
			break // RESP2 null bulk string
		}
		data, err := p.payload(start, l)
		if err != nil {
			return node{}, err
		}
		if n.typ == '=' && (len(data) < 4 || data[3] != ':') {
			return node{}, p.errorf(start, "verbatim string without a 3-byte format: %q", data)
		}
		n.data = data
	case '*', '%', '~', '>', '|':
		if n.typ == '>' && nested {
			return node{}, p.errorf(start, "push inside an aggregate")
		}
		streamable := n.typ == '*' || n.typ == '%' || n.typ == '~'
		per := 1
		if n.typ == '%' || n.typ == '|' {
			per = 2
		}
		var elems []node
		if hdr == "?" && streamable {
			elems = []node{}
			for {
				s, e, err := p.line()
				if err != nil {
					return node{}, err
				}
				if p.buf[s] == '.' && e == s+1 {
					break
				}
				el, err := p.valueFrom(s, e, depth+1, true)
				if err != nil {
					return node{}, err
				}
				elems = append(elems, el)
			}
			if len(elems)%per != 0 {
				return node{}, p.errorf(start, "streamed map with an odd number of elements")
			}
		} else {
			l, ok := parseLen(hdr, n.typ == '*')
			if !ok {
				return node{}, p.errorf(start, "bad length %q", hdr)
			}
			if l >= 0 {
				elems = make([]node, 0, min(l*int64(per), 1024))
				for i := int64(0); i < l*int64(per); i++ {
					el, err := p.value(depth+1, true)
					if err != nil {
						return node{}, err
					}
					elems = append(elems, el)
				}
			}
		}
		n.elems = elems
		if n.typ == '|' {
			// An attribute is not a reply: it decorates the next one.
			n.end = len(p.buf)
			v, err := p.value(depth+1, nested)
			if err != nil {
				return node{}, err
			}
			v.attr = &n
			v.start = start
			return v, nil
		}
	case ';', '.':
		return node{}, p.errorf(start, "%q outside a streamed value", n.typ)
	default:
		return node{}, p.errorf(start, "unknown type byte %q", n.typ)
	}
	n.end = len(p.buf)
	return n, nil
}

// streamedString reads the ;<len> chunks of a $? string.
func (p *parser) streamedString() ([]byte, error) {
	data := []byte{}
	for {
		s, e, err := p.line()
		if err != nil {
			return nil, err
		}
		hdr := string(p.buf[s+1 : e])
		l, ok := parseLen(hdr, false)
		if p.buf[s] != ';' || !ok || l > maxBulkLen {
			return nil, p.errorf(s, "bad streamed string chunk %q", p.buf[s:e])
		}
		if l == 0 {
			return data, nil
		}
		chunk, err := p.payload(s, l)
		if err != nil {
			return nil, err
		}
		data = append(data, chunk...)
	}
}

// parseLen parses a length: a decimal without sign or leading zeros, or
// "-1" when allowNull.
func parseLen(s string, allowNull bool) (int64, bool) {
	if s == "-1" && allowNull {
		return -1, true
	}
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// plainInt reports whether s is an optional '-' followed by digits.
func plainInt(s string) bool {
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

func validBigNumber(s string) bool { return plainInt(s) }

// validDouble accepts what RESP3 allows: inf, -inf, nan and decimal
// floating point numbers with an optional exponent.
func validDouble(s string) bool {
	switch s {
	case "inf", "-inf", "nan":
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			return false
		}
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
