package server

import (
	"sort"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/redistest"
)

// pendingKindsPrefix names the scripts TestDifferential skips: they use
// hashes, sets, sorted sets or MULTI (issue 3). Set it to "" to run them.
const pendingKindsPrefix = "kinds_"

// TestDifferential sends every script of testdata/diff to a real
// redis-server and to sessiond and compares the replies byte for byte
// (modifiers in the scripts mark the few replies that legitimately differ;
// testdata/diff/README.md lists them and why). It is skipped when
// redis-server is not installed.
//
// Scripts named kinds_*.txt need hashes, sets, sorted sets or MULTI, which
// sessiond does not have yet; they are skipped until it does. To enable
// them, empty pendingKindsPrefix.
func TestDifferential(t *testing.T) {
	scripts := redistest.LoadScripts(t, "testdata/diff")
	rd := redistest.StartRedis(t)
	ts := startServer(t, Config{})
	names := make([]string, 0, len(scripts))
	for name := range scripts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if pendingKindsPrefix != "" && strings.HasPrefix(name, pendingKindsPrefix) {
				t.Skip("needs hashes, sets, sorted sets and MULTI (issue 3)")
			}
			redistest.RunScript(t, scripts[name], rd.Addr(), ts.addr)
		})
	}
}
