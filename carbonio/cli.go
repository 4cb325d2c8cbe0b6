package carbonio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Runner runs a command (argv[0] is the program) on the server and returns
// its standard output. A non-zero exit gives an *ExitError together with
// the output.
type Runner interface {
	Run(ctx context.Context, argv []string) ([]byte, error) // runs argv, honouring ctx
}

// ExitError is a command that exited with a non-zero status.
type ExitError struct {
	Command string // program and module/action, never the full argv
	Code    int    // the exit status
	Stderr  string // last lines of standard error
}

// Error implements error.
func (e *ExitError) Error() string {
	if e.Stderr != "" {
		return fmt.Sprintf("carbonio: %s: exit status %d: %s", e.Command, e.Code, e.Stderr)
	}
	return fmt.Sprintf("carbonio: %s: exit status %d", e.Command, e.Code)
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// CLI is the module transport that runs `PROGRAM --json MODULE ACTION
// ARGS` through a Runner: locally or over SSH. The grammar (positional
// arguments first, then "name value" pairs, lists comma-separated) is the
// documented one (zextras/tech-doc source/carbonio/admincli/shell.rst and
// source/carbonio/cli_commands/*). The carbonio wrapper refuses any user
// but zextras (zextras/carbonio-core-utils src/bin/carbonio): run it as
// zextras (Local.User, SSH.RunAs).
//
// The same transport drives a Zextras Suite source: Program "zxsuite"
// (same grammar: zextras/tech-doc source/cli/ZxBackup/*.rst) with a Runner
// that reaches the source host as the zimbra user, e.g.
//
//	src := &carbonio.Client{Transport: &carbonio.CLI{Program: "zxsuite",
//		Runner: &carbonio.SSH{Addr: "zimbra.example.com", User: "root", RunAs: "zimbra"}}}
//	op, err := src.Export(ctx, "/opt/zimbra/backup/export", carbonio.ExportOptions{Domains: doms})
//
// No secret is ever put on the command line: the command runs as the
// server's own user and needs none. It is safe for concurrent use when its
// Runner is.
type CLI struct {
	// Runner runs the command; nil means Local{}.
	Runner Runner
	// Program is the command; "" means "carbonio". Use "zxsuite" for a
	// Zextras Suite source, or a full path.
	Program string
	// MTACtl is the MTA control command; "" means "zmmtactl".
	MTACtl string
}

func (c *CLI) runner() Runner {
	if c.Runner != nil {
		return c.Runner
	}
	return Local{}
}

// Module implements ModuleTransport and returns the JSON object the
// command prints. Zextras' scripts read a top-level "response" from
// `carbonio --json` (zextras/sps-habeat appserver.py), which may come
// wrapped as {"ok":true,"response":…} (zextras/carbonio-configd
// internal/zxadmin/client.go); the client's parser takes both, and the
// per-server form. Text before the first '{' (banners) is skipped.
func (c *CLI) Module(ctx context.Context, cmd Command) (json.RawMessage, error) {
	words, err := cmd.CLIArgs()
	if err != nil {
		return nil, err
	}
	prog := c.Program
	if prog == "" {
		prog = "carbonio"
	}
	argv := append([]string{prog, "--json"}, words...)
	out, err := c.runner().Run(ctx, argv)
	var ee *ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, err
	}
	// Keep what looks like the JSON object; the CLI may print banners.
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		if err != nil {
			return nil, fmt.Errorf("carbonio: %s: %w", cmd.Request(), err)
		}
		return nil, shapeErr(cmd.Request(), "the carbonio command printed no JSON (%d bytes)", len(out))
	}
	// Take the first JSON value; the CLI may print more after it.
	var raw json.RawMessage
	if derr := json.NewDecoder(bytes.NewReader(out[i:])).Decode(&raw); derr != nil {
		if err != nil {
			return nil, fmt.Errorf("carbonio: %s: %w", cmd.Request(), err)
		}
		return nil, shapeErr(cmd.Request(), "the carbonio command printed invalid JSON: %v", derr)
	}
	if err != nil {
		// A JSON error answer explains the failure better than the exit
		// status; parseModule reports its message.
		var top moduleJSON
		if json.Unmarshal(raw, &top) != nil || top.OK == nil || *top.OK {
			return nil, fmt.Errorf("carbonio: %s: %w", cmd.Request(), err)
		}
	}
	return raw, nil
}

