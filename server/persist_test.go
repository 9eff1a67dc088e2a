package server

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// fakePersistence records what the server tells it and answers with
// canned figures.
type fakePersistence struct {
	mu      sync.Mutex
	changed []string
	flushed []int
	saveErr error
	bgErr   error
	saves   int
	status  PersistStatus
	config  map[string]string
	// release, when set, holds WaitDurable until it is closed.
	release chan struct{}
	waits   int
}

func (f *fakePersistence) KeyChanged(db int, key []byte) {
	f.mu.Lock()
	f.changed = append(f.changed, fmt.Sprintf("%d:%s", db, key))
	f.mu.Unlock()
}

func (f *fakePersistence) DeadlineChanged(db int, key []byte) {
	f.mu.Lock()
	f.changed = append(f.changed, fmt.Sprintf("%d:%s (deadline)", db, key))
	f.mu.Unlock()
}

func (f *fakePersistence) DBFlushed(db int) {
	f.mu.Lock()
	f.flushed = append(f.flushed, db)
	f.mu.Unlock()
}

func (f *fakePersistence) Save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	return f.saveErr
}

func (f *fakePersistence) BackgroundSave() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bgErr
}

func (f *fakePersistence) WaitDurable() {
	f.mu.Lock()
	f.waits++
	ch := f.release
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (f *fakePersistence) DurableTarget() (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 1, f.release != nil
}

func (f *fakePersistence) OnDurable(_ uint64, fn func()) {
	f.mu.Lock()
	f.waits++
	ch := f.release
	f.mu.Unlock()
	go func() {
		if ch != nil {
			<-ch
		}
		fn()
	}()
}

func (f *fakePersistence) Status() PersistStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	if v, ok := f.config["save"]; ok {
		st.Save = v
	}
	if v, ok := f.config["appendonly"]; ok {
		st.AppendOnly = v == "yes"
	}
	if v, ok := f.config["appendfsync"]; ok {
		st.AppendFsync = v
	}
	return st
}

func (f *fakePersistence) SetConfig(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "save" && value == "bad" {
		return errors.New("Invalid save parameters")
	}
	if f.config == nil {
		f.config = map[string]string{}
	}
	f.config[name] = value
	return nil
}

func (f *fakePersistence) changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.changed...)
}

func newFakePersistence() *fakePersistence {
	return &fakePersistence{status: PersistStatus{
		Dir: "/var/lib/sessiond", DBFilename: "sessiond.db", Save: "3600 1", AppendFsync: "everysec",
		LastSave: time.Unix(1_700_000_000, 0), LastSaveOK: true, LastSaveDuration: -1, LastWriteOK: true,
	}}
}

func TestPersistenceOff(t *testing.T) {
	ts := startServer(t, Config{})
	c := redistest.Dial(t, ts.addr)
	for _, cmd := range [][]string{{"SAVE"}, {"BGSAVE"}, {"BGREWRITEAOF"}} {
		assert.Equal(t, "-"+errPersistOff+"\r\n", c.DoString(cmd...), cmd[0])
	}
	assert.Equal(t, "-ERR syntax error\r\n", c.DoString("BGSAVE", "now"))
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'save') - can't set immutable config\r\n",
		c.DoString("CONFIG", "SET", "save", "60 1"))
	info := c.DoString("INFO", "persistence")
	assert.Contains(t, info, "aof_enabled:0\r\n")
	assert.Contains(t, info, "rdb_last_bgsave_status:ok\r\n")
	assert.Contains(t, info, fmt.Sprintf("rdb_last_save_time:%d\r\n", ts.srv.start.Unix()))
	assert.NotContains(t, info, "sessiond_persist_file")
	assert.Equal(t, fmt.Sprintf(":%d\r\n", ts.srv.start.Unix()), c.DoString("LASTSAVE"))
}

func TestPersistenceCommands(t *testing.T) {
	p := newFakePersistence()
	ts := startServer(t, Config{Persistence: p})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "+OK\r\n", c.DoString("SAVE"))
	assert.Equal(t, "+Background saving started\r\n", c.DoString("BGSAVE"))
	assert.Equal(t, "+Background append only file rewriting started\r\n", c.DoString("BGREWRITEAOF"))
	p.mu.Lock()
	p.bgErr = ErrSaveInProgress
	p.saveErr = ErrSaveInProgress
	p.mu.Unlock()
	assert.Equal(t, "-ERR Background save already in progress\r\n", c.DoString("BGSAVE"))
	assert.Equal(t, "+Background saving scheduled\r\n", c.DoString("BGSAVE", "SCHEDULE"))
	assert.Equal(t, "-ERR Background save already in progress\r\n", c.DoString("SAVE"))
	assert.Equal(t, "-ERR Background append only file rewriting already in progress\r\n", c.DoString("BGREWRITEAOF"))
	p.mu.Lock()
	p.saveErr = errors.New("open /ro/sessiond.db.tmp: read-only file system")
	p.mu.Unlock()
	assert.Equal(t, "-ERR open /ro/sessiond.db.tmp: read-only file system\r\n", c.DoString("SAVE"))
	assert.Equal(t, ":1700000000\r\n", c.DoString("LASTSAVE"))
}

