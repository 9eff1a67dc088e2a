package persist

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestLowerThreadPriority(t *testing.T) {
	done := make(chan struct{})
	var policy uint32
	var err error
	go func() { // its thread ends with it: never unlocked
		defer close(done)
		runtime.LockOSThread()
		if err = lowerThreadPriority(); err != nil {
			return
		}
		var a *unix.SchedAttr
		if a, err = unix.SchedGetAttr(0, 0); err == nil {
			policy = a.Policy
		}
	}()
	<-done
	require.NoError(t, err)
	assert.Equal(t, uint32(unix.SCHED_IDLE), policy)
	a, err := unix.SchedGetAttr(0, 0)
	require.NoError(t, err)
	assert.NotEqual(t, uint32(unix.SCHED_IDLE), a.Policy, "only the writer's thread")
}
