package server

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sessiond/sessiond/server/internal/resp"
)

// pubsub is the registry of channel and pattern subscriptions.
//
// Lock order: pubsub.mu, then a subscriber's outMu. Nothing that holds
// pubsub.mu takes a store lock, so publishing under a shard lock (keyspace
// events) cannot deadlock.
type pubsub struct {
	mu       sync.RWMutex
	channels map[string]map[*client]struct{} // guarded by mu
	patterns map[string]map[*client]struct{} // guarded by mu
	npat     atomic.Int64                    // len(patterns), for the fast path
}

// isPubSub reports whether c is subscribed to anything (its output is
// then limited as a pub/sub client's, and it is exempt from the idle
// timeout, as in Redis). Safe from any goroutine.
func (c *client) isPubSub() bool {
	return c.subs.nsub.Load()+c.subs.npsub.Load() > 0
}

// publish sends msg on channel to its subscribers and the matching
// patterns' subscribers, and returns how many received it.
func (s *Server) publish(channel, msg []byte) int {
	ps := &s.ps
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	n := 0
	if subs := ps.channels[string(channel)]; len(subs) > 0 {
		m := pubMessage{parts: [][]byte{[]byte("message"), channel, msg}}
		for c := range subs {
			c.push(m.encoded(c))
		}
		n += len(subs)
	}
	if ps.npat.Load() > 0 {
		for pat, subs := range ps.patterns {
			if !globMatch([]byte(pat), channel, false) {
				continue
			}
			m := pubMessage{parts: [][]byte{[]byte("pmessage"), []byte(pat), channel, msg}}
			for c := range subs {
				c.push(m.encoded(c))
			}
			n += len(subs)
		}
	}
	return n
}

// pubMessage is a message and its encodings, made once per protocol
// version that a subscriber uses: an array in RESP2, a push in RESP3.
type pubMessage struct {
	parts [][]byte
	enc   [2][]byte // RESP2, RESP3
}

func (m *pubMessage) encoded(c *client) []byte {
	i := 0
	if c.protoSnapshot() == 3 {
		i = 1
	}
	if m.enc[i] == nil {
		var w resp.Writer
		if i == 1 {
			w.SetProto(3)
			w.Push(len(m.parts))
		} else {
			w.Array(len(m.parts))
		}
		for _, p := range m.parts {
			w.Bulk(p)
		}
		m.enc[i] = w.Bytes()
	}
	return m.enc[i]
}

// subState is a client's subscriptions, owned by its goroutine; the
// counts are also read by CLIENT LIST.
type subState struct {
	channels map[string]struct{}
	patterns map[string]struct{}
	nsub     atomic.Int32
	npsub    atomic.Int32
}

func (c *client) subscriptions() int {
	return len(c.subs.channels) + len(c.subs.patterns)
}

// countSubsLocked publishes the subscription counts that other goroutines
// read (pubsub.mu held).
func (s *Server) countSubsLocked(c *client) {
	s.ps.npat.Store(int64(len(s.ps.patterns)))
	c.subs.nsub.Store(int32(len(c.subs.channels)))
	c.subs.npsub.Store(int32(len(c.subs.patterns)))
}

// subscribe registers c on a channel (pattern false) or a pattern, and
// writes the confirmation so that it precedes every message that follows.
func (s *Server) subscribe(c *client, name []byte, pattern bool) {
	c.startPush()
	ps := &s.ps
	ps.mu.Lock()
	mine, reg, kind := &c.subs.channels, &ps.channels, "subscribe"
	if pattern {
		mine, reg, kind = &c.subs.patterns, &ps.patterns, "psubscribe"
	}
	if *mine == nil {
		*mine = make(map[string]struct{})
	}
	key := string(name)
	if _, ok := (*mine)[key]; !ok {
		(*mine)[key] = struct{}{}
		if *reg == nil {
			*reg = make(map[string]map[*client]struct{})
		}
		set := (*reg)[key]
		if set == nil {
			set = make(map[*client]struct{})
			(*reg)[key] = set
		}
		set[c] = struct{}{}
		s.countSubsLocked(c)
	}
	c.pushHeader(3)
	c.w.BulkString(kind)
	c.w.Bulk(name)
	c.w.Int(int64(c.subscriptions()))
	c.moveToOutbox()
	ps.mu.Unlock()
}

