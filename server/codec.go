package server

import (
	"fmt"

	"github.com/sessiond/sessiond/ttl"
)

// persistedObject is implemented by the values of every object kind (hash,
// set, sorted set): appendBinary appends a self-contained encoding that the
// kind's decoder reads back. Deadlines inside a value (hash fields) are
// absolute Unix milliseconds, so the encoding survives a restart.
type persistedObject interface {
	ttl.Object
	appendBinary(dst []byte) []byte
}

// decodeObject rebuilds an object kind's value from appendBinary's output.
// Parts already past now (hash fields) are dropped.
func decodeObject(kind ttl.Kind, b []byte, now int64) (ttl.Object, error) {
	switch kind {
	case kindHash:
		return asObject(decodeHash(b, now)) // errObjectExpired: every field expired, leave the key out
	case kindSet:
		return asObject(decodeSet(b))
	case kindZSet:
		return asObject(decodeZSet(b))
	}
	return nil, fmt.Errorf("server: no decoder for kind %d", kind)
}

// asObject returns a decoder's result as a ttl.Object: a nil interface on
// error, never one holding a nil pointer.
func asObject[T ttl.Object](v T, err error) (ttl.Object, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}
