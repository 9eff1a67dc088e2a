package server

// Keyspace notifications and change signals.
//
// Every handler that modifies a key reports it once, after the change, with
// c.changed (or its two halves, c.signal and c.event). signal feeds WATCH
// and the persistence change tracker; event feeds keyspace notifications
// (notify-keyspace-events). Both are cheap no-ops when nobody listens, and
// both may be called with a store lock held: events are queued on the
// client and published after the command returns.

// eventClass is a set of notify-keyspace-events classes.
type eventClass uint16

// The classes, one per notify-keyspace-events flag letter.
const (
	evKeyspace eventClass = 1 << iota // K: __keyspace@<db>__:<key> channels
	evKeyevent                        // E: __keyevent@<db>__:<event> channels
	evGeneric                         // g: DEL, EXPIRE, RENAME, ...
	evString                          // $
	evList                            // l
	evSet                             // s
	evHash                            // h
	evZSet                            // z
	evExpired                         // x
	evEvicted                         // e
	evStream                          // t
	evKeyMiss                         // m
	evModule                          // d
	evNew                             // n

	evAll = evGeneric | evString | evList | evSet | evHash | evZSet | evExpired | evEvicted | evStream | evModule // A
)

// changed reports that key in db was modified by the running command and
// publishes event in class: the usual pair of calls of a write.
func (c *client) changed(class eventClass, event string, db int, key []byte) {
	c.srv.signalKey(db, key)
	c.unsynced = true
	c.srv.publishEvent(class, event, db, key)
}

// deadlineChanged is changed for a write that changed key's deadline
// alone (EXPIRE and its variants, PERSIST, GETEX with an option), which
// persistence records as such; event is "expire" or "persist". A write
// that also changes the value reports "set" or the like with changed, and
// "expire" with event.
func (c *client) deadlineChanged(event string, db int, key []byte) {
	c.srv.watchers.touch(db, key)
	c.srv.signalDeadline(db, key)
	c.unsynced = true
	c.srv.publishEvent(evGeneric, event, db, key)
}

// signal reports that key in db was modified (for WATCH and persistence).
func (c *client) signal(db int, key []byte) {
	c.srv.signalKey(db, key)
	c.unsynced = true
}

// event publishes a keyspace notification for key in db.
func (c *client) event(class eventClass, event string, db int, key []byte) {
	c.srv.publishEvent(class, event, db, key)
}

// signalKey is signal for callers without a client.
func (s *Server) signalKey(db int, key []byte) {
	s.watchers.touch(db, key)
	s.signalChange(db, key)
}

// signalDB reports that every key of db (-1: all databases) is about to
// go (FLUSHDB, FLUSHALL): watchers of keys that exist are touched, as in
// Redis.
func (s *Server) signalDB(db int) {
	s.watchers.touchDB(db, func(db int, key []byte) bool {
		tx := s.store.Lock(key)
		defer tx.Unlock()
		_, ok := tx.Get(db, key)
		return ok
	})
}

// publishEvent publishes event on the keyspace and keyevent channels of
// key when notify-keyspace-events enables class.
func (s *Server) publishEvent(class eventClass, event string, db int, key []byte) {
	flags := eventClass(s.conf.notify.Load())
	if flags&class == 0 || flags&(evKeyspace|evKeyevent) == 0 {
		return
	}
	var buf [128]byte
	if flags&evKeyspace != 0 {
		ch := keyspaceChannel(buf[:0], "__keyspace@", db, key)
		s.publish(ch, []byte(event))
	}
	if flags&evKeyevent != 0 {
		ch := keyspaceChannel(buf[:0], "__keyevent@", db, []byte(event))
		s.publish(ch, key)
	}
}

// KeysExpired publishes the expired events of keys the store removed
// because their deadline passed; wire it to ttl.Config.OnExpire. A WATCH on
// such a key fails by its deadline, checked at EXEC.
func (s *Server) KeysExpired(db int, keys [][]byte) {
	if eventClass(s.conf.notify.Load())&evExpired == 0 {
		return
	}
	for _, k := range keys {
		s.publishEvent(evExpired, "expired", db, k)
	}
}
