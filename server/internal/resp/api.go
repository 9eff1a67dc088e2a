package resp

import (
	"errors"
)

// Limits bounds what a client may send. Zero fields mean Redis's defaults.
type Limits struct {
	MaxBulkLen    int64 // proto-max-bulk-len; 0 means 512 MiB
	MaxInlineLen  int   // longest inline command / header line; 0 means 64 KiB
	MaxQueryBuf   int64 // most bytes buffered for one command; 0 means 1 GiB
	UnauthMaxArgs int   // args allowed before AUTH when auth is required; 0 means 10
	UnauthMaxBulk int64 // bulk length allowed before AUTH; 0 means 16384
}

// Redis's defaults, used for zero fields of Limits.
const (
	DefaultMaxBulkLen    = 512 << 20 // proto-max-bulk-len
	DefaultMaxInlineLen  = 64 << 10  // PROTO_INLINE_MAX_SIZE
	DefaultMaxQueryBuf   = 1 << 30   // client-query-buffer-limit
	DefaultUnauthMaxArgs = 10
	DefaultUnauthMaxBulk = 16384
)

// withDefaults returns l with zero (or negative) fields replaced by Redis's
// defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxBulkLen <= 0 {
		l.MaxBulkLen = DefaultMaxBulkLen
	}
	if l.MaxInlineLen <= 0 {
		l.MaxInlineLen = DefaultMaxInlineLen
	}
	if l.MaxQueryBuf <= 0 {
		l.MaxQueryBuf = DefaultMaxQueryBuf
	}
	if l.UnauthMaxArgs <= 0 {
		l.UnauthMaxArgs = DefaultUnauthMaxArgs
	}
	if l.UnauthMaxBulk <= 0 {
		l.UnauthMaxBulk = DefaultUnauthMaxBulk
	}
	return l
}

// ProtocolError is a malformed request. Its message is Redis's text after
// "ERR " (e.g. "Protocol error: invalid bulk length"); the server answers
// "-ERR <msg>" and closes the connection.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return e.Msg }

// The messages of the protocol errors, Redis 7's wording (networking.c).
const (
	msgTooBigMbulk  = "Protocol error: too big mbulk count string"
	msgInvalidMbulk = "Protocol error: invalid multibulk length"
	msgUnauthMbulk  = "Protocol error: unauthenticated multibulk length"
	msgTooBigBulk   = "Protocol error: too big bulk count string"
	msgInvalidBulk  = "Protocol error: invalid bulk length"
	msgUnauthBulk   = "Protocol error: unauthenticated bulk length"
	msgTooBigInline = "Protocol error: too big inline request"
	msgUnbalanced   = "Protocol error: unbalanced quotes in request"
	msgExpected     = "Protocol error: expected '$', got '" // + the byte + "'"
)

// ErrQueryBufferLimit is returned by ReadCommand when the command being
// received exceeds Limits.MaxQueryBuf bytes; Redis closes such a client
// without a reply.
var ErrQueryBufferLimit = errors.New("resp: query buffer limit reached")
