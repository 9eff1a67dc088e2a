package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadReplyValid(t *testing.T) {
	cases := []struct {
		name string
		in   string
	}{
		{"simple string", "+OK\r\n"},
		{"simple string with spaces", "+hello world\r\n"},
		{"error", "-ERR unknown command 'foo', with args beginning with: \r\n"},
		{"integer", ":1000\r\n"},
		{"negative integer", ":-2\r\n"},
		{"int64 min", ":-9223372036854775808\r\n"},
		{"bulk", "$5\r\nhello\r\n"},
		{"empty bulk", "$0\r\n\r\n"},
		{"bulk with CRLF inside", "$4\r\n\r\n\r\n\r\n"},
		{"binary bulk", "$3\r\n\x00\xff\n\r\n"},
		{"null bulk", "$-1\r\n"},
		{"null array", "*-1\r\n"},
		{"empty array", "*0\r\n"},
		{"array", "*2\r\n$3\r\nfoo\r\n:1\r\n"},
		{"nested array", "*2\r\n*1\r\n*0\r\n*2\r\n+a\r\n-b\r\n"},
		{"array with null elements", "*3\r\n$-1\r\n$1\r\nx\r\n*-1\r\n"},
		{"RESP3 null", "_\r\n"},
		{"double", ",3.14\r\n"},
		{"double exponent", ",1.5e+300\r\n"},
		{"double inf", ",inf\r\n"},
		{"double -inf", ",-inf\r\n"},
		{"double nan", ",nan\r\n"},
		{"boolean true", "#t\r\n"},
		{"boolean false", "#f\r\n"},
		{"big number", "(3492890328409238509324850943850943825024385\r\n"},
		{"negative big number", "(-1\r\n"},
		{"blob error", "!21\r\nSYNTAX invalid syntax\r\n"},
		{"verbatim", "=15\r\ntxt:Some string\r\n"},
		{"map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"},
		{"empty map", "%0\r\n"},
		{"set", "~3\r\n+a\r\n+b\r\n:1\r\n"},
		{"push", ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"},
		{"map of aggregates", "%1\r\n*1\r\n:1\r\n~1\r\n%0\r\n"},
		{"attribute before scalar", "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:2039123\r\n"},
		{"attribute before array", "|1\r\n+ttl\r\n:3600\r\n*2\r\n:1\r\n:2\r\n"},
		{"attribute inside array", "*2\r\n:1\r\n|1\r\n+a\r\n+b\r\n:2\r\n"},
		{"empty attribute", "|0\r\n+OK\r\n"},
		{"attribute before push", "|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n"},
		{"streamed string", "$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n"},
		{"streamed array", "*?\r\n:1\r\n:2\r\n.\r\n"},
		{"streamed empty set", "~?\r\n.\r\n"},
		{"streamed map", "%?\r\n+a\r\n:1\r\n+b\r\n*?\r\n.\r\n.\r\n"},
		{"HELLO 3 reply", "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:4\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Followed by a second reply, which must be left unread.
			r := bufio.NewReader(strings.NewReader(tc.in + "+NEXT\r\n"))
			got, err := ReadReply(r)
			require.NoError(t, err)
			assert.Equal(t, tc.in, string(got))
			next, err := ReadReply(r)
			require.NoError(t, err)
			assert.Equal(t, "+NEXT\r\n", string(next))
			_, err = ReadReply(r)
			assert.ErrorIs(t, err, io.EOF)

			// The same one byte at a time, as a slow network delivers it.
			got, err = ReadReply(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tc.in)), 16))
			require.NoError(t, err)
			assert.Equal(t, tc.in, string(got))

			rep, err := ParseReply([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.in, string(rep.Raw))

			n, err := ReplyLen([]byte(tc.in + "+NEXT\r\n"))
			require.NoError(t, err)
			assert.Equal(t, len(tc.in), n)

			// Every proper prefix is incomplete.
			for i := 0; i < len(tc.in); i++ {
				_, err := ParseReply([]byte(tc.in[:i]))
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "prefix %q", tc.in[:i])
			}
		})
	}
}

