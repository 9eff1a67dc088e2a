package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/ttl"
)

// hashHarness drives the command layer directly (dispatch, reply bytes),
// so that it runs inside a synctest bubble where the store's Run sleeps
// in fake time. It records what the store reports to OnObjectExpire.
type hashHarness struct {
	t     *testing.T
	srv   *Server
	store *ttl.Store
	c     *client

	mu      sync.Mutex
	expired []string // "db key removed"
}

func newHashHarness(t *testing.T, run bool) *hashHarness {
	h := &hashHarness{t: t}
	store, err := ttl.New(ttl.Config{Shards: 4, OnObjectExpire: func(db int, key []byte, removed bool) {
		h.mu.Lock()
		h.expired = append(h.expired, fmt.Sprintf("%d %s %v", db, key, removed))
		h.mu.Unlock()
		h.srv.ObjectExpired(db, key, removed)
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	srv, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, store)
	require.NoError(t, err)
	h.srv, h.store = srv, store
	p1, p2 := net.Pipe()
	t.Cleanup(func() { p1.Close(); p2.Close() })
	h.c = srv.newClient(p1)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = store.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	return h
}

// do runs one command and returns its reply.
func (h *hashHarness) do(args ...string) string {
	h.c.w.Reset()
	argv := make([][]byte, len(args))
	for i, a := range args {
		argv[i] = []byte(a)
	}
	h.srv.dispatch(h.c, argv)
	return string(h.c.w.Bytes())
}

func (h *hashHarness) takeExpired() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.expired
	h.expired = nil
	return out
}

// ints is the RESP array of integers.
func ints(vals ...int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(vals))
	for _, v := range vals {
		fmt.Fprintf(&b, ":%d\r\n", v)
	}
	return b.String()
}

func bulks(vals ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(vals))
	for _, v := range vals {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(v), v)
	}
	return b.String()
}

const wrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"

