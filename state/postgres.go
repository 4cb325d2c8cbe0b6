package state

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is a Store in a PostgreSQL database, shared by every runner
// that opens the same URL. It is reached with pgx
// (github.com/jackc/pgx/v5) through database/sql.
type Postgres struct {
	sqlStore
	url string // without a password
}

// PasswordEnv names the environment variable that holds the PostgreSQL
// password; PasswordFileEnv names one that holds the path of a file whose
// first line is the password.
const (
	PasswordEnv     = "MIGRATE_STATE_PASSWORD"
	PasswordFileEnv = "MIGRATE_STATE_PASSWORD_FILE"
)

// PostgresOptions tune OpenPostgres.
type PostgresOptions struct {
	// PasswordFile names a file whose first line is the password, used
	// when $MIGRATE_STATE_PASSWORD is unset (e.g. a mounted Secret).
	PasswordFile string
	// ReadOnly opens the store for reading (status, report): no schema
	// migration, and every transaction is read-only.
	ReadOnly bool
	// MaxConns caps the connections of this process (16 when 0).
	MaxConns int
}

// IsURL reports whether target names a PostgreSQL database
// (postgres:// or postgresql://) rather than a state file.
func IsURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// OpenURL opens the store target names: a PostgreSQL URL (see
// OpenPostgres) or a state file path (see Open).
func OpenURL(ctx context.Context, target string) (Store, error) {
	if IsURL(target) {
		return OpenPostgres(ctx, target, PostgresOptions{})
	}
	return Open(ctx, target)
}

// OpenURLLocked is OpenURL for a command that writes: a state file is
// opened with OpenLocked (one process per file), a PostgreSQL store is
// opened as by OpenURL, since many runners share it.
func OpenURLLocked(ctx context.Context, target string) (Store, error) {
	if IsURL(target) {
		return OpenPostgres(ctx, target, PostgresOptions{})
	}
	return OpenLocked(ctx, target)
}

// OpenURLReadOnly opens target for reading only (see OpenReadOnly).
func OpenURLReadOnly(ctx context.Context, target string) (Store, error) {
	if IsURL(target) {
		return OpenPostgres(ctx, target, PostgresOptions{ReadOnly: true})
	}
	return OpenReadOnly(ctx, target)
}

// OpenPostgres connects to the PostgreSQL database of rawURL
// (postgres://USER@HOST:PORT/DB?sslmode=...) and migrates its schema.
//
// The URL must not hold a password: it would show in argv, the process
// list and shell histories. The password comes, in this order, from
// $MIGRATE_STATE_PASSWORD, from opt.PasswordFile, from the file named by
// $MIGRATE_STATE_PASSWORD_FILE, or from libpq's own sources, which pgx
// reads: $PGPASSWORD, the password file ($PGPASSFILE, ~/.pgpass) and the
// service file ($PGSERVICE, $PGSERVICEFILE)
// (https://www.postgresql.org/docs/current/libpq-envars.html).
// Errors name the URL without a password.
//
// TLS is verified by default: without an sslmode in the URL or $PGSSLMODE,
// a server that is not on the loopback interface or a Unix socket is
// reached with sslmode=verify-full.
func OpenPostgres(ctx context.Context, rawURL string, opt PostgresOptions) (*Postgres, error) {
	shown := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || !IsURL(rawURL) {
		return nil, fmt.Errorf("state: %s is not a postgres:// URL", shown)
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return nil, fmt.Errorf("state: %s: the URL holds a password; give it in $%s, a password file or ~/.pgpass instead", shown, PasswordEnv)
	}
	q := u.Query()
	if q.Get("sslmode") == "" && os.Getenv("PGSSLMODE") == "" && q.Get("service") == "" && os.Getenv("PGSERVICE") == "" && !localHost(u.Hostname()) {
		q.Set("sslmode", "verify-full")
		u.RawQuery = q.Encode()
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx masks a password it recognises; nothing of ours is in
		// the URL anyway.
		return nil, fmt.Errorf("state: %s: %v", shown, redactErr(err, ""))
	}
	pw, err := password(opt.PasswordFile)
	if err != nil {
		return nil, err
	}
	if pw != "" {
		cfg.Password = pw
	}
	if cfg.ConnectTimeout == 0 {
		// An unreachable server fails a connection attempt in
		// seconds, not after the system's TCP timeout.
		cfg.ConnectTimeout = 10 * time.Second
	}
	if opt.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "zxmigrate"
	}
	db := stdlib.OpenDB(*cfg)
	maxConns := opt.MaxConns
	if maxConns <= 0 {
		maxConns = 16
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	p := &Postgres{url: shown}
	p.init(db, postgresDialect, opt.ReadOnly)
	p.pipeline = p.pipelined
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: connect to %s: %v", shown, redactErr(err, cfg.Password))
	}
	if opt.ReadOnly {
		err = p.checkVersion(ctx, shown)
	} else {
		err = p.upgrade(ctx, shown)
	}
	if err != nil {
		db.Close()
		return nil, errors.New(redactErr(err, cfg.Password).Error())
	}
	return p, nil
}

