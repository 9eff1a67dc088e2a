package persist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Source is what a Manager reads the data set from: the store, seen
// through the server's encoding of values. Its methods are called from the
// Manager's goroutines; a capture (BeginCapture … EndCapture) and
// CaptureKeys may run at the same time, but neither runs twice at once.
type Source interface {
	// Parts is the number of parts CapturePart captures (the store's
	// shards).
	Parts() int
	// BeginCapture fixes the moment a snapshot shows: from then until
	// EndCapture, CapturePart emits every key as it was at that moment,
	// whatever changes meanwhile, and nothing written after it. It must
	// not wait for I/O or hold a lock past its return.
	BeginCapture() error
	// CapturePart calls emit for up to limit keys of part i from cursor
	// on (0 to begin), and for the keys of the part that changed since the
	// last call before it reached them (as they were), and returns the
	// cursor to continue from, 0 once the part is done. It holds the
	// part's lock for one call at most. The record and its slices are
	// valid only during the call; an error from emit stops the capture
	// and is returned.
	CapturePart(i int, cursor uint64, limit int, emit func(r *Record) error) (uint64, error)
	// EndCapture ends the capture BeginCapture began, done or not.
	EndCapture()
	// CaptureKeys calls take, then emit with the current state of each key
	// take returned: an OpPut record, or an OpDelete when the key is gone,
	// or an OpExpire with its current deadline when the Key says only its
	// deadline changed (Key.DeadlineOnly) and it exists.
	// take must run while no database flush can run, so that the flushes
	// take reports come before the values emitted. take must not be
	// called with a store lock held.
	CaptureKeys(take func() []Key, emit func(r *Record) error) error
}

// Key names a key of a database.
type Key struct {
	DB  int
	Key []byte
	// DeadlineOnly says that only the key's deadline changed since its
	// state was last written (DeadlineChanged, never KeyChanged): its
	// value in the file is current, so an OpExpire record will do.
	DeadlineOnly bool
}

// Sink is what a Manager restores a file into, at start-up. A Sink that
// also has a method Keys() int64 reports how many keys it holds after
// the load, which LoadStats.Keys then gives (else it counts the OpPut
// records restored, a key rewritten in the log each time).
type Sink interface {
	// Restore applies r: OpPut stores the key (replacing it), OpDelete
	// removes it, OpFlushDB and OpFlushAll empty databases. OpExpire
	// records never reach it: Load gives their deadlines to the OpPut
	// records they follow (replayer). OpPut records
	// of different keys may be restored from several goroutines at once.
	// r and its slices are valid only during the call.
	Restore(r *Record) error
}

// Fsync policies of the write-behind mode (redis.conf's appendfsync).
const (
	FsyncEverySec = "everysec" // flush changed keys once a second, with fsync
	FsyncAlways   = "always"   // the writer waits for its change to be durable
	FsyncNo       = "no"       // flush once a second without fsync
)

// Config configures a Manager. Its zero value (with Path set) means
// snapshots on demand only.
type Config struct {
	// Path is the data file (dir/dbfilename). Required.
	Path string
	// Save are the automatic snapshot rules; none means snapshots only on
	// SAVE, BGSAVE and shutdown. They do not apply in AppendOnly mode,
	// where the file is kept current by the write-behind log and
	// compaction.
	Save []SaveRule
	// AppendOnly selects the write-behind mode: changed keys reach the
	// file within FlushInterval (or before the reply, with FsyncAlways).
	AppendOnly bool
	// Fsync is the write-behind policy: FsyncEverySec (""), FsyncAlways
	// or FsyncNo.
	Fsync string
	// LockTimeout bounds the wait for another process's lock on the file.
	// 0 means 1 s.
	LockTimeout time.Duration
	// FlushInterval is the write-behind period. 0 means 1 s.
	FlushInterval time.Duration
	// CompactMinSize and CompactPercent trigger compaction in AppendOnly
	// mode once the log is larger than both CompactMinSize and
	// CompactPercent % of the snapshot it follows (Redis's
	// auto-aof-rewrite-min-size and -percentage). 0 means 64 MiB and 100.
	CompactMinSize int64
	CompactPercent int
	// MaxFileSize bounds the data file: writes that would grow it further
	// fail, as on a full disk. 0 means no bound.
	MaxFileSize int64
	// SaveCPU bounds the CPU a snapshot or compaction uses, as a fraction
	// of one core, so that serving keeps the rest of the machine: 0 means
	// DefaultSaveCPU, 1 or more no bound. On Linux the snapshot's writer
	// also runs at idle priority. The final snapshot of Close is never
	// bounded.
	SaveCPU float64
	// DiscardUnreadable makes Open and Load set a damaged or foreign file
	// aside (renamed to <path>.bad-<unix time>) and start empty, instead
	// of failing.
	DiscardUnreadable bool
	// Logger receives the Manager's logs. nil means slog.Default().
	Logger *slog.Logger
}

