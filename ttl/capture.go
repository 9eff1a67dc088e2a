package ttl

// Shards returns the number of shards, the parts CaptureShard captures.
func (s *Store) Shards() int { return len(s.shards) }

// CaptureShard calls fn for every live entry of shard i, in no particular
// order, with the shard locked throughout: the entries are the shard's
// state at one instant (persistence captures a snapshot this way, shard by
// shard, and writes it after unlocking). fn must not use the store; key
// and e.Blob are valid only during the call, and e.Obj only while the
// shard is locked (fn may encode it, not keep it). Cost: the shard is
// locked for one pass over its entries.
func (s *Store) CaptureShard(i int, fn func(db int, key []byte, e Entry)) {
	sh := &s.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock() // fn may panic
	now := Now()
	for id := uint32(firstID); id < sh.nids; id++ {
		e := sh.ent(id)
		if e.meta == 0 || e.expiredAt(now) { // free, expired, or a zombie
			continue
		}
		key, out := sh.entryLocked(id, e)
		fn(e.db(), key, out)
	}
}

// AddExpired counts n keys as expired (Stats.Expired) without any key: a
// restore uses it for the entries whose deadline passed while the server
// was down, which it does not load.
func (s *Store) AddExpired(n uint64) {
	sh := &s.shards[0]
	sh.mu.Lock()
	sh.expired += n
	sh.mu.Unlock()
}
