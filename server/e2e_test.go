package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newGoRedis(t *testing.T, addr string, proto int, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr, Protocol: proto, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	for _, f := range opts {
		f(o)
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// subscribeGoRedis subscribes a new go-redis client to channels (or, with
// pattern set, patterns) and waits for the server's confirmation, so that
// whatever is published afterwards reaches it. Closed at cleanup.
func subscribeGoRedis(t *testing.T, addr string, proto int, pattern bool, names ...string) *redis.PubSub {
	t.Helper()
	rdb := newGoRedis(t, addr, proto)
	var ps *redis.PubSub
	if pattern {
		ps = rdb.PSubscribe(t.Context(), names...)
	} else {
		ps = rdb.Subscribe(t.Context(), names...)
	}
	t.Cleanup(func() { _ = ps.Close() })
	_, err := ps.Receive(t.Context())
	require.NoError(t, err)
	return ps
}

// TestGoRedisSessionFlow is what a session middleware does: login writes the
// session with a TTL, each request slides the expiry in one round trip,
// logout deletes it — over RESP2 and RESP3.
func TestGoRedisSessionFlow(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		for _, proto := range []int{2, 3} {
			t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
				ctx := context.Background()
				rdb := newGoRedis(t, ts.addr, proto)
				key := fmt.Sprintf("sess:flow%d", proto)
				require.NoError(t, rdb.Set(ctx, key, `{"uid":42}`, 30*time.Minute).Err())
				v, err := rdb.GetEx(ctx, key, 30*time.Minute).Result()
				require.NoError(t, err)
				assert.Equal(t, `{"uid":42}`, v)
				ttl, err := rdb.TTL(ctx, key).Result()
				require.NoError(t, err)
				assert.InDelta(t, float64(30*time.Minute), float64(ttl), float64(2*time.Second))

				// Missing keys are nil for both protocols.
				_, err = rdb.Get(ctx, "sess:missing").Result()
				assert.ErrorIs(t, err, redis.Nil)

				n, err := rdb.Del(ctx, key).Result()
				require.NoError(t, err)
				assert.Equal(t, int64(1), n)
				_, err = rdb.GetEx(ctx, key, time.Minute).Result()
				assert.ErrorIs(t, err, redis.Nil)
			})
		}
	})
}

func TestGoRedisCommands(t *testing.T) {
	ts := startServer(t, Config{})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			ctx := context.Background()
			rdb := newGoRedis(t, ts.addr, proto)
			require.NoError(t, rdb.FlushAll(ctx).Err())

			require.NoError(t, rdb.MSet(ctx, "a", "1", "b", "2").Err())
			vals, err := rdb.MGet(ctx, "a", "b", "nope").Result()
			require.NoError(t, err)
			assert.Equal(t, []any{"1", "2", nil}, vals)

			n, err := rdb.Incr(ctx, "a").Result()
			require.NoError(t, err)
			assert.Equal(t, int64(2), n)
			f, err := rdb.IncrByFloat(ctx, "a", 0.5).Result()
			require.NoError(t, err)
			assert.Equal(t, 2.5, f)

			ok, err := rdb.SetNX(ctx, "a", "x", 0).Result()
			require.NoError(t, err)
			assert.False(t, ok)

			assert.Equal(t, "string", rdb.Type(ctx, "b").Val())
			assert.Equal(t, "none", rdb.Type(ctx, "nope").Val())
			require.NoError(t, rdb.Rename(ctx, "b", "c").Err())
			assert.Equal(t, int64(0), rdb.Exists(ctx, "b").Val())
			assert.Equal(t, "2", rdb.Get(ctx, "c").Val())

			// WRONGTYPE and friends come back as Redis errors.
			require.NoError(t, rdb.Set(ctx, "s", "abc", 0).Err())
			err = rdb.Incr(ctx, "s").Err()
			require.Error(t, err)
			assert.Equal(t, "ERR value is not an integer or out of range", err.Error())

			// Expiry family.
			require.NoError(t, rdb.Expire(ctx, "c", time.Hour).Err())
			assert.Greater(t, rdb.PTTL(ctx, "c").Val(), 59*time.Minute)
			assert.True(t, rdb.Persist(ctx, "c").Val())
			assert.Equal(t, time.Duration(-1), rdb.TTL(ctx, "c").Val())
			et := time.Now().Add(time.Hour).Truncate(time.Second)
			require.NoError(t, rdb.ExpireAt(ctx, "c", et).Err())
			assert.Equal(t, time.Duration(et.Unix())*time.Second, rdb.ExpireTime(ctx, "c").Val())

			// DB selection through the client option.
			rdb1 := newGoRedis(t, ts.addr, proto, func(o *redis.Options) { o.DB = 1 })
			require.NoError(t, rdb1.Set(ctx, "only-in-1", "x", 0).Err())
			assert.Equal(t, int64(0), rdb.Exists(ctx, "only-in-1").Val())
			assert.Equal(t, int64(1), rdb1.DBSize(ctx).Val())

			info, err := rdb.Info(ctx, "server").Result()
			require.NoError(t, err)
			assert.Contains(t, info, "redis_mode:standalone")
			assert.Contains(t, info, "redis_version:7.")
		})
	}
}

