package server

import (
	"cmp"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/server/internal/resp"
)

// flushThreshold is the reply size at which a long pipeline is written out
// before the next command runs, so output stays bounded.
const flushThreshold = 64 << 10

// counters are per-client statistics; INFO sums them.
type counters struct {
	commands    int64
	hits        int64
	misses      int64
	netInBytes  int64
	netOutBytes int64
}

func (c *counters) reset() {
	atomic.StoreInt64(&c.commands, 0)
	atomic.StoreInt64(&c.hits, 0)
	atomic.StoreInt64(&c.misses, 0)
	atomic.StoreInt64(&c.netInBytes, 0)
	atomic.StoreInt64(&c.netOutBytes, 0)
}

func (c *counters) add(o *counters) {
	c.commands += atomic.LoadInt64(&o.commands)
	c.hits += atomic.LoadInt64(&o.hits)
	c.misses += atomic.LoadInt64(&o.misses)
	c.netInBytes += atomic.LoadInt64(&o.netInBytes)
	c.netOutBytes += atomic.LoadInt64(&o.netOutBytes)
}

// client is one connection. Its fields are owned by its goroutine except
// where noted.
type client struct {
	srv *Server
	id  int64
	// The transport: nc for a goroutine-served connection, or lp/fd for
	// one owned by an event loop (loop_linux.go).
	nc      net.Conn
	lp      *loop
	fd      int
	reads   int          // loop: socket reads allowed in the current event
	pending []byte       // loop: reply bytes the socket has not taken yet
	closed  bool         // loop: closed (owned by the loop goroutine)
	rbs     atomic.Int64 // query buffer size, for CLIENT LIST
	addr    string
	laddr   string
	rd      *resp.Reader
	w       resp.Writer
	// werr is the first write error; once set, output is dropped and the
	// connection closes after the current command (sticky, as bufio).
	werr error

	db       int          // selected database; the owner's copy
	dbPub    atomic.Int32 // db, for CLIENT LIST from other goroutines
	protoPub atomic.Int32 // protocol version, for CLIENT LIST
	authed   bool
	quitting bool // close after the reply is flushed
	inExec   bool // running EXEC's queued commands (ACL LOG's "multi" context)
	unsynced bool // changed data since its replies were last sent (persist.go)
	held     bool // loop: replies wait for durability (loop_linux.go release)

	gateShared bool // the running command holds srv.gate.mu shared (gate.go)

	created    time.Time
	lastActive atomic.Int64            // unix nanos of the last command; read by cron
	busy       atomic.Bool             // running a command; read by cron
	lastCmdPtr atomic.Pointer[command] // last command run; read by CLIENT LIST
	stats      counters                // written by the owner with atomics, read by INFO

	// meta is what CLIENT LIST/INFO show; guarded by metaMu because other
	// clients read it.
	metaMu  sync.Mutex
	name    string
	libName string
	libVer  string
	user    *aclUser // the ACL user c acts as; written by the owner under metaMu

	out   pushState   // messages pushed by other goroutines
	subs  subState    // pub/sub subscriptions
	multi *multiState // queued commands after MULTI, nil outside one
	// killed is set by CLIENT KILL from another client (client.run).
	killed atomic.Bool
	// multiLen is len(multi.queue), -1 outside MULTI, for CLIENT LIST.
	multiLen atomic.Int32
	watch    watchState // keys under WATCH

	lower      []byte   // scratch for lower-casing command names
	tmp        []byte   // scratch for handlers
	keyScratch [][]byte // scratch key lists (MSET)

	// Limits (limits.go). omem (unsent reply bytes) and qbuf are for
	// CLIENT LIST and the output limits; obufDeadline (unix nanos, 0 while
	// under the soft limit) is when the soft limit runs out, read by the
	// cron. parked is an event-loop client's command held by CLIENT PAUSE
	// (a copy), parkedCmd its table entry; both owned by the loop.
	omem         atomic.Int64
	omemPubSub   atomic.Bool // omem is a pub/sub client's: that class's limits
	qbuf         atomic.Int64
	obufDeadline atomic.Int64
	parked       [][]byte
	parkedCmd    *command
}

// flushingReader writes pending replies before each read that may block,
// giving one write per pipeline.
type flushingReader struct{ c *client }

func (f flushingReader) Read(p []byte) (int, error) {
	f.c.flush()
	if f.c.werr != nil {
		return 0, f.c.werr
	}
	n, err := f.c.nc.Read(p)
	atomic.AddInt64(&f.c.stats.netInBytes, int64(n))
	f.c.qbuf.Store(int64(f.c.rd.Buffered() + n)) // for CLIENT LIST
	f.c.rbs.Store(int64(f.c.rd.Cap()))
	return n, err
}

func (s *Server) newClient(nc net.Conn) *client {
	c := s.initClient(nc.RemoteAddr().String(), nc.LocalAddr().String())
	c.nc = nc
	c.rd = resp.NewReader(flushingReader{c}, s.readerLimits())
	c.rd.SetAuthRequired(!c.authed)
	s.applyKeepAlive(nc)
	return c
}

