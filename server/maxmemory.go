package server

import (
	"fmt"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/ttl"
)

// maxmemory, as Redis's: before each command, while used memory is over
// the limit, keys are evicted by maxmemory-policy (performEvictions); when
// nothing can be evicted, commands flagged denyoom (and, inside MULTI, any
// command but EXEC, DISCARD, QUIT and RESET) are refused with errOOM.
//
// Used memory is what the process holds, close to its RSS: the store's
// arena chunks mapped (off-heap keys and values) plus the Go runtime's
// memory that is not returned to the OS (entry tables, indexes, objects,
// client buffers, stacks, runtime metadata and free heap not yet
// scavenged). The first is an atomic the store keeps; the second is read
// from runtime/metrics at most every goMemRefresh.

const (
	errOOM = "OOM command not allowed when used memory > 'maxmemory'."

	// evictTimeLimit bounds the eviction one command runs (Redis's
	// maxmemory-eviction-tenacity 10); the next commands carry on.
	evictTimeLimit = 500 * time.Microsecond
	// evictKeysPerStep bounds the keys one store.Evict call removes, so
	// the time limit is checked often.
	evictKeysPerStep = 64
	// goMemRefresh is how stale the Go runtime's figure may be.
	goMemRefresh = 5 * time.Millisecond
)

type evictResult int

const (
	evictOK      evictResult = iota // under the limit
	evictRunning                    // over, keys were evicted, more to do
	evictFail                       // over, and nothing can be evicted
)

// memState is the Server's maxmemory state.
type memState struct {
	max     atomic.Int64  // maxmemory in bytes; 0: no limit
	policy  atomic.Uint32 // a ttl.Policy
	evicted atomic.Int64  // INFO evicted_keys

	goMem atomic.Int64 // Go runtime memory at goAt
	goAt  atomic.Int64 // Unix ns of that sample
	// sampleMu guards samples; whoever holds it refreshes goMem.
	sampleMu sync.Mutex
	samples  [2]metrics.Sample

	mu      sync.Mutex // serializes eviction passes
	onEvict func(db int, key []byte)

	// goMemFn, when set (by tests, before serving), replaces the Go
	// runtime's figure, so that used memory is the store's alone.
	goMemFn func() int64
}

// initMaxmemory makes CONFIG SET maxmemory, maxmemory-policy and
// maxmemory-samples take effect, and applies cfg's values through them.
func (s *Server) initMaxmemory(cfg Config) error {
	s.mem.onEvict = s.keyEvicted
	s.mem.samples[0].Name = "/memory/classes/total:bytes"
	s.mem.samples[1].Name = "/memory/classes/heap/released:bytes"
	wrap := func(name string, apply func()) {
		p := s.conf.params[name]
		inner := p.set
		p.set = func(v string) error {
			if err := inner(v); err != nil {
				return err
			}
			apply()
			return nil
		}
	}
	wrap("maxmemory", s.applyMaxmemory)
	wrap("maxmemory-policy", s.applyEvictionPolicy)
	wrap("maxmemory-samples", s.applyEvictionPolicy)
	if cfg.MaxMemory < 0 {
		return fmt.Errorf("%w: maxmemory must not be negative", ErrConfig)
	}
	if cfg.MaxMemoryPolicy == "" {
		cfg.MaxMemoryPolicy = ttl.NoEviction.String()
	}
	if cfg.MaxMemorySamples == 0 {
		cfg.MaxMemorySamples = ttl.DefaultSamples
	}
	for _, kv := range [][2]string{
		{"maxmemory-policy", cfg.MaxMemoryPolicy},
		{"maxmemory-samples", strconv.Itoa(cfg.MaxMemorySamples)},
		{"maxmemory", strconv.FormatInt(cfg.MaxMemory, 10)},
	} {
		if err := s.conf.params[kv[0]].set(kv[1]); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, kv[0], err)
		}
	}
	return nil
}

func (s *Server) applyMaxmemory() {
	n, _ := strconv.ParseInt(s.conf.params["maxmemory"].get(), 10, 64)
	s.mem.max.Store(n)
	if n > 0 {
		if used := s.usedMemory(); used > n {
			s.log.Warn("maxmemory is below the memory used: evicting, or refusing writes under noeviction",
				"maxmemory", n, "used", used)
			s.performEvictions()
		}
	}
}

