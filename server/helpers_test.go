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
	var srv *Server // set before Run starts, the only caller of the callbacks
	store, err := ttl.New(ttl.Config{Databases: cfg.Databases,
		OnExpire:       func(db int, keys [][]byte) { srv.KeysExpired(db, keys) },
		OnObjectExpire: func(db int, key []byte, removed bool) { srv.ObjectExpired(db, key, removed) }})
	require.NoError(tb, err)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err = New(cfg, store)
	require.NoError(tb, err)
	for _, f := range setup {
		f(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
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