// Errors returned by the Manager's methods.
var (
	// ErrSaveInProgress is returned by Save and BackgroundSave while a
	// snapshot or compaction runs.
	ErrSaveInProgress = errors.New("persist: background save already in progress")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("persist: closed")
	// ErrConfig is returned by Open and the setters for invalid settings.
	ErrConfig = errors.New("persist: invalid config")
)

// DefaultSaveCPU is Config.SaveCPU's default: half a core, which keeps a
// snapshot of 1 M sessions of 700 bytes within about 2 s.
const DefaultSaveCPU = 0.5

// starveAfter is savePlan.starveAfter for background saves.
const starveAfter = 500 * time.Millisecond

// retryDelay is how long a failed automatic save waits before the next
// try (Redis's CONFIG_BGSAVE_RETRY_DELAY).
const retryDelay = 5 * time.Second

// Manager keeps a data file in step with a Source: snapshots (by rules,
// on demand, at shutdown) and, in AppendOnly mode, a write-behind log of
// the keys changed since the last flush, compacted into a fresh snapshot
// as it grows. Its methods are safe for concurrent use.
type Manager struct {
	path       string
	src        Source
	log        *slog.Logger
	fopts      fileOpts
	interval   time.Duration
	saveCPU    float64 // Config.SaveCPU
	compactMin int64
	compactPct int
	discard    bool

	changes  atomic.Int64 // changes reported since Open
	tracking atomic.Bool  // KeyChanged records keys (AppendOnly)
	always   atomic.Bool  // AppendOnly with FsyncAlways
	kick     chan struct{}
	// closed is set once by Close (with mu held), after its final write:
	// saves are refused and durability waiters released from then on.
	closed atomic.Bool

	// dmu guards the change set of the write-behind mode.
	dmu     sync.Mutex
	dirty   map[string]bool // db byte + key → only its deadline changed
	ops     []Record        // flushes, in order
	seq     uint64          // changes recorded
	catchup *changeSet      // changes taken since a compaction began
	scratch []byte

	// durMu guards handled and durWaiters; durCond signals growth.
	durMu      sync.Mutex
	durCond    *sync.Cond
	handled    uint64 // changes up to this seq were written (or failed to be)
	durWaiters []durWaiter

	// fmu serializes writes to the live file and its replacement.
	fmu sync.Mutex
	cur *file  // guarded by fmu; nil when the file could not be opened
	wal walLog // guarded by fmu: the always mode's log (wal.go)
	// baseBytes and logBytes copy cur's sizes for readers without fmu.
	baseBytes, logBytes atomic.Int64

	// mu guards the settings and the status below.
	mu           sync.Mutex
	rules        []SaveRule
	appendOnly   bool
	fsync        string
	needBase     bool // AppendOnly turned on: no log flush before a full snapshot
	saving       bool
	saveStart    time.Time
	saveErr      error
	lastSave     time.Time
	lastSaveOK   bool
	lastSaveDur  time.Duration
	lastTry      time.Time
	saves        int64
	saveFailures int64
	savedChanges int64
	writeErr     error
	flushes      int64
	flushFails   int64
	lastFlush    time.Time
	lastFlushN   int
	lastFlushDur time.Duration
	loaded       LoadStats
	fileErr      error

	wg sync.WaitGroup // save goroutines
}

// durWaiter is an OnDurable callback.
type durWaiter struct {
	seq uint64
	fn  func()
}

// changeSet is a batch of changes: flushes in order, then keys whose
// current state follows them, each with whether only its deadline
// changed.
type changeSet struct {
	keys map[string]bool
	ops  []Record
}

func (c *changeSet) merge(keys map[string]bool, ops []Record) {
	c.ops = append(c.ops, ops...)
	mergeKeys(c.keys, keys)
}

// mergeKeys adds the dirty keys of src to dst: a key stays deadline-only
// only if it is in both (or only in one) as deadline-only; a full change
// wins, whatever the order.
func mergeKeys(dst, src map[string]bool) {
	for k, only := range src {
		if was, ok := dst[k]; ok {
			only = only && was
		}
		dst[k] = only
	}
}

// LoadStats describes what Load restored.
type LoadStats struct {
	Keys     int64         // keys loaded (see Sink)
	Expired  int64         // OpPut records skipped because their key's final deadline had passed
	Records  int64         // records read
	Bytes    int64         // bytes of blocks read
	Duration time.Duration // time Load took
}

