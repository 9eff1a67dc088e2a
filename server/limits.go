package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client limits: maxclients, protected mode, tcp-keepalive,
// client-output-buffer-limit and CLIENT PAUSE.

// Replies to refused connections, Redis 7.0's own bytes (networking.c).
const (
	refuseMaxClients = "-ERR max number of clients reached\r\n"
	refuseProtected  = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. " +
		"In this mode connections are only accepted from the loopback interface. " +
		"If you want to connect from external computers to Redis you may adopt one of the following solutions: " +
		"1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, " +
		"however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. " +
		"2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. " +
		"3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. " +
		"4) Setup a an authentication password for the default user. " +
		"NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"
)

// Defaults of the limits (Config's zero values).
const (
	DefaultMaxClients   = 10000
	DefaultTCPKeepAlive = 300 * time.Second
	// reservedFDs are the descriptors kept for listeners, event loops and
	// the rest when maxclients is fitted to the open-file limit (Redis's
	// CONFIG_MIN_RESERVED_FDS).
	reservedFDs = 32
	// refusingMax bounds the goroutines that finish a TLS handshake only
	// to send a refusal; past it, refused TLS connections are just closed.
	refusingMax = 16
	// refuseWriteTimeout bounds the write of a refusal.
	refuseWriteTimeout = time.Second
)

// Output buffer classes, in CONFIG GET client-output-buffer-limit order.
const (
	classNormal = iota
	classReplica
	classPubSub
	numClasses
)

// obufLimit is one class of client-output-buffer-limit. Zero disables a
// limit. Redis keeps them as unsigned 64-bit values, shown as given.
type obufLimit struct {
	hard, soft uint64
	softFor    time.Duration
}

type obufLimits [numClasses]obufLimit

// defaultOutputLimits are sessiond's defaults. Unlike Redis (normal 0 0 0),
// a normal client is bounded: one whose unsent replies reach 256 MiB, or
// stay over 64 MiB for a minute, is closed.
func defaultOutputLimits() obufLimits {
	return obufLimits{
		classNormal:  {hard: 256 << 20, soft: 64 << 20, softFor: 60 * time.Second},
		classReplica: {hard: 256 << 20, soft: 64 << 20, softFor: 60 * time.Second},
		classPubSub:  {hard: 32 << 20, soft: 8 << 20, softFor: 60 * time.Second},
	}
}

// limits holds the runtime values of the limits' parameters.
type limits struct {
	maxClients atomic.Int64
	keepAlive  atomic.Int64 // tcp-keepalive seconds; 0 disables
	protected  atomic.Bool
	obuf       atomic.Pointer[obufLimits]

	// conns counts clients, including those accepted but not registered
	// yet: a slot is taken before a connection becomes a client and given
	// back when it goes (removeClient), so maxclients is exact however many
	// listeners accept at once.
	conns atomic.Int64
	// refusing bounds the goroutines sending refusals over TLS.
	refusing chan struct{}
}

func (s *Server) initLimits(cfg Config) error {
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxClients < 1 || int64(cfg.MaxClients) > math.MaxUint32 {
		return fmt.Errorf("%w: maxclients must be between 1 and 4294967295", ErrConfig)
	}
	if cfg.TCPKeepAlive == 0 {
		cfg.TCPKeepAlive = DefaultTCPKeepAlive
	}
	ob := defaultOutputLimits()
	if err := parseOutputLimits(cfg.ClientOutputBufferLimit, &ob); err != nil {
		return fmt.Errorf("%w: client-output-buffer-limit: %v", ErrConfig, err)
	}
	s.lim.maxClients.Store(int64(cfg.MaxClients))
	s.lim.keepAlive.Store(max(int64(cfg.TCPKeepAlive/time.Second), 0))
	s.lim.protected.Store(!cfg.DisableProtectedMode)
	s.lim.obuf.Store(&ob)
	s.lim.refusing = make(chan struct{}, refusingMax)
	s.pause.changed = make(chan struct{})
	s.pause.kick = make(chan struct{}, 1)
	s.pause.parked = make(map[*client]struct{})
	s.conf.add(s.limitParams()...)
	return nil
}

