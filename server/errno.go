package server

import "syscall"

// syscallEMFILE is the "too many open files" error Accept returns when the
// process is out of descriptors; Serve backs off instead of failing.
func syscallEMFILE() error { return syscall.EMFILE }