// TestHashFieldTTLCommands checks HEXPIRE, HPEXPIRE, HEXPIREAT,
// HPEXPIREAT, HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME and HPERSIST byte
// for byte against Redis 7.4's documented replies
// (https://redis.io/docs/latest/commands/hexpire/ and its siblings) and
// its t_hash.c for the error texts and their order. The reference
// redis-server here is 7.0, which lacks these commands, so the replies are
// written out. In the bubble the clock stands still: TTLs are exact.
func TestHashFieldTTLCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHashHarness(t, true)
		now := time.Now().UnixMilli()
		sec := now / 1000

		// The docs' example. A missing key answers -2 per field (Redis
		// 7.4.0 replaced the empty reply with that, redis/redis#13343).
		require.Equal(t, ints(-2, -2), h.do("HEXPIRE", "no-key", "20", "NX", "FIELDS", "2", "field1", "field2"))
		require.Equal(t, ":2\r\n", h.do("HSET", "mykey", "field1", "hello", "field2", "world"))
		require.Equal(t, ints(1, 1, -2), h.do("HEXPIRE", "mykey", "10", "FIELDS", "3", "field1", "field2", "field3"))
		require.Equal(t, ints(10, 10, -2), h.do("HTTL", "mykey", "FIELDS", "3", "field1", "field2", "field3"))
		require.Equal(t, ints(10000), h.do("HPTTL", "mykey", "FIELDS", "1", "field1"))
		require.Equal(t, ints(sec+10), h.do("HEXPIRETIME", "mykey", "FIELDS", "1", "field1"))
		require.Equal(t, ints(now+10000), h.do("HPEXPIRETIME", "mykey", "FIELDS", "1", "field1"))
		require.Equal(t, ints(-2, -2), h.do("HTTL", "no-key", "FIELDS", "2", "a", "b"))
		require.Equal(t, ints(-2), h.do("HPEXPIRETIME", "no-key", "FIELDS", "1", "a"))

		// Rounding: HTTL and HEXPIRETIME round up to the second.
		require.Equal(t, ints(1), h.do("HPEXPIRE", "mykey", "1", "FIELDS", "1", "field1"))
		require.Equal(t, ints(1), h.do("HTTL", "mykey", "FIELDS", "1", "field1"))
		require.Equal(t, ints((now+1+999)/1000), h.do("HEXPIRETIME", "mykey", "FIELDS", "1", "field1"))

		// NX, XX, GT, LT; a field without TTL counts as an infinite TTL.
		require.Equal(t, ":3\r\n", h.do("HSET", "c", "a", "1", "b", "2", "n", "3"))
		require.Equal(t, ints(1), h.do("HPEXPIRE", "c", "1000", "NX", "FIELDS", "1", "a"))
		require.Equal(t, ints(0, 1), h.do("HPEXPIRE", "c", "1000", "NX", "FIELDS", "2", "a", "b"))
		require.Equal(t, ints(1, 0), h.do("HPEXPIRE", "c", "2000", "XX", "FIELDS", "2", "a", "n"))
		require.Equal(t, ints(0, 1, 0), h.do("HPEXPIRE", "c", "1500", "gt", "FIELDS", "3", "a", "b", "n"))
		require.Equal(t, ints(1, 1, 1), h.do("HPEXPIRE", "c", "1200", "LT", "FIELDS", "3", "a", "b", "n"))
		require.Equal(t, ints(0), h.do("HPEXPIRE", "c", "1200", "LT", "FIELDS", "1", "a"))
		require.Equal(t, ints(1200, 1200, 1200), h.do("HPTTL", "c", "FIELDS", "3", "a", "b", "n"))
		require.Equal(t, ints(0), h.do("HPEXPIRE", "c", "0", "GT", "FIELDS", "1", "n"), "a condition not met wins over deleting")

		// A time not in the future deletes the field (2); the last one takes
		// the key.
		require.Equal(t, ":2\r\n", h.do("HSET", "d", "f1", "v", "f2", "v"))
		require.Equal(t, ints(2, -2), h.do("HEXPIRE", "d", "0", "FIELDS", "2", "f1", "nope"))
		require.Equal(t, bulks("f2"), h.do("HKEYS", "d"))
		require.Equal(t, ints(2), h.do("HPEXPIREAT", "d", strconv.FormatInt(now, 10), "FIELDS", "1", "f2"))
		require.Equal(t, ":0\r\n", h.do("EXISTS", "d"))
		require.Equal(t, ":1\r\n", h.do("HSET", "d", "f", "v"))
		require.Equal(t, ints(2), h.do("HEXPIREAT", "d", "1", "FIELDS", "1", "f"))
		require.Equal(t, "+none\r\n", h.do("TYPE", "d"))

		// HPERSIST: 1 removed, -1 no TTL, -2 no field; missing key -2s.
		require.Equal(t, ints(1, -1, -2), h.do("HPERSIST", "c", "FIELDS", "3", "a", "a", "zz"))
		require.Equal(t, ints(-1, 1200), h.do("HPTTL", "c", "FIELDS", "2", "a", "b"))
		require.Equal(t, ints(-2), h.do("HPERSIST", "no-key", "FIELDS", "1", "a"))

		// Which writes clear a field's TTL (Redis 7.4): HSET and HMSET do,
		// HINCRBY, HINCRBYFLOAT and a HSETNX that does nothing do not.
		require.Equal(t, ":4\r\n", h.do("HSET", "w", "s", "1", "m", "1", "i", "1", "x", "1"))
		require.Equal(t, ints(1, 1, 1, 1), h.do("HEXPIRE", "w", "100", "FIELDS", "4", "s", "m", "i", "x"))
		require.Equal(t, ":0\r\n", h.do("HSET", "w", "s", "2"))
		require.Equal(t, "+OK\r\n", h.do("HMSET", "w", "m", "2"))
		require.Equal(t, ":2\r\n", h.do("HINCRBY", "w", "i", "1"))
		require.Equal(t, "$3\r\n1.5\r\n", h.do("HINCRBYFLOAT", "w", "x", "0.5"))
		require.Equal(t, ":0\r\n", h.do("HSETNX", "w", "i", "9"))
		require.Equal(t, ints(-1, -1, 100, 100), h.do("HTTL", "w", "FIELDS", "4", "s", "m", "i", "x"))

		// RENAME and COPY carry field TTLs; a copy is independent.
		require.Equal(t, "+OK\r\n", h.do("RENAME", "w", "w2"))
		require.Equal(t, ints(100), h.do("HTTL", "w2", "FIELDS", "1", "i"))
		require.Equal(t, ":1\r\n", h.do("COPY", "w2", "w3"))
		require.Equal(t, ints(1), h.do("HPERSIST", "w3", "FIELDS", "1", "i"))
		require.Equal(t, ints(100), h.do("HTTL", "w2", "FIELDS", "1", "i"))
		require.Equal(t, ints(-1), h.do("HTTL", "w3", "FIELDS", "1", "i"))

		// Errors, in Redis 7.4's order: the type, the time, the condition
		// and FIELDS, the count.
		require.Equal(t, "+OK\r\n", h.do("SET", "str", "v"))
		require.Equal(t, wrongType, h.do("HEXPIRE", "str", "x", "FIELDS", "1", "f"))
		require.Equal(t, wrongType, h.do("HTTL", "str", "FIELDS", "0", "f"))
		require.Equal(t, wrongType, h.do("HPERSIST", "str", "x", "1", "f"))
		for _, tc := range []struct{ args, want string }{
			{"HEXPIRE c x FIELDS 1 a", "-ERR value is not an integer or out of range\r\n"},
			{"HEXPIRE c 1.5 FIELDS 1 a", "-ERR value is not an integer or out of range\r\n"},
			{"HEXPIRE c -1 FIELDS 1 a", "-ERR invalid expire time, must be >= 0\r\n"},
			{"HPEXPIREAT c -9223372036854775808 FIELDS 1 a", "-ERR invalid expire time, must be >= 0\r\n"},
			{"HEXPIRE c 70368744178 FIELDS 1 a", "-ERR invalid expire time in 'hexpire' command\r\n"},
			{"HPEXPIRE c 70368744177663 FIELDS 1 a", "-ERR invalid expire time in 'hpexpire' command\r\n"},
			{"HEXPIREAT c 70368744178 FIELDS 1 a", "-ERR invalid expire time in 'hexpireat' command\r\n"},
			{"HPEXPIREAT c 70368744177664 FIELDS 1 a", "-ERR invalid expire time in 'hpexpireat' command\r\n"},
			{"HEXPIRE c 10 NX XX FIELDS 1 a", "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"},
			{"HEXPIRE c 10 FOO FIELDS 1 a", "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"},
			{"HEXPIRE c 10 NX FIELD 1 a", "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"},
			{"HEXPIRE c 10 FIELDS 0 a", "-ERR Parameter `numFields` should be greater than 0\r\n"},
			{"HEXPIRE c 10 FIELDS x a", "-ERR Parameter `numFields` should be greater than 0\r\n"},
			{"HEXPIRE c 10 FIELDS 2 a", "-ERR The `numfields` parameter must match the number of arguments\r\n"},
			{"HEXPIRE c 10 FIELDS 1 a b", "-ERR The `numfields` parameter must match the number of arguments\r\n"},
			{"HEXPIRE no-key 10 FIELDS 2 a", "-ERR The `numfields` parameter must match the number of arguments\r\n"},
			{"HTTL c FIELD 1 a", "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"},
			{"HTTL c FIELDS 0 a", "-ERR Number of fields must be a positive integer\r\n"},
			{"HPTTL c FIELDS -1 a", "-ERR Number of fields must be a positive integer\r\n"},
			{"HEXPIRETIME c FIELDS 3 a", "-ERR The `numfields` parameter must match the number of arguments\r\n"},
			{"HPERSIST c FIELDS x a", "-ERR Number of fields must be a positive integer\r\n"},
			{"HPERSIST c 1 a b", "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"},
			{"HPERSIST c FIELDS 2 a", "-ERR The `numfields` parameter must match the number of arguments\r\n"},
			{"HEXPIRE c 10 FIELDS 1", "-ERR wrong number of arguments for 'hexpire' command\r\n"},
			{"HPEXPIREAT c 10 FIELDS", "-ERR wrong number of arguments for 'hpexpireat' command\r\n"},
			{"HTTL c FIELDS 1", "-ERR wrong number of arguments for 'httl' command\r\n"},
			{"HPERSIST c FIELDS", "-ERR wrong number of arguments for 'hpersist' command\r\n"},
		} {
			assert.Equal(t, tc.want, h.do(strings.Fields(tc.args)...), tc.args)
		}
		// The largest deadline accepted: 2^46-1 ms.
		require.Equal(t, ints(1), h.do("HPEXPIREAT", "c", "70368744177663", "FIELDS", "1", "a"))
		require.Equal(t, ints(70368744177663), h.do("HPEXPIRETIME", "c", "FIELDS", "1", "a"))

		// RESP3 replies the same arrays.
		require.Equal(t, "+OK\r\n", h.do("SELECT", "1"))
		h.c.setProto(3)
		require.Equal(t, ints(-2), h.do("HTTL", "mykey", "FIELDS", "1", "a"))
	})
}

