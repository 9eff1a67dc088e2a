package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/ttl"
)

// RedisVersion is the Redis version sessiond reports in HELLO and INFO. Clients
// gate features on it; sessiond implements the 7.2 command surface it needs.
const RedisVersion = "7.2.4"

// Errors returned by Serve and New.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("server: closed")
	// ErrConfig is returned by New when the configuration is invalid.
	ErrConfig = errors.New("server: invalid config")
)

// Config configures a Server. The zero value means Redis's defaults.
type Config struct {
	// RequirePass, when set, is the password of the default user: clients
	// must AUTH (or HELLO … AUTH) before any other command.
	RequirePass string
	// Databases is the number of logical databases; it must match the
	// store's. 0 means 16.
	Databases int
	// Timeout closes clients idle for longer; 0 disables it.
	Timeout time.Duration
	// ProtoMaxBulkLen bounds one bulk argument. 0 means 512 MiB.
	ProtoMaxBulkLen int64
	// MaxInlineLen bounds inline requests. 0 means 64 KiB.
	MaxInlineLen int
	// ClientQueryBufferLimit bounds one client's pending request. 0 means 1 GiB.
	ClientQueryBufferLimit int64
	// MaxMemory (maxmemory) bounds the memory used, in bytes: above it,
	// commands evict keys by MaxMemoryPolicy, or writes are refused with
	// Redis's OOM error. 0 means no limit.
	MaxMemory int64
	// MaxMemoryPolicy is Redis's maxmemory-policy ("" means noeviction;
	// volatile-ttl suits sessions) and MaxMemorySamples its
	// maxmemory-samples (0 means 5).
	MaxMemoryPolicy  string
	MaxMemorySamples int
	// Logger receives the server's logs. nil means slog.Default().
	Logger *slog.Logger
	// Port is reported by INFO (tcp_port) and CONFIG GET port.
	Port int
	// Bind is reported by CONFIG GET bind.
	Bind string
	// ConfigFile is reported by INFO (config_file).
	ConfigFile string
	// Version is sessiond's own version, reported by INFO (sessiond_version).
	Version string
	// IOModel chooses how TCP connections are served: "epoll" (event
	// loops, one per GOMAXPROCS, as Redis does; Linux only), "goroutine"
	// (a goroutine per connection). "" means epoll where available.
	// Listeners other than *net.TCPListener always use goroutines.
	IOModel string
	// IOThreads is the number of event loops for the epoll model. 0 means
	// GOMAXPROCS. One loop gives Redis's latency profile; more give more
	// throughput when cores are free.
	IOThreads int
	// NotifyKeyspaceEvents enables keyspace notifications, in Redis's
	// notify-keyspace-events syntax ("" = none, "Ex" = expired events).
	NotifyKeyspaceEvents string

	// MaxClients is the most clients connected at once (maxclients); one
	// more is answered "-ERR max number of clients reached" and closed. 0
	// means 10000. Fit the open-file limit to it first (FitOpenFiles).
	MaxClients int
	// TCPKeepAlive is tcp-keepalive: how long a client socket may be idle
	// before the kernel probes it (then every third of that, three times).
	// 0 means 300 s; negative disables keepalive.
	TCPKeepAlive time.Duration
	// DisableProtectedMode turns protected mode off. By default, while the
	// default user has no password, connections from other hosts than the
	// loopback interface get Redis's "-DENIED ..." explanation and are
	// closed (a TLS client with a verified certificate is served).
	DisableProtectedMode bool
	// ClientOutputBufferLimit is client-output-buffer-limit in Redis's
	// syntax, groups of "<class> <hard> <soft> <soft-seconds>" (classes
	// normal, replica, pubsub); classes not named keep sessiond's defaults:
	// "normal 256mb 64mb 60 replica 256mb 64mb 60 pubsub 32mb 8mb 60".
	ClientOutputBufferLimit string

	// TLSCertFile and TLSKeyFile are the server's certificate (chain) and
	// private key, PEM; ServeTLS needs them. TLSCACertFile holds the CAs
	// that client certificates are verified against. TLSAuthClients is
	// "yes" (the default: clients must present a certificate), "optional"
	// (verified if presented) or "no"; the first two need TLSCACertFile.
	TLSCertFile, TLSKeyFile, TLSCACertFile string
	TLSAuthClients                         string
	// TLSPort is reported by CONFIG GET tls-port.
	TLSPort int

	// ACLFile is an ACL file in Redis's syntax ("user <name> <rules…>"
	// lines): New loads it (a bad file is an error naming its lines), and
	// ACL LOAD and ACL SAVE read and write it.
	ACLFile string
	// BusyReplyThreshold is how long a Lua script may run before other
	// clients are answered BUSY instead of waiting for it (and SCRIPT KILL
	// becomes possible): Redis's busy-reply-threshold. 0 means 5 s;
	// negative means never (scripts are then neither reported nor killable).
	BusyReplyThreshold time.Duration

	// Persistence, when set, is told of every change to the data set and
	// answers SAVE, BGSAVE, LASTSAVE, INFO persistence and CONFIG of the
	// persistence settings (persist.go); without it they report
	// persistence off.
	Persistence Persistence
}

