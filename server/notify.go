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
	c.signal(db, key)
	c.event(class, event, db, key)
}

// signal reports that key in db was modified (for WATCH and persistence).
func (c *client) signal(db int, key []byte) {
	c.srv.signalKey(db, key)
}

// event queues a keyspace notification for key in db.
func (c *client) event(class eventClass, event string, db int, key []byte) {
	_, _, _, _ = class, event, db, key
}

// signalKey is signal for callers without a client (expiry, eviction).
func (s *Server) signalKey(db int, key []byte) {
	_, _ = db, key
}

// publishEvent publishes a keyspace notification for callers without a
// client (the store's expiry callbacks). Pub/sub fills it in.
func (s *Server) publishEvent(class eventClass, event string, db int, key []byte) {
	_, _, _, _ = class, event, db, key
}
