package state

import (
	"fmt"
	"strconv"
	"strings"
)

// LockedError is returned by Lock and OpenLocked while another process holds
// the state's lock. PID and Host name that process, as it wrote them into
// the lock file (0 and "" when it had not yet).
type LockedError struct {
	Path string // the state the lock guards
	PID  int    // the holder's process id, 0 when unknown
	Host string // the holder's host name, "" when unknown
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
		if e.Host != "" {
			who += " on " + e.Host
		}
	}
	return fmt.Sprintf("another run is using the state file %s (%s): wait for it to finish, or stop it, and run again", e.Path, who)
}

func holderLine(pid int, host string) string {
	return fmt.Sprintf("pid=%d host=%s\n", pid, host)
}

func parseHolder(b []byte) (pid int, host string) {
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "host":
			host = v
		}
	}
	return pid, host
}
