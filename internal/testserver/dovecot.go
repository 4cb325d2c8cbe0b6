package testserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/internal/testpki"
)

// Default credentials of a Dovecot started with zero options.
const (
	DefaultUser           = "user1"
	DefaultPassword       = "pass1"
	DefaultMasterUser     = "admin"
	DefaultMasterPassword = "adminpass"
)

// rootMailUID is the uid and gid owning mail when the harness runs as root;
// it needs no passwd entry.
const rootMailUID = 2000

// DovecotOptions configures StartDovecot and NewDovecot. The zero value is
// a plain-text server with one user, user1/pass1, and the master user
// admin/adminpass.
type DovecotOptions struct {
	// Name appears in the instance name and in messages; "" means "dovecot".
	Name string
	// Separator is the hierarchy separator: '/' (0 means '/'; maildir with
	// LAYOUT=fs) or '.' (maildir++).
	Separator rune
	// Users maps user names to passwords; nil means {"user1": "pass1"}.
	// Names and passwords must not contain ':' or line breaks.
	Users map[string]string
	// MasterUser and MasterPassword name the master (admin) user; "" means
	// "admin" and "adminpass". The master can log in as any user both as
	// the SASL PLAIN authzid (target user) and as LOGIN "user*admin".
	MasterUser, MasterPassword string
	// TLS also opens an implicit-TLS listener (TLSAddr) and offers
	// STARTTLS on Addr, with a certificate for 127.0.0.1 and localhost from
	// a fresh test CA.
	TLS bool
	// ExtraConfig is appended to dovecot.conf, e.g. for limits or faults.
	ExtraConfig string
}

// Dovecot is a running Dovecot instance.
type Dovecot struct {
	// Name is DovecotOptions.Name, or "dovecot".
	Name string
	// Addr is the plain (and STARTTLS, with TLS) IMAP listener, host:port.
	Addr string
	// TLSAddr is the implicit-TLS listener; "" without TLS.
	TLSAddr string
	// Dir is the instance directory (config, logs, mail under Dir/mail).
	Dir string
	// Separator is the server's hierarchy separator.
	Separator rune
	// CA issued the server certificate (nil without TLS); CAFile is its
	// PEM file for --ca-file style options.
	CA     *testpki.CA
	CAFile string
	// Users maps user names to passwords.
	Users map[string]string
	// MasterUser and MasterPassword are the master (admin) credentials.
	MasterUser, MasterPassword string

	conf    string // path of dovecot.conf
	mailUID int    // owner of the mail files
	doveadm string // path of doveadm
	proc    *process
}

// dovecotConf is the configuration template, expanded
// with os.Expand, plus TLS and the anvil auth penalty turned off (after a
// failed login Dovecot otherwise delays the next ones from 127.0.0.1 by up
// to 15 s).
const dovecotConf = `instance_name = zxm-${NAME}
base_dir = ${DIR}/run
state_dir = ${DIR}/state
log_path = ${DIR}/log/dovecot.log
info_log_path = ${DIR}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
${SSL}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = maildir:~/Maildir${LAYOUT}
mail_fsync = never
first_valid_uid = ${FIRSTUID}
mail_max_userip_connections = 200
auth_failure_delay = 0
imap_max_line_length = 1M
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${DIR}/masters
  master = yes
  pass = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${DIR}/users
}
userdb {
  driver = static
  args = uid=${MAILUID} gid=${MAILGID} home=${DIR}/mail/%u
}
namespace inbox {
  inbox = yes
  separator = ${SEP}
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \Archive
    auto = no
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${PORT}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${TLSPORT}
    ssl = yes
  }
  process_min_avail = 1
}
service imap {
  process_limit = 256
}
# No anvil auth penalty: failed logins in tests must not slow later ones.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${ROOTLESS}
${EXTRA}
`

// rootlessConf lets every Dovecot process run as the starting user.
const rootlessConf = `default_internal_user = ${RUNUSER}
default_internal_group = ${RUNGROUP}
default_login_user = ${RUNUSER}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
`

