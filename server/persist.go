package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/server/internal/resp"
	"github.com/sessiond/sessiond/ttl"
)

// Persistence: the server's side of sessiond's data file (package persist,
// wired by cmd/sessiond). The server reports changes through a
// ChangeTracker, answers SAVE, BGSAVE, LASTSAVE, INFO persistence and CONFIG
// of the persistence settings through a Persistence, and offers the
// encoding of values and a way to capture keys consistently with database
// flushes.

// ChangeTracker learns which keys the server changed. KeyChanged is called
// by every write (through signalKey), with the key's shard locked: it must
// be quick and must not use the store. DeadlineChanged is called instead
// when the write changed only the key's deadline (the "expire" and
// "persist" events: EXPIRE and its variants, PERSIST, GETEX with an
// option), under the same contract. DBFlushed is called after FLUSHDB
// (db ≥ 0) or FLUSHALL (db < 0), while no HoldFlushes section runs.
type ChangeTracker interface {
	KeyChanged(db int, key []byte)
	DeadlineChanged(db int, key []byte)
	DBFlushed(db int)
}

// Persistence is the persistence engine as the commands see it.
type Persistence interface {
	ChangeTracker
	// Save writes a snapshot and returns when it is durable (SAVE).
	Save() error
	// BackgroundSave starts one (BGSAVE); ErrSaveInProgress if one runs.
	BackgroundSave() error
	// WaitDurable returns once the changes reported so far are durable,
	// when the policy asks writers to wait (appendfsync always), else at
	// once. The server calls it before sending the replies of a client
	// whose commands changed something (goroutine transport).
	WaitDurable()
	// DurableTarget and OnDurable are WaitDurable without blocking, for
	// the event loops: wait is false when the policy asks for no wait;
	// else fn is called once the changes up to seq are durable (or failed
	// to be written, or persistence closed), from another goroutine, or
	// at once.
	DurableTarget() (seq uint64, wait bool)
	OnDurable(seq uint64, fn func())
	// Status reports the figures of INFO persistence and CONFIG GET.
	Status() PersistStatus
	// SetConfig applies CONFIG SET of save, appendonly or appendfsync; the
	// error's text is the reason shown to the client.
	SetConfig(name, value string) error
}

// ErrSaveInProgress is returned by Persistence.Save and BackgroundSave
// while a save runs.
//
//lint:ignore ST1005 Redis's wording, shown to clients as is
var ErrSaveInProgress = errors.New("Background save already in progress")

// PersistStatus is what INFO persistence and CONFIG GET report.
type PersistStatus struct {
	Dir, DBFilename  string
	Save             string // rules, as CONFIG GET save shows them
	AppendOnly       bool
	AppendFsync      string
	ChangesSinceSave int64
	SaveInProgress   bool
	SaveStarted      time.Time
	LastSave         time.Time
	LastSaveOK       bool
	LastSaveDuration time.Duration // < 0: none yet
	Saves            int64
	LoadedKeys       int64
	LoadExpired      int64
	LoadDuration     time.Duration
	// Write-behind figures.
	DirtyKeys         int
	Flushes           int64
	FlushFailures     int64
	LastFlushRecords  int
	LastFlushDuration time.Duration
	LastWriteOK       bool
	FileBytes         int64
	BaseBytes         int64
	// Err is the persistence error still in force ("" if none).
	Err string
}

// signalChange reports a change of key to the tracker.
func (s *Server) signalChange(db int, key []byte) {
	if s.persist != nil {
		s.persist.KeyChanged(db, key)
	}
}

// signalDeadline reports a change of key's deadline alone to the tracker.
func (s *Server) signalDeadline(db int, key []byte) {
	if s.persist != nil {
		s.persist.DeadlineChanged(db, key)
	}
}

// flushStore empties db (all databases when db < 0) and reports it, as
// one step for HoldFlushes.
func (s *Server) flushStore(c *client, db int) {
	s.flushMu.Lock()
	s.store.Flush(db)
	if s.persist != nil {
		s.persist.DBFlushed(db)
	}
	s.flushMu.Unlock()
	c.unsynced = true
}

// HoldFlushes runs fn while no FLUSHDB or FLUSHALL, EXEC or script runs,
// so that what a ChangeTracker was told and what fn reads of the store
// agree. It waits for a running EXEC or script, even a busy one (it is
// called from persistence's goroutines, never from an event loop). fn may
// lock store shards; it must not wait for commands.
func (s *Server) HoldFlushes(fn func()) {
	s.gate.mu.RLock(persistSlot)
	s.flushMu.RLock()
	defer func() {
		s.flushMu.RUnlock()
		s.gate.mu.RUnlock(persistSlot)
	}()
	fn()
}

