package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CA is a certificate authority made up for a test, to issue the
// certificates of TLS tests. Its keys are ECDSA P-256 and its
// certificates are valid from an hour ago for a day.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte         // Cert, PEM-encoded
	Pool *x509.CertPool // holds Cert: trust in this CA alone
}

// NewCA makes a self-signed certificate authority named name.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, key := newCert(tb, tmpl, nil, nil)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der), Pool: pool}
}

// Issue returns a PEM certificate named name, signed by the CA, and its
// PEM (PKCS #8) key: a server's certificate, for 127.0.0.1 and localhost,
// or a client's.
func (ca *CA) Issue(tb testing.TB, name string, server bool) (certPEM, keyPEM []byte) {
	tb.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, key := newCert(tb, tmpl, ca.Cert, ca.Key)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(tb, err)
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder)
}

// newCert makes a key and a certificate for it from tmpl, with a random
// serial number and the validity filled in, signed by parent's key, or
// self-signed when parent is nil. It returns the certificate's DER.
func newCert(tb testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl.SerialNumber, err = rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(tb, err)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(tb, err)
	return der, key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