// limitParams are the CONFIG parameters of the limits.
func (s *Server) limitParams() []*param {
	return []*param{
		{name: "maxclients",
			get: func() string { return strconv.FormatInt(s.lim.maxClients.Load(), 10) },
			set: func(v string) error {
				n, err := parseIntParam(v, 1, math.MaxUint32)
				if err != nil {
					return err
				}
				if n > s.lim.maxClients.Load() {
					fit, err := FitOpenFiles(int(n))
					if err == nil && fit.MaxClients < int(n) {
						return redisText("The operating system is not able to handle the specified number of clients, try with " + strconv.Itoa(fit.MaxClients))
					}
				}
				s.lim.maxClients.Store(n)
				return nil
			}},
		{name: "tcp-keepalive",
			get: func() string { return strconv.FormatInt(s.lim.keepAlive.Load(), 10) },
			set: func(v string) error {
				n, err := parseIntParam(v, 0, math.MaxInt32)
				if err != nil {
					return err
				}
				s.lim.keepAlive.Store(n)
				return nil
			}},
		{name: "protected-mode",
			get: func() string { return yesNo(s.lim.protected.Load()) },
			set: func(v string) error {
				switch strings.ToLower(v) {
				case "yes":
					s.lim.protected.Store(true)
				case "no":
					s.lim.protected.Store(false)
				default:
					return errors.New("argument must be 'yes' or 'no'")
				}
				return nil
			}},
		{name: "client-output-buffer-limit",
			get: func() string { return formatOutputLimits(s.lim.obuf.Load()) },
			set: func(v string) error {
				ob := *s.lim.obuf.Load()
				if err := parseOutputLimits(v, &ob); err != nil {
					return err
				}
				s.lim.obuf.Store(&ob)
				return nil
			}},
	}
}

// parseIntParam parses the value of an integer CONFIG parameter that must
// lie in [lo, hi], with Redis's errors.
func parseIntParam(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New("argument couldn't be parsed into an integer")
	}
	if n < lo || n > hi {
		return 0, errors.New("argument must be between " + strconv.FormatInt(lo, 10) + " and " + strconv.FormatInt(hi, 10) + " inclusive")
	}
	return n, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// formatOutputLimits renders the limits as CONFIG GET shows them.
func formatOutputLimits(ob *obufLimits) string {
	var b strings.Builder
	for i, name := range [numClasses]string{"normal", "slave", "pubsub"} {
		if i > 0 {
			b.WriteByte(' ')
		}
		l := ob[i]
		fmt.Fprintf(&b, "%s %d %d %d", name, l.hard, l.soft, int64(l.softFor/time.Second))
	}
	return b.String()
}