// initClient sets up what both transports share.
func (s *Server) initClient(addr, laddr string) *client {
	c := &client{
		srv:     s,
		id:      s.nextID.Add(1),
		fd:      -1,
		addr:    addr,
		laddr:   laddr,
		created: time.Now(),
		lower:   make([]byte, 0, 32),
	}
	c.lastActive.Store(c.created.UnixNano())
	c.protoPub.Store(2)
	c.multiLen.Store(-1)
	s.defaultAuth(c)
	return c
}

func (s *Server) readerLimits() resp.Limits {
	return resp.Limits{
		MaxBulkLen:   s.conf.protoMaxBulkLen(),
		MaxInlineLen: s.conf.maxInlineLen,
		MaxQueryBuf:  s.conf.queryBufLimit,
	}
}

// readFailed answers a read error as Redis does (a protocol error gets its
// reply before the connection closes) and logs it.
func (c *client) readFailed(err error) {
	var pe *resp.ProtocolError
	switch {
	case errors.As(err, &pe):
		c.w.Error("ERR " + pe.Msg)
		c.srv.log.Debug("protocol error; closing client", "id", c.id, "addr", c.addr, "err", pe.Msg)
	case errors.Is(err, resp.ErrQueryBufferLimit):
		c.srv.log.Warn("closing client that reached max query buffer length", "id", c.id, "addr", c.addr)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		c.srv.log.Debug("client read failed", "id", c.id, "addr", c.addr, "err", err)
	}
}

// run executes one command read from the connection.
func (c *client) run(args [][]byte) {
	if c.killed.Load() {
		// CLIENT KILL closes the connection from another goroutine; what
		// the victim sent meanwhile does not run, as in Redis, where the
		// client is freed at once.
		c.quitting = true
		return
	}
	c.busy.Store(true)
	c.srv.dispatch(c, args)
	c.busy.Store(c.parked != nil) // a paused client is not idle
}

// serve is the goroutine transport's loop.
func (c *client) serve() {
	defer func() {
		c.flush()
		c.nc.Close()
		c.stopPush()
		c.srv.removeClient(c)
	}()
	if !c.handshake() {
		return
	}
	for {
		args, err := c.rd.ReadCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.rbs.Store(int64(c.rd.Cap()))
		c.qbuf.Store(int64(c.rd.Buffered()))
		c.run(args)
		if c.quitting || c.werr != nil {
			return
		}
		if c.w.Len() >= flushThreshold {
			c.flush()
		}
	}
}

// flush writes pending replies. Write errors are sticky.
func (c *client) flush() {
	if c.lp != nil {
		c.lp.flush(c)
		return
	}
	if c.w.Len() > 0 {
		c.awaitDurable() // before the pusher's lock: it may take a while
	}
	if c.out.started {
		c.out.wmu.Lock()
		defer c.out.wmu.Unlock()
		if b := c.takeOutbox(); len(b) > 0 && c.werr == nil {
			n, err := c.nc.Write(b)
			atomic.AddInt64(&c.stats.netOutBytes, int64(n))
			if err != nil {
				c.werr = err
			}
		}
	}
	if c.w.Len() == 0 {
		return
	}
	if c.werr == nil && !c.checkOutput(int64(c.w.Len()), c.isPubSub()) {
		c.werr = errOutputLimit
	}
	if c.werr == nil {
		n, err := c.nc.Write(c.w.Bytes())
		atomic.AddInt64(&c.stats.netOutBytes, int64(n))
		if err != nil {
			c.werr = err
		}
		c.outputDrained()
	}
	c.w.Reset()
}

// closeUnregistered closes a connection no loop or goroutine serves yet.
func (c *client) closeUnregistered() {
	if c.fd >= 0 {
		closeFD(c.fd)
		return
	}
	c.nc.Close()
}

// closeConn closes the connection from any goroutine.
func (c *client) closeConn() {
	if c.lp != nil {
		c.lp.post(func() { c.lp.close(c) })
		return
	}
	c.nc.Close()
}

// closeRead wakes a client blocked reading its next command so that it
// exits; replies already produced are still written. A loop client is
// between commands whenever its loop runs a task, so it is closed there.
func (c *client) closeRead() {
	if c.lp != nil {
		c.closeConn()
		return
	}
	if tc, ok := c.nc.(interface{ CloseRead() error }); ok {
		_ = tc.CloseRead()
		return
	}
	_ = c.nc.SetReadDeadline(time.Now())
}

func (c *client) setAuthed(on bool) {
	c.authed = on
	c.rd.SetAuthRequired(!on)
}

func (c *client) setDB(db int) {
	c.db = db
	c.dbPub.Store(int32(db))
}

func (c *client) setProto(p int) {
	c.w.SetProto(p)
	c.protoPub.Store(int32(p))
}

func (c *client) dbSnapshot() int    { return int(c.dbPub.Load()) }
func (c *client) protoSnapshot() int { return int(c.protoPub.Load()) }

func sortClients(list []*client) {
	slices.SortFunc(list, func(a, b *client) int { return cmp.Compare(a.id, b.id) })
}

// helpReply writes a HELP subcommand's text, one status line per element.
func (c *client) helpReply(lines []string) {
	c.w.Array(len(lines))
	for _, l := range lines {
		c.w.Status(l)
	}
}
