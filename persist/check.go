package persist

import (
	"cmp"
	"errors"
	"fmt"
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
	live := map[string]uint8{} // db byte + key → kind, of live keys
	err = replay(f, now, &st, func(r *Record, expired bool) {
		k := string(append([]byte{byte(r.DB)}, r.Key...))
		switch r.Op {
		case OpPut:
			if expired {
				delete(live, k)
				st.Expired++
			} else {
				live[k] = r.Kind
			}
		case OpDelete:
			delete(live, k)
		case OpFlushDB:
			for lk := range live {
				if int(lk[0]) == r.DB {
					delete(live, lk)
				}
			}
		case OpFlushAll:
			clear(live)
		}
	})
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

// replay reads every record of f in order (snapshot, then log), counting
// them in st, and calls fn; expired tells whether an OpPut's deadline has
// passed at now.
func replay(f *file, now int64, st *CheckStats, fn func(r *Record, expired bool)) error {
	for i, bucket := range [][]byte{bucketBase, bucketLog} {
		err := f.each(bucket, func(seq uint64, block []byte) error {
			st.Blocks[i]++
			st.Bytes[i] += int64(len(block))
			err := eachRecord(block, func(r *Record) error {
				st.Records[r.Op]++
				if i == 0 && r.Op != OpPut {
					return fmt.Errorf("%w: %s record in the snapshot", ErrCorrupt, r.Op)
				}
				fn(r, r.Op == OpPut && r.Deadline != 0 && r.Deadline <= now)
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: %s block %d: %w", f.path, bucket, seq, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
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
	var st CheckStats
	st.Records = map[Op]int64{}
	live := map[string]Record{}
	err = replay(f, now, &st, func(r *Record, expired bool) {
		k := string(append([]byte{byte(r.DB)}, r.Key...))
		switch r.Op {
		case OpPut:
			if expired {
				delete(live, k)
				return
			}
			c := *r
			c.Key, c.Value = slices.Clone(r.Key), slices.Clone(r.Value)
			live[k] = c
		case OpDelete:
			delete(live, k)
		case OpFlushDB:
			for lk := range live {
				if int(lk[0]) == r.DB {
					delete(live, lk)
				}
			}
		case OpFlushAll:
			clear(live)
		}
	})
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(live))
	for k := range live {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(a, b) })
	for _, k := range keys {
		r := live[k]
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}
