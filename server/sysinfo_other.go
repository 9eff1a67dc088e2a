//go:build !linux

package server

// totalSystemMemory is unknown off Linux; INFO reports 0, as Redis does
// where it cannot tell.
func totalSystemMemory() int64 { return 0 }
