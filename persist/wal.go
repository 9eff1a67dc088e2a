package persist

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The always mode's log (appendfsync always). A bbolt commit costs two
// fsyncs (the pages, then the meta page), and a group commit of the
// write-behind log paid both before its writers got their replies. With
// always, each group commit is instead appended to a plain file beside
// the data file, a segment of the log, and made durable with one
// fdatasync, as Redis's AOF does. The segments count as the data file's
// log: they are what the next compaction replaces (its file holds all
// they do; it deletes them), so every change is written once, then once
// more by the compaction, as in the everysec mode. A start replays them
// after the data file's own log and keeps them; leaving the always mode
// folds them into the data file's log first (one bbolt transaction).
//
// A segment is a sequence of frames: [payload length, 4 bytes LE][CRC-32C
// of the payload, 4 bytes LE][payload: one block of records]. A frame cut
// short or damaged ends its segment's replay: only the last frame written
// before a crash can be, and its writers were never answered; a failed
// write seals its segment, so no frame follows a damaged one.
//
// Replaying a segment twice (a crash between a fold and the deletion of
// the segments) is harmless: its records are full states of keys, in
// order, and every later change of those keys follows in later segments.

// walSuffix precedes the segment's generation in its file name.
const walSuffix = ".wal."

// walSegmentBytes is the size at which a segment is sealed and the next
// one begun.
const walSegmentBytes = 64 << 20

const walFrameHeader = 8

// walLog is the Manager's always-mode log; fmu guards it.
type walLog struct {
	base     string // the data file's path
	maxBytes int64  // walSegmentBytes (tests lower it)
	f        *os.File
	gen      uint64   // the last generation used (f's, if open)
	size     int64    // bytes in f
	total    int64    // bytes in every segment
	sealed   []string // paths of the closed segments, oldest first
	buf      []byte
}

func walPath(base string, gen uint64) string {
	return base + walSuffix + strconv.FormatUint(gen, 10)
}

// walSegment is a segment file found beside a data file.
type walSegment struct {
	path string
	gen  uint64
}

// walSegments lists base's segments, oldest first.
func walSegments(base string) ([]walSegment, error) {
	names, err := filepath.Glob(base + walSuffix + "*")
	if err != nil {
		return nil, err
	}
	var segs []walSegment
	for _, n := range names {
		gen, err := strconv.ParseUint(strings.TrimPrefix(n, base+walSuffix), 10, 64)
		if err != nil {
			continue // not ours (a segment set aside, say)
		}
		segs = append(segs, walSegment{n, gen})
	}
	slices.SortFunc(segs, func(a, b walSegment) int { return cmp.Compare(a.gen, b.gen) })
	return segs, nil
}

// segmentData is what readWAL found in a segment.
type segmentData struct {
	blocks [][]byte
	size   int64 // bytes of the file
	tail   int64 // bytes after the last whole frame: a write cut short, ignored
}

// readWAL reads the segment at path: the blocks of its frames, up to the
// first one cut short or damaged.
func readWAL(path string) (segmentData, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return segmentData{}, err
	}
	d := segmentData{size: int64(len(b))}
	for len(b) >= walFrameHeader {
		n := binary.LittleEndian.Uint32(b)
		sum := binary.LittleEndian.Uint32(b[4:])
		if uint64(n) > uint64(len(b)-walFrameHeader) || crc32.Checksum(b[walFrameHeader:walFrameHeader+n], castagnoli) != sum {
			break
		}
		d.blocks = append(d.blocks, b[walFrameHeader:walFrameHeader+n:walFrameHeader+n])
		b = b[walFrameHeader+n:]
	}
	d.tail = int64(len(b))
	return d, nil
}

// replaySegments reads base's segments, oldest first, and calls seg with
// each, then block with each of its blocks in order.
func replaySegments(base string, seg func(walSegment, segmentData), block func([]byte) error) error {
	segs, err := walSegments(base)
	if err != nil {
		return err
	}
	for _, s := range segs {
		d, err := readWAL(s.path)
		if err != nil {
			return err
		}
		seg(s, d)
		for j, b := range d.blocks {
			if err := block(b); err != nil {
				return fmt.Errorf("%s: frame %d: %w", s.path, j, err)
			}
		}
	}
	return nil
}

