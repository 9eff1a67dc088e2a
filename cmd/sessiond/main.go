// Command sessiond is a Redis-compatible session store: run it, point any
// Redis client or session middleware at it.
//
//	sessiond                       # 127.0.0.1:6379
//	sessiond --port 6380 --requirepass s3cret
//	sessiond /etc/sessiond.conf    # redis.conf-style directives
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/ttl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = withSpareProc(ctx)
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		stop()
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sessiond:", err)
		os.Exit(1)
	}
}

// loopsKey is the context key of the event-loop count withSpareProc
// chose.
type loopsKey struct{}

// withSpareProc gives the process one P more than it has CPUs (unless
// GOMAXPROCS is set in the environment) and records the CPU count in ctx
// as the default number of event loops: each loop then has a P, and the
// store's expiry goroutine, persistence and the runtime's own work run
// beside them instead of taking a loop's P. On two cores this served the
// session mix 4 % faster, pipelined GETs 4 %, and with --appendonly 11 %
// (with a lower p99); a snapshot's writer, which runs at idle priority
// and may sit on a P while the kernel runs the loops' threads, then never
// holds a P a loop needs. main calls it once; tests of run leave
// GOMAXPROCS alone.
func withSpareProc(ctx context.Context) context.Context {
	if os.Getenv("GOMAXPROCS") != "" {
		return ctx
	}
	n := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(n + 1)
	return context.WithValue(ctx, loopsKey{}, n)
}

// ioThreads is the event-loop count: the flag, else withSpareProc's
// choice, else 0 (the server's default, one per GOMAXPROCS).
func ioThreads(ctx context.Context, flag int) int {
	if n, ok := ctx.Value(loopsKey{}).(int); ok && flag == 0 {
		return n
	}
	return flag
}

// options are the command-line settings.
type options struct {
	bind            string
	port            int
	requirePass     string
	aclFile         string
	databases       int
	timeout         int
	protoMaxBulkLen string
	queryBufLimit   string
	shards          int
	ioModel         string
	ioThreads       int
	notifyEvents    string
	busyThreshold   int
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
	version         bool

	maxClients       int
	tcpKeepAlive     int
	protectedMode    string
	obufLimits       repeated
	tlsPort          int
	tlsCertFile      string
	tlsKeyFile       string
	tlsCACertFile    string
	tlsAuthClients   string
	maxMemory        string
	maxMemoryPolicy  string
	maxMemorySamples int
	persist          persistOptions
}

