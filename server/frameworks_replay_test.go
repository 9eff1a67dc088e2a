package server

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiond/sessiond/internal/redistest"
)

// Spring Session and ASP.NET Core cannot be installed here (no JVM, no
// .NET), so their command sequences, taken from their sources (cited in
// each script and below), are replayed: the request/response part as
// differential scripts under testdata/frameworks/replay (the format of
// testdata/diff, see its README), the pub/sub part in Go with go-redis.

// scriptCommands returns the command names a differential script sends.
func scriptCommands(t *testing.T, script string) []string {
	t.Helper()
	steps, err := redistest.ParseScript(script)
	require.NoError(t, err)
	var names []string
	for _, st := range steps {
		if !st.Raw && len(st.Args) > 0 {
			names = append(names, strings.ToUpper(st.Args[0]))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestFrameworkReplayScripts plays each framework replay script against two
// redis-servers (the script must be deterministic: case "redis") and then
// against redis-server and sessiond (case "sessiond", skipped while
// sessiond lacks one of the script's commands).
func TestFrameworkReplayScripts(t *testing.T) {
	t.Parallel()
	scripts := redistest.LoadScripts(t, filepath.Join("testdata", "frameworks", "replay"))
	require.NotEmpty(t, scripts)
	names := make([]string, 0, len(scripts))
	for name := range scripts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			script := scripts[name]
			t.Run("redis", func(t *testing.T) {
				a, b := redistest.StartRedis(t), redistest.StartRedis(t)
				redistest.RunScript(t, script, a.Addr(), b.Addr())
			})
			t.Run("sessiond", func(t *testing.T) {
				ts := startServer(t, Config{})
				rd := redistest.StartRedis(t)
				// Probes Redis itself does not know (SENTINEL on a standalone
				// server) are not needed from sessiond either.
				cmds := scriptCommands(t, script)
				unknown := missingCommands(t, rd.Addr(), cmds)
				cmds = slices.DeleteFunc(cmds, func(c string) bool { return slices.Contains(unknown, c) })
				if missing := missingCommands(t, ts.addr, cmds); len(missing) > 0 {
					t.Fatalf("sessiond lacks %s, which the framework sent to redis-server",
						strings.Join(missing, ", "))
				}
				redistest.RunScript(t, script, rd.Addr(), ts.addr)
			})
		})
	}
}

// TestFrameworkASPNetProbes checks the fields StackExchange.Redis reads from
// the INFO replies of its connection probes (ServerEndPoint.AutoConfigure
// and ResultProcessor.AutoConfigureProcessor in StackExchange.Redis): the
// replication role and the server version, which enables its features.
func TestFrameworkASPNetProbes(t *testing.T) {
	t.Parallel()
	forEachAddr(t, nil, func(t *testing.T, _, addr string) {
		c := redistest.Dial(t, addr)
		repl, err := redistest.ParseReply(c.Do("INFO", "replication"))
		require.NoError(t, err)
		assert.Contains(t, string(repl.Data), "role:master\r\n")
		srv, err := redistest.ParseReply(c.Do("INFO", "server"))
		require.NoError(t, err)
		assert.Regexp(t, `\r\nredis_version:[67]\.\d+\.\d+\r\n`, string(srv.Data))
		assert.Contains(t, string(srv.Data), "redis_mode:standalone\r\n")
	})
}

// forEachAddr runs f against a fresh redis-server and then a fresh
// sessiond, skipping the sessiond case while it lacks one of needs.
func forEachAddr(t *testing.T, needs []string, f func(t *testing.T, target, addr string)) {
	t.Run("redis", func(t *testing.T) { f(t, "redis", redistest.StartRedis(t).Addr()) })
	t.Run("sessiond", func(t *testing.T) {
		ts := startServer(t, Config{})
		if missing := missingCommands(t, ts.addr, needs); len(missing) > 0 {
			t.Fatalf("sessiond lacks %s, which the framework sent to redis-server",
				strings.Join(missing, ", "))
		}
		f(t, "sessiond", ts.addr)
	})
}

// springIndexed replays what Spring Session's indexed repository sends,
// from spring-projects/spring-session,
// spring-session-data-redis/src/main/java/org/springframework/session/data/redis/:
// RedisIndexedSessionRepository.java (createSession/saveDelta, getSession,
// deleteById, onMessage, cleanupPrincipalIndex) and
// RedisSessionExpirationPolicy.java (onExpirationUpdated, onDelete,
// cleanExpiredSessions). Values are plain strings here instead of
// JDK-serialized bytes (testdata/frameworks/replay/spring_indexed.txt has
// those); times are real, in milliseconds.
type springIndexed struct {
	t   *testing.T
	rdb *redis.Client
}