// password returns the password from zxmigrate's own sources, or "" to
// leave it to libpq's.
func password(file string) (string, error) {
	if pw := os.Getenv(PasswordEnv); pw != "" {
		return pw, nil
	}
	if file == "" {
		file = os.Getenv(PasswordFileEnv)
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("state: read the password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// localHost reports whether host is a loopback address, localhost or a
// Unix socket directory.
func localHost(host string) bool {
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedactURL returns rawURL without its password, for messages and logs.
// A string that does not parse as a URL is replaced entirely.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable database URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactErr masks pw in err's text.
func redactErr(err error, pw string) error {
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// Backend returns "postgres".
func (p *Postgres) Backend() string { return "postgres" }

// Path returns the database URL without a password.
func (p *Postgres) Path() string { return p.url }

// Close closes the connections.
func (p *Postgres) Close() error { return p.db.Close() }

// pipelined runs fn, a write of single statements, with each statement
// sent in one pipeline after zx_fence: PostgreSQL runs the pipeline as one
// implicit transaction, so the lease's row stays share-locked through the
// write, and an error of the fence aborts the write
// (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-PIPELINING).
func (p *Postgres) pipelined(ctx context.Context, l Lease, fn func(c conn) error) error {
	sc, err := p.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer sc.Close()
	return sc.Raw(func(dc any) error {
		return fn(conn{ex: &fencedExec{db: p.db, pc: dc.(*stdlib.Conn).Conn(), l: l}, d: p.d})
	})
}

// fencedExec sends each Exec after the lease check. Reads are not fenced
// and go to the pool; Prepare is not supported (batches run in a
// transaction instead).
type fencedExec struct {
	db *sql.DB
	pc *pgx.Conn
	l  Lease
}

func (f *fencedExec) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT zx_fence($1, $2, $3)`, string(f.l.Kind), f.l.Key, f.l.Token)
	b.Queue(query, args...)
	br := f.pc.SendBatch(ctx, b)
	_, ferr := br.Exec()
	tag, werr := br.Exec()
	cerr := br.Close()
	var pgErr *pgconn.PgError
	if errors.As(ferr, &pgErr) && pgErr.Code == "ZXL01" {
		return nil, fmt.Errorf("%w: %s %s (token %d)", ErrLeaseLost, f.l.Kind, f.l.Key, f.l.Token)
	}
	if err := errors.Join(ferr, werr, cerr); err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (f *fencedExec) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return f.db.QueryContext(ctx, query, args...)
}

func (f *fencedExec) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return f.db.QueryRowContext(ctx, query, args...)
}

func (f *fencedExec) PrepareContext(context.Context, string) (*sql.Stmt, error) {
	return nil, errors.New("state: a fenced single write cannot prepare; use a transaction")
}
