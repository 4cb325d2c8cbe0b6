package carboniotest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// RunCLI runs a fake carbonio, zxsuite or zmmtactl command line against
// the server's state and returns what the real command would print and its
// exit status. `carbonio --json MODULE ACTION ARGS` prints the module
// answer object ({"ok":…,"response":…}, or only {"response":…} with
// Answers Bare); arguments are decoded with carbonio.Commands. Injected failures apply by action name (Raw, and
// ModuleError).
func (s *Server) RunCLI(argv []string) (stdout, stderr string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cliCommands = append(s.cliCommands, append([]string(nil), argv...))
	if len(argv) == 0 {
		return "", "usage: carbonio [--json] MODULE ACTION [ARGS]\n", 2
	}
	prog := filepath.Base(argv[0])
	args := argv[1:]
	switch prog {
	case "zmmtactl":
		if len(args) != 1 || (args[0] != "start" && args[0] != "stop") {
			return "", "usage: zmmtactl start|stop\n", 1
		}
		s.requests = append(s.requests, "zmmtactl "+args[0])
		s.mtaRunning = args[0] == "start"
		return args[0] + "ing mta...done.\n", "", 0
	case "carbonio", "zxsuite":
	default:
		return "", prog + ": command not found\n", 127
	}
	jsonOut := false
	for len(args) > 0 && strings.HasPrefix(args[0], "--") {
		switch args[0] {
		case "--json":
			jsonOut = true
		case "--progress", "--sync":
		case "--host":
			if len(args) < 2 {
				return "", "--host needs a value\n", 2
			}
			args = args[1:]
		default:
			return "", "unknown option " + args[0] + "\n", 2
		}
		args = args[1:]
	}
	if !jsonOut {
		return "", "the fake carbonio only prints --json\n", 2
	}
	if len(args) < 2 {
		return "", "usage: carbonio --json MODULE ACTION [ARGS]\n", 2
	}
	spec, ok := carbonio.LookupCLICommand(args[0], args[1])
	if !ok {
		return "", fmt.Sprintf("unknown command %s %s\n", args[0], args[1]), 2
	}
	s.requests = append(s.requests, spec.Action)
	rest := args[2:]
	vals := map[string]string{}
	for _, p := range spec.Params {
		if !p.Positional {
			continue
		}
		if len(rest) == 0 {
			return "", "missing " + p.Name + "\n", 2
		}
		vals[p.Name], rest = rest[0], rest[1:]
	}
	if v, ok := vals["action"]; ok && spec.Action == "doSmartScan" && v != "start" {
		return "", "doSmartScan: action must be start\n", 2
	}
	for len(rest) > 0 {
		p, ok := spec.Param(rest[0])
		if !ok || p.Positional || p.SOAPOnly {
			return "", fmt.Sprintf("unknown parameter %q for %s\n", rest[0], spec.Action), 2
		}
		if len(rest) < 2 {
			return "", "parameter " + rest[0] + " needs a value\n", 2
		}
		vals[rest[0]], rest = rest[1], rest[2:]
	}
	var out map[string]any
	if f, ok := s.takeInjected(spec.Action); ok {
		switch {
		case f.Raw != "":
			return f.Raw, "", 0
		case f.ModuleError != "":
			out = moduleErr(f.ModuleError)
		case f.Code != "":
			out = moduleErr(f.Code + ": " + f.Reason)
		default:
			return "", "injected failure\n", 1
		}
	} else {
		out = s.runModule(spec, vals)
	}
	failed := out["ok"] == false
	if s.opts.Answers == Bare && !failed {
		// The bare form Zextras' scripts read from `carbonio --json`: a
		// top-level "response" (zextras/sps-habeat appserver.py).
		delete(out, "ok")
		delete(out, "nested")
	}
	b, _ := json.Marshal(out)
	if failed {
		return string(b) + "\n", "", 1
	}
	return string(b) + "\n", "", 0
}

// CLIRunner returns a carbonio.Runner that runs commands with RunCLI in
// process: the CLI transport without SSH.
func (s *Server) CLIRunner() carbonio.Runner { return cliRunner{s} }

type cliRunner struct{ s *Server }

func (r cliRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, errOut, code := r.s.RunCLI(argv)
	if code != 0 {
		return []byte(out), &carbonio.ExitError{Command: strings.Join(argv[:min(len(argv), 1)], " "), Code: code, Stderr: strings.TrimSpace(errOut)}
	}
	return []byte(out), nil
}

// cliRequest is what the fakecli program posts to /fakecli.
type cliRequest struct {
	Argv []string `json:"argv"`
}

// CLIAnswer is the answer of /fakecli.
type CLIAnswer struct {
	Stdout string `json:"stdout"` // what the command prints
	Stderr string `json:"stderr"` // its error output
	Code   int    `json:"code"`   // its exit status
}

// CLIConfig is the file fakecli reads next to itself (fakecli.json).
type CLIConfig struct {
	URL    string `json:"url"`     // the fake server's URL
	Key    string `json:"key"`     // the key fakecli presents to the server
	CACert string `json:"ca_cert"` // the server's CA certificate, PEM
}

func (s *Server) serveCLI(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Fakecli-Key")), []byte(s.cliKey)) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	var req cliRequest
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(b, &req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	out, errOut, code := s.RunCLI(req.Argv)
	writeJSON(w, http.StatusOK, CLIAnswer{Stdout: out, Stderr: errOut, Code: code})
}

// WriteCLIConfig writes dir/fakecli.json so that a fakecli binary in dir
// forwards its command line to this server.
func (s *Server) WriteCLIConfig(dir string) error {
	b, _ := json.Marshal(CLIConfig{URL: s.URL, Key: s.cliKey, CACert: string(s.CertPEM())})
	return os.WriteFile(filepath.Join(dir, "fakecli.json"), b, 0o600)
}

// BuildFakeCLIBinary builds the fakecli program into dir as "carbonio"
// and returns its path. It needs the go command. Build once per test
// binary and install it per server with InstallFakeCLI.
func BuildFakeCLIBinary(dir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, "carbonio")
	cmd := exec.Command(goCmd, "build", "-o", bin, "github.com/zxmigrate/zxmigrate/carbonio/carboniotest/fakecli")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("carboniotest: build fakecli: %v\n%s", err, out)
	}
	return bin, nil
}

// TB is the part of testing.TB that InstallFakeCLI and BuildFakeCLI use;
// a *testing.T or *testing.B satisfies it. The package does not import
// testing, so that programs linking it (the demo of cmd/migrate) do not
// link the test framework.
type TB interface {
	Helper()                           // see testing.TB
	TempDir() string                   // see testing.TB
	Fatal(args ...any)                 // see testing.TB
	Fatalf(format string, args ...any) // see testing.TB
}

// InstallFakeCLI makes a new temporary directory holding links to the
// fakecli binary as "carbonio", "zxsuite" and "zmmtactl" and its
// configuration for this server, and returns the directory.
func (s *Server) InstallFakeCLI(t TB, binary string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"carbonio", "zxsuite", "zmmtactl"} {
		if err := os.Symlink(binary, filepath.Join(dir, n)); err != nil {
			t.Fatalf("carboniotest: %v", err)
		}
	}
	if err := s.WriteCLIConfig(dir); err != nil {
		t.Fatalf("carboniotest: %v", err)
	}
	return dir
}

// BuildFakeCLI builds fakecli and installs it for this server (see
// BuildFakeCLIBinary and InstallFakeCLI); it returns the directory.
func (s *Server) BuildFakeCLI(t TB) string {
	t.Helper()
	bin, err := BuildFakeCLIBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s.InstallFakeCLI(t, bin)
}
