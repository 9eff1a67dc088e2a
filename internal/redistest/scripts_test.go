package redistest

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// scriptDir holds the differential test scripts, relative to this package.
const scriptDir = "../../server/testdata/diff"

// TestScriptsAgainstRedis plays every script against two independent
// redis-servers. They must agree on every line: this proves that the
// scripts are deterministic and that their modifiers cover exactly the
// replies that legitimately differ between two servers.
func TestScriptsAgainstRedis(t *testing.T) {
	scripts := LoadScripts(t, filepath.FromSlash(scriptDir))
	require.NotEmpty(t, scripts, "no scripts in %s", scriptDir)
	names := make([]string, 0, len(scripts))
	for name := range scripts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			_, err := ParseScript(scripts[name])
			require.NoError(t, err)
			a := StartRedis(t)
			b := StartRedis(t)
			// Give b a different history, so that a reply that depends on it
			// (client ids) fails unless the script marks it. Hash seeds are
			// random per process already, so unordered replies (KEYS,
			// SMEMBERS) differ unless sorted.
			for range 3 {
				require.NoError(t, Dial(t, b.Addr()).Close())
			}
			RunScript(t, scripts[name], a.Addr(), b.Addr())
		})
	}
}

func TestLoadScripts(t *testing.T) {
	dir := t.TempDir()
	scripts := LoadScripts(t, dir)
	require.Empty(t, scripts)
	writeFile(t, filepath.Join(dir, "one.txt"), "PING\n")
	writeFile(t, filepath.Join(dir, "notes.md"), "not a script")
	scripts = LoadScripts(t, dir)
	require.Equal(t, map[string]string{"one": "PING\n"}, scripts)
}
