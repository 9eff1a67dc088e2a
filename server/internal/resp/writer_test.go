package resp

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriter(t *testing.T) {
	tests := []struct {
		name  string
		write func(w *Writer)
		resp2 string
		resp3 string
	}{
		{"status", func(w *Writer) { w.Status("OK") }, "+OK\r\n", "+OK\r\n"},
		{"status with newlines", func(w *Writer) { w.Status("a\r\nb") }, "+a  b\r\n", "+a  b\r\n"},
		{"ok", func(w *Writer) { w.OK() }, "+OK\r\n", "+OK\r\n"},
		{"error", func(w *Writer) { w.Error("ERR syntax error") }, "-ERR syntax error\r\n", "-ERR syntax error\r\n"},
		{"error with newlines", func(w *Writer) { w.Error("ERR a\nb\rc") }, "-ERR a b c\r\n", "-ERR a b c\r\n"},
		{"int zero", func(w *Writer) { w.Int(0) }, ":0\r\n", ":0\r\n"},
		{"int", func(w *Writer) { w.Int(1800) }, ":1800\r\n", ":1800\r\n"},
		{"int negative", func(w *Writer) { w.Int(-2) }, ":-2\r\n", ":-2\r\n"},
		{"int min", func(w *Writer) { w.Int(math.MinInt64) }, ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"},
		{"bulk", func(w *Writer) { w.Bulk([]byte("hello")) }, "$5\r\nhello\r\n", "$5\r\nhello\r\n"},
		{"bulk binary", func(w *Writer) { w.Bulk([]byte("a\r\n\x00")) }, "$4\r\na\r\n\x00\r\n", "$4\r\na\r\n\x00\r\n"},
		{"bulk empty", func(w *Writer) { w.Bulk(nil) }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"bulk string", func(w *Writer) { w.BulkString("0123456789ab") }, "$12\r\n0123456789ab\r\n", "$12\r\n0123456789ab\r\n"},
		{"null", func(w *Writer) { w.Null() }, "$-1\r\n", "_\r\n"},
		{"null array", func(w *Writer) { w.NullArray() }, "*-1\r\n", "_\r\n"},
		{"array", func(w *Writer) { w.Array(2); w.BulkString("a"); w.Int(1) }, "*2\r\n$1\r\na\r\n:1\r\n", "*2\r\n$1\r\na\r\n:1\r\n"},
		{"array empty", func(w *Writer) { w.Array(0) }, "*0\r\n", "*0\r\n"},
		{"array big", func(w *Writer) { w.Array(1234) }, "*1234\r\n", "*1234\r\n"},
		{"map", func(w *Writer) { w.Map(1); w.BulkString("k"); w.BulkString("v") },
			"*2\r\n$1\r\nk\r\n$1\r\nv\r\n", "%1\r\n$1\r\nk\r\n$1\r\nv\r\n"},
		{"map big", func(w *Writer) { w.Map(12) }, "*24\r\n", "%12\r\n"},
		{"map empty", func(w *Writer) { w.Map(0) }, "*0\r\n", "%0\r\n"},
		{"set", func(w *Writer) { w.Set(3) }, "*3\r\n", "~3\r\n"},
		{"push", func(w *Writer) { w.Push(3); w.BulkString("message") }, "*3\r\n$7\r\nmessage\r\n", ">3\r\n$7\r\nmessage\r\n"},
		{"double", func(w *Writer) { w.Double(3.14) }, "$18\r\n3.1400000000000001\r\n", ",3.1400000000000001\r\n"},
		{"double integer", func(w *Writer) { w.Double(10) }, "$2\r\n10\r\n", ",10\r\n"},
		{"double inf", func(w *Writer) { w.Double(math.Inf(1)) }, "$3\r\ninf\r\n", ",inf\r\n"},
		{"double -inf", func(w *Writer) { w.Double(math.Inf(-1)) }, "$4\r\n-inf\r\n", ",-inf\r\n"},
		{"bool true", func(w *Writer) { w.Bool(true) }, ":1\r\n", "#t\r\n"},
		{"bool false", func(w *Writer) { w.Bool(false) }, ":0\r\n", "#f\r\n"},
		{"verbatim", func(w *Writer) { w.Verbatim("txt", []byte("# Server\r\n")) },
			"$10\r\n# Server\r\n\r\n", "=14\r\ntxt:# Server\r\n\r\n"},
		{"verbatim markdown", func(w *Writer) { w.Verbatim("mkd", []byte("*x*")) }, "$3\r\n*x*\r\n", "=7\r\nmkd:*x*\r\n"},
		{"verbatim bad format", func(w *Writer) { w.Verbatim("text", []byte("x")) }, "$1\r\nx\r\n", "=5\r\ntxt:x\r\n"},
		{"verbatim empty", func(w *Writer) { w.Verbatim("txt", nil) }, "$0\r\n\r\n", "=4\r\ntxt:\r\n"},
		{"big number", func(w *Writer) { w.BigNumber("123456789012345678901234567890") },
			"$30\r\n123456789012345678901234567890\r\n", "(123456789012345678901234567890\r\n"},
		{"big number negative", func(w *Writer) { w.BigNumber("-7") }, "$2\r\n-7\r\n", "(-7\r\n"},
		{"big number empty", func(w *Writer) { w.BigNumber("") }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"big number sign only", func(w *Writer) { w.BigNumber("-") }, "$1\r\n-\r\n", "$1\r\n-\r\n"},
		{"big number not digits", func(w *Writer) { w.BigNumber("12.5") }, "$4\r\n12.5\r\n", "$4\r\n12.5\r\n"},
		{"raw", func(w *Writer) { w.Raw([]byte("+PONG\r\n")) }, "+PONG\r\n", "+PONG\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Writer
			require.Equal(t, 2, w.Proto())
			tt.write(&w)
			require.Equal(t, tt.resp2, string(w.Bytes()), "RESP2")
			require.Equal(t, len(tt.resp2), w.Len())

			w.Reset()
			w.SetProto(3)
			require.Equal(t, 3, w.Proto())
			tt.write(&w)
			require.Equal(t, tt.resp3, string(w.Bytes()), "RESP3")

			w.Reset()
			w.SetProto(2)
			tt.write(&w)
			require.Equal(t, tt.resp2, string(w.Bytes()), "RESP2 again")
		})
	}
}

