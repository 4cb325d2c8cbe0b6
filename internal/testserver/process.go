package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long a server may take to become ready.
const StartTimeout = 10 * time.Second

// stopTimeout bounds how long Close waits after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// startAttempts is how often a start is tried again with fresh ports after
// the server reported a port already in use.
const startAttempts = 4

// errPortInUse marks a start that failed because a port was taken between
// choosing it and the server binding it.
var errPortInUse = errors.New("testserver: port already in use")

// requireBinary makes t skip (or fail when $CI is set) when the named
// executable cannot be found, and returns its path otherwise.
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := lookBinary(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set: real-server tests must run)", err)
		}
		t.Skipf("%v", err)
	}
	return path
}

// lookBinary finds an executable in $PATH and in the sbin directories,
// which are often missing from a non-root $PATH.
func lookBinary(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("testserver: %s not installed: %w", name, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("testserver: %s not found in $PATH or sbin", name)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are free
// when returned; a server may still lose a race for them, hence the retries
// in the start functions.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testserver: find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tempDir makes a short, world-readable directory under the system temp
// dir. Dovecot's auth worker runs as another user and must read files in
// it, and socket paths must stay short.
func tempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("testserver: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("testserver: %w", err)
	}
	return dir, nil
}

// lockedBuffer collects a child's stdout and stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 { // keep memory bounded on chatty servers
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is one running server.
type process struct {
	name string // for messages: "dovecot", "radicale", ...
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts bin as a child in its own process group, killed with
// SIGTERM when the parent dies.
func startProcess(name, dir, bin string, args ...string) (*process, error) {
	return startProcessStdin(name, dir, "", bin, args...)
}

// startProcessStdin is startProcess with stdin for secrets.
func startProcessStdin(name, dir, stdin, bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testserver: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the server and waits; after stopTimeout it sends
// SIGKILL to the server's process group. Signals to the leader go through
// os.Process (a pidfd), so they never reach a process that reused its pid.
// It is safe to call more than once.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		if p.exited() {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			if !p.exited() {
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			}
			p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("testserver: %s did not stop within %v after SIGTERM; killed", p.name, stopTimeout)
		}
	})
	return p.stopErr
}

// waitReady calls probe until it succeeds, the process exits, ctx ends or
// StartTimeout passes. logTail supplies the log for the error.
func waitReady(ctx context.Context, p *process, probe func(context.Context) error, logTail func() string) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			log := logTail()
			if isPortInUse(log) {
				return fmt.Errorf("%w: %s: %s", errPortInUse, p.name, tail(log, 20))
			}
			return fmt.Errorf("testserver: %s exited during start (%v); log:\n%s", p.name, p.err, tail(log, 40))
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			log := logTail()
			if isPortInUse(log) {
				return fmt.Errorf("%w: %s: %s", errPortInUse, p.name, tail(log, 20))
			}
			return fmt.Errorf("testserver: %s not ready within %v (last probe: %v); log:\n%s", p.name, StartTimeout, last, tail(log, 40))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func isPortInUse(log string) bool {
	return strings.Contains(log, "Address already in use") || strings.Contains(log, "address already in use") ||
		strings.Contains(log, "EADDRINUSE")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withRetry runs start until it succeeds or fails for another reason than
// a port in use.
func withRetry[T any](start func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range startAttempts {
		v, err = start()
		if err == nil || !errors.Is(err, errPortInUse) {
			return v, err
		}
	}
	return v, err
}

// cleanupTB registers close with t and prints log when the test failed.
func cleanupTB(t testing.TB, name string, close func() error, log func() string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(log(), 200))
		}
		if err := close(); err != nil {
			t.Errorf("%s: close: %v", name, err)
		}
	})
}

// httpOK succeeds when u answers 200.
func httpOK(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}