func TestReadReplyInvalid(t *testing.T) {
	cases := []struct {
		name string
		in   string
	}{
		{"unknown type", "?foo\r\n"},
		{"inline text", "hello\r\n"},
		{"LF only", "+OK\n"},
		{"CR inside line", "+O\rK\r\n"},
		{"empty line", "\r\n"},
		{"integer with letters", ":12a\r\n"},
		{"integer empty", ":\r\n"},
		{"integer plus sign", ":+1\r\n"},
		{"integer overflow", ":9223372036854775808\r\n"},
		{"bulk bad length", "$x\r\n"},
		{"bulk negative length", "$-2\r\n"},
		{"bulk leading zero", "$05\r\nhello\r\n"},
		{"bulk length plus", "$+5\r\nhello\r\n"},
		{"bulk too long payload", "$3\r\nhello\r\n"},
		{"bulk missing CRLF", "$5\r\nhelloXY"},
		{"bulk too large", "$9999999999\r\n"},
		{"array bad length", "*x\r\n"},
		{"array negative", "*-2\r\n"},
		{"set null", "~-1\r\n"},
		{"map null", "%-1\r\n"},
		{"blob error null", "!-1\r\n"},
		{"null with data", "_x\r\n"},
		{"bad boolean", "#x\r\n"},
		{"bad double", ",abc\r\n"},
		{"hex double", ",0x1p3\r\n"},
		{"bad big number", "(12.5\r\n"},
		{"verbatim without format", "=3\r\nabc\r\n"},
		{"verbatim bad separator", "=7\r\ntxt-abc\r\n"},
		{"push inside array", "*1\r\n>1\r\n+a\r\n"},
		{"streamed set end outside", ".\r\n"},
		{"chunk outside", ";3\r\nabc\r\n"},
		{"streamed push", ">?\r\n.\r\n"},
		{"streamed attribute", "|?\r\n.\r\n"},
		{"streamed map odd", "%?\r\n+a\r\n.\r\n"},
		{"streamed string bad chunk", "$?\r\n$3\r\nabc\r\n"},
		{"bad element", "*2\r\n:1\r\n:x\r\n"},
		{"too deep", strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadReply(bufio.NewReader(strings.NewReader(tc.in)))
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe, "got %v", err)
			_, err = ParseReply([]byte(tc.in))
			require.ErrorAs(t, err, &pe, "got %v", err)
		})
	}
}

func TestReadReplyEOF(t *testing.T) {
	_, err := ReadReply(bufio.NewReader(strings.NewReader("")))
	assert.ErrorIs(t, err, io.EOF)
	for _, in := range []string{"+OK", "$5\r\nhel", "*2\r\n:1\r\n", "|1\r\n+a\r\n+b\r\n"} {
		_, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "%q", in)
	}
	sentinel := errors.New("boom")
	_, err = ReadReply(bufio.NewReader(iotest.ErrReader(sentinel)))
	assert.ErrorIs(t, err, sentinel)
}

func TestReadReplyLongLines(t *testing.T) {
	long := "+" + strings.Repeat("x", 100000) + "\r\n"
	got, err := ReadReply(bufio.NewReaderSize(strings.NewReader(long), 16))
	require.NoError(t, err)
	assert.Equal(t, long, string(got))

	tooLong := "+" + strings.Repeat("x", maxLineLen) + "\r\n"
	_, err = ReadReply(bufio.NewReader(strings.NewReader(tooLong)))
	var pe *ProtocolError
	assert.ErrorAs(t, err, &pe)

	bulk := "$200000\r\n" + strings.Repeat("y", 200000) + "\r\n"
	got, err = ReadReply(bufio.NewReader(strings.NewReader(bulk)))
	require.NoError(t, err)
	assert.Equal(t, bulk, string(got))
}

func TestParseReplyStructure(t *testing.T) {
	rep, err := ParseReply([]byte("|1\r\n+ttl\r\n:5\r\n*3\r\n$3\r\nfoo\r\n$-1\r\n%1\r\n+k\r\n=7\r\ntxt:abc\r\n"))
	require.NoError(t, err)
	assert.Equal(t, byte('*'), rep.Type)
	assert.Equal(t, "3", rep.Header)
	require.NotNil(t, rep.Attr)
	assert.Equal(t, "|1\r\n+ttl\r\n:5\r\n", string(rep.Attr.Raw))
	require.Len(t, rep.Elems, 3)
	assert.Equal(t, "foo", string(rep.Elems[0].Data))
	assert.True(t, rep.Elems[1].IsNull())
	assert.False(t, rep.Elems[0].IsNull())
	assert.Equal(t, byte('%'), rep.Elems[2].Type)
	require.Len(t, rep.Elems[2].Elems, 2)
	assert.Equal(t, "k", rep.Elems[2].Elems[0].Header)
	assert.Equal(t, "txt:abc", string(rep.Elems[2].Elems[1].Data))
	assert.True(t, rep.IsAggregate())

	rep, err = ParseReply([]byte("$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "abc", string(rep.Data))

	_, err = ParseReply([]byte("+OK\r\n+OK\r\n"))
	var pe *ProtocolError
	assert.ErrorAs(t, err, &pe)
}

func TestEncodeCommand(t *testing.T) {
	assert.Equal(t, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", string(EncodeCommand("GET", "")))
	assert.Equal(t, "*0\r\n", string(EncodeCommand()))
	got, err := ParseReply(EncodeCommand("SET", "k", "a\r\nb"))
	require.NoError(t, err)
	require.Len(t, got.Elems, 3)
	assert.Equal(t, []byte("a\r\nb"), got.Elems[2].Data)
	assert.True(t, bytes.HasPrefix(EncodeCommand("x"), []byte("*1\r\n$1\r\nx")))
}