// MTA runs `zmmtactl stop` or `zmmtactl start`.
func (c *CLI) MTA(ctx context.Context, start bool) error {
	prog := c.MTACtl
	if prog == "" {
		prog = "zmmtactl"
	}
	verb := "stop"
	if start {
		verb = "start"
	}
	_, err := c.runner().Run(ctx, []string{prog, verb})
	if err != nil {
		return fmt.Errorf("carbonio: mta %s: %w", verb, err)
	}
	return nil
}

// Local runs commands on this host.
type Local struct {
	// User, when set and not the current user, runs the command through
	// `sudo -n -i -u USER --` (the carbonio command refuses any user but
	// zextras).
	User string
}

// Run implements Runner.
func (l Local) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("carbonio: run: empty command")
	}
	name := describe(argv)
	argv = withUser(argv, l.User, currentUser())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		var xe *exec.ExitError
		if errors.As(err, &xe) && ctx.Err() == nil {
			return stdout.Bytes(), &ExitError{Command: name, Code: xe.ExitCode(), Stderr: tail(stderr.Bytes())}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("carbonio: %s: %w", name, err)
	}
	return stdout.Bytes(), nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func withUser(argv []string, as, current string) []string {
	if as == "" || as == current {
		return argv
	}
	return append([]string{"sudo", "-n", "-i", "-u", as, "--"}, argv...)
}

// describe names a command for errors: program and up to two words
// (module and action), never parameter values.
func describe(argv []string) string {
	words := []string{filepath.Base(argv[0])}
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		words = append(words, a)
		if len(words) == 3 {
			break
		}
	}
	return strings.Join(words, " ")
}

// ErrHostKey is returned when the SSH server's host key is unknown or does
// not match known_hosts.
// It matches zxerrors.ErrAuth: the client refused the server's identity.
var ErrHostKey = zxerrors.Mark(errors.New("ssh host key not trusted"), zxerrors.ErrAuth)

// SSH runs commands on a remote host over SSH (golang.org/x/crypto/ssh).
// The host key is checked against a known_hosts file; authentication uses
// private key files and/or the SSH agent. It keeps one connection and opens
// a session per command; it is safe for concurrent use. Call Close when done.
type SSH struct {
	// Addr is host or host:port (port 22 when absent).
	Addr string
	// User is the login user.
	User string
	// KnownHostsFile lists the trusted host keys; "" means
	// ~/.ssh/known_hosts. Unknown hosts are refused.
	KnownHostsFile string
	// KeyFiles are unencrypted private keys to offer. When empty, the agent
	// (SSH_AUTH_SOCK) and then ~/.ssh/id_ed25519, id_ecdsa, id_rsa are used.
	KeyFiles []string
	// RunAs, when set and not User, runs commands through
	// `sudo -n -i -u RunAs --`, e.g. "zextras".
	RunAs string
	// Timeout bounds the connection handshake; 0 means 30s.
	Timeout time.Duration

	mu     sync.Mutex
	client *ssh.Client
}

func (s *SSH) addr() string {
	if _, _, err := net.SplitHostPort(s.Addr); err == nil {
		return s.Addr
	}
	return net.JoinHostPort(strings.Trim(s.Addr, "[]"), "22")
}