// ShutdownSave tells what the SHUTDOWN command asked of the final save:
// 1 for SHUTDOWN SAVE (save even without save rules), -1 for NOSAVE, 0
// when it said neither (or the shutdown came from a signal).
func (s *Server) ShutdownSave() int { return int(s.shutdownSave.Load()) }

// awaitDurable holds a client's replies until its changes are durable,
// when the persistence policy asks for it.
func (c *client) awaitDurable() {
	if !c.unsynced {
		return
	}
	c.unsynced = false
	if p := c.srv.persist; p != nil {
		p.WaitDurable()
	}
}

// AppendValue appends the persistent encoding of e's value to dst and
// returns the kind to store beside it: a string's bytes as they are, an
// object kind's appendBinary. Call it with e's shard locked.
func AppendValue(dst []byte, e ttl.Entry) (kind uint8, out []byte, err error) {
	if e.Obj == nil {
		return uint8(e.Kind), append(dst, e.Blob...), nil
	}
	po, ok := e.Obj.(persistedObject)
	if !ok {
		return 0, dst, fmt.Errorf("server: kind %d cannot be persisted", e.Kind)
	}
	return uint8(e.Kind), po.appendBinary(dst), nil
}

// DecodeValue rebuilds a value from AppendValue's encoding: an Entry with
// Blob (aliasing b) for byte kinds or Obj for object kinds, and deadline.
// Parts of an object already past now are dropped; ok is false when
// nothing of the value is left.
func DecodeValue(kind uint8, b []byte, deadline, now int64) (e ttl.Entry, ok bool, err error) {
	e = ttl.Entry{Kind: ttl.Kind(kind), Deadline: deadline}
	switch ttl.Kind(kind) {
	case kindString:
		e.Blob = b
		return e, true, nil
	case kindHash, kindSet, kindZSet, kindList:
		obj, err := decodeObject(ttl.Kind(kind), b, now)
		if errors.Is(err, errObjectExpired) {
			return e, false, nil // every part expired: nothing to store
		}
		if err != nil {
			return e, false, err
		}
		e.Obj = obj
		return e, obj != nil, nil
	}
	return e, false, fmt.Errorf("server: unknown value kind %d", kind)
}

func (s *Server) persistCommands() []*command {
	srv := func(name string, arity int, flags cmdFlags, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags, group: "server", since: since, summary: summary, run: run}
	}
	return []*command{
		srv("save", 1, flagAdmin|flagNoScript|flagNoMulti, "1.0.0", "Synchronously saves the database(s) to disk.", s.cmdSave),
		srv("bgsave", -1, flagAdmin|flagNoScript, "1.0.0", "Asynchronously saves the database(s) to disk.", s.cmdBGSave),
		srv("bgrewriteaof", 1, flagAdmin|flagNoScript, "1.0.0", "Asynchronously rewrites the append-only file to disk.", s.cmdBGRewriteAOF),
	}
}

const errPersistOff = "ERR persistence is off (start sessiond with --dir, --save or --appendonly yes)"

func (s *Server) cmdSave(c *client, _ [][]byte) {
	if c.inExec {
		// The save ends by reading changed keys while no EXEC runs: this
		// one would wait for itself. (queue refuses SAVE in MULTI already.)
		c.w.Error("ERR Command not allowed inside a transaction")
		return
	}
	if s.persist == nil {
		c.w.Error(errPersistOff)
		return
	}
	// The save ends in HoldFlushes, which takes the gate shared: waiting
	// for it while holding the gate would deadlock with an EXEC queued for
	// the gate meanwhile (a pending writer blocks new readers). SAVE
	// touches no key, so it gives its hold up, as exclusive does.
	if c.gateShared {
		c.gateShared = false
		s.gate.mu.RUnlock(c.gateSlot())
	}
	err := s.persist.Save()
	if err != nil {
		s.saveFailed(c, err)
		return
	}
	c.w.Status("OK")
}

func (s *Server) cmdBGSave(c *client, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !eqFold(args[1], "schedule")) {
		c.w.Error(errSyntax)
		return
	}
	if s.persist == nil {
		c.w.Error(errPersistOff)
		return
	}
	if err := s.persist.BackgroundSave(); err != nil {
		if errors.Is(err, ErrSaveInProgress) && len(args) == 2 {
			c.w.Status("Background saving scheduled")
			return
		}
		s.saveFailed(c, err)
		return
	}
	c.w.Status("Background saving started")
}

func (s *Server) cmdBGRewriteAOF(c *client, _ [][]byte) {
	if s.persist == nil {
		c.w.Error(errPersistOff)
		return
	}
	if err := s.persist.BackgroundSave(); err != nil {
		if errors.Is(err, ErrSaveInProgress) {
			c.w.Error("ERR Background append only file rewriting already in progress")
			return
		}
		s.saveFailed(c, err)
		return
	}
	c.w.Status("Background append only file rewriting started")
}

