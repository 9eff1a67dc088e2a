package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// twoAppsACL is the README's example: two applications share one server,
// each confined to its own key prefix, and an administrator keeps the
// default user.
const twoAppsACL = `user default on >admin-secret ~* &* +@all
user app-a on >secret-a ~a:* resetchannels +@all -@dangerous
user app-b on >secret-b ~b:* resetchannels +@all -@dangerous
`

func writeACLFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.acl")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// TestACLTwoAppsOneServer: app A, confined to a:*, cannot read or write
// b:*, and the other way round; neither can flush the server; the
// administrator sees both; denials reach ACL LOG.
func TestACLTwoAppsOneServer(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, ACLFile: writeACLFile(t, twoAppsACL)})
		ctx := context.Background()
		login := func(user, pass string, proto int) *redis.Client {
			return newGoRedis(t, ts.addr, proto, func(o *redis.Options) { o.Username, o.Password = user, pass })
		}
		a, b := login("app-a", "secret-a", 3), login("app-b", "secret-b", 2)
		admin := login("default", "admin-secret", 3)

		require.NoError(t, a.Set(ctx, "a:sess1", "alice", 30*time.Minute).Err())
		require.NoError(t, b.Set(ctx, "b:sess1", "bob", 30*time.Minute).Err())
		v, err := a.GetEx(ctx, "a:sess1", 30*time.Minute).Result()
		require.NoError(t, err)
		assert.Equal(t, "alice", v)

		const noKey = "NOPERM this user has no permissions to access one of the keys used as arguments"
		for _, err := range []error{
			a.Get(ctx, "b:sess1").Err(),
			a.Set(ctx, "b:sess1", "stolen", 0).Err(),
			a.Del(ctx, "b:sess1").Err(),
			a.MGet(ctx, "a:sess1", "b:sess1").Err(),
			a.Rename(ctx, "a:sess1", "b:sess2").Err(),
			b.Get(ctx, "a:sess1").Err(),
			b.Expire(ctx, "a:sess1", time.Second).Err(),
		} {
			require.Error(t, err)
			assert.Equal(t, noKey, err.Error())
		}
		err = a.FlushAll(ctx).Err()
		require.Error(t, err)
		assert.Equal(t, "NOPERM this user has no permissions to run the 'flushall' command", err.Error())
		err = b.Publish(ctx, "news", "x").Err()
		require.Error(t, err)
		assert.Equal(t, "NOPERM this user has no permissions to access one of the channels used as arguments", err.Error())

		// Nothing of the other app changed; the administrator sees both.
		assert.Equal(t, "bob", admin.Get(ctx, "b:sess1").Val())
		assert.Equal(t, "alice", admin.Get(ctx, "a:sess1").Val())
		who, err := a.Do(ctx, "ACL", "WHOAMI").Text()
		require.NoError(t, err)
		assert.Equal(t, "app-a", who)
		assert.Contains(t, admin.ClientList(ctx).Val(), "user=app-b")

		entries, err := admin.Do(ctx, "ACL", "LOG").Slice()
		require.NoError(t, err)
		require.NotEmpty(t, entries)
		reasons := map[string]int{}
		for _, e := range entries {
			m := e.(map[any]any)
			reasons[m["reason"].(string)+" "+m["username"].(string)]++
		}
		assert.Equal(t, map[string]int{"key app-a": 2, "key app-b": 1, "command app-a": 1, "channel app-b": 1}, reasons)

		// A wrong password is refused, as Redis words it.
		err = login("app-a", "secret-b", 2).Ping(ctx).Err()
		require.Error(t, err)
		assert.Equal(t, "WRONGPASS invalid username-password pair or user is disabled.", err.Error())
	})
}