const (
	springNS            = "spring:session:"
	springPrincipal     = springNS + "index:org.springframework.session.FindByIndexNameSessionRepository.PRINCIPAL_NAME_INDEX_NAME:"
	springPrincipalAttr = "sessionAttr:org.springframework.session.FindByIndexNameSessionRepository.PRINCIPAL_NAME_INDEX_NAME"
)

func springKey(id string) string       { return springNS + "sessions:" + id }
func springShadowKey(id string) string { return springNS + "sessions:expires:" + id }
func springBucket(ms int64) string     { return springNS + "expirations:" + strconv.FormatInt(ms, 10) }
func roundUpToNextMinute(ms int64) int64 {
	return (ms/60000 + 1) * 60000
}

// configure is ConfigureNotifyKeyspaceEventsAction: add E, g and x.
func (s *springIndexed) configure() {
	ctx := s.t.Context()
	cur, err := s.rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	require.NoError(s.t, err)
	opts := cur["notify-keyspace-events"]
	want := opts
	for _, f := range []string{"E", "g", "x"} {
		if !strings.Contains(want, f) && (f == "E" || !strings.Contains(want, "A")) {
			want += f
		}
	}
	if want != opts {
		require.NoError(s.t, s.rdb.ConfigSet(ctx, "notify-keyspace-events", want).Err())
	}
}

// create saves a new session of user with the given maxInactiveInterval,
// as saveDelta and onExpirationUpdated do for a new session.
func (s *springIndexed) create(id, user string, maxInactive time.Duration) {
	ctx := s.t.Context()
	now := time.Now().UnixMilli()
	secs := int64(maxInactive / time.Second)
	delta := []any{
		"creationTime", now, "maxInactiveInterval", secs, "lastAccessedTime", now,
		springPrincipalAttr, user,
	}
	require.NoError(s.t, s.rdb.HMSet(ctx, springKey(id), delta...).Err())
	require.NoError(s.t, s.rdb.SAdd(ctx, springPrincipal+user, id).Err())
	require.NoError(s.t, s.rdb.Publish(ctx, springNS+"event:0:created:"+id, fmt.Sprint(delta)).Err())
	bucket := springBucket(roundUpToNextMinute(now + secs*1000))
	require.NoError(s.t, s.rdb.SAdd(ctx, bucket, "expires:"+id).Err())
	fiveAfter := maxInactive + 5*time.Minute
	require.NoError(s.t, s.rdb.PExpire(ctx, bucket, fiveAfter).Err())
	require.NoError(s.t, s.rdb.Append(ctx, springShadowKey(id), "").Err())
	require.NoError(s.t, s.rdb.PExpire(ctx, springShadowKey(id), maxInactive).Err())
	require.NoError(s.t, s.rdb.PExpire(ctx, springKey(id), fiveAfter).Err())
}

// find is findById: nil when the hash is missing or the session expired.
func (s *springIndexed) find(id string, allowExpired bool) map[string]string {
	entries, err := s.rdb.HGetAll(s.t.Context(), springKey(id)).Result()
	require.NoError(s.t, err)
	if len(entries) == 0 {
		return nil
	}
	last, err1 := strconv.ParseInt(entries["lastAccessedTime"], 10, 64)
	maxInactive, err2 := strconv.ParseInt(entries["maxInactiveInterval"], 10, 64)
	require.NoError(s.t, err1)
	require.NoError(s.t, err2)
	if !allowExpired && maxInactive >= 0 && time.Now().UnixMilli() >= last+maxInactive*1000 {
		return nil
	}
	return entries
}

// destroyed is onMessage for a del or expired event of a shadow key: load
// the session (expired or not) and drop it from the principal index. It
// returns the session's user.
func (s *springIndexed) destroyed(shadowKey string) string {
	id := shadowKey[strings.LastIndexByte(shadowKey, ':')+1:]
	sess := s.find(id, true)
	require.NotNil(s.t, sess, "Unable to publish SessionDestroyedEvent for session %s", id)
	user := sess[springPrincipalAttr]
	require.NoError(s.t, s.rdb.SRem(s.t.Context(), springPrincipal+user, id).Err())
	return user
}

