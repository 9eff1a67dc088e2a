package server

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkMemberTab verifies the table's invariants against model: every
// entry is reachable from its bucket exactly once, lookups find exactly
// the model's keys, and the accounting matches.
func checkMemberTab(t *testing.T, tab *memberTab[int], model map[string]int) {
	t.Helper()
	require.Equal(t, len(model), tab.len())
	require.Equal(t, len(tab.heads)&(len(tab.heads)-1), 0, "bucket count must be a power of two")
	reached := 0
	bytes := 0
	for b, head := range tab.heads {
		for i := head; i != 0; i = tab.ents[i-1].next {
			e := tab.ents[i-1]
			require.Equal(t, uint32(b), e.hash&uint32(len(tab.heads)-1), "entry %q in the wrong bucket", e.key)
			require.Equal(t, tab.hashOf(e.key), e.hash)
			reached++
			bytes += len(e.key)
		}
	}
	require.Equal(t, len(model), reached, "entries reachable from the buckets")
	require.Equal(t, bytes, tab.keyBytes)
	for k, v := range model {
		i := tab.find(k)
		require.GreaterOrEqual(t, i, 0, "%q not found", k)
		require.Equal(t, v, tab.at(i).val)
		require.Equal(t, i, tab.findBytes([]byte(k)))
	}
}

// TestMemberTabModel runs random inserts and removes against a map.
func TestMemberTabModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := newMemberTab[int](0)
	model := map[string]int{}
	for step := range 20000 {
		k := strconv.Itoa(rng.IntN(600))
		switch {
		case rng.IntN(3) > 0 && step < 15000:
			_, added := tab.insert(k, step)
			_, had := model[k]
			require.Equal(t, !had, added)
			if !had {
				model[k] = step
			}
		default:
			v, ok := tab.remove(k)
			mv, had := model[k]
			require.Equal(t, had, ok)
			if had {
				require.Equal(t, mv, v)
				delete(model, k)
			}
		}
		if step%997 == 0 {
			checkMemberTab(t, tab, model)
		}
	}
	checkMemberTab(t, tab, model)
	assert.LessOrEqual(t, len(tab.heads), max(memberTabMinBuckets, 8*2*tab.len()), "the table shrinks as it empties")
}

// TestMemberTabScanGuarantee checks SSCAN's promise: a member present for
// the whole iteration is returned at least once, while other members come
// and go between calls and the table grows and shrinks.
func TestMemberTabScanGuarantee(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		tab := newMemberTab[int](0)
		stable := map[string]bool{}
		for i := range 50 + rng.IntN(200) {
			k := "stable:" + strconv.Itoa(i)
			tab.insert(k, 0)
			stable[k] = true
		}
		var churn []string
		seen := map[string]int{}
		cursor := uint64(0)
		for calls := 0; ; calls++ {
			require.Less(t, calls, 100000, "round %d: the cursor never came back to 0", round)
			cursor = scanTab(tab, cursor, 1+rng.IntN(20), func(e *memberEnt[int]) { seen[e.key]++ })
			if cursor == 0 {
				break
			}
			// Grow a lot or shrink back, between calls.
			if rng.IntN(2) == 0 {
				for range rng.IntN(300) {
					k := "churn:" + strconv.Itoa(rng.Int())
					tab.insert(k, 0)
					churn = append(churn, k)
				}
			} else {
				for len(churn) > 0 && rng.IntN(10) > 0 {
					tab.remove(churn[len(churn)-1])
					churn = churn[:len(churn)-1]
				}
			}
		}
		for k := range stable {
			require.Positive(t, seen[k], "round %d: %q never returned", round, k)
		}
	}
}

func TestSetEncodings(t *testing.T) {
	s := newSetFor([]byte("5"))
	require.Nil(t, s.tab, "an integer starts an intset")
	for _, m := range []string{"5", "-3", "10", "9223372036854775807", "-9223372036854775808"} {
		require.True(t, s.add([]byte(m)))
	}
	require.False(t, s.add([]byte("10")))
	require.Nil(t, s.tab)
	assert.Equal(t, []string{"-9223372036854775808", "-3", "5", "10", "9223372036854775807"}, s.members(), "intsets are sorted")
	assert.True(t, s.has([]byte("-3")))
	assert.False(t, s.has([]byte("-03")), "not the canonical text of -3")
	assert.False(t, s.has([]byte("x")))
	assert.False(t, s.remove([]byte("+5")))
	assert.True(t, s.remove([]byte("5")))

	// A non-canonical integer is a string: the set converts for good.
	require.True(t, s.add([]byte("007")))
	require.NotNil(t, s.tab)
	assert.True(t, s.has([]byte("-3")))
	assert.True(t, s.remove([]byte("007")))
	assert.NotNil(t, s.tab, "no conversion back, as in Redis")
	assert.ElementsMatch(t, []string{"-9223372036854775808", "-3", "10", "9223372036854775807"}, s.members())

	// Past 512 integers the set becomes a hash table.
	s = newSetFor([]byte("0"))
	for i := range setMaxIntsetEntries {
		require.True(t, s.add([]byte(strconv.Itoa(i))))
	}
	require.Nil(t, s.tab)
	require.True(t, s.add([]byte("512")))
	require.NotNil(t, s.tab)
	assert.Equal(t, 513, s.card())
	for i := range 513 {
		require.True(t, s.has([]byte(strconv.Itoa(i))))
	}

	assert.NotNil(t, newSetFor([]byte("x")).tab, "a string starts a hash table")
}

