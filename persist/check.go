package persist

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckStats describes a data file, as Check found it.
type CheckStats struct {
	Path     string
	Version  int
	Created  time.Time
	Size     int64 // bytes of the file
	Blocks   [2]int64
	Bytes    [2]int64 // of blocks: [0] snapshot, [1] log
	Records  map[Op]int64
	Keys     map[int]map[uint8]int64 // live keys after replay: db → kind → count
	Expired  int64                   // keys whose deadline has passed
	Problems []string                // bbolt consistency problems
	// Segments is the number of always-mode log segments beside the file
	// (part of its log until a compaction replaces them). Their blocks
	// count in Blocks[1] and Bytes[1]; SegmentTail is the bytes of
	// incomplete writes at their ends, which are ignored.
	Segments    int
	SegmentTail int64
}

// LiveKeys returns the number of live keys.
func (s *CheckStats) LiveKeys() int64 {
	var n int64
	for _, kinds := range s.Keys {
		for _, c := range kinds {
			n += c
		}
	}
	return n
}

// openReadOnly opens a data file without changing it (a shared lock: it
// fails with ErrLocked while a server holds the file).
func openReadOnly(path string) (*file, error) {
	f, err := openFile(path, fileOpts{timeout: time.Second, readOnly: true})
	if errors.Is(err, ErrLocked) {
		err = fmt.Errorf("%w; stop the server, or check a copy of the file taken after a SAVE in snapshot mode", err)
	}
	return f, err
}

// Check verifies a data file: bbolt's own consistency check, every
// record's checksum, and a replay that counts the live keys per database
// and kind (deadlines compared with now, Unix ms). It never changes the
// file. An error wrapping ErrForeign, ErrIncomplete, ErrCorrupt or
// ErrLocked says why the file is unusable; a file whose only problems are
// in CheckStats.Problems is damaged too.
func Check(path string, now int64) (CheckStats, error) {
	st := CheckStats{Path: path, Records: map[Op]int64{}, Keys: map[int]map[uint8]int64{}}
	f, err := openReadOnly(path)
	if err != nil {
		return st, err
	}
	defer f.close()
	if fi, err := os.Stat(path); err == nil {
		st.Size = fi.Size()
	}
	err = f.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.Version, _ = strconv.Atoi(string(meta.Get([]byte("version"))))
		if ms, err := strconv.ParseInt(string(meta.Get([]byte("created"))), 10, 64); err == nil {
			st.Created = time.UnixMilli(ms)
		}
		for e := range tx.Check() {
			st.Problems = append(st.Problems, e.Error())
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	live, err := replayLive(f, now, &st, func(r *Record) uint8 { return r.Kind }, nil)
	for k, kind := range live {
		db := int(k[0])
		if st.Keys[db] == nil {
			st.Keys[db] = map[uint8]int64{}
		}
		st.Keys[db][kind]++
	}
	if err == nil && len(st.Problems) > 0 {
		err = fmt.Errorf("%s: %w: %d bbolt consistency problems", path, ErrCorrupt, len(st.Problems))
	}
	return st, err
}

// replayLive replays f (its snapshot, then its log, then the log segments
// beside it, in order), counting blocks, records and expired keys in st,
// and returns its live keys: db byte + key → val of the OpPut record that
// set it, given by setDeadline (nil: kept as it is) the deadline of a
// later OpExpire. Whether a key has expired at now is judged on the
// deadline it ends with, as a load does (replayer). On error the keys are
// those replayed until then.
func replayLive[V any](f *file, now int64, st *CheckStats, val func(r *Record) V, setDeadline func(V, int64) V) (map[string]V, error) {
	type entry struct {
		v V
		d int64
	}
	state := map[string]entry{}
	apply := func(r *Record) {
		k := string(dbKey(nil, r))
		switch r.Op {
		case OpPut:
			state[k] = entry{val(r), r.Deadline}
		case OpExpire:
			if e, ok := state[k]; ok {
				e.d = r.Deadline
				state[k] = e
			}
		case OpDelete:
			delete(state, k)
		case OpFlushDB, OpFlushAll:
			dropFlushed(state, r)
		}
	}
	live := func() map[string]V {
		m := make(map[string]V, len(state))
		for k, e := range state {
			switch {
			case expiredAt(e.d, now):
				st.Expired++
			case setDeadline != nil:
				m[k] = setDeadline(e.v, e.d)
			default:
				m[k] = e.v
			}
		}
		return m
	}
	// replayBlock replays a block of the snapshot (i = 0) or of the log
	// (i = 1).
	replayBlock := func(i int, block []byte) error {
		st.Blocks[i]++
		st.Bytes[i] += int64(len(block))
		return eachRecord(block, func(r *Record) error {
			st.Records[r.Op]++
			if i == 0 && r.Op != OpPut {
				return fmt.Errorf("%w: %s record in the snapshot", ErrCorrupt, r.Op)
			}
			apply(r)
			return nil
		})
	}
	for i, bucket := range [][]byte{bucketBase, bucketLog} {
		err := f.each(bucket, func(seq uint64, block []byte) error {
			if err := replayBlock(i, block); err != nil {
				return fmt.Errorf("%s: %s block %d: %w", f.path, bucket, seq, err)
			}
			return nil
		})
		if err != nil {
			return live(), err
		}
	}
	err := replaySegments(f.path, func(_ walSegment, d segmentData) {
		st.Segments++
		st.SegmentTail += d.tail
	}, func(block []byte) error { return replayBlock(1, block) })
	return live(), err
}

// Export calls fn with the live keys of a data file as OpPut records,
// sorted by database and key, after replaying its log; keys whose
// deadline has passed at now are left out. The records are valid only
// during the call. The file is not changed.
func Export(path string, now int64, fn func(r *Record) error) error {
	f, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer f.close()
	st := CheckStats{Records: map[Op]int64{}}
	live, err := replayLive(f, now, &st, func(r *Record) Record {
		c := *r
		c.Key, c.Value = slices.Clone(r.Key), slices.Clone(r.Value)
		return c
	}, func(r Record, deadline int64) Record {
		r.Deadline = deadline
		return r
	})
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(live)) {
		r := live[k]
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}