// parseOutputLimits applies a client-output-buffer-limit value (groups of
// "<class> <hard> <soft> <soft-seconds>") to ob; classes not named keep
// their limits. The errors are Redis's.
func parseOutputLimits(v string, ob *obufLimits) error {
	f := strings.Fields(v)
	if len(f)%4 != 0 {
		return redisText("Wrong number of arguments in buffer limit configuration.")
	}
	next := *ob
	for i := 0; i < len(f); i += 4 {
		var class int
		switch strings.ToLower(f[i]) {
		case "normal":
			class = classNormal
		case "slave", "replica":
			class = classReplica
		case "pubsub":
			class = classPubSub
		default:
			return redisText("Invalid client class specified in buffer limit configuration.")
		}
		hard, err1 := parseMemUnsigned(f[i+1])
		soft, err2 := parseMemUnsigned(f[i+2])
		secs, err3 := strconv.ParseInt(f[i+3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || secs < 0 {
			return redisText("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
		}
		next[class] = obufLimit{hard: hard, soft: soft, softFor: time.Duration(min(secs, math.MaxInt64/int64(time.Second))) * time.Second}
	}
	*ob = next
	return nil
}

// parseMemUnsigned parses a memory value as Redis's memtoull does: digits
// and an optional unit (b, k, kb, m, mb, g, gb), no sign; a number too big
// saturates.
func parseMemUnsigned(v string) (uint64, error) {
	s := strings.ToLower(v)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	var mul uint64
	switch s[i:] {
	case "", "b":
		mul = 1
	case "k":
		mul = 1000
	case "kb":
		mul = 1 << 10
	case "m":
		mul = 1000 * 1000
	case "mb":
		mul = 1 << 20
	case "g":
		mul = 1000 * 1000 * 1000
	case "gb":
		mul = 1 << 30
	default:
		return 0, errors.New("bad unit")
	}
	if i == 0 {
		return 0, errors.New("no digits")
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		n = math.MaxUint64 // only a range error is possible here
	}
	if n > math.MaxUint64/mul {
		return math.MaxUint64, nil
	}
	return n * mul, nil
}

// outputLimit returns client-output-buffer-limit for normal clients, or for
// pub/sub clients: a client whose unsent replies reach hard bytes is closed
// at once; one that stays at or over soft bytes for longer than softFor is
// closed too. Zero disables a limit.
func (s *Server) outputLimit(pubsub bool) (hard, soft int64, softFor time.Duration) {
	class := classNormal
	if pubsub {
		class = classPubSub
	}
	l := s.lim.obuf.Load()[class]
	clip := func(n uint64) int64 { return int64(min(n, math.MaxInt64)) }
	return clip(l.hard), clip(l.soft), l.softFor
}

// checkOutput applies the output buffer limit of its class to pending, the
// bytes of replies the client has not taken yet, and records them for
// CLIENT LIST (omem). It reports false when the hard limit is reached: the
// caller then drops the replies and closes the client. A soft limit is
// checked here as the output grows and by the cron while it does not, so a
// client that reads nothing is closed softFor after reaching it.
func (c *client) checkOutput(pending int64, pubsub bool) bool {
	c.omem.Store(pending)
	if c.omemPubSub.Load() != pubsub {
		c.omemPubSub.Store(pubsub)
	}
	if over := c.outputOver(pending, pubsub, true); over != "" {
		c.outputLimitReached(pending, over)
		return false
	}
	return true
}

// outputOver applies the output limits of a class (pubsub or normal) to
// pending bytes and names the one they break: "hard", "soft" (reached
// longer ago than its time), or "". Reaching the soft limit starts its
// clock; the owner (owner set: checkOutput) also stops it when pending is
// back under, which the cron, reading a figure the owner may be changing,
// leaves to the owner. The clock is read only over the soft limit.
func (c *client) outputOver(pending int64, pubsub bool, owner bool) string {
	hard, soft, softFor := c.srv.outputLimit(pubsub)
	if hard > 0 && pending >= hard {
		return "hard"
	}
	d := c.obufDeadline.Load()
	switch {
	case soft > 0 && pending >= soft:
		now := time.Now().UnixNano()
		if d == 0 {
			c.obufDeadline.CompareAndSwap(0, now+int64(softFor))
		} else if now > d {
			return "soft"
		}
	case owner && d != 0:
		c.obufDeadline.Store(0)
	}
	return ""
}

func (c *client) outputLimitReached(pending int64, which string) {
	c.srv.log.Warn("client closed for overcoming of output buffer limits",
		"id", c.id, "addr", c.addr, "omem", pending, "limit", which)
}

// outputDrained records that the client has taken every reply.
func (c *client) outputDrained() {
	c.omem.Store(0)
	if c.obufDeadline.Load() != 0 {
		c.obufDeadline.Store(0)
	}
}

// errOutputLimit is the write error of a client closed by its output limit.
var errOutputLimit = errors.New("server: client output buffer limit reached")

// ---- admission: maxclients and protected mode ----

// admit decides whether an accepted connection may become a client. It
// takes a client slot (maxclients) and, for a plain connection, applies
// protected mode (a TLS connection's is applied after its handshake, see
// handshake). A refused connection is sent Redis's error and closed, and
// admit reports false.
func (s *Server) admit(nc net.Conn) bool {
	_, isTLS := nc.(*tls.Conn)
	if !s.takeSlot() {
		s.log.Warn("max number of clients reached; refusing connection", "addr", nc.RemoteAddr().String(), "maxclients", s.lim.maxClients.Load())
		s.refuse(nc, isTLS, refuseMaxClients)
		return false
	}
	if !isTLS && s.protectedDenies(nc.RemoteAddr(), false) {
		s.releaseSlot()
		s.refuse(nc, false, refuseProtected)
		return false
	}
	return true
}

func (s *Server) takeSlot() bool {
	for {
		n := s.lim.conns.Load()
		if n >= s.lim.maxClients.Load() {
			return false
		}
		if s.lim.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) releaseSlot() { s.lim.conns.Add(-1) }

// protectedDenies applies protected mode to a peer: while it is on and the
// default user has no password, only loopback peers (and non-IP transports,
// like Redis's Unix sockets) are served. Unlike Redis, a TLS client whose
// certificate the server verified (tls-auth-clients) is authenticated and
// served too.
func (s *Server) protectedDenies(peer net.Addr, verifiedCert bool) bool {
	if !s.lim.protected.Load() || !s.acl.defaultNoPass() || verifiedCert {
		return false
	}
	var ip net.IP
	switch a := peer.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return false
	}
	if ip.IsLoopback() {
		return false
	}
	s.log.Warn("protected mode: refusing a non-loopback client while no password is set", "addr", peer.String())
	return true
}

// refuse sends msg to a connection that will not be served and closes it.
// A plain connection, or a TLS one past its handshake, is answered at once
// (the reply fits an empty socket buffer). A TLS connection whose
// handshake is due needs it first, which a goroutine does within the
// handshake timeout; at most refusingMax of them run, and past that such
// connections are closed without a word.
func (s *Server) refuse(nc net.Conn, handshakeDue bool, msg string) {
	s.rejectedConns.Add(1)
	if !handshakeDue {
		_ = nc.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		_, _ = nc.Write([]byte(msg))
		nc.Close()
		return
	}
	select {
	case s.lim.refusing <- struct{}{}:
	default:
		nc.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.lim.refusing }()
		_ = nc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		_, _ = nc.Write([]byte(msg))
		nc.Close()
	}()
}

// applyKeepAlive sets TCP_NODELAY and tcp-keepalive on a goroutine-served
// connection (Redis's probes: idle for the period, then every third of it,
// three times).
func (s *Server) applyKeepAlive(nc net.Conn) {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetNoDelay(true)
	secs := s.lim.keepAlive.Load()
	if secs <= 0 {
		_ = tc.SetKeepAlive(false)
		return
	}
	idle := time.Duration(secs) * time.Second
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: max(idle/3, time.Second), Count: 3})
}

