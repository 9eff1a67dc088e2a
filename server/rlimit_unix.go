//go:build unix

package server

import "syscall"

// FileLimit is what FitOpenFiles found and did.
type FileLimit struct {
	// Was and Now are the soft open-file limit before and after.
	Was, Now uint64
	// MaxClients is the maxclients the limit allows: the one asked for,
	// or less when the limit could not be raised enough.
	MaxClients int
}

// FitOpenFiles makes room for maxclients clients in the process's open-file
// limit (RLIMIT_NOFILE), as Redis does at startup: it raises the soft limit
// to maxclients plus a reserve, up to the hard limit (or beyond it when the
// process may raise that), and otherwise reports the maxclients that fit.
// It changes a process-wide setting; the caller decides when.
func FitOpenFiles(maxclients int) (FileLimit, error) {
	need := uint64(maxclients) + reservedFDs
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return FileLimit{MaxClients: maxclients}, err
	}
	cur, hard := uint64(lim.Cur), uint64(lim.Max)
	fl := FileLimit{Was: cur, Now: cur, MaxClients: maxclients}
	if cur >= need {
		return fl, nil
	}
	try := func(soft, max uint64) bool {
		l := lim
		setTo(&l.Cur, soft)
		setTo(&l.Max, max)
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) == nil
	}
	switch {
	case need > hard && try(need, need): // privileged: raise the hard limit too
		fl.Now = need
	case try(min(need, hard), hard):
		fl.Now = min(need, hard)
	}
	if fl.Now < need {
		fl.MaxClients = max(int(fl.Now)-reservedFDs, 0)
	}
	return fl, nil
}

// setTo stores v in a limit field, whatever its integer type on this
// platform.
func setTo[T int64 | uint64](p *T, v uint64) { *p = T(v) }
