package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/boj/redistore"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	"github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// These tests prove that real session frameworks work unchanged against
// sessiond: the same web application, configured only with an address,
// runs its login flow against a real redis-server and then against
// sessiond, and a test that drives it over HTTP checks what a user sees and
// what the server holds.
//
// The flow (webFlow) is the same for every framework: log in (a session
// with a 30-minute lifetime is created), read it back in a new request,
// modify it, touch it (the test shortens the key's TTL on the server, a
// plain request must move it back to 30 minutes), log out (the key is gone
// and the old cookie no longer logs anyone in), and log in with a 2-second
// session that expires on the server and is no longer served.
//
// Frameworks: gorilla/sessions with rbcervilla/redisstore (go-redis v9) and
// boj/redistore (redigo), alexedwards/scs with its redisstore (MULTI, SET,
// PEXPIREAT, EXEC on every commit), express-session with connect-redis on
// node-redis 4, node-redis 6 (RESP3) and ioredis, PHP's session handler
// from phpredis with locking on, Flask-Session and Rack::Session::Redis from
// Debian's packages. Spring Session and ASP.NET Core, whose clients cannot
// be installed here, are replayed in frameworks_replay_test.go.
//
// Each framework runs against redis-server first, through the recording
// proxy of clients_test.go, which yields the exact commands it sent. Before
// the sessiond run, COMMAND INFO asks sessiond for each of them: a missing
// one fails the case, naming it. The sessiond run must answer exactly the
// errors redis-server answered (a NOSCRIPT before phpredis's EVAL, say) and
// no other.

const (
	fwTTL      = 1800 * time.Second // the frameworks' session lifetime
	fwShortTTL = 2 * time.Second    // the short sessions' lifetime
	fwTimeout  = 30 * time.Second   // one request, or starting an app
)

// ---- targets ----

// fwTarget is the server a framework runs against, behind a recording
// proxy.
type fwTarget struct {
	name   string // "redis" or "sessiond"
	addr   string // the proxy: give this to the framework
	direct string // the server itself: for the test's own checks
	rdb    *redis.Client
}

// fwRun is what the redis-server run of a framework leaves for the sessiond
// run.
type fwRun struct {
	commands []string // command names the framework sent, upper case, sorted
	errors   []string // "CMD -> error" for every error reply, in order
}

// forEachTarget runs f against a fresh redis-server and then against a
// fresh sessiond, each behind a recording proxy. The sessiond case is
// skipped while sessiond lacks a command the framework sent to
// redis-server, and must answer the same errors redis-server did. extra
// lists commands the framework needs that the proxy cannot see (those it
// sends on a subscribed connection).
func forEachTarget(t *testing.T, f func(t *testing.T, tg *fwTarget), extra ...string) {
	var ref *fwRun
	t.Run("redis", func(t *testing.T) {
		rd := redistest.StartRedis(t)
		run := runTarget(t, "redis", rd.Addr(), f)
		if !t.Failed() {
			t.Logf("commands sent: %s", strings.Join(run.commands, " "))
			// Probes Redis itself does not know (SENTINEL on a
			// standalone server) are not needed from sessiond either.
			unknown := missingCommands(t, rd.Addr(), run.commands)
			run.commands = slices.DeleteFunc(run.commands, func(c string) bool { return slices.Contains(unknown, c) })
			ref = run
		}
	})
	t.Run("sessiond", func(t *testing.T) {
		ts := startServer(t, Config{})
		var need []string
		if ref != nil {
			need = ref.commands
		}
		need = append(need, extra...)
		if missing := missingCommands(t, ts.addr, need); len(missing) > 0 {
			t.Fatalf("sessiond lacks %s, which the framework sent to redis-server",
				strings.Join(missing, ", "))
		}
		run := runTarget(t, "sessiond", ts.addr, f)
		if ref != nil && run != nil {
			assert.Equal(t, ref.errors, run.errors, "sessiond must answer the errors redis-server answered, and no other")
		}
	})
}