// Open validates cfg, takes the lock on the data file (creating an empty
// file if there is none) and returns a Manager. It starts no goroutine.
//
// A file locked by another process gives ErrLocked after LockTimeout; a
// file that is not a sessiond data file, is damaged or incomplete gives
// ErrForeign, ErrCorrupt or ErrIncomplete, all naming the file, unless
// DiscardUnreadable is set. A file that cannot be created (a read-only
// directory) is not an error: the Manager logs it, reports it in Stats,
// and tries again at each save.
func Open(cfg Config, src Source) (*Manager, error) {
	if cfg.Path == "" || src == nil {
		return nil, fmt.Errorf("%w: a path and a source are required", ErrConfig)
	}
	switch cfg.Fsync {
	case "":
		cfg.Fsync = FsyncEverySec
	case FsyncEverySec, FsyncAlways, FsyncNo:
	default:
		return nil, fmt.Errorf("%w: appendfsync must be everysec, always or no", ErrConfig)
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.CompactMinSize <= 0 {
		cfg.CompactMinSize = 64 << 20
	}
	if cfg.CompactPercent <= 0 {
		cfg.CompactPercent = 100
	}
	if cfg.SaveCPU < 0 {
		return nil, fmt.Errorf("%w: the save CPU share must not be negative", ErrConfig)
	}
	if cfg.SaveCPU == 0 {
		cfg.SaveCPU = DefaultSaveCPU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		path:        path,
		src:         src,
		log:         cfg.Logger,
		fopts:       fileOpts{timeout: cfg.LockTimeout, maxSize: int(cfg.MaxFileSize)},
		interval:    cfg.FlushInterval,
		saveCPU:     cfg.SaveCPU,
		compactMin:  cfg.CompactMinSize,
		compactPct:  cfg.CompactPercent,
		discard:     cfg.DiscardUnreadable,
		kick:        make(chan struct{}, 1),
		dirty:       make(map[string]bool),
		rules:       cfg.Save,
		appendOnly:  cfg.AppendOnly,
		fsync:       cfg.Fsync,
		lastSaveOK:  true,
		lastSaveDur: -1,
		lastSave:    time.Now(),
	}
	m.durCond = sync.NewCond(&m.durMu)
	m.wal = walLog{base: path, maxBytes: walSegmentBytes}
	m.tracking.Store(cfg.AppendOnly)
	m.always.Store(cfg.AppendOnly && cfg.Fsync == FsyncAlways)

	f, err := openFile(path, m.fopts)
	switch {
	case err == nil:
		m.cur = f
		_ = os.Remove(path + ".tmp") // an unfinished snapshot of a crashed run
	case errors.Is(err, ErrLocked):
		return nil, err
	case unreadable(err):
		if !m.discard {
			return nil, refuse(err)
		}
		if f, err = m.setAside(err); err != nil {
			return nil, err
		}
		m.cur = f
	default:
		m.fileErr = err
		m.log.Error("cannot open the data file; persistence fails until it can be created", "file", path, "err", err)
	}
	if m.cur != nil {
		m.setNoSync()
	}
	m.noteSizesLocked()
	return m, nil
}

func unreadable(err error) bool {
	return errors.Is(err, ErrForeign) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrIncomplete)
}

// refuse adds to err, that of an unreadable file that Open or Load will
// not set aside, what the operator can do about it.
func refuse(err error) error {
	return fmt.Errorf("%w; refusing to start so as not to lose it: move the file away, or start with --discard-unreadable-file to set it aside and start empty", err)
}

// setAside renames an unreadable file out of the way and creates an empty
// one in its place.
func (m *Manager) setAside(why error) (*file, error) {
	suffix := fmt.Sprintf(".bad-%d", time.Now().Unix())
	bad := m.path + suffix
	if err := os.Rename(m.path, bad); err != nil {
		return nil, fmt.Errorf("setting aside %s: %w", m.path, err)
	}
	if err := m.setAsideWAL(suffix); err != nil {
		return nil, fmt.Errorf("setting aside the log segments of %s: %w", m.path, err)
	}
	m.log.Warn("data file unreadable; set aside, starting empty", "file", m.path, "moved_to", bad, "err", why)
	return openFile(m.path, m.fopts)
}

// Path returns the data file's absolute path.
func (m *Manager) Path() string { return m.path }

