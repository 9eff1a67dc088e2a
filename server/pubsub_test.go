package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// TestPubSubScriptsPerIOModel plays the pub/sub, transaction and keyspace
// scripts against redis-server and sessiond under each transport: message
// delivery from other goroutines differs between them.
func TestPubSubScriptsPerIOModel(t *testing.T) {
	scripts := redistest.LoadScripts(t, "testdata/diff")
	rd := redistest.StartRedis(t)
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		for _, name := range []string{"pubsub", "pubsub_resp3", "keyspace", "multi", "multi_resp3"} {
			t.Run(name, func(t *testing.T) {
				redistest.RunScript(t, scripts[name], rd.Addr(), ts.addr)
			})
		}
	})
}

// TestGoRedisPubSub subscribes with go-redis over RESP2 and RESP3 and
// receives what another client publishes, in order.
func TestGoRedisPubSub(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		for _, proto := range []int{2, 3} {
			t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
				ctx := context.Background()
				ps := subscribeGoRedis(t, ts.addr, proto, true, "sess:*")
				pub := newGoRedis(t, ts.addr, proto)
				const n = 500
				for i := range n {
					got, err := pub.Publish(ctx, "sess:events", strconv.Itoa(i)).Result()
					require.NoError(t, err)
					require.Equal(t, int64(1), got)
				}
				for i := range n {
					m, err := ps.ReceiveMessage(ctx)
					require.NoError(t, err)
					assert.Equal(t, "sess:*", m.Pattern)
					assert.Equal(t, "sess:events", m.Channel)
					require.Equal(t, strconv.Itoa(i), m.Payload)
				}
				require.NoError(t, ps.PUnsubscribe(ctx, "sess:*"))
				assert.Eventually(t, func() bool { return pub.PubSubNumPat(ctx).Val() == 0 },
					5*time.Second, time.Millisecond)
			})
		}
	})
}

// TestSlowSubscriberIsCutOff: a subscriber that never reads is
// disconnected once its unsent messages pass the pub/sub output limit, so
// it cannot grow the server's memory; the publisher and others go on.
func TestSlowSubscriberIsCutOff(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, ClientOutputBufferLimit: "pubsub 1mb 0 0"})
		slow, err := net.Dial("tcp", ts.addr)
		require.NoError(t, err)
		defer slow.Close()
		_, err = slow.Write(redistest.EncodeCommand("SUBSCRIBE", "firehose"))
		require.NoError(t, err)
		pub := redistest.Dial(t, ts.addr)
		require.Eventually(t, func() bool {
			return pub.DoString("PUBSUB", "NUMSUB", "firehose") == "*2\r\n$8\r\nfirehose\r\n:1\r\n"
		}, 5*time.Second, 5*time.Millisecond)
		payload := string(make([]byte, 64<<10))
		sent := 0
		for pub.DoString("PUBSUB", "NUMSUB", "firehose") != "*2\r\n$8\r\nfirehose\r\n:0\r\n" {
			pub.DoString("PUBLISH", "firehose", payload)
			sent += len(payload)
			require.Less(t, sent, 64<<20, "the subscriber was never cut off")
		}
		assert.Greater(t, sent, 1<<20)
		assert.Equal(t, "+PONG\r\n", pub.DoString("PING"))
		// The slow subscriber finds its connection closed after the
		// messages that fit.
		require.NoError(t, slow.SetReadDeadline(time.Now().Add(5*time.Second)))
		buf := make([]byte, 1<<16)
		total := 0
		for {
			n, err := slow.Read(buf)
			total += n
			if err != nil {
				t.Logf("read %d bytes then %v", total, err)
				var ne net.Error
				require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection not closed: %v", err)
				break
			}
		}
	})
}