// TestHashFieldExpiresOnTime: a field is visible through its deadline's
// millisecond and gone 1 ms later from every read; the store's expiry
// goroutine removes it then and reports it (hexpired), and the key with
// the last field (del). Without Run, readers remove it themselves.
func TestHashFieldExpiresOnTime(t *testing.T) {
	for _, run := range []bool{true, false} {
		t.Run(fmt.Sprintf("run=%v", run), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHashHarness(t, run)
				require.Equal(t, ":3\r\n", h.do("HSET", "s", "token", "t", "data", "d", "uid", "42"))
				require.Equal(t, ints(1), h.do("HPEXPIRE", "s", "100", "FIELDS", "1", "token"))
				require.Equal(t, ints(1), h.do("HPEXPIRE", "s", "300", "FIELDS", "1", "data"))
				require.Equal(t, ints(1), h.do("HPEXPIRE", "s", "300", "FIELDS", "1", "uid"))

				time.Sleep(100 * time.Millisecond)
				synctest.Wait()
				require.Equal(t, "$1\r\nt\r\n", h.do("HGET", "s", "token"), "alive at its deadline")
				require.Equal(t, ints(0), h.do("HPTTL", "s", "FIELDS", "1", "token"))
				require.Empty(t, h.takeExpired())

				time.Sleep(time.Millisecond)
				synctest.Wait()
				if run {
					require.Equal(t, []string{"0 s false"}, h.takeExpired(), "the expiry goroutine removed it on time")
				}
				require.Equal(t, "$-1\r\n", h.do("HGET", "s", "token"))
				require.Equal(t, ":2\r\n", h.do("HLEN", "s"))
				require.Equal(t, "*4\r\n$4\r\ndata\r\n$1\r\nd\r\n$3\r\nuid\r\n$2\r\n42\r\n", h.do("HGETALL", "s"))
				require.Equal(t, ":0\r\n", h.do("HEXISTS", "s", "token"))
				require.Equal(t, ints(-2, 199), h.do("HPTTL", "s", "FIELDS", "2", "token", "data"))
				require.Equal(t, "*2\r\n$1\r\n0\r\n*4\r\n$4\r\ndata\r\n$1\r\nd\r\n$3\r\nuid\r\n$2\r\n42\r\n", h.do("HSCAN", "s", "0"))
				h.store.Drain() // without Run, the reader's removal is reported here
				if !run {
					require.Equal(t, []string{"0 s false"}, h.takeExpired())
				}

				time.Sleep(200 * time.Millisecond)
				synctest.Wait()
				if !run {
					require.Equal(t, ":0\r\n", h.do("EXISTS", "s"), "a reader meets the empty hash")
					h.store.Drain()
				}
				require.Equal(t, []string{"0 s true"}, h.takeExpired())
				require.Equal(t, ":0\r\n", h.do("DBSIZE"))
				require.Equal(t, "+none\r\n", h.do("TYPE", "s"))
				require.EqualValues(t, 3, h.store.Stats().ExpiredParts)
				require.Contains(t, h.do("INFO", "stats"), "expired_subkeys:3\r\n")
			})
		})
	}
}

