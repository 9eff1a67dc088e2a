package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func reader(s string) *respReader { return newRespReader(strings.NewReader(s), 64) }

func TestReadReply(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want reply
		err  string // substring; "" means no error
		eof  error  // exact error
	}{
		{name: "simple", in: "+OK\r\n", want: reply{Kind: '+', Str: "OK"}},
		{name: "empty simple", in: "+\r\n", want: reply{Kind: '+'}},
		{name: "error", in: "-WRONGTYPE Operation against a key\r\n", want: reply{Kind: '-', Str: "WRONGTYPE Operation against a key"}},
		{name: "integer", in: ":1000\r\n", want: reply{Kind: ':', Int: 1000}},
		{name: "negative integer", in: ":-42\r\n", want: reply{Kind: ':', Int: -42}},
		{name: "max int64", in: ":9223372036854775807\r\n", want: reply{Kind: ':', Int: 9223372036854775807}},
		{name: "min int64", in: ":-9223372036854775808\r\n", want: reply{Kind: ':', Int: -9223372036854775808}},
		{name: "bulk", in: "$5\r\nhello\r\n", want: reply{Kind: '$', Str: "hello"}},
		{name: "bulk with CRLF inside", in: "$4\r\na\r\nb\r\n", want: reply{Kind: '$', Str: "a\r\nb"}},
		{name: "empty bulk", in: "$0\r\n\r\n", want: reply{Kind: '$', Str: ""}},
		{name: "null bulk", in: "$-1\r\n", want: reply{Kind: '$', Null: true}},
		{name: "null array", in: "*-1\r\n", want: reply{Kind: '*', Null: true}},
		{name: "empty array", in: "*0\r\n", want: reply{Kind: '*', Elems: []reply{}}},
		{name: "array", in: "*3\r\n$3\r\nfoo\r\n:7\r\n$-1\r\n", want: reply{Kind: '*', Elems: []reply{
			{Kind: '$', Str: "foo"}, {Kind: ':', Int: 7}, {Kind: '$', Null: true}}}},
		{name: "nested array", in: "*2\r\n*1\r\n+a\r\n-ERR b\r\n", want: reply{Kind: '*', Elems: []reply{
			{Kind: '*', Elems: []reply{{Kind: '+', Str: "a"}}}, {Kind: '-', Str: "ERR b"}}}},
		{name: "RESP3 verbatim", in: "=15\r\ntxt:Some string\r\n", want: reply{Kind: '=', Str: "Some string"}},
		{name: "RESP3 verbatim, empty text", in: "=4\r\nmkd:\r\n", want: reply{Kind: '=', Str: ""}},
		{name: "RESP3 verbatim without format", in: "=3\r\ntxt\r\n", err: "no format prefix"},
		{name: "RESP3 verbatim, bad format", in: "=6\r\ntxtxyz\r\n", err: "no format prefix"},
		{name: "EOF in verbatim", in: "=15\r\ntxt:Some", eof: io.ErrUnexpectedEOF},
		{name: "clean EOF", in: "", eof: io.EOF},
		{name: "EOF in line", in: "+OK", eof: io.ErrUnexpectedEOF},
		{name: "EOF in bulk", in: "$5\r\nhel", eof: io.ErrUnexpectedEOF},
		{name: "EOF before bulk CRLF", in: "$5\r\nhello", eof: io.ErrUnexpectedEOF},
		{name: "EOF in array", in: "*2\r\n+a\r\n", eof: io.ErrUnexpectedEOF},
		{name: "bad type", in: "!oops\r\n", err: "unexpected reply type byte"},
		{name: "missing CR", in: "+OK\n", err: "not terminated by CRLF"},
		{name: "empty line", in: "\r\n", err: "empty line"},
		{name: "bad integer", in: ":12a\r\n", err: "bad integer"},
		{name: "empty integer", in: ":\r\n", err: "bad integer"},
		{name: "integer overflow", in: ":9223372036854775808\r\n", err: "out of range"},
		{name: "too many digits", in: ":12345678901234567890\r\n", err: "bad integer"},
		{name: "bad bulk length", in: "$x\r\n", err: "bad integer"},
		{name: "negative bulk length", in: "$-2\r\n", err: "out of range"},
		{name: "huge bulk length", in: "$999999999999\r\n", err: "out of range"},
		{name: "bulk without CRLF", in: "$2\r\nabXY", err: "not terminated by CRLF"},
		{name: "line too long", in: "+" + strings.Repeat("x", 100) + "\r\n", err: "line longer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := reader(tc.in).readReply()
			switch {
			case tc.eof != nil:
				assert.ErrorIs(t, err, tc.eof)
			case tc.err != "":
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
			default:
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			}

			// skip agrees with readReply on kind, nullness and errors.
			kind, null, errWord, serr := reader(tc.in).skip()
			switch {
			case tc.eof != nil:
				assert.ErrorIs(t, serr, tc.eof)
			case tc.err != "":
				require.Error(t, serr)
				assert.Contains(t, serr.Error(), tc.err)
			default:
				require.NoError(t, serr)
				assert.Equal(t, tc.want.Kind, kind)
				assert.Equal(t, tc.want.Null, null)
				if kind == '-' {
					assert.Equal(t, errorWord(tc.want.Str), string(errWord))
				}
			}
		})
	}
}