// TestFrameworkSpringIndexedEvents replays the event side of Spring
// Session's indexed repository: it configures keyspace events, subscribes
// as RedisMessageListenerContainer does (SUBSCRIBE __keyevent@0__:del
// __keyevent@0__:expired, PSUBSCRIBE spring:session:event:0:created:*),
// and checks the three events: created (its own PUBLISH), deleted (DEL of
// the shadow key at logout) and expired (the shadow key's deadline). On
// sessiond the expired event must come from the server on time, within
// springExpiredLateness of the deadline, with nothing touching the key;
// Redis 7.0 finds expired keys by sampling, so there the replay also runs
// Spring's cleanup task (EXISTS of the due shadow keys) as Spring would.
func TestFrameworkSpringIndexedEvents(t *testing.T) {
	t.Parallel()
	needs := []string{"APPEND", "CONFIG", "DEL", "HGETALL", "HMSET", "PEXPIRE", "PSUBSCRIBE",
		"PUBLISH", "SADD", "SMEMBERS", "SREM", "SUBSCRIBE"}
	forEachAddr(t, needs, func(t *testing.T, target, addr string) {
		ctx := t.Context()
		rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
		defer rdb.Close()
		repo := &springIndexed{t: t, rdb: rdb}
		repo.configure()

		sub := rdb.Subscribe(ctx, "__keyevent@0__:del", "__keyevent@0__:expired")
		defer sub.Close()
		require.NoError(t, sub.PSubscribe(ctx, springNS+"event:0:created:*"))
		for range 3 { // the subscription confirmations
			_, err := sub.Receive(ctx)
			require.NoError(t, err)
		}
		msgs := sub.Channel(redis.WithChannelSize(64))
		// next returns the next message onMessage acts on: like Spring, it
		// ignores del and expired events of other keys (SREM of a set's
		// last member deletes the set, for one).
		next := func(within time.Duration) *redis.Message {
			t.Helper()
			timeout := time.After(within)
			for {
				select {
				case m := <-msgs:
					if m.Pattern == "" && !strings.HasPrefix(m.Payload, springNS+"sessions:expires:") {
						continue
					}
					return m
				case <-timeout:
					return nil
				}
			}
		}

		// Created: the repository's own PUBLISH, received on the pattern.
		repo.create("s-logout", "ana", 30*time.Minute)
		m := next(5 * time.Second)
		require.NotNil(t, m, "no session created event")
		assert.Equal(t, springNS+"event:0:created:*", m.Pattern)
		assert.Equal(t, springNS+"event:0:created:s-logout", m.Channel)
		assert.Equal(t, []string{"s-logout"}, rdb.SMembers(ctx, springPrincipal+"ana").Val())

		// Deleted: logout (deleteById) deletes the shadow key, and the del
		// event is the SessionDeletedEvent.
		require.NotNil(t, repo.find("s-logout", false))
		require.NoError(t, rdb.SRem(ctx, springPrincipal+"ana", "s-logout").Err())
		require.NoError(t, rdb.Del(ctx, springShadowKey("s-logout")).Err())
		m = next(5 * time.Second)
		require.NotNil(t, m, "no del event")
		assert.Equal(t, "__keyevent@0__:del", m.Channel)
		assert.Equal(t, springShadowKey("s-logout"), m.Payload)

		// Expired: a session with maxInactiveInterval 1 s.
		repo.create("s-idle", "bob", time.Second)
		deadline := time.Now().Add(time.Second) // PEXPIRE was sent after this
		m = next(5 * time.Second)
		require.NotNil(t, m, "no session created event")
		require.Equal(t, springNS+"event:0:created:s-idle", m.Channel)
		require.NotNil(t, repo.find("s-idle", false), "a live session is not served")

		var expired *redis.Message
		if target == "sessiond" {
			expired = next(time.Until(deadline) + springExpiredLateness)
			require.NotNil(t, expired, "no expired event within %v of the deadline", springExpiredLateness)
		} else {
			expired = next(time.Until(deadline) + 500*time.Millisecond)
			if expired == nil {
				// cleanExpiredSessions: touch the due shadow keys.
				assert.Zero(t, rdb.Exists(ctx, springShadowKey("s-idle")).Val())
				expired = next(5 * time.Second)
				require.NotNil(t, expired, "no expired event after the cleanup touched the key")
			}
		}
		t.Logf("expired event %v after the deadline", time.Since(deadline).Round(time.Millisecond))
		assert.Equal(t, "__keyevent@0__:expired", expired.Channel)
		assert.Equal(t, springShadowKey("s-idle"), expired.Payload)
		assert.Equal(t, "bob", repo.destroyed(expired.Payload))
		assert.Empty(t, rdb.SMembers(ctx, springPrincipal+"bob").Val())
		// The hash outlives the deadline by 5 minutes, but is not served.
		assert.Equal(t, int64(1), rdb.Exists(ctx, springKey("s-idle")).Val())
		assert.Nil(t, repo.find("s-idle", false), "an expired session was served")
		assert.Nil(t, next(100*time.Millisecond), "an unexpected event")
	})
}

// springExpiredLateness bounds the time from a key's deadline to its
// expired event on sessiond. The issue asks for 100 ms at p99 across
// 100,000 sessions; one key on an idle server should do better, and the
// rest of the bound absorbs a loaded CI machine (2 cores, -race).
const springExpiredLateness = 200 * time.Millisecond
