package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// On a small machine the load generator shares the CPUs with the server, and
// anything else running skews the figures. cpuSampler accounts, over a
// measured window, for the CPU time of the server process, of bench itself
// and of everything else (from /proc), so a contaminated run is visible.

// clkTck is USER_HZ, the unit of /proc CPU times (100 on Linux everywhere).
const clkTck = 100

type cpuUsage struct {
	ServerCores float64 `json:"server_cores"` // -1: server process unknown
	BenchCores  float64 `json:"bench_cores"`
	IRQCores    float64 `json:"irq_cores"`   // interrupt/softirq time (mostly the loopback traffic itself)
	OtherCores  float64 `json:"other_cores"` // every other process on the machine
	CPUs        int     `json:"cpus"`
	LoadAvg     string  `json:"loadavg"` // /proc/loadavg at the end
}

type cpuSampler struct {
	pid          int // server; 0 if unknown
	t0           time.Time
	busy0, irq0  int64
	self0, serv0 int64
	ok           bool
}

func startCPU(serverPID int) *cpuSampler {
	s := &cpuSampler{pid: serverPID, t0: time.Now()}
	var err error
	if s.busy0, s.irq0, err = machineBusyTicks(); err != nil {
		return s
	}
	if s.self0, err = procTicks("self"); err != nil {
		return s
	}
	if serverPID > 0 {
		s.serv0, _ = procTicks(strconv.Itoa(serverPID))
	}
	s.ok = true
	return s
}

// stop returns the usage since start, or nil when /proc is not readable.
func (s *cpuSampler) stop() *cpuUsage {
	if !s.ok {
		return nil
	}
	secs := time.Since(s.t0).Seconds()
	busy, irq, err1 := machineBusyTicks()
	self, err2 := procTicks("self")
	if err1 != nil || err2 != nil || secs <= 0 {
		return nil
	}
	cores := func(ticks int64) float64 { return float64(ticks) / clkTck / secs }
	u := &cpuUsage{ServerCores: -1, BenchCores: cores(self - s.self0), IRQCores: cores(irq - s.irq0), CPUs: runtime.NumCPU()}
	other := busy - s.busy0 - (self - s.self0)
	if s.pid > 0 {
		if serv, err := procTicks(strconv.Itoa(s.pid)); err == nil {
			u.ServerCores = cores(serv - s.serv0)
			other -= serv - s.serv0
		}
	}
	u.OtherCores = max(cores(other), 0)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			u.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return u
}

func (u *cpuUsage) String() string {
	if u == nil {
		return "n/a"
	}
	serv := "n/a"
	if u.ServerCores >= 0 {
		serv = fmt.Sprintf("%.2f", u.ServerCores)
	}
	s := fmt.Sprintf("server %s, bench %.2f, irq %.2f, other processes %.2f cores (of %d); loadavg %s",
		serv, u.BenchCores, u.IRQCores, u.OtherCores, u.CPUs, u.LoadAvg)
	if u.OtherCores > 0.1 {
		s += "  <- OTHER LOAD ON THE MACHINE: figures are skewed"
	}
	return s
}

// machineBusyTicks is the non-idle CPU time of the whole machine, without
// interrupt time, which it returns apart (loopback traffic is mostly softirq
// work that no process is charged for).
func machineBusyTicks() (busy, irq int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]; the
	// guest times are already counted in user.
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		switch i {
		case 3, 4: // idle, iowait
		case 5, 6:
			irq += n
		default:
			busy += n
		}
	}
	return busy, irq, nil
}

// procTicks is utime+stime of a process ("self" or a pid).
func procTicks(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	return u + st, nil
}
