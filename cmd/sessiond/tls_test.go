//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// writeCert writes a server certificate for 127.0.0.1 (from a CA of its
// own) and its key, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile, name string) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM := redistest.NewCA(t, name+" CA").Issue(t, name, true)
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRunTLSOnly serves TLS only (--port 0 with --tls-port) and reloads the
// certificate on SIGHUP.
func TestRunTLSOnly(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	first := writeCert(t, certFile, keyFile, "first")
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--port", "0", "--tls-port", strconv.Itoa(port), "--loglevel", "warning",
			"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"},
			io.Discard, io.Discard, func(a []net.Addr) { addrs <- a })
	}()
	var a []net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	require.Len(t, a, 1, "only the TLS listener")
	addr := a[0].String()

	peer := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		require.NoError(t, err)
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write(redistest.EncodeCommand("PING"))
		require.NoError(t, err)
		line, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "+PONG\r\n", line)
		return conn.ConnectionState().PeerCertificates[0]
	}
	assert.True(t, peer().Equal(first))

	second := writeCert(t, certFile, keyFile, "second")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	deadline := time.Now().Add(10 * time.Second)
	for !peer().Equal(second) {
		require.True(t, time.Now().Before(deadline), "SIGHUP did not reload the certificate")
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
}
