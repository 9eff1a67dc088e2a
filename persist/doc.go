// Package persist keeps sessiond's data set in a file, so that sessions
// survive restarts and crashes: snapshots, and a write-behind mode that
// loses at most the last second (or nothing, with FsyncAlways).
//
// persist knows nothing of the store or of Redis types. It reads the data
// set through a Source (a snapshot is captured part by part, each part
// under its own lock, and written after the lock is released), restores
// it through a Sink, and treats values as opaque bytes with a kind tag;
// cmd/sessiond adapts the store and the server's value encoding to both.
//
// # The file
//
// One bbolt database (go.etcd.io/bbolt) per data set, with three buckets:
// meta (format name, version, creation time, a completeness mark), base
// (a snapshot) and log (the changes made after it, in order). Both hold
// blocks of about 1 MiB under sequential keys, so every write appends: a
// snapshot of a million sessions is a few hundred large sequential
// writes, and a write-behind flush is one small transaction. A block is a
// run of records, each [crc32c][length][op db key kind deadline value];
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
// Capturing holds one part (store shard) locked for one pass over it, so
// the extra memory of a snapshot is about one shard's data (1/32 of the
// data set with the default 32 shards) plus bbolt's buffers, and serving
// never stops: other shards are served meanwhile, and the shard being
// captured waits only for a memory copy.
//
// # Write-behind (AppendOnly)
//
// KeyChanged and DBFlushed (called by the server for every write) mark
// keys dirty and record flushes. Once per FlushInterval, Run takes the
// dirty set and, through Source.CaptureKeys, writes the current state of
// each key (its value, or a deletion) after the flushes, in one bbolt
// transaction: two fsyncs per second however many keys changed. With
// FsyncAlways the server calls WaitDurable before it sends the replies of
// a client that changed something; the waiters share one transaction
// (group commit). With FsyncNo the transactions are not synced: a
// process crash loses no more than with FsyncEverySec, but a power loss
// may lose more and may leave the file damaged.
//
// The log grows with every change; once it is larger than both
// CompactMinSize and CompactPercent % of the snapshot, a compaction writes
// a fresh snapshot to a temporary file while flushes go on into the old
// file, then appends the changes made since it began (every key flushed
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
//   - A snapshot is a point in time per part, not across parts: a
//     command that changed keys of two shards may be half in it (as a
//     crash between its two writes would leave them). The write-behind
//     log captures dirty keys while no EXEC, script or database flush
//     runs (Source.CaptureKeys), so those are all in or all out.
//   - Save rules apply to snapshot mode; in AppendOnly mode the file is
//     kept current by the log, and SAVE/BGSAVE compact.
//   - A value larger than a block is one block of its own; bbolt holds
//     a whole transaction's blocks in memory until it commits.
package persist