// repeated is a flag that may be given several times (like
// client-output-buffer-limit lines in redis.conf); the values are joined.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sessiond", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bind, "bind", "127.0.0.1", "addresses to listen on, space separated (like redis.conf bind)")
	fs.IntVar(&o.port, "port", 6379, "TCP port (0 picks a free one; with --tls-port, 0 means TLS only)")
	fs.StringVar(&o.requirePass, "requirepass", "", "password of the default user; clients must AUTH")
	fs.StringVar(&o.aclFile, "aclfile", "", "ACL users file in Redis's syntax (user <name> <rules...> per line); ACL LOAD/SAVE use it")
	fs.IntVar(&o.databases, "databases", 16, "number of logical databases (SELECT 0..n-1)")
	fs.IntVar(&o.timeout, "timeout", 300, "close clients idle for this many seconds (0 = never)")
	fs.StringVar(&o.protoMaxBulkLen, "proto-max-bulk-len", "512mb", "largest bulk argument a client may send")
	fs.StringVar(&o.queryBufLimit, "client-query-buffer-limit", "1gb", "largest pending request of one client")
	fs.IntVar(&o.shards, "shards", 0, "store shards, a power of two (0 = 32)")
	fs.StringVar(&o.notifyEvents, "notify-keyspace-events", "", "keyspace notification classes, as Redis's (e.g. Ex for expired events)")
	fs.StringVar(&o.ioModel, "io-model", "", "connection handling: epoll (event loops, Linux) or goroutine (default: epoll where available)")
	fs.IntVar(&o.ioThreads, "io-threads", 0, "event loops for the epoll model (0 = one per CPU; sessiond runs with GOMAXPROCS one higher unless it is set; 1 = Redis's latency profile)")
	fs.IntVar(&o.busyThreshold, "busy-reply-threshold", 5000, "milliseconds a Lua script runs before other clients get BUSY and SCRIPT KILL applies (0 = never)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "loglevel", "notice", "log level: debug, verbose, notice, warning (or slog names)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for clients to finish")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.IntVar(&o.maxClients, "maxclients", server.DefaultMaxClients, "most clients connected at once (the open-file limit is raised to fit, or maxclients lowered)")
	fs.IntVar(&o.tcpKeepAlive, "tcp-keepalive", 300, "seconds before TCP keepalive probes on idle client sockets (0 = off)")
	fs.StringVar(&o.protectedMode, "protected-mode", "yes", "yes: without a password, refuse clients that do not connect over loopback")
	fs.Var(&o.obufLimits, "client-output-buffer-limit", "`class hard soft seconds`: close a client of the class (normal, replica, pubsub) whose unsent replies reach hard bytes, or stay over soft for seconds; repeatable (default \"normal 256mb 64mb 60 replica 256mb 64mb 60 pubsub 32mb 8mb 60\")")
	fs.IntVar(&o.tlsPort, "tls-port", 0, "TLS port (0 = no TLS); with --port 0, TLS only")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", "", "server certificate (PEM) for TLS")
	fs.StringVar(&o.tlsKeyFile, "tls-key-file", "", "private key (PEM) of tls-cert-file")
	fs.StringVar(&o.tlsCACertFile, "tls-ca-cert-file", "", "CA certificates (PEM) that client certificates are checked against")
	fs.StringVar(&o.tlsAuthClients, "tls-auth-clients", "yes", "client certificates: yes (required), optional, or no")
	fs.StringVar(&o.maxMemory, "maxmemory", "0", "memory limit (e.g. 1gb); above it keys are evicted by --maxmemory-policy or writes refused (0 = none)")
	fs.StringVar(&o.maxMemoryPolicy, "maxmemory-policy", "noeviction", "what goes at maxmemory: noeviction, volatile-ttl (sessions nearest expiry: recommended), volatile-lru, volatile-lfu, volatile-random, allkeys-lru, allkeys-lfu, allkeys-random")
	fs.IntVar(&o.maxMemorySamples, "maxmemory-samples", 5, "keys sampled per eviction by the LRU, LFU and TTL policies")
	fs.StringVar(&o.persist.dir, "dir", "", "directory of the data file; setting it turns persistence on (default: off)")
	fs.StringVar(&o.persist.dbfilename, "dbfilename", "sessiond.db", "name of the data file in --dir")
	fs.Var(&o.persist.save, "save", "snapshot rules \"<seconds> <changes> ...\"; \"\" for none (default with --dir: \"3600 1 300 100 60 10000\")")
	fs.StringVar(&o.persist.appendOnly, "appendonly", "no", "yes: write every change to the data file within a second (see --appendfsync)")
	fs.StringVar(&o.persist.appendFsync, "appendfsync", "everysec", "with --appendonly yes: everysec (≤ 1 s lost on a crash), always (replies wait for the disk), no (no fsync)")
	fs.IntVar(&o.persist.saveCPU, "save-cpu-percent", 50, "CPU a snapshot or compaction may use, in percent of one core (its writer runs at idle priority on Linux); 100 = no bound")
	fs.BoolVar(&o.persist.discard, "discard-unreadable-file", false, "set a damaged or foreign data file aside and start empty, instead of refusing to start")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sessiond [config-file] [flags]\n"+
			"       sessiond check-snapshot FILE\n"+
			"       sessiond export-snapshot [--format resp|json] FILE\n\n"+
			"A Redis-compatible session store. Flags are named like redis.conf directives;\n"+
			"a config file holds the same directives, one per line (\"port 6380\").\n"+
			"Flags given on the command line override the file.\n\nFlags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if name != "" {
				line += " " + name
			}
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(stderr, "%s\n    \t%s\n", line, usage)
		})
	}
	return fs
}

// applyConfigFile sets flags from a redis.conf-style file: "directive
// value..." per line, # comments, quoted values.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, _ := strings.Cut(line, " ")
		name = strings.ToLower(name)
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' && val[len(val)-1] == '"' || val[0] == '\'' && val[len(val)-1] == '\'') {
			val = val[1 : len(val)-1]
		}
		if fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown directive %q", path, i+1, name)
		}
		if err := fs.Set(name, val); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, i+1, name, err)
		}
	}
	return nil
}

func newLogger(o *options, stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(o.logLevel) {
	case "debug", "verbose":
		level = slog.LevelDebug
	case "notice", "info":
		level = slog.LevelInfo
	case "warning", "warn":
		level = slog.LevelWarn
	case "error", "nothing":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("invalid loglevel %q", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, hopts)), nil
	}
	return nil, fmt.Errorf("invalid log-format %q (want text or json)", o.logFormat)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// run is the whole program. ready, when not nil, receives the listening