func TestReadReplySequence(t *testing.T) {
	// Pipelined replies are read back to back from one stream.
	r := reader("+OK\r\n$3\r\nabc\r\n:5\r\n-OOM command not allowed\r\n$-1\r\n")
	var kinds []byte
	var words []string
	for {
		kind, _, w, err := r.skip()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		kinds = append(kinds, kind)
		if w != nil {
			words = append(words, string(w))
		}
	}
	assert.Equal(t, []byte("+$:-$"), kinds)
	assert.Equal(t, []string{"OOM"}, words)
}

func TestNestingLimit(t *testing.T) {
	deep := strings.Repeat("*1\r\n", maxNesting+1) + "+x\r\n"
	_, err := newRespReader(strings.NewReader(deep), 4096).readReply()
	assert.ErrorContains(t, err, "nested deeper")
	_, _, _, err = newRespReader(strings.NewReader(deep), 4096).skip()
	assert.ErrorContains(t, err, "nested deeper")
}

func TestErrorWord(t *testing.T) {
	for in, want := range map[string]string{
		"ERR unknown command": "ERR",
		"WRONGTYPE Operation": "WRONGTYPE",
		"OOM":                 "OOM",
		"":                    "(empty)",
	} {
		assert.Equal(t, want, errorWord(in), in)
		assert.Equal(t, want, (&redisError{msg: in}).prefix(), in)
	}
}

func TestAppendCommand(t *testing.T) {
	got := appendCommand(nil, "SET", "k", "", "EX", "10")
	assert.Equal(t, "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$2\r\nEX\r\n$2\r\n10\r\n", string(got))
	assert.Equal(t, "$3\r\nabc\r\n", string(appendBulk(nil, []byte("abc"))))
	assert.Equal(t, "*12\r\n", string(appendArrayHeader(nil, 12)))
}

func TestCommandsRoundTrip(t *testing.T) {
	// Every command the workloads send is valid RESP that decodes back to its
	// arguments.
	cfg := &config{KeyPrefix: "sess:", KeySize: 37, ValueSize: 50, TTL: 1800e9, Seed: 3}
	cmd := newCmdBuilder(cfg)
	key := cmd.keys.key(42)
	val := string(cmd.pay.appendValue(nil, 42, 9))
	assert.Len(t, val, 50)
	want := map[opKind][]string{
		opGetex:     {"GETEX", key, "EX", "1800"},
		opGet:       {"GET", key},
		opSet:       {"SET", key, val, "EX", "1800"},
		opDel:       {"DEL", key},
		opUpdate:    {"SET", key, val, "KEEPTTL"},
		opGetExpire: {"GET", key, "|", "EXPIRE", key, "1800"},
	}
	for op, args := range want {
		r := reader2(cmd.append(nil, op, 42, 9))
		var got []string
		for {
			rep, err := r.readReply()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if got != nil {
				got = append(got, "|")
			}
			for _, e := range rep.Elems {
				got = append(got, e.Str)
			}
		}
		assert.Equal(t, args, got, opNames[op])
	}
	noTTL := newCmdBuilder(&config{KeyPrefix: "sess:", KeySize: 37, ValueSize: 50})
	rep, err := reader2(noTTL.append(nil, opSet, 1, 0)).readReply()
	require.NoError(t, err)
	assert.Len(t, rep.Elems, 3)
	rep, err = reader2(noTTL.append(nil, opGetex, 1, 0)).readReply()
	require.NoError(t, err)
	assert.Len(t, rep.Elems, 2)
}

func reader2(b []byte) *respReader { return newRespReader(bytes.NewReader(b), 4096) }

func TestReadStringArray(t *testing.T) {
	r := reader2([]byte("*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n$5\r\nsess:\r\n" +
		"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*1\r\n+x\r\n:1\r\n"))
	var bufs [][]byte
	bufs, err := r.readStringArray(bufs)
	require.NoError(t, err)
	require.Len(t, bufs, 3)
	assert.Equal(t, "message", string(bufs[0]))
	assert.Equal(t, "sess:", string(bufs[2]))
	bufs, err = r.readStringArray(bufs)
	require.NoError(t, err)
	assert.Equal(t, []string{"subscribe", "c", "1"}, []string{string(bufs[0]), string(bufs[1]), string(bufs[2])})
	bufs, err = r.readStringArray(bufs)
	require.NoError(t, err)
	assert.Equal(t, "x", string(bufs[0]))
	_, err = r.readStringArray(bufs)
	assert.ErrorContains(t, err, "expected an array")
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	cfg := &config{KeyPrefix: "sess:", KeySize: 37, ValueSize: 700, TTL: 1800e9, Seed: 1}
	cmd := newCmdBuilder(cfg)
	buf := make([]byte, 0, 16*1024)
	allocs := testing.AllocsPerRun(100, func() {
		b := buf[:0]
		for op := range numOpKinds {
			b = cmd.append(b, op, 123456, 77)
		}
	})
	assert.Zero(t, allocs, "encoding commands")

	stream := bytes.Repeat([]byte("+OK\r\n$3\r\nabc\r\n:1\r\n$-1\r\n-ERR x\r\n"), 200)
	br := bytes.NewReader(stream)
	r := newRespReader(br, 4096)
	allocs = testing.AllocsPerRun(100, func() {
		for range 5 {
			if _, _, _, err := r.skip(); err != nil {
				br.Reset(stream)
				r.br.Reset(br)
			}
		}
	})
	assert.Zero(t, allocs, "skipping replies")
}