// SpecialUseFolders lists the folders the Dovecot configuration gives a
// special use. Drafts, Sent, Trash and Junk are created and subscribed
// automatically; Archive only when asked for.
var SpecialUseFolders = map[string]string{
	"Drafts":  `\Drafts`,
	"Sent":    `\Sent`,
	"Trash":   `\Trash`,
	"Junk":    `\Junk`,
	"Archive": `\Archive`,
}

// StartDovecot starts Dovecot for t and stops it in t.Cleanup, logging the
// server log when t failed. It skips t when dovecot is not installed
// (fails it when $CI is set) and fails t when the server does not start.
func StartDovecot(t testing.TB, o DovecotOptions) *Dovecot {
	t.Helper()
	requireBinary(t, "dovecot")
	requireBinary(t, "doveadm")
	d, err := NewDovecot(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	cleanupTB(t, d.Name, d.Close, d.Log)
	return d
}

// NewDovecot starts Dovecot and waits until it greets on every listener.
// The caller must Close it.
func NewDovecot(ctx context.Context, o DovecotOptions) (*Dovecot, error) {
	return withRetry(func() (*Dovecot, error) { return newDovecot(ctx, o) })
}

func newDovecot(ctx context.Context, o DovecotOptions) (*Dovecot, error) {
	d := &Dovecot{
		Name:           o.Name,
		Separator:      o.Separator,
		Users:          o.Users,
		MasterUser:     o.MasterUser,
		MasterPassword: o.MasterPassword,
	}
	if d.Name == "" {
		d.Name = "dovecot"
	}
	if d.Separator == 0 {
		d.Separator = '/'
	}
	if d.Separator != '/' && d.Separator != '.' {
		return nil, fmt.Errorf("testserver: %s: separator %q: want '/' or '.'", d.Name, d.Separator)
	}
	if d.Users == nil {
		d.Users = map[string]string{DefaultUser: DefaultPassword}
	} else {
		d.Users = maps.Clone(d.Users)
	}
	if d.MasterUser == "" {
		d.MasterUser = DefaultMasterUser
	}
	if d.MasterPassword == "" {
		d.MasterPassword = DefaultMasterPassword
	}
	bin, err := lookBinary("dovecot")
	if err != nil {
		return nil, err
	}
	if d.doveadm, err = lookBinary("doveadm"); err != nil {
		return nil, err
	}
	if d.Dir, err = tempDir("zxd"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(d.Dir)
		}
	}()
	if err := d.writeConfig(o); err != nil {
		return nil, err
	}
	d.proc, err = startProcess(d.Name, d.Dir, bin, "-F", "-c", d.conf)
	if err != nil {
		return nil, err
	}
	probe := func(ctx context.Context) error {
		if err := greets(ctx, d.Addr, nil); err != nil {
			return err
		}
		if d.TLSAddr != "" {
			return greets(ctx, d.TLSAddr, &tls.Config{RootCAs: d.CA.Pool(), ServerName: "127.0.0.1"})
		}
		return nil
	}
	if err := waitReady(ctx, d.proc, probe, d.Log); err != nil {
		d.proc.stop()
		return nil, err
	}
	ok = true
	return d, nil
}