func (s *Server) saveFailed(c *client, err error) {
	if errors.Is(err, ErrSaveInProgress) {
		c.w.Error("ERR " + ErrSaveInProgress.Error())
		return
	}
	s.log.Warn("save failed", "err", err)
	c.w.Error("ERR " + sanitize(err.Error()))
}

// lastSave is LASTSAVE's answer and INFO's rdb_last_save_time.
func (s *Server) lastSave() int64 {
	if s.persist == nil {
		return s.start.Unix()
	}
	return s.persist.Status().LastSave.Unix()
}

// infoPersistence writes INFO's Persistence section.
func (s *Server) infoPersistence(kv func(string, any)) {
	var st PersistStatus
	if s.persist != nil {
		st = s.persist.Status()
	} else {
		st = PersistStatus{LastSave: s.start, LastSaveOK: true, LastSaveDuration: -1, LastWriteOK: true}
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	okErr := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "err"
	}
	secs := func(d time.Duration) int64 {
		if d < 0 {
			return -1
		}
		return int64(d / time.Second)
	}
	current := int64(-1)
	if st.SaveInProgress {
		current = int64(time.Since(st.SaveStarted) / time.Second)
	}
	kv("loading", 0)
	kv("async_loading", 0)
	kv("current_cow_peak", 0)
	kv("current_cow_size", 0)
	kv("current_cow_size_age", 0)
	kv("current_fork_perc", "0.00")
	kv("current_save_keys_processed", 0)
	kv("current_save_keys_total", 0)
	kv("rdb_changes_since_last_save", st.ChangesSinceSave)
	kv("rdb_bgsave_in_progress", b2i(st.SaveInProgress && !st.AppendOnly))
	kv("rdb_last_save_time", st.LastSave.Unix())
	kv("rdb_last_bgsave_status", okErr(st.LastSaveOK))
	kv("rdb_last_bgsave_time_sec", secs(st.LastSaveDuration))
	if st.AppendOnly {
		kv("rdb_current_bgsave_time_sec", -1)
	} else {
		kv("rdb_current_bgsave_time_sec", current)
	}
	kv("rdb_saves", st.Saves)
	kv("rdb_last_cow_size", 0)
	kv("rdb_last_load_keys_expired", st.LoadExpired)
	kv("rdb_last_load_keys_loaded", st.LoadedKeys)
	kv("aof_enabled", b2i(st.AppendOnly))
	kv("aof_rewrite_in_progress", b2i(st.SaveInProgress && st.AppendOnly))
	kv("aof_rewrite_scheduled", 0)
	if st.AppendOnly {
		kv("aof_last_rewrite_time_sec", secs(st.LastSaveDuration))
		kv("aof_current_rewrite_time_sec", current)
	} else {
		kv("aof_last_rewrite_time_sec", -1)
		kv("aof_current_rewrite_time_sec", -1)
	}
	kv("aof_last_bgrewrite_status", okErr(st.LastSaveOK))
	kv("aof_rewrites", b2i(st.AppendOnly)*int(st.Saves))
	kv("aof_rewrites_consecutive_failures", 0)
	kv("aof_last_write_status", okErr(st.LastWriteOK))
	kv("aof_last_cow_size", 0)
	kv("module_fork_in_progress", 0)
	kv("module_fork_last_cow_size", 0)
	if st.AppendOnly {
		kv("aof_current_size", st.FileBytes)
		kv("aof_base_size", st.BaseBytes)
		kv("aof_pending_rewrite", 0)
		kv("aof_buffer_length", 0)
		kv("aof_pending_bio_fsync", 0)
		kv("aof_delayed_fsync", 0)
	}
	if s.persist == nil {
		return
	}
	// sessiond's own figures.
	kv("sessiond_persist_file", strings.TrimSuffix(st.Dir, "/")+"/"+st.DBFilename)
	kv("sessiond_persist_file_bytes", st.FileBytes)
	kv("sessiond_load_time_ms", st.LoadDuration.Milliseconds())
	kv("sessiond_aof_dirty_keys", st.DirtyKeys)
	kv("sessiond_aof_flushes", st.Flushes)
	kv("sessiond_aof_flush_failures", st.FlushFailures)
	kv("sessiond_aof_last_flush_records", st.LastFlushRecords)
	kv("sessiond_aof_last_flush_usec", st.LastFlushDuration.Microseconds())
	kv("sessiond_persist_last_error", strconv.Quote(st.Err))
}