// Load restores the data file into sink. Call it once, after Open and
// before the data set is used. Records whose deadline has passed are not
// restored and are counted in LoadStats.Expired. A damaged file gives an
// error wrapping ErrCorrupt that names the file (the sink then holds part
// of the data), unless DiscardUnreadable is set, in which case the sink is
// emptied, the file set aside and Load returns no error.
func (m *Manager) Load(sink Sink) (LoadStats, error) {
	m.fmu.Lock()
	defer m.fmu.Unlock()
	if m.cur == nil {
		return LoadStats{}, nil
	}
	start := time.Now()
	rp := newReplayer(m.cur, m.path, sink, start.UnixMilli())
	st, err := loadFile(m.cur, rp)
	m.cur.doneReading()
	if err == nil {
		err = m.loadWAL(rp, &st)
	}
	st.Duration = time.Since(start) // the log segments and the first pass too
	if err != nil && m.discard && unreadable(err) {
		if ferr := sink.Restore(&Record{Op: OpFlushAll}); ferr != nil {
			return st, ferr
		}
		_ = m.cur.close()
		m.cur = nil
		f, serr := m.setAside(err)
		if serr != nil {
			return LoadStats{}, serr
		}
		m.cur = f
		m.setNoSync()
		m.noteSizesLocked()
		st, err = LoadStats{}, nil
	}
	if err != nil {
		if unreadable(err) {
			err = refuse(err)
		}
		return st, err
	}
	if k, ok := sink.(interface{ Keys() int64 }); ok {
		st.Keys = k.Keys()
	}
	m.noteSizesLocked()
	dropResident(m.cur)
	m.mu.Lock()
	m.loaded = st
	m.mu.Unlock()
	return st, nil
}

// loadFile replays f through rp: the snapshot's blocks in parallel (its
// keys are distinct), then the log in order.
func loadFile(f *file, rp *replayer) (LoadStats, error) {
	var st LoadStats
	var keys, expired, records atomic.Int64
	workers := max(1, min(runtime.GOMAXPROCS(0), 8))
	type job struct {
		seq   uint64
		block []byte
	}
	jobs := make(chan job, workers)
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if failed.Load() {
					continue
				}
				err := eachRecord(j.block, func(r *Record) error {
					records.Add(1)
					if r.Op != OpPut {
						return fmt.Errorf("%w: %s record in the snapshot", ErrCorrupt, r.Op)
					}
					rp.settle(r)
					if expiredAt(r.Deadline, rp.now) {
						expired.Add(1)
						return nil
					}
					keys.Add(1)
					return rp.sink.Restore(r)
				})
				if err != nil {
					failed.Store(true)
					fail(fmt.Errorf("%s: base block %d: %w", f.path, j.seq, err))
				}
			}
		})
	}
	err := f.each(bucketBase, func(seq uint64, block []byte) error {
		if failed.Load() {
			return errStop
		}
		st.Bytes += int64(len(block))
		jobs <- job{seq, block}
		return nil
	})
	close(jobs)
	wg.Wait() // before the read transaction's blocks go away: each returned
	if err == nil || errors.Is(err, errStop) {
		err = firstErr
	}
	if err == nil {
		err = f.each(bucketLog, func(seq uint64, block []byte) error {
			st.Bytes += int64(len(block))
			if err := rp.logBlock(block, &st); err != nil {
				return fmt.Errorf("%s: log block %d: %w", f.path, seq, err)
			}
			return nil
		})
	}
	st.Keys += keys.Load()
	st.Expired += expired.Load()
	st.Records += records.Load()
	return st, err
}

var errStop = errors.New("stop")

// noteSizesLocked copies cur's sizes; fmu is held (or m not yet shared).
func (m *Manager) noteSizesLocked() {
	var base, log int64
	if m.cur != nil {
		base, log = m.cur.baseBytes, m.cur.logBytes
	}
	m.baseBytes.Store(base)
	m.logBytes.Store(log + m.wal.total) // the segments are part of the log
}

func (m *Manager) setNoSync() {
	m.mu.Lock()
	no := m.fsync == FsyncNo && m.appendOnly
	m.mu.Unlock()
	if m.cur != nil && m.cur.db != nil {
		m.cur.db.NoSync = no
	}
}

// KeyChanged records that key in db changed. It is called by the server
// with the key's shard locked: it never blocks on I/O.
func (m *Manager) KeyChanged(db int, key []byte) { m.keyChanged(db, key, false) }

// DeadlineChanged records that only the deadline of key in db changed
// (EXPIRE, PERSIST, GETEX EX): the write-behind log records it as a small
// OpExpire, unless the key changed otherwise too since the last flush. It
// is called like KeyChanged.
func (m *Manager) DeadlineChanged(db int, key []byte) { m.keyChanged(db, key, true) }

func (m *Manager) keyChanged(db int, key []byte, deadlineOnly bool) {
	m.changes.Add(1)
	if !m.tracking.Load() {
		return
	}
	m.dmu.Lock()
	m.scratch = append(append(m.scratch[:0], byte(db)), key...)
	// New, or a full change of a key dirty by its deadline alone: a full
	// change wins (mergeKeys).
	if only, ok := m.dirty[string(m.scratch)]; !ok || only && !deadlineOnly {
		m.dirty[string(m.scratch)] = deadlineOnly
	}
	m.seq++
	m.dmu.Unlock()
}

