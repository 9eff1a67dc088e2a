package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// tlsFiles are the files of a test's TLS set-up: the server's certificate
// and key, the CA clients are verified with, and a client's certificate.
type tlsFiles struct {
	dir                         string
	ca                          *redistest.CA
	cert, key, caFile           string
	clientCert, clientKey       string
	client                      tls.Certificate
	serverCertPEM, serverKeyPEM []byte
	otherClient                 tls.Certificate // from a CA the server does not trust
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir(), ca: redistest.NewCA(t, "sessiond test CA")}
	f.cert, f.key = filepath.Join(f.dir, "server.crt"), filepath.Join(f.dir, "server.key")
	f.caFile = filepath.Join(f.dir, "ca.crt")
	f.clientCert, f.clientKey = filepath.Join(f.dir, "client.crt"), filepath.Join(f.dir, "client.key")
	f.serverCertPEM, f.serverKeyPEM = f.ca.Issue(t, "sessiond", true)
	clientCertPEM, clientKeyPEM := f.ca.Issue(t, "app", false)
	writeFile(t, f.cert, f.serverCertPEM)
	writeFile(t, f.key, f.serverKeyPEM)
	writeFile(t, f.caFile, f.ca.PEM)
	writeFile(t, f.clientCert, clientCertPEM)
	writeFile(t, f.clientKey, clientKeyPEM)
	var err error
	f.client, err = tls.X509KeyPair(clientCertPEM, clientKeyPEM)
	require.NoError(t, err)
	otherCert, otherKey := redistest.NewCA(t, "stranger CA").Issue(t, "stranger", false)
	f.otherClient, err = tls.X509KeyPair(otherCert, otherKey)
	require.NoError(t, err)
	return f
}

func (f *tlsFiles) config(auth string) Config {
	return Config{TLSCertFile: f.cert, TLSKeyFile: f.key, TLSCACertFile: f.caFile, TLSAuthClients: auth}
}

// tlsServer is a server with a plain and a TLS listener on loopback.
type tlsServer struct {
	srv           *Server
	addr, tlsAddr string
}

func startTLSServer(t *testing.T, cfg Config, tlsHost string) *tlsServer {
	t.Helper()
	tln, err := net.Listen("tcp", net.JoinHostPort(tlsHost, "0"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the server's cleanup (cleanups run last first)
	ts := startServer(t, cfg)
	wg.Go(func() { _ = ts.srv.ServeTLS(tln) })
	return &tlsServer{srv: ts.srv, addr: ts.addr, tlsAddr: tln.Addr().String()}
}

// tlsPing connects over TLS with cfg and sends PING; it returns the reply,
// or the error of the handshake or the exchange.
func tlsPing(addr string, cfg *tls.Config) (string, error) {
	d := &net.Dialer{Timeout: closeWait}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(closeWait))
	if _, err := conn.Write(redistest.EncodeCommand("PING")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return line, err
}

// TestTLSGoRedis runs a session flow with go-redis over mutual TLS, with
// RESP2 and RESP3, next to plain TCP on the event loops.
func TestTLSGoRedis(t *testing.T) {
	f := newTLSFiles(t)
	ts := startTLSServer(t, f.config(""), "127.0.0.1")
	for _, proto := range []int{2, 3} {
		rdb := redis.NewClient(&redis.Options{Addr: ts.tlsAddr, Protocol: proto, TLSConfig: &tls.Config{
			RootCAs: f.ca.Pool, Certificates: []tls.Certificate{f.client}, MinVersion: tls.VersionTLS12}})
		t.Cleanup(func() { rdb.Close() })
		ctx := context.Background()
		require.NoError(t, rdb.Set(ctx, "sess:tls", "payload", time.Minute).Err())
		v, err := rdb.GetEx(ctx, "sess:tls", 30*time.Minute).Result()
		require.NoError(t, err)
		assert.Equal(t, "payload", v)
		ttl, err := rdb.TTL(ctx, "sess:tls").Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, 29*time.Minute)
		_, err = rdb.Get(ctx, "sess:none").Result()
		assert.ErrorIs(t, err, redis.Nil)
	}
	// The plain port serves the same data.
	plain := redistest.Dial(t, ts.addr)
	assert.Equal(t, "$7\r\npayload\r\n", plain.DoString("GET", "sess:tls"))
	assert.Equal(t, "*2\r\n$16\r\ntls-auth-clients\r\n$3\r\nyes\r\n", plain.DoString("CONFIG", "GET", "tls-auth-clients"))

	// Without a client certificate, tls-auth-clients yes refuses.
	rdb := redis.NewClient(&redis.Options{Addr: ts.tlsAddr, MaxRetries: -1, TLSConfig: &tls.Config{RootCAs: f.ca.Pool}})
	t.Cleanup(func() { rdb.Close() })
	assert.Error(t, rdb.Ping(context.Background()).Err())
}

// TestTLSAuthClients: yes needs a certificate from the configured CA,
// optional checks one if presented, no asks for none.
func TestTLSAuthClients(t *testing.T) {
	f := newTLSFiles(t)
	// GetClientCertificate sends the certificate even when it is not from
	// a CA the server names (Go's client would otherwise send none).
	withCert := func(c tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: f.ca.Pool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }}
	}
	none := &tls.Config{RootCAs: f.ca.Pool}
	for _, tc := range []struct {
		auth                        string
		noCert, goodCert, strangers bool // served?
	}{
		{"yes", false, true, false},
		{"optional", true, true, false},
		{"no", true, true, true},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			ts := startTLSServer(t, f.config(tc.auth), "127.0.0.1")
			for _, c := range []struct {
				name string
				cfg  *tls.Config
				ok   bool
			}{{"no certificate", none, tc.noCert}, {"trusted certificate", withCert(f.client), tc.goodCert}, {"untrusted certificate", withCert(f.otherClient), tc.strangers}} {
				got, err := tlsPing(ts.tlsAddr, c.cfg)
				if c.ok {
					assert.NoError(t, err, c.name)
					assert.Equal(t, "+PONG\r\n", got, c.name)
				} else {
					assert.Error(t, err, c.name)
				}
			}
		})
	}
	_, err := New(Config{TLSCertFile: f.cert, TLSKeyFile: f.key}, nil)
	assert.ErrorIs(t, err, ErrConfig)
	store, err := ttl.New(ttl.Config{})
	require.NoError(t, err)
	defer store.Close()
	for _, bad := range []Config{
		{TLSCertFile: f.cert, TLSKeyFile: f.key},                                             // yes needs a CA
		{TLSCertFile: f.cert, TLSKeyFile: f.clientKey, TLSAuthClients: "no"},                 // key of another certificate
		{TLSCertFile: f.cert, TLSKeyFile: f.key, TLSAuthClients: "maybe"},                    // no such mode
		{TLSCertFile: f.cert, TLSKeyFile: f.key, TLSCACertFile: f.key},                       // not a certificate
		{TLSCertFile: filepath.Join(f.dir, "none"), TLSKeyFile: f.key, TLSAuthClients: "no"}, // no file
	} {
		_, err := New(bad, store)
		assert.ErrorIs(t, err, ErrConfig, "%+v", bad)
	}
}

