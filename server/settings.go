package server

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// settings are the runtime parameters behind CONFIG GET/SET. Those read on
// the hot path are atomics; the rest live in vals under mu.
type settings struct {
	databases     int
	maxInlineLen  int
	queryBufLimit int64

	pass    atomic.Pointer[string]
	idle    atomic.Int64 // timeout in seconds
	maxBulk atomic.Int64
	notify  atomic.Uint32 // notify-keyspace-events as an eventClass mask
	busyMs  atomic.Int64  // busy-reply-threshold (lua-time-limit) in ms; 0 = never busy

	mu     sync.Mutex        // guards vals
	vals   map[string]string // parameters stored and reported verbatim
	params map[string]*param // by name and alias
	order  []*param

	// onRequirePass applies requirepass to the default ACL user; set by
	// New before the server serves.
	onRequirePass func(pass string)
}

// param is one CONFIG parameter.
type param struct {
	name    string
	aliases []string
	get     func() string
	// set validates and applies v; nil means immutable.
	set func(v string) error
	// apply, when not nil, runs once after every parameter of a CONFIG SET
	// is set; parameters that share an applier run it once (like Redis's
	// apply functions: the TLS files are re-read together). An error
	// undoes the whole CONFIG SET.
	apply *applier
}

// applier is an apply function several parameters may share.
type applier struct{ run func() error }

// redisText is an error whose text is Redis's own wording, which clients
// may show verbatim (capitals and full stop included).
type redisText string

func (e redisText) Error() string { return string(e) }