func TestPersistenceInfo(t *testing.T) {
	p := newFakePersistence()
	p.status.ChangesSinceSave = 12
	p.status.LastSaveOK = false
	p.status.LastSaveDuration = 3 * time.Second
	p.status.Saves = 4
	p.status.LoadedKeys = 1000
	p.status.LoadExpired = 7
	p.status.Err = "disk full"
	ts := startServer(t, Config{Persistence: p})
	c := redistest.Dial(t, ts.addr)
	info := c.DoString("INFO", "persistence")
	for _, line := range []string{
		"loading:0", "rdb_changes_since_last_save:12", "rdb_bgsave_in_progress:0",
		"rdb_last_save_time:1700000000", "rdb_last_bgsave_status:err", "rdb_last_bgsave_time_sec:3",
		"rdb_saves:4", "rdb_last_load_keys_loaded:1000", "rdb_last_load_keys_expired:7",
		"aof_enabled:0", "aof_last_write_status:ok", `sessiond_persist_last_error:"disk full"`,
		"sessiond_persist_file:/var/lib/sessiond/sessiond.db",
	} {
		assert.Contains(t, info, line+"\r\n")
	}

	p.mu.Lock()
	p.status.AppendOnly = true
	p.status.SaveInProgress = true
	p.status.SaveStarted = time.Now().Add(-2 * time.Second)
	p.status.LastWriteOK = false
	p.status.FileBytes = 1234
	p.mu.Unlock()
	info = c.DoString("INFO", "persistence")
	for _, line := range []string{
		"aof_enabled:1", "aof_rewrite_in_progress:1", "rdb_bgsave_in_progress:0",
		"aof_current_rewrite_time_sec:2", "aof_last_write_status:err", "aof_current_size:1234",
	} {
		assert.Contains(t, info, line+"\r\n")
	}
}

func TestPersistenceConfig(t *testing.T) {
	p := newFakePersistence()
	ts := startServer(t, Config{Persistence: p})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "*2\r\n$4\r\nsave\r\n$6\r\n3600 1\r\n", c.DoString("CONFIG", "GET", "save"))
	assert.Equal(t, "*2\r\n$3\r\ndir\r\n$17\r\n/var/lib/sessiond\r\n", c.DoString("CONFIG", "GET", "dir"))
	assert.Equal(t, "*2\r\n$10\r\ndbfilename\r\n$11\r\nsessiond.db\r\n", c.DoString("CONFIG", "GET", "dbfilename"))
	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "save", "60 100"))
	assert.Equal(t, "*2\r\n$4\r\nsave\r\n$6\r\n60 100\r\n", c.DoString("CONFIG", "GET", "save"))
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters\r\n",
		c.DoString("CONFIG", "SET", "save", "bad"))
	assert.Equal(t, "+OK\r\n", c.DoString("CONFIG", "SET", "appendonly", "YES", "appendfsync", "always"))
	assert.Equal(t, "*4\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n",
		c.DoString("CONFIG", "GET", "appendonly", "appendfsync"))
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set immutable config\r\n",
		c.DoString("CONFIG", "SET", "dir", "/tmp"))
}

func TestChangesReachTheTracker(t *testing.T) {
	p := newFakePersistence()
	ts := startServer(t, Config{Persistence: p})
	c := redistest.Dial(t, ts.addr)
	for _, cmd := range [][]string{
		{"SET", "a", "1"}, {"SET", "a", "2", "NX"}, {"GET", "a"}, {"APPEND", "a", "x"}, {"INCR", "n"},
		{"MSET", "m1", "1", "m2", "2"}, {"EXPIRE", "a", "100"}, {"PERSIST", "a"}, {"RENAME", "a", "b"},
		{"COPY", "b", "c", "DB", "2"}, {"DEL", "m1", "nosuch"}, {"GETDEL", "m2"}, {"TTL", "b"},
		{"SELECT", "3"}, {"SETEX", "s", "10", "v"}, {"FLUSHDB"}, {"FLUSHALL"},
	} {
		c.Do(cmd...)
	}
	assert.Equal(t, []string{
		"0:a", "0:a", "0:n", "0:m1", "0:m2", "0:a (deadline)", "0:a (deadline)", "0:a", "0:b",
		"2:c", "0:m1", "0:m2", "3:s",
	}, p.changes())
	p.mu.Lock()
	assert.Equal(t, []int{3, -1}, p.flushed)
	p.mu.Unlock()
}