// TestTLSRedisCLI drives redis-cli --tls with a client certificate.
func TestTLSRedisCLI(t *testing.T) {
	bin := redistest.RedisCLI(t)
	if out, _ := exec.Command(bin, "--help").CombinedOutput(); !strings.Contains(string(out), "--tls") {
		t.Skip("this redis-cli was built without TLS")
	}
	f := newTLSFiles(t)
	ts := startTLSServer(t, f.config("yes"), "127.0.0.1")
	tlsArgs := []string{"--tls", "--cacert", f.caFile, "--cert", f.clientCert, "--key", f.clientKey}
	assert.Equal(t, "PONG\n", cli(t, bin, ts.tlsAddr, "", append(tlsArgs, "PING")...))
	assert.Equal(t, "OK\n", cli(t, bin, ts.tlsAddr, "", append(tlsArgs, "SET", "sess:cli", "v", "EX", "100")...))
	assert.Equal(t, "v\n", cli(t, bin, ts.tlsAddr, "", append(tlsArgs, "GET", "sess:cli")...))
	assert.Equal(t, "v\n", cli(t, bin, ts.tlsAddr, "GET sess:cli\n", tlsArgs...))

	// Without its certificate, redis-cli cannot get in.
	host, port, _ := net.SplitHostPort(ts.tlsAddr)
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "--tls", "--cacert", f.caFile, "PING").CombinedOutput()
	assert.NotContains(t, string(out), "PONG")
}