func (s *Server) applyEvictionPolicy() {
	p, _ := ttl.ParsePolicy(s.conf.params["maxmemory-policy"].get())
	samples, _ := strconv.Atoi(s.conf.params["maxmemory-samples"].get())
	s.store.SetEviction(p, samples)
	s.mem.policy.Store(uint32(p))
}

// usedMemory returns the memory counted against maxmemory (INFO
// used_memory).
func (s *Server) usedMemory() int64 {
	return s.store.MappedBytes() + s.goMemory()
}

// goMemory returns the Go runtime's memory not returned to the OS, as
// sampled at most goMemRefresh ago.
func (s *Server) goMemory() int64 {
	if s.mem.goMemFn != nil {
		return s.mem.goMemFn()
	}
	now := time.Now().UnixNano()
	if now-s.mem.goAt.Load() < int64(goMemRefresh) || !s.mem.sampleMu.TryLock() {
		return s.mem.goMem.Load()
	}
	defer s.mem.sampleMu.Unlock()
	metrics.Read(s.mem.samples[:])
	var v [2]int64
	for i, smp := range s.mem.samples {
		if smp.Value.Kind() == metrics.KindUint64 {
			v[i] = int64(smp.Value.Uint64())
		}
	}
	s.mem.goMem.Store(v[0] - v[1])
	s.mem.goAt.Store(now)
	return v[0] - v[1]
}

// memoryOK runs before a command when maxmemory is set, after the checks
// of arity and authentication, as in Redis's processCommand: it evicts
// while memory is over the limit, and refuses, replying the OOM error, a
// command that may grow memory when nothing more can be evicted. It
// reports whether the command may run.
func (s *Server) memoryOK(c *client, cmd *command) bool {
	if !s.overMaxmemory() {
		return true // the usual case: no eviction, and no gate taken for it
	}
	// Under the gate, so that no key disappears inside EXEC or a script;
	// while a script is busy nothing is evicted (the command gets BUSY).
	res := evictOK
	if !s.shared(func() { res = s.performEvictions() }) {
		return true
	}
	if res != evictFail {
		return true
	}
	reject := cmd.flags&flagDenyOOM != 0
	if c.multi != nil {
		// Queuing takes memory too; EXEC is refused only for a
		// transaction that holds a denyoom command.
		switch cmd.name {
		case "exec":
			reject = reject || c.multi.denyOOM()
		case "discard", "quit", "reset":
		default:
			reject = true
		}
	}
	if !reject {
		return true
	}
	c.rejectCmd(cmd, errOOM)
	return false
}

// overMaxmemory reports whether maxmemory is set and used memory is over
// it. It takes no lock: the store's part is an atomic, the runtime's a
// sample refreshed at most every goMemRefresh.
func (s *Server) overMaxmemory() bool {
	limit := s.mem.max.Load()
	return limit != 0 && s.usedMemory() > limit
}

// denyOOM reports whether a queued command is flagged denyoom.
func (m *multiState) denyOOM() bool {
	for _, q := range m.queue {
		if q.cmd.flags&flagDenyOOM != 0 {
			return true
		}
	}
	return false
}

// performEvictions evicts keys by the policy while used memory is over
// maxmemory, for at most evictTimeLimit. It must not be called with a
// store lock held.
func (s *Server) performEvictions() evictResult {
	limit := s.mem.max.Load()
	if limit == 0 || s.usedMemory() <= limit {
		return evictOK
	}
	if ttl.Policy(s.mem.policy.Load()) == ttl.NoEviction {
		return evictFail
	}
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	start := time.Now()
	for {
		used := s.usedMemory()
		if used <= limit {
			return evictOK
		}
		freed, n := s.store.Evict(used-limit, evictKeysPerStep, s.mem.onEvict)
		if n == 0 && freed <= 0 {
			return evictFail
		}
		if time.Since(start) > evictTimeLimit {
			return evictRunning
		}
	}
}

// keyEvicted reports a key the store evicted: WATCH and persistence see a
// change, subscribers an evicted event.
func (s *Server) keyEvicted(db int, key []byte) {
	s.mem.evicted.Add(1)
	s.signalKey(db, key)
	s.publishEvent(evEvicted, "evicted", db, key)
}
