package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// TestRunACLFile: --aclfile (also as a config-file directive) loads the
// users; a bad file stops the program with the bad line named.
func TestRunACLFile(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte("user default on >admin ~* &* +@all\nuser app on >pw ~app:* +@all -@dangerous\n"), 0o600))
	conf := filepath.Join(dir, "sessiond.conf")
	require.NoError(t, os.WriteFile(conf, []byte("port 0\nloglevel warning\naclfile "+acl+"\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _ := startRun(t, ctx, conf)
	c := redistest.Dial(t, addr)
	assert.Equal(t, "-NOAUTH Authentication required.\r\n", c.DoString("GET", "k"))
	assert.Equal(t, "+OK\r\n", c.DoString("AUTH", "app", "pw"))
	assert.Equal(t, "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n", c.DoString("GET", "other"))
	assert.Equal(t, "+OK\r\n", c.DoString("SET", "app:1", "v"))

	bad := filepath.Join(dir, "bad.acl")
	require.NoError(t, os.WriteFile(bad, []byte("user app on +nosuch\n"), 0o600))
	err := run(context.Background(), []string{"--port", "0", "--aclfile", bad}, &bytes.Buffer{}, &bytes.Buffer{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad+":1: Error in applying operation '+nosuch': Unknown command or category name in ACL.")
}