func runTarget(t *testing.T, name, addr string, f func(t *testing.T, tg *fwTarget)) *fwRun {
	t.Helper()
	rec := startRecorder(t, addr)
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	tg := &fwTarget{name: name, addr: rec.addr(), direct: addr, rdb: rdb}
	f(t, tg)
	if t.Failed() {
		return nil
	}
	exs := rec.exchanges(t)
	run := &fwRun{}
	seen := map[string]bool{}
	for _, e := range exs {
		name := strings.ToUpper(e.args[0])
		if !seen[name] {
			seen[name] = true
			run.commands = append(run.commands, name)
		}
		if e.errReply == "" {
			continue
		}
		if len(e.args) > 1 && slices.Contains(containerCommands, name) {
			name += " " + strings.ToUpper(e.args[1])
		}
		if name == "CLIENT SETINFO" {
			// Redis 7.2's; the reference 7.0 does not know it, sessiond
			// does (testdata/diff/README.md, intended difference 2).
			continue
		}
		run.errors = append(run.errors, name+" -> "+e.errReply)
	}
	slices.Sort(run.commands)
	return run
}

// containerCommands are those whose errors are told apart by subcommand.
var containerCommands = []string{"CLIENT", "CLUSTER", "COMMAND", "CONFIG", "SCRIPT", "PUBSUB"}

// missingCommands returns the commands of names that the server at addr
// does not know (COMMAND INFO answers a null for them).
func missingCommands(t *testing.T, addr string, names []string) []string {
	t.Helper()
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return nil
	}
	c := redistest.Dial(t, addr)
	defer c.Close()
	reply, err := redistest.ParseReply(c.Do(append([]string{"COMMAND", "INFO"}, names...)...))
	require.NoError(t, err)
	require.Len(t, reply.Elems, len(names), "COMMAND INFO %v: %q", names, reply.Raw)
	var missing []string
	for i, e := range reply.Elems {
		if e.IsNull() {
			missing = append(missing, names[i])
		}
	}
	return missing
}

// ---- a browser ----

// browser is an HTTP client with its own cookies. Unlike a cookie jar it
// keeps a cookie past its expiry date, so that a test can show that the
// server, not the browser, refuses an expired session. Every request uses
// a new connection.
type browser struct {
	t       *testing.T
	base    string
	cookies map[string]string
}

func newBrowser(t *testing.T, base string) *browser {
	return &browser{t: t, base: base, cookies: map[string]string{}}
}

// clone returns a browser holding the same cookies.
func (b *browser) clone() *browser {
	c := newBrowser(b.t, b.base)
	for k, v := range b.cookies {
		c.cookies[k] = v
	}
	return c
}