// TestHashFieldExpiryAfterRenameAndDelete: the schedule follows the key.
func TestHashFieldExpiryAfterRenameAndDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHashHarness(t, true)
		for _, k := range []string{"a", "b", "c"} {
			require.Equal(t, ":2\r\n", h.do("HSET", k, "f", "v", "g", "w"))
			require.Equal(t, ints(1), h.do("HPEXPIRE", k, "50", "FIELDS", "1", "f"))
		}
		require.Equal(t, "+OK\r\n", h.do("RENAME", "a", "a2"))
		require.Equal(t, ":1\r\n", h.do("DEL", "b"))
		require.Equal(t, ":1\r\n", h.do("COPY", "c", "c2"))
		require.Equal(t, "+OK\r\n", h.do("HMSET", "c", "f", "fresh")) // clears c's field TTL, not c2's
		time.Sleep(51 * time.Millisecond)
		synctest.Wait()
		got := h.takeExpired()
		slices.Sort(got)
		require.Equal(t, []string{"0 a2 false", "0 c2 false"}, got)
		require.Equal(t, "$5\r\nfresh\r\n", h.do("HGET", "c", "f"))
		require.Equal(t, bulks("g"), h.do("HKEYS", "c2"))
		// HPERSIST cancels; a second HPEXPIRE moves the time.
		require.Equal(t, ints(1), h.do("HPEXPIRE", "c", "10", "FIELDS", "1", "f"))
		require.Equal(t, ints(1), h.do("HPERSIST", "c", "FIELDS", "1", "f"))
		require.Equal(t, ints(1), h.do("HPEXPIRE", "c", "10", "FIELDS", "1", "g"))
		require.Equal(t, ints(1), h.do("HPEXPIRE", "c", "30", "FIELDS", "1", "g"))
		time.Sleep(11 * time.Millisecond)
		synctest.Wait()
		require.Empty(t, h.takeExpired())
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, []string{"0 c false"}, h.takeExpired())
		require.Equal(t, bulks("f", "fresh"), h.do("HGETALL", "c"))
	})
}

