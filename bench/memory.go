package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// parseInfo parses an INFO reply ("key:value" lines, "# Section" headers).
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// infoInt returns an integer INFO field, or -1 when the server does not
// report it (or INFO fails).
func infoInt(c *conn, section, field string) int64 {
	s, err := c.doString("INFO", section)
	if err != nil {
		return -1
	}
	v, err := strconv.ParseInt(parseInfo(s)[field], 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// serverProc identifies the server process, for RSS readings.
type serverProc struct {
	pid  int
	note string // why RSS is unavailable, or how the pid was found
}

func (p serverProc) ok() bool { return p.pid > 0 }

// findServerProc finds the target's pid (--pid, else INFO server process_id)
// and checks that the process owns the target's listening socket in this
// network namespace, so a server in a container (own pid namespace) or on
// another machine is never confused with a local process.
func findServerProc(c *conn, target string, pidFlag int) serverProc {
	pid, how := pidFlag, "--pid"
	if pid == 0 {
		pid, how = int(infoInt(c, "server", "process_id")), "INFO process_id"
		if pid <= 0 {
			return serverProc{note: "server does not report INFO server process_id (give --pid)"}
		}
	}
	_, portStr, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portStr)
	owns, err := ownsListener(pid, port)
	switch {
	case err != nil:
		return serverProc{note: fmt.Sprintf("pid %d (%s): %v", pid, how, err)}
	case !owns:
		return serverProc{note: fmt.Sprintf("pid %d (%s) does not own a listening socket on port %d here: server not on this machine or in another namespace", pid, how, port)}
	}
	return serverProc{pid: pid, note: fmt.Sprintf("pid %d (%s), verified listening on port %d", pid, how, port)}
}

// ownsListener reports whether process pid holds a TCP socket listening on
// port (per /proc/net/tcp{,6} of this network namespace).
func ownsListener(pid, port int) (bool, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return false, fmt.Errorf("cannot inspect %s: %w", fdDir, err)
	}
	for _, e := range ents {
		if link, err := os.Readlink(fdDir + "/" + e.Name()); err == nil && inodes[link] {
			return true, nil
		}
	}
	return false, nil
}

// procRSS reads VmRSS of pid in bytes.
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line")
}

func (p serverProc) rss() int64 {
	if !p.ok() {
		return -1
	}
	v, err := procRSS(p.pid)
	if err != nil {
		return -1
	}
	return v
}

// memSnapshot is one reading of the server's memory; -1 means unavailable.
type memSnapshot struct {
	UsedMemory    int64 `json:"used_memory"`
	UsedMemoryRSS int64 `json:"used_memory_rss"` // as INFO reports it
	DBSize        int64 `json:"dbsize"`
	ProcessRSS    int64 `json:"process_rss"` // /proc/<pid>/status VmRSS
}

func snapshot(c *conn, p serverProc) memSnapshot {
	s := memSnapshot{UsedMemory: -1, UsedMemoryRSS: -1, DBSize: -1, ProcessRSS: p.rss()}
	if info, err := c.doString("INFO", "memory"); err == nil {
		m := parseInfo(info)
		if v, err := strconv.ParseInt(m["used_memory"], 10, 64); err == nil {
			s.UsedMemory = v
		}
		if v, err := strconv.ParseInt(m["used_memory_rss"], 10, 64); err == nil {
			s.UsedMemoryRSS = v
		}
	}
	if n, err := c.doInt("DBSIZE"); err == nil {
		s.DBSize = n
	}
	return s
}

// errNotEmpty is the refusal to run memory/expiry on a database with data.
type errNotEmpty struct {
	target string
	keys   int64
}

func (e *errNotEmpty) Error() string {
	return fmt.Sprintf("%s holds %d keys in db 0: --workload memory/expiry needs an empty database and will not destroy data; "+
		"empty it yourself or rerun with --flush to FLUSHALL it first (destroys ALL data on the target)", e.target, e.keys)
}

// prepareEmpty checks that db 0 is empty, or FLUSHALLs it with --flush (then
// tries MEMORY PURGE so the allocator's retained pages do not count in the
// "before" RSS). It returns a note of what was done.
func prepareEmpty(c *conn, cfg *config, target string) (string, error) {
	n, err := c.doInt("DBSIZE")
	if err != nil {
		return "", fmt.Errorf("%s: DBSIZE: %w", target, err)
	}
	if !cfg.Flush {
		if n > 0 {
			return "", &errNotEmpty{target: target, keys: n}
		}
		return "database was empty", nil
	}
	if _, err := c.do("FLUSHALL"); err != nil {
		return "", fmt.Errorf("%s: FLUSHALL: %w", target, err)
	}
	note := fmt.Sprintf("FLUSHALL (%d keys were in db 0)", n)
	if _, err := c.do("MEMORY", "PURGE"); err == nil {
		note += ", MEMORY PURGE ok"
	} else {
		note += ", MEMORY PURGE not supported"
	}
	time.Sleep(200 * time.Millisecond) // let the server settle before the "before" reading
	return note, nil
}

type memoryResult struct {
	Target             string      `json:"target"`
	Round              int         `json:"round"`
	Sessions           int64       `json:"sessions"`
	Prepare            string      `json:"prepare"`
	Process            string      `json:"process"`
	Load               *loadResult `json:"load"`
	Before             memSnapshot `json:"before"`
	After              memSnapshot `json:"after"`
	BytesPerSessionRSS float64     `json:"bytes_per_session_rss"`         // ΔRSS / N, -1 if unavailable
	BytesPerSessionMem float64     `json:"bytes_per_session_used_memory"` // Δused_memory / N, -1 if unavailable
	Failure            string      `json:"failure,omitempty"`
}

func perSession(before, after, n int64) float64 {
	if before < 0 || after < 0 || n == 0 {
		return -1
	}
	return float64(after-before) / float64(n)
}

// runMemory loads --keys sessions and reports the memory they take.
func runMemory(ctx context.Context, cfg *config, target string, round int, prog *progress) (*memoryResult, error) {
	res := &memoryResult{Target: target, Round: round, Sessions: cfg.Keys, BytesPerSessionRSS: -1, BytesPerSessionMem: -1}
	c, err := dialConn(ctx, target, cfg.Password)
	if err != nil {
		return res, fmt.Errorf("%s: connect: %w", target, err)
	}
	defer c.close()
	if res.Prepare, err = prepareEmpty(c, cfg, target); err != nil {
		return res, err
	}
	proc := findServerProc(c, target, cfg.PID)
	res.Process = proc.note
	res.Before = snapshot(c, proc)

	kg, _ := newKeyGen(cfg.KeyPrefix, cfg.KeySize)
	spec := loadSpec{n: cfg.Keys, kg: kg, ttl: cfg.TTL, pool: newPayloadPool(cfg.Seed, cfg.ValueSize), size: cfg.ValueSize}
	res.Load, err = loadKeys(ctx, cfg, target, spec, prog, fmt.Sprintf("memory %s: loading", target))
	if err != nil {
		return res, err
	}
	res.After = snapshot(c, proc)
	n := res.Load.Keys
	res.BytesPerSessionRSS = perSession(res.Before.ProcessRSS, res.After.ProcessRSS, n)
	res.BytesPerSessionMem = perSession(res.Before.UsedMemory, res.After.UsedMemory, n)
	return res, nil
}