// get requests path and returns the body; the status must be 200.
func (b *browser) get(path string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fwTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	require.NoError(b.t, err)
	names := make([]string, 0, len(b.cookies))
	for name := range b.cookies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		req.AddCookie(&http.Cookie{Name: name, Value: b.cookies[name]})
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(b.t, err, "GET %s", path)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(b.t, err)
	require.Equal(b.t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return strings.TrimSpace(string(body))
}

// ---- the flow ----

// webFlow drives an application that implements these endpoints, each
// answering in plain text:
//
//	/login?user=U[&short=1]  a new session {user: U, visits: 1}, with the
//	                         short lifetime when short=1; "user=U visits=1"
//	/whoami                  reads the session: "user=U visits=N" or
//	                         "anonymous"; whatever the framework does on a
//	                         plain request (sliding the expiry) happens
//	/visit                   visits+1, then like /whoami
//	/logout                  destroys the session: "bye"
//
// keyPattern matches the framework's session keys (KEYS syntax).
func webFlow(t *testing.T, tg *fwTarget, base, keyPattern string) {
	t.Helper()
	ctx := t.Context()
	rdb := tg.rdb

	// Login: a session key with the full lifetime.
	b := newBrowser(t, base)
	require.Equal(t, "user=ana visits=1", b.get("/login?user=ana"))
	key := sessionKey(t, rdb, keyPattern, "ana")
	assertTTL(t, rdb, key, fwTTL)
	v1 := rdb.Get(ctx, key).Val()

	// The next request, on a new connection, reads it back.
	b = b.clone()
	assert.Equal(t, "user=ana visits=1", b.get("/whoami"))

	// Modify: the stored session changes.
	assert.Equal(t, "user=ana visits=2", b.get("/visit"))
	assert.Equal(t, "user=ana visits=2", b.get("/whoami"))
	assert.NotEqual(t, v1, rdb.Get(ctx, key).Val(), "the stored session did not change")

	// Touch: a plain request moves the expiry back to the full lifetime.
	require.True(t, rdb.Expire(ctx, key, 100*time.Second).Val())
	assert.Equal(t, "user=ana visits=2", b.get("/whoami"))
	assertTTL(t, rdb, key, fwTTL)

	// Logout: the key is gone and the old cookie logs nobody in.
	stale := b.clone()
	assert.Equal(t, "bye", b.get("/logout"))
	assert.Zero(t, rdb.Exists(ctx, key).Val(), "the session survived logout")
	assert.Equal(t, "anonymous", stale.get("/whoami"))
	// Some frameworks store an empty session under the old id (Flask-Session
	// does), but the user's data must not come back.
	assert.NotContains(t, rdb.Get(ctx, key).Val(), "ana", "the old cookie brought the session back")

	// A short session: served while it lives, gone when it expires.
	s := newBrowser(t, base)
	require.Equal(t, "user=bob visits=1", s.get("/login?user=bob&short=1"))
	short := sessionKey(t, rdb, keyPattern, "bob")
	pttl := rdb.PTTL(ctx, short).Val()
	assert.True(t, pttl > 0 && pttl <= fwShortTTL, "PTTL of the short session: %v", pttl)
	assert.Equal(t, "user=bob visits=1", s.get("/whoami"))
	waitGone(t, rdb, short, 3*fwShortTTL)
	assert.Equal(t, "anonymous", s.get("/whoami"), "an expired session was served")
}

// sessionKey returns the one key matching pattern whose value names user.
func sessionKey(t *testing.T, rdb *redis.Client, pattern, user string) string {
	t.Helper()
	ctx := t.Context()
	keys, err := rdb.Keys(ctx, pattern).Result()
	require.NoError(t, err)
	var found []string
	for _, k := range keys {
		if v, err := rdb.Get(ctx, k).Result(); err == nil && strings.Contains(v, user) {
			found = append(found, k)
		}
	}
	require.Len(t, found, 1, "keys matching %q holding %q, among %v", pattern, user, keys)
	return found[0]
}

// assertTTL checks that key expires in want, give or take the test's own
// duration.
func assertTTL(t *testing.T, rdb *redis.Client, key string, want time.Duration) {
	t.Helper()
	got, err := rdb.PTTL(t.Context(), key).Result()
	require.NoError(t, err)
	assert.True(t, got <= want && got > want-fwTimeout, "TTL of %s: %v, want %v", key, got, want)
}

// waitGone polls until key no longer exists (an EXISTS past the deadline
// expires it on any server), failing after limit.
func waitGone(t *testing.T, rdb *redis.Client, key string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for rdb.Exists(t.Context(), key).Val() != 0 {
		require.True(t, time.Now().Before(deadline), "%s did not expire within %v", key, limit)
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- Go frameworks, in process ----

// gorillaApp is a web application on gorilla/sessions. A session marked
// short is saved with the short MaxAge on every request; the others with
// the full one, which slides their expiry.
func gorillaApp(store sessions.Store) http.Handler {
	const name = "app_session"
	show := func(s *sessions.Session) string {
		u, ok := s.Values["user"].(string)
		if !ok {
			return "anonymous"
		}
		return fmt.Sprintf("user=%s visits=%d", u, s.Values["visits"])
	}
	save := func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		s.Options.MaxAge = int(fwTTL / time.Second)
		if s.Values["short"] == true {
			s.Options.MaxAge = int(fwShortTTL / time.Second)
		}
		return s.Save(r, w)
	}
	handle := func(f func(w http.ResponseWriter, r *http.Request, s *sessions.Session) (string, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s, err := store.Get(r, name)
			if err == nil {
				var body string
				if body, err = f(w, r, s); err == nil {
					_, _ = io.WriteString(w, body)
					return
				}
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/login", handle(func(w http.ResponseWriter, r *http.Request, s *sessions.Session) (string, error) {
		s.Values["user"] = r.FormValue("user")
		s.Values["visits"] = 1
		s.Values["short"] = r.FormValue("short") == "1"
		return show(s), save(w, r, s)
	}))
	mux.Handle("/whoami", handle(func(w http.ResponseWriter, r *http.Request, s *sessions.Session) (string, error) {
		if s.IsNew {
			return show(s), nil
		}
		return show(s), save(w, r, s)
	}))
	mux.Handle("/visit", handle(func(w http.ResponseWriter, r *http.Request, s *sessions.Session) (string, error) {
		if s.IsNew {
			return show(s), nil
		}
		s.Values["visits"] = s.Values["visits"].(int) + 1
		return show(s), save(w, r, s)
	}))
	mux.Handle("/logout", handle(func(w http.ResponseWriter, r *http.Request, s *sessions.Session) (string, error) {
		s.Options.MaxAge = -1
		return "bye", s.Save(r, w)
	}))
	return mux
}

// TestFrameworkGorillaRedisstore: gorilla/sessions with
// github.com/rbcervilla/redisstore/v9 on go-redis v9 (SET … EX, GET, DEL).
func TestFrameworkGorillaRedisstore(t *testing.T) {
	t.Parallel()
	forEachTarget(t, func(t *testing.T, tg *fwTarget) {
		client := redis.NewClient(&redis.Options{Addr: tg.addr})
		defer client.Close()
		store, err := redisstore.NewRedisStore(t.Context(), client)
		require.NoError(t, err)
		store.KeyPrefix("session:")
		store.Options(sessions.Options{Path: "/", MaxAge: int(fwTTL / time.Second), HttpOnly: true})
		srv := httptest.NewServer(gorillaApp(store))
		defer srv.Close()
		webFlow(t, tg, srv.URL, "session:*")
	})
}

// TestFrameworkGorillaRedistore: gorilla/sessions with boj/redistore on
// redigo (SETEX, GET, DEL; the session id in a signed cookie).
func TestFrameworkGorillaRedistore(t *testing.T) {
	t.Parallel()
	forEachTarget(t, func(t *testing.T, tg *fwTarget) {
		store, err := redistore.NewRediStore(4, "tcp", tg.addr, "", "", []byte("0123456789abcdef0123456789abcdef"))
		require.NoError(t, err)
		defer store.Close()
		store.SetMaxAge(int(fwTTL / time.Second))
		srv := httptest.NewServer(gorillaApp(store))
		defer srv.Close()
		webFlow(t, tg, srv.URL, "session_*")
	})
}

// TestFrameworkSCS: alexedwards/scs v2 with its redisstore (redigo), which
// commits every session with MULTI / SET / PEXPIREAT / EXEC. Sessions slide
// with IdleTimeout (every request re-commits); short sessions come from a
// second manager with a 2-second Lifetime and its own cookie.
func TestFrameworkSCS(t *testing.T) {
	t.Parallel()
	forEachTarget(t, func(t *testing.T, tg *fwTarget) {
		pool := &redigo.Pool{
			MaxIdle: 4,
			Dial:    func() (redigo.Conn, error) { return redigo.Dial("tcp", tg.addr) },
		}
		defer pool.Close()
		long := scs.New()
		long.Store = scsredis.New(pool)
		long.Lifetime = 24 * time.Hour
		long.IdleTimeout = fwTTL
		short := scs.New()
		short.Store = scsredis.New(pool)
		short.Lifetime = fwShortTTL
		short.Cookie.Name = "short_session"

		// current is the manager holding the user's session, if any.
		current := func(r *http.Request) *scs.SessionManager {
			for _, m := range []*scs.SessionManager{short, long} {
				if m.Exists(r.Context(), "user") {
					return m
				}
			}
			return nil
		}
		show := func(r *http.Request, m *scs.SessionManager) string {
			if m == nil {
				return "anonymous"
			}
			return fmt.Sprintf("user=%s visits=%d", m.GetString(r.Context(), "user"), m.GetInt(r.Context(), "visits"))
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
			m := long
			if r.FormValue("short") == "1" {
				m = short
			}
			if err := m.RenewToken(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			m.Put(r.Context(), "user", r.FormValue("user"))
			m.Put(r.Context(), "visits", 1)
			_, _ = io.WriteString(w, show(r, m))
		})
		mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, show(r, current(r)))
		})
		mux.HandleFunc("/visit", func(w http.ResponseWriter, r *http.Request) {
			m := current(r)
			if m != nil {
				m.Put(r.Context(), "visits", m.GetInt(r.Context(), "visits")+1)
			}
			_, _ = io.WriteString(w, show(r, m))
		})
		mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
			if m := current(r); m != nil {
				if err := m.Destroy(r.Context()); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
			_, _ = io.WriteString(w, "bye")
		})
		srv := httptest.NewServer(long.LoadAndSave(short.LoadAndSave(mux)))
		defer srv.Close()
		webFlow(t, tg, srv.URL, "scs:session:*")
	})
}

