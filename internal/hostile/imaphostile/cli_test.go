package imaphostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

// The CLI runs as a child process, so that a crash, its peak memory
// (VmHWM), its temporary files and its exit time are
// measured from outside, as an operator would see them.

var migrateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imaphostile-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	migrateBin = filepath.Join(dir, "migrate")
	build := exec.Command("go", "build", "-o", migrateBin, "github.com/zxmigrate/zxmigrate/cmd/migrate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build migrate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// outcome is what one CLI run did.
type outcome struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	maxRSS         int64 // bytes, peak resident set (VmHWM, sampled every 5 ms)
	maxTemp        int64 // bytes, peak size of open files under TMPDIR (spooled, unlinked)
	report         map[string]any
	state          string
}

// bounds are what every hostile run must respect.
type bounds struct {
	exitWithin time.Duration
	maxRSS     int64
	maxTemp    int64
}

// runMail runs `migrate mail` from src into user1 on dst with extra
// flags, kills it when it outlives b.exitWithin, and checks the bounds:
// no crash, peak memory, temporary disk, exit time, no raw control
// character on stdout or stderr.
func runMail(t *testing.T, src *Server, dst *testserver.Dovecot, b bounds, extra ...string) outcome {
	t.Helper()
	return runMailSignal(t, src, dst, b, 0, extra...)
}

func runMailSignal(t *testing.T, src *Server, dst *testserver.Dovecot, b bounds, sigAfter time.Duration, extra ...string) outcome {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	state := filepath.Join(dir, "state.db")
	args := append([]string{"mail",
		"--from", "imap://user1@" + src.Addr(),
		"--to", "imap://user1@" + dst.Addr,
		"--allow-plaintext", "--report", report, "--state", state}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), b.exitWithin)
	defer cancel()
	cmd := exec.CommandContext(ctx, migrateBin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "MIGRATE_FROM_PASSWORD=anything",
		"MIGRATE_TO_PASSWORD="+dst.Users["user1"], "GOTRACEBACK=all")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var maxTemp, hwm atomic.Int64
	done := make(chan struct{})
	go func() {
		// Spooled messages are unlinked at once: measure them through
		// the process's open files. Peak memory is the kernel's VmHWM of
		// the process (not getrusage: a child forked with CLONE_VM is
		// charged the parent's peak at exec).
		fdDir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if kb := vmHWM(status); kb*1024 > hwm.Load() {
				hwm.Store(kb * 1024)
			}
			ents, err := os.ReadDir(fdDir)
			if err != nil {
				continue
			}
			var sum int64
			for _, e := range ents {
				p := filepath.Join(fdDir, e.Name())
				if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, tmp) {
					if fi, err := os.Stat(p); err == nil {
						sum += fi.Size()
					}
				}
			}
			if sum > maxTemp.Load() {
				maxTemp.Store(sum)
			}
		}
	}()
	if sigAfter > 0 {
		go func() {
			time.Sleep(sigAfter)
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}()
	}
	err := cmd.Wait()
	close(done)
	o := outcome{elapsed: time.Since(start), stdout: stdout.String(), stderr: stderr.String(), maxTemp: maxTemp.Load(), state: state}
	if ctx.Err() != nil {
		t.Fatalf("migrate mail did not exit within %v (killed)\nstderr: %s", b.exitWithin, tail(o.stderr))
	}
	o.code = cmd.ProcessState.ExitCode()
	o.maxRSS = hwm.Load()
	var ee *exec.ExitError
	if err != nil && !errorsAs(err, &ee) {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(report); err == nil {
		_ = json.Unmarshal(raw, &o.report)
	}
	t.Logf("exit %d after %v; peak RSS %.1f MB; peak temp %d bytes", o.code, o.elapsed.Round(time.Millisecond), float64(o.maxRSS)/1e6, o.maxTemp)

	if strings.Contains(o.stderr, "fatal error:") || strings.Contains(o.stderr, "panic:") || strings.Contains(o.stderr, "goroutine ") {
		t.Errorf("crash:\n%s", tail(o.stderr))
	}
	if o.code == 2 {
		t.Errorf("exit 2 (usage, or a Go crash)\nstderr: %s", tail(o.stderr))
	}
	if o.maxRSS > b.maxRSS {
		t.Errorf("peak RSS %.1f MB, want at most %.1f MB", float64(o.maxRSS)/1e6, float64(b.maxRSS)/1e6)
	}
	if o.maxTemp > b.maxTemp {
		t.Errorf("peak temporary disk %d bytes, want at most %d", o.maxTemp, b.maxTemp)
	}
	for name, s := range map[string]string{"stdout": o.stdout, "stderr": o.stderr} {
		if at, r := rawControl(s); at >= 0 {
			t.Errorf("%s holds a raw control character %U at byte %d: %q", name, r, at, s[max(0, at-40):min(len(s), at+40)])
		}
	}
	return o
}

// vmHWM reads the peak resident set (kB) from a /proc/PID/status file;
// 0 when gone.
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return 0
}

// rawControl returns the position of the first character a terminal
// would interpret (other than LF ending a line), or -1.
func rawControl(s string) (int, rune) {
	for i, r := range s {
		switch {
		case r == '\n':
		case r == utf8.RuneError:
			return i, r
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
			return i, r
		}
	}
	return -1, 0
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}

// newDovecot is the real destination of every run.
func newDovecot(t *testing.T) *testserver.Dovecot {
	return testserver.StartDovecot(t, testserver.DovecotOptions{Name: "hostile-dst"})
}

// msg returns a small RFC 5322 message.
func msg(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: m%d\r\nMessage-ID: <m%d@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody %d\r\n", i, i, i))
}

func msgs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = msg(i + 1)
	}
	return out
}

func start(t *testing.T, folders []Folder, b Behaviour) *Server {
	t.Helper()
	s, err := Start(folders, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// folderStats returns the report's folder entries by source name.
func folderStats(t *testing.T, o outcome) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	st, _ := o.report["stats"].(map[string]any)
	fl, _ := st["folders"].([]any)
	for _, f := range fl {
		m, _ := f.(map[string]any)
		name, _ := m["source"].(string)
		out[name] = m
	}
	if len(out) == 0 {
		t.Fatalf("no folders in the report: %v\nstderr: %s", o.report, tail(o.stderr))
	}
	return out
}

func num(m map[string]any, key string) int {
	f, _ := m[key].(float64)
	return int(f)
}

const mb = 1 << 20

// Every hostile run: exit well within its bound on a loaded 2-core box,
// peak RSS far below what the findings measured (622 MB to 3 GB).
var std = bounds{exitWithin: 90 * time.Second, maxRSS: 120 * mb, maxTemp: 1 * mb}

func init() {
	if runtime.GOOS != "linux" {
		std.maxRSS = 1 << 62 // VmHWM is read from Linux's /proc
	}
}

// ensure bufio is used by hooks in this file's tests.
var _ = bufio.NewWriter