// enforceLimits is the cron's pass over the clients: it closes those idle
// longer than timeout (if set) and those whose unsent output is over the
// hard limit, or has been over the soft limit for too long. (The owner
// checks the limits as output grows; the cron catches a client that has
// stopped reading, whose output no longer changes, also after CONFIG SET
// lowers the limits.)
func (s *Server) enforceLimits(now time.Time) {
	timeout := s.conf.timeout()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		if pending := c.omem.Load(); pending > 0 {
			if over := c.outputOver(pending, c.omemPubSub.Load(), false); over != "" {
				c.outputLimitReached(pending, over)
				c.closeConn()
				continue
			}
		}
		if timeout > 0 && now.Sub(time.Unix(0, c.lastActive.Load())) > timeout && !c.busy.Load() && !c.isPubSub() {
			s.log.Debug("closing idle client", "id", c.id, "addr", c.addr)
			c.closeConn()
		}
	}
}

// ---- CLIENT PAUSE ----

type pauseMode int32

const (
	pauseOff pauseMode = iota
	pauseWrite
	pauseAll
)

// pauseState is CLIENT PAUSE. A paused command waits: a goroutine-served
// client blocks in dispatch; an event-loop client parks the command (a
// copy of its arguments) and stops being read until the pause ends, when
// its loop runs it and carries on.
type pauseState struct {
	active atomic.Bool // a pause may be in effect (the dispatch fast path)

	mu      sync.Mutex // guards the fields below
	mode    pauseMode
	end     time.Time
	changed chan struct{}        // closed (and replaced) whenever mode or end changes
	parked  map[*client]struct{} // event-loop clients with a parked command
	kick    chan struct{}        // wakes pauseTimer after a change (buffered)
}

// holdsLocked reports whether cmd must wait; s.pause.mu is held.
func (p *pauseState) holdsLocked(cmd *command, now time.Time) bool {
	switch {
	case p.mode == pauseOff || !now.Before(p.end):
		return false
	case p.mode == pauseAll:
		return true
	default:
		return cmd.flags&flagWrite != 0
	}
}

