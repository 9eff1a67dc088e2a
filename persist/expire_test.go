package persist

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// loggedRecord is a record of the log with the bytes it takes.
type loggedRecord struct {
	Op       Op
	Key      string
	Deadline int64
	Size     int
}

// logOf returns the records of m's log (the file's, then the segments'),
// in order.
func logOf(t *testing.T, m *Manager) []loggedRecord {
	t.Helper()
	m.fmu.Lock()
	defer m.fmu.Unlock()
	var out []loggedRecord
	block := func(b []byte) error {
		return eachRecord(b, func(r *Record) error {
			out = append(out, loggedRecord{r.Op, string(r.Key), r.Deadline, recordLen(r)})
			return nil
		})
	}
	require.NoError(t, m.cur.each(bucketLog, func(_ uint64, b []byte) error { return block(b) }))
	require.NoError(t, replaySegments(m.path, func(walSegment, segmentData) {}, block))
	return out
}

// lastOf returns the last record of key in log.
func lastOf(t *testing.T, log []loggedRecord, key string) loggedRecord {
	t.Helper()
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Key == key {
			return log[i]
		}
	}
	t.Fatalf("no record of %q in the log", key)
	return loggedRecord{}
}

// readsAs checks that every reader of the file at dir finds want (as
// memStore.snapshot shows it) and counts expired keys as expired: a load,
// export-snapshot (Export) and check (Check). It returns what the load
// gave and Check's figures, for more checks.
func readsAs(t *testing.T, dir string, want map[string]string, expired int64) (map[string]string, CheckStats) {
	t.Helper()
	got, ls := reload(t, dir)
	assert.Equal(t, want, got, "load")
	assert.Equal(t, expired, ls.Expired, "keys expired at load")
	path := filepath.Join(dir, "data.db")
	exported := map[string]string{}
	require.NoError(t, Export(path, time.Now().UnixMilli(), func(r *Record) error {
		exported[mkey(r.DB, string(r.Key))] = fmt.Sprintf("%s|%d|%d", r.Value, r.Kind, r.Deadline)
		return nil
	}))
	assert.Equal(t, want, exported, "export-snapshot gives what a load does")
	st, err := Check(path, time.Now().UnixMilli())
	require.NoError(t, err)
	assert.Equal(t, int64(len(want)), st.LiveKeys(), "check's live keys")
	assert.Equal(t, expired, st.Expired, "check's expired keys")
	return got, st
}

var session = strings.Repeat("s", 700)

// TestDeadlineOnlyChangeIsASmallRecord: a key whose deadline alone
// changed since the last flush is logged as an OpExpire of a few dozen
// bytes, not its 700-byte value; a key also written, before or after, as
// an OpPut; the reload has the values and the new deadlines.
func TestDeadlineOnlyChangeIsASmallRecord(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	hour := time.Now().Add(time.Hour).UnixMilli()
	for _, k := range []string{"slide", "setfirst", "expirefirst", "persist"} {
		src.set(0, k, session, hour)
	}
	src.set(3, "slide", "db3", hour)
	require.NoError(t, m.flushLog())

	src.expire(0, "slide", hour+1000) // GETEX EX
	src.expire(0, "slide", hour+2000) // twice: the last deadline
	src.set(0, "setfirst", "new value", 0)
	src.expire(0, "setfirst", hour+3000)
	src.expire(0, "expirefirst", hour+4000)
	src.set(0, "expirefirst", "newer value", hour+5000) // SET k v EX: both
	src.expire(0, "persist", 0)                         // PERSIST
	require.NoError(t, m.flushLog())
	assert.Equal(t, int64(5+7), m.Stats().ChangesSinceSave, "every change counts")

	log := logOf(t, m)
	slide := lastOf(t, log, "slide")
	assert.Equal(t, OpExpire, slide.Op)
	assert.Equal(t, hour+2000, slide.Deadline)
	assert.Less(t, slide.Size, 20, "a deadline change is not the value")
	assert.Equal(t, OpPut, lastOf(t, log, "setfirst").Op)
	assert.Equal(t, OpPut, lastOf(t, log, "expirefirst").Op)
	persist := lastOf(t, log, "persist")
	assert.Equal(t, OpExpire, persist.Op)
	assert.Zero(t, persist.Deadline)

	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, st := readsAs(t, dir, want, 0)
	assert.Equal(t, session+fmt.Sprintf("|1|%d", hour+2000), got[mkey(0, "slide")])
	assert.Equal(t, "db3|1|"+fmt.Sprint(hour), got[mkey(3, "slide")], "another database's key is untouched")
	assert.Equal(t, session+"|1|0", got[mkey(0, "persist")])
	assert.Equal(t, int64(2), st.Records[OpExpire])
}

