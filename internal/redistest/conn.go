package redistest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// DefaultTimeout bounds each read and write of a Conn unless changed with
// SetTimeout.
const DefaultTimeout = 10 * time.Second

// Conn is a raw RESP connection for byte-exact tests. It is not safe for
// concurrent use, and its must-style methods must run on the test's
// goroutine.
type Conn struct {
	tb      testing.TB
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// Dial connects to addr and registers a cleanup that closes the connection.
func Dial(tb testing.TB, addr string) *Conn {
	tb.Helper()
	c, err := DialErr(tb, addr)
	require.NoError(tb, err, "dial %s", addr)
	return c
}

// DialErr is Dial returning the error instead of failing the test.
func DialErr(tb testing.TB, addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, DefaultTimeout)
	if err != nil {
		return nil, err
	}
	return NewConn(tb, nc), nil
}

// NewConn wraps an established connection (e.g. one end of a net.Pipe, for
// a server in a synctest bubble) and registers a cleanup that closes it.
// On a net.Pipe, whose writes wait for the reader, read each reply before
// sending the next command: do not pipeline.
func NewConn(tb testing.TB, nc net.Conn) *Conn {
	c := &Conn{tb: tb, nc: nc, r: bufio.NewReaderSize(nc, 64<<10), timeout: DefaultTimeout}
	tb.Cleanup(func() { _ = c.nc.Close() })
	return c
}

// SetTimeout changes the deadline of each later read and write.
func (c *Conn) SetTimeout(d time.Duration) { c.timeout = d }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection (the cleanup closing it again is harmless).
func (c *Conn) Close() error { return c.nc.Close() }

// Do sends a command and returns the exact bytes of the next reply (which
// may be a push, e.g. the RESP3 reply to SUBSCRIBE).
func (c *Conn) Do(args ...string) []byte {
	c.tb.Helper()
	c.Send(EncodeCommand(args...))
	reply, err := c.ReadReply()
	require.NoError(c.tb, err, "reading the reply to %q", args)
	return reply
}

// DoString is Do returning a string, convenient with require.Equal.
func (c *Conn) DoString(args ...string) string {
	c.tb.Helper()
	return string(c.Do(args...))
}

// Send writes raw bytes (one or more commands, or deliberate garbage).
func (c *Conn) Send(raw []byte) {
	c.tb.Helper()
	require.NoError(c.tb, c.Write(raw))
}

// SendCommand writes one command encoded as a multibulk without reading
// the reply, for pipelining.
func (c *Conn) SendCommand(args ...string) {
	c.tb.Helper()
	c.Send(EncodeCommand(args...))
}

// Write is Send returning the error instead of failing the test.
func (c *Conn) Write(raw []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(raw)
	return err
}

// ReadReply reads the exact bytes of the next reply, waiting at most the
// connection's timeout. After an error other than io.EOF the connection may
// be out of step with the stream and should not be read again.
func (c *Conn) ReadReply() ([]byte, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	return ReadReply(c.r)
}

// MustReadReply is ReadReply failing the test on error.
func (c *Conn) MustReadReply() []byte {
	c.tb.Helper()
	reply, err := c.ReadReply()
	require.NoError(c.tb, err)
	return reply
}

// ExpectClosed fails the test unless the server closes the connection
// within the timeout without sending anything more.
func (c *Conn) ExpectClosed() {
	c.tb.Helper()
	extra, err := c.readUntilClosed()
	require.Empty(c.tb, extra, "server sent %q instead of closing", extra)
	require.NoError(c.tb, err, "connection not closed by the server")
}

// readUntilClosed reads what arrives before the server closes the
// connection. It returns nil error once the connection is closed.
func (c *Conn) readUntilClosed() ([]byte, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	extra, err := io.ReadAll(c.r)
	if err == nil || IsClosed(err) {
		return extra, nil
	}
	return extra, err
}

// IsClosed reports whether err means the peer closed the connection.
func IsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// EncodeCommand encodes args as a RESP multibulk, the way clients send
// commands.
func EncodeCommand(args ...string) []byte {
	n := 16
	for _, a := range args {
		n += len(a) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
