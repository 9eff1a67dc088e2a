package server

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/ttl"
)

// benchClient returns a server and a client bound to an unused pipe, for
// calling dispatch directly.
func benchClient(b *testing.B) (*Server, *client) {
	store, err := ttl.New(ttl.Config{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = store.Close() })
	srv, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, store)
	require.NoError(b, err)
	p1, p2 := net.Pipe()
	b.Cleanup(func() { p1.Close(); p2.Close() })
	return srv, srv.newClient(p1)
}

func splitArgs(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

// BenchmarkDispatch measures one command through lookup, checks, handler
// and reply encoding, without the network.
func BenchmarkDispatch(b *testing.B) {
	val := strings.Repeat("v", 700)
	for _, tc := range []struct{ name, cmd string }{
		{"GET", "GET sess:0123456789abcdef0123456789abcdef"},
		{"GETEX", "GETEX sess:0123456789abcdef0123456789abcdef EX 1800"},
		{"SET_EX", "SET sess:0123456789abcdef0123456789abcdef " + val + " EX 1800"},
		{"DEL_missing", "DEL sess:missing"},
		{"PING", "PING"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv, c := benchClient(b)
			srv.dispatch(c, splitArgs("SET sess:0123456789abcdef0123456789abcdef "+val))
			args := splitArgs(tc.cmd)
			b.ReportAllocs()
			for b.Loop() {
				c.w.Reset()
				srv.dispatch(c, args)
			}
		})
	}
}

// BenchmarkDispatchParallel runs the session mix from many goroutines over
// 100k keys, each with its own client, as connections do.
func BenchmarkDispatchParallel(b *testing.B) {
	srv, _ := benchClient(b)
	val := []byte(strings.Repeat("v", 700))
	const keys = 100000
	names := make([][]byte, keys)
	for i := range names {
		names[i] = fmt.Appendf(nil, "sess:%032x", i)
		tx := srv.store.Lock(names[i])
		tx.Set(0, names[i], kindString, val, ttl.Now()+3600_000)
		tx.Unlock()
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p1, p2 := net.Pipe()
		defer p1.Close()
		defer p2.Close()
		c := srv.newClient(p1)
		getex := [][]byte{[]byte("GETEX"), nil, []byte("EX"), []byte("1800")}
		set := [][]byte{[]byte("SET"), nil, val, []byte("EX"), []byte("1800")}
		del := [][]byte{[]byte("DEL"), nil}
		i := 0
		for pb.Next() {
			i++
			key := names[(i*7919)%keys]
			c.w.Reset()
			switch r := i % 20; {
			case r < 16:
				getex[1] = key
				srv.dispatch(c, getex)
			case r < 19:
				set[1] = key
				srv.dispatch(c, set)
			default:
				del[1] = key
				srv.dispatch(c, del)
			}
		}
	})
}

// BenchmarkLoopbackGET is one client over real TCP, pipelined 16 deep: the
// reader, dispatch, writer and syscalls together.
func BenchmarkLoopbackGET(b *testing.B) {
	ts := startServer(b, Config{})
	nc, err := net.Dial("tcp", ts.addr)
	require.NoError(b, err)
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 1<<16)
	req := []byte(strings.Repeat("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", 16))
	_, err = nc.Write([]byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"))
	require.NoError(b, err)
	_, err = r.ReadString('\n')
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		_, err := nc.Write(req)
		require.NoError(b, err)
		for range 16 {
			if _, err := r.ReadString('\n'); err != nil {
				b.Fatal(err)
			}
			if _, err := r.ReadString('\n'); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/cmd")
}