// DBFlushed records that database db (every database when db < 0) was
// emptied. The server calls it after the flush, while no CaptureKeys runs.
func (m *Manager) DBFlushed(db int) {
	m.changes.Add(1)
	if !m.tracking.Load() {
		return
	}
	r := Record{Op: OpFlushAll}
	if db >= 0 {
		r = Record{Op: OpFlushDB, DB: db}
	}
	m.dmu.Lock()
	m.ops = append(m.ops, r)
	m.seq++
	m.dmu.Unlock()
}

// take swaps out the pending changes; with final it also ends a
// compaction's catch-up and returns everything since it began.
func (m *Manager) take(final bool) (changeSet, uint64) {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	cs := changeSet{keys: m.dirty, ops: m.ops}
	m.dirty = make(map[string]bool, len(cs.keys)/2)
	m.ops = nil
	if m.catchup != nil {
		m.catchup.merge(cs.keys, cs.ops)
		if final {
			cs = *m.catchup
			m.catchup = nil
		}
	}
	return cs, m.seq
}

// requeue puts a batch that could not be written back in front of the
// pending changes.
func (m *Manager) requeue(cs changeSet) {
	m.dmu.Lock()
	mergeKeys(m.dirty, cs.keys)
	m.ops = append(cs.ops, m.ops...)
	m.dmu.Unlock()
}

func keysOf(cs changeSet) []Key {
	keys := make([]Key, 0, len(cs.keys))
	for k, only := range cs.keys {
		keys = append(keys, Key{DB: int(k[0]), Key: []byte(k[1:]), DeadlineOnly: only})
	}
	return keys
}

// captureChanges takes the pending changes (all since a compaction began,
// with final) and encodes them, flushes first.
func (m *Manager) captureChanges(final bool) (*blockWriter, changeSet, uint64, error) {
	w := &blockWriter{}
	var cs changeSet
	var seq uint64
	err := m.src.CaptureKeys(func() []Key {
		cs, seq = m.take(final)
		for i := range cs.ops {
			w.add(&cs.ops[i])
		}
		return keysOf(cs)
	}, func(r *Record) error {
		w.add(r)
		return nil
	})
	return w, cs, seq, err
}

// markHandled releases WaitDurable and OnDurable callers waiting for
// changes up to seq.
func (m *Manager) markHandled(seq uint64) {
	m.durMu.Lock()
	if seq > m.handled {
		m.handled = seq
	}
	var ready []func()
	keep := m.durWaiters[:0]
	for _, w := range m.durWaiters {
		if w.seq <= m.handled || m.closed.Load() {
			ready = append(ready, w.fn)
		} else {
			keep = append(keep, w)
		}
	}
	clear(m.durWaiters[len(keep):])
	m.durWaiters = keep
	m.durMu.Unlock()
	m.durCond.Broadcast()
	for _, fn := range ready {
		fn()
	}
}

// flushLog writes the pending changes to the live file's log.
func (m *Manager) flushLog() error {
	m.fmu.Lock()
	defer m.fmu.Unlock()
	m.mu.Lock()
	needBase := m.needBase
	m.mu.Unlock()
	if m.cur == nil || needBase {
		// Kept pending: the next full snapshot includes them. Writers
		// waiting for durability are not held meanwhile.
		m.dmu.Lock()
		seq := m.seq
		m.dmu.Unlock()
		m.markHandled(seq)
		return nil
	}
	start := time.Now()
	always := m.always.Load()
	var err error
	if !always {
		err = m.drainWALLocked() // the segments' changes come first
	}
	var w *blockWriter
	var cs changeSet
	var seq uint64
	if err == nil {
		w, cs, seq, err = m.captureChanges(false)
	}
	if err == nil && len(w.blocks) > 0 {
		if always {
			err = m.wal.append(w.blocks)
		} else {
			err = m.cur.appendBlocks(bucketLog, w.blocks)
		}
		m.noteSizesLocked()
	}
	m.mu.Lock()
	if err != nil {
		m.flushFails++
		if m.writeErr == nil {
			m.log.Error("write-behind flush failed; changes kept for the next try", "file", m.path, "err", err)
		}
		m.writeErr = err
	} else {
		if m.writeErr != nil {
			m.log.Info("write-behind flush works again", "file", m.path)
		}
		m.writeErr = nil
		m.flushes++
		m.lastFlush = start
		m.lastFlushN = int(w.records)
		m.lastFlushDur = time.Since(start)
	}
	m.mu.Unlock()
	if err != nil {
		m.requeue(cs)
	}
	m.markHandled(seq) // also on failure: writers are not held forever
	return err
}