// hashModel is a plain map model of a hash.
type hashModel map[string]struct {
	v  string
	dl int64
}

// check compares h with m, through every accessor.
func (m hashModel) check(t *testing.T, h *hashObj) {
	t.Helper()
	require.Equal(t, len(m), h.len())
	var minDL int64
	for f, e := range m {
		v, ok := h.get([]byte(f))
		require.True(t, ok, f)
		require.Equal(t, e.v, string(v), f)
		dl, ok := h.deadline([]byte(f))
		require.True(t, ok)
		require.Equal(t, e.dl, dl, f)
		if e.dl != 0 && (minDL == 0 || e.dl < minDL) {
			minDL = e.dl
		}
	}
	require.Equal(t, minDL, h.NextExpiry())
	seen := map[string]bool{}
	h.each(func(f, v []byte, dl int64) bool {
		require.False(t, seen[string(f)])
		seen[string(f)] = true
		require.Equal(t, m[string(f)].v, string(v))
		require.Equal(t, m[string(f)].dl, dl)
		return true
	})
	require.Len(t, seen, len(m))
	_, ok := h.get([]byte("never-set"))
	require.False(t, ok)
	require.Greater(t, h.MemoryUsage(), 0)
}

// TestHashObjModel runs random operations on hashObj and a map, across
// the packed and dense forms, with clones and codec round trips.
func TestHashObjModel(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		h := newHash(0)
		m := hashModel{}
		now := int64(1_000_000)
		nfields := 8 + r.IntN(80) // some stay packed, most go dense
		for step := range 3000 {
			f := fmt.Sprintf("f%d", r.IntN(nfields))
			switch op := r.IntN(100); {
			case op < 40:
				v := strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(40))
				if r.IntN(50) == 0 {
					v = strings.Repeat("x", 3000)
				}
				keep := r.IntN(3) == 0
				e, existed := m[f]
				require.Equal(t, !existed, h.set([]byte(f), []byte(v), keep))
				if !keep {
					e.dl = 0
				}
				e.v = v
				m[f] = e
			case op < 55:
				_, existed := m[f]
				require.Equal(t, existed, h.del([]byte(f)))
				delete(m, f)
			case op < 80:
				dl := int64(0)
				if r.IntN(4) > 0 {
					dl = now + int64(r.IntN(500))
				}
				e, existed := m[f]
				require.Equal(t, existed, h.setDeadline([]byte(f), dl))
				if existed {
					e.dl = dl
					m[f] = e
				}
			case op < 90:
				now += int64(r.IntN(100))
				limit := 1 + r.IntN(8)
				var want int
				for _, name := range slices.Sorted(maps.Keys(m)) {
					if e := m[name]; e.dl != 0 && e.dl < now {
						want++
					}
				}
				removed, left := h.ExpireParts(now, limit)
				require.Equal(t, min(want, limit), removed)
				require.Equal(t, h.len(), left)
				// Which ones went is up to the form; follow the hash.
				for name, e := range m {
					if e.dl != 0 && e.dl < now {
						if _, ok := h.get([]byte(name)); !ok {
							delete(m, name)
						}
					}
				}
			case op < 95:
				c := h.Clone().(*hashObj)
				h.set([]byte("clone-only"), []byte("x"), false)
				require.True(t, h.del([]byte("clone-only")))
				m.check(t, c)
				c.set([]byte(f), []byte("changed in the clone"), false)
			default:
				if h.len() == 0 {
					continue
				}
				b := h.appendBinary(nil)
				d, err := decodeHash(b, 0)
				require.NoError(t, err)
				m.check(t, d)
				require.Equal(t, b, d.appendBinary(nil), "re-encoding is stable")
			}
			if step%50 == 0 || h.len() < 3 {
				m.check(t, h)
			}
		}
		m.check(t, h)
	}
}