// TestACLFileLoading: --aclfile is loaded at start, refused with the bad
// lines named, reloaded by ACL LOAD (all or nothing, closing the
// connections of the users it replaces), and written by ACL SAVE in a form
// that loads back to the same users.
func TestACLFileLoading(t *testing.T) {
	path := writeACLFile(t, twoAppsACL)
	ts := startServer(t, Config{ACLFile: path})
	admin := redistest.Dial(t, ts.addr)
	assert.Equal(t, "+OK\r\n", admin.DoString("AUTH", "admin-secret"))
	list := admin.DoString("ACL", "LIST")
	assert.Equal(t, "*3\r\n"+
		bulk("user app-a on #"+sha("secret-a")+" ~a:* resetchannels +@all -@dangerous")+
		bulk("user app-b on #"+sha("secret-b")+" ~b:* resetchannels +@all -@dangerous")+
		bulk("user default on #"+sha("admin-secret")+" ~* &* +@all"), list)
	assert.Equal(t, "*2\r\n"+bulk("aclfile")+bulk(path), admin.DoString("CONFIG", "GET", "aclfile"))

	// A bad file is refused at start with every bad line named.
	bad := writeACLFile(t, "user ok on nopass\nuser x on +nosuch\n# comment\nuser y on %Q~k >pw\n")
	store := ts.store
	_, err := New(Config{ACLFile: bad}, store)
	require.ErrorIs(t, err, ErrConfig)
	assert.Equal(t, "server: invalid config: aclfile: "+
		bad+":2: Error in applying operation '+nosuch': Unknown command or category name in ACL. "+
		bad+":3 should start with user keyword followed by the username. "+
		bad+":4: Syntax error. "+
		"WARNING: ACL errors detected, no change to the previously active ACL rules was performed", err.Error())
	_, err = New(Config{ACLFile: filepath.Join(t.TempDir(), "missing.acl")}, store)
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Error loading ACLs, opening file")
	assert.Contains(t, err.Error(), "No such file or directory")

	// ACL LOAD of a bad file changes nothing.
	appA := redistest.Dial(t, ts.addr)
	assert.Equal(t, "+OK\r\n", appA.DoString("AUTH", "app-a", "secret-a"))
	require.NoError(t, os.WriteFile(path, []byte("user app-a on nosuch\n"), 0o600))
	assert.Equal(t, "-ERR "+path+":1: Syntax error. WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n",
		admin.DoString("ACL", "LOAD"))
	assert.Equal(t, list, admin.DoString("ACL", "LIST"))
	assert.Equal(t, "$5\r\napp-a\r\n", appA.DoString("ACL", "WHOAMI"))

	// ACL SAVE writes what ACL LOAD reads back.
	assert.Equal(t, "+OK\r\n", admin.DoString("ACL", "SETUSER", "app-c", "on", ">secret-c", "%R~c:*", "&c:*", "-@all", "+@read"))
	list = admin.DoString("ACL", "LIST")
	assert.Equal(t, "+OK\r\n", admin.DoString("ACL", "SAVE"))
	saved, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(saved), "user app-c on #"+sha("secret-c")+" %R~c:* resetchannels &c:* -@all +@read\n")
	assert.Equal(t, "+OK\r\n", admin.DoString("ACL", "LOAD"))
	assert.Equal(t, list, admin.DoString("ACL", "LIST"))
	// Loading replaced app-a's user: its connection was closed, as Redis
	// does; the default user's connection stays.
	appA.ExpectClosed()
	assert.Equal(t, "$7\r\ndefault\r\n", admin.DoString("ACL", "WHOAMI"))

	// A file without a default user keeps requirepass's password (Redis
	// would make the default user nopass).
	noDefault := writeACLFile(t, "user app on >pw ~app:* +@all\n")
	ts2 := startServer(t, Config{ACLFile: noDefault, RequirePass: "rp"})
	c := redistest.Dial(t, ts2.addr)
	assert.Equal(t, "-NOAUTH Authentication required.\r\n", c.DoString("GET", "k"))
	assert.Equal(t, "+OK\r\n", c.DoString("AUTH", "rp"))
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

func sha(pass string) string {
	sum := sha256.Sum256([]byte(pass))
	return hex.EncodeToString(sum[:])
}

// TestACLPasswordsComparedInConstantTime: passwords are kept as SHA-256
// only, and a login compares the hash of what was sent with every stored
// hash — always 32 bytes against 32 bytes, whichever password is tried or
// matches — with crypto/subtle's constant-time comparison.
func TestACLPasswordsComparedInConstantTime(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.srv.acl
	assert.Equal(t, reflect.ValueOf(subtle.ConstantTimeCompare).Pointer(), reflect.ValueOf(a.compare).Pointer(),
		"passwords must be compared with subtle.ConstantTimeCompare")

	_, _, r, err := a.setUser("u", []string{"on", ">first", ">second-password", "#" + sha("third")})
	require.NoError(t, err)
	for _, p := range r.passwords {
		assert.Len(t, p, sha256.Size)
	}
	assert.NotContains(t, r.describe(a.table), "first", "no clear text is kept")

	var calls []int
	a.compare = func(x, y []byte) int {
		calls = append(calls, len(x), len(y))
		return subtle.ConstantTimeCompare(x, y)
	}
	t.Cleanup(func() { a.compare = subtle.ConstantTimeCompare })
	for _, tc := range []struct {
		pass string
		ok   bool
	}{
		{"first", true}, {"third", true}, {"", false}, {"f", false},
		{strings.Repeat("x", 10000), false}, {"second-password", true},
	} {
		calls = nil
		u := a.authenticate([]byte("u"), []byte(tc.pass))
		assert.Equal(t, tc.ok, u != nil, "password %.10q", tc.pass)
		assert.Equal(t, []int{32, 32, 32, 32, 32, 32}, calls, "every stored hash is compared, 32 bytes each")
	}
}

