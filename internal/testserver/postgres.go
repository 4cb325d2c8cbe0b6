package testserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configure StartPostgres.
type PostgresOptions struct {
	// Durable keeps fsync and synchronous commit on, as in production.
	// Off (the default) makes tests faster; a crash of the test machine
	// is the only thing it gives up.
	Durable bool
	// MaxConnections is the server's max_connections (200 when 0).
	MaxConnections int
}

// Postgres is a PostgreSQL server in a temporary directory, listening on
// a free 127.0.0.1 port, started as a child of the test. When the test
// runs as root the server runs as an unprivileged system user (postgres,
// else nobody), since PostgreSQL refuses to run as root.
type Postgres struct {
	Dir  string // instance directory (data, password file)
	Port int
	// User is the superuser; its password is in PasswordFile (mode 0600,
	// owned by the test's user) and Password, and never on a command line.
	User         string
	Password     string
	PasswordFile string

	proc *process
	dbs  atomic.Int64
}

// postgresBin finds a PostgreSQL server program: in $PATH, else in the
// newest /usr/lib/postgresql/*/bin (Debian's layout).
func postgresBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("testserver: PostgreSQL's %s not found in $PATH or /usr/lib/postgresql/*/bin (apt-get install postgresql)", name)
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres starts PostgreSQL for t and stops it in t.Cleanup, logging
// the server log when t failed. It skips t when PostgreSQL is not
// installed (fails it when $CI is set) and fails t when it does not start.
func StartPostgres(t testing.TB, o PostgresOptions) *Postgres {
	t.Helper()
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := postgresBin(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%v (CI is set: real-server tests must run)", err)
			}
			t.Skip(err)
		}
	}
	p, err := NewPostgres(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	cleanupTB(t, "postgres", p.Close, p.Log)
	return p
}

// NewPostgres initialises a cluster and starts its server; the caller must
// Close it.
func NewPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	initdb, err := postgresBin("initdb")
	if err != nil {
		return nil, err
	}
	server, err := postgresBin("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("zxpg")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Dir: dir, User: "zxtest"}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	p.Password = hex.EncodeToString(pw[:])
	p.PasswordFile = filepath.Join(dir, "client-password")
	if err := os.WriteFile(p.PasswordFile, []byte(p.Password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	// initdb reads the superuser's password from a file the server's
	// user can read; it is removed once the cluster exists.
	pwFile := filepath.Join(dir, "initdb-password")
	if err := os.WriteFile(pwFile, []byte(p.Password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	if cred != nil {
		for _, f := range []string{pwFile, data} {
			if err := os.Chown(f, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("testserver: %w", err)
			}
		}
	}
	cmd := exec.CommandContext(ctx, initdb, "-D", data, "-U", p.User, "--pwfile", pwFile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testserver: initdb: %v\n%s", err, tail(string(out), 30))
	}
	os.Remove(pwFile)
	p2, err := withRetry(func() (*Postgres, error) {
		return p, p.start(ctx, server, data, cred, o)
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return p2, nil
}

func (p *Postgres) start(ctx context.Context, server, data string, cred *syscall.Credential, o PostgresOptions) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	p.Port = ports[0]
	maxConns := o.MaxConnections
	if maxConns == 0 {
		maxConns = 200
	}
	args := []string{"-D", data, "-c", "listen_addresses=127.0.0.1", "-c", "port=" + strconv.Itoa(p.Port),
		"-c", "unix_socket_directories=", "-c", "max_connections=" + strconv.Itoa(maxConns)}
	if !o.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	p.proc, err = startProcessCred("postgres", p.Dir, server, cred, args...)
	if err != nil {
		return err
	}
	probe := func(ctx context.Context) error {
		c, err := p.connect(ctx, "postgres")
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}
	if err := waitReady(ctx, p.proc, probe, p.Log); err != nil {
		p.proc.stop()
		return err
	}
	return nil
}

// serverCredential returns the user the server runs as: nil (ourselves)
// unless we are root, then postgres or nobody.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("testserver: running as root and no postgres or nobody user to run PostgreSQL as")
}

// startProcessCred is startProcess as another user (cred nil: ourselves).
func startProcessCred(name, dir, bin string, cred *syscall.Credential, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	// Go sets the parent-death signal after the credentials, so the
	// change of user does not clear it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Credential: cred}
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

func (p *Postgres) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.URL(db))
	if err != nil {
		return nil, err
	}
	cfg.Password = p.Password
	return pgx.ConnectConfig(ctx, cfg)
}

// URL returns the URL of database db, without the password.
func (p *Postgres) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(p.User), Host: fmt.Sprintf("127.0.0.1:%d", p.Port),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// NewDatabase creates a fresh database and returns its URL (without the
// password).
func (p *Postgres) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("zx%d", p.dbs.Add(1))
	c, err := p.connect(ctx, "postgres")
	if err != nil {
		return "", fmt.Errorf("testserver: postgres: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("testserver: create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// Exec runs one SQL statement in database db as the superuser.
func (p *Postgres) Exec(ctx context.Context, db, sql string, args ...any) error {
	c, err := p.connect(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// Log returns the server's output.
func (p *Postgres) Log() string {
	if p.proc == nil {
		return ""
	}
	return p.proc.out.String()
}

// PID returns the server's process id.
func (p *Postgres) PID() int { return p.proc.cmd.Process.Pid }

// Close stops the server with a fast shutdown (SIGINT: clients are
// disconnected, https://www.postgresql.org/docs/current/server-shutdown.html)
// and removes its directory.
func (p *Postgres) Close() error {
	var err error
	if p.proc != nil && !p.proc.exited() {
		p.proc.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.proc.done:
		case <-time.After(stopTimeout):
		}
		err = p.proc.stop()
	}
	if rerr := os.RemoveAll(p.Dir); err == nil && rerr != nil && !strings.Contains(rerr.Error(), "no such file") {
		err = rerr
	}
	return err
}
