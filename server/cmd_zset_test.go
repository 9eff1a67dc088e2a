package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/ttl"
)

// TestGoRedisTaggedCacheFlow is what Laravel's tagged cache does with
// sorted sets (each tag's entries scored by their expiry: ZADD GT, stale
// entries dropped with ZREMRANGEBYSCORE, entries listed with ZSCAN for a
// flush), with its older set-based reference keys (SADD/SSCAN), and what
// Spring Session's indexed repository does with an expiry index (ZADD,
// ZRANGEBYSCORE … LIMIT for the cleanup, ZREVRANGEBYSCORE, ZREM) — over
// RESP2 and RESP3.
func TestGoRedisTaggedCacheFlow(t *testing.T) {
	ts := startServer(t, Config{})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			ctx := context.Background()
			rdb := newGoRedis(t, ts.addr, proto)
			require.NoError(t, rdb.FlushAll(ctx).Err())
			now := time.Now().Unix()

			// Cache items tagged "users": 300 live for 100 s, 200 already
			// stale, 5 forever (score -1).
			const tag = "tag:users:entries"
			for i := range 500 {
				key := fmt.Sprintf("cache:user:%d", i)
				expiry := now + 100
				if i%5 < 2 {
					expiry = now - 10
				}
				require.NoError(t, rdb.Set(ctx, key, "v", time.Hour).Err())
				require.NoError(t, rdb.ZAddGT(ctx, tag, redis.Z{Score: float64(expiry), Member: key}).Err())
				require.NoError(t, rdb.SAdd(ctx, "tag:users:standard_ref", key).Err())
			}
			for i := range 5 {
				require.NoError(t, rdb.ZAdd(ctx, tag, redis.Z{Score: -1, Member: fmt.Sprintf("cache:forever:%d", i)}).Err())
			}
			// Re-tagging with a shorter expiry does not lower the score (GT).
			require.NoError(t, rdb.ZAddGT(ctx, tag, redis.Z{Score: float64(now), Member: "cache:user:2"}).Err())
			score, err := rdb.ZScore(ctx, tag, "cache:user:2").Result()
			require.NoError(t, err)
			assert.Equal(t, float64(now+100), score)

			// flushStaleEntries: everything expired up to now, not forever.
			removed, err := rdb.ZRemRangeByScore(ctx, tag, "0", strconv.FormatInt(now, 10)).Result()
			require.NoError(t, err)
			assert.Equal(t, int64(200), removed)
			n, err := rdb.ZCard(ctx, tag).Result()
			require.NoError(t, err)
			assert.Equal(t, int64(305), n)

			// The stale range is gone, the live one is intact.
			//lint:ignore SA1019 ZRANGEBYSCORE itself is what the frameworks send
			stale, err := rdb.ZRangeByScore(ctx, tag, &redis.ZRangeBy{Min: "0", Max: strconv.FormatInt(now, 10)}).Result()
			require.NoError(t, err)
			assert.Empty(t, stale)
			live, err := rdb.ZRangeByScoreWithScores(ctx, tag, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now, 10), Max: "+inf", Offset: 0, Count: 1000}).Result()
			require.NoError(t, err)
			require.Len(t, live, 300)
			for _, z := range live {
				assert.Equal(t, float64(now+100), z.Score)
			}

			// entries(): a full ZSCAN, then the flush deletes each entry.
			var entries []string
			var cursor uint64
			for {
				var page []string
				page, cursor, err = rdb.ZScan(ctx, tag, cursor, "cache:*", 50).Result()
				require.NoError(t, err)
				for i := 0; i < len(page); i += 2 {
					entries = append(entries, page[i])
				}
				if cursor == 0 {
					break
				}
			}
			slices.Sort(entries)
			entries = slices.Compact(entries)
			require.Len(t, entries, 305)
			for chunk := range slices.Chunk(entries, 100) {
				require.NoError(t, rdb.Del(ctx, chunk...).Err())
			}
			require.NoError(t, rdb.Del(ctx, tag).Err())
			assert.Equal(t, int64(0), rdb.Exists(ctx, "cache:user:3", tag).Val())

			// The older set-based reference keys: SSCAN finds every member.
			var refs []string
			cursor = 0
			for {
				var page []string
				page, cursor, err = rdb.SScan(ctx, "tag:users:standard_ref", cursor, "", 100).Result()
				require.NoError(t, err)
				refs = append(refs, page...)
				if cursor == 0 {
					break
				}
			}
			slices.Sort(refs)
			assert.Len(t, slices.Compact(refs), 500)
			isMember, err := rdb.SIsMember(ctx, "tag:users:standard_ref", "cache:user:7").Result()
			require.NoError(t, err)
			assert.True(t, isMember)
			members, err := rdb.SMembers(ctx, "tag:users:standard_ref").Result()
			require.NoError(t, err)
			assert.Len(t, members, 500)

			// Spring Session: an expiry index by deadline in ms.
			const idx = "spring:session:sessions:expirations"
			base := time.Now().UnixMilli()
			for i := range 20 {
				require.NoError(t, rdb.ZAdd(ctx, idx, redis.Z{Score: float64(base + int64(i)*1000), Member: fmt.Sprintf("s%02d", i)}).Err())
			}
			//lint:ignore SA1019 ZRANGEBYSCORE itself is what the frameworks send
			due, err := rdb.ZRangeByScore(ctx, idx, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(base+4500, 10), Offset: 0, Count: 3}).Result()
			require.NoError(t, err)
			assert.Equal(t, []string{"s00", "s01", "s02"}, due)
			latest, err := rdb.ZRevRangeByScoreWithScores(ctx, idx, &redis.ZRangeBy{Min: "-inf", Max: "+inf", Offset: 1, Count: 2}).Result()
			require.NoError(t, err)
			assert.Equal(t, []redis.Z{{Score: float64(base + 18000), Member: "s18"}, {Score: float64(base + 17000), Member: "s17"}}, latest)
			require.NoError(t, rdb.ZRem(ctx, idx, due).Err())
			first, err := rdb.ZPopMin(ctx, idx).Result()
			require.NoError(t, err)
			assert.Equal(t, []redis.Z{{Score: float64(base + 3000), Member: "s03"}}, first)
			rank, err := rdb.ZRank(ctx, idx, "s10").Result()
			require.NoError(t, err)
			assert.Equal(t, int64(6), rank)
		})
	}
}