func (s *SSH) auth() ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	closeFn := func() {}
	keys := s.KeyFiles
	if len(keys) == 0 {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if conn, err := net.Dial("unix", sock); err == nil {
				closeFn = func() { conn.Close() }
				if ss, err := agent.NewClient(conn).Signers(); err == nil {
					signers = append(signers, ss...)
				}
			}
		}
		if home, err := os.UserHomeDir(); err == nil {
			for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				if _, err := os.Stat(filepath.Join(home, ".ssh", n)); err == nil {
					keys = append(keys, filepath.Join(home, ".ssh", n))
				}
			}
		}
	}
	for _, f := range keys {
		b, err := os.ReadFile(f)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("carbonio: ssh key: %w", err)
		}
		sg, err := ssh.ParsePrivateKey(b)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("carbonio: ssh key %s: %w", f, err)
		}
		signers = append(signers, sg)
	}
	if len(signers) == 0 {
		closeFn()
		return nil, nil, errors.New("carbonio: ssh: no key file and no agent key to authenticate with")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeFn, nil
}

func (s *SSH) connect(ctx context.Context) (*ssh.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	khFile := s.KnownHostsFile
	if khFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("carbonio: ssh: %w", err)
		}
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	kh, err := knownhosts.New(khFile)
	if err != nil {
		return nil, fmt.Errorf("carbonio: ssh known_hosts: %w", err)
	}
	var hostKeyErr error
	check := func(host string, remote net.Addr, key ssh.PublicKey) error {
		if err := kh(host, remote, key); err != nil {
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) && len(ke.Want) > 0 {
				hostKeyErr = fmt.Errorf("carbonio: ssh %s: %w: host key %s does not match known_hosts %s (possible man-in-the-middle)",
					host, ErrHostKey, ssh.FingerprintSHA256(key), khFile)
			} else {
				hostKeyErr = fmt.Errorf("carbonio: ssh %s: %w: host %s not in %s", host, ErrHostKey, ssh.FingerprintSHA256(key), khFile)
			}
			return hostKeyErr
		}
		return nil
	}
	methods, closeAgent, err := s.auth()
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cfg := &ssh.ClientConfig{User: s.User, Auth: methods, HostKeyCallback: check, Timeout: timeout}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return nil, fmt.Errorf("carbonio: ssh %s: %w", s.addr(), zxerrors.Connect(err))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, s.addr(), cfg)
	if err != nil {
		conn.Close()
		if hostKeyErr != nil {
			return nil, hostKeyErr
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("carbonio: ssh %s@%s: %w: %v", s.User, s.addr(), zxerrors.ErrAuth, err)
		}
		return nil, fmt.Errorf("carbonio: ssh %s: %w", s.addr(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	s.client = ssh.NewClient(c, chans, reqs)
	return s.client, nil
}

// Run implements Runner. Arguments are single-quoted for the remote shell.
func (s *SSH) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("carbonio: run: empty command")
	}
	name := describe(argv)
	argv = withUser(argv, s.RunAs, s.User)
	quoted := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			return nil, fmt.Errorf("carbonio: %s: argument with a NUL byte", name)
		}
		quoted[i] = shellQuote(a)
	}
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := c.NewSession()
	if err != nil {
		// The connection died: drop it so the next call redials.
		s.mu.Lock()
		if s.client == c {
			s.client.Close()
			s.client = nil
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("carbonio: ssh %s: %s: %w", s.addr(), name, err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	stop := context.AfterFunc(ctx, func() {
		_ = sess.Signal(ssh.SIGTERM)
		sess.Close()
	})
	defer stop()
	err = sess.Run(strings.Join(quoted, " "))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		var xe *ssh.ExitError
		if errors.As(err, &xe) {
			return stdout.Bytes(), &ExitError{Command: name, Code: xe.ExitStatus(), Stderr: tail(stderr.Bytes())}
		}
		return nil, fmt.Errorf("carbonio: ssh %s: %s: %w", s.addr(), name, err)
	}
	return stdout.Bytes(), nil
}

// Close closes the connection.
func (s *SSH) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,@:=+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
