package server

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/sessiond/sessiond/internal/redistest"
)

// sockOpt reads a socket option of the server's side of c's connection.
func sockOpt(t *testing.T, c *client, level, opt int) int {
	t.Helper()
	if c.fd >= 0 {
		v, err := unix.GetsockoptInt(c.fd, level, opt)
		require.NoError(t, err)
		return v
	}
	rc, err := c.nc.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var v int
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }))
	require.NoError(t, gerr)
	return v
}

// TestTCPKeepAlive: both transports set tcp-keepalive on new connections
// as Redis does (idle, interval a third of it, three probes), and 0 turns
// keepalive off.
func TestTCPKeepAlive(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		admin := redistest.Dial(t, ts.addr)
		newest := func() *client {
			t.Helper()
			c := redistest.Dial(t, ts.addr)
			assert.Equal(t, "+PONG\r\n", c.DoString("PING"))
			var last *client
			for _, o := range ts.srv.clientsForTest() {
				if last == nil || o.id > last.id {
					last = o
				}
			}
			return last
		}
		c := newest()
		assert.Equal(t, 1, sockOpt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE))
		assert.Equal(t, 300, sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE))
		assert.Equal(t, 100, sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL))
		assert.Equal(t, 3, sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPCNT))
		assert.Equal(t, 1, sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_NODELAY))

		assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "tcp-keepalive", "2"))
		c = newest()
		assert.Equal(t, 2, sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE))
		assert.Equal(t, 1, sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL))

		assert.Equal(t, "+OK\r\n", admin.DoString("CONFIG", "SET", "tcp-keepalive", "0"))
		c = newest()
		assert.Equal(t, 0, sockOpt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE))
	})
}
