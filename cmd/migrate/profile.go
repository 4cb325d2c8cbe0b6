package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
)

// startProfile writes a CPU profile to the file named by ZXMIGRATE_CPUPROFILE
// when it is set: a developer's aid for the benchmark scripts. It returns the
// function that stops it. A "%d" in the name is replaced by the process id.
func startProfile(stderr io.Writer) func() {
	path := os.Getenv("ZXMIGRATE_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	if strings.Contains(path, "%d") {
		path = fmt.Sprintf(path, os.Getpid())
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "migrate: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "migrate: cpu profile: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
