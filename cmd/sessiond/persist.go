package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/sessiond/sessiond/persist"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/ttl"
)

// The wiring of persistence: persist knows nothing of ttl or server, so
// the store is adapted here to persist's Source and Sink, and the Manager
// to the server's Persistence.
var (
	_ persist.Source     = (*storeSource)(nil)
	_ persist.Sink       = (*storeSink)(nil)
	_ server.Persistence = (*persistAdapter)(nil)
)

// storeSource reads the store for persist, with values encoded by the
// server. A capture and CaptureKeys may run at the same time, but neither
// runs twice at once (persist's contract), so each has a buffer.
type storeSource struct {
	store   *ttl.Store
	srv     *server.Server // set once the server exists, before Run
	partBuf []byte
	keysBuf []byte
	kept    []keptPart // per shard, during a capture
}

// keptPart holds the records of a shard that a capture preserved (keys
// changed before it reached them), until CapturePart emits them.
type keptPart struct {
	mu   sync.Mutex // guards recs and err; taken under the shard's lock
	recs []persist.Record
	err  error // a key that could not be encoded
	// scratch encodes objects and chunk holds the copies recs point into;
	// both are used under the shard's lock.
	scratch, chunk []byte
}

// keptChunk is the size of the chunks preserved keys are copied into.
const keptChunk = 64 << 10

// keep copies b into the part's chunk, starting a new one when it is
// full, so preserving a key on an event loop costs an allocation per
// 64 KiB rather than per key. A full chunk is left, never grown, so the
// slices handed out stay valid.
func (k *keptPart) keep(b []byte) []byte {
	if cap(k.chunk)-len(k.chunk) < len(b) {
		k.chunk = make([]byte, 0, max(keptChunk, len(b)))
	}
	n := len(k.chunk)
	k.chunk = append(k.chunk, b...)
	return k.chunk[n:len(k.chunk):len(k.chunk)]
}

func (s *storeSource) Parts() int { return s.store.Shards() }

func (s *storeSource) BeginCapture() error {
	if len(s.kept) != s.store.Shards() {
		s.kept = make([]keptPart, s.store.Shards())
	}
	return s.store.BeginCapture(s.preserve)
}

func (s *storeSource) EndCapture() {
	s.store.EndCapture()
	for i := range s.kept {
		k := &s.kept[i]
		k.mu.Lock()
		k.recs, k.scratch, k.chunk, k.err = nil, nil, nil, nil
		k.mu.Unlock()
	}
}

// preserve keeps a copy of a key the capture has not reached yet, as it
// was, before its change: called by the goroutine that changes it (an
// event loop) with the shard locked, so it only copies.
func (s *storeSource) preserve(shard, db int, key []byte, e ttl.Entry) {
	k := &s.kept[shard]
	var r persist.Record
	if err := record(&r, &k.scratch, db, key, e); err != nil {
		k.mu.Lock()
		k.err = err // the capture fails with it, as on a key it visits
		k.mu.Unlock()
		return
	}
	r.Key, r.Value = k.keep(r.Key), k.keep(r.Value)
	if cap(k.scratch) > 1<<20 {
		k.scratch = nil
	}
	k.mu.Lock()
	k.recs = append(k.recs, r)
	k.mu.Unlock()
}

