// Package persist keeps sessiond's data set in a file, so that sessions
// survive restarts and crashes: snapshots, and a write-behind mode that
// loses at most the last second (or nothing, with FsyncAlways).
//
// persist knows nothing of the store or of Redis types. It reads the data
// set through a Source (a snapshot fixes one moment, then is captured a
// slice of keys at a time, each slice under its part's lock, and written
// after the lock is released), restores it through a Sink, and treats values as opaque bytes
// with a kind tag; cmd/sessiond adapts the store and the server's value
// encoding to both.
//
// # The file
//
// One bbolt database (go.etcd.io/bbolt) per data set, 64 KiB pages, with
// three buckets: meta (format name, version, creation time, a
// completeness mark), base (a snapshot) and log (the changes made after
// it, in order). Each transaction adds one chunk, a bucket of blocks of
// about 14 KiB, so every write appends: a snapshot of a million sessions
// is about a hundred 8 MiB transactions of sequential writes, and a
// write-behind flush is one small transaction. A block is a run of
// records, each [crc32c][length][op db key kind deadline value];
// the checksum covers the record, so damage anywhere in the data is found
// (bbolt checksums only its meta pages). Deadlines are absolute Unix
// milliseconds; records whose deadline passed while the server was down
// are not loaded and are counted as expired.
//
// # Snapshots
//
// A snapshot is written to <file>.tmp without an fsync per transaction,
// synced once, marked complete, then renamed over the file and the
// directory synced. The Manager keeps the file open, which keeps bbolt's
// lock on it: because the renamed file is already open (and locked), the
// path is locked before, during and after the rename, and a second
// process fails after Config.LockTimeout instead of sharing the file.
// A snapshot is point in time: Source.BeginCapture fixes a moment (the
// store locks every shard at once, for a bit per entry), CapturePart then
// copies the keys out as they were then, 128 per lock hold (~40 µs), and
// a key changed before the capture reached it is copied, as it was, by
// the goroutine that changes it (an event loop), under its shard lock
// (the store's PreserveFunc).
// No fork, no catch-up: the extra memory is two 8 MiB transactions and
// the old values of the keys written during the capture.
//
// A snapshot shares the machine with the server. The writer goroutine,
// which checksums the records and commits them, runs on a thread of
// Linux's SCHED_IDLE class (lowerThreadPriority), using CPU time the
// event loops leave; if the capture waits 500 ms for it (a saturated
// machine) it moves to a thread of normal priority, so that the snapshot
// ends. A pacer holds capture and writer together to Config.SaveCPU of
// one core, measured with their threads' CPU clocks, which spreads the
// disk writes too. The temporary file is mapped large enough up front
// that bbolt never remaps it (a remap copies the open transaction).
// SAVE and BGSAVE are paced; the final snapshot of Close is not.
//
// # Write-behind (AppendOnly)
//
// KeyChanged and DBFlushed (called by the server for every write) mark
// keys dirty and record flushes. Once per FlushInterval, Run takes the
// dirty set and, through Source.CaptureKeys, writes the current state of
// each key (its value, or a deletion) after the flushes, in one bbolt
// transaction: two fsyncs per second however many keys changed. A key
// whose deadline alone changed since the last flush (DeadlineChanged:
// EXPIRE, PERSIST, GETEX EX) is written as an OpExpire record, its key and
// deadline without the value. A load judges each key by the deadline it
// ends with, that of the last OpExpire after its last OpPut (a first pass
// over the log finds them): a sliding session whose earlier deadlines
// passed while the server was down is loaded if its last one has not. With
// FsyncAlways the replies of a client that changed something wait for
// the write that holds its changes (WaitDurable, or OnDurable for the
// server's event loops, which serve other clients meanwhile); the writers
// waiting at one time share one write (group commit). That write is not
// a bbolt transaction but an append to a log segment beside the file,
// with one fdatasync (wal.go); the segments are part of the log until a
// compaction replaces them, a start replays them after the file, and
// leaving FsyncAlways folds them into the file's log. bbolt's freelist is not written at each commit (NoFreelistSync): it is
// rebuilt when the file is opened. With FsyncNo the transactions are not synced: a
// process crash loses no more than with FsyncEverySec, but a power loss
// may lose more and may leave the file damaged.
//
// The log grows with every change; once it is larger than both
// CompactMinSize and CompactPercent % of the snapshot, a compaction writes
// a fresh snapshot to a temporary file while flushes go on into the old
// file, then appends the changes made since its moment (every key flushed
// or dirtied meanwhile, at its current state) and renames it into place.
// The file so stays within about twice the live data.
//
// # Failures
//
// A file that is not a sessiond file, damaged, or an unfinished snapshot
// is refused with an error naming it (ErrForeign, ErrCorrupt,
// ErrIncomplete), never loaded as empty; Config.DiscardUnreadable sets it
// aside as <file>.bad-<time> instead. A directory where the file cannot
// be created, or a full disk, is logged and reported in Stats.Err; the
// Manager keeps the changes it could not write and tries again, and the
// server keeps serving.
//
// # Caveats
//
//   - A snapshot is one moment of the whole store. The write-behind log
//     is exact per key: a flush reads the changed keys 256 at a time,
//     each slice while no EXEC, script or database flush runs
//     (Source.CaptureKeys), so a command or transaction that changed
//     several keys while a flush read them may reach the file over two
//     flushes, as a crash between two writes would leave them.
//   - Save rules apply to snapshot mode; in AppendOnly mode the file is
//     kept current by the log, and SAVE/BGSAVE compact.
//   - A value larger than a block is one block of its own; bbolt holds
//     a whole transaction's blocks in memory until it commits.
package persist