// TestACLWrongPasswordFlood: many connections sending wrong passwords as
// fast as they can (for existing and made-up users alike) leave the server
// serving an authenticated client, with the ACL log bounded.
func TestACLWrongPasswordFlood(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, RequirePass: "right"})
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)

		const attackers, attempts = 32, 300
		var wg sync.WaitGroup
		var refused atomic.Int64
		for i := range attackers {
			wg.Go(func() {
				c, err := redistest.DialErr(t, ts.addr)
				if err != nil {
					t.Error(err)
					return
				}
				var batch []byte
				for j := range attempts {
					user := "default"
					if j%2 == 1 {
						user = fmt.Sprintf("nosuch-%d-%d", i, j) // one log entry each
					}
					batch = append(batch, redistest.EncodeCommand("AUTH", user, fmt.Sprintf("guess-%d", j))...)
				}
				if err := c.Write(batch); err != nil {
					return
				}
				for range attempts {
					rep, err := c.ReadReply()
					if err != nil {
						return
					}
					if string(rep) == "-WRONGPASS invalid username-password pair or user is disabled.\r\n" {
						refused.Add(1)
					}
				}
			})
		}

		// Meanwhile a logged-in client keeps being served.
		user := redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", user.DoString("AUTH", "right"))
		served := 0
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for flooding := true; flooding || served < 100; served++ {
			start := time.Now()
			key := fmt.Sprintf("sess:%d", served)
			require.Equal(t, "+OK\r\n", user.DoString("SET", key, "v", "EX", "60"))
			require.Equal(t, "$1\r\nv\r\n", user.DoString("GET", key))
			assert.Less(t, time.Since(start), 2*time.Second, "a request waited too long during the flood")
			select {
			case <-done:
				flooding = false
			default:
			}
		}
		assert.Equal(t, int64(attackers*attempts), refused.Load(), "every guess is refused")
		assert.Positive(t, served)

		// The log is bounded (acllog-max-len 128), similar failures counted
		// in one entry.
		entries := ts.srv.acl.log.newest(1 << 20)
		assert.LessOrEqual(t, len(entries), 128)
		var total int64
		for _, e := range entries {
			total += e.count
			assert.Equal(t, aclDeniedAuth, e.reason)
		}
		assert.GreaterOrEqual(t, total, int64(128))

		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(64<<20), "heap growth after the flood")
	})
}

// TestACLLogMatchesRedis plays denials against redis-server and sessiond
// and compares the ACL LOG entries field by field, but for the age and
// the client's CLIENT LIST line, of which only the user and command are
// compared.
func TestACLLogMatchesRedis(t *testing.T) {
	ref := redistest.StartRedis(t)
	ts := startServer(t, Config{})
	play := func(addr string) []map[string]string {
		admin := redistest.Dial(t, addr)
		app := redistest.Dial(t, addr)
		for _, cmd := range [][]string{
			{"ACL", "SETUSER", "app", "on", ">pw", "~a:*", "&c", "-@all", "+get", "+set", "+publish", "+multi", "+exec"},
		} {
			admin.Do(cmd...)
		}
		for _, cmd := range [][]string{
			{"AUTH", "app", "wrong"}, {"auth", "nosuch", "pw"}, {"HELLO", "2", "AUTH", "app", "bad"},
			{"AUTH", "app", "pw"}, {"GET", "b:1"}, {"GET", "b:1"}, {"DEL", "a:1"}, {"PUBLISH", "d", "x"},
			{"MULTI"}, {"GET", "c:1"}, {"SET", "a:1", "x"}, {"EXEC"}, {"MULTI"}, {"GET", "a:1"},
		} {
			app.Do(cmd...)
		}
		// Rules changed between MULTI and EXEC.
		admin.Do("ACL", "SETUSER", "app", "resetkeys")
		app.Do("EXEC")
		rep, err := redistest.ParseReply(admin.Do("ACL", "LOG"))
		require.NoError(t, err)
		var out []map[string]string
		for _, e := range rep.Elems {
			m := map[string]string{}
			for i := 0; i+1 < len(e.Elems); i += 2 {
				k, v := string(e.Elems[i].Data), text(e.Elems[i+1])
				switch k {
				case "age-seconds":
					continue
				case "client-info":
					for _, f := range strings.Fields(v) {
						if strings.HasPrefix(f, "user=") || strings.HasPrefix(f, "db=") {
							m[k] += f + " "
						}
					}
					continue
				}
				m[k] = v
			}
			out = append(out, m)
		}
		admin.Do("ACL", "DELUSER", "app")
		return out
	}
	want := play(ref.Addr())
	require.Len(t, want, 8)
	assert.Equal(t, want, play(ts.addr))
}