// TestHashScanGuarantee: a dense hash iterated with HSCAN's cursor while
// fields are added and deleted returns every field present throughout.
func TestHashScanGuarantee(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		h := newHash(0)
		for i := range 100 {
			h.set(fmt.Appendf(nil, "f%d", i), []byte("v"), false)
		}
		require.NotNil(t, h.d)
		stable := map[string]bool{}
		for i := range 100 {
			if i%3 == 0 {
				stable[fmt.Sprintf("f%d", i)] = true
			}
		}
		seen := map[string]bool{}
		cursor, calls := uint64(0), 0
		for {
			cursor = h.scan(cursor, 1+r.IntN(10), func(f, _ []byte) { seen[string(f)] = true })
			calls++
			if cursor == 0 {
				break
			}
			for range r.IntN(6) { // churn among the other fields
				i := r.IntN(100)
				if i%3 == 0 {
					continue
				}
				f := fmt.Appendf(nil, "f%d", i)
				if r.IntN(2) == 0 {
					h.del(f)
				} else {
					h.set(f, []byte("again"), false)
				}
			}
			h.set(fmt.Appendf(nil, "new%d-%d", round, calls), []byte("v"), false)
		}
		for f := range stable {
			require.True(t, seen[f], "round %d: %s missed", round, f)
		}
	}
}

// TestHashMemoryUsage: the estimate follows the bytes held.
func TestHashMemoryUsage(t *testing.T) {
	h := newHash(0)
	data := strings.Repeat("d", 2000)
	for _, kv := range [][2]string{{"creationTime", "1700000000000"}, {"lastAccessedTime", "1700000000000"},
		{"maxInactiveInterval", "1800"}, {"sessionAttr:user", "42"}, {"sessionAttr:data", data}} {
		h.set([]byte(kv[0]), []byte(kv[1]), false)
	}
	raw := 0
	h.each(func(f, v []byte, _ int64) bool { raw += len(f) + len(v); return true })
	require.Nil(t, h.d, "a session hash stays packed")
	assert.GreaterOrEqual(t, h.MemoryUsage(), raw)
	assert.Less(t, h.MemoryUsage(), raw*2+128, "packed: a few bytes a field plus slack")

	big := newHash(0)
	for i := range 1000 {
		big.set(fmt.Appendf(nil, "field:%04d", i), []byte("value"), false)
	}
	assert.Greater(t, big.MemoryUsage(), 1000*(10+5+48))
	assert.Less(t, big.MemoryUsage(), 1000*(10+5+250))
}

func FuzzHashCodec(f *testing.F) {
	h := newHash(0)
	f.Add(h.appendBinary(nil))
	h.set([]byte("f"), []byte("v"), false)
	f.Add(h.appendBinary(nil))
	h.set([]byte(""), []byte("empty"), false)
	h.setDeadline([]byte("f"), 5000)
	f.Add(h.appendBinary(nil))
	for i := range 40 {
		h.set(fmt.Appendf(nil, "g%d", i), []byte(strings.Repeat("x", i)), false)
	}
	h.setDeadline([]byte("g3"), 1)
	f.Add(h.appendBinary(nil))
	f.Add([]byte{1, 1, 1, 'f', 1, 'v', 0x80})
	f.Add([]byte{1, 2, 1, 'f', 0, 0, 1, 'f', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const now = 1000
		obj, err := decodeObject(kindHash, b, now)
		if err != nil {
			return
		}
		h := obj.(*hashObj)
		require.Positive(t, h.len())
		enc := h.appendBinary(nil)
		h2, err := decodeHash(enc, now)
		require.NoError(t, err)
		require.Equal(t, enc, h2.appendBinary(nil))
		h.each(func(f, v []byte, dl int64) bool {
			require.True(t, dl == 0 || dl >= now, "a field expired at now was kept")
			v2, ok := h2.get(f)
			require.True(t, ok)
			require.Equal(t, v, v2)
			return true
		})
	})
}

