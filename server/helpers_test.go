package server

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/ttl"
)

// testServer is a sessiond server on a loopback port, stopped at cleanup.
type testServer struct {
	addr  string
	srv   *Server
	store *ttl.Store
}

// startServer starts a store and a server on 127.0.0.1 with a port the
// kernel picks; cleanup closes them and waits for every goroutine.
func startServer(tb testing.TB, cfg Config, setup ...func(*Server)) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	return serveOn(tb, ln, ttl.Config{}, cfg, setup...)
}

// startPipeServer starts a store and a server whose clients connect
// through ln.dial, in memory, so that it can run inside a synctest bubble
// (on the goroutine transport); cleanup, in the bubble, stops them.
func startPipeServer(tb testing.TB, cfg Config) (*testServer, *pipeListener) {
	tb.Helper()
	ln := newPipeListener()
	return serveOn(tb, ln, ttl.Config{}, cfg), ln
}

// serveOn starts a store made with scfg (its Databases and expiry
// callbacks filled in from cfg and the server) and a server on ln. setup
// runs before the server serves. Cleanup closes the server and the store
// and waits for their goroutines.
func serveOn(tb testing.TB, ln net.Listener, scfg ttl.Config, cfg Config, setup ...func(*Server)) *testServer {
	tb.Helper()
	var srv *Server // set before Run starts, the only caller of the callbacks
	scfg.Databases = cfg.Databases
	scfg.OnExpire = func(db int, keys [][]byte) { srv.KeysExpired(db, keys) }
	scfg.OnObjectExpire = func(db int, key []byte, removed bool) { srv.ObjectExpired(db, key, removed) }
	store, err := ttl.New(scfg)
	require.NoError(tb, err)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err = New(cfg, store)
	require.NoError(tb, err)
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = store.Run(ctx) })
	wg.Go(func() { _ = srv.Serve(ln) })
	tb.Cleanup(func() {
		_ = srv.Close()
		cancel()
		wg.Wait()
		_ = store.Close()
	})
	return &testServer{addr: ln.Addr().String(), srv: srv, store: store}
}

// pipeListener is an in-memory listener whose connections are net.Pipe
// pairs, so a server can run inside a synctest bubble.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// forEachIOModel runs f as a subtest for each transport the server has
// (epoll event loops where supported, goroutine per connection always).
func forEachIOModel(t *testing.T, f func(t *testing.T, model string)) {
	models := []string{"goroutine"}
	if loopsSupported() {
		models = []string{"epoll", "goroutine"}
	}
	for _, model := range models {
		t.Run(model, func(t *testing.T) { f(t, model) })
	}
}