func newSettings(cfg Config) *settings {
	st := &settings{
		databases:     cfg.Databases,
		maxInlineLen:  cfg.MaxInlineLen,
		queryBufLimit: cfg.ClientQueryBufferLimit,
		params:        make(map[string]*param),
	}
	pass := cfg.RequirePass
	st.pass.Store(&pass)
	st.idle.Store(int64(cfg.Timeout / time.Second))
	st.maxBulk.Store(cfg.ProtoMaxBulkLen)
	st.busyMs.Store(cfg.BusyReplyThreshold.Milliseconds())
	dir, _ := os.Getwd()
	st.vals = map[string]string{
		"bind":                        cfg.Bind,
		"port":                        strconv.Itoa(cfg.Port),
		"dir":                         dir,
		"dbfilename":                  "dump.rdb",
		"save":                        "",
		"appendonly":                  "no",
		"appendfsync":                 "everysec",
		"notify-keyspace-events":      "",
		"replica-read-only":           "yes",
		"maxmemory":                   "0",
		"maxmemory-policy":            "noeviction",
		"maxmemory-samples":           "5",
		"hz":                          "10",
		"io-threads":                  "1",
		"cluster-enabled":             "no",
		"tcp-backlog":                 "511",
		"daemonize":                   "no",
		"loglevel":                    "notice",
		"logfile":                     "",
		"lazyfree-lazy-user-flush":    "no",
		"lazyfree-lazy-expire":        "no",
		"client-query-buffer-limit":   strconv.FormatInt(cfg.ClientQueryBufferLimit, 10),
		"slowlog-log-slower-than":     "10000",
		"slowlog-max-len":             "128",
		"latency-tracking":            "yes",
		"activerehashing":             "yes",
		"active-expire-effort":        "1",
		"stop-writes-on-bgsave-error": "yes",
		"pidfile":                     "",
	}

	str := func(name string, aliases ...string) *param {
		p := &param{name: name, aliases: aliases}
		p.get = func() string { st.mu.Lock(); defer st.mu.Unlock(); return st.vals[name] }
		p.set = func(v string) error { st.mu.Lock(); st.vals[name] = v; st.mu.Unlock(); return nil }
		return p
	}
	fixed := func(name string, aliases ...string) *param {
		p := str(name, aliases...)
		p.set = nil
		return p
	}
	yesno := func(name string, aliases ...string) *param {
		p := str(name, aliases...)
		inner := p.set
		p.set = func(v string) error {
			v = strings.ToLower(v)
			if v != "yes" && v != "no" {
				return errors.New("argument must be 'yes' or 'no'")
			}
			return inner(v)
		}
		return p
	}
	memory := func(name string) *param {
		p := str(name)
		inner := p.set
		p.set = func(v string) error {
			n, err := ParseMemory(v)
			if err != nil {
				return errors.New("argument must be a memory value")
			}
			return inner(strconv.FormatInt(n, 10))
		}
		return p
	}
	integer := func(name string, lo, hi int64) *param {
		p := str(name)
		inner := p.set
		p.set = func(v string) error {
			if _, err := parseIntParam(v, lo, hi); err != nil {
				return err
			}
			return inner(v)
		}
		return p
	}
	enum := func(name string, options ...string) *param {
		p := str(name)
		inner := p.set
		p.set = func(v string) error {
			v = strings.ToLower(v)
			for _, o := range options {
				if v == o {
					return inner(v)
				}
			}
			return errors.New("argument(s) must be one of the following: " + strings.Join(options, ", "))
		}
		return p
	}

	all := []*param{
		{name: "databases", get: func() string { return strconv.Itoa(st.databases) }},
		{name: "timeout",
			get: func() string { return strconv.FormatInt(st.idle.Load(), 10) },
			set: func(v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return errors.New("argument couldn't be parsed into an integer")
				}
				if n < 0 || n > 1<<31-1 {
					return errors.New("argument must be between 0 and 2147483647 inclusive")
				}
				st.idle.Store(n)
				return nil
			}},
		{name: "requirepass",
			get: func() string { return *st.pass.Load() },
			set: func(v string) error {
				st.pass.Store(&v)
				if st.onRequirePass != nil {
					st.onRequirePass(v) // the default user's password, as in Redis
				}
				return nil
			}},
		{name: "proto-max-bulk-len",
			get: func() string { return strconv.FormatInt(st.maxBulk.Load(), 10) },
			set: func(v string) error {
				n, err := ParseMemory(v)
				if err != nil {
					return errors.New("argument must be a memory value")
				}
				if n < 1<<20 {
					return errors.New("argument must be between 1048576 and 9223372036854775807 inclusive")
				}
				st.maxBulk.Store(n)
				return nil
			}},
		fixed("bind"), fixed("port"), fixed("dir"), fixed("dbfilename"), fixed("io-threads"),
		fixed("cluster-enabled"), fixed("daemonize"), fixed("logfile"), fixed("tcp-backlog"),
		fixed("save"), fixed("appendonly"), fixed("appendfsync"),
		fixed("client-query-buffer-limit"), fixed("pidfile"),
		{name: "notify-keyspace-events", get: func() string { st.mu.Lock(); defer st.mu.Unlock(); return st.vals["notify-keyspace-events"] },
			set: func(v string) error {
				flags, mask, ok := parseKeyspaceEvents(v)
				if !ok {
					return redisText("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
				}
				st.mu.Lock()
				st.vals["notify-keyspace-events"] = flags
				st.notify.Store(uint32(mask))
				st.mu.Unlock()
				return nil
			}},
		yesno("replica-read-only", "slave-read-only"),
		yesno("lazyfree-lazy-user-flush"),
		yesno("lazyfree-lazy-expire"),
		yesno("activerehashing"),
		yesno("latency-tracking"),
		yesno("stop-writes-on-bgsave-error"),
		memory("maxmemory"),
		enum("maxmemory-policy", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"),
		integer("maxmemory-samples", 1, 64),
		integer("hz", 0, 2147483647),
		enum("loglevel", "debug", "verbose", "notice", "warning", "nothing"),
		{name: "busy-reply-threshold", aliases: []string{"lua-time-limit"},
			get: func() string { return strconv.FormatInt(st.busyMs.Load(), 10) },
			set: func(v string) error {
				n, err := parseIntParam(v, 0, math.MaxInt64)
				if err == nil {
					st.busyMs.Store(n)
				}
				return err
			}},
		integer("slowlog-log-slower-than", -1, 1<<62),
		integer("slowlog-max-len", 0, 1<<62),
		integer("active-expire-effort", 1, 10),
	}
	st.add(all...)
	st.usePersistence(cfg.Persistence)
	return st
}

// add registers parameters; the parts of the server that own a parameter
// (limits.go, tls.go) add theirs when the Server is built.
func (st *settings) add(ps ...*param) {
	for _, p := range ps {
		st.order = append(st.order, p)
		st.params[p.name] = p
		for _, a := range p.aliases {
			st.params[a] = p
		}
	}
}

func (st *settings) requirePass() string    { return *st.pass.Load() }
func (st *settings) timeout() time.Duration { return time.Duration(st.idle.Load()) * time.Second }
func (st *settings) protoMaxBulkLen() int64 { return st.maxBulk.Load() }

// busyReplyThreshold is how long a script runs before the server answers
// BUSY; 0 means never.
func (st *settings) busyReplyThreshold() time.Duration {
	return time.Duration(st.busyMs.Load()) * time.Millisecond
}

// match returns name/value pairs of the parameters matching the glob
// patterns, each once, in table order; aliases match like names, as in
// Redis.
func (st *settings) match(patterns []string) [][2]string {
	var out [][2]string
	seen := make(map[string]bool)
	for _, asked := range patterns {
		pat := strings.ToLower(asked)
		if p, ok := st.params[pat]; ok && !strings.ContainsAny(pat, "*?[") {
			// An exact name is echoed as the client spelled it, as Redis does.
			if !seen[pat] {
				seen[pat] = true
				out = append(out, [2]string{asked, p.get()})
			}
			continue
		}
		try := func(p *param, name string) {
			if !seen[name] && globMatch([]byte(pat), []byte(name), false) {
				seen[name] = true
				out = append(out, [2]string{name, p.get()})
			}
		}
		for _, p := range st.order {
			try(p, p.name)
			for _, a := range p.aliases {
				try(p, a)
			}
		}
	}
	return out
}

// ParseMemory parses a Redis memory value as redis.conf and CONFIG SET
// accept it: 100, 1k, 1kb, 1m, 1mb, 1g, 1gb (k = 1000, kb = 1024), case
// insensitive. It is shared with the command line, so both agree.
func ParseMemory(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1000}, {"m", 1000 * 1000}, {"g", 1000 * 1000 * 1000}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s = strings.TrimSuffix(s, u.suffix)
			mul = u.mul
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("invalid memory value %q", v)
	}
	return n * mul, nil
}

