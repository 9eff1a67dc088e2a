//go:build !linux

package ttl

// mapMem returns n zeroed bytes. Off Linux the arena lives on the Go heap
// (as pointer-free byte slices the garbage collector does not scan).
func mapMem(n int) []byte { return make([]byte, n) }

// unmapMem drops b; the garbage collector reclaims it.
func unmapMem(b []byte) {}
