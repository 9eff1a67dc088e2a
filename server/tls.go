package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TLS: ServeTLS serves a listener's connections over TLS, with the
// goroutine transport (crypto/tls over net.Conn; the event loops serve
// plain TCP only). The certificate, key and CA are read from files named by
// the tls-* parameters, and read again, for new handshakes only, when one of
// them is set with CONFIG SET (even to the same name, as in Redis 7) or
// ReloadTLS is called (cmd/sessiond does on SIGHUP). Connections already
// established keep their session.

// tlsHandshakeTimeout bounds a TLS handshake, so that a client that
// connects and says nothing holds its slot for a bounded time.
const tlsHandshakeTimeout = 10 * time.Second

// tlsState is the server's TLS configuration.
type tlsState struct {
	mu  sync.Mutex                 // serializes reloads
	cur atomic.Pointer[tls.Config] // what new handshakes use; nil until loaded
}

// tlsParams are the CONFIG parameters of TLS. The file names and
// tls-auth-clients are applied together after a CONFIG SET, so a
// certificate and its key can be changed in one command.
func (s *Server) tlsParams(cfg Config) []*param {
	s.conf.mu.Lock()
	s.conf.vals["tls-port"] = strconv.Itoa(cfg.TLSPort)
	s.conf.vals["tls-cert-file"] = cfg.TLSCertFile
	s.conf.vals["tls-key-file"] = cfg.TLSKeyFile
	s.conf.vals["tls-ca-cert-file"] = cfg.TLSCACertFile
	s.conf.vals["tls-auth-clients"] = cfg.TLSAuthClients
	s.conf.mu.Unlock()
	val := func(name string) func() string {
		return func() string { s.conf.mu.Lock(); defer s.conf.mu.Unlock(); return s.conf.vals[name] }
	}
	store := func(name, v string) { s.conf.mu.Lock(); s.conf.vals[name] = v; s.conf.mu.Unlock() }
	apply := &applier{run: s.applyTLS}
	file := func(name string) *param {
		return &param{name: name, get: val(name), apply: apply,
			set: func(v string) error { store(name, v); return nil }}
	}
	return []*param{
		{name: "tls-port", get: val("tls-port")},
		file("tls-cert-file"),
		file("tls-key-file"),
		file("tls-ca-cert-file"),
		{name: "tls-auth-clients", get: val("tls-auth-clients"), apply: apply,
			set: func(v string) error {
				v = strings.ToLower(v)
				if v != "yes" && v != "no" && v != "optional" {
					return errors.New("argument(s) must be one of the following: no, yes, optional")
				}
				store("tls-auth-clients", v)
				return nil
			}},
	}
}

// loadTLSConfig builds the configuration for new handshakes from the
// current tls-* parameters.
func (s *Server) loadTLSConfig() (*tls.Config, error) {
	s.conf.mu.Lock()
	certFile, keyFile := s.conf.vals["tls-cert-file"], s.conf.vals["tls-key-file"]
	caFile, auth := s.conf.vals["tls-ca-cert-file"], s.conf.vals["tls-auth-clients"]
	s.conf.mu.Unlock()
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls-cert-file and tls-key-file are required")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading tls-cert-file and tls-key-file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	switch auth {
	case "no":
		cfg.ClientAuth = tls.NoClientCert
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls-ca-cert-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls-ca-cert-file %s: no PEM certificate", caFile)
		}
		cfg.ClientCAs = pool
	} else if cfg.ClientAuth != tls.NoClientCert {
		return nil, errors.New("tls-ca-cert-file must be specified when tls-auth-clients is yes or optional")
	}
	return cfg, nil
}

// ReloadTLS reads the certificate, key and CA files again. New handshakes
// use them; established connections keep their session. On error the
// configuration in use stays.
func (s *Server) ReloadTLS() error {
	s.tls.mu.Lock()
	defer s.tls.mu.Unlock()
	cfg, err := s.loadTLSConfig()
	if err != nil {
		return err
	}
	s.tls.cur.Store(cfg)
	return nil
}

// applyTLS is the tls-* parameters' apply: when TLS is in use it reloads,
// and a failure undoes the CONFIG SET with Redis's error.
func (s *Server) applyTLS() error {
	if s.tls.cur.Load() == nil {
		return nil // TLS not in use: the values are kept for later
	}
	if err := s.ReloadTLS(); err != nil {
		s.log.Warn("Failed applying new TLS configuration; keeping the previous one", "err", err)
		return redisText("Unable to update TLS configuration. Check server logs.")
	}
	s.log.Info("TLS configuration reloaded")
	return nil
}

// ServeTLS is Serve for TLS: it accepts connections on ln and serves them
// over TLS with the configured certificate (see Config.TLSCertFile). ln is
// closed on return.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.tls.cur.Load() == nil {
		if err := s.ReloadTLS(); err != nil {
			ln.Close()
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	base := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return s.tls.cur.Load(), nil
	}}
	return s.Serve(tls.NewListener(ln, base))
}

// handshake completes a TLS client's handshake, within tlsHandshakeTimeout,
// and then applies protected mode, for which a verified client certificate
// counts as authentication. It reports false when the connection is not to
// be served (a refused one has had the DENIED reply and is closed). Plain
// connections pass at once.
func (c *client) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	_ = tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	err := tc.Handshake()
	_ = tc.SetDeadline(time.Time{})
	if err != nil {
		c.srv.log.Debug("TLS handshake failed", "addr", c.addr, "err", err)
		return false
	}
	select {
	case <-c.srv.done:
		return false // the server closed during the handshake
	default:
	}
	verified := len(tc.ConnectionState().VerifiedChains) > 0
	if c.srv.protectedDenies(tc.RemoteAddr(), verified) {
		c.srv.refuse(tc, false, refuseProtected)
		return false
	}
	return true
}