// unsubscribe removes c from a channel or pattern and writes the
// confirmation. name nil is the reply for "no subscription at all".
func (s *Server) unsubscribe(c *client, name []byte, pattern bool) {
	ps := &s.ps
	kind := "unsubscribe"
	if pattern {
		kind = "punsubscribe"
	}
	if name != nil {
		ps.mu.Lock()
		s.dropSubLocked(c, string(name), pattern)
		ps.mu.Unlock()
	}
	c.pushHeader(3)
	c.w.BulkString(kind)
	if name == nil {
		c.w.Null()
	} else {
		c.w.Bulk(name)
	}
	c.w.Int(int64(c.subscriptions()))
}

func (s *Server) dropSubLocked(c *client, key string, pattern bool) {
	ps := &s.ps
	mine, reg := c.subs.channels, ps.channels
	if pattern {
		mine, reg = c.subs.patterns, ps.patterns
	}
	if _, ok := mine[key]; !ok {
		return
	}
	delete(mine, key)
	if set := reg[key]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(reg, key)
		}
	}
	s.countSubsLocked(c)
}

// unsubscribeAll drops every subscription of c; with reply set it writes
// the confirmations of (P)UNSUBSCRIBE without arguments.
func (s *Server) unsubscribeAll(c *client, pattern, reply bool) {
	mine := c.subs.channels
	if pattern {
		mine = c.subs.patterns
	}
	names := make([]string, 0, len(mine))
	for k := range mine {
		names = append(names, k)
	}
	sort.Strings(names)
	if reply && len(names) == 0 {
		s.unsubscribe(c, nil, pattern)
		return
	}
	for _, n := range names {
		if reply {
			s.unsubscribe(c, []byte(n), pattern)
		} else {
			s.ps.mu.Lock()
			s.dropSubLocked(c, n, pattern)
			s.ps.mu.Unlock()
		}
	}
}

// leavePubSub drops all of c's subscriptions (RESET, disconnect).
func (s *Server) leavePubSub(c *client) {
	if c.subscriptions() == 0 {
		return
	}
	s.unsubscribeAll(c, false, false)
	s.unsubscribeAll(c, true, false)
}

// pushHeader starts a pub/sub reply of n elements: a push in RESP3, an
// array in RESP2.
func (c *client) pushHeader(n int) {
	if c.w.Proto() == 3 {
		c.w.Push(n)
	} else {
		c.w.Array(n)
	}
}

func (s *Server) pubsubCommands() []*command {
	ps := func(name string, arity int, flags cmdFlags, since, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags | flagNoScript | flagLoading | flagStale,
			group: "pubsub", since: since, summary: summary, run: run}
	}
	pubsubCmd := &command{name: "pubsub", arity: -2, group: "pubsub", since: "2.8.0",
		summary: "A container for Pub/Sub commands.",
		subs: map[string]*command{
			"channels":      {name: "channels", arity: -2, flags: flagLoading | flagStale, run: s.cmdPubsubChannels, summary: "Returns the active channels."},
			"numsub":        {name: "numsub", arity: -2, flags: flagLoading | flagStale, run: s.cmdPubsubNumsub, summary: "Returns a count of subscribers to channels."},
			"numpat":        {name: "numpat", arity: 2, flags: flagLoading | flagStale, run: s.cmdPubsubNumpat, summary: "Returns a count of unique pattern subscriptions."},
			"shardchannels": {name: "shardchannels", arity: -2, flags: flagLoading | flagStale, run: s.cmdPubsubShardChannels, since: "7.0.0", summary: "Returns the active shard channels."},
			"shardnumsub":   {name: "shardnumsub", arity: -2, flags: flagLoading | flagStale, run: s.cmdPubsubNumsubShard, since: "7.0.0", summary: "Returns the count of subscribers of shard channels."},
			"help":          {name: "help", arity: 2, flags: flagLoading | flagStale, run: s.cmdPubsubHelp, summary: "Returns helpful text about the different subcommands."},
		}}
	return []*command{
		ps("subscribe", -2, 0, "2.0.0", "Listens for messages published to channels.", s.subscribeCmd(false)),
		ps("psubscribe", -2, 0, "2.0.0", "Listens for messages published to channels that match one or more patterns.", s.subscribeCmd(true)),
		ps("unsubscribe", -1, 0, "2.0.0", "Stops listening to messages posted to channels.", s.unsubscribeCmd(false)),
		ps("punsubscribe", -1, 0, "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", s.unsubscribeCmd(true)),
		{name: "publish", arity: 3, flags: flagLoading | flagStale | flagFast, group: "pubsub", since: "2.0.0",
			summary: "Posts a message to a channel.", run: s.cmdPublish},
		pubsubCmd,
	}
}

