package persist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The file is a bbolt database with three buckets:
//
//	meta: format, version, created (Unix ms), complete ("1" once a
//	      snapshot was fully written)
//	base: chunk number (8 bytes big endian) → bucket of
//	      block number (8 bytes big endian) → block; a snapshot
//	log:  the same; changes after the snapshot, in order
//
// A block is a run of framed records (record.go) of at most blockSize
// bytes (unless one record is larger). Each transaction writes one chunk: a new bucket, so that it only
// adds pages (bbolt keeps values inline in leaf pages; blocks appended to
// one bucket would make every transaction read and rewrite the last
// leaf). Files have 64 KiB pages and blocks of at most a quarter page
// less bbolt's headers, so that a leaf of four blocks fills one page:
// bbolt writes it from its pool of page buffers, where a leaf larger than
// a page would need a fresh buffer (garbage for the collector) at every
// commit.
const (
	formatName = "sessiond-persist"
	// formatVersion is the version this sessiond writes and the newest it
	// reads. 2 added OpExpire records; a version 1 file opened for writing
	// is raised to 2 first (file.init), so that an older sessiond refuses
	// it by its version instead of calling its new records damage.
	formatVersion = 2
	pageSize      = 64 << 10
	// blockSize: four blocks, each with bbolt's 16-byte leaf element and
	// 8-byte key, and the 16-byte page header make one page.
	blockSize = (pageSize-16)/4 - 24
)

var (
	bucketMeta = []byte("meta")
	bucketBase = []byte("base")
	bucketLog  = []byte("log")
)

// Errors returned when a file cannot be used. They are wrapped with the
// file's path; compare with errors.Is.
var (
	// ErrLocked is returned by Open when another process (or another
	// Manager) holds the file.
	ErrLocked = errors.New("persist: file is in use by another process")
	// ErrForeign is returned when the file is not a sessiond data file, or
	// one of a newer format version.
	ErrForeign = errors.New("persist: not a sessiond data file")
	// ErrIncomplete is returned for a snapshot that was never finished.
	ErrIncomplete = errors.New("persist: incomplete snapshot")
)

// file is an open data file.
type file struct {
	path    string
	db      *bolt.DB
	version int // the format version in its meta
	// next chunk numbers of base and log, and the bytes of blocks in
	// each (for compaction and INFO).
	baseSeq, logSeq     uint64
	baseBytes, logBytes int64
	// endReadAhead stops the reading ahead openFile starts (readAhead).
	endReadAhead func()
}

// fileOpts are how files are opened.
type fileOpts struct {
	timeout  time.Duration // bbolt's lock timeout
	maxSize  int           // bbolt's MaxSize; 0 = none
	readOnly bool          // a shared lock; the file is never changed
	// mmapSize is bbolt's InitialMmapSize: the address space mapped at
	// open, which the file can grow into without a remap (each remap
	// copies the open transaction's keys and values out of the map).
	mmapSize int
}

func boltOptions(o fileOpts, noSync bool) *bolt.Options {
	return &bolt.Options{
		Timeout:      o.timeout,
		ReadOnly:     o.readOnly,
		FreelistType: bolt.FreelistMapType,
		// The freelist is rebuilt at open (a scan of the few thousand
		// pages), not written at every commit: a write-behind flush is
		// then its pages and the meta page.
		NoFreelistSync: true,
		NoSync:         noSync,
		// A snapshot's temporary file is synced once at the end; the
		// fsync bbolt does at each growth would only slow it down.
		NoGrowSync:      noSync,
		MaxSize:         o.maxSize,
		PageSize:        pageSize, // for new files; an existing file keeps its own
		InitialMmapSize: o.mmapSize,
	}
}