// WaitDurable returns once every change reported before the call is in
// the file (or failed to be written), in AppendOnly mode with
// FsyncAlways; otherwise at once. Concurrent callers share one write
// (group commit).
func (m *Manager) WaitDurable() {
	if !m.always.Load() {
		return
	}
	m.dmu.Lock()
	target := m.seq
	m.dmu.Unlock()
	m.durMu.Lock()
	defer m.durMu.Unlock()
	for m.handled < target && !m.closed.Load() {
		select {
		case m.kick <- struct{}{}:
		default:
		}
		m.durCond.Wait()
	}
}

// DurableTarget returns the change sequence number a writer's replies
// wait for, and whether they wait (AppendOnly with FsyncAlways).
func (m *Manager) DurableTarget() (uint64, bool) {
	if !m.always.Load() {
		return 0, false
	}
	m.dmu.Lock()
	defer m.dmu.Unlock()
	return m.seq, true
}

// OnDurable calls fn once the changes up to seq are in the file (or
// failed to be written, or the Manager closed): at once if they are,
// else from the goroutine that wrote them. Concurrent waiters share one
// write (group commit).
func (m *Manager) OnDurable(seq uint64, fn func()) {
	m.durMu.Lock()
	if m.handled >= seq || m.closed.Load() {
		m.durMu.Unlock()
		fn()
		return
	}
	m.durWaiters = append(m.durWaiters, durWaiter{seq, fn})
	m.durMu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run flushes the write-behind log, triggers snapshots by the save rules
// and compacts, until ctx is done; then it returns nil. Call it once, from
// a goroutine its owner waits for, before Close.
func (m *Manager) Run(ctx context.Context) error {
	tick := time.NewTicker(min(m.interval/4, 100*time.Millisecond))
	defer tick.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-m.kick:
		}
		now := time.Now()
		m.mu.Lock()
		appendOnly, rules, needBase := m.appendOnly, m.rules, m.needBase
		m.mu.Unlock()
		if appendOnly {
			if m.always.Load() || now.Sub(lastFlush) >= m.interval {
				if m.pending() {
					_ = m.flushLog()
				}
				lastFlush = now
			}
			if needBase || m.logTooBig() {
				m.autoSave(now, "compaction")
			}
			continue
		}
		if len(rules) > 0 {
			m.mu.Lock()
			due := saveDue(rules, m.changes.Load()-m.savedChanges, now.Sub(m.lastSave))
			m.mu.Unlock()
			if due {
				m.autoSave(now, "save rule")
			}
		}
	}
}

func (m *Manager) pending() bool {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	return len(m.dirty) > 0 || len(m.ops) > 0
}

func (m *Manager) logTooBig() bool {
	log := m.logBytes.Load()
	return log > m.compactMin && log > m.baseBytes.Load()*int64(m.compactPct)/100
}

// autoSave starts a background save unless one runs or the last one failed
// less than retryDelay ago.
func (m *Manager) autoSave(now time.Time, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saving || m.closed.Load() || (!m.lastSaveOK && now.Sub(m.lastTry) < retryDelay) {
		return
	}
	m.log.Info("background save started", "reason", why, "file", m.path)
	_, _ = m.startSaveLocked(false)
}

// BackgroundSave starts a snapshot (a compaction in AppendOnly mode) in
// the background, or returns ErrSaveInProgress.
func (m *Manager) BackgroundSave() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.startSaveLocked(false)
	return err
}

// Save writes a snapshot (compacts, in AppendOnly mode) and returns when
// it is durable. It blocks only its caller: serving goes on.
func (m *Manager) Save() error { return m.saveAndWait(false) }

// saveAndWait is Save; fast lifts the CPU bound (the final snapshot).
func (m *Manager) saveAndWait(fast bool) error {
	m.mu.Lock()
	done, err := m.startSaveLocked(fast)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	<-done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saveErr
}