// TestExpireRecordDeadlinesAtLoad: an OpExpire whose deadline passed
// while the server was down deletes its key, counted as expired; one
// whose deadline is live brings back a key whose OpPut (in the log or in
// the snapshot) has a deadline that passed, as the key was in memory.
func TestExpireRecordDeadlinesAtLoad(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	hour := time.Now().Add(time.Hour).UnixMilli()
	past := time.Now().Add(-time.Minute).UnixMilli()
	src.set(0, "inbase", "b", past) // its 1-minute TTL passed while down...
	src.set(0, "gone", "g", hour)
	require.NoError(t, m.flushLog())
	require.NoError(t, m.Save()) // the snapshot, without a catch-up
	src.set(0, "inlog", "l", past)
	src.set(0, "stays", "s", past)
	require.NoError(t, m.flushLog())
	src.expire(0, "inbase", hour) // ...but GETEX EX 3600 came before it did
	src.expire(0, "inlog", hour)
	src.expire(0, "gone", past) // EXPIREAT in a minute; the server stops meanwhile
	require.NoError(t, m.flushLog())
	require.NoError(t, m.Close(false))

	want := map[string]string{
		mkey(0, "inbase"): fmt.Sprintf("b|1|%d", hour),
		mkey(0, "inlog"):  fmt.Sprintf("l|1|%d", hour),
	}
	readsAs(t, dir, want, 2) // gone and stays expired
}

// TestDeadlineFlagSurvivesAFailedFlush: the keys of a flush that failed
// go back to the dirty set with their flag: one only EXPIREd is still an
// OpExpire, one written (then EXPIREd after the failure) an OpPut.
func TestDeadlineFlagSurvivesAFailedFlush(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true, MaxFileSize: 1 << 20})
	hour := time.Now().Add(time.Hour).UnixMilli()
	src.set(0, "slide", session, hour)
	require.NoError(t, m.flushLog())
	big := strings.Repeat("x", 256<<10)
	for i := range 8 { // 2 MiB: more than the file may hold
		src.set(0, fmt.Sprint(i), big, 0)
	}
	src.expire(0, "slide", hour+1000)
	src.set(0, "written", session, hour)
	require.Error(t, m.flushLog())
	src.expire(0, "written", hour+1000) // after the failure: still an OpPut
	for i := range 8 {
		src.set(0, fmt.Sprint(i), "small", 0)
	}
	require.NoError(t, m.flushLog())
	log := logOf(t, m)
	assert.Equal(t, OpExpire, lastOf(t, log, "slide").Op)
	assert.Equal(t, OpPut, lastOf(t, log, "written").Op)
	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
}