// TestZRankWithScore checks Redis 7.2's ZRANK/ZREVRANK … WITHSCORE (the
// reference redis-server is 7.0, which lacks it): [rank, score], a null
// array for a missing member or key, and 7.2's errors. Expected bytes from
// the Redis 7.2 documentation and t_zset.c's zrankGenericCommand.
func TestZRankWithScore(t *testing.T) {
	d := newDirectClient(t)
	d.do("ZADD", "z", "1", "a", "2.5", "b", "3", "c")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ZRANK", "z", "b", "WITHSCORE"}, "*2\r\n:1\r\n$3\r\n2.5\r\n"},
		{[]string{"ZREVRANK", "z", "b", "withscore"}, "*2\r\n:1\r\n$3\r\n2.5\r\n"},
		{[]string{"ZREVRANK", "z", "a", "WITHSCORE"}, "*2\r\n:2\r\n$1\r\n1\r\n"},
		{[]string{"ZRANK", "z", "x", "WITHSCORE"}, "*-1\r\n"},
		{[]string{"ZRANK", "missing", "x", "WITHSCORE"}, "*-1\r\n"},
		{[]string{"ZRANK", "z", "x"}, "$-1\r\n"},
		{[]string{"ZRANK", "z", "b", "WITHSCORES"}, "-ERR syntax error\r\n"},
		{[]string{"ZRANK", "z", "b", "WITHSCORE", "x"}, "-ERR wrong number of arguments for 'zrank' command\r\n"},
		{[]string{"ZREVRANK", "z", "b", "WITHSCORE", "x"}, "-ERR wrong number of arguments for 'zrevrank' command\r\n"},
	} {
		assert.Equal(t, tc.want, string(d.do(tc.args...).Raw), "%q", tc.args)
	}
	d.do("HELLO", "3")
	assert.Equal(t, "*2\r\n:1\r\n,2.5\r\n", string(d.do("ZRANK", "z", "b", "WITHSCORE").Raw))
	assert.Equal(t, "_\r\n", string(d.do("ZRANK", "z", "x", "WITHSCORE").Raw))
	d.do("SET", "str", "v")
	assert.Equal(t, "-"+errWrongType+"\r\n", string(d.do("ZRANK", "str", "x", "WITHSCORE").Raw))
}

// TestZSetCommandsMemoryAccounting: the store's object bytes follow a
// sorted set through ZADD, ZREMRANGEBYRANK and ZPOPMIN.
func TestZSetCommandsMemoryAccounting(t *testing.T) {
	d := newDirectClient(t)
	objBytes := func() int64 { return d.store.Stats().ObjectBytes }
	d.do("ZADD", "z", "0", "x")
	small := objBytes()
	args := []string{"ZADD", "z"}
	for i := range 1000 {
		args = append(args, strconv.Itoa(i), fmt.Sprintf("member:%d", i))
	}
	d.do(args...)
	big := objBytes()
	assert.Greater(t, big, small+1000*50)
	d.do("ZREMRANGEBYRANK", "z", "0", "899")
	assert.Less(t, objBytes(), big/4)
	d.do("ZPOPMIN", "z", "1000")
	assert.Equal(t, int64(0), d.int("EXISTS", "z"))
	assert.Equal(t, int64(0), objBytes())
}