// ---- frameworks in other languages, as processes ----

// fwApp is a web application under testdata/frameworks, started as a
// process that listens on a free loopback port.
type fwApp struct {
	dir   string   // under testdata/frameworks
	cmd   []string // command line, run in dir; ADDR is replaced by the target's address
	env   []string // more environment
	probe []string // exits 0 when the runtime and libraries are there
	hint  string   // how to install them
	ready *regexp.Regexp
}

// listening is how the apps announce their address on stdout.
var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// lineWatch collects a process's output and reports the first match of
// re's first group.
type lineWatch struct {
	re    *regexp.Regexp
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan string
	done  bool
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done {
		if m := w.re.FindSubmatch(w.buf.Bytes()); m != nil {
			w.done = true
			w.found <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// requireApp skips the test when the app's runtime or libraries are missing,
// or fails it with SESSIOND_REQUIRE_CLIENTS=1 (as CI sets it).
func requireApp(t *testing.T, app fwApp) {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("SESSIOND_REQUIRE_CLIENTS") == "1" {
		missing = t.Fatalf
	}
	if _, err := exec.LookPath(app.cmd[0]); err != nil {
		missing("%s not found (%s)", app.cmd[0], app.hint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fwTimeout)
	defer cancel()
	probe := exec.CommandContext(ctx, app.probe[0], app.probe[1:]...)
	probe.Dir = filepath.Join("testdata", "frameworks", app.dir)
	probe.Env = append(os.Environ(), app.env...)
	if out, err := probe.CombinedOutput(); err != nil {
		missing("libraries missing (%s): %v\n%s", app.hint, err, out)
	}
}

// startApp starts app against the target's address and returns its base
// URL. A cleanup kills it and waits for it; its output is logged if the
// test failed.
func startApp(t *testing.T, app fwApp, tg *fwTarget) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "frameworks", app.dir))
	require.NoError(t, err)
	args := make([]string, len(app.cmd))
	for i, a := range app.cmd {
		args[i] = strings.ReplaceAll(a, "ADDR", tg.addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	// The app gets a process group of its own, killed as a whole: PHP's
	// built-in server forks workers that would outlive their parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "SESSIOND_ADDR="+tg.addr)
	cmd.Env = append(cmd.Env, app.env...)
	ready := app.ready
	if ready == nil {
		ready = listening
	}
	out := &lineWatch{re: ready, found: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = cmd.Wait()
		close(exited)
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", strings.Join(args, " "), out)
		}
	})
	select {
	case addr := <-out.found:
		return "http://" + addr
	case <-exited:
		t.Fatalf("%s exited before listening:\n%s", strings.Join(args, " "), out)
	case <-time.After(fwTimeout):
		t.Fatalf("%s did not listen within %v:\n%s", strings.Join(args, " "), fwTimeout, out)
	}
	return ""
}

// nodeApp is the express-session application on one of the Node clients.
func nodeApp(t *testing.T, client string) fwApp {
	modules, err := filepath.Abs(filepath.Join("testdata", "clients", "node", "node_modules"))
	require.NoError(t, err)
	return fwApp{
		dir:   "node",
		cmd:   []string{"node", "express_app.js", client},
		env:   []string{"NODE_PATH=" + modules},
		probe: []string{"node", "-e", "for (const m of ['express', 'express-session', 'connect-redis7', 'connect-redis9', '" + client + "']) require(m)"},
		hint:  "node, and npm ci in server/testdata/clients/node",
	}
}

// TestFrameworkExpress: express 5 with express-session and connect-redis
// (SET … EX, GET, EXPIRE to touch, DEL), on node-redis 4 and ioredis
// (connect-redis 7) and node-redis 6 over RESP3 (connect-redis 9).
func TestFrameworkExpress(t *testing.T) {
	t.Parallel()
	for _, client := range []string{"redis4", "redis6", "ioredis"} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			app := nodeApp(t, client)
			requireApp(t, app)
			forEachTarget(t, func(t *testing.T, tg *fwTarget) {
				webFlow(t, tg, startApp(t, app, tg), "sess:*")
			})
		})
	}
}