func (m *Manager) startSaveLocked(fast bool) (chan struct{}, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if m.saving {
		return nil, ErrSaveInProgress
	}
	m.saving = true
	m.saveStart = time.Now()
	m.lastTry = m.saveStart
	done := make(chan struct{})
	changesAtStart := m.changes.Load()
	appendOnly := m.appendOnly
	if appendOnly {
		// The new file's log must hold every change made from the moment
		// of its snapshot on: they are caught up at the end.
		m.dmu.Lock()
		m.catchup = &changeSet{keys: make(map[string]bool)}
		m.dmu.Unlock()
	}
	m.wg.Go(func() {
		defer close(done)
		plan := savePlan{share: m.saveCPU, idle: true, starveAfter: starveAfter}
		if fast {
			plan = savePlan{}
		}
		err := m.save(appendOnly, plan)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.saving = false
		m.saveErr = err
		m.lastSaveDur = time.Since(m.saveStart)
		if err != nil {
			m.lastSaveOK = false
			m.saveFailures++
			m.log.Error("background save failed", "file", m.path, "err", err)
			return
		}
		if m.fileErr != nil {
			m.log.Info("data file usable again", "file", m.path)
		}
		m.fileErr = nil
		m.lastSaveOK = true
		m.saves++
		m.lastSave = time.Now()
		m.savedChanges = changesAtStart
		if appendOnly {
			m.needBase = false
		}
		m.log.Info("background save done", "file", m.path, "duration", m.lastSaveDur)
	})
	return done, nil
}

// save writes a full snapshot to a temporary file and renames it over
// the data file. In AppendOnly mode the changes made during the snapshot
// follow it in the new file's log.
func (m *Manager) save(appendOnly bool, plan savePlan) (err error) {
	if appendOnly {
		defer func() {
			if err != nil {
				m.dmu.Lock()
				if m.catchup != nil { // give the changes back to the log
					mergeKeys(m.dirty, m.catchup.keys)
				}
				m.catchup = nil
				m.dmu.Unlock()
			}
		}()
	}
	tmpPath := m.path + ".tmp"
	tmp, err := createTemp(tmpPath, m.tempOpts())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.close()
			_ = os.Remove(tmpPath)
		}
	}()
	if err := writeSnapshot(tmp, m.src, plan); err != nil {
		return err
	}
	if err := tmp.finish(); err != nil {
		return err
	}
	m.fmu.Lock()
	defer m.fmu.Unlock()
	var seq uint64
	if appendOnly {
		var cw *blockWriter
		var cs changeSet
		cw, cs, seq, err = m.captureChanges(true)
		if err == nil {
			err = tmp.appendBlocks(bucketLog, cw.blocks)
		}
		if err != nil {
			m.requeue(cs)
			return err
		}
	}
	if err := replaceFile(tmp, m.path); err != nil {
		return err
	}
	old := m.cur
	m.cur = tmp
	m.setNoSync()
	m.noteSizesLocked()
	if old != nil {
		_ = old.close()
	}
	// The new file holds every change the log segments do.
	if err := m.wal.discard(); err != nil {
		m.log.Error("cannot delete a log segment the new file replaces", "err", err)
	}
	m.noteSizesLocked()
	if appendOnly {
		m.markHandled(seq)
	}
	return nil
}

// tempOpts are the options of a snapshot's temporary file: mapped at
// twice the size of the current file (1 GiB at least), so that writing
// it needs no remap. Address space only: nothing is read or written
// beyond the file's end.
func (m *Manager) tempOpts() fileOpts {
	o := m.fopts
	if strconv.IntSize < 64 {
		return o
	}
	var size int64
	if fi, err := os.Stat(m.path); err == nil {
		size = fi.Size()
	}
	o.mmapSize = int(max(1<<30, 2*size))
	if o.maxSize > 0 {
		o.mmapSize = min(o.mmapSize, o.maxSize)
	}
	return o
}

// savePlan is how a snapshot shares the machine with the server.
type savePlan struct {
	// share is the CPU a snapshot may use, as a fraction of one core
	// (pacer); 0 or ≥ 1 means as much as it can.
	share float64
	// idle runs the writer goroutine on a thread of idle priority
	// (lowerThreadPriority), which gets only CPU time nobody else wants.
	idle bool
	// starveAfter: when the capture waits this long for the idle writer
	// (a saturated machine), the writer moves to a thread of normal
	// priority, so that the snapshot still ends.
	starveAfter time.Duration
	// onHandoff, when set, is called when that happens (tests).
	onHandoff func()
}