// parseKeyspaceEvents validates notify-keyspace-events flags and returns
// them in Redis's canonical form, with the classes they enable.
func parseKeyspaceEvents(v string) (string, eventClass, bool) {
	var f eventClass
	for _, ch := range v {
		switch ch {
		case 'A':
			f |= evAll
		case 'g':
			f |= evGeneric
		case '$':
			f |= evString
		case 'l':
			f |= evList
		case 's':
			f |= evSet
		case 'h':
			f |= evHash
		case 'z':
			f |= evZSet
		case 'x':
			f |= evExpired
		case 'e':
			f |= evEvicted
		case 'K':
			f |= evKeyspace
		case 'E':
			f |= evKeyevent
		case 't':
			f |= evStream
		case 'm':
			f |= evKeyMiss
		case 'd':
			f |= evModule
		case 'n':
			f |= evNew
		default:
			return "", 0, false
		}
	}
	var b strings.Builder
	if f&evAll == evAll {
		b.WriteByte('A')
	} else {
		for _, x := range []struct {
			bit eventClass
			ch  byte
		}{{evGeneric, 'g'}, {evString, '$'}, {evList, 'l'}, {evSet, 's'}, {evHash, 'h'}, {evZSet, 'z'}, {evExpired, 'x'}, {evEvicted, 'e'}, {evStream, 't'}, {evModule, 'd'}, {evNew, 'n'}} {
			if f&x.bit != 0 {
				b.WriteByte(x.ch)
			}
		}
	}
	if f&evKeyspace != 0 {
		b.WriteByte('K')
	}
	if f&evKeyevent != 0 {
		b.WriteByte('E')
	}
	if f&evKeyMiss != 0 {
		b.WriteByte('m')
	}
	return b.String(), f, true
}
