package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// goList runs `go list` with args in the module and returns its output
// lines. The test fails when the go command is missing or fails: the
// checks below must never pass by not running.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to check the import graph: %v", err)
	}
	cmd := exec.Command(goCmd, append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("go list %s printed nothing", strings.Join(args, " "))
	}
	return lines
}

// TestReleaseBinaryDoesNotLinkTesting: the demo runs in-process fakes,
// and none of them may pull the test framework into the binary.
func TestReleaseBinaryDoesNotLinkTesting(t *testing.T) {
	deps := goList(t, "-deps", ".")
	var sawCobra bool
	for _, d := range deps {
		if d == "testing" || strings.HasPrefix(d, "testing/") {
			t.Errorf("go list -deps ./cmd/migrate holds %q: the release binary links the test framework", d)
		}
		sawCobra = sawCobra || d == "github.com/spf13/cobra"
	}
	if !sawCobra {
		t.Fatalf("go list -deps did not list cobra: it did not list cmd/migrate's dependencies (%d lines)", len(deps))
	}
}

// TestNoInternalImports: the CLI and the examples are built only on the
// public SDK, so everything the CLI does an embedder can do too. Their
// test files may use the internal test servers; their programs may not.
func TestNoInternalImports(t *testing.T) {
	const internal = "github.com/zxmigrate/zxmigrate/internal"
	lines := goList(t, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".", "../../examples/...")
	var pkgs int
	for _, l := range lines {
		f := strings.Fields(l)
		pkgs++
		for _, imp := range f[1:] {
			if imp == internal || strings.HasPrefix(imp, internal+"/") {
				t.Errorf("%s imports %s", f[0], imp)
			}
		}
	}
	if pkgs < 2 {
		t.Fatalf("go list saw %d packages, want cmd/migrate and the examples", pkgs)
	}
}
