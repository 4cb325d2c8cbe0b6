// Package benchutil holds what the benchmark programs under bench/ share.
package benchutil

import (
	"os"
	"strings"
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