// empty reports whether there is no segment.
func (w *walLog) empty() bool { return w.f == nil && len(w.sealed) == 0 }

// append writes blocks to the current segment (created if need be) and
// waits for them to be durable.
func (w *walLog) append(blocks [][]byte) error {
	if w.f == nil {
		w.gen++
		path := walPath(w.base, w.gen)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		// The new name must survive a crash as much as the frames do.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		w.f, w.size = f, 0
	}
	buf := w.buf[:0]
	for _, b := range blocks {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(b)))
		buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(b, castagnoli))
		buf = append(buf, b...)
	}
	if cap(buf) <= 4<<20 {
		w.buf = buf
	}
	if _, err := w.f.Write(buf); err != nil {
		// A partial frame may be in the file: start a new segment, so
		// that no frame follows it.
		w.seal()
		return err
	}
	if err := datasync(w.f); err != nil {
		w.seal()
		return err
	}
	w.size += int64(len(buf))
	w.total += int64(len(buf))
	if w.size >= w.maxBytes {
		w.seal()
	}
	return nil
}

// seal closes the current segment; the next append begins another.
func (w *walLog) seal() {
	if w.f == nil {
		return
	}
	_ = w.f.Close()
	w.sealed = append(w.sealed, walPath(w.base, w.gen))
	w.f, w.size = nil, 0
}

// discard deletes every segment, oldest first: the data file now holds
// all they do. A segment that cannot be deleted stays listed (and the
// newer ones with it), to be tried again.
func (w *walLog) discard() error {
	w.seal()
	for len(w.sealed) > 0 {
		if err := os.Remove(w.sealed[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		w.sealed = w.sealed[1:]
	}
	w.total = 0
	return nil
}

// foldSegments appends the blocks of the segments at paths, in order, to
// f's log in one transaction.
func foldSegments(f *file, paths []string) error {
	var blocks [][]byte
	for _, p := range paths {
		d, err := readWAL(p)
		if err != nil {
			return err
		}
		blocks = append(blocks, d.blocks...)
	}
	return f.appendBlocks(bucketLog, blocks)
}

// drainWALLocked folds every segment into the data file's log and
// deletes them, before a write to the data file that must follow them
// (leaving the always mode): fmu is held.
func (m *Manager) drainWALLocked() error {
	w := &m.wal
	if w.empty() {
		return nil
	}
	if m.cur == nil {
		return errors.New("persist: no data file to fold the log segments into")
	}
	w.seal()
	if err := foldSegments(m.cur, w.sealed); err != nil {
		return err
	}
	err := w.discard()
	m.noteSizesLocked()
	return err
}

// loadWAL replays the segments left beside the data file into sink, after
// the file's own log, and keeps them: the next append begins a new one.
func (m *Manager) loadWAL(rp *replayer, st *LoadStats) error {
	w := &m.wal
	return replaySegments(m.path, func(s walSegment, d segmentData) {
		if d.tail > 0 {
			m.log.Warn("a log segment ends in an incomplete write, ignored (its writers were not answered)", "file", s.path, "bytes", d.tail)
		}
		w.total += d.size
		w.sealed = append(w.sealed, s.path)
		w.gen = max(w.gen, s.gen)
	}, func(b []byte) error {
		st.Bytes += int64(len(b))
		return rp.logBlock(b, st)
	})
}

// setAsideWAL renames the segments beside the data file out of the way,
// with suffix, when the file itself is set aside: replayed over the empty
// file that replaces it they would bring back part of its data.
func (m *Manager) setAsideWAL(suffix string) error {
	if m.wal.f != nil {
		_ = m.wal.f.Close()
	}
	m.wal = walLog{base: m.wal.base, maxBytes: m.wal.maxBytes}
	segs, err := walSegments(m.path)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := os.Rename(s.path, s.path+suffix); err != nil {
			return err
		}
	}
	return nil
}
