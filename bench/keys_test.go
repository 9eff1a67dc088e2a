package main

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyFormat(t *testing.T) {
	kg, err := newKeyGen("sess:", 37)
	require.NoError(t, err)
	re := regexp.MustCompile(`^sess:[0-9a-f]{32}$`)
	for _, idx := range []uint64{0, 1, 2, 999_999, 1 << 40} {
		k := kg.key(idx)
		assert.Len(t, k, 37)
		assert.Regexp(t, re, k)
		assert.Equal(t, k, kg.key(idx), "deterministic")
	}
	// Pinned: keys must never change between versions, or --no-populate runs
	// and comparisons across versions would silently miss.
	assert.Equal(t, "sess:9ca066f1a4ab2eea48cab1fb7ee5cf46", kg.key(0))

	long, err := newKeyGen("sess:", 42)
	require.NoError(t, err)
	assert.Len(t, long.key(7), 42)
	assert.Equal(t, kg.key(7), long.key(7)[:37], "longer keys extend the same id")

	full, err := newKeyGen("", 64)
	require.NoError(t, err)
	assert.Len(t, full.key(7), 64)
}

func TestKeySizeLimits(t *testing.T) {
	_, err := newKeyGen("sess:", 36)
	assert.ErrorContains(t, err, "need 32..64")
	_, err = newKeyGen("sess:", 70)
	assert.ErrorContains(t, err, "need 32..64")
	_, err = newKeyGen("sess:", 69)
	assert.NoError(t, err)
}

func TestKeysAreDistinct(t *testing.T) {
	kg, _ := newKeyGen("sess:", 37)
	seen := make(map[string]bool, 200_000)
	for i := range uint64(200_000) {
		k := kg.key(i)
		require.False(t, seen[k], "duplicate key at %d", i)
		seen[k] = true
	}
}

func TestKeyIndexRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{37, 42, 69} {
		kg, _ := newKeyGen("sess:", size)
		for range 10_000 {
			idx := rng.Uint64()
			got, ok := kg.index([]byte(kg.key(idx)))
			require.True(t, ok)
			require.Equal(t, idx, got)
		}
	}
	kg, _ := newKeyGen("sess:", 37)
	for _, bad := range []string{
		"", "sess:", "user:9ca066f1a4ab2eea48cab1fb7ee5cf46",
		"sess:9ca066f1a4ab2eea48cab1fb7ee5cf47", // last digit altered
		"sess:9CA066F1A4AB2EEA48CAB1FB7EE5CF46", // upper case
		"sess:9ca066f1a4ab2eea48cab1fb7ee5cf4",  // short
		"sess:zzzzzzzzzzzzzzzz48cab1fb7ee5cf46",
	} {
		_, ok := kg.index([]byte(bad))
		assert.False(t, ok, bad)
	}
}

func TestFmixInverse(t *testing.T) {
	assert.Equal(t, uint64(1), fmixC1*fmixC1Inv)
	assert.Equal(t, uint64(1), fmixC2*fmixC2Inv)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		x := rng.Uint64()
		require.Equal(t, x, unfmix64(fmix64(x)))
	}
}

func TestKeyDigitsLookRandom(t *testing.T) {
	// Each hex digit position is roughly uniform over consecutive indexes.
	kg, _ := newKeyGen("", 32)
	var counts [32][16]int
	const n = 32_000
	for i := range uint64(n) {
		for p, c := range []byte(kg.key(i)) {
			counts[p][hexVal(c)]++
		}
	}
	for p := range counts {
		for d, c := range counts[p] {
			assert.InDelta(t, n/16, c, n/16*0.1, "position %d digit %x", p, d)
		}
	}
}

func hexVal(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c-'a') + 10
}

func TestPayloadPool(t *testing.T) {
	a := newPayloadPool(1, 700)
	b := newPayloadPool(1, 700)
	c := newPayloadPool(2, 700)
	assert.Equal(t, a, b, "deterministic for a seed")
	assert.NotEqual(t, a, c)
	assert.Len(t, a, 700+payloadSlack)
	for _, ch := range a {
		require.Contains(t, payloadAlphabet, string(ch))
	}
	for _, off := range []uint64{0, 1, payloadSlack, payloadSlack + 1, 1 << 60} {
		v := payloadAt(a, 700, off)
		assert.Len(t, v, 700)
	}
	assert.NotEqual(t, payloadAt(a, 700, 0), payloadAt(a, 700, 1))
}