// text is a simple or bulk reply's text.
func text(r redistest.Reply) string {
	if r.Type == '$' {
		return string(r.Data)
	}
	return r.Header
}

// TestACLDeletedUserIsDisconnected: DELUSER closes the user's connections
// (its own after the reply), and no command they had already sent runs.
func TestACLDeletedUserIsDisconnected(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		admin := redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", admin.DoString("ACL", "SETUSER", "tmp", "on", "nopass", "~*", "+@all"))
		victim := redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", victim.DoString("AUTH", "tmp", "x"))
		require.Equal(t, ":1\r\n", admin.DoString("ACL", "DELUSER", "tmp"))
		_ = victim.Write(redistest.EncodeCommand("SET", "after", "x")) // may find it closed
		victim.ExpectClosed()
		assert.Equal(t, "$-1\r\n", admin.DoString("GET", "after"))

		require.Equal(t, "+OK\r\n", admin.DoString("ACL", "SETUSER", "tmp", "on", "nopass", "~*", "+@all"))
		self := redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", self.DoString("AUTH", "tmp", "x"))
		// The reply comes first, then the connection closes; a command
		// pipelined behind it does not run.
		self.Send(append(redistest.EncodeCommand("ACL", "DELUSER", "tmp"), redistest.EncodeCommand("SET", "after", "x")...))
		assert.Equal(t, ":1\r\n", string(self.MustReadReply()))
		self.ExpectClosed()
		assert.Equal(t, "$-1\r\n", admin.DoString("GET", "after"))
	})
}

// TestACLRevokedChannelDisconnectsSubscriber: SETUSER taking away a
// channel a connection of the user is subscribed to closes it, as Redis
// does; subscribers still allowed stay.
func TestACLRevokedChannelDisconnectsSubscriber(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		admin := redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", admin.DoString("ACL", "SETUSER", "sub", "on", "nopass", "&news", "&alerts:*", "+@all"))
		news, alerts := redistest.Dial(t, ts.addr), redistest.Dial(t, ts.addr)
		require.Equal(t, "+OK\r\n", news.DoString("AUTH", "sub", "x"))
		require.Equal(t, "+OK\r\n", alerts.DoString("AUTH", "sub", "x"))
		assert.Equal(t, "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", news.DoString("SUBSCRIBE", "news"))
		assert.Equal(t, "*3\r\n$10\r\npsubscribe\r\n$8\r\nalerts:*\r\n:1\r\n", alerts.DoString("PSUBSCRIBE", "alerts:*"))

		require.Equal(t, "+OK\r\n", admin.DoString("ACL", "SETUSER", "sub", "resetchannels", "&alerts:*"))
		news.ExpectClosed()
		assert.Equal(t, ":1\r\n", admin.DoString("PUBLISH", "alerts:fire", "x"))
		assert.Equal(t, "*4\r\n$8\r\npmessage\r\n$8\r\nalerts:*\r\n$11\r\nalerts:fire\r\n$1\r\nx\r\n", string(alerts.MustReadReply()))
	})
}

