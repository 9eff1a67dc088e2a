package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// maxMismatches stops a script that has gone off the rails: after a
	// few mismatches the two servers' states differ and every later line
	// would be reported too.
	maxMismatches = 20
	// maxScanCalls bounds one !scan iteration.
	maxScanCalls = 100000
	// VerboseEnv, when set to a non-empty value in the environment, makes
	// RunScript log every line with both replies.
	VerboseEnv = "REDISTEST_VERBOSE"
)

// RunScript plays a script (see ParseScript) against the servers at a and
// b: each line is sent to both, on one connection to each (more with
// !conn), and the replies are compared as the line's modifiers say. Every
// disagreement is reported with t.Errorf, giving the line number, the line
// and both replies quoted. Before the first line it sends FLUSHALL to both
// without comparing the replies, so that scripts start from an empty
// keyspace.
func RunScript(t *testing.T, script string, a, b string) {
	t.Helper()
	runScript(t, script, a, b, DefaultTimeout)
}

// runScript is RunScript for any testing.TB and timeout, so that its own
// tests can watch what it reports.
func runScript(t testing.TB, script string, a, b string, timeout time.Duration) {
	t.Helper()
	steps, err := ParseScript(script)
	require.NoError(t, err, "parsing the script")
	r := &runner{t: t, addrs: [2]string{a, b}, timeout: timeout, verbose: os.Getenv(VerboseEnv) != ""}
	defer r.closeAll()
	r.step(Step{Line: 0, Text: "FLUSHALL (sent by RunScript)", Args: []string{"FLUSHALL"}, Mode: Skip})
	for _, st := range steps {
		if r.mismatches >= maxMismatches {
			t.Errorf("stopping the script after %d mismatches", r.mismatches)
			return
		}
		r.step(st)
	}
}

// LoadScripts returns the content of every *.txt file of dir, by file name
// without the .txt.
func LoadScripts(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	require.NoError(tb, err)
	scripts := make(map[string]string, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(tb, err)
		scripts[strings.TrimSuffix(filepath.Base(p), ".txt")] = string(b)
	}
	return scripts
}

// outcome is what one server did in answer to a line.
type outcome struct {
	raw []byte
	err error
}

func (o outcome) String() string {
	if o.err == nil {
		return strconv.Quote(string(o.raw))
	}
	var ne net.Error
	switch {
	case IsClosed(o.err):
		return "<connection closed>"
	case errors.As(o.err, &ne) && ne.Timeout():
		return "<timed out>"
	}
	return "<" + o.err.Error() + ">"
}

// runner holds the state of one RunScript.
type runner struct {
	t          testing.TB
	addrs      [2]string
	conns      [maxConns][2]*Conn // nil until used, and after a close
	timeout    time.Duration      // for each read and write
	mismatches int
	verbose    bool
}

func (r *runner) conn(n, side int) *Conn {
	if r.conns[n][side] == nil {
		r.conns[n][side] = Dial(r.t, r.addrs[side])
		r.conns[n][side].SetTimeout(r.timeout)
	}
	return r.conns[n][side]
}

func (r *runner) drop(n, side int) {
	if c := r.conns[n][side]; c != nil {
		_ = c.Close()
		r.conns[n][side] = nil
	}
}

func (r *runner) closeAll() {
	for n := range r.conns {
		r.drop(n, 0)
		r.drop(n, 1)
	}
}

func (r *runner) mismatch(st Step, a, b string, why string) {
	r.t.Helper()
	r.mismatches++
	msg := fmt.Sprintf("line %d: %s\n\ta: %s\n\tb: %s", st.Line, st.Text, a, b)
	if why != "" {
		msg += "\n\t" + why
	}
	r.t.Error(msg)
}