// paused is dispatch's hook, called when a pause may be in effect, after
// the checks that answer at once (unknown command, arity, NOAUTH), as in
// Redis. A goroutine-served client waits here until cmd may run, and
// paused reports false. An event-loop client cannot block its loop: the
// command is parked and paused reports true (dispatch returns; the loop
// runs it later, see loop.process).
func (s *Server) paused(c *client, cmd *command, args [][]byte) bool {
	if c.lp == nil {
		s.waitPause(cmd)
		return false
	}
	c.parkedCmd = cmd
	if !s.parkIfHeld(c) {
		c.parkedCmd = nil
		return false
	}
	n := 0
	for _, a := range args {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	c.parked = make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		c.parked[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	atomic.AddInt64(&c.stats.commands, -1) // counted when it runs
	return true
}

// waitPause blocks until cmd is no longer held by a pause, or the server
// closes.
func (s *Server) waitPause(cmd *command) {
	for {
		s.pause.mu.Lock()
		if !s.pause.holdsLocked(cmd, time.Now()) {
			s.pause.mu.Unlock()
			return
		}
		ch := s.pause.changed
		s.pause.mu.Unlock()
		select {
		case <-ch:
		case <-s.done:
			return
		}
	}
}

// parkIfHeld reports whether c's parked command (c.parkedCmd) must still
// wait, and if so registers c to be resumed when the pause changes; the
// check and the registration are atomic with respect to the change.
func (s *Server) parkIfHeld(c *client) bool {
	s.pause.mu.Lock()
	defer s.pause.mu.Unlock()
	if !s.pause.holdsLocked(c.parkedCmd, time.Now()) {
		return false
	}
	s.pause.parked[c] = struct{}{}
	return true
}

// forgetParked drops a closed client from the clients to resume.
func (s *Server) forgetParked(c *client) {
	s.pause.mu.Lock()
	delete(s.pause.parked, c)
	s.pause.mu.Unlock()
}

// setPause changes the pause and wakes everything waiting on it.
func (s *Server) setPause(mode pauseMode, end time.Time) {
	s.pause.mu.Lock()
	s.pause.mode, s.pause.end = mode, end
	s.pause.active.Store(mode != pauseOff)
	close(s.pause.changed)
	s.pause.changed = make(chan struct{})
	parked := make([]*client, 0, len(s.pause.parked))
	for c := range s.pause.parked {
		parked = append(parked, c)
	}
	clear(s.pause.parked)
	s.pause.mu.Unlock()
	select {
	case s.pause.kick <- struct{}{}:
	default:
	}
	for _, c := range parked {
		l := c.lp
		l.post(func() { l.resume(c) })
	}
}

// pauseTimer ends pauses when their time is up. It runs from the first
// Serve until the server closes.
func (s *Server) pauseTimer() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		s.pause.mu.Lock()
		var fire <-chan time.Time
		if s.pause.mode != pauseOff {
			t.Reset(time.Until(s.pause.end))
			fire = t.C
		}
		s.pause.mu.Unlock()
		select {
		case <-s.done:
			return
		case <-s.pause.kick:
		case <-fire:
			s.pause.mu.Lock()
			over := s.pause.mode != pauseOff && !time.Now().Before(s.pause.end)
			s.pause.mu.Unlock()
			if over {
				s.setPause(pauseOff, time.Time{})
			}
		}
	}
}

func (s *Server) cmdClientPause(c *client, args [][]byte) {
	if len(args) > 4 {
		c.w.Error("ERR unknown subcommand or wrong number of arguments for '" + truncate(sanitize(string(args[1])), 128) + "'. Try CLIENT HELP.")
		return
	}
	mode := pauseAll
	if len(args) == 4 {
		switch strings.ToLower(string(args[3])) {
		case "write":
			mode = pauseWrite
		case "all":
		default:
			c.w.Error("ERR CLIENT PAUSE mode must be WRITE or ALL")
			return
		}
	}
	ms, ok := parseInt(args[2])
	if !ok {
		c.w.Error("ERR timeout is not an integer or out of range")
		return
	}
	if ms < 0 {
		c.w.Error("ERR timeout is negative")
		return
	}
	now := time.Now()
	if ms > math.MaxInt64-now.UnixMilli() {
		c.w.Error("ERR timeout is out of range")
		return
	}
	end := now.Add(time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond)
	// As in Redis, a pause in effect is only ever extended, and a WRITE
	// pause becomes ALL, never the reverse.
	s.pause.mu.Lock()
	if s.pause.mode != pauseOff && now.Before(s.pause.end) {
		mode = max(mode, s.pause.mode)
		if s.pause.end.After(end) {
			end = s.pause.end
		}
	}
	s.pause.mu.Unlock()
	if ms > 0 {
		s.setPause(mode, end)
	}
	c.w.OK()
}

func (s *Server) cmdClientUnpause(c *client, _ [][]byte) {
	s.setPause(pauseOff, time.Time{})
	c.w.OK()
}
