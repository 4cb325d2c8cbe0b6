// Package benchutil holds what the benchmark programs under bench/ share.
package benchutil

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LoadAvg is the 1-minute load average from /proc/loadavg, for the logs
// that record how busy the machine was; "?" when it cannot be read.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// ProcCPU is the user+sys time of process pid and of its reaped children
// (fields 14 to 17 of /proc/PID/stat, in clock ticks of 10 ms): for a
// Dovecot master or a PostgreSQL postmaster, the CPU its workers spent once
// they exited. 0 when pid is 0 or the file cannot be read.
func ProcCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	// The fields after the command name, which may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		if i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// SelfCPU is the user+sys time of this process and of its reaped children
// (getrusage), for a client that runs in the benchmark's process or as its
// child.
func SelfCPU() (self, children time.Duration) {
	var s, c syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(s.Utime) + tv(s.Stime), tv(c.Utime) + tv(c.Stime)
}

// IdleCPU is the machine's idle time summed over all CPUs, from the first
// line of /proc/stat (idle and iowait, in clock ticks of 10 ms): the
// difference over a run, against the run's wall time times the number of
// CPUs, says how far the run left the machine unused.
func IdleCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for _, i := range []int{4, 5} { // "cpu" user nice system idle iowait
		if i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
