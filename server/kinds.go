package server

import "github.com/sessiond/sessiond/ttl"

// Value kinds stored in the ttl.Store. The store keeps the tag; only this
// package gives it a meaning.
const (
	kindString ttl.Kind = iota + 1
	kindHash
	kindSet
	kindZSet
	kindList
)

// typeName is what TYPE answers for a kind.
func typeName(k ttl.Kind) string {
	switch k {
	case kindString:
		return "string"
	case kindHash:
		return "hash"
	case kindSet:
		return "set"
	case kindZSet:
		return "zset"
	case kindList:
		return "list"
	}
	return "none"
}

// lookupEntry looks key up for a command on values of kind. A missing key
// is found=false, ok=true; a key of another kind gets the WRONGTYPE reply
// and ok=false. read counts keyspace hits and misses, as Redis's
// lookupKeyRead does (write lookups do not).
func (c *client) lookupEntry(tx *ttl.Txn, key []byte, kind ttl.Kind, read bool) (e ttl.Entry, found, ok bool) {
	e, found = tx.Get(c.db, key)
	if read {
		if found {
			c.hit()
		} else {
			c.miss()
		}
	}
	if found && e.Kind != kind {
		c.w.Error(errWrongType)
		return e, true, false
	}
	return e, found, true
}

// lookupKind is lookupEntry for an object kind: the object under key, the
// zero T (nil) for a missing key, ok=false after the WRONGTYPE reply.
func lookupKind[T ttl.Object](c *client, tx *ttl.Txn, key []byte, kind ttl.Kind, read bool) (obj T, ok bool) {
	e, found, ok := c.lookupEntry(tx, key, kind, read)
	if !found || !ok {
		return obj, ok
	}
	return e.Obj.(T), true
}

// The lookups of the object kinds.
func (c *client) lookupHash(tx *ttl.Txn, key []byte, read bool) (*hashObj, bool) {
	return lookupKind[*hashObj](c, tx, key, kindHash, read)
}

func (c *client) lookupSet(tx *ttl.Txn, key []byte, read bool) (*setObj, bool) {
	return lookupKind[*setObj](c, tx, key, kindSet, read)
}

func (c *client) lookupZSet(tx *ttl.Txn, key []byte, read bool) (*zsetObj, bool) {
	return lookupKind[*zsetObj](c, tx, key, kindZSet, read)
}

// objectWritten finishes a write that added to or changed obj, the object
// under key: a new object is stored (without a deadline), a changed one
// told to the store (Txn.Touched: memory, part deadlines); then the event.
func (c *client) objectWritten(tx *ttl.Txn, key []byte, kind ttl.Kind, obj ttl.Object, isNew bool, class eventClass, event string) {
	if isNew {
		tx.SetObject(c.db, key, kind, obj, 0)
	} else {
		tx.Touched(c.db, key)
	}
	c.changed(class, event, c.db, key)
}

// objectShrunk finishes a write that removed parts (fields, members) of the
// object under key: the key goes when the object is empty, as Redis keeps
// no empty collection, else the store is told (Txn.Touched); then the
// event, and "del" after it when the key went.
func (c *client) objectShrunk(tx *ttl.Txn, key []byte, empty bool, class eventClass, event string) {
	if empty {
		tx.Delete(c.db, key)
	} else {
		tx.Touched(c.db, key)
	}
	c.changed(class, event, c.db, key)
	if empty {
		c.event(evGeneric, "del", c.db, key)
	}
}

// removeParts answers SREM, ZREM and HDEL: it removes the parts (members,
// fields) args[2:] from the object of kind under args[1], stopping at the
// last one (the key goes with it, as in Redis), and replies with how many
// went. remove removes one part, size counts those left.
func removeParts[T ttl.Object](s *Server, c *client, args [][]byte, kind ttl.Kind, remove func(T, []byte) bool, size func(T) int, class eventClass, event string) {
	key := args[1]
	tx := s.store.Lock(key)
	defer tx.Unlock()
	e, found, ok := c.lookupEntry(&tx, key, kind, false)
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	obj := e.Obj.(T)
	var removed int64
	for _, p := range args[2:] {
		if remove(obj, p) {
			removed++
			if size(obj) == 0 {
				break
			}
		}
	}
	if removed > 0 {
		c.objectShrunk(&tx, key, size(obj) == 0, class, event)
	}
	c.w.Int(removed)
}

// scanObject runs the steps SSCAN, ZSCAN and HSCAN share, in Redis's
// order: the cursor, the key's type, an empty reply for a missing key, then
// the options (extra: as for parseScanOpts). scan does the rest, under the
// key's lock.
func scanObject[T ttl.Object](s *Server, c *client, args [][]byte, kind ttl.Kind, extra int, scan func(obj T, cursor uint64, opts scanOpts)) {
	cursor, ok := parseScanCursor(args[2])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	tx := s.store.Lock(args[1])
	defer tx.Unlock()
	e, found, ok := c.lookupEntry(&tx, args[1], kind, true)
	if !ok {
		return
	}
	if !found {
		c.writeScanReply(0, nil)
		return
	}
	opts, ok := parseScanOpts(c, args[3:], extra)
	if !ok {
		return
	}
	scan(e.Obj.(T), cursor, opts)
}

// storeResult writes the result of a STORE command (SINTERSTORE,
// ZRANGESTORE, ...), res of n members, to dst: a non-empty result replaces
// dst (without a deadline, as Redis's setKey), an empty one deletes it. It
// replies with n.
func (c *client) storeResult(tx *ttl.Txn, dst []byte, kind ttl.Kind, res ttl.Object, n int, class eventClass, event string) {
	if n == 0 {
		if tx.Delete(c.db, dst) {
			c.changed(evGeneric, "del", c.db, dst)
		}
		c.w.Int(0)
		return
	}
	tx.SetObject(c.db, dst, kind, res, 0)
	c.w.Int(int64(n))
	c.changed(class, event, c.db, dst)
}

// parsePopCount parses the optional count of SPOP, ZPOPMIN and ZPOPMAX
// (args[2]): -1 without one. It writes the error reply and returns
// ok=false for a bad count or extra arguments.
func parsePopCount(c *client, args [][]byte) (count int64, ok bool) {
	if len(args) > 3 {
		c.w.Error(errSyntax)
		return 0, false
	}
	if len(args) < 3 {
		return -1, true
	}
	n, ok := parseInt(args[2])
	if !ok || n < 0 {
		c.w.Error(errNotIntOrNeg)
		return 0, false
	}
	return n, true
}