// writeSnapshot writes a point-in-time capture of src into f's snapshot
// bucket, a slice of keys per lock hold. Two goroutines overlap the work:
// this one captures (copies records out under the part's lock) while a
// writer checksums and commits the previous 8 MiB, so at most two
// transactions' records are in memory. After each commit the kernel is
// asked to start writing back, so the final fsync has little left to do,
// and the pages already on disk leave the page cache (writeback).
func writeSnapshot(f *file, src Source, plan savePlan) error {
	const (
		txnBlocks = (8 << 20) / blockSize
		sliceKeys = 128 // keys captured per lock hold (~40 µs)
	)
	pc := newPacer(plan.share)
	wb := newWriteback(f.path)
	defer wb.close()
	full := make(chan *blockWriter, 1)
	free := make(chan *blockWriter, 2)
	free <- &blockWriter{unsealed: true}
	free <- &blockWriter{unsealed: true}
	werr := make(chan error, 1)
	var starved atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	var write func(idle bool, err error)
	write = func(idle bool, err error) {
		// Never unlocked: a thread whose priority was lowered ends with
		// this goroutine instead of going back to the scheduler's pool.
		runtime.LockOSThread()
		if idle {
			idle = lowerThreadPriority() == nil
		}
		for w := range full {
			if err == nil {
				t := pc.begin()
				for _, b := range w.blocks {
					sealRecords(b)
				}
				if err = f.appendBlocks(bucketBase, w.blocks); err == nil {
					wb.committed()
				}
				pc.end(t)
				runtime.Gosched()
			}
			w.reset()
			free <- w
			if idle && starved.Load() {
				if plan.onHandoff != nil {
					plan.onHandoff()
				}
				wg.Go(func() { write(false, err) }) // the rest at normal priority
				return
			}
		}
		werr <- err
	}
	wg.Go(func() { write(plan.idle, nil) })
	next := func() *blockWriter {
		select {
		case w := <-free:
			return w
		default:
		}
		start := time.Now()
		w := <-free
		if plan.starveAfter > 0 && time.Since(start) >= plan.starveAfter {
			starved.Store(true)
		}
		return w
	}
	if err := src.BeginCapture(); err != nil {
		close(full)
		<-werr
		return err
	}
	defer src.EndCapture()
	// The pacer reads this thread's CPU clock around each slice.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var err error
	w := next()
	emit := func(r *Record) error {
		w.add(r)
		return nil
	}
parts:
	for i := range src.Parts() {
		for cursor := uint64(0); ; {
			t := pc.begin()
			cursor, err = src.CapturePart(i, cursor, sliceKeys, emit)
			pc.end(t)
			if err != nil {
				break parts
			}
			pc.wait()
			// Let waiting goroutines (the server's event loops) run: Go
			// would otherwise preempt this one only after 10 ms.
			runtime.Gosched()
			if len(w.blocks) >= txnBlocks {
				full <- w
				w = next()
			}
			if cursor == 0 {
				break
			}
		}
	}
	if err == nil && len(w.blocks) > 0 {
		full <- w
	} else {
		free <- w
	}
	close(full)
	if werr := <-werr; err == nil {
		err = werr
	}
	debug.FreeOSMemory() // the buffers go back to the OS
	return err
}

// Close ends the Manager: it waits for a running save, then writes the
// pending changes (AppendOnly) or, if save is set, a final snapshot, and
// closes the file. Call it after Run has returned. It is idempotent.
func (m *Manager) Close(save bool) error {
	if m.closed.Load() {
		return nil
	}
	m.wg.Wait()
	var err error
	m.mu.Lock()
	appendOnly := m.appendOnly
	m.mu.Unlock()
	if appendOnly {
		if m.pending() {
			err = m.flushLog()
		}
	} else if save {
		err = m.saveAndWait(true)
	}
	m.mu.Lock()
	m.closed.Store(true)
	m.mu.Unlock()
	m.markHandled(^uint64(0))
	m.wg.Wait()
	m.fmu.Lock()
	m.wal.seal() // the segments stay: the next start replays them
	cerr := m.cur.close()
	m.cur = nil
	m.fmu.Unlock()
	return errors.Join(err, cerr)
}

// blockWriter encodes records into blocks of at most blockSize bytes (a
// larger record gets a block of its own).
type blockWriter struct {
	// unsealed leaves the records' checksums to sealRecords (a
	// snapshot's writer goroutine fills them in before the commit).
	unsealed bool
	blocks   [][]byte
	free     [][]byte
	records  int64
}

func (w *blockWriter) add(r *Record) {
	n := len(w.blocks)
	if n == 0 || len(w.blocks[n-1]) > 0 && len(w.blocks[n-1])+recordLen(r) > blockSize {
		var b []byte
		if k := len(w.free); k > 0 {
			b, w.free = w.free[k-1][:0], w.free[:k-1]
		} else {
			b = make([]byte, 0, blockSize)
		}
		w.blocks = append(w.blocks, b)
		n++
	}
	if w.unsealed {
		w.blocks[n-1] = appendUnsealed(w.blocks[n-1], r)
	} else {
		w.blocks[n-1] = appendRecord(w.blocks[n-1], r)
	}
	w.records++
}

// reset empties w, keeping its buffers for reuse.
func (w *blockWriter) reset() {
	for _, b := range w.blocks {
		if cap(b) <= blockSize {
			w.free = append(w.free, b)
		}
	}
	clear(w.blocks)
	w.blocks = w.blocks[:0]
	w.records = 0
}