// writeConfig lays out the instance directory.
func (d *Dovecot) writeConfig(o DovecotOptions) error {
	nports := 1
	if o.TLS {
		nports = 2
	}
	ports, err := freePorts(nports)
	if err != nil {
		return err
	}
	d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	vars := map[string]string{
		"NAME":     sanitizeName(d.Name),
		"DIR":      d.Dir,
		"PORT":     strconv.Itoa(ports[0]),
		"TLSPORT":  "0",
		"SSL":      "ssl = no",
		"SEP":      string(d.Separator),
		"LAYOUT":   "",
		"EXTRA":    o.ExtraConfig,
		"ROOTLESS": "",
		"FIRSTUID": "500",
	}
	if d.Separator == '/' {
		vars["LAYOUT"] = ":LAYOUT=fs"
	}
	for _, sub := range []string{"run", "state", "log", "mail", "tls"} {
		if err := os.Mkdir(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("testserver: %s: %w", d.Name, err)
		}
	}
	if o.TLS {
		d.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		vars["TLSPORT"] = strconv.Itoa(ports[1])
		if d.CA, err = testpki.New(); err != nil {
			return err
		}
		certPEM, keyPEM, err := d.CA.Issue("127.0.0.1", "localhost")
		if err != nil {
			return err
		}
		tlsDir := filepath.Join(d.Dir, "tls")
		if err := os.WriteFile(filepath.Join(tlsDir, "cert.pem"), certPEM, 0o644); err != nil {
			return fmt.Errorf("testserver: %s: %w", d.Name, err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, "key.pem"), keyPEM, 0o600); err != nil {
			return fmt.Errorf("testserver: %s: %w", d.Name, err)
		}
		if d.CAFile, err = d.CA.WriteCAFile(tlsDir); err != nil {
			return err
		}
		vars["SSL"] = fmt.Sprintf("ssl = yes\nssl_cert = <%s/cert.pem\nssl_key = <%s/key.pem", tlsDir, tlsDir)
	}
	if os.Geteuid() == 0 {
		d.mailUID = rootMailUID
		vars["MAILUID"] = strconv.Itoa(rootMailUID)
		vars["MAILGID"] = strconv.Itoa(rootMailUID)
	} else {
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("testserver: %s: current user: %w", d.Name, err)
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
		if err != nil {
			return fmt.Errorf("testserver: %s: current group: %w", d.Name, err)
		}
		d.mailUID = -1 // files are ours already
		vars["MAILUID"] = strconv.Itoa(os.Geteuid())
		vars["MAILGID"] = strconv.Itoa(os.Getegid())
		vars["FIRSTUID"] = strconv.Itoa(min(500, os.Geteuid()))
		vars["ROOTLESS"] = os.Expand(rootlessConf, func(k string) string {
			return map[string]string{"RUNUSER": u.Username, "RUNGROUP": g.Name}[k]
		})
	}
	var users, masters bytes.Buffer
	names := make([]string, 0, len(d.Users))
	for u := range d.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		if err := passwdField(u, d.Users[u]); err != nil {
			return fmt.Errorf("testserver: %s: user %q: %w", d.Name, u, err)
		}
		fmt.Fprintf(&users, "%s:{PLAIN}%s\n", u, d.Users[u])
	}
	if err := passwdField(d.MasterUser, d.MasterPassword); err != nil {
		return fmt.Errorf("testserver: %s: master user %q: %w", d.Name, d.MasterUser, err)
	}
	fmt.Fprintf(&masters, "%s:{PLAIN}%s\n", d.MasterUser, d.MasterPassword)
	if err := os.WriteFile(filepath.Join(d.Dir, "users"), users.Bytes(), 0o644); err != nil {
		return fmt.Errorf("testserver: %s: %w", d.Name, err)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "masters"), masters.Bytes(), 0o644); err != nil {
		return fmt.Errorf("testserver: %s: %w", d.Name, err)
	}
	if d.mailUID >= 0 {
		if err := os.Chown(filepath.Join(d.Dir, "mail"), d.mailUID, d.mailUID); err != nil {
			return fmt.Errorf("testserver: %s: %w", d.Name, err)
		}
	}
	d.conf = filepath.Join(d.Dir, "dovecot.conf")
	conf := os.Expand(dovecotConf, func(k string) string { return vars[k] })
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("testserver: %s: %w", d.Name, err)
	}
	return nil
}

