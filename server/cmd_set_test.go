package server

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// directClient is a server and a client whose commands are dispatched
// directly (no network), with the replies parsed.
type directClient struct {
	tb    testing.TB
	srv   *Server
	c     *client
	store *ttl.Store
}

func newDirectClient(tb testing.TB) *directClient {
	store, err := ttl.New(ttl.Config{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = store.Close() })
	srv, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, store)
	require.NoError(tb, err)
	p1, p2 := net.Pipe()
	tb.Cleanup(func() { p1.Close(); p2.Close() })
	return &directClient{tb: tb, srv: srv, c: srv.newClient(p1), store: store}
}

// do runs one command and returns its parsed reply.
func (d *directClient) do(args ...string) redistest.Reply {
	d.tb.Helper()
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	d.c.w.Reset()
	d.srv.dispatch(d.c, bargs)
	rep, err := redistest.ParseReply(slices.Clone(d.c.w.Bytes()))
	require.NoError(d.tb, err, "%q", args)
	return rep
}

// int runs a command that answers an integer.
func (d *directClient) int(args ...string) int64 {
	d.tb.Helper()
	r := d.do(args...)
	require.Equal(d.tb, byte(':'), r.Type, "%q: %q", args, r.Raw)
	n, err := strconv.ParseInt(r.Header, 10, 64)
	require.NoError(d.tb, err)
	return n
}

// strs returns an aggregate reply's elements as strings.
func strs(r redistest.Reply) []string {
	out := make([]string, 0, len(r.Elems))
	for _, e := range r.Elems {
		out = append(out, string(e.Data))
	}
	return out
}

func (d *directClient) members(key string) []string {
	d.tb.Helper()
	got := strs(d.do("SMEMBERS", key))
	slices.Sort(got)
	return got
}

// TestSPopInvariants checks what SPOP promises whatever the random picks:
// distinct members of the set, removed from it, the rest untouched, the
// key deleted with its last member — for integer and string sets, counts
// small and large against the set's size.
func TestSPopInvariants(t *testing.T) {
	d := newDirectClient(t)
	for _, kind := range []string{"int", "str"} {
		for _, count := range []int{1, 3, 40, 99, 100, 150} {
			d.do("DEL", "s")
			var all []string
			for i := range 100 {
				m := strconv.Itoa(i)
				if kind == "str" {
					m = "m" + m
				}
				all = append(all, m)
				d.do("SADD", "s", m)
			}
			before := d.members("s")
			popped := strs(d.do("SPOP", "s", strconv.Itoa(count)))
			require.Len(t, popped, min(count, 100))
			sorted := slices.Clone(popped)
			slices.Sort(sorted)
			require.Len(t, slices.Compact(sorted), len(popped), "distinct")
			rest := d.members("s")
			for _, m := range popped {
				require.Contains(t, before, m)
				require.NotContains(t, rest, m)
			}
			require.Len(t, rest, 100-len(popped))
			merged := append(slices.Clone(rest), popped...)
			slices.Sort(merged)
			slices.Sort(all)
			require.Equal(t, all, merged, "nothing lost, nothing invented")
			if count >= 100 {
				assert.Equal(t, int64(0), d.int("EXISTS", "s"))
			}
		}
	}
	// Without a count: one member, then nil once the set is gone.
	d.do("SADD", "one", "x", "y")
	a, b := string(d.do("SPOP", "one").Data), string(d.do("SPOP", "one").Data)
	assert.ElementsMatch(t, []string{"x", "y"}, []string{a, b})
	null := d.do("SPOP", "one")
	assert.True(t, null.IsNull())
	assert.Equal(t, int64(0), d.int("EXISTS", "one"))
}