// addresses once the server accepts connections (for tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]net.Addr)) error {
	if len(args) > 0 {
		switch args[0] {
		case "check-snapshot":
			return runCheckSnapshot(args[1:], stdout, stderr)
		case "export-snapshot":
			return runExportSnapshot(args[1:], stdout, stderr)
		}
	}
	var o options
	fs := newFlagSet(&o, stderr)
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if err := applyConfigFile(fs, args[0]); err != nil {
			return err
		}
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if o.version {
		fmt.Fprintf(stdout, "sessiond %s (redis %s compatible)\n", version(), server.RedisVersion)
		return nil
	}
	log, err := newLogger(&o, stderr)
	if err != nil {
		return err
	}
	maxBulk, err := server.ParseMemory(o.protoMaxBulkLen)
	if err != nil {
		return fmt.Errorf("proto-max-bulk-len: %w", err)
	}
	qbuf, err := server.ParseMemory(o.queryBufLimit)
	if err != nil {
		return fmt.Errorf("client-query-buffer-limit: %w", err)
	}
	maxMemory, err := server.ParseMemory(o.maxMemory)
	if err != nil {
		return fmt.Errorf("maxmemory: %w", err)
	}
	if o.timeout < 0 {
		return fmt.Errorf("timeout must not be negative")
	}
	if o.databases < 1 || o.databases > 256 {
		return fmt.Errorf("databases must be between 1 and 256")
	}
	if o.port < 0 || o.port > 65535 {
		return fmt.Errorf("port must be between 0 and 65535")
	}
	if o.tlsPort < 0 || o.tlsPort > 65535 {
		return fmt.Errorf("tls-port must be between 0 and 65535")
	}
	if o.tcpKeepAlive < 0 {
		return fmt.Errorf("tcp-keepalive must not be negative")
	}
	keepAlive := time.Duration(o.tcpKeepAlive) * time.Second
	if o.tcpKeepAlive == 0 {
		keepAlive = -1 // off
	}
	var protected bool
	switch strings.ToLower(o.protectedMode) {
	case "yes":
		protected = true
	case "no":
	default:
		return fmt.Errorf("protected-mode must be yes or no")
	}
	if o.maxClients < 1 {
		return fmt.Errorf("maxclients must be at least 1")
	}
	fit, err := server.FitOpenFiles(o.maxClients)
	switch {
	case err != nil:
		log.Warn("cannot read the open-file limit", "err", err)
	case fit.MaxClients < 1:
		return fmt.Errorf("the open-file limit (ulimit -n) of %d is not enough to serve clients; raise it to at least %d", fit.Now, o.maxClients+32)
	case fit.MaxClients < o.maxClients:
		log.Warn(fmt.Sprintf("Current maximum open files is %d. maxclients has been reduced to %d to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.", fit.Now, fit.MaxClients))
		o.maxClients = fit.MaxClients
	case fit.Now != fit.Was:
		log.Info(fmt.Sprintf("Increased maximum number of open files to %d (it was originally set to %d).", fit.Now, fit.Was))
	}
	if o.busyThreshold < 0 {
		return fmt.Errorf("busy-reply-threshold must not be negative")
	}
	busy := time.Duration(o.busyThreshold) * time.Millisecond
	if busy == 0 {
		busy = -1 // never busy
	}

	var srv *server.Server // set before store.Run starts, the only caller of the callbacks
	store, err := ttl.New(ttl.Config{Shards: o.shards, Databases: o.databases,
		OnExpire:       func(db int, keys [][]byte) { srv.KeysExpired(db, keys) },
		OnObjectExpire: func(db int, key []byte, removed bool) { srv.ObjectExpired(db, key, removed) }})
	if err != nil {
		return err
	}
	defer store.Close()
	pm, src, err := openPersistence(&o, store, log)
	if err != nil {
		return err
	}
	var persistence server.Persistence
	if pm != nil {
		defer pm.Close(false) // on early returns; a no-op after the final save below
		persistence = &persistAdapter{Manager: pm, dir: o.persist.dir, dbfilename: o.persist.dbfilename}
	}
	srv, err = server.New(server.Config{
		RequirePass:             o.requirePass,
		ACLFile:                 o.aclFile,
		Databases:               o.databases,
		Timeout:                 time.Duration(o.timeout) * time.Second,
		ProtoMaxBulkLen:         maxBulk,
		ClientQueryBufferLimit:  qbuf,
		Logger:                  log,
		Port:                    o.port,
		Bind:                    o.bind,
		Version:                 version(),
		IOModel:                 o.ioModel,
		IOThreads:               ioThreads(ctx, o.ioThreads),
		MaxClients:              o.maxClients,
		TCPKeepAlive:            keepAlive,
		DisableProtectedMode:    !protected,
		ClientOutputBufferLimit: o.obufLimits.String(),
		TLSPort:                 o.tlsPort,
		TLSCertFile:             o.tlsCertFile,
		TLSKeyFile:              o.tlsKeyFile,
		TLSCACertFile:           o.tlsCACertFile,
		TLSAuthClients:          strings.ToLower(o.tlsAuthClients),
		NotifyKeyspaceEvents:    o.notifyEvents,
		MaxMemory:               maxMemory,
		MaxMemoryPolicy:         o.maxMemoryPolicy,
		MaxMemorySamples:        o.maxMemorySamples,
		BusyReplyThreshold:      busy,
		Persistence:             persistence,
	}, store)
	if err != nil {
		return err
	}
	if pm != nil {
		src.srv = srv
	}

	// Plain TCP on port, unless port is 0 with a TLS port (TLS only, as
	// in Redis; port 0 alone picks a free port); TLS on tls-port.
	type listener struct {
		net.Listener
		tls bool
	}
	var lns []listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	type port struct {
		n   int
		tls bool
	}
	var ports []port
	if o.port != 0 || o.tlsPort == 0 {
		ports = append(ports, port{o.port, false})
	}
	if o.tlsPort != 0 {
		ports = append(ports, port{o.tlsPort, true})
	}
	for _, p := range ports {
		for _, host := range strings.Fields(o.bind) {
			host = strings.TrimPrefix(host, "-") // redis.conf's "-::1" means optional
			addr := net.JoinHostPort(host, strconv.Itoa(p.n))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("cannot listen on %s: %w", addr, err)
			}
			lns = append(lns, listener{Listener: ln, tls: p.tls})
		}
	}
	if len(lns) == 0 {
		return fmt.Errorf("bind: no address to listen on")
	}

	storeCtx, stopStore := context.WithCancel(context.Background())
	defer stopStore()
	var pwg sync.WaitGroup
	defer pwg.Wait()
	persistCtx, stopPersist := context.WithCancel(context.Background())
	defer stopPersist()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := store.Run(storeCtx); err != nil {
			log.Error("store stopped", "err", err)
		}
	})
	if pm != nil {
		pwg.Go(func() { _ = pm.Run(persistCtx) })
	}
	serveErr := make(chan error, len(lns))
	addrs := make([]net.Addr, 0, len(lns))
	for _, ln := range lns {
		addrs = append(addrs, ln.Addr())
		serve := srv.Serve
		if ln.tls {
			serve = srv.ServeTLS
		}
		wg.Go(func() {
			if err := serve(ln.Listener); err != nil && !errors.Is(err, server.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	lns = nil // owned by Serve now
	// SIGHUP re-reads the TLS certificate, key and CA files.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("Ready to accept connections", "addrs", fmt.Sprint(addrs), "version", version(), "pid", os.Getpid())
	if ready != nil {
		ready(addrs)
	}

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("received signal; shutting down")
			break wait
		case <-srv.ShutdownRequested():
			log.Info("SHUTDOWN received; shutting down")
			break wait
		case runErr = <-serveErr:
			log.Error("listener failed; shutting down", "err", runErr)
			break wait
		case <-hup:
			if o.tlsPort == 0 {
				log.Info("SIGHUP: no TLS to reload")
			} else if err := srv.ReloadTLS(); err != nil {
				log.Warn("SIGHUP: TLS reload failed; keeping the certificates in use", "err", err)
			} else {
				log.Info("SIGHUP: TLS certificates reloaded")
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("clients did not finish in time; closed them", "err", err)
	}
	stopPersist()
	pwg.Wait()
	if pm != nil {
		if err := pm.Close(finalSave(pm, srv.ShutdownSave())); err != nil {
			log.Error("final save failed", "file", pm.Path(), "err", err)
		} else {
			log.Info("data saved", "file", pm.Path())
		}
	}
	stopStore()
	wg.Wait()
	log.Info("sessiond is now ready to exit, bye bye...")
	return runErr
}
