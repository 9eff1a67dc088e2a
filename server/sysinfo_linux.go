package server

import "syscall"

// totalSystemMemory returns the machine's RAM in bytes (INFO memory).
func totalSystemMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}