func TestSetCloneIsIndependent(t *testing.T) {
	for _, first := range []string{"1", "a"} {
		s := newSetFor([]byte(first))
		s.add([]byte(first))
		s.add([]byte("2"))
		c := s.Clone().(*setObj)
		c.add([]byte("3"))
		s.remove([]byte("2"))
		assert.ElementsMatch(t, []string{first}, s.members())
		assert.ElementsMatch(t, []string{first, "2", "3"}, c.members())
	}
}

func TestSetCodec(t *testing.T) {
	for _, members := range [][]string{
		{"1"}, {"-5", "3", "9223372036854775807", "-9223372036854775808"},
		{"a"}, {"", "\x00", "with space", "007", strconv.Itoa(42)},
	} {
		s := newSetFor([]byte(members[0]))
		for _, m := range members {
			s.add([]byte(m))
		}
		b := s.appendBinary([]byte("prefix"))
		require.Equal(t, "prefix", string(b[:6]), "appends")
		got, err := decodeSet(b[6:])
		require.NoError(t, err)
		assert.ElementsMatch(t, members, got.members())
		assert.Equal(t, s.tab == nil, got.tab == nil, "encoding kept")
		assert.Equal(t, b[6:], got.appendBinary(nil), "re-encoding is identical")
		obj, err := decodeObject(kindSet, b[6:], 0)
		require.NoError(t, err)
		assert.IsType(t, &setObj{}, obj)
	}
	for name, b := range map[string][]byte{
		"empty input":       {},
		"bad version":       {2, 0, 1, 2},
		"unknown encoding":  {1, 7, 1, 2},
		"no members":        {1, 1, 0},
		"truncated count":   {1, 1, 0x80},
		"count too big":     {1, 1, 5, 0},
		"truncated member":  {1, 1, 1, 5, 'a'},
		"duplicate member":  {1, 1, 2, 1, 'a', 1, 'a'},
		"trailing bytes":    {1, 1, 1, 1, 'a', 'z'},
		"unsorted integers": {1, 0, 2, 4, 2},
		"equal integers":    {1, 0, 2, 2, 2},
		"truncated integer": {1, 0, 1, 0x80},
		"overlong integer":  {1, 0, 1, 0xc2, 0x00},
		"overlong length":   {1, 1, 1, 0x81, 0x00, 'a'},
	} {
		_, err := decodeSet(b)
		require.ErrorIs(t, err, errMalformedSet, name)
		obj, err := decodeObject(kindSet, b, 0)
		require.Error(t, err, name)
		// require.Nil would pass a typed nil (*setObj)(nil) too.
		require.True(t, obj == nil, "%s: a typed nil would look like a value", name)
	}
}

// FuzzSetCodec decodes arbitrary bytes: never a panic, and whatever
// decodes re-encodes to the same bytes.
func FuzzSetCodec(f *testing.F) {
	for _, seed := range [][]string{{"1", "2", "3"}, {"a", "b", ""}, {"-9223372036854775808"}} {
		s := newSetFor([]byte(seed[0]))
		for _, m := range seed {
			s.add([]byte(m))
		}
		f.Add(s.appendBinary(nil))
	}
	f.Add([]byte{1, 1, 2, 1, 'a', 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSet(b)
		if err != nil {
			require.Nil(t, s)
			return
		}
		require.Positive(t, s.card())
		require.Equal(t, b, s.appendBinary(nil))
	})
}

// memoryDelta measures the live heap that build's result holds.
func memoryDelta(build func() any) (int, any) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // the second one empties sync.Pool victim caches
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int(after.HeapAlloc) - int(before.HeapAlloc), v
}

// TestSetMemoryUsage checks that MemoryUsage, which feeds INFO's figures,
// is within 25% of the heap the set really holds.
func TestSetMemoryUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		member func(i int) string
		n      int
	}{
		{"intset", func(i int) string { return strconv.Itoa(i * 3) }, 500},
		{"strings", func(i int) string { return fmt.Sprintf("session:%016x", i) }, 20000},
		{"long strings", func(i int) string { return fmt.Sprintf("tag:%0100d", i) }, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := make([][]byte, tc.n)
			for i := range members {
				members[i] = []byte(tc.member(i))
			}
			measured, v := memoryDelta(func() any {
				s := newSetFor(members[0])
				for _, m := range members {
					s.add(m)
				}
				return s
			})
			runtime.KeepAlive(members) // live before and after: not counted
			s := v.(*setObj)
			est := s.MemoryUsage()
			t.Logf("%d members: MemoryUsage %d, measured %d", s.card(), est, measured)
			assert.InEpsilon(t, float64(measured), float64(est), 0.25)
		})
	}
}

func TestDistinctRandom(t *testing.T) {
	s := newSetFor([]byte("a"))
	for i := range 100 {
		s.add([]byte("m" + strconv.Itoa(i)))
	}
	for _, n := range []int{1, 10, 33, 34, 50, 99, 100} {
		got := distinctRandom(s, n)
		require.Len(t, got, n)
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		require.Len(t, slices.Compact(sorted), n, "distinct")
		for _, m := range got {
			require.True(t, s.hasString(m))
		}
	}
}
