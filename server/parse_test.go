package server

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseScanCursor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"", 0, true}, {"+0", 0, true}, {"-0", 0, true}, {"17", 17, true},
		{"-1", math.MaxUint64, true}, {"18446744073709551615", math.MaxUint64, true},
		{"18446744073709551616", 0, false}, {" 1", 0, false}, {"1 ", 0, false},
		{"+", 0, false}, {"-", 0, false}, {"+-1", 0, false}, {"abc", 0, false}, {"1x", 0, false},
	} {
		got, ok := parseScanCursor([]byte(tc.in))
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		if tc.ok {
			assert.Equal(t, tc.want, got, "%q", tc.in)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-5", -5, true}, {"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true}, {"9223372036854775808", 0, false},
		{"-0", 0, false}, {"01", 0, false}, {"+1", 0, false}, {" 1", 0, false}, {"", 0, false}, {"1.0", 0, false},
	} {
		got, ok := parseInt([]byte(tc.in))
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "", false}, {"**", "", false}, {"*", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"h[ae]llo", "hello", true}, {"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true}, {"h[^e]llo", "hello", false}, {"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hallo", true}, {"h[!e]llo", "hallo", false}, {"h\\*llo", "h*llo", true},
		{"h\\*llo", "hello", false}, {"h[a-]llo", "hallo", false}, {"sess:*", "sess:abc", true},
		{"sess:*", "user:1", false}, {"a[", "a", false}, {"[abc", "b", true}, {"*a*b*c*d*e*", "aXbXcXdXe", true},
	} {
		assert.Equal(t, tc.want, globMatch([]byte(tc.pat), []byte(tc.s), false), "%q ~ %q", tc.pat, tc.s)
	}
	assert.True(t, globMatch([]byte("HELLO"), []byte("hello"), true))
}

func TestFormatLongDouble(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"0.1", "0.2", "0.3"}, {"10.5", "0.1", "10.6"}, {"1", "-1", "0"}, {"0x10", "1", "17"},
		{"5.", ".5", "5.5"}, {"1e3", "0", "1000"}, {"-3", "1.25", "-1.75"},
	} {
		a, ok := parseLongDouble([]byte(tc.a))
		assert.True(t, ok, tc.a)
		b, ok := parseLongDouble([]byte(tc.b))
		assert.True(t, ok, tc.b)
		sum := a.Add(a, b)
		assert.Equal(t, tc.want, formatLongDouble(sum), "%s + %s", tc.a, tc.b)
	}
	for _, bad := range []string{"", " 1", "1 ", "abc", "nan", "1_0", "0b1", "--1", "1e", "0x"} {
		_, ok := parseLongDouble([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
}

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100", 100, true}, {"1k", 1000, true}, {"1kb", 1024, true}, {"2MB", 2 << 20, true},
		{"1g", 1e9, true}, {"1gb", 1 << 30, true}, {"512mb", 512 << 20, true}, {" 7b ", 7, true},
		{"", 0, false}, {"-1", 0, false}, {"1tb", 0, false}, {"x", 0, false},
		{"9223372036854775807gb", 0, false},
	} {
		got, err := ParseMemory(tc.in)
		assert.Equal(t, tc.ok, err == nil, "%q", tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
	}
}