// subscribeCmd is SUBSCRIBE, or PSUBSCRIBE with pattern set.
func (s *Server) subscribeCmd(pattern bool) handler {
	return func(c *client, args [][]byte) {
		for _, name := range args[1:] {
			s.subscribe(c, name, pattern)
		}
	}
}

// unsubscribeCmd is UNSUBSCRIBE, or PUNSUBSCRIBE with pattern set; without
// arguments it drops every subscription of the kind.
func (s *Server) unsubscribeCmd(pattern bool) handler {
	return func(c *client, args [][]byte) {
		if len(args) == 1 {
			s.unsubscribeAll(c, pattern, true)
			return
		}
		for _, name := range args[1:] {
			s.unsubscribe(c, name, pattern)
		}
	}
}

func (s *Server) cmdPublish(c *client, args [][]byte) {
	c.w.Int(int64(s.publish(args[1], args[2])))
}

func (s *Server) cmdPubsubChannels(c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.Error("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try PUBSUB HELP.")
		return
	}
	s.ps.mu.RLock()
	var out []string
	for ch := range s.ps.channels {
		if len(args) == 3 && !globMatch(args[2], []byte(ch), false) {
			continue
		}
		out = append(out, ch)
	}
	s.ps.mu.RUnlock()
	sort.Strings(out)
	c.w.Array(len(out))
	for _, ch := range out {
		c.w.BulkString(ch)
	}
}

func (s *Server) cmdPubsubNumsub(c *client, args [][]byte) {
	c.w.Array(2 * (len(args) - 2)) // a flat array in RESP3 too, as Redis
	s.ps.mu.RLock()
	defer s.ps.mu.RUnlock()
	for _, ch := range args[2:] {
		c.w.Bulk(ch)
		c.w.Int(int64(len(s.ps.channels[string(ch)])))
	}
}

func (s *Server) cmdPubsubNumpat(c *client, _ [][]byte) {
	c.w.Int(s.ps.npat.Load())
}

func (s *Server) cmdPubsubShardChannels(c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.Error("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try PUBSUB HELP.")
		return
	}
	c.w.Array(0)
}

func (s *Server) cmdPubsubNumsubShard(c *client, args [][]byte) {
	c.w.Array(2 * (len(args) - 2))
	for _, ch := range args[2:] {
		c.w.Bulk(ch)
		c.w.Int(0)
	}
}

func (s *Server) cmdPubsubHelp(c *client, _ [][]byte) {
	c.helpReply([]string{
		"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"CHANNELS [<pattern>]",
		"    Return the currently active channels matching a <pattern> (default: '*').",
		"NUMPAT",
		"    Return number of subscriptions to patterns.",
		"NUMSUB [<channel> ...]",
		"    Return the number of subscribers for the specified channels, excluding",
		"    pattern subscriptions(default: no channels).",
		"SHARDCHANNELS [<pattern>]",
		"    Return the currently active shard level channels matching a <pattern> (default: '*').",
		"SHARDNUMSUB [<shardchannel> ...]",
		"    Return the number of subscribers for the specified shard level channel(s)",
		"HELP",
		"    Prints this help.",
	})
}

// pubsubCounts is what INFO reports.
func (s *Server) pubsubCounts() (channels, patterns int) {
	s.ps.mu.RLock()
	defer s.ps.mu.RUnlock()
	return len(s.ps.channels), len(s.ps.patterns)
}

// subscribedOK lists what a RESP2 client in subscribed mode may run.
func subscribedOK(name string) bool {
	switch name {
	case "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
		"ping", "quit", "reset":
		return true
	}
	return false
}

// keyspaceChannel builds __keyspace@<db>__:<key> or __keyevent@<db>__:<event>.
func keyspaceChannel(dst []byte, prefix string, db int, suffix []byte) []byte {
	dst = append(dst, prefix...)
	dst = strconv.AppendInt(dst, int64(db), 10)
	dst = append(dst, "__:"...)
	return append(dst, suffix...)
}