// assertReplyHeld checks that the reply to the write c just sent is held
// while release is open (for 100 ms), and is want once it is closed.
func assertReplyHeld(t *testing.T, c *redistest.Conn, release chan struct{}, want string) {
	t.Helper()
	got := make(chan string, 1)
	go func() { got <- string(c.MustReadReply()) }()
	select {
	case r := <-got:
		t.Fatalf("reply %q sent before the write was durable", r)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case r := <-got:
		assert.Equal(t, want, r)
	case <-time.After(5 * time.Second):
		t.Fatal("no reply after the write became durable")
	}
}

func TestRepliesWaitForDurability(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		p := newFakePersistence()
		p.release = make(chan struct{})
		ts := startServer(t, Config{Persistence: p, IOModel: model})
		c := redistest.Dial(t, ts.addr)
		// A read is answered at once; a write only once WaitDurable returns.
		assert.Equal(t, "$-1\r\n", c.DoString("GET", "k"))
		c.SendCommand("SET", "k", "v")
		assertReplyHeld(t, c, p.release, "+OK\r\n")
		p.mu.Lock()
		assert.Positive(t, p.waits)
		p.mu.Unlock()
	})
}

func TestValueCodec(t *testing.T) {
	kind, b, err := AppendValue([]byte("prefix:"), ttl.Entry{Kind: kindString, Blob: []byte("session")})
	require.NoError(t, err)
	assert.Equal(t, uint8(kindString), kind)
	assert.Equal(t, "prefix:session", string(b))
	e, ok, err := DecodeValue(kind, []byte("session"), 1234, 0)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, ttl.Entry{Kind: kindString, Blob: []byte("session"), Deadline: 1234}, e)
	_, _, err = DecodeValue(200, nil, 0, 0)
	assert.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "unknown value kind"))
}

func TestSaveNotAllowedInMulti(t *testing.T) {
	p := newFakePersistence()
	ts := startServer(t, Config{Persistence: p})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, "+OK\r\n", c.DoString("MULTI"))
	assert.Equal(t, "-ERR Command not allowed inside a transaction\r\n", c.DoString("SAVE"))
	assert.Equal(t, "+QUEUED\r\n", c.DoString("BGSAVE"))
	assert.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", c.DoString("EXEC"))
	p.mu.Lock()
	assert.Zero(t, p.saves)
	p.mu.Unlock()
}

// holdingPersistence's Save waits for proceed, then ends as a real one
// does: in HoldFlushes.
type holdingPersistence struct {
	*fakePersistence
	srv     *Server
	inSave  chan struct{}
	proceed chan struct{}
}

func (h *holdingPersistence) Save() error {
	close(h.inSave)
	<-h.proceed
	h.srv.HoldFlushes(func() {})
	return nil
}

// TestSaveDoesNotDeadlockWithExec: SAVE gives its hold on the gate up
// while it saves, so an EXEC sent meanwhile runs at once (were the hold
// kept, EXEC would wait for it, and the save, ending in HoldFlushes, for
// EXEC). The clients are on different goroutines or loops, so EXEC's
// reply must come before the save is let go on: no sleeping.
func TestSaveDoesNotDeadlockWithExec(t *testing.T) {
	for _, cfg := range []Config{{IOModel: "goroutine"}, {IOModel: "epoll", IOThreads: 2}} {
		t.Run(cfg.IOModel, func(t *testing.T) {
			if cfg.IOModel == "epoll" && !loopsSupported() {
				t.Skip("no event loops on this platform")
			}
			h := &holdingPersistence{fakePersistence: newFakePersistence(), inSave: make(chan struct{}), proceed: make(chan struct{})}
			cfg.Persistence = h
			ts := startServer(t, cfg, func(s *Server) { h.srv = s })
			// Let the save end before the server's cleanup waits for it,
			// also when the test fails before it does so itself.
			proceed := sync.OnceFunc(func() { close(h.proceed) })
			t.Cleanup(proceed)
			a := redistest.Dial(t, ts.addr)
			b := redistest.Dial(t, ts.addr)
			a.SendCommand("SAVE")
			<-h.inSave
			assert.Equal(t, "+OK\r\n", b.DoString("MULTI"))
			assert.Equal(t, "+QUEUED\r\n", b.DoString("SET", "k", "v"))
			b.SendCommand("EXEC")
			// The connections' read deadline bounds each wait.
			reply := func(c *redistest.Conn, what string) string {
				t.Helper()
				c.SetTimeout(5 * time.Second)
				got, err := c.ReadReply()
				require.NoError(t, err, what)
				return string(got)
			}
			assert.Equal(t, "*1\r\n+OK\r\n", reply(b, "EXEC waited for SAVE: they deadlock"))
			proceed()
			assert.Equal(t, "+OK\r\n", reply(a, "SAVE did not end"))
		})
	}
}