// openFile opens the data file at path, taking its lock, and checks that
// it is a complete sessiond file. Without o.readOnly it creates an empty
// file if there is none; with it, the file must exist and is not changed.
func openFile(path string, o fileOpts) (f *file, err error) {
	if o.readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
	}
	// Reading the file begins now and goes on while it is replayed (Load,
	// Check, Export); file.doneReading or close ends it.
	endReadAhead := readAhead(path)
	defer func() {
		// bbolt panics on some damaged pages; turn that into an error.
		if r := recover(); r != nil {
			if f != nil {
				_ = f.db.Close()
			}
			f, err = nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, r)
		}
		if f == nil {
			endReadAhead()
		}
	}()
	db, err := bolt.Open(path, 0o600, boltOptions(o, o.readOnly))
	if err != nil {
		return nil, classifyOpenError(path, err)
	}
	f = &file{path: path, db: db, endReadAhead: endReadAhead}
	if o.readOnly {
		err = db.View(f.readMeta)
	} else {
		err = f.init(false)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return f, nil
}

// doneReading ends the reading ahead of openFile, once the file has been
// replayed.
func (f *file) doneReading() {
	if f != nil && f.endReadAhead != nil {
		f.endReadAhead()
	}
}

// classifyOpenError tells why bbolt could not open path: the lock is
// held (ErrLocked), the environment (a permission, a missing directory, a
// full disk: returned as is), or else what the file holds (ErrForeign:
// bbolt also fails with plain errors, such as "file size too small", on
// files that are not its own).
func classifyOpenError(path string, err error) error {
	var pe *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%s: %w (bbolt lock timeout)", path, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("%s: %w (%v)", path, ErrForeign, err)
	case errors.As(err, &pe), errors.As(err, &errno):
		return fmt.Errorf("%s: %w", path, err)
	}
	return fmt.Errorf("%s: %w (%v)", path, ErrForeign, err)
}

// init creates the buckets of a new (empty) file, complete unless fresh
// (a snapshot's temporary file, marked complete by finish), or checks and
// reads the meta of an existing one.
func (f *file) init(fresh bool) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil || bucketCount(tx) > 0 {
			if err := f.readMeta(tx); err != nil {
				return err
			}
			if f.version < formatVersion {
				if err := tx.Bucket(bucketMeta).Put([]byte("version"), []byte(strconv.Itoa(formatVersion))); err != nil {
					return err
				}
				f.version = formatVersion
			}
			return nil
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketBase, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		put := func(k, v string) error { return meta.Put([]byte(k), []byte(v)) }
		if err := errors.Join(
			put("format", formatName),
			put("version", strconv.Itoa(formatVersion)),
			put("created", strconv.FormatInt(time.Now().UnixMilli(), 10)),
		); err != nil {
			return err
		}
		if !fresh {
			return put("complete", "1")
		}
		return nil
	})
}

// readMeta checks that tx's file is a complete sessiond file of a version
// this one reads, and reads the chunk numbers and sizes of its buckets.
func (f *file) readMeta(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%s: %w (a bbolt database without sessiond's meta bucket)", f.path, ErrForeign)
	}
	if string(meta.Get([]byte("format"))) != formatName {
		return fmt.Errorf("%s: %w (format %q)", f.path, ErrForeign, meta.Get([]byte("format")))
	}
	v, err := strconv.Atoi(string(meta.Get([]byte("version"))))
	if err != nil || v < 1 || v > formatVersion {
		return fmt.Errorf("%s: %w (format version %q; this sessiond reads up to %d)", f.path, ErrForeign, meta.Get([]byte("version")), formatVersion)
	}
	f.version = v
	if string(meta.Get([]byte("complete"))) != "1" {
		return fmt.Errorf("%s: %w", f.path, ErrIncomplete)
	}
	base, log := tx.Bucket(bucketBase), tx.Bucket(bucketLog)
	if base == nil || log == nil {
		return fmt.Errorf("%s: %w: a bucket is missing", f.path, ErrCorrupt)
	}
	f.baseSeq, f.baseBytes = scanBucket(base)
	f.logSeq, f.logBytes = scanBucket(log)
	return nil
}

func bucketCount(tx *bolt.Tx) int {
	n := 0
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
	return n
}