// TestDeadlineFlagInCompactionCatchUp: the changes made while a
// compaction runs follow its snapshot in the new file's log with their
// flag, whether a flush took them meanwhile or not.
func TestDeadlineFlagInCompactionCatchUp(t *testing.T) {
	dir := t.TempDir()
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	hour := time.Now().Add(time.Hour).UnixMilli()
	for _, k := range []string{"flushed", "pending", "both"} {
		src.set(0, k, session, hour)
	}
	require.NoError(t, m.flushLog())
	began, proceed := make(chan struct{}), make(chan struct{})
	src.onBegin = func(map[string]Record) {
		close(began)
		<-proceed
	}
	saved := make(chan error, 1)
	go func() { saved <- m.Save() }()
	<-began // the snapshot's moment is fixed
	src.expire(0, "flushed", hour+1000)
	src.set(0, "both", "new", hour)
	require.NoError(t, m.flushLog()) // into the old file; caught up later
	src.expire(0, "pending", hour+2000)
	src.expire(0, "both", hour+3000)
	close(proceed)
	require.NoError(t, <-saved)

	log := logOf(t, m) // the new file's log: the catch-up
	assert.Equal(t, OpExpire, lastOf(t, log, "flushed").Op)
	assert.Equal(t, OpExpire, lastOf(t, log, "pending").Op)
	assert.Equal(t, OpPut, lastOf(t, log, "both").Op, "a full change wins over a later deadline change")
	want := src.snapshot()
	require.NoError(t, m.Close(false))
	got, _ := reload(t, dir)
	assert.Equal(t, want, got)
	assert.Equal(t, fmt.Sprintf("new|1|%d", hour+3000), got[mkey(0, "both")])
}

// TestAlwaysLogsExpireRecords: the always mode's group commits log
// OpExpire too, and a crash copy replays them.
func TestAlwaysLogsExpireRecords(t *testing.T) {
	_, src, m := openAlways(t)
	hour := time.Now().Add(time.Hour).UnixMilli()
	src.set(0, "slide", session, hour)
	src.set(0, "keep", session, hour)
	require.NoError(t, m.flushLog())
	src.expire(0, "slide", hour+1000)
	src.expire(0, "keep", 0)
	require.NoError(t, m.flushLog())
	require.NotEmpty(t, segmentsOf(t, m))
	log := logOf(t, m)
	small := Record{Op: OpExpire, Key: []byte("slide"), Deadline: hour + 1000}
	assert.Equal(t, loggedRecord{OpExpire, "slide", hour + 1000, recordLen(&small)}, lastOf(t, log, "slide"))
	assert.Equal(t, OpExpire, lastOf(t, log, "keep").Op)
	got, _ := reload(t, crashCopy(t, m))
	assert.Equal(t, src.snapshot(), got)
	assert.Equal(t, fmt.Sprintf("%s|1|%d", session, hour+1000), got[mkey(0, "slide")])
}

// setVersion rewrites the format version in the meta of the file at path.
func setVersion(t *testing.T, path, v string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("version"), []byte(v))
	}))
	require.NoError(t, db.Close())
}

func versionOf(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var v string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get([]byte("version")))
		return nil
	}))
	return v
}

// TestFormatVersion: a file of version 1 (an older sessiond) is read, and
// opened for writing gets version 2 before any record is written, so that
// the older sessiond then refuses it by its version; a file of a version
// newer than this sessiond's is refused, saying so.
func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.db")
	src := newMemStore()
	m := openManager(t, dir, src, Config{AppendOnly: true})
	src.set(0, "k", "v", 0)
	require.NoError(t, m.Close(false))
	assert.Equal(t, "2", versionOf(t, path))

	setVersion(t, path, "1")
	got, _ := reload(t, dir) // Open raises it
	assert.Equal(t, map[string]string{mkey(0, "k"): "v|1|0"}, got)
	assert.Equal(t, "2", versionOf(t, path))

	setVersion(t, path, "1")
	st, err := Check(path, time.Now().UnixMilli()) // read only: unchanged
	require.NoError(t, err)
	assert.Equal(t, 1, st.Version)
	assert.Equal(t, "1", versionOf(t, path))

	setVersion(t, path, "3")
	_, err = Open(Config{Path: path}, newMemStore())
	require.ErrorIs(t, err, ErrForeign)
	assert.Contains(t, err.Error(), `format version "3"; this sessiond reads up to 2`)
	_, err = Check(path, time.Now().UnixMilli())
	require.ErrorIs(t, err, ErrForeign)
	_, err = os.Stat(path)
	require.NoError(t, err, "a refused file stays where it is")
}