// usePersistence makes the persistence parameters of CONFIG GET/SET read
// and change p's settings (without p they stay fixed at their defaults).
func (st *settings) usePersistence(p Persistence) {
	if p == nil {
		return
	}
	for _, name := range []string{"save", "appendonly", "appendfsync", "dir", "dbfilename"} {
		prm := st.params[name]
		prm.get = func() string {
			ps := p.Status()
			switch name {
			case "save":
				return ps.Save
			case "appendonly":
				return yesNo(ps.AppendOnly)
			case "appendfsync":
				return ps.AppendFsync
			case "dir":
				return ps.Dir
			}
			return ps.DBFilename
		}
		switch name {
		case "save":
			prm.set = func(v string) error { return p.SetConfig(name, v) }
		case "appendfsync", "appendonly":
			prm.set = func(v string) error { return p.SetConfig(name, strings.ToLower(v)) }
		}
	}
}

// KindName names a value kind as TYPE does ("string", "hash", ...).
func KindName(kind uint8) string { return typeName(ttl.Kind(kind)) }

// commandExporter is implemented by object kinds whose values can be
// written out as the commands that rebuild them (for sessiond
// export-snapshot --format resp): e.g. HSET key f v ... and HPEXPIREAT
// for fields with deadlines.
type commandExporter interface {
	exportCommands(key []byte) [][][]byte
}

// RestoreCommands returns the commands that rebuild a value under key on
// a Redis server or sessiond, from AppendValue's encoding: SET … PXAT for
// a string; for an object kind, DEL, the kind's own commands and
// PEXPIREAT. Parts of an object already past now are left out.
func RestoreCommands(kind uint8, payload, key []byte, deadline, now int64) ([][][]byte, error) {
	pxat := []byte(strconv.FormatInt(deadline, 10))
	if ttl.Kind(kind) == kindString {
		cmd := [][]byte{[]byte("SET"), key, payload}
		if deadline != 0 {
			cmd = append(cmd, []byte("PXAT"), pxat)
		}
		return [][][]byte{cmd}, nil
	}
	e, ok, err := DecodeValue(kind, payload, deadline, now)
	if err != nil || !ok {
		return nil, err
	}
	ex, isEx := e.Obj.(commandExporter)
	if !isEx {
		return nil, fmt.Errorf("server: %s values cannot be exported as commands yet", KindName(kind))
	}
	cmds := append([][][]byte{{[]byte("DEL"), key}}, ex.exportCommands(key)...)
	if deadline != 0 {
		cmds = append(cmds, [][]byte{[]byte("PEXPIREAT"), key, pxat})
	}
	return cmds, nil
}

// exportBatch bounds the members of one exported command.
const exportBatch = 128

// cmdBatches collects the commands name key member... of an export, a
// command per exportBatch members (a member is one or more arguments).
type cmdBatches struct {
	name, key []byte
	cmds      [][][]byte
	cur       [][]byte
	members   int
}

func (b *cmdBatches) add(member ...[]byte) {
	if b.cur == nil {
		b.cur = [][]byte{b.name, b.key}
	}
	b.cur = append(b.cur, member...)
	if b.members++; b.members == exportBatch {
		b.cmds, b.cur, b.members = append(b.cmds, b.cur), nil, 0
	}
}

// done returns the commands.
func (b *cmdBatches) done() [][][]byte {
	if b.cur != nil {
		b.cmds = append(b.cmds, b.cur)
	}
	return b.cmds
}

// exportCommands writes HSET commands of up to exportBatch fields, then
// HPEXPIREAT for each field with a deadline.
func (h *hashObj) exportCommands(key []byte) [][][]byte {
	b := cmdBatches{name: []byte("HSET"), key: key}
	var ttls [][][]byte
	h.each(func(f, v []byte, dl int64) bool {
		b.add(f, v)
		if dl != 0 {
			ttls = append(ttls, [][]byte{[]byte("HPEXPIREAT"), key, strconv.AppendInt(nil, dl, 10), []byte("FIELDS"), []byte("1"), f})
		}
		return true
	})
	return append(b.done(), ttls...)
}

// exportCommands writes SADD commands of up to exportBatch members.
func (s *setObj) exportCommands(key []byte) [][][]byte {
	b := cmdBatches{name: []byte("SADD"), key: key}
	s.each(func(m string) { b.add([]byte(m)) })
	return b.done()
}

// exportCommands writes ZADD commands of up to exportBatch members, scores
// as ZSCORE answers them (17 significant digits, exact for a float64).
func (z *zsetObj) exportCommands(key []byte) [][][]byte {
	b := cmdBatches{name: []byte("ZADD"), key: key}
	for n := z.zsl.first(); n != nil; n = n.level[0].forward {
		b.add(resp.AppendDouble(nil, n.score), []byte(n.member))
	}
	return b.done()
}