func TestDecodeHashErrors(t *testing.T) {
	h := newHash(0)
	h.set([]byte("f"), []byte("v"), false)
	h.set([]byte("g"), []byte("w"), false)
	h.setDeadline([]byte("g"), 2000)
	good := h.appendBinary(nil)
	for i := range len(good) {
		_, err := decodeHash(good[:i], 0)
		require.Error(t, err, "truncated at %d", i)
	}
	_, err := decodeHash(append(slices.Clone(good), 0), 0)
	require.Error(t, err, "trailing byte")
	d, err := decodeHash(good, 1999)
	require.NoError(t, err)
	require.Equal(t, 2, d.len())
	d, err = decodeHash(good, 2001)
	require.NoError(t, err)
	require.Equal(t, 1, d.len(), "g expired")
	h.setDeadline([]byte("f"), 10)
	_, err = decodeHash(h.appendBinary(nil), 2001)
	require.ErrorIs(t, err, errObjectExpired)
}

// TestGoRedisSpringSessionFlow is what Spring Session's Redis repository
// does with a session (hash fields creationTime, lastAccessedTime,
// maxInactiveInterval, sessionAttr:*), over go-redis with RESP2 and RESP3:
// create with HSET and PEXPIREAT, read with HGETALL and HMGET, remove an
// attribute with HDEL, change the session id with RENAME; then a field
// with its own TTL (Redis 7.4) that disappears on time.
func TestGoRedisSpringSessionFlow(t *testing.T) {
	ts := startServer(t, Config{})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			ctx := context.Background()
			rdb := newGoRedis(t, ts.addr, proto)
			key := fmt.Sprintf("spring:session:sessions:%d", proto)
			created := time.Now().UnixMilli()
			n, err := rdb.HSet(ctx, key,
				"creationTime", created, "lastAccessedTime", created, "maxInactiveInterval", 1800,
				"sessionAttr:user", "alice", "sessionAttr:cart", strings.Repeat("c", 4096)).Result()
			require.NoError(t, err)
			assert.EqualValues(t, 5, n)
			deadline := time.UnixMilli(created + 1800_000)
			require.True(t, rdb.PExpireAt(ctx, key, deadline).Val())

			all, err := rdb.HGetAll(ctx, key).Result()
			require.NoError(t, err)
			assert.Equal(t, "alice", all["sessionAttr:user"])
			assert.Len(t, all, 5)
			vals, err := rdb.HMGet(ctx, key, "maxInactiveInterval", "sessionAttr:user", "nope").Result()
			require.NoError(t, err)
			assert.Equal(t, []any{"1800", "alice", nil}, vals)

			// A request: touch lastAccessedTime, drop an attribute; the TTL stays.
			require.NoError(t, rdb.HSet(ctx, key, "lastAccessedTime", created+1000).Err())
			assert.EqualValues(t, 1, rdb.HDel(ctx, key, "sessionAttr:cart", "nope").Val())
			assert.Equal(t, deadline.UnixMilli(), rdb.PExpireTime(ctx, key).Val().Milliseconds())

			// changeSessionId.
			newKey := key + ":renamed"
			require.NoError(t, rdb.Rename(ctx, key, newKey).Err())
			assert.EqualValues(t, 0, rdb.Exists(ctx, key).Val())
			assert.EqualValues(t, 4, rdb.HLen(ctx, newKey).Val())
			assert.Equal(t, fmt.Sprint(created+1000), rdb.HGet(ctx, newKey, "lastAccessedTime").Val())

			// A field with its own TTL (a one-time token).
			require.NoError(t, rdb.HSet(ctx, newKey, "sessionAttr:csrf", "tok").Err())
			codes, err := rdb.HPExpire(ctx, newKey, 150*time.Millisecond, "sessionAttr:csrf", "nope").Result()
			require.NoError(t, err)
			assert.Equal(t, []int64{1, -2}, codes)
			ttls, err := rdb.HPTTL(ctx, newKey, "sessionAttr:csrf", "sessionAttr:user").Result()
			require.NoError(t, err)
			assert.InDelta(t, 150, ttls[0], 50)
			assert.EqualValues(t, -1, ttls[1])
			require.Eventually(t, func() bool {
				return rdb.HExists(ctx, newKey, "sessionAttr:csrf").Val() == false
			}, 5*time.Second, 5*time.Millisecond)
			assert.EqualValues(t, 4, rdb.HLen(ctx, newKey).Val())
			assert.Equal(t, []int64{-2}, rdb.HTTL(ctx, newKey, "sessionAttr:csrf").Val())
			assert.Equal(t, []int64{-1}, rdb.HPersist(ctx, newKey, "sessionAttr:user").Val())

			// Logout.
			assert.EqualValues(t, 1, rdb.Del(ctx, newKey).Val())
			assert.Empty(t, rdb.HGetAll(ctx, newKey).Val())
		})
	}
}

