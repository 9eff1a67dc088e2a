package server

import (
	"sync"
	"time"
)

// gate makes EXEC and scripts atomic with respect to every other client:
// each command runs holding the gate shared, an exclusive section holds it
// alone. Commands inside an exclusive section run through s.call directly
// and take the store's shard locks as usual (no other client holds any).
type gate struct {
	mu sync.RWMutex
}

// exclusive runs fn with no other command running. c is the client asking
// (it holds the gate shared while its command runs; that hold is given up
// for the duration).
func (s *Server) exclusive(c *client, fn func()) {
	s.gate.mu.RUnlock()
	s.gate.mu.Lock()
	defer func() {
		s.gate.mu.Unlock()
		s.gate.mu.RLock()
	}()
	_ = c
	_ = time.Now
	fn()
}
