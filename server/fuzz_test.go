package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// countingHandler counts records at Error level (the panic handler logs
// there) and drops everything.
type countingHandler struct{ errors *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// FuzzCommands feeds arbitrary command streams to the command layer: lines
// are commands, spaces separate arguments. Every command must answer exactly
// one well-formed RESP reply and must never reach the panic handler; the
// server must still answer PING afterwards. Commands that would end the
// process or connection are left out.
func FuzzCommands(f *testing.F) {
	for _, seed := range []string{
		"SET k v EX 10\nGET k\nGETEX k PX 5 PERSIST\nTTL k",
		"SET k 10\nINCRBY k 9223372036854775807\nINCRBYFLOAT k 1e308\nDECRBY k -9223372036854775808",
		"SET k abc\nSETRANGE k 5 xyz\nGETRANGE k -100 100\nAPPEND k \x00\x01\nSTRLEN k",
		"MSET a 1 b 2\nMGET a b c\nMSETNX a 1 z 2\nRENAME a z\nCOPY z y DB 3 REPLACE\nRENAMENX y y",
		"EXPIRE k 10 NX XX\nPEXPIREAT k 1 GT\nEXPIRETIME k\nPERSIST k\nEXPIRE k -9223372036854775808",
		"SCAN 0 MATCH [a- COUNT 1 TYPE string\nKEYS *[\\\nRANDOMKEY\nDBSIZE",
		"HELLO 3 SETNAME x\nCONFIG GET *\nCONFIG SET timeout 5 hz 20\nCLIENT LIST\nCOMMAND INFO get set",
		"SELECT 15\nSET k v\nFLUSHDB ASYNC\nSELECT 16\nCLIENT KILL ID 99999\nINFO all",
		"SET k v PXAT 1\nGETDEL k\nGETSET k v\nSETEX k 0 v\nPSETEX k 9223372036854775807 v",
		"HSET h f v g 1\nHINCRBY h g 5\nHINCRBYFLOAT h g 1e308\nHRANDFIELD h -5 WITHVALUES\nHSCAN h 0 MATCH * COUNT 1 NOVALUES\nHEXPIRE h 10 NX FIELDS 1 f\nHPTTL h FIELDS 2 f g\nHPERSIST h FIELDS 1 f\nHPEXPIRE h 0 FIELDS 1 g\nHDEL h f g",
		"SADD s 1 2 x\nSREM s 2\nSPOP s 2\nSRANDMEMBER s -3\nSSCAN s 0 MATCH * COUNT 1\nSMOVE s t x\nSINTERCARD 2 s t LIMIT 1",
		"SADD a 1 2\nSADD b 2 3\nSINTERSTORE c a b\nSUNION a b c\nSDIFFSTORE a a b\nSMISMEMBER a 1 9\nSPOP a -1",
		"ZADD z NX CH 1 a 2 b inf c\nZINCRBY z -inf c\nZRANGE z (1 +inf BYSCORE REV LIMIT 0 -1 WITHSCORES\nZRANGESTORE d z 0 -1",
		"ZADD z 0 a 0 b 0 c\nZRANGEBYLEX z [a (c LIMIT 1 1\nZREMRANGEBYLEX z - +\nZPOPMAX z 2\nZRANK z a WITHSCORE\nZSCAN z 0 COUNT 2",
		"ZADD z 1 a 2 b 3 c\nZREMRANGEBYRANK z -9223372036854775808 9223372036854775807\nZCOUNT z ( 0x1p3\nZREMRANGEBYSCORE z -inf (2\nZMSCORE z a b",
	} {
		f.Add(seed)
	}
	store, err := ttl.New(ttl.Config{})
	require.NoError(f, err)
	f.Cleanup(func() { _ = store.Close() })
	var errs atomic.Int64
	// A 1 MB argument limit (the least allowed) bounds what SETRANGE and
	// APPEND can build from a mutated offset.
	srv, err := New(Config{Logger: slog.New(countingHandler{&errs}), ProtoMaxBulkLen: 1 << 20}, store)
	require.NoError(f, err)
	a, b := net.Pipe()
	f.Cleanup(func() { a.Close(); b.Close() })
	c := srv.newClient(a)

	// Scripts may loop for ever (FuzzScript fuzzes them, with a time limit).
	banned := map[string]bool{"shutdown": true, "quit": true, "reset": false, "client": false,
		"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true}
	f.Fuzz(func(t *testing.T, script string) {
		store.Flush(-1) // each input starts empty, so memory stays bounded
		for _, line := range bytes.Split([]byte(script), []byte("\n")) {
			args := bytes.Fields(line)
			if len(args) == 0 || len(args) > 64 {
				continue
			}
			name := string(bytes.ToLower(args[0]))
			if banned[name] {
				continue
			}
			if name == "client" && len(args) > 1 && bytes.EqualFold(args[1], []byte("kill")) {
				continue
			}
			c.w.Reset()
			before := errs.Load()
			srv.dispatch(c, args)
			require.Equal(t, before, errs.Load(), "command %q reached the panic handler", line)
			out := c.w.Bytes()
			n, err := redistest.ReplyLen(out)
			require.NoError(t, err, "command %q: malformed reply %q", line, out)
			require.Equal(t, len(out), n, "command %q: more than one reply: %q", line, out)
			c.quitting = false
		}
		c.w.Reset()
		srv.dispatch(c, [][]byte{[]byte("PING")})
		require.Equal(t, "+PONG\r\n", string(c.w.Bytes()))
	})
}