// passwdField rejects values that would break a passwd-file line.
func passwdField(name, pass string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if strings.ContainsAny(name, ":\r\n*") || strings.ContainsAny(pass, ":\r\n") {
		return fmt.Errorf("name or password contains ':', '*' or a line break")
	}
	return nil
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// greets dials addr (with TLS when cfg is not nil) and reads the IMAP
// greeting.
func greets(ctx context.Context, addr string, cfg *tls.Config) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if cfg != nil {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

// Close stops the server (SIGTERM, wait) and removes its directory.
func (d *Dovecot) Close() error {
	err := d.proc.stop()
	if rerr := os.RemoveAll(d.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("testserver: %s: %w", d.Name, rerr)
	}
	return err
}

// Log returns the server log and the process output.
// PID returns the Dovecot master's process id (benchmarks read the CPU time
// of its reaped children from /proc), or 0 when it is not running.
func (d *Dovecot) PID() int {
	if d.proc == nil || d.proc.cmd == nil || d.proc.cmd.Process == nil {
		return 0
	}
	return d.proc.cmd.Process.Pid
}

func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "log", "dovecot.log"))
	out := d.proc.out.String()
	if out != "" {
		return string(b) + "\n--- output ---\n" + out
	}
	return string(b)
}

// Doveadm runs doveadm with this instance's configuration and returns its
// standard output; the error quotes standard error.
func (d *Dovecot) Doveadm(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.doveadm, append([]string{"-c", d.conf}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("testserver: %s: doveadm %s: %w: %s", d.Name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Dial connects to Addr without TLS and logs in as user with the password
// from Users.
func (d *Dovecot) Dial(user string) (*imapclient.Client, error) {
	pass, ok := d.Users[user]
	if !ok {
		return nil, fmt.Errorf("testserver: %s: no user %q", d.Name, user)
	}
	return d.login(user, pass)
}

// DialMaster connects to Addr without TLS and logs in as user through the
// master user (LOGIN "user*admin").
func (d *Dovecot) DialMaster(user string) (*imapclient.Client, error) {
	return d.login(user+"*"+d.MasterUser, d.MasterPassword)
}

func (d *Dovecot) login(name, pass string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(d.Addr, &imapclient.Options{Dialer: &net.Dialer{Timeout: 10 * time.Second}})
	if err != nil {
		return nil, fmt.Errorf("testserver: %s: dial: %w", d.Name, err)
	}
	if err := c.Login(name, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("testserver: %s: login %q: %w", d.Name, name, err)
	}
	return c, nil
}

// UserDir returns the directory holding user's mail (home directory).
func (d *Dovecot) UserDir(user string) string {
	return filepath.Join(d.Dir, "mail", user)
}

// MessageCount sums the messages in every mailbox of users on d, as
// doveadm counts them.
func (d *Dovecot) MessageCount(ctx context.Context, users ...string) (int64, error) {
	var n int64
	for _, u := range users {
		out, err := d.Doveadm(ctx, "-f", "flow", "mailbox", "status", "-u", u, "messages", "*")
		if err != nil {
			return 0, fmt.Errorf("testserver: doveadm mailbox status %s: %v: %s", u, err, out)
		}
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "messages="); ok {
				c, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("testserver: doveadm mailbox status %s: %q", u, f)
				}
				n += c
			}
		}
	}
	return n, nil
}

// ResetUser deletes all of user's mail, folders and subscriptions: it
// kicks the user's sessions and removes the home directory. Close your own
// connections of that user first.
func (d *Dovecot) ResetUser(ctx context.Context, user string) error {
	if _, ok := d.Users[user]; !ok {
		return fmt.Errorf("testserver: %s: reset: no user %q", d.Name, user)
	}
	// kick exits non-zero when nobody was connected; that is fine.
	d.Doveadm(ctx, "kick", user)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, err := d.Doveadm(ctx, "who", "-1", user)
		if err != nil || !hasSession(out, user) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.RemoveAll(d.UserDir(user)); err != nil {
		return fmt.Errorf("testserver: %s: reset %q: %w", d.Name, user, err)
	}
	return nil
}

// hasSession reports whether doveadm who -1 output lists a session of user.
func hasSession(out []byte, user string) bool {
	for i, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 && f[0] == user { // line 0 is the header
			return true
		}
	}
	return false
}