// Server serves the RESP protocol over the listeners given to Serve, backed by
// a ttl.Store it does not own.
type Server struct {
	store *ttl.Store
	log   *slog.Logger
	cmds  map[string]*command
	start time.Time
	runID string
	conf  *settings
	gate  gate
	lim   limits     // maxclients, keepalive, protected mode, output limits (limits.go)
	pause pauseState // CLIENT PAUSE (limits.go)
	tls   tlsState   // certificates for ServeTLS (tls.go)
	mem   memState   // maxmemory and eviction (maxmemory.go)

	acl *aclRegistry // users and the ACL log (acl.go)

	ps       pubsub   // channel subscriptions
	watchers watchers // WATCHed keys

	scripts scriptEngine // Lua scripting (script.go)
	persist Persistence
	// flushMu makes a database flush and its report to persist one step
	// for HoldFlushes (persist.go).
	flushMu      sync.RWMutex
	shutdownSave atomic.Int32 // SHUTDOWN SAVE (1) or NOSAVE (-1)

	nextID atomic.Int64

	// stats of clients that have gone; live clients keep their own
	// counters, summed by INFO (no shared cache line on the hot path).
	gone struct {
		sync.Mutex
		counters
	}
	connsReceived atomic.Int64
	opsPerSec     atomic.Int64 // commands in the last cron second
	peakMemory    atomic.Int64 // highest used_memory seen by INFO or cron
	version       string
	useLoops      bool
	ioThreads     int
	rejectedConns atomic.Int64

	mu          sync.Mutex // guards the fields below
	listeners   map[net.Listener]struct{}
	clients     map[int64]*client
	closed      bool
	cronStarted bool
	loops       []*loop // event loops, started by the first TCP Serve
	loopNext    int
	wg          sync.WaitGroup // connection goroutines, loops and the cron

	shutdownReq  chan struct{} // closed by the SHUTDOWN command
	shutdownOnce sync.Once
	done         chan struct{} // closed by Shutdown/Close
	doneOnce     sync.Once
}

