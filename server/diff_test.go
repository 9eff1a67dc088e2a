package server

import (
	"sort"
	"testing"

	"github.com/sessiond/sessiond/internal/redistest"
)

// TestDifferential sends every script of testdata/diff to a real
// redis-server and to sessiond and compares the replies byte for byte
// (modifiers in the scripts mark the few replies that legitimately differ;
// testdata/diff/README.md lists them and why). It is skipped when
// redis-server is not installed.
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
			redistest.RunScript(t, scripts[name], rd.Addr(), ts.addr)
		})
	}
}
