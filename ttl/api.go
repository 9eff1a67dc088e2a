package ttl

// This file is the contract between ttl and its callers (server, persist).
// Bodies live in the other files of the package.

import (
	"context"
	"errors"
	"time"
)

// Kind tags a value. The caller defines the meaning of each kind (the
// command layer maps them to string, hash, set, ...); ttl only stores it.
type Kind uint8

// Object is a value kept on the Go heap, for kinds whose representation is a
// data structure rather than bytes (hashes, sets, sorted sets). ttl never
// looks inside; it only asks for an estimate of the memory it holds, which
// feeds Stats.
type Object interface {
	// MemoryUsage estimates the bytes the object holds.
	MemoryUsage() int
}

// PartExpirer is an Object whose parts (the fields of a hash) carry
// deadlines of their own. The store schedules such an object by its
// earliest part deadline, per shard, in the same pass that frees expired
// keys: no goroutine or timer per object.
//
// The store asks NextExpiry when the object is stored (Txn.SetObject) and
// whenever Txn.Touched reports a change, so a caller that changes part
// deadlines must call Touched. When the earliest deadline has passed, the
// store calls ExpireParts with its shard locked: from Run (or Drain), and
// from a Txn.Get, Store.Scan or Store.RandomKey that meets the object, so
// that no reader is handed an object holding an expired part. An object
// left with no part is deleted with its key. Each call that removed parts
// is reported to Config.OnObjectExpire.
//
// Both methods are called with the object's shard locked and must not use
// the store.
type PartExpirer interface {
	Object
	// NextExpiry returns the earliest deadline of a part, in Unix ms, or 0
	// if no part has one. A part expires when now > its deadline, the rule
	// for keys.
	NextExpiry() int64
	// ExpireParts removes parts expired at now, at most limit of them
	// (Run passes Config.ExpireBatch; readers pass math.MaxInt, so that
	// none is left), and returns how many it removed and how many parts
	// are left.
	ExpireParts(now int64, limit int) (removed, left int)
}

// Config configures a Store. Its zero value means defaults.
type Config struct {
	// Shards is the number of independently locked shards, a power of two
	// between 1 and 256. 0 means 32.
	Shards int
	// Databases is the number of logical databases (Redis's SELECT), 1 to
	// 256. 0 means 16.
	Databases int
	// ExpireBatch bounds the entries one shard frees per pass of Run, so
	// that a mass expiry never holds a shard lock for long. 0 means 512.
	ExpireBatch int
	// ChunkSize is the size of the off-heap arena chunks that hold keys and
	// byte values, a power of two between 64 KiB and 64 MiB. 0 means 256 KiB.
	ChunkSize int
	// OnExpire, when set, receives the keys the store expired, in batches,
	// grouped by database. It is called from Run's goroutine (and from
	// Drain), never with a shard lock held. keys and their bytes are only
	// valid during the call.
	OnExpire func(db int, keys [][]byte)
	// OnObjectExpire, when set, is told of every key whose object
	// (a PartExpirer) lost expired parts, once per removal: removed
	// reports that the object was left empty, so that its key was deleted
	// too. It is called from Run's goroutine (and from Drain), never with
	// a shard lock held; key is only valid during the call.
	OnObjectExpire func(db int, key []byte, removed bool)
}

// Errors returned by New.
var (
	// ErrConfig is returned by New when a Config field is out of range.
	ErrConfig = errors.New("ttl: invalid config")
)

// Entry is what a read finds under a key. Blob aliases store memory: it is
// valid only until the Txn that returned it modifies the store or unlocks.
type Entry struct {
	Kind Kind
	// Blob holds the value of byte kinds (Set); nil for object kinds.
	Blob []byte
	// Obj holds the value of object kinds (SetObject); nil for byte kinds.
	// The caller may mutate it while it holds the Txn (Get has handed it
	// to a running capture first), and must call Txn.Touched afterwards if
	// its memory usage changed.
	Obj Object
	// Deadline is the absolute expiry time in Unix milliseconds; 0 means
	// the entry never expires.
	Deadline int64
}

// Stats is a point-in-time summary of a Store.
type Stats struct {
	Keys        []int   // live keys per database (index = db)
	Expires     []int   // keys with a deadline, per database
	AvgTTL      []int64 // mean remaining ttl in ms of keys with a deadline, per db (0 if none)
	Expired     uint64  // keys removed because their deadline passed, since New
	ArenaBytes  int64   // bytes of arena chunks mapped (off-heap)
	ArenaLive   int64   // bytes of live records in those chunks
	IndexBytes  int64   // bytes of hash indexes, entry tables and wheels (Go heap)
	ObjectBytes int64   // sum of Object.MemoryUsage
	// ExpiredParts counts the parts removed by PartExpirer.ExpireParts
	// since New (Redis's expired_subkeys).
	ExpiredParts uint64
}

// Now returns the current time in Unix milliseconds, the unit of every
// deadline in this package.
func Now() int64 { return time.Now().UnixMilli() }

// compile-time reminder of the full API; see store.go etc.
var (
	_ = (*Store).Run
	_ = (*Store).Close
	_ = (*Store).Lock
	_ = (*Store).LockKeys
	_ = (*Store).LockAll
	_ = (*Store).Scan
	_ = (*Store).RandomKey
	_ = (*Store).Len
	_ = (*Store).Flush
	_ = (*Store).Stats
	_ = (*Store).Drain
	_ = (*Store).BeginCapture
	_ = (*Store).CaptureShard
	_ = (*Store).EndCapture
	_ = (*Txn).Get
	_ = (*Txn).Set
	_ = (*Txn).SetObject
	_ = (*Txn).SetDeadline
	_ = (*Txn).Delete
	_ = (*Txn).Touched
	_ = (*Txn).Now
	_ = (*Txn).Unlock
	_ = context.Background
)
