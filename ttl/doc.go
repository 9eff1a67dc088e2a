// Package ttl is sessiond's key-value store: a sharded in-memory map from
// (database, key) to a value with an optional deadline, that frees expired
// keys within a millisecond of their deadline while keeping the bytes per
// key close to the bytes of the key and value themselves.
//
// # Design
//
// A Store is split into Config.Shards shards, chosen by a seeded hash
// (hash/maphash) of the key alone, each with its own mutex. Callers lock a
// key's shard with Store.Lock (or several with LockKeys, all with LockAll)
// and work through the returned Txn, which sees one instant of time.
//
// Each shard holds:
//   - an entry table: 24-byte pointer-free entries addressed by a uint32 id
//     (deadline, record location, kind, database, wheel links), in segments
//     of 1024 that never move; freed ids are reused;
//   - per database, a hash index lazily allocated: Robin Hood linear
//     probing over a []uint32 of ids and a []uint8 of probe distances,
//     deleting by backward shift, growing at 7/8 load and shrinking under
//     1/4; keys are compared in the arena;
//   - an arena of off-heap chunks holding one record per key,
//     [klen uvarint][vlen<<1|object uvarint][key][value];
//   - a hierarchical timer wheel (see Expiry);
//   - a side table for the Object of object kinds.
//
// ttl never looks inside values: Kind is the caller's tag, byte values are
// stored as blobs and structured values as Objects.
//
// # Memory
//
// Keys and byte values live in chunks of Config.ChunkSize bytes obtained
// with mmap (anonymous, private) on Linux, outside the Go heap; a record
// larger than a quarter chunk gets a mapping of its own. Records are
// appended to the shard's head chunk. A chunk is unmapped as soon as it
// holds no live record, so memory goes back to the operating system after
// a mass expiry. Run compacts: it moves the live records of a chunk less
// than half live into the head, a bounded amount per step, then unmaps the
// chunk. Everything on the Go heap (entries, indexes, wheels) is
// pointer-free, so the garbage collector has almost nothing to scan.
//
// Per key, the store costs its record (the key, the value and 2 to 4 bytes
// of header), a 24-byte entry and 6 to 9 bytes of index (5 bytes a slot at
// 58% to 88% load). A million sessions of a 42-byte key, a 700-byte value
// and a deadline take about 779 bytes of process RSS each
// (BenchmarkMemory1M).
//
// # Expiry
//
// An entry's deadline is the truth: a key is expired when now > deadline,
// every read compares the two, and no read returns an expired entry. A Txn
// that meets an expired entry removes it from the index and counts it; its
// key then goes to OnExpire from Run.
//
// Every shard has a hierarchical timer wheel of 11 levels of 64 slots,
// 1 ms resolution, covering every int64 deadline. Entries are linked into
// slots through the entry table (no goroutine, closure or channel per
// key); scheduling and cancelling are O(1), and per-level occupancy
// bitmaps find the next due slot without walking empty ones.
//
// Run is one goroutine: it sleeps until the earliest due time of any shard
// (a schedule that moves a shard's due time earlier wakes it), then frees
// due entries in passes of at most Config.ExpireBatch per shard lock, and
// hands their keys to OnExpire, grouped by database, after unlocking. An
// idle store costs nothing; a million keys expiring together are freed in
// well under a second without long lock holds.
//
// # Objects whose parts expire
//
// An Object that implements PartExpirer (a hash with per-field TTLs) is
// scheduled by its earliest part deadline in a per-shard min-heap of
// (wake, entry id) items, next to the wheel; the shard's due time is the
// earlier of the two, so the same Run pass that frees keys has the object
// expire its parts, at most Config.ExpireBatch per pass, and deletes the
// key when no part is left. The schedule is tied to the entry: DEL, a
// replacing SET and the source side of a RENAME drop it with the object
// record (heap items are hints checked against the record, so nothing
// else is touched); SetObject and Touched reschedule. A reader never sees
// an expired part: Get, Delete, SetDeadline, Scan and RandomKey have a due
// object expire its parts first. OnObjectExpire hears of every removal,
// from Run, after the shard is unlocked.
// # Eviction
//
// A caller over its memory limit calls Evict, which removes keys by the
// Policy set with SetEviction (Redis's maxmemory-policy names) and reports
// the memory given back to the OS: chunks unmapped and Objects dropped.
// volatile-ttl takes the entries of the earliest occupied wheel slot of
// the shard whose earliest slot comes first. LRU and LFU policies keep 4
// bytes per entry id in a table parallel to the entry table, allocated
// only while such a policy is set and updated by every lookup (a 64 ms
// clock, or Redis's logarithmic counter with decay); they and the random
// policies sample entries, keeping a pool of the best 16 per shard. As
// scattered removals leave holes in chunks, Evict compacts the sparsest
// chunk whenever a shard's dead bytes pass an eighth of its mapped bytes,
// so mapped memory tracks the live records. MappedBytes is the off-heap
// total, one atomic load.
//
// # Captures
//
// BeginCapture fixes a moment for a snapshot: it locks every shard at
// once and gives each a bit per entry id. CaptureShard then visits the
// entries whose bit is clear, a slice per lock hold, setting it; a write
// to such an entry (Set, SetObject, SetDeadline, Delete, a flush, a part
// expiry, or a Get that hands out an Object, which the caller may change
// in place) first passes the entry as it was to the capture's
// PreserveFunc, under the same lock. So every entry is captured exactly
// once, as it was at the start, and the cost falls on the first write to
// each entry during the capture. Entries created meanwhile are marked at
// allocation; expired and evicted ones are left out.
//
// # Concurrency
//
// All methods are safe for concurrent use. A Txn is owned by one goroutine
// and holds its shards' mutexes until Unlock. LockKeys locks in shard
// order, so concurrent LockKeys calls cannot deadlock; taking a second Txn
// while holding one can. Scan, RandomKey, Len, Flush and Stats lock one
// shard at a time and must not be called while holding a Txn. OnExpire is
// called from Run or Drain with no shard locked, one call at a time.
//
// # Caveats
//
//   - Entry.Blob and the keys passed to Scan and OnExpire point into the
//     arena. Using them after they stop being valid (after the Txn modifies
//     the store or unlocks) may read another key's bytes or, when the
//     chunk was unmapped, crash the process with a fault that cannot be
//     recovered.
//   - Len and Stats count expired keys that no reader met and Run has not
//     freed yet, and objects whose last part expired likewise; Run frees
//     them within a millisecond of their deadline.
//   - A Set or SetDeadline with a deadline at or before the Txn's Now
//     deletes the key without counting it as expired, as Redis does.
//   - Methods panic on a database out of range, on a key whose shard the
//     Txn does not hold, and on a Txn used after Unlock.
//   - Each chunk is a separate mapping; with small chunks and a large data
//     set the number of mappings may approach vm.max_map_count.
//   - The store is not usable after Close; Close must follow Run's return.
package ttl