// CapturePart emits a slice of the shard, then the keys of the shard
// preserved so far. That order matters: a key changed between the two
// steps of the other order would be preserved after the drain and marked
// visited before the scan, and the shard's last call would leave it out;
// once a scan has finished the shard, nothing of it is left to preserve.
func (s *storeSource) CapturePart(i int, cursor uint64, limit int, emit func(*persist.Record) error) (uint64, error) {
	var err error
	var r persist.Record
	next := s.store.CaptureShard(i, cursor, limit, func(db int, key []byte, e ttl.Entry) {
		if err == nil {
			if err = record(&r, &s.partBuf, db, key, e); err == nil {
				err = emit(&r)
			}
		}
	})
	if cap(s.partBuf) > 1<<20 {
		s.partBuf = nil
	}
	if err != nil || i >= len(s.kept) {
		return next, err
	}
	k := &s.kept[i]
	k.mu.Lock()
	recs, err := k.recs, k.err
	k.recs = nil
	k.mu.Unlock()
	if err != nil {
		return 0, err
	}
	for j := range recs {
		if err := emit(&recs[j]); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// CaptureKeys emits the keys take returns in slices of 256, each while
// no flush, EXEC or script runs (HoldFlushes), so that no command waits
// long behind it.
func (s *storeSource) CaptureKeys(take func() []persist.Key, emit func(*persist.Record) error) error {
	var keys []persist.Key
	s.srv.HoldFlushes(func() { keys = take() })
	const slice = 256
	for len(keys) > 0 {
		n := min(slice, len(keys))
		var err error
		s.srv.HoldFlushes(func() {
			for _, k := range keys[:n] {
				if err = s.captureKey(k, emit); err != nil {
					return
				}
			}
		})
		if err != nil {
			return err
		}
		keys = keys[n:]
		runtime.Gosched() // let the event loops run
	}
	return nil
}

// record fills r with the OpPut record of e, encoding object kinds into
// buf. It runs with e's shard locked.
func record(r *persist.Record, buf *[]byte, db int, key []byte, e ttl.Entry) error {
	*r = persist.Record{Op: persist.OpPut, DB: db, Key: key, Kind: uint8(e.Kind), Deadline: e.Deadline}
	if e.Obj == nil {
		r.Value = e.Blob
		return nil
	}
	kind, val, err := server.AppendValue((*buf)[:0], e)
	if err != nil {
		return fmt.Errorf("key %q of db %d: %w", key, db, err)
	}
	*buf = val
	r.Kind, r.Value = kind, val
	return nil
}

func (s *storeSource) captureKey(k persist.Key, emit func(*persist.Record) error) error {
	tx := s.store.Lock(k.Key)
	defer tx.Unlock()
	e, ok := tx.Get(k.DB, k.Key)
	if !ok {
		return emit(&persist.Record{Op: persist.OpDelete, DB: k.DB, Key: k.Key})
	}
	if k.DeadlineOnly { // the file has its value: the deadline will do
		return emit(&persist.Record{Op: persist.OpExpire, DB: k.DB, Key: k.Key, Deadline: e.Deadline})
	}
	var r persist.Record
	if err := record(&r, &s.keysBuf, k.DB, k.Key, e); err != nil {
		return err
	}
	return emit(&r)
}

// Keys returns the keys the store holds.
func (k *storeSink) Keys() int64 {
	var n int64
	for _, c := range k.store.Stats().Keys {
		n += int64(c)
	}
	return n
}

// storeSink restores records into the store at start-up.
type storeSink struct {
	store     *ttl.Store
	databases int
	now       int64
}

func (k *storeSink) Restore(r *persist.Record) error {
	if r.DB >= k.databases {
		return fmt.Errorf("the file has keys in database %d but --databases is %d", r.DB, k.databases)
	}
	switch r.Op {
	case persist.OpPut:
		e, ok, err := server.DecodeValue(r.Kind, r.Value, r.Deadline, k.now)
		if err != nil {
			return fmt.Errorf("key %q of db %d: %w", r.Key, r.DB, err)
		}
		tx := k.store.Lock(r.Key)
		defer tx.Unlock()
		switch {
		case !ok:
			tx.Delete(r.DB, r.Key)
		case e.Obj != nil:
			tx.SetObject(r.DB, r.Key, e.Kind, e.Obj, e.Deadline)
		default:
			tx.Set(r.DB, r.Key, e.Kind, e.Blob, e.Deadline)
		}
	case persist.OpDelete:
		tx := k.store.Lock(r.Key)
		defer tx.Unlock()
		tx.Delete(r.DB, r.Key)
	case persist.OpFlushDB:
		k.store.Flush(r.DB)
	case persist.OpFlushAll:
		k.store.Flush(-1)
	}
	return nil
}

// persistence adapts a persist.Manager to the server.
type persistAdapter struct {
	*persist.Manager
	dir, dbfilename string
}

func (p *persistAdapter) Save() error           { return saveErr(p.Manager.Save()) }
func (p *persistAdapter) BackgroundSave() error { return saveErr(p.Manager.BackgroundSave()) }

func saveErr(err error) error {
	if errors.Is(err, persist.ErrSaveInProgress) {
		return server.ErrSaveInProgress
	}
	return err
}

func (p *persistAdapter) Status() server.PersistStatus {
	st := p.Stats()
	ps := server.PersistStatus{
		Dir:               p.dir,
		DBFilename:        p.dbfilename,
		Save:              persist.FormatSaveRules(st.Save),
		AppendOnly:        st.AppendOnly,
		AppendFsync:       st.Fsync,
		ChangesSinceSave:  st.ChangesSinceSave,
		SaveInProgress:    st.SaveInProgress,
		SaveStarted:       st.SaveStarted,
		LastSave:          st.LastSave,
		LastSaveOK:        st.LastSaveOK,
		LastSaveDuration:  st.LastSaveDuration,
		Saves:             st.Saves,
		LoadedKeys:        st.Loaded.Keys,
		LoadExpired:       st.Loaded.Expired,
		LoadDuration:      st.Loaded.Duration,
		DirtyKeys:         st.DirtyKeys,
		Flushes:           st.Flushes,
		FlushFailures:     st.FlushFailures,
		LastFlushRecords:  st.LastFlushRecords,
		LastFlushDuration: st.LastFlushDuration,
		LastWriteOK:       st.LastWriteOK,
		FileBytes:         st.FileBytes,
		BaseBytes:         st.BaseBytes,
	}
	if st.Err != nil {
		ps.Err = st.Err.Error()
	}
	return ps
}

func (p *persistAdapter) SetConfig(name, value string) error {
	switch name {
	case "save":
		rules, err := persist.ParseSaveRules(value)
		if err != nil {
			return err // persist.ErrSaveRules: Redis's wording
		}
		p.SetSaveRules(rules)
		return nil
	case "appendfsync":
		if err := p.SetFsync(value); err != nil {
			return errors.New("argument(s) must be one of the following: everysec, always, no")
		}
		return nil
	case "appendonly":
		return p.SetAppendOnly(value == "yes")
	}
	return fmt.Errorf("can't set %s", name)
}

// persistOptions are the persistence flags.
type persistOptions struct {
	dir         string
	dbfilename  string
	save        optString
	appendOnly  string
	appendFsync string
	saveCPU     int // percent of one core
	discard     bool
}

// optString is a string flag that remembers whether it was given.
type optString struct {
	val string
	set bool
}

func (o *optString) String() string     { return o.val }
func (o *optString) Set(v string) error { o.val, o.set = v, true; return nil }

// enabled reports whether the flags ask for persistence: a directory, save
// rules or the write-behind mode.
func (o *persistOptions) enabled() bool {
	return o.dir != "" || (o.save.set && strings.TrimSpace(o.save.val) != "") || strings.EqualFold(o.appendOnly, "yes")
}

// config turns the flags into a persist.Config (without Logger).
func (o *persistOptions) config() (persist.Config, error) {
	var cfg persist.Config
	switch strings.ToLower(o.appendOnly) {
	case "yes":
		cfg.AppendOnly = true
	case "no":
	default:
		return cfg, fmt.Errorf("appendonly must be yes or no")
	}
	switch strings.ToLower(o.appendFsync) {
	case persist.FsyncEverySec, persist.FsyncAlways, persist.FsyncNo:
		cfg.Fsync = strings.ToLower(o.appendFsync)
	default:
		return cfg, fmt.Errorf("appendfsync must be everysec, always or no")
	}
	if o.dbfilename == "" || strings.ContainsRune(o.dbfilename, filepath.Separator) {
		return cfg, fmt.Errorf("dbfilename must be a file name, without a directory")
	}
	cfg.Save = persist.DefaultSaveRules
	if o.save.set {
		rules, err := persist.ParseSaveRules(o.save.val)
		if err != nil {
			return cfg, fmt.Errorf("save: %q: want \"<seconds> <changes> ...\" pairs, or \"\" for none", o.save.val)
		}
		cfg.Save = rules
	}
	dir := o.dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return cfg, err
	}
	o.dir = abs
	cfg.Path = filepath.Join(abs, o.dbfilename)
	cfg.DiscardUnreadable = o.discard
	if o.saveCPU < 1 || o.saveCPU > 100 {
		return cfg, errors.New("save-cpu-percent must be between 1 and 100")
	}
	cfg.SaveCPU = float64(o.saveCPU) / 100
	return cfg, nil
}

// openPersistence opens the data file and loads it into store, when the
// flags ask for persistence; otherwise it returns nils.
func openPersistence(o *options, store *ttl.Store, log *slog.Logger) (*persist.Manager, *storeSource, error) {
	enabled := o.persist.enabled()
	cfg, err := o.persist.config() // validated even when off
	if err != nil || !enabled {
		return nil, nil, err
	}
	cfg.Logger = log
	src := &storeSource{store: store}
	pm, err := persist.Open(cfg, src)
	if err != nil {
		return nil, nil, err
	}
	st, err := pm.Load(&storeSink{store: store, databases: o.databases, now: ttl.Now()})
	if err != nil {
		_ = pm.Close(false)
		store.Flush(-1)
		return nil, nil, err
	}
	store.AddExpired(uint64(st.Expired))
	log.Info("DB loaded from disk", "file", pm.Path(), "keys", st.Keys, "expired", st.Expired,
		"seconds", fmt.Sprintf("%.3f", st.Duration.Seconds()))
	return pm, src, nil
}

// finalSave reports whether shutdown ends with a snapshot: as Redis does,
// when snapshot rules are configured, unless SHUTDOWN NOSAVE, and always
// for SHUTDOWN SAVE (asked > 0). The write-behind mode writes its pending
// changes regardless.
func finalSave(pm *persist.Manager, asked int) bool {
	return asked > 0 || asked == 0 && len(pm.Stats().Save) > 0
}