// scanBucket returns the next chunk number of a block bucket and the
// bytes of its blocks. It reads only the leaf pages' headers (keys and
// value sizes), not the blocks.
func scanBucket(b *bolt.Bucket) (next uint64, size int64) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue
		}
		if chunk := b.Bucket(k); chunk != nil {
			cc := chunk.Cursor()
			for bk, bv := cc.First(); bk != nil; bk, bv = cc.Next() {
				size += int64(len(bv))
			}
		}
	}
	if k, _ := c.Last(); len(k) == 8 {
		next = binary.BigEndian.Uint64(k) + 1
	}
	return next, size
}

// createTemp creates a fresh file at path (removing what is there), for a
// snapshot: written without fsync per transaction, synced once by finish.
func createTemp(path string, o fileOpts) (*file, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, boltOptions(o, true))
	if err != nil {
		return nil, classifyOpenError(path, err)
	}
	f := &file{path: path, db: db}
	if err := f.init(true); err != nil {
		_ = db.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return f, nil
}

// appendBlocks appends blocks to bucket in one transaction. The blocks must
// stay unchanged until it returns.
func (f *file) appendBlocks(bucket []byte, blocks [][]byte) error {
	if len(blocks) == 0 {
		return nil
	}
	err := f.db.Update(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucket)
		parent.FillPercent = 1 // keys only ever grow
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], f.seqOf(bucket))
		b, err := parent.CreateBucket(k[:])
		if err != nil {
			return err
		}
		b.FillPercent = 1
		for i, blk := range blocks {
			binary.BigEndian.PutUint64(k[:], uint64(i))
			if err := b.Put(k[:], blk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var n int64
	for _, blk := range blocks {
		n += int64(len(blk))
	}
	if bytes.Equal(bucket, bucketBase) {
		f.baseSeq++
		f.baseBytes += n
	} else {
		f.logSeq++
		f.logBytes += n
	}
	return nil
}

func (f *file) seqOf(bucket []byte) uint64 {
	if bytes.Equal(bucket, bucketBase) {
		return f.baseSeq
	}
	return f.logSeq
}

// finish marks a temporary snapshot complete and makes it durable (the
// data pages, then the meta page that points at them).
func (f *file) finish() error {
	f.db.NoSync = false
	if err := f.db.Sync(); err != nil {
		return err
	}
	return f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("complete"), []byte("1"))
	})
}

func (f *file) close() error {
	if f == nil || f.db == nil {
		return nil
	}
	f.doneReading()
	err := f.db.Close()
	f.db = nil
	return err
}

// each calls fn for every block of bucket, in order, inside one read
// transaction; a block is valid only until the transaction ends (the
// return of each), so fn may hand it to workers that finish before. seq
// numbers the blocks from 0.
func (f *file) each(bucket []byte, fn func(seq uint64, block []byte) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: %v", f.path, ErrCorrupt, r)
		}
	}()
	return f.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return fmt.Errorf("%s: %w: bucket %s is missing", f.path, ErrCorrupt, bucket)
		}
		var seq uint64
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			chunk := b.Bucket(k)
			if len(k) != 8 || v != nil || chunk == nil {
				return fmt.Errorf("%s: %w: bad chunk %x in %s", f.path, ErrCorrupt, k, bucket)
			}
			cc := chunk.Cursor()
			for bk, bv := cc.First(); bk != nil; bk, bv = cc.Next() {
				if len(bk) != 8 || bv == nil {
					return fmt.Errorf("%s: %w: bad block key %x in %s", f.path, ErrCorrupt, bk, bucket)
				}
				if err := fn(seq, bv); err != nil {
					return err
				}
				seq++
			}
		}
		return nil
	})
}

// syncDir makes a rename or a new name in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// replaceFile renames tmp over path and makes the rename durable; tmp
// becomes the file at path (its lock stays held: the lock belongs to the
// open file, so the path is locked before and after).
func replaceFile(tmp *file, path string) error {
	if err := os.Rename(tmp.path, path); err != nil {
		return err
	}
	tmp.path = path
	return syncDir(filepath.Dir(path))
}