// TestFrameworkPHPRedisLocking: PHP's own session handling with phpredis's
// handler (session.save_handler=redis) and its session locking on: each
// request takes PHPREDIS_SESSION:<id>_LOCK with SET NX PX and releases it
// with EVALSHA, or EVAL after NOSCRIPT. PHP's built-in server runs two
// workers, so that two requests of one session really race for the lock.
func TestFrameworkPHPRedisLocking(t *testing.T) {
	t.Parallel()
	app := fwApp{
		dir: "php",
		cmd: []string{"php",
			"-d", "session.save_handler=redis",
			"-d", `session.save_path="tcp://ADDR?timeout=5"`,
			"-d", "session.gc_maxlifetime=1800",
			"-d", "session.use_strict_mode=1",
			"-d", "redis.session.locking_enabled=1",
			"-d", "redis.session.lock_expire=10",
			"-d", "redis.session.lock_wait_time=10000",
			"-d", "redis.session.lock_retries=1000",
			"-S", "127.0.0.1:0", "app.php"},
		env:   []string{"PHP_CLI_SERVER_WORKERS=2"},
		probe: []string{"php", "-r", "exit(extension_loaded('redis') ? 0 : 1);"},
		hint:  "apt-get install php-cli php-redis",
		ready: regexp.MustCompile(`Development Server \(http://(127\.0\.0\.1:\d+)\) started`),
	}
	requireApp(t, app)
	forEachTarget(t, func(t *testing.T, tg *fwTarget) {
		base := startApp(t, app, tg)
		webFlow(t, tg, base, "PHPREDIS_SESSION:*")
		ctx := t.Context()

		// The lock serializes two requests of one session: the slow one
		// holds it while the fast one waits, so neither update is lost.
		b := newBrowser(t, base)
		require.Equal(t, "user=cara visits=1", b.get("/login?user=cara"))
		var wg sync.WaitGroup
		var slow string
		wg.Go(func() { slow = b.clone().get("/visit?sleep_ms=400") })
		key := sessionKey(t, tg.rdb, "PHPREDIS_SESSION:*", "cara")
		lock := key + "_LOCK"
		require.Eventually(t, func() bool { return tg.rdb.Exists(ctx, lock).Val() == 1 }, fwTimeout, 5*time.Millisecond,
			"the slow request never took %s", lock)
		fast := b.clone().get("/visit")
		wg.Wait()
		assert.Equal(t, "user=cara visits=2", slow)
		assert.Equal(t, "user=cara visits=3", fast, "the second request did not wait for the first one's lock")
		assert.Equal(t, "user=cara visits=3", b.get("/whoami"))
		assert.Empty(t, tg.rdb.Keys(ctx, "*_LOCK").Val(), "a lock was not released")
	})
}