// TestSRandMemberInvariants: a positive count gives distinct members (all
// of them when it exceeds the size), a negative one exactly |count| picks
// with repetitions; nothing is removed; every member can come up.
func TestSRandMemberInvariants(t *testing.T) {
	d := newDirectClient(t)
	for _, first := range []string{"0", "m"} {
		d.do("DEL", "s")
		for i := range 50 {
			d.do("SADD", "s", first+strconv.Itoa(i))
		}
		all := d.members("s")
		for _, count := range []int{1, 5, 16, 17, 49, 50, 51, 1000} {
			got := strs(d.do("SRANDMEMBER", "s", strconv.Itoa(count)))
			require.Len(t, got, min(count, 50))
			sorted := slices.Clone(got)
			slices.Sort(sorted)
			require.Len(t, slices.Compact(sorted), len(got), "distinct")
			for _, m := range got {
				require.Contains(t, all, m)
			}
		}
		seen := map[string]int{}
		got := strs(d.do("SRANDMEMBER", "s", "-5000"))
		require.Len(t, got, 5000)
		for _, m := range got {
			require.Contains(t, all, m)
			seen[m]++
		}
		require.Len(t, seen, 50, "every member is picked at some point")
		for m, n := range seen {
			// 100 expected per member; a fair pick is far from these bounds.
			require.True(t, n > 30 && n < 200, "%s picked %d times of 5000", m, n)
		}
		require.Equal(t, all, d.members("s"), "SRANDMEMBER removes nothing")
		single := string(d.do("SRANDMEMBER", "s").Data)
		require.Contains(t, all, single)
	}
	rep := d.do("SRANDMEMBER", "s", strconv.Itoa(-maxRandCount-1))
	assert.Equal(t, "ERR value is out of range, value must between -16777216 and 9223372036854775807", rep.Header)
}

// TestSetKeepsTTLAndStoreDropsIt: members added or removed keep the key's
// deadline; a STORE result replaces the destination without one.
func TestSetKeepsTTLAndStoreDropsIt(t *testing.T) {
	d := newDirectClient(t)
	d.do("SADD", "s", "a", "b", "c")
	d.do("PEXPIRE", "s", "100000")
	for _, cmd := range [][]string{{"SADD", "s", "d"}, {"SREM", "s", "a"}, {"SPOP", "s"}, {"SMOVE", "s", "t", "b"}} {
		d.do(cmd...)
		pttl := d.int("PTTL", "s")
		require.True(t, pttl > 90000, "%v: PTTL %d", cmd, pttl)
	}
	d.do("SET", "dst", "x", "EX", "100")
	require.Equal(t, d.int("SCARD", "s"), d.int("SUNIONSTORE", "dst", "s"))
	assert.Equal(t, int64(-1), d.int("TTL", "dst"))
}

// TestSetCommandsMemoryAccounting: the store's object bytes follow the
// sets as they grow and shrink (Touched after in-place changes).
func TestSetCommandsMemoryAccounting(t *testing.T) {
	d := newDirectClient(t)
	objBytes := func() int64 { return d.store.Stats().ObjectBytes }
	d.do("SADD", "s", "x")
	small := objBytes()
	for i := range 1000 {
		d.do("SADD", "s", fmt.Sprintf("member:%d", i))
	}
	big := objBytes()
	assert.Greater(t, big, small+1000*20)
	args := []string{"SREM", "s"}
	for i := range 1000 {
		args = append(args, fmt.Sprintf("member:%d", i))
	}
	d.do(args...)
	assert.Less(t, objBytes(), big/2, "removals are accounted")
	d.do("DEL", "s")
	assert.Equal(t, int64(0), objBytes())
}

// BenchmarkSetCommands: SADD of a new member into a 10k set, SISMEMBER
// hits and misses, through dispatch.
func BenchmarkSetCommands(b *testing.B) {
	srv, c := benchClient(b)
	for i := range 10000 {
		srv.dispatch(c, splitArgs(fmt.Sprintf("SADD tags session:%016x", i)))
	}
	b.Run("SADD", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.w.Reset()
			srv.dispatch(c, [][]byte{[]byte("SADD"), []byte("bench"), []byte("m" + strconv.Itoa(i))})
			i++
		}
	})
	for _, tc := range []struct{ name, member string }{{"SISMEMBER_hit", "session:0000000000000400"}, {"SISMEMBER_miss", "nosuchmember"}} {
		b.Run(tc.name, func(b *testing.B) {
			args := splitArgs("SISMEMBER tags " + tc.member)
			b.ReportAllocs()
			for b.Loop() {
				c.w.Reset()
				srv.dispatch(c, args)
			}
		})
	}
}
