// Package persist will hold sessiond's bbolt snapshots and write-behind
// log (its own issue). It is empty for now: sessiond keeps sessions in
// memory only, and a restart starts empty.
//
// The planned shape, so that ttl never learns about disks: persist declares
// the two small interfaces it consumes — a Source it ranges over to write a
// snapshot (captured per shard under the shard's lock, written outside it)
// and a Sink it restores into at start-up — and cmd/sessiond wires the store
// to them.
package persist
