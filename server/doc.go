// Package server serves the Redis protocol (RESP2 and RESP3) over a
// ttl.Store: connections, limits, the command table and the replies.
//
// # Use
//
//	store, _ := ttl.New(ttl.Config{})
//	srv, _ := server.New(server.Config{RequirePass: "s3cret"}, store)
//	go store.Run(ctx)            // expiry; the owner waits for it
//	// ttl.Config.OnObjectExpire should call srv.ObjectExpired (hash field expiry)
//	go srv.Serve(listener)       // returns ErrServerClosed after Shutdown
//	...
//	srv.Shutdown(ctx)            // stop accepting, let commands finish, close
//
// New starts nothing; Serve blocks. SHUTDOWN from a client only closes
// ShutdownRequested: the owner decides to call Shutdown (and, later, to
// persist).
//
// # Transports
//
// On Linux, connections accepted from a *net.TCPListener are served by
// event loops (Config.IOModel "epoll", the default): Config.IOThreads loops,
// each waiting in epoll_wait, reading once per readiness event, running every
// complete command and writing the replies in one write. A client whose
// replies the socket will not take stops being read until they drain, so a
// client that does not read cannot grow the server's memory. Other
// listeners, and IOModel "goroutine", get a goroutine per connection that
// writes its pending replies just before a read would block. Both share
// everything above the socket: the hardened reader (internal/resp), dispatch
// and the handlers.
//
// # Commands
//
// The command table is built per Server (no globals): name, Redis arity,
// flags, key positions, and a handler. Dispatch looks the name up without
// allocating, checks arity and authentication in Redis's order and with its
// error texts, then runs the handler. A handler locks the store shards of its
// keys through a ttl.Txn (several keys: LockKeys, in shard order, so
// multi-key commands are atomic), replies while it holds them (values alias
// store memory), and unlocks with defer. A panic in a handler is recovered:
// the partial reply is dropped, the command answers an error, the panic is
// logged with the command's name, and the connection goes on.
//
// # Concurrency
//
// A client's fields belong to the goroutine serving it (its loop or its own
// goroutine), except those other clients read for CLIENT LIST and INFO,
// which are atomics or guarded by client.metaMu. Closing a client from
// elsewhere (CLIENT KILL, idle timeout, Shutdown) goes through closeConn,
// which for a loop client is a task run on its loop between commands.
// Server.mu guards the client registry and listeners.
//
// # Scripts
//
// EVAL and its family run Lua 5.1 scripts (gopher-lua) in an exclusive
// section of the gate (gate.go), so a script is atomic; redis.call runs
// commands on a connectionless client through the command table and
// parses their reply bytes back into Lua values (script.go). Past
// busy-reply-threshold a script is busy: other clients get BUSY instead of
// waiting, SCRIPT KILL and SHUTDOWN NOSAVE run at once, and the event loop
// running the script serves its other connections between Lua
// instructions. Nothing outside an exclusive section may wait on the gate
// without also waking when a script turns busy (Server.shared).
//
// # Caveats
//
//   - Keyspace notifications, eviction (maxmemory) and persistence are not
//     implemented yet: CONFIG SET accepts and reports their settings, which
//     have no effect.
//   - Strings and hashes exist so far; the kinds for sets and sorted sets
//     are reserved (kinds.go). A hash (hash.go) is packed in one byte slice
//     while small and a table when big; its field TTLs (Redis 7.4) are
//     expired by the store (ttl.PartExpirer), which reports them to
//     ObjectExpired.
//   - INFO's error counters are zero, and CLIENT LIST's buffer fields are
//     approximations.
package server
