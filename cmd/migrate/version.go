package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// revision and version may be set at link time, for builds without Go's VCS
// stamping (-buildvcs=false, or a source tarball):
//
//	go build -ldflags "-X main.revision=$(git rev-parse HEAD) -X main.version=v1.2.3" ./cmd/migrate
//
// The build information, when it has them, wins.
var revision, version string

// versionString describes this binary: the module version, the VCS revision
// it was built from and the Go version, from the build information the Go
// toolchain embeds (runtime/debug.ReadBuildInfo).
func versionString() string {
	var b strings.Builder
	module, ver, rev, when, modified := "github.com/zxmigrate/zxmigrate", "(unknown)", "(unknown)", "", false
	if version != "" {
		ver = version
	}
	if revision != "" {
		rev = revision
	}
	goVer := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.Main.Version != "" && (version == "" || bi.Main.Version != "(devel)") {
			ver = bi.Main.Version
		}
		goVer = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(&b, "migrate %s\n", ver)
	fmt.Fprintf(&b, "  module:   %s\n", module)
	fmt.Fprintf(&b, "  revision: %s", rev)
	if when != "" {
		fmt.Fprintf(&b, " (%s)", when)
	}
	if modified {
		b.WriteString(" with local changes")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  go:       %s %s/%s\n", goVer, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the source revision and the Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(e.stdout, versionString())
			return err
		},
	}
}
