package ttl

// Shards returns the number of shards, the parts CaptureShard captures.
func (s *Store) Shards() int { return len(s.shards) }

// CaptureShard calls fn for the live entries of shard i from cursor on (0
// to begin), at most limit of them, with the shard locked for the call, and
// returns the cursor to continue from, 0 when the shard is done. A key
// that lives in the shard during the whole capture is visited exactly
// once; keys added, changed or removed between two calls may or may not
// be seen as they were (persistence tracks those changes itself). So a
// snapshot holds the lock for one short slice at a time, however large
// the shard. fn must not use the store; key and e.Blob are valid only
// during the call, and e.Obj only while the shard is locked (fn may
// encode it, not keep it).
func (s *Store) CaptureShard(i int, cursor uint64, limit int, fn func(db int, key []byte, e Entry)) uint64 {
	sh := &s.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock() // fn may panic
	now := Now()
	id := max(uint32(min(cursor, uint64(^uint32(0)))), firstID)
	budget := 4 * limit // ids looked at, live or not
	for ; id < sh.nids && limit > 0 && budget > 0; id++ {
		budget--
		e := sh.ent(id)
		if e.meta == 0 || e.expiredAt(now) { // free, expired, or a zombie
			continue
		}
		limit--
		key, out := sh.entryLocked(id, e)
		fn(e.db(), key, out)
	}
	if id >= sh.nids {
		return 0
	}
	return uint64(id)
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