// BenchmarkZSetCommands: ZADD of a new member into a 10k sorted set (and
// of an existing member with a new score), ZRANGEBYSCORE with LIMIT in the
// middle of it, ZSCORE, ZRANK.
func BenchmarkZSetCommands(b *testing.B) {
	srv, c := benchClient(b)
	const n = 10000
	args := [][]byte{[]byte("ZADD"), []byte("idx")}
	for i := range n {
		args = append(args, []byte(strconv.Itoa(i*10)), fmt.Appendf(nil, "session:%016x", i))
	}
	srv.dispatch(c, args)
	b.Run("ZADD_new", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		score := make([]byte, 0, 24)
		for b.Loop() {
			c.w.Reset()
			score = strconv.AppendInt(score[:0], int64(i%(n*10)), 10)
			srv.dispatch(c, [][]byte{[]byte("ZADD"), []byte("idx"), score, fmt.Appendf(nil, "new:%d", i)})
			i++
		}
	})
	b.Run("ZADD_update", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		score := make([]byte, 0, 24)
		member := []byte("session:0000000000001000")
		for b.Loop() {
			c.w.Reset()
			score = strconv.AppendInt(score[:0], int64(i%(n*10)), 10)
			srv.dispatch(c, [][]byte{[]byte("ZADD"), []byte("idx"), score, member})
			i++
		}
	})
	for _, tc := range []struct{ name, cmd string }{
		{"ZRANGEBYSCORE_LIMIT_10", "ZRANGEBYSCORE idx 40000 +inf LIMIT 100 10"},
		{"ZRANGEBYSCORE_LIMIT_10_WITHSCORES", "ZRANGEBYSCORE idx 40000 +inf WITHSCORES LIMIT 100 10"},
		{"ZREVRANGEBYSCORE_LIMIT_10", "ZREVRANGEBYSCORE idx 60000 -inf LIMIT 100 10"},
		{"ZSCORE", "ZSCORE idx session:0000000000000400"},
		{"ZRANK", "ZRANK idx session:0000000000000400"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			args := splitArgs(tc.cmd)
			b.ReportAllocs()
			for b.Loop() {
				c.w.Reset()
				srv.dispatch(c, args)
			}
		})
	}
}

// FuzzSetZSetCommands feeds arbitrary set and sorted set command streams
// to the command layer (lines are commands, spaces separate arguments;
// other commands are skipped): every command answers exactly one
// well-formed reply and never reaches the panic handler, and the objects
// keep their invariants.
func FuzzSetZSetCommands(f *testing.F) {
	for _, seed := range []string{
		"SADD s 1 2 x\nSREM s 2\nSPOP s 2\nSRANDMEMBER s -3\nSSCAN s 0 MATCH * COUNT 1\nSMOVE s t x",
		"SADD a 1 2\nSADD b 2 3\nSINTERSTORE c a b\nSUNION a b c\nSDIFFSTORE a a b\nSINTERCARD 2 a b LIMIT 1",
		"ZADD z NX CH 1 a 2 b inf c\nZINCRBY z -inf c\nZRANGE z (1 +inf BYSCORE REV LIMIT 0 -1 WITHSCORES\nZRANGESTORE d z 0 -1",
		"ZADD z 0 a 0 b 0 c\nZRANGEBYLEX z [a (c LIMIT 1 1\nZREMRANGEBYLEX z - +\nZPOPMAX z 2\nZRANK z a WITHSCORE",
		"ZADD z 1 a 2 b 3 c\nZREMRANGEBYRANK z -9223372036854775808 9223372036854775807\nZCOUNT z ( 0x1p3\nZSCAN z 0 COUNT 2",
	} {
		f.Add(seed)
	}
	d := newDirectClient(f)
	f.Fuzz(func(t *testing.T, script string) {
		d.store.Flush(-1)
		for line := range strings.SplitSeq(script, "\n") {
			args := strings.Fields(line)
			if len(args) == 0 || len(args) > 64 {
				continue
			}
			if c := args[0][0] | 0x20; c != 's' && c != 'z' {
				continue
			}
			if strings.EqualFold(args[0], "shutdown") || strings.EqualFold(args[0], "select") {
				continue
			}
			bargs := make([][]byte, len(args))
			for i, a := range args {
				bargs[i] = []byte(a)
			}
			d.c.w.Reset()
			d.srv.dispatch(d.c, bargs)
			out := d.c.w.Bytes()
			require.NotContains(t, string(out), "internal error", "%q", line)
			n, err := redistest.ReplyLen(out)
			require.NoError(t, err, "%q: %q", line, out)
			require.Equal(t, len(out), n, "%q: more than one reply", line)
		}
		// Every object left is consistent.
		var cursor uint64
		for {
			cursor = d.store.Scan(0, cursor, 100, func(_ []byte, e ttl.Entry) {
				switch o := e.Obj.(type) {
				case *zsetObj:
					m := &zmodel{}
					for n := o.zsl.first(); n != nil; n = n.level[0].forward {
						m.pairs = append(m.pairs, zpair{n.member, n.score})
					}
					require.True(t, slices.IsSortedFunc(m.pairs, zpairCmp))
					require.Positive(t, o.card())
					require.Equal(t, o.card(), o.dict.len())
				case *setObj:
					require.Positive(t, o.card())
					if o.tab == nil {
						require.True(t, slices.IsSorted(o.ints))
						require.LessOrEqual(t, len(o.ints), setMaxIntsetEntries)
					}
				}
			})
			if cursor == 0 {
				break
			}
		}
	})
}
