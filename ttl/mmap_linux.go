//go:build linux

package ttl

import (
	"fmt"
	"syscall"
)

// mapMem returns n bytes of zeroed, private, anonymous memory outside the Go
// heap. The kernel backs pages only when they are first written.
func mapMem(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(fmt.Sprintf("ttl: mmap of %d bytes: %v", n, err))
	}
	return b
}

// unmapMem returns memory obtained from mapMem to the operating system. b
// must be the slice mapMem returned.
func unmapMem(b []byte) {
	if err := syscall.Munmap(b); err != nil {
		panic(fmt.Sprintf("ttl: munmap of %d bytes: %v", len(b), err))
	}
}