// TestACLRulesChangeUnderLoad: rules changed while connections of the user
// run commands apply to each command as a whole (run with -race).
func TestACLRulesChangeUnderLoad(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	admin := newGoRedis(t, ts.addr, 3)
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "flip", "on", ">pw", "~k*", "+@all").Err())
	require.NoError(t, admin.Set(ctx, "k1", "v", 0).Err())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := newGoRedis(t, ts.addr, 2, func(o *redis.Options) { o.Username, o.Password = "flip", "pw" })
			for range 300 {
				v, err := c.Get(ctx, "k1").Result()
				if err != nil {
					assert.Equal(t, "NOPERM this user has no permissions to run the 'get' command", err.Error())
					continue
				}
				assert.Equal(t, "v", v)
			}
		})
	}
	for i := range 200 {
		rule := "+get"
		if i%2 == 0 {
			rule = "-get"
		}
		require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "flip", rule).Err())
	}
	wg.Wait()
}

// TestCommandKeys: the key arguments the ACL checks and COMMAND GETKEYS
// find, including the numkeys forms of commands other kinds bring.
func TestCommandKeys(t *testing.T) {
	ts := startServer(t, Config{})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "*2\r\n$1\r\na\r\n$1\r\nc\r\n", c.DoString("COMMAND", "GETKEYS", "MSET", "a", "b", "c", "d"))
	assert.Equal(t, "*2\r\n$1\r\na\r\n$1\r\nb\r\n", c.DoString("COMMAND", "GETKEYS", "COPY", "a", "b", "DB", "1"))
	assert.Equal(t, "-ERR The command has no key arguments\r\n", c.DoString("COMMAND", "GETKEYS", "PING"))

	// A table of this server's commands and of some another branch brings
	// (a fresh server's: building a table numbers its commands).
	other, err := New(Config{}, ts.store)
	require.NoError(t, err)
	cmds := map[string]*command{}
	for n, c := range other.cmds {
		cmds[n] = c
	}
	for _, c := range []*command{
		{name: "eval", arity: -3}, {name: "zunionstore", arity: -4, flags: flagWrite},
		{name: "sintercard", arity: -3, flags: flagReadonly}, {name: "hset", arity: -4, flags: flagWrite, firstKey: 1, lastKey: 1, step: 1},
	} {
		cmds[c.name] = c
	}
	tab := newACLTable(cmds, func(string) *command { return nil })
	const r, w, rw = permRead, permWrite, permRead | permWrite
	for _, tc := range []struct {
		cmd  string
		want []keyRef
	}{
		{"GET k", []keyRef{{1, r}}},
		{"SET k v", []keyRef{{1, w}}},
		{"SET k v EX 10 GET", []keyRef{{1, rw}}},
		{"MSET a 1 b 2", []keyRef{{1, w}, {3, w}}},
		{"MGET a b c", []keyRef{{1, r}, {2, r}, {3, r}}},
		{"EXISTS a b", []keyRef{{1, 0}, {2, 0}}},
		{"COPY a b", []keyRef{{1, r}, {2, w}}},
		{"RENAME a b", []keyRef{{1, rw}, {2, w}}},
		{"INCR a", []keyRef{{1, rw}}},
		{"DEL a b", []keyRef{{1, w}, {2, w}}},
		{"EVAL s 2 k1 k2 a1", []keyRef{{3, rw}, {4, rw}}},
		{"EVAL s 0 a1", nil},
		{"EVAL s 3 k1", nil},
		{"EVAL s x k1", nil},
		{"ZUNIONSTORE d 2 s1 s2 WEIGHTS 1 2", []keyRef{{1, w}, {3, r}, {4, r}}},
		{"ZUNIONSTORE d 0 s1", nil},
		{"SINTERCARD 2 a b LIMIT 1", []keyRef{{2, r}, {3, r}}},
		{"HSET h f v", []keyRef{{1, w}}},
		{"PING", nil},
	} {
		args := splitArgs(tc.cmd)
		cmd := cmds[strings.ToLower(string(args[0]))]
		got := tab.commandKeys(nil, cmd, args)
		if tc.want == nil {
			assert.Empty(t, got, tc.cmd)
			continue
		}
		assert.Equal(t, tc.want, got, tc.cmd)
	}

}