// New validates cfg and returns a Server. It starts no goroutine.
func New(cfg Config, store *ttl.Store) (*Server, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrConfig)
	}
	if cfg.Databases == 0 {
		cfg.Databases = 16
	}
	if cfg.Databases < 1 || cfg.Databases > 256 {
		return nil, fmt.Errorf("%w: databases must be between 1 and 256", ErrConfig)
	}
	if cfg.ProtoMaxBulkLen == 0 {
		cfg.ProtoMaxBulkLen = 512 << 20
	}
	if cfg.ProtoMaxBulkLen < 1<<20 {
		return nil, fmt.Errorf("%w: proto-max-bulk-len must be at least 1mb", ErrConfig)
	}
	if cfg.MaxInlineLen == 0 {
		cfg.MaxInlineLen = 64 << 10
	}
	if cfg.ClientQueryBufferLimit == 0 {
		cfg.ClientQueryBufferLimit = 1 << 30
	}
	if cfg.IOThreads < 0 || cfg.IOThreads > 128 {
		return nil, fmt.Errorf("%w: io-threads must be between 0 and 128", ErrConfig)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	if _, _, ok := parseKeyspaceEvents(cfg.NotifyKeyspaceEvents); !ok {
		return nil, fmt.Errorf("%w: notify-keyspace-events: invalid event class character (use 'Ag$lshzxeKEtmdn')", ErrConfig)
	}
	switch {
	case cfg.BusyReplyThreshold == 0:
		cfg.BusyReplyThreshold = 5 * time.Second
	case cfg.BusyReplyThreshold < 0:
		cfg.BusyReplyThreshold = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Bind == "" {
		cfg.Bind = "127.0.0.1"
	}
	if cfg.Version == "" {
		cfg.Version = buildVersion()
	}
	switch cfg.IOModel {
	case "":
		if loopsSupported() {
			cfg.IOModel = "epoll"
		} else {
			cfg.IOModel = "goroutine"
		}
	case "goroutine":
	case "epoll":
		if !loopsSupported() {
			return nil, fmt.Errorf("%w: io-model epoll needs Linux", ErrConfig)
		}
	default:
		return nil, fmt.Errorf("%w: io-model must be epoll or goroutine", ErrConfig)
	}
	s := &Server{
		store:       store,
		log:         cfg.Logger,
		start:       time.Now(),
		runID:       newRunID(),
		listeners:   make(map[net.Listener]struct{}),
		clients:     make(map[int64]*client),
		shutdownReq: make(chan struct{}),
		done:        make(chan struct{}),
	}
	s.version = cfg.Version
	s.useLoops = cfg.IOModel == "epoll"
	s.ioThreads = cfg.IOThreads
	s.conf = newSettings(cfg)
	s.persist = cfg.Persistence
	if err := s.conf.params["notify-keyspace-events"].set(cfg.NotifyKeyspaceEvents); err != nil {
		return nil, fmt.Errorf("%w: notify-keyspace-events: %v", ErrConfig, err)
	}
	if err := s.initLimits(cfg); err != nil {
		return nil, err
	}
	switch cfg.TLSAuthClients {
	case "":
		cfg.TLSAuthClients = "yes"
	case "yes", "no", "optional":
	default:
		return nil, fmt.Errorf("%w: tls-auth-clients must be yes, no or optional", ErrConfig)
	}
	s.conf.add(s.tlsParams(cfg)...)
	if cfg.TLSCertFile != "" || cfg.TLSPort != 0 {
		if err := s.ReloadTLS(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if err := s.initMaxmemory(cfg); err != nil {
		return nil, err
	}
	s.cmds = s.commandTable()
	if err := s.setupACL(cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return s, nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// ShutdownRequested is closed when a client sends SHUTDOWN. The owner then
// calls Shutdown (and persists, if configured).
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdownReq }

// Serve accepts connections on ln and serves each in its own goroutine until
// Shutdown or Close; it then returns ErrServerClosed. ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if !s.cronStarted {
		s.cronStarted = true
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			s.cron()
		}()
		go func() {
			defer s.wg.Done()
			s.pauseTimer()
		}()
	}
	_, tcp := ln.(*net.TCPListener)
	loops := tcp && s.useLoops
	if loops && s.loops == nil {
		if err := s.startLoopsLocked(); err != nil {
			delete(s.listeners, ln)
			s.mu.Unlock()
			ln.Close()
			return err
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if retry, err := s.acceptFailed(err, &backoff); !retry {
				return err
			}
			continue
		}
		backoff = 0
		s.connsReceived.Add(1)
		if !s.admit(nc) {
			continue
		}
		var c *client
		if loops {
			c = s.loopClient(nc.(*net.TCPConn))
		} else {
			c = s.newClient(nc)
		}
		if c == nil {
			s.releaseSlot()
			continue
		}
		if !s.register(c) {
			return ErrServerClosed
		}
	}
}

// register adds c to the registry and starts serving it: on its event loop,
// or in a goroutine of its own. It reports false, having closed c, when the
// server is closing.
func (s *Server) register(c *client) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.closeUnregistered()
		s.releaseSlot()
		return false
	}
	s.clients[c.id] = c
	if c.fd < 0 {
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
		return true
	}
	l := s.loops[s.loopNext%len(s.loops)]
	s.loopNext++
	c.lp = l
	s.mu.Unlock()
	if !l.post(func() { l.add(c) }) {
		c.closeUnregistered()
		s.removeClient(c)
	}
	return true
}