// TestTLSReload: CONFIG SET of the file names (to the same names, after
// the files changed) or ReloadTLS makes new handshakes use the new
// certificate while established connections go on; a bad file is refused
// with Redis's error and changes nothing.
func TestTLSReload(t *testing.T) {
	f := newTLSFiles(t)
	ts := startTLSServer(t, f.config("yes"), "127.0.0.1")
	admin := redistest.Dial(t, ts.addr)
	oldTrust := &tls.Config{RootCAs: f.ca.Pool, Certificates: []tls.Certificate{f.client}}

	// An established connection from before the reload.
	old, err := tls.Dial("tcp", ts.tlsAddr, oldTrust)
	require.NoError(t, err)
	defer old.Close()
	oldr := bufio.NewReader(old)
	ping := func() string {
		t.Helper()
		_ = old.SetDeadline(time.Now().Add(closeWait))
		_, err := old.Write(redistest.EncodeCommand("PING"))
		require.NoError(t, err)
		line, err := oldr.ReadString('\n')
		require.NoError(t, err)
		return line
	}
	assert.Equal(t, "+PONG\r\n", ping())

	// Rotate the server certificate to one from a new CA, in place.
	ca2 := redistest.NewCA(t, "rotated CA")
	c2, k2 := ca2.Issue(t, "sessiond-2", true)
	writeFile(t, f.cert, c2)
	writeFile(t, f.key, k2)
	got, err := tlsPing(ts.tlsAddr, oldTrust)
	require.NoError(t, err, "nothing reloads by itself")
	assert.Equal(t, "+PONG\r\n", got)
	assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "tls-cert-file", f.cert, "tls-key-file", f.key))
	_, err = tlsPing(ts.tlsAddr, oldTrust)
	assert.Error(t, err, "a new handshake still got the old certificate")
	newTrust := &tls.Config{RootCAs: ca2.Pool, Certificates: []tls.Certificate{f.client}}
	got, err = tlsPing(ts.tlsAddr, newTrust)
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", got)
	assert.Equal(t, "+PONG\r\n", ping(), "the established connection")

	// A bad value: Redis's error, and the previous configuration stays.
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n",
		admin.DoString("CONFIG", "SET", "tls-cert-file", filepath.Join(f.dir, "missing.crt")))
	assert.Equal(t, "*2\r\n$13\r\ntls-cert-file\r\n$"+strconv.Itoa(len(f.cert))+"\r\n"+f.cert+"\r\n", admin.DoString("CONFIG", "GET", "tls-cert-file"))
	assert.Equal(t, "-ERR CONFIG SET failed (possibly related to argument 'tls-auth-clients') - argument(s) must be one of the following: no, yes, optional\r\n",
		admin.DoString("CONFIG", "SET", "tls-auth-clients", "sometimes"))
	got, err = tlsPing(ts.tlsAddr, newTrust)
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", got)

	// tls-auth-clients applies to new handshakes too.
	assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "tls-auth-clients", "no"))
	got, err = tlsPing(ts.tlsAddr, &tls.Config{RootCAs: ca2.Pool})
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", got)

	// ReloadTLS (SIGHUP in cmd/sessiond) re-reads the files.
	writeFile(t, f.cert, f.serverCertPEM)
	writeFile(t, f.key, f.serverKeyPEM)
	require.NoError(t, ts.srv.ReloadTLS())
	got, err = tlsPing(ts.tlsAddr, oldTrust)
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", got)
	writeFile(t, f.key, []byte("garbage"))
	assert.Error(t, ts.srv.ReloadTLS())
	got, err = tlsPing(ts.tlsAddr, oldTrust)
	require.NoError(t, err, "a failed reload keeps the configuration in use")
	assert.Equal(t, "+PONG\r\n", got)
}

// TestTLSRefusals: maxclients and protected mode over TLS, where the
// refusal follows the handshake; a verified client certificate passes
// protected mode.
func TestTLSRefusals(t *testing.T) {
	f := newTLSFiles(t)
	cfg := f.config("optional")
	cfg.MaxClients = 2
	ts := startTLSServer(t, cfg, "0.0.0.0")
	_, port, _ := net.SplitHostPort(ts.tlsAddr)
	local := net.JoinHostPort("127.0.0.1", port)
	trust := &tls.Config{RootCAs: f.ca.Pool, Certificates: []tls.Certificate{f.client}}

	admin := redistest.Dial(t, ts.addr)
	held, err := tls.Dial("tcp", local, trust)
	require.NoError(t, err)
	defer held.Close()
	_, err = held.Write(redistest.EncodeCommand("PING"))
	require.NoError(t, err)
	got, _ := tlsPing(local, trust)
	assert.Equal(t, "-ERR max number of clients reached\r\n", got)
	assert.Equal(t, "1", infoField(t, admin, "rejected_connections"))
	held.Close()
	waitFor(t, "a free slot", func() bool { return clientCount(t, admin) == 1 })

	ip := nonLoopbackIP(t)
	remote := &tls.Config{RootCAs: f.ca.Pool, ServerName: "localhost"}
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: closeWait}, Config: remote}
	conn, err := d.Dial("tcp", net.JoinHostPort(ip.String(), port))
	require.NoError(t, err)
	defer conn.Close()
	got, closed := readToClose(t, conn)
	assert.Equal(t, refuseProtected, got, "no certificate, no password, not loopback")
	assert.True(t, closed)
	waitFor(t, "the refused client's slot", func() bool { return clientCount(t, admin) == 1 })

	remote = &tls.Config{RootCAs: f.ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{f.client}}
	d.Config = remote
	conn, err = d.Dial("tcp", net.JoinHostPort(ip.String(), port))
	require.NoError(t, err)
	defer conn.Close()
	got, closed = sendRaw(t, conn, string(redistest.EncodeCommand("PING")), false)
	assert.Equal(t, "+PONG\r\n", got, "a verified certificate is authentication")
	assert.False(t, closed)
}