// TestGoRedisPipeline sends thousands of commands in one pipeline and
// checks every reply comes back in order.
func TestGoRedisPipeline(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		for _, proto := range []int{2, 3} {
			t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
				ctx := context.Background()
				rdb := newGoRedis(t, ts.addr, proto)
				const n = 5000
				val := strings.Repeat("v", 700)
				_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := range n {
						p.Set(ctx, fmt.Sprintf("sess:p%d:%d", proto, i), val+fmt.Sprint(i), time.Hour)
					}
					return nil
				})
				require.NoError(t, err)
				cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := range n {
						p.GetEx(ctx, fmt.Sprintf("sess:p%d:%d", proto, i), time.Hour)
					}
					return nil
				})
				require.NoError(t, err)
				for i, cmd := range cmds {
					require.Equal(t, val+fmt.Sprint(i), cmd.(*redis.StringCmd).Val())
				}
			})
		}
	})
}

// TestGoRedisScanAll iterates a keyspace with SCAN MATCH and sees every key
// exactly as KEYS does.
func TestGoRedisScanAll(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	rdb := newGoRedis(t, ts.addr, 3)
	want := map[string]bool{}
	for i := range 3000 {
		k := fmt.Sprintf("sess:%04d", i)
		want[k] = true
		require.NoError(t, rdb.Set(ctx, k, "x", time.Hour).Err())
		require.NoError(t, rdb.Set(ctx, fmt.Sprintf("other:%d", i), "x", 0).Err())
	}
	got := map[string]bool{}
	iter := rdb.Scan(ctx, 0, "sess:*", 100).Iterator()
	for iter.Next(ctx) {
		got[iter.Val()] = true
	}
	require.NoError(t, iter.Err())
	assert.Equal(t, want, got)
	keys, err := rdb.Keys(ctx, "sess:*").Result()
	require.NoError(t, err)
	assert.Len(t, keys, 3000)
}

func TestGoRedisAuth(t *testing.T) {
	ts := startServer(t, Config{RequirePass: "s3cret"})
	ctx := context.Background()
	noPass := newGoRedis(t, ts.addr, 2)
	err := noPass.Ping(ctx).Err()
	require.Error(t, err)
	assert.Equal(t, "NOAUTH Authentication required.", err.Error())

	wrong := newGoRedis(t, ts.addr, 3, func(o *redis.Options) { o.Password = "nope" })
	err = wrong.Ping(ctx).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGPASS")

	for _, proto := range []int{2, 3} {
		ok := newGoRedis(t, ts.addr, proto, func(o *redis.Options) { o.Password = "s3cret" })
		require.NoError(t, ok.Set(ctx, "k", "v", 0).Err())
		assert.Equal(t, "v", ok.Get(ctx, "k").Val())
	}
}

// TestGoRedisClientName checks the handshake commands clients send.
func TestGoRedisClientName(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	rdb := newGoRedis(t, ts.addr, 3, func(o *redis.Options) { o.ClientName = "app-1" })
	name, err := rdb.ClientGetName(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, "app-1", name)
	list, err := rdb.ClientList(ctx).Result()
	require.NoError(t, err)
	assert.Contains(t, list, "name=app-1")
	assert.Contains(t, list, "lib-name=go-redis")
	id, err := rdb.ClientID(ctx).Result()
	require.NoError(t, err)
	assert.Positive(t, id)
}
