package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkReader returns its chunks one per Read (splitting one only if p is
// too small), then io.EOF; it counts the Read calls.
type chunkReader struct {
	chunks [][]byte
	reads  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.reads++
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func chunks(ss ...string) *chunkReader {
	c := &chunkReader{}
	for _, s := range ss {
		c.chunks = append(c.chunks, []byte(s))
	}
	return c
}

// outcome renders one ReadCommand result: the quoted arguments, or the error.
func outcome(args [][]byte, err error) string {
	var pe *ProtocolError
	switch {
	case errors.As(err, &pe):
		return "ERR " + pe.Msg
	case err != nil:
		return "error: " + err.Error()
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
}

// readAll reads commands from rd until an error and renders them all.
func readAll(rd io.Reader, lim Limits, auth bool) []string {
	r := NewReader(rd, lim)
	r.SetAuthRequired(auth)
	var out []string
	for {
		args, err := r.ReadCommand()
		out = append(out, outcome(args, err))
		if err != nil {
			return out
		}
	}
}

const eof = "error: EOF"

type protocolCase struct {
	name string
	in   string
	lim  Limits
	auth bool
	want []string
}

// protocolCases are Redis's own protocol tests (tests/unit/protocol.tcl)
// and more; TestReaderMatchesRedis replays those with default limits
// against a real redis-server.
var protocolCases = []protocolCase{
	{"empty query", "\r\nPING\r\n", Limits{}, false, []string{`"PING"`, eof}},
	{"negative multibulk length", "*-10\r\nPING\r\n", Limits{}, false, []string{`"PING"`, eof}},
	{"zero multibulk length", "*0\r\n*1\r\n$4\r\nPING\r\n", Limits{}, false, []string{`"PING"`, eof}},
	{"out of range multibulk length", "*3000000000\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"multibulk length INT_MAX is accepted", "*2147483647\r\n$1\r\na\r\n", Limits{}, false, []string{eof}},
	{"multibulk length INT_MAX+1", "*2147483648\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"non-number multibulk length", "*abc\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"multibulk length with plus sign", "*+1\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"multibulk length with leading zero", "*01\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"multibulk length minus zero", "*-0\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"empty multibulk length", "*\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"wrong multibulk payload header", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", Limits{}, false,
		[]string{"ERR Protocol error: expected '$', got 'f'"}},
	{"negative multibulk payload length", "*3\r\n$3\r\nSET\r\n$-10\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"out of range multibulk payload length", "*3\r\n$3\r\nSET\r\n$2000000000\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"non-number multibulk payload length", "*3\r\n$3\r\nSET\r\n$blabla\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"multibulk not followed by bulk", "*1\r\nfoo\r\n", Limits{}, false,
		[]string{"ERR Protocol error: expected '$', got 'f'"}},
	{"empty bulk header line", "*1\r\n\r\n", Limits{}, false,
		[]string{"ERR Protocol error: expected '$', got '\r'"}},
	{"unbalanced quotes", "set \"\"\"test-key\"\"\" test-value\r\nping\r\n", Limits{}, false,
		[]string{"ERR Protocol error: unbalanced quotes in request"}},
	{"redcon crash bytes", "*1\r\n$9223372036854775807\r\nabc\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"bulk length overflowing int64", "*1\r\n$99999999999999999999\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"bulk length at proto-max-bulk-len", "*1\r\n$536870912\r\nab", Limits{}, false, []string{eof}},
	{"bulk length over proto-max-bulk-len", "*1\r\n$536870913\r\n", Limits{}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"bulk length over a small MaxBulkLen", "*1\r\n$11\r\n", Limits{MaxBulkLen: 10}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
	{"empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", Limits{}, false, []string{`"ECHO" ""`, eof}},
	{"binary bulk", "*2\r\n$4\r\nECHO\r\n$4\r\n\x00\r\n\xff\r\n", Limits{}, false,
		[]string{`"ECHO" "\x00\r\n\xff"`, eof}},
	{"bulk trailer is skipped unchecked, as by Redis", "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", Limits{}, false,
		[]string{`"PING"`, `"PING"`, eof}},
	{"header LF is skipped unchecked, as by Redis", "*1\rx$4\rxPING\r\n", Limits{}, false, []string{`"PING"`, eof}},
	{"pipeline of both kinds", "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset a b\n", Limits{}, false,
		[]string{`"PING"`, `"GET" "k"`, `"set" "a" "b"`, eof}},
	{"incomplete command at EOF", "*2\r\n$3\r\nGET\r\n", Limits{}, false, []string{eof}},
	{"inline line within MaxInlineLen", "012345678\r\n", Limits{MaxInlineLen: 10}, false,
		[]string{`"012345678"`, eof}},
	{"inline line over MaxInlineLen", "0123456789\r\n", Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big inline request"}},
	{"inline line without end", strings.Repeat("a", 11), Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big inline request"}},
	{"count line at MaxInlineLen", "*000000001\r\n", Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"count line over MaxInlineLen", "*0000000001\r\n", Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big mbulk count string"}},
	{"bulk line over MaxInlineLen", "*1\r\n$0000000001\r\n", Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big bulk count string"}},
	{"NUL hides the end of an inline line", "GET\x00\r\n" + strings.Repeat("x", 10), Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big inline request"}},
	{"NUL hides the end of a count line", "*1\x00\r\n" + strings.Repeat("x", 10), Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big mbulk count string"}},
	{"NUL hides the end of a bulk line", "*1\r\n\x00\r\n" + strings.Repeat("x", 10), Limits{MaxInlineLen: 10}, false,
		[]string{"ERR Protocol error: too big bulk count string"}},
	{"NUL line waits like Redis", "GET\x00\r\n", Limits{}, false, []string{eof}},

	{"unauthenticated: 10 args", "*10\r\n" + strings.Repeat("$1\r\na\r\n", 10), Limits{}, true,
		[]string{strings.TrimSpace(strings.Repeat(`"a" `, 10)), eof}},
	{"unauthenticated: 11 args", "*11\r\n", Limits{}, true,
		[]string{"ERR Protocol error: unauthenticated multibulk length"}},
	{"unauthenticated: bulk of 16384", "*1\r\n$16384\r\n", Limits{}, true, []string{eof}},
	{"unauthenticated: bulk of 16385", "*1\r\n$16385\r\n", Limits{}, true,
		[]string{"ERR Protocol error: unauthenticated bulk length"}},
	{"unauthenticated: custom limits", "*2\r\n$2\r\nab\r\n$3\r\n", Limits{UnauthMaxArgs: 2, UnauthMaxBulk: 2}, true,
		[]string{"ERR Protocol error: unauthenticated bulk length"}},
	{"unauthenticated: invalid beats unauth", "*3000000000\r\n", Limits{}, true,
		[]string{"ERR Protocol error: invalid multibulk length"}},
	{"unauthenticated: empty count allowed", "*-1\r\nPING\r\n", Limits{}, true, []string{`"PING"`, eof}},
	{"unauthenticated: inline is not limited", strings.Repeat("a ", 20) + "\r\n", Limits{}, true,
		[]string{strings.TrimSpace(strings.Repeat(`"a" `, 20)), eof}},

	{"query buffer: command at the limit", "*1\r\n$6\r\n123456\r\n", Limits{MaxQueryBuf: 16}, false,
		[]string{`"123456"`, eof}},
	{"query buffer: complete command over the limit", "*1\r\n$7\r\n1234567\r\n", Limits{MaxQueryBuf: 16}, false,
		[]string{"error: " + ErrQueryBufferLimit.Error()}},
	{"query buffer: partial command over the limit", "*1\r\n$100\r\n" + strings.Repeat("x", 20), Limits{MaxQueryBuf: 16}, false,
		[]string{"error: " + ErrQueryBufferLimit.Error()}},
	{"query buffer: partial command at the limit", "*1\r\n$100\r\n" + strings.Repeat("x", 6), Limits{MaxQueryBuf: 16}, false,
		[]string{eof}},
	{"query buffer: per command", strings.Repeat("*1\r\n$6\r\n123456\r\n", 5), Limits{MaxQueryBuf: 16}, false,
		[]string{`"123456"`, `"123456"`, `"123456"`, `"123456"`, `"123456"`, eof}},
	{"query buffer: protocol error inside the limit wins", "*1\r\n$x\r\n" + strings.Repeat("y", 100), Limits{MaxQueryBuf: 16}, false,
		[]string{"ERR Protocol error: invalid bulk length"}},
}

func TestReaderProtocol(t *testing.T) {
	for _, tt := range protocolCases {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(strings.NewReader(tt.in), tt.lim, tt.auth)
			require.Equal(t, tt.want, got)
			// The same bytes one at a time give the same result.
			got = readAll(iotest.OneByteReader(strings.NewReader(tt.in)), tt.lim, tt.auth)
			require.Equal(t, tt.want, got, "one byte at a time")
		})
	}
}

func TestReaderInlineQuoting(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string // nil: unbalanced quotes; empty: skipped
	}{
		{"words", "set a b", []string{"set", "a", "b"}},
		{"extra blanks", "  set \t a   b  ", []string{"set", "a", "b"}},
		{"LF only", "ping", []string{"ping"}},
		{"CR inside separates", "a\rb", []string{"a", "b"}},
		{"VT separates only between tokens", "\va\vb", []string{"a\vb"}},
		{"blank line", "   ", []string{}},
		{"empty line", "", []string{}},
		{"double quotes", `set "a b" c`, []string{"set", "a b", "c"}},
		{"empty double quotes", `a ""`, []string{"a", ""}},
		{"double quote escapes", `"\n\r\t\b\a\\\"\q"`, []string{"\n\r\t\b\a\\\"q"}},
		{"hex escapes", `"\x41\x4a\x00\xfF"`, []string{"AJ\x00\xff"}},
		{"short hex escape", `"\x4"`, []string{"x4"}},
		{"bad hex escape", `"\xZZ"`, []string{"xZZ"}},
		{"single quotes", `'a "b" \n'`, []string{`a "b" \n`}},
		{"single quote escape", `'it\'s'`, []string{"it's"}},
		{"quote inside a token", `ab"c d"`, []string{"abc d"}},
		{"quotes then tab", "\"a\"\t'b'", []string{"a", "b"}},
		{"quote then VT", "\"a\"\v", []string{"a"}},
		{"backslash outside quotes", `a\nb`, []string{`a\nb`}},
		{"unterminated double", `set "abc`, nil},
		{"unterminated single", `set 'abc`, nil},
		{"escaped closing quote", `"a\"`, nil},
		{"trailing backslash", `"a\`, nil},
		{"text after double quote", `"abc"def`, nil},
		{"text after single quote", `'abc'def`, nil},
		{"redis test case", `set """test-key""" test-value`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, eol := range []string{"\r\n", "\n"} {
				r := NewReader(strings.NewReader(tt.line+eol+"END\r\n"), Limits{})
				args, err := r.ReadCommand()
				if tt.want == nil {
					var pe *ProtocolError
					require.ErrorAs(t, err, &pe)
					require.Equal(t, "Protocol error: unbalanced quotes in request", pe.Msg)
					continue
				}
				require.NoError(t, err)
				if len(tt.want) == 0 {
					require.Equal(t, [][]byte{[]byte("END")}, args)
					continue
				}
				want := make([][]byte, len(tt.want))
				for i, s := range tt.want {
					want[i] = []byte(s)
				}
				require.Equal(t, want, args)
				args, err = r.ReadCommand()
				require.NoError(t, err)
				require.Equal(t, [][]byte{[]byte("END")}, args)
			}
		})
	}
}

// Every way of splitting the input in two reads, and one byte per read,
// gives what a single read gives.
func TestReaderSplitAnywhere(t *testing.T) {
	inputs := map[string]string{
		"multibulk pipeline": "*3\r\n$3\r\nSET\r\n$5\r\nsess1\r\n$10\r\n0123456789\r\n*2\r\n$3\r\nGET\r\n$5\r\nsess1\r\n",
		"inline pipeline":    "set \"a b\" 'c'\r\n\r\nGET x\n*-1\r\nPING\r\n",
		"protocol error":     "*2\r\n$3\r\nGET\r\n$-1\r\n",
		"empty command":      "*0\r\n*1\r\n$0\r\n\r\n",
		"unbalanced":         "PING\r\nset \"a\r\n",
		"too big count line": "*1\r\n$4\r\nPING\r\n*" + strings.Repeat("1", 20),
		"query buffer":       "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$30\r\n" + strings.Repeat("x", 32),
	}
	lim := Limits{MaxInlineLen: 16, MaxQueryBuf: 40}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want := readAll(strings.NewReader(in), lim, false)
			require.Equal(t, want, readAll(iotest.OneByteReader(strings.NewReader(in)), lim, false), "one byte per read")
			require.Equal(t, want, readAll(iotest.HalfReader(strings.NewReader(in)), lim, false), "half per read")
			for k := 1; k < len(in); k++ {
				require.Equal(t, want, readAll(chunks(in[:k], in[k:]), lim, false), "split at %d", k)
			}
		})
	}
}

// endless repeats a prefix then a pattern forever, counting the bytes read.
type endless struct {
	prefix  []byte
	pattern []byte
	off     int
	n       int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	if len(e.prefix) > 0 {
		n = copy(p, e.prefix)
		e.prefix = e.prefix[n:]
	}
	for n < len(p) {
		c := copy(p[n:], e.pattern[e.off:])
		n += c
		e.off = (e.off + c) % len(e.pattern)
	}
	e.n += int64(n)
	return n, nil
}

// Redis's "protocol desync regression test" and variants: a request whose
// line never ends fails after a bounded number of bytes.
func TestReaderDesync(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		pattern string
		want    string
	}{
		{"inline, redis test", "\x00", "payload", "Protocol error: too big inline request"},
		{"multibulk, redis test", "*\x00", "payload", "Protocol error: too big mbulk count string"},
		{"bulk, redis test", "$\x00", "payload", "Protocol error: too big inline request"},
		{"inline NULs", "\x00", "\x00", "Protocol error: too big inline request"},
		{"multibulk NULs", "*", "\x00", "Protocol error: too big mbulk count string"},
		{"bulk header NULs", "*1\r\n$", "\x00", "Protocol error: too big bulk count string"},
		{"bulk count digits", "*1\r\n$", "1", "Protocol error: too big bulk count string"},
		{"inline without newline", "GET ", "a", "Protocol error: too big inline request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &endless{prefix: []byte(tt.prefix), pattern: []byte(tt.pattern)}
			r := NewReader(src, Limits{})
			_, err := r.ReadCommand()
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.want, pe.Msg)
			assert.LessOrEqual(t, src.n, int64(DefaultMaxInlineLen+2*initSize), "bytes read")
			assert.LessOrEqual(t, r.Cap(), 2*DefaultMaxInlineLen, "buffer")
			// The error is final.
			_, err2 := r.ReadCommand()
			require.Equal(t, err, err2)
		})
	}
}

// A declared length costs nothing until its bytes arrive.
func TestReaderHugeDeclaredLengths(t *testing.T) {
	tests := []struct{ name, in string }{
		{"bulk", "*1\r\n$536870912\r\n0123456789"},
		{"count", "*2147483647\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"both", "*2147483647\r\n$536870912\r\n0123456789"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := NewReader(strings.NewReader(tt.in), Limits{})
			_, err := r.ReadCommand()
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, io.EOF)
			assert.Equal(t, initSize, r.Cap())
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated")
		})
	}
}

// The buffer grows with the bytes that arrive, to about the command's size.
func TestReaderBigBulkGrowth(t *testing.T) {
	const size = 3 << 20
	val := bytes.Repeat([]byte("v"), size)
	in := append([]byte(fmt.Sprintf("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", size)), val...)
	in = append(in, "\r\n$2\r\nEX\r\n$4\r\n1800\r\n"...)
	in = append(in, "*1\r\n$4\r\nPING\r\n"...)
	// Arrive in 64 KiB pieces, as from a socket.
	var parts []string
	for len(in) > 0 {
		n := min(len(in), 64<<10)
		parts = append(parts, string(in[:n]))
		in = in[n:]
	}
	parts = append(parts, "*1\r\n$4\r\nPING\r\n")
	r := NewReader(chunks(parts...), Limits{})
	args, err := r.ReadCommand()
	require.NoError(t, err)
	require.Len(t, args, 5)
	require.Equal(t, val, args[2])
	require.Equal(t, "1800", string(args[4]))
	assert.LessOrEqual(t, r.Cap(), size+64<<10, "grown to about the command's size")

	// The rest of the pipeline, and the next one: the buffer is kept in
	// case big commands go on.
	for range 2 {
		args, err = r.ReadCommand()
		require.NoError(t, err)
		require.Equal(t, "PING", string(args[0]))
		assert.Greater(t, r.Cap(), size)
	}
	// Commands are small again: the buffer is given back.
	_, err = r.ReadCommand()
	require.ErrorIs(t, err, io.EOF)
	assert.Equal(t, initSize, r.Cap())
}

// A long-lived connection with many pipelines keeps its small buffer.
func TestReaderSteadyBuffer(t *testing.T) {
	cmd := "*3\r\n$3\r\nSET\r\n$41\r\nsess:0123456789abcdef0123456789abcdef0123\r\n$700\r\n" + strings.Repeat("x", 700) + "\r\n"
	var parts []string
	for i := range 200 {
		// Pipelines of varying length, cut anywhere.
		p := strings.Repeat(cmd, 1+i%37)
		parts = append(parts, p[:len(p)/3], p[len(p)/3:])
	}
	r := NewReader(chunks(parts...), Limits{})
	n := 0
	for {
		args, err := r.ReadCommand()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		require.Len(t, args, 3)
		n++
		assert.LessOrEqual(t, r.Cap(), 32<<10)
	}
	assert.Positive(t, n)
}

func TestReaderPipelining(t *testing.T) {
	src := chunks("PING\r\n*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*1\r\n$4\r\nPI", "NG\r\n")
	r := NewReader(src, Limits{})
	require.Equal(t, 0, r.Buffered())

	args, err := r.ReadCommand()
	require.NoError(t, err)
	require.Equal(t, "PING", string(args[0]))
	require.Equal(t, 1, src.reads)
	require.Positive(t, r.Buffered())

	args, err = r.ReadCommand()
	require.NoError(t, err)
	require.Equal(t, "a", string(args[1]))
	require.Equal(t, 1, src.reads, "a buffered command needs no read")
	require.Equal(t, len("*1\r\n$4\r\nPI"), r.Buffered())

	args, err = r.ReadCommand()
	require.NoError(t, err)
	require.Equal(t, "PING", string(args[0]))
	require.Equal(t, 2, src.reads)
	require.Equal(t, 0, r.Buffered())
}

func TestReaderArgsAreClipped(t *testing.T) {
	r := NewReader(strings.NewReader("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), Limits{})
	args, err := r.ReadCommand()
	require.NoError(t, err)
	_ = append(args[0], 'X', 'Y', 'Z')
	require.Equal(t, "b", string(args[1]))
	require.Equal(t, 1, cap(args[0]))
}

// AUTH lifts the unauthenticated limits for the next command of the same
// pipeline.
func TestReaderAuthMidPipeline(t *testing.T) {
	big := "*11\r\n" + strings.Repeat("$1\r\na\r\n", 11)
	r := NewReader(strings.NewReader("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"+big+big), Limits{})
	r.SetAuthRequired(true)
	args, err := r.ReadCommand()
	require.NoError(t, err)
	require.Equal(t, "AUTH", string(args[0]))
	r.SetAuthRequired(false)
	args, err = r.ReadCommand()
	require.NoError(t, err)
	require.Len(t, args, 11)
	r.SetAuthRequired(true) // e.g. AUTH as another user failed
	_, err = r.ReadCommand()
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "Protocol error: unauthenticated multibulk length", pe.Msg)
}

// errOnce fails one Read with a timeout-like error, then reads on.
type errOnce struct {
	r      io.Reader
	failAt int
	n      int
}

var errTimeout = errors.New("i/o timeout")

func (e *errOnce) Read(p []byte) (int, error) {
	e.n++
	if e.n == e.failAt {
		return 0, errTimeout
	}
	return e.r.Read(p)
}

func TestReaderReadErrors(t *testing.T) {
	t.Run("transient error loses nothing", func(t *testing.T) {
		src := &errOnce{r: iotest.OneByteReader(strings.NewReader("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")), failAt: 9}
		r := NewReader(src, Limits{})
		_, err := r.ReadCommand()
		require.ErrorIs(t, err, errTimeout)
		args, err := r.ReadCommand()
		require.NoError(t, err)
		require.Equal(t, [][]byte{[]byte("GET"), []byte("k")}, args)
	})
	t.Run("data with EOF", func(t *testing.T) {
		r := NewReader(iotest.DataErrReader(strings.NewReader("PING\r\n")), Limits{})
		args, err := r.ReadCommand()
		require.NoError(t, err)
		require.Equal(t, "PING", string(args[0]))
		_, err = r.ReadCommand()
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("no progress", func(t *testing.T) {
		r := NewReader(zeroReader{}, Limits{})
		_, err := r.ReadCommand()
		require.ErrorIs(t, err, io.ErrNoProgress)
	})
	t.Run("protocol error is final", func(t *testing.T) {
		r := NewReader(strings.NewReader("*x\r\nPING\r\n"), Limits{})
		_, err := r.ReadCommand()
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe)
		_, err2 := r.ReadCommand()
		require.Same(t, err, err2)
	})
	t.Run("query buffer limit is final", func(t *testing.T) {
		r := NewReader(strings.NewReader("*1\r\n$100\r\n"+strings.Repeat("x", 100)), Limits{MaxQueryBuf: 50})
		_, err := r.ReadCommand()
		require.ErrorIs(t, err, ErrQueryBufferLimit)
		_, err = r.ReadCommand()
		require.ErrorIs(t, err, ErrQueryBufferLimit)
	})
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1", -1, true},
		{"1234567890", 1234567890, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"-0", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1a", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseInt([]byte(tt.in))
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

// Steady state: no allocation per command.
func TestReaderNoAllocs(t *testing.T) {
	cmd := []byte("*4\r\n$5\r\nGETEX\r\n$41\r\nsess:0123456789abcdef0123456789abcdef0123\r\n$2\r\nEX\r\n$4\r\n1800\r\n")
	src := &loopReader{data: bytes.Repeat(cmd, 10)}
	r := NewReader(src, Limits{})
	_, err := r.ReadCommand()
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.ReadCommand(); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)

	inline := &loopReader{data: []byte("set \"a b\" 'c d' e\r\n")}
	r = NewReader(inline, Limits{})
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := r.ReadCommand(); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// loopReader serves data forever, one copy of data per Read.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func BenchmarkReadCommand(b *testing.B) {
	getex := "*4\r\n$5\r\nGETEX\r\n$41\r\nsess:0123456789abcdef0123456789abcdef0123\r\n$2\r\nEX\r\n$4\r\n1800\r\n"
	set := "*5\r\n$3\r\nSET\r\n$41\r\nsess:0123456789abcdef0123456789abcdef0123\r\n$700\r\n" +
		strings.Repeat("v", 700) + "\r\n$2\r\nEX\r\n$4\r\n1800\r\n"
	benches := []struct {
		name     string
		cmd      string
		pipeline int
	}{
		{"GETEX", getex, 1},
		{"GETEX/pipeline=100", getex, 100},
		{"SET700", set, 1},
		{"SET700/pipeline=20", set, 20},
		{"inline", "GETEX sess:0123456789abcdef0123456789abcdef0123 EX 1800\r\n", 1},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			src := &loopReader{data: []byte(strings.Repeat(bb.cmd, bb.pipeline))}
			r := NewReader(src, Limits{})
			b.SetBytes(int64(len(bb.cmd)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadCommand(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