// TestDeadlineChangesReachTheTracker: a command that changes only a key's
// deadline (the "expire" and "persist" events) is reported as such; one
// that writes the value too, or deletes the key with a past deadline, is a
// full change. A deadline change still fails a WATCH.
func TestDeadlineChangesReachTheTracker(t *testing.T) {
	p := newFakePersistence()
	ts := startServer(t, Config{Persistence: p})
	c := redistest.Dial(t, ts.addr)
	future := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	for _, cmd := range [][]string{
		{"SET", "k", "v", "EX", "10"}, // set + expire events: full
		{"GETEX", "k", "EX", "100"}, {"GETEX", "k", "PX", "100000"}, {"GETEX", "k", "EXAT", future},
		{"GETEX", "k", "PXAT", future + "000"}, {"GETEX", "k", "PERSIST"},
		{"GETEX", "k"}, {"GETEX", "k", "PERSIST"}, // no change: not reported
		{"EXPIRE", "k", "100"}, {"PEXPIRE", "k", "100000"}, {"EXPIREAT", "k", future},
		{"PEXPIREAT", "k", future + "000"}, {"PERSIST", "k"}, {"PERSIST", "k"},
		{"SETEX", "s", "10", "v"}, {"SET", "s", "w", "KEEPTTL"}, {"PSETEX", "s", "10000", "v"},
		{"SET", "s", "v", "PXAT", future + "000"},
		{"EXPIRE", "s", "-1"},                          // deletes: full
		{"SET", "g", "v"}, {"GETEX", "g", "EXAT", "1"}, // deletes: full
		{"HSET", "h", "f", "v"}, {"EXPIRE", "h", "100"},
	} {
		c.Do(cmd...)
	}
	d := "0:k (deadline)"
	assert.Equal(t, []string{
		"0:k", d, d, d, d, d, d, d, d, d, d,
		"0:s", "0:s", "0:s", "0:s", "0:s", "0:g", "0:g", "0:h", "0:h (deadline)",
	}, p.changes())

	// WATCH sees a deadline change, as in Redis.
	c.Do("SET", "w", "v")
	assert.Equal(t, "+OK\r\n", c.DoString("WATCH", "w"))
	other := redistest.Dial(t, ts.addr)
	assert.Equal(t, ":1\r\n", other.DoString("EXPIRE", "w", "100"))
	assert.Equal(t, "+OK\r\n", c.DoString("MULTI"))
	assert.Equal(t, "+QUEUED\r\n", c.DoString("GET", "w"))
	assert.Equal(t, "*-1\r\n", c.DoString("EXEC"))
}

func TestScriptWritesWaitForDurability(t *testing.T) {
	p := newFakePersistence()
	p.release = make(chan struct{})
	ts := startServer(t, Config{Persistence: p, IOModel: "goroutine"})
	c := redistest.Dial(t, ts.addr)
	assert.Equal(t, ":1\r\n", c.DoString("EVAL", "return 1", "0")) // no write: no wait
	c.SendCommand("EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", "k")
	assertReplyHeld(t, c, p.release, "+OK\r\n")
	assert.Equal(t, []string{"0:k"}, p.changes())
}

// TestHoldFlushesBlocksNoClient holds HoldFlushes while 70 clients (every
// reader slot of the gate, and more) run commands: none waits for it, as
// a persistence flush holds it for a slice of its work at a time. (It used
// to share a slot with the clients whose id ended in 63: an event loop
// serving one of them stopped for the whole catch-up.)
func TestHoldFlushesBlocksNoClient(t *testing.T) {
	var srv *Server
	ts := startServer(t, Config{}, func(s *Server) { srv = s })
	release := make(chan struct{})
	held := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		srv.HoldFlushes(func() {
			close(held)
			<-release
		})
	})
	defer wg.Wait()
	defer close(release)
	<-held
	for i := range gateSlots + 6 {
		c := redistest.Dial(t, ts.addr)
		c.SetTimeout(5 * time.Second) // a client stuck behind HoldFlushes fails here
		require.Equal(t, "+OK\r\n", c.DoString("SET", fmt.Sprint("k", i), "v"), "client %d", i)
	}
}
