package ttl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIndexDisplacementOverflow(t *testing.T) {
	ix := &dbIndex{ids: make([]uint32, 1024), disp: make([]uint8, 1024)}
	// Every id hashes to the same home: the 257th cannot be placed.
	for id := uint32(1); id <= maxDisp+1; id++ {
		require.Zero(t, ix.insert(id, 0), id)
	}
	require.Equal(t, uint32(maxDisp+2), ix.insert(maxDisp+2, 0))
	for pos := range maxDisp + 1 {
		require.Equal(t, uint8(pos), ix.disp[pos])
		require.Equal(t, pos, ix.findID(0, ix.ids[pos]))
	}
	require.Equal(t, -1, ix.findID(0, 9999))
	// Removing the first shifts the run back.
	ix.removeAt(0)
	require.Equal(t, uint32(2), ix.ids[0])
	require.Zero(t, ix.disp[0])
	require.Zero(t, ix.ids[maxDisp])
}

func TestIndexGrowsPastOverflow(t *testing.T) {
	s := newStore(t, Config{Shards: 1})
	sh := &s.shards[0]
	for i := range 100 {
		set(s, 0, key(i), []byte("v"), 0)
	}
	// Rebuild into a table too small for the entries: resize must keep
	// doubling until they fit.
	sh.mu.Lock()
	ix := &sh.dbs[0]
	sh.resizeLocked(ix, 100, 0)
	require.GreaterOrEqual(t, len(ix.ids), 100)
	err := sh.check()
	sh.mu.Unlock()
	require.NoError(t, err)
}
