// Package testssh starts a real OpenSSH server (sshd) for tests: a child
// process on a free 127.0.0.1 port in a temporary directory, with a
// generated host key, one authorized client key, and a known_hosts file for
// the client. It stops on test cleanup.
//
// When sshd is missing the test is skipped, or fails when the CI
// environment variable is set.
package testssh

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Server is a running sshd.
type Server struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// User is the login user (the user running the test).
	User string
	// KnownHosts is a known_hosts file trusting this server's host key.
	KnownHosts string
	// ClientKey is an unencrypted private key file that sshd accepts.
	ClientKey string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// Dir is the server's directory.
	Dir string
}

func sshdPath() (string, error) {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("testssh: sshd not found")
}

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	return sp
}

// WriteKnownHosts writes a known_hosts file at path that trusts key for addr.
func WriteKnownHosts(path, addr string, key ssh.PublicKey) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(key))
	return os.WriteFile(path, []byte(line), 0o600)
}

// NewKey writes a fresh ed25519 key pair at path and path.pub and returns
// the public key (e.g. to build a known_hosts file that does not match).
func NewKey(t testing.TB, path string) ssh.PublicKey { return writeKey(t, path) }

// Start starts sshd. It stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := sshdPath()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (required in CI)", err)
		}
		t.Skipf("%v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd started by root needs its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("testssh: %v", err)
		}
	}
	dir := t.TempDir()
	s := &Server{User: u.Username, Dir: dir, KnownHosts: filepath.Join(dir, "known_hosts"), ClientKey: filepath.Join(dir, "client_key")}
	s.HostKey = writeKey(t, filepath.Join(dir, "host_key"))
	writeKey(t, s.ClientKey)
	if err := os.Rename(s.ClientKey+".pub", filepath.Join(dir, "authorized_keys")); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(t, bin); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("testssh: %v", lastErr)
	}
	if err := WriteKnownHosts(s.KnownHosts, s.Addr, s.HostKey); err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(t testing.TB, bin string) error {
	cfg := strings.Join([]string{
		"ListenAddress " + s.Addr,
		"HostKey " + filepath.Join(s.Dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"LogLevel ERROR",
		// Keep bash from sourcing ~/.bashrc for every command (it does so
		// when run by sshd at SHLVL 1): slow shell set-ups would dominate.
		"SetEnv SHLVL=1",
		"",
	}, "\n")
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(s.Dir, "sshd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			b, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
			return fmt.Errorf("sshd exited: %v: %s", err, b)
		default:
		}
		if ready(s.Addr) {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("sshd did not answer on %s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return nil
}

// ready reports whether an SSH banner comes from addr.
func ready(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}