// TestFrameworkFlaskSession: Flask with Flask-Session's RedisSessionInterface
// (Debian's python3-flask-session, on python3-redis): SETEX of the pickled
// session on every request, GET, DEL. The short sessions come from a second
// Flask app with its own cookie and lifetime, picked per request.
func TestFrameworkFlaskSession(t *testing.T) {
	t.Parallel()
	app := fwApp{
		dir:   "python",
		cmd:   []string{"/usr/bin/python3", "flask_app.py"},
		env:   []string{"PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1"},
		probe: []string{"/usr/bin/python3", "-c", "import flask, flask_session, redis"},
		hint:  "apt-get install python3-flask-session python3-redis",
	}
	requireApp(t, app)
	forEachTarget(t, func(t *testing.T, tg *fwTarget) {
		webFlow(t, tg, startApp(t, app, tg), "session:*")
	})
}

// TestFrameworkRackSession: a Rack application with Rack::Session::Redis
// (Debian's ruby-redis-rack, on redis-store and redis-rb 4) served by
// WEBrick: SET … EX of the marshalled session, GET, DEL.
func TestFrameworkRackSession(t *testing.T) {
	t.Parallel()
	app := fwApp{
		dir:   "ruby",
		cmd:   []string{"ruby", "rack_app.rb"},
		probe: []string{"ruby", "-e", "require 'rack'; require 'redis-rack'; require 'webrick'"},
		hint:  "apt-get install ruby-redis-rack ruby-webrick",
	}
	requireApp(t, app)
	forEachTarget(t, func(t *testing.T, tg *fwTarget) {
		webFlow(t, tg, startApp(t, app, tg), "rack:session:*")
	})
}
