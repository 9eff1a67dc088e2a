package ttl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCaptureShardSeesEveryLiveEntryOnce(t *testing.T) {
	s := newStore(t, Config{Shards: 4, Databases: 3})
	want := map[string]int64{}
	for i := range 1000 {
		db := i % 3
		dl := int64(0)
		if i%2 == 0 {
			dl = Now() + 3_600_000 + int64(i)
		}
		set(s, db, key(i), value(i, i%50), dl)
		want[string(rune('0'+db))+string(key(i))] = dl
	}
	// Deleted entries are not captured.
	tx := s.Lock(key(1))
	tx.Delete(1, key(1))
	tx.Unlock()
	delete(want, "1"+string(key(1)))
	tx = s.Lock([]byte("obj"))
	tx.SetObject(0, []byte("obj"), 7, captureObj{n: 10}, 0)
	tx.Unlock()
	want["0obj"] = 0

	got := map[string]int64{}
	require.Equal(t, 4, s.Shards())
	for i := range s.Shards() {
		for cursor := uint64(0); ; {
			cursor = s.CaptureShard(i, cursor, 7, func(db int, k []byte, e Entry) {
				name := string(rune('0'+db)) + string(k)
				_, dup := got[name]
				assert.False(t, dup, "captured twice: %s", name)
				got[name] = e.Deadline
				if string(k) == "obj" {
					assert.Equal(t, Kind(7), e.Kind)
					assert.Equal(t, captureObj{n: 10}, e.Obj)
				} else {
					assert.NotNil(t, e.Blob)
				}
			})
			if cursor == 0 {
				break
			}
		}
	}
	assert.Equal(t, want, got)
}

func TestAddExpiredCounts(t *testing.T) {
	s := newStore(t, Config{})
	s.AddExpired(5)
	assert.Equal(t, uint64(5), s.Stats().Expired)
}

type captureObj struct{ n int }

func (o captureObj) MemoryUsage() int { return o.n }