// Shutdown stops accepting connections, closes idle clients, lets clients
// finish the command they are running, and waits for every connection
// goroutine until ctx is done, at which point it closes the rest and
// returns ctx.Err(). It is idempotent and safe to call concurrently with
// Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	// Connections blocked in a read are idle between commands: closing the
	// read side wakes them; a command being executed completes first
	// because the goroutine only notices at its next read.
	s.mu.Lock()
	for _, c := range s.clients {
		c.closeRead()
	}
	s.mu.Unlock()
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		s.closeClients()
		<-waited
		return ctx.Err()
	}
}

// Close closes listeners and every client at once and waits for their
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.beginClose()
	s.closeClients()
	s.wg.Wait()
	return nil
}

func (s *Server) beginClose() {
	s.doneOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for _, l := range s.loops {
		l.post(func() {}) // wake it: it sees done and closes its clients
	}
	s.mu.Unlock()
}

// startLoopsLocked starts one event loop per GOMAXPROCS; s.mu is held.
func (s *Server) startLoopsLocked() error {
	n := s.ioThreads
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	loops := make([]*loop, 0, n)
	for range n {
		l, err := newLoop(s)
		if err != nil {
			for _, l := range loops {
				l.discard()
			}
			return fmt.Errorf("server: event loop: %w", err)
		}
		loops = append(loops, l)
	}
	for _, l := range loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			l.run(s.done)
		}()
	}
	s.loops = loops
	return nil
}

func (s *Server) closeClients() {
	s.mu.Lock()
	for _, c := range s.clients {
		c.closeConn()
	}
	s.mu.Unlock()
}

func (s *Server) requestShutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdownReq) })
}

// cron runs once a second: it closes clients idle longer than the timeout
// and those over their output buffer's soft limit for too long.
func (s *Server) cron() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastOps int64
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			tot := s.totals().commands
			s.opsPerSec.Store(tot - lastOps)
			lastOps = tot
			s.enforceLimits(now)
		}
	}
}

func (s *Server) removeClient(c *client) {
	s.leavePubSub(c)
	s.unwatchAll(c)
	s.mu.Lock()
	delete(s.clients, c.id)
	s.mu.Unlock()
	s.releaseSlot()
	s.gone.Lock()
	s.gone.add(&c.stats)
	s.gone.Unlock()
}

// totals sums the counters of live and gone clients.
func (s *Server) totals() counters {
	s.gone.Lock()
	t := s.gone.counters
	s.gone.Unlock()
	s.mu.Lock()
	for _, c := range s.clients {
		t.add(&c.stats)
	}
	s.mu.Unlock()
	return t
}

func newRunID() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (s *Server) confVersion() string { return s.version }

// notePeak records used as a candidate peak and returns the peak.
func (s *Server) notePeak(used int64) int64 {
	for {
		p := s.peakMemory.Load()
		if used <= p {
			return p
		}
		if s.peakMemory.CompareAndSwap(p, used) {
			return used
		}
	}
}

// acceptFailed decides what an Accept error means: the server closing
// (ErrServerClosed), a temporary condition such as running out of file
// descriptors (wait with growing back-off, then retry), or a failed
// listener (returned as is).
func (s *Server) acceptFailed(err error, backoff *time.Duration) (retry bool, _ error) {
	select {
	case <-s.done:
		return false, ErrServerClosed
	default:
	}
	var ne net.Error
	if !(errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
		return false, err
	}
	*backoff = min(max(*backoff*2, 5*time.Millisecond), time.Second)
	s.log.Warn("accept failed; retrying", "err", err, "in", *backoff)
	select {
	case <-time.After(*backoff):
		return true, nil
	case <-s.done:
		return false, ErrServerClosed
	}
}