// TestSlidingDeadlinesAtLoad: of a key's OpExpire records only the last
// decides, whatever the earlier ones say at load time: a sliding session
// whose early deadlines passed while the server was down is live; one whose
// deadline was shortened to the past, then extended, is live; one whose
// last deadline passed is not. Each change is flushed on its own, so the
// log holds every record.
func TestSlidingDeadlinesAtLoad(t *testing.T) {
	for _, mode := range []string{FsyncEverySec, FsyncAlways} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			src := newMemStore()
			m := openManager(t, dir, src, Config{AppendOnly: true, Fsync: mode})
			now := time.Now()
			ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
			hour := now.Add(time.Hour).UnixMilli()
			src.set(0, "slide", "s", ago(3*time.Minute))
			src.set(0, "shortened", "t", hour)
			src.set(0, "ended", "e", hour)
			require.NoError(t, m.flushLog())
			steps := []map[string]int64{
				{"slide": ago(2 * time.Minute), "shortened": ago(time.Minute), "ended": hour + 5},
				{"slide": ago(time.Minute), "shortened": hour + 1000, "ended": ago(time.Minute)},
				{"slide": hour},
			}
			for _, step := range steps {
				for k, d := range step {
					src.expire(0, k, d)
				}
				require.NoError(t, m.flushLog())
			}
			log := logOf(t, m)
			for _, k := range []string{"slide", "shortened", "ended"} {
				assert.Equal(t, OpExpire, lastOf(t, log, k).Op, k)
			}
			require.NoError(t, m.Close(false))

			want := map[string]string{
				mkey(0, "slide"):     fmt.Sprintf("s|1|%d", hour),
				mkey(0, "shortened"): fmt.Sprintf("t|1|%d", hour+1000),
			}
			readsAs(t, dir, want, 1) // ended expired
		})
	}
}

// TestLogReplayInOrder: a log of many records per key (puts,
// deletes, deadline changes, flushes of one database and of all), spread
// over many flushes (blocks) and, in always mode, over many segments,
// loads as the store ended.
func TestLogReplayInOrder(t *testing.T) {
	for _, mode := range []string{FsyncEverySec, FsyncAlways} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			src := newMemStore()
			m := openManager(t, dir, src, Config{AppendOnly: true, Fsync: mode})
			m.wal.maxBytes = 8 << 10 // many segments
			rng := rand.New(rand.NewPCG(1, 2))
			hour := time.Now().Add(time.Hour).UnixMilli()
			for step := range 405 { // the last steps flush nothing
				for range 40 {
					db, k := rng.IntN(3), fmt.Sprint("k", rng.IntN(30))
					src.mu.Lock()
					_, exists := src.data[mkey(db, k)]
					src.mu.Unlock()
					switch n := rng.IntN(10); {
					case n < 5:
						src.set(db, k, fmt.Sprint("v", step, "-", n), hour+int64(rng.IntN(1000)))
					case n < 7 && exists:
						src.expire(db, k, hour+int64(rng.IntN(100000)))
					case n < 9:
						src.del(db, k)
					}
				}
				switch step % 37 {
				case 11:
					src.flush(rng.IntN(3))
				case 29:
					src.flush(-1)
				}
				require.NoError(t, m.flushLog())
			}
			// Last, flushes that no later write hides: database 2 ends
			// with one key set after its flush.
			src.set(2, "k0", "before", hour)
			require.NoError(t, m.flushLog())
			src.flush(2)
			src.set(2, "after", "a", 0)
			require.NoError(t, m.flushLog())
			want := src.snapshot()
			require.NotEmpty(t, want)
			require.Contains(t, want, mkey(2, "after"))
			require.NotContains(t, want, mkey(2, "k0"))
			require.NoError(t, m.Close(false))
			readsAs(t, dir, want, 0)
		})
	}
}
