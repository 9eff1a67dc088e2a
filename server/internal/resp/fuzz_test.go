package resp

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
	"testing/iotest"
)

// fuzzResult is what a Reader made of some input: the commands (copied)
// and the error that ended them.
type fuzzResult struct {
	cmds [][][]byte
	err  string
}

func readFuzz(t *testing.T, rd io.Reader, lim Limits, auth bool) fuzzResult {
	t.Helper()
	r := NewReader(rd, lim)
	r.SetAuthRequired(auth)
	var res fuzzResult
	for {
		args, err := r.ReadCommand()
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, ErrQueryBufferLimit) {
				t.Fatalf("unexpected error %v", err)
			}
			res.err = err.Error()
			return res
		}
		if len(args) == 0 {
			t.Fatal("empty command")
		}
		cmd := make([][]byte, len(args))
		for i, a := range args {
			cmd[i] = bytes.Clone(a)
			if cmd[i] == nil {
				cmd[i] = []byte{}
			}
		}
		res.cmds = append(res.cmds, cmd)
		if len(res.cmds) > 1<<16 {
			t.Fatal("too many commands")
		}
	}
}

func equalResults(a, b fuzzResult) bool {
	if a.err != b.err || len(a.cmds) != len(b.cmds) {
		return false
	}
	for i := range a.cmds {
		if len(a.cmds[i]) != len(b.cmds[i]) {
			return false
		}
		for j := range a.cmds[i] {
			if !bytes.Equal(a.cmds[i][j], b.cmds[i][j]) {
				return false
			}
		}
	}
	return true
}

func encodeMultibulk(cmd [][]byte) []byte {
	b := []byte("*" + strconv.Itoa(len(cmd)) + "\r\n")
	for _, a := range cmd {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// sizedReader returns at most the next size from sizes per Read, cycling.
type sizedReader struct {
	r     io.Reader
	sizes []byte
	i     int
}

func (s *sizedReader) Read(p []byte) (int, error) {
	n := 1 + int(s.sizes[s.i%len(s.sizes)])%13
	s.i++
	return s.r.Read(p[:min(n, len(p))])
}

// FuzzReader feeds arbitrary bytes to the Reader under a few sets of
// limits, whole and in pieces. It must never panic or return an empty
// command; the result must not depend on how the input is split; and every
// command read, encoded as a multibulk, must read back the same.
func FuzzReader(f *testing.F) {
	f.Add([]byte("*1\r\n$9223372036854775807\r\nabc\r\n"))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"))
	f.Add([]byte("set \"a\\x41\" 'b\\'c'\r\n"))
	configs := []struct {
		lim  Limits
		auth bool
	}{
		{Limits{}, false},
		{Limits{MaxBulkLen: 64, MaxInlineLen: 16, MaxQueryBuf: 128, UnauthMaxArgs: 3, UnauthMaxBulk: 8}, false},
		{Limits{MaxBulkLen: 64, MaxInlineLen: 16, MaxQueryBuf: 128, UnauthMaxArgs: 3, UnauthMaxBulk: 8}, true},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range configs {
			whole := readFuzz(t, bytes.NewReader(data), c.lim, c.auth)
			one := readFuzz(t, iotest.OneByteReader(bytes.NewReader(data)), c.lim, c.auth)
			if !equalResults(whole, one) {
				t.Fatalf("limits %+v auth %v: one byte at a time\n got %q\nwant %q", c.lim, c.auth, one, whole)
			}
			if len(data) > 0 {
				sized := readFuzz(t, &sizedReader{r: bytes.NewReader(data), sizes: data}, c.lim, c.auth)
				if !equalResults(whole, sized) {
					t.Fatalf("limits %+v auth %v: in pieces\n got %q\nwant %q", c.lim, c.auth, sized, whole)
				}
			}
			for _, cmd := range whole.cmds {
				enc := encodeMultibulk(cmd)
				back := readFuzz(t, bytes.NewReader(enc), Limits{}, false)
				want := fuzzResult{cmds: [][][]byte{cmd}, err: io.EOF.Error()}
				if !equalResults(back, want) {
					t.Fatalf("round trip of %q: got %q", cmd, back)
				}
			}
		}
	})
}