// C's "%.17g" of each value, as printed by glibc.
func TestAppendDoubleMatchesC(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{"0", 0, "0"},
		{"-0", math.Copysign(0, -1), "-0"},
		{"1", 1, "1"},
		{"-1", -1, "-1"},
		{"3.14", 3.14, "3.1400000000000001"},
		{"0.1", 0.1, "0.10000000000000001"},
		{"0.5", 0.5, "0.5"},
		{"1.5", 1.5, "1.5"},
		{"2.5", 2.5, "2.5"},
		{"100", 100, "100"},
		{"1e15", 1e15, "1000000000000000"},
		{"1e16", 1e16, "10000000000000000"},
		{"1e17", 1e17, "1e+17"},
		{"123456789012345678", 123456789012345678, "1.2345678901234568e+17"},
		{"2^53+1", 9007199254740993, "9007199254740992"},
		{"1e300", 1e300, "1.0000000000000001e+300"},
		{"-1e300", -1e300, "-1.0000000000000001e+300"},
		{"1e-7", 1e-7, "9.9999999999999995e-08"},
		{"1e-4", 1e-4, "0.0001"},
		{"1e-5", 1e-5, "1.0000000000000001e-05"},
		{"0.0001234", 0.0001234, "0.00012339999999999999"},
		{"max", math.MaxFloat64, "1.7976931348623157e+308"},
		{"smallest denormal", 5e-324, "4.9406564584124654e-324"},
		{"smallest normal", 2.2250738585072014e-308, "2.2250738585072014e-308"},
		{"tie rounds to even", 1.00000762939453125, "1.0000076293945312"},
		{"12345.678", 12345.678, "12345.678"},
		{"-2.5e-10", -2.5e-10, "-2.5000000000000002e-10"},
		{"100/3", 100.0 / 3, "33.333333333333336"},
		{"inf", math.Inf(1), "inf"},
		{"-inf", math.Inf(-1), "-inf"},
		{"nan", math.NaN(), "nan"},
		{"-nan", math.Copysign(math.NaN(), -1), "-nan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, string(AppendDouble(nil, tt.in)))
			require.Equal(t, "x"+tt.want, string(AppendDouble([]byte("x"), tt.in)), "appends")
		})
	}
}

func TestWriterTruncateReset(t *testing.T) {
	var w Writer
	w.Status("OK")
	mark := w.Len()
	w.Array(3)
	w.BulkString("partial")
	w.Truncate(mark)
	w.Error("ERR internal error")
	require.Equal(t, "+OK\r\n-ERR internal error\r\n", string(w.Bytes()))

	// A small buffer is kept.
	w.Reset()
	require.Zero(t, w.Len())
	w.Bulk(make([]byte, 1000))
	c := cap(w.Bytes())
	w.Reset()
	w.OK()
	assert.Equal(t, c, cap(w.Bytes()))

	// A huge one is kept while it is used...
	w.Reset()
	w.Bulk(make([]byte, 1<<20))
	w.Reset()
	w.Bulk(make([]byte, 1<<20))
	big := cap(w.Bytes())
	w.Reset()
	w.OK()
	assert.Equal(t, big, cap(w.Bytes()))
	// ... and dropped once replies are small again.
	w.Reset()
	w.OK()
	assert.LessOrEqual(t, cap(w.Bytes()), keepSize)
}

func TestWriterNoAllocs(t *testing.T) {
	var w Writer
	val := []byte(strings.Repeat("v", 700))
	reply := func() {
		w.Reset()
		w.Bulk(val)
		w.Int(1)
		w.OK()
		w.Null()
		w.Double(3.14)
		w.Map(1)
		w.BulkString("k")
		w.Bool(true)
	}
	for _, proto := range []int{2, 3} {
		w.SetProto(proto)
		reply()
		require.Zero(t, testing.AllocsPerRun(1000, reply), "RESP%d", proto)
	}
}

func BenchmarkWriter(b *testing.B) {
	val := []byte(strings.Repeat("v", 700))
	b.Run("GET700", func(b *testing.B) {
		var w Writer
		b.ReportAllocs()
		for b.Loop() {
			w.Reset()
			w.Bulk(val)
		}
	})
	b.Run("pipeline=100", func(b *testing.B) {
		var w Writer
		b.ReportAllocs()
		for b.Loop() {
			w.Reset()
			for range 100 {
				w.Bulk(val)
				w.OK()
				w.Int(1800)
			}
		}
	})
	b.Run("Double", func(b *testing.B) {
		var w Writer
		w.SetProto(3)
		b.ReportAllocs()
		for b.Loop() {
			w.Reset()
			w.Double(3.14)
		}
	})
}