// TestACLCategoriesMatchRedis compares COMMAND INFO's ACL categories of
// every command with redis-server's.
func TestACLCategoriesMatchRedis(t *testing.T) {
	ref := redistest.StartRedis(t)
	ts := startServer(t, Config{})
	rc, sc := redistest.Dial(t, ref.Addr()), redistest.Dial(t, ts.addr)
	for _, cmd := range ts.srv.acl.table.cmds {
		rep, err := redistest.ParseReply(rc.Do("COMMAND", "INFO", cmd.name))
		require.NoError(t, err)
		info := rep.Elems[0]
		if info.IsNull() {
			continue // a command Redis 7.0 does not have
		}
		var want []string
		for _, c := range info.Elems[6].Elems {
			want = append(want, c.Header)
		}
		assert.Equal(t, want, cmd.acl(), cmd.name)
		got, err := redistest.ParseReply(sc.Do("COMMAND", "INFO", cmd.name))
		require.NoError(t, err)
		assert.Equal(t, string(info.Elems[6].Raw), string(got.Elems[0].Elems[6].Raw), cmd.name)
	}
}

// TestACLDefaultUserFastPath: the default user's connections skip the
// checks (a bool), until its rules narrow.
func TestACLDefaultUserFastPath(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.srv.acl
	assert.True(t, a.def.open.Load())
	_, _, _, err := a.setUser("default", []string{"-flushall"})
	require.NoError(t, err)
	assert.False(t, a.def.open.Load())
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "-NOPERM this user has no permissions to run the 'flushall' command\r\n", c.DoString("FLUSHALL"))
	_, _, _, err = a.setUser("default", []string{"+@all"})
	require.NoError(t, err)
	assert.True(t, a.def.open.Load())
	assert.Equal(t, "+OK\r\n", c.DoString("FLUSHALL"))

	var setErr *errSetUser
	_, _, _, err = a.setUser("x", []string{"on", "+nosuch"})
	require.True(t, errors.As(err, &setErr))
	assert.Nil(t, a.user("x"), "a refused SETUSER creates nothing")
}

// BenchmarkACLCheck measures the check of a restricted user's command.
func BenchmarkACLCheck(b *testing.B) {
	ts := startServer(b, Config{})
	_, _, r, err := ts.srv.acl.setUser("app", []string{"on", "~sess:app:*", "%R~shared:*", "resetchannels", "+@all", "-@dangerous"})
	require.NoError(b, err)
	args := splitArgs("SET sess:app:0123456789abcdef v EX 1800")
	cmd := ts.srv.cmds["set"]
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := r.check(ts.srv.acl.table, cmd, args); d != aclOK {
			b.Fatal(d)
		}
	}
}

// TestCommandFlagsMatchRedis compares COMMAND INFO's flags of every
// command with redis-server's, over the flags sessiond models (Redis has
// more, such as may_replicate), in Redis's order. ownFlags lists where
// sessiond differs on purpose; the CLUSTER stubs carry no flags. (EXEC
// once had allow_busy from its table's helper, and answered a busy
// script with "EXECABORT … previous errors" instead of Redis's "EXECABORT
// … because of: BUSY …".)
func TestCommandFlagsMatchRedis(t *testing.T) {
	ownFlags := map[string][]string{
		// SHUTDOWN answers NOAUTH itself, so that it runs while a script
		// is busy.
		"shutdown": {"admin", "noscript", "loading", "stale", "no_auth", "no_multi", "allow_busy"},
		// PING answers before a load ends (Redis 7.0 does not flag it).
		"ping": {"loading", "stale", "fast"},
	}
	ref := redistest.StartRedis(t)
	ts := startServer(t, Config{})
	rc, sc := redistest.Dial(t, ref.Addr()), redistest.Dial(t, ts.addr)
	modeled := map[string]bool{}
	for _, f := range flagNames {
		modeled[f.name] = true
	}
	flagsOf := func(info redistest.Reply) []string {
		var out []string
		for _, f := range info.Elems[2].Elems {
			if modeled[f.Header] {
				out = append(out, f.Header)
			}
		}
		return out
	}
	for _, cmd := range ts.srv.acl.table.cmds {
		if strings.HasPrefix(cmd.name, "cluster|") {
			continue
		}
		rep, err := redistest.ParseReply(rc.Do("COMMAND", "INFO", cmd.name))
		require.NoError(t, err)
		info := rep.Elems[0]
		if info.IsNull() {
			continue // a command Redis 7.0 does not have
		}
		got, err := redistest.ParseReply(sc.Do("COMMAND", "INFO", cmd.name))
		require.NoError(t, err)
		want, own := ownFlags[cmd.name]
		if !own {
			want = flagsOf(info)
		}
		assert.Equal(t, want, flagsOf(got.Elems[0]), cmd.name)
	}
}