// BenchmarkHashSession is a session hash's life on the command path: an
// HSET of five fields (one of 1 KiB) and an HGETALL, through dispatch.
func BenchmarkHashSession(b *testing.B) {
	data := strings.Repeat("d", 1024)
	hset := splitArgs("HSET sess:0123456789abcdef0123456789abcdef creationTime 1700000000000 lastAccessedTime 1700000000000 maxInactiveInterval 1800 sessionAttr:user 42 sessionAttr:data " + data)
	hgetall := splitArgs("HGETALL sess:0123456789abcdef0123456789abcdef")
	touch := splitArgs("HSET sess:0123456789abcdef0123456789abcdef lastAccessedTime 1700000001000")
	b.Run("DEL_HSET_new", func(b *testing.B) {
		// A thousand sessions, each deleted and written again in turn (so
		// that no shard ever empties, which would reset it).
		srv, c := benchClient(b)
		hset := slices.Clone(hset)
		keys := make([][]byte, 1000)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "sess:%032x", i)
			hset[1] = keys[i]
			srv.dispatch(c, hset)
		}
		del := [][]byte{[]byte("DEL"), nil}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			c.w.Reset()
			k := keys[i%len(keys)]
			i++
			del[1], hset[1] = k, k
			srv.dispatch(c, del)
			srv.dispatch(c, hset)
		}
	})
	b.Run("HSET_touch", func(b *testing.B) {
		srv, c := benchClient(b)
		srv.dispatch(c, hset)
		b.ReportAllocs()
		for b.Loop() {
			c.w.Reset()
			srv.dispatch(c, touch)
		}
	})
	b.Run("HGETALL", func(b *testing.B) {
		srv, c := benchClient(b)
		srv.dispatch(c, hset)
		b.ReportAllocs()
		for b.Loop() {
			c.w.Reset()
			srv.dispatch(c, hgetall)
		}
	})
}

// TestHScanNoValues: HSCAN's NOVALUES (Redis 7.4,
// https://redis.io/docs/latest/commands/hscan/) answers the fields only;
// the reference redis-server 7.0 lacks it.
func TestHScanNoValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHashHarness(t, false)
		require.Equal(t, ":3\r\n", h.do("HSET", "h", "a", "1", "b", "2", "ab", "3"))
		require.Equal(t, "*2\r\n$1\r\n0\r\n"+bulks("a", "b", "ab"), h.do("HSCAN", "h", "0", "NOVALUES"))
		require.Equal(t, "*2\r\n$1\r\n0\r\n"+bulks("a", "ab"), h.do("HSCAN", "h", "0", "MATCH", "a*", "novalues", "COUNT", "5"))
		require.Equal(t, "*2\r\n$1\r\n0\r\n"+bulks("a", "1", "b", "2", "ab", "3"), h.do("HSCAN", "h", "0"))
		require.Equal(t, "*2\r\n$1\r\n0\r\n*0\r\n", h.do("HSCAN", "missing", "0", "NOVALUES"))
		// A big hash: COUNT fields per call, from the last one down.
		for i := range 40 {
			h.do("HSET", "big", fmt.Sprintf("f%02d", i), "v")
		}
		require.Equal(t, "*2\r\n$2\r\n37\r\n"+bulks("f39", "f38", "f37"), h.do("HSCAN", "big", "0", "COUNT", "3", "NOVALUES"))
		require.Equal(t, "*2\r\n$2\r\n35\r\n"+bulks("f36", "v", "f35", "v"), h.do("HSCAN", "big", "37", "COUNT", "2"))
		var fields []string
		for cursor := "0"; ; {
			reply := h.do("HSCAN", "big", cursor, "COUNT", "7", "NOVALUES")
			parts := strings.Split(reply, "\r\n")
			cursor = parts[2]
			for i := 5; i < len(parts)-1; i += 2 {
				fields = append(fields, parts[i])
			}
			if cursor == "0" {
				break
			}
		}
		require.Len(t, fields, 40)
		require.Equal(t, "-ERR syntax error\r\n", h.do("HSCAN", "h", "0", "NOVALUE"))
	})
}
