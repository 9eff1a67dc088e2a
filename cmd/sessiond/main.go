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
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		stop()
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sessiond:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	bind            string
	port            int
	requirePass     string
	databases       int
	timeout         int
	protoMaxBulkLen string
	queryBufLimit   string
	shards          int
	ioModel         string
	ioThreads       int
	busyThreshold   int
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
	version         bool
}

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sessiond", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bind, "bind", "127.0.0.1", "addresses to listen on, space separated (like redis.conf bind)")
	fs.IntVar(&o.port, "port", 6379, "TCP port (0 picks a free one)")
	fs.StringVar(&o.requirePass, "requirepass", "", "password of the default user; clients must AUTH")
	fs.IntVar(&o.databases, "databases", 16, "number of logical databases (SELECT 0..n-1)")
	fs.IntVar(&o.timeout, "timeout", 0, "close clients idle for this many seconds (0 = never)")
	fs.StringVar(&o.protoMaxBulkLen, "proto-max-bulk-len", "512mb", "largest bulk argument a client may send")
	fs.StringVar(&o.queryBufLimit, "client-query-buffer-limit", "1gb", "largest pending request of one client")
	fs.IntVar(&o.shards, "shards", 0, "store shards, a power of two (0 = 32)")
	fs.StringVar(&o.ioModel, "io-model", "", "connection handling: epoll (event loops, Linux) or goroutine (default: epoll where available)")
	fs.IntVar(&o.ioThreads, "io-threads", 0, "event loops for the epoll model (0 = GOMAXPROCS; 1 = Redis's latency profile)")
	fs.IntVar(&o.busyThreshold, "busy-reply-threshold", 5000, "milliseconds a Lua script runs before other clients get BUSY and SCRIPT KILL applies (0 = never)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "loglevel", "notice", "log level: debug, verbose, notice, warning (or slog names)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for clients to finish")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sessiond [config-file] [flags]\n\n"+
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
	if o.timeout < 0 {
		return fmt.Errorf("timeout must not be negative")
	}
	if o.databases < 1 || o.databases > 256 {
		return fmt.Errorf("databases must be between 1 and 256")
	}
	if o.port < 0 || o.port > 65535 {
		return fmt.Errorf("port must be between 0 and 65535")
	}
	if o.busyThreshold < 0 {
		return fmt.Errorf("busy-reply-threshold must not be negative")
	}
	busy := time.Duration(o.busyThreshold) * time.Millisecond
	if busy == 0 {
		busy = -1 // never busy
	}

	store, err := ttl.New(ttl.Config{Shards: o.shards, Databases: o.databases})
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := server.New(server.Config{
		RequirePass:            o.requirePass,
		Databases:              o.databases,
		Timeout:                time.Duration(o.timeout) * time.Second,
		ProtoMaxBulkLen:        maxBulk,
		ClientQueryBufferLimit: qbuf,
		Logger:                 log,
		Port:                   o.port,
		Bind:                   o.bind,
		Version:                version(),
		IOModel:                o.ioModel,
		IOThreads:              o.ioThreads,
		BusyReplyThreshold:     busy,
	}, store)
	if err != nil {
		return err
	}

	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, host := range strings.Fields(o.bind) {
		host = strings.TrimPrefix(host, "-") // redis.conf's "-::1" means optional
		addr := net.JoinHostPort(host, strconv.Itoa(o.port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return fmt.Errorf("bind: no address to listen on")
	}

	storeCtx, stopStore := context.WithCancel(context.Background())
	defer stopStore()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := store.Run(storeCtx); err != nil {
			log.Error("store stopped", "err", err)
		}
	})
	serveErr := make(chan error, len(lns))
	addrs := make([]net.Addr, 0, len(lns))
	for _, ln := range lns {
		addrs = append(addrs, ln.Addr())
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, server.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	lns = nil // owned by Serve now
	log.Info("Ready to accept connections", "addrs", fmt.Sprint(addrs), "version", version(), "pid", os.Getpid())
	if ready != nil {
		ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("received signal; shutting down")
	case <-srv.ShutdownRequested():
		log.Info("SHUTDOWN received; shutting down")
	case runErr = <-serveErr:
		log.Error("listener failed; shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("clients did not finish in time; closed them", "err", err)
	}
	stopStore()
	wg.Wait()
	log.Info("sessiond is now ready to exit, bye bye...")
	return runErr
}