// TestExpiredEventsFromTheWheel: with notify-keyspace-events Ex, every key
// that expires is announced on __keyevent@0__:expired by the store's expiry
// goroutine, without anyone reading the keys, soon after its deadline.
func TestExpiredEventsFromTheWheel(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model, NotifyKeyspaceEvents: "Ex"})
		ctx := context.Background()
		ps := subscribeGoRedis(t, ts.addr, 3, false, "__keyevent@0__:expired")
		rdb := newGoRedis(t, ts.addr, 2)
		const n = 2000
		deadline := time.Now().Add(300 * time.Millisecond).UnixMilli()
		pipe := rdb.Pipeline()
		for i := range n {
			pipe.Set(ctx, fmt.Sprintf("sess:%d", i), "v", 0)
			pipe.PExpireAt(ctx, fmt.Sprintf("sess:%d", i), time.UnixMilli(deadline))
		}
		_, err := pipe.Exec(ctx)
		require.NoError(t, err)

		var got []string
		var lateMax time.Duration
		for len(got) < n {
			m, err := ps.ReceiveMessage(ctx)
			require.NoError(t, err)
			late := time.Since(time.UnixMilli(deadline))
			require.GreaterOrEqual(t, late, time.Duration(0), "announced before its deadline")
			lateMax = max(lateMax, late)
			got = append(got, m.Payload)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		assert.Len(t, got, n, "every key announced exactly once")
		// Generous on a loaded CI machine; the benchmark measures it.
		assert.Less(t, lateMax, 2*time.Second)
		t.Logf("last expired event %v after the deadline", lateMax)
		assert.Equal(t, int64(0), rdb.DBSize(ctx).Val())
	})
}

// TestExecIsAtomic: while transactions write two keys with the same value,
// a reader never sees them differ (MGET is atomic; EXEC must be too).
func TestExecIsAtomic(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, model string) {
		ts := startServer(t, Config{IOModel: model})
		ctx := context.Background()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 2 {
			rdb := newGoRedis(t, ts.addr, 2)
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					v := fmt.Sprintf("%d-%d", w, i)
					_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, "a", v, 0)
						p.Get(ctx, "a")
						p.Set(ctx, "b", v, 0)
						return nil
					})
					if !assert.NoError(t, err) {
						return
					}
				}
			})
		}
		reader := newGoRedis(t, ts.addr, 2)
		for range 2000 {
			vals, err := reader.MGet(ctx, "a", "b").Result()
			require.NoError(t, err)
			require.Equal(t, vals[0], vals[1], "a transaction was seen half done")
		}
		close(stop)
		wg.Wait()
	})
}

// TestWatchRetryCounter: the optimistic-locking loop clients build on
// WATCH loses no increment under contention.
func TestWatchRetryCounter(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for range workers {
		rdb := newGoRedis(t, ts.addr, 2)
		wg.Go(func() {
			for range each {
				for {
					err := rdb.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "counter").Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "counter", n+1, 0)
							return nil
						})
						return err
					}, "counter")
					if err == redis.TxFailedErr {
						continue
					}
					assert.NoError(t, err)
					break
				}
			}
		})
	}
	wg.Wait()
	rdb := newGoRedis(t, ts.addr, 2)
	assert.Equal(t, strconv.Itoa(workers*each), rdb.Get(ctx, "counter").Val())
}

// TestHashFieldExpiryEvents: a field whose TTL passes is announced as
// hexpired by the store's expiry goroutine, and the hash's last field
// going takes the key with it (del), as in Redis 7.4.
func TestHashFieldExpiryEvents(t *testing.T) {
	ts := startServer(t, Config{NotifyKeyspaceEvents: "Eghx"})
	ctx := context.Background()
	ps := subscribeGoRedis(t, ts.addr, 3, true, "__keyevent@0__:*")
	rdb := newGoRedis(t, ts.addr, 2)
	require.NoError(t, rdb.HSet(ctx, "idx", "a", "1", "b", "2").Err())
	require.NoError(t, rdb.Do(ctx, "HPEXPIRE", "idx", 30, "FIELDS", 1, "a").Err())
	require.NoError(t, rdb.Do(ctx, "HPEXPIRE", "idx", 60, "FIELDS", 1, "b").Err())
	var events []string
	for {
		m, err := ps.ReceiveMessage(ctx)
		require.NoError(t, err)
		require.Equal(t, "idx", m.Payload)
		events = append(events, m.Channel[len("__keyevent@0__:"):])
		if events[len(events)-1] == "del" {
			break
		}
	}
	assert.Equal(t, []string{"hset", "hexpire", "hexpire", "hexpired", "hexpired", "del"}, events)
	assert.Equal(t, int64(0), rdb.Exists(ctx, "idx").Val())
}