// step plays one line.
func (r *runner) step(st Step) {
	r.t.Helper()
	if st.Mode == Scan {
		r.scan(st)
		return
	}
	payload := st.Payload()
	var out [2]outcome
	for side := range out {
		if len(payload) > 0 {
			out[side].err = r.conn(st.Conn, side).Write(payload)
		}
	}
	for side := range out {
		if out[side].err == nil {
			out[side].raw, out[side].err = r.conn(st.Conn, side).ReadReply()
		}
		if out[side].err != nil {
			r.drop(st.Conn, side)
		}
	}
	if r.verbose {
		r.t.Logf("line %d: %s\n\ta: %s\n\tb: %s", st.Line, st.Text, out[0], out[1])
	}
	switch {
	case out[0].err != nil || out[1].err != nil:
		if !IsClosed(out[0].err) || !IsClosed(out[1].err) {
			r.mismatch(st, out[0].String(), out[1].String(), "")
		}
		return
	default:
		if err := st.Compare(out[0].raw, out[1].raw); err != nil {
			why := err.Error()
			if why == "replies differ" {
				why = ""
			}
			r.mismatch(st, out[0].String(), out[1].String(), why)
		}
	}
	if st.Closed || st.IsQuit() {
		var after [2]string
		for side := range after {
			extra, err := r.conn(st.Conn, side).readUntilClosed()
			switch {
			case len(extra) > 0:
				after[side] = fmt.Sprintf("sent %q and did not close", extra)
			case err != nil:
				after[side] = "did not close: " + outcome{err: err}.String()
			default:
				after[side] = "closed"
			}
			r.drop(st.Conn, side)
		}
		if after[0] != "closed" || after[1] != "closed" {
			r.mismatch(st, after[0], after[1], "after the reply the server must close the connection")
		}
	}
}

// scan plays a !scan line: a full iteration on each server.
func (r *runner) scan(st Step) {
	r.t.Helper()
	var res [2]string
	for side := range res {
		res[side] = r.scanOne(st, side)
	}
	if r.verbose {
		r.t.Logf("line %d: %s\n\ta: %s\n\tb: %s", st.Line, st.Text, res[0], res[1])
	}
	if res[0] != res[1] {
		r.mismatch(st, res[0], res[1], "a full SCAN iteration returned different items")
	}
}

// scanOne iterates on one server and describes the result: the first
// reply if it is not a SCAN reply (an error), else the sorted set of items.
func (r *runner) scanOne(st Step, side int) string {
	args := slices.Clone(st.Args)
	idx := cursorIndex(args)
	unit := 1
	if cmd := strings.ToUpper(args[0]); cmd == "HSCAN" || cmd == "ZSCAN" {
		unit = 2 // field and value, member and score
	}
	seen := map[string]bool{}
	for calls := 0; ; calls++ {
		if calls == maxScanCalls {
			return fmt.Sprintf("<cursor not back to 0 after %d calls>", calls)
		}
		c := r.conn(st.Conn, side)
		var o outcome
		if o.err = c.Write(EncodeCommand(args...)); o.err == nil {
			o.raw, o.err = c.ReadReply()
		}
		if o.err != nil {
			r.drop(st.Conn, side)
			return fmt.Sprintf("call %d: %s", calls+1, o)
		}
		rep, err := ParseReply(o.raw)
		if err != nil {
			return fmt.Sprintf("call %d: %v", calls+1, err)
		}
		if calls == 0 && rep.Type == '-' {
			return o.String()
		}
		if rep.Type != '*' || len(rep.Elems) != 2 || rep.Elems[0].Type != '$' ||
			rep.Elems[1].Type != '*' || rep.Elems[1].IsNull() || len(rep.Elems[1].Elems)%unit != 0 {
			return fmt.Sprintf("call %d: not a SCAN reply: %s", calls+1, o)
		}
		items := rep.Elems[1].Elems
		for i := 0; i < len(items); i += unit {
			var key []byte
			for _, e := range items[i : i+unit] {
				key = append(key, e.Raw...)
			}
			seen[string(key)] = true
		}
		cursor := string(rep.Elems[0].Data)
		if cursor == "0" {
			break
		}
		args[idx] = cursor
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return fmt.Sprintf("%d items %q", len(keys), keys)
}
