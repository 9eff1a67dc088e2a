package redistest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitArgs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t ", nil},
		{"GET foo", []string{"GET", "foo"}},
		{"  SET   k\tv  ", []string{"SET", "k", "v"}},
		{`SET k ""`, []string{"SET", "k", ""}},
		{`SET k "a b"`, []string{"SET", "k", "a b"}},
		{`ECHO "\n\r\t\b\a"`, []string{"ECHO", "\n\r\t\b\a"}},
		{`ECHO "\x00\xff\xAb"`, []string{"ECHO", "\x00\xff\xab"}},
		{`ECHO "\xZZ"`, []string{"ECHO", "xZZ"}},
		{`ECHO "\"q\" \\ \z"`, []string{"ECHO", `"q" \ z`}},
		{`ECHO 'a "b" \n \'c\''`, []string{"ECHO", `a "b" \n 'c'`}},
		{`ECHO ''`, []string{"ECHO", ""}},
		{`ECHO a"b c"`, []string{"ECHO", "ab c"}},
		{`KEYS h\[ae]llo`, []string{"KEYS", `h\[ae]llo`}},
		{`ECHO "#not a comment"`, []string{"ECHO", "#not a comment"}},
	}
	for _, tc := range cases {
		got, err := SplitArgs(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{`ECHO "abc`, `ECHO 'abc`, `ECHO "a"b`, `ECHO 'a'b`, `ECHO "\"`} {
		_, err := SplitArgs(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseScript(t *testing.T) {
	script := "# comment\n" +
		"\n" +
		"SET k v\n" +
		"   # indented comment\n" +
		"!sort KEYS *\n" +
		"!sortpairs CONFIG GET a*\n" +
		"!type TIME\n" +
		"!skip DEBUG SLEEP 0\n" +
		"!approx 50 PTTL k\n" +
		"!conn 2 !type CLIENT ID\n" +
		"!scan SCAN 0 MATCH k* COUNT 2\n" +
		"!mask 3,7 HELLO 3\n" +
		"!scan HSCAN h 0\n" +
		"!raw !closed \"*1\\r\\n$x\\r\\n\"\n" +
		"\"!notamodifier\" x\n" +
		"QUIT\n"
	steps, err := ParseScript(script)
	require.NoError(t, err)
	require.Len(t, steps, 13)

	assert.Equal(t, Step{Line: 3, Text: "SET k v", Args: []string{"SET", "k", "v"}}, steps[0])
	assert.Equal(t, Sort, steps[1].Mode)
	assert.Equal(t, []string{"KEYS", "*"}, steps[1].Args)
	assert.Equal(t, 5, steps[1].Line)
	assert.Equal(t, SortPairs, steps[2].Mode)
	assert.Equal(t, Shape, steps[3].Mode)
	assert.Equal(t, Skip, steps[4].Mode)
	assert.Equal(t, Approx, steps[5].Mode)
	assert.Equal(t, int64(50), steps[5].Tolerance)
	assert.Equal(t, []string{"PTTL", "k"}, steps[5].Args)
	assert.Equal(t, 2, steps[6].Conn)
	assert.Equal(t, Shape, steps[6].Mode)
	assert.Equal(t, Scan, steps[7].Mode)
	assert.Equal(t, Mask, steps[8].Mode)
	assert.Equal(t, []int{3, 7}, steps[8].Mask)
	assert.Equal(t, []string{"HELLO", "3"}, steps[8].Args)
	assert.Equal(t, Scan, steps[9].Mode)
	assert.True(t, steps[10].Raw)
	assert.True(t, steps[10].Closed)
	assert.Equal(t, "*1\r\n$x\r\n", string(steps[10].Payload()))
	assert.Equal(t, []string{"!notamodifier", "x"}, steps[11].Args)
	assert.True(t, steps[12].IsQuit())
	assert.False(t, steps[0].IsQuit())
	assert.Equal(t, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", string(steps[0].Payload()))

	for _, bad := range []string{
		"!bogus GET k",
		"!sort !type KEYS *",
		"!approx KEYS *",
		"!approx -1 TTL k",
		"!conn x GET k",
		"!conn 99 GET k",
		"!sort",
		"!scan GET k",
		"!scan SCAN",
		"!scan !raw SCAN 0",
		"!mask HELLO",
		"!mask a,b HELLO",
		"!mask -1 HELLO",
		"!mask 1,,2 HELLO",
		`GET "k`,
	} {
		_, err := ParseScript("PING\n" + bad + "\n")
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "line 2", bad)
	}
}

func TestCompareReplies(t *testing.T) {
	hello := func(version, id string) string {
		return "%3\r\n$7\r\nversion\r\n$" + strconv.Itoa(len(version)) + "\r\n" + version + "\r\n" +
			"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:" + id + "\r\n"
	}
	cases := []struct {
		mode Mode
		tol  int64
		mask []int
		a, b string
		ok   bool
	}{
		{Exact, 0, nil, "+OK\r\n", "+OK\r\n", true},
		{Exact, 0, nil, "$1\r\na\r\n", "+a\r\n", false},
		{Skip, 0, nil, "+OK\r\n", "-ERR x\r\n", true},
		{Sort, 0, nil, "*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*2\r\n$1\r\nb\r\n$1\r\na\r\n", true},
		{Sort, 0, nil, "*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n", false},
		{Sort, 0, nil, "*1\r\n$1\r\na\r\n", "~1\r\n$1\r\na\r\n", false},
		{Sort, 0, nil, "~2\r\n:1\r\n:2\r\n", "~2\r\n:2\r\n:1\r\n", true},
		{Sort, 0, nil, "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", "%2\r\n+b\r\n:2\r\n+a\r\n:1\r\n", true},
		{Sort, 0, nil, "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", "%2\r\n+b\r\n:1\r\n+a\r\n:2\r\n", false},
		{Sort, 0, nil, "-ERR x\r\n", "-ERR x\r\n", true},
		{Sort, 0, nil, "*-1\r\n", "*0\r\n", false},
		{SortPairs, 0, nil, "*4\r\n+a\r\n:1\r\n+b\r\n:2\r\n", "*4\r\n+b\r\n:2\r\n+a\r\n:1\r\n", true},
		{SortPairs, 0, nil, "*4\r\n+a\r\n:1\r\n+b\r\n:2\r\n", "*4\r\n+a\r\n:2\r\n+b\r\n:1\r\n", false},
		{Shape, 0, nil, "*2\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n", "*2\r\n$10\r\n1700000001\r\n$5\r\n12345\r\n", true},
		{Shape, 0, nil, "*2\r\n$1\r\n1\r\n$1\r\n2\r\n", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n", false},
		{Shape, 0, nil, ":5\r\n", ":7\r\n", true},
		{Shape, 0, nil, ":5\r\n", "$1\r\n5\r\n", false},
		{Shape, 0, nil, "$-1\r\n", "$1\r\nk\r\n", false},
		{Shape, 0, nil, "-ERR a\r\n", "-WRONGTYPE b\r\n", true},
		{Approx, 50, nil, ":1000\r\n", ":960\r\n", true},
		{Approx, 50, nil, ":1000\r\n", ":949\r\n", false},
		{Approx, 50, nil, ":-2\r\n", ":-2\r\n", true},
		{Approx, 50, nil, ":-2\r\n", "$-1\r\n", false},
		{Approx, 1, nil, ",1.5\r\n", ",2.4\r\n", true},
		{Approx, 1, nil, "*2\r\n:10\r\n+x\r\n", "*2\r\n:11\r\n+x\r\n", true},
		{Approx, 1, nil, "*2\r\n:10\r\n+x\r\n", "*2\r\n:11\r\n+y\r\n", false},
		{Approx, 1, nil, "-ERR a\r\n", "-ERR b\r\n", false},
		{Mask, 0, []int{1, 5}, hello("7.0.15", "4"), hello("1.0", "17"), true},
		{Mask, 0, []int{1, 5}, hello("7.0.15", "4"), hello("7.0.15", "4"), true},
		{Mask, 0, []int{1}, hello("7.0.15", "4"), hello("1.0", "17"), false},
		{Mask, 0, []int{5}, hello("7.0.15", "4"), hello("1.0", "4"), false},
		{Mask, 0, []int{1, 5}, hello("7.0.15", "4"), strings.Replace(hello("7.0.15", "4"), "proto\r\n:3", "proto\r\n:2", 1), false},
		{Mask, 0, []int{1, 5}, hello("7.0.15", "4"), strings.Replace(hello("7.0.15", "4"), "%3", "*6", 1), false},
		{Mask, 0, []int{1, 5}, hello("7.0.15", "4"), strings.Replace(hello("7.0.15", "4"), ":4", "$1\r\n4", 1), false},
		{Mask, 0, []int{0}, "-ERR x\r\n", "-ERR y\r\n", false},
		{Mask, 0, []int{0}, "+OK\r\n", "+OK\r\n", true},
	}
	for _, tc := range cases {
		st := Step{Mode: tc.mode, Tolerance: tc.tol, Mask: tc.mask}
		err := st.Compare([]byte(tc.a), []byte(tc.b))
		if tc.ok {
			assert.NoError(t, err, "%v %q %q", tc.mode, tc.a, tc.b)
		} else {
			assert.Error(t, err, "%v %q %q", tc.mode, tc.a, tc.b)
		}
	}
	sortStep, shapeStep := Step{Mode: Sort}, Step{Mode: Shape}
	assert.Error(t, sortStep.Compare([]byte("+OK"), []byte("+OK\r\n")))
	assert.Error(t, shapeStep.Compare([]byte("+OK\r\n"), []byte("garbage")))
}
