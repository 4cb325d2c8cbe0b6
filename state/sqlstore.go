package state

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// sqlStore is the part of a Store that both backends share: the same SQL,
// written with ? placeholders and a few {macros} that the dialect expands.
type sqlStore struct {
	writer // the unfenced Checkpoints

	db       *sql.DB
	d        *dialect
	readOnly bool
	// version is the schema version found on open; a read-only store of
	// an older schema answers without the tables it lacks.
	version int
	// pipeline, when set, runs a fenced single write and its lease check
	// in one round trip (PostgreSQL).
	pipeline func(ctx context.Context, l Lease, fn func(c conn) error) error
}

func (s *sqlStore) init(db *sql.DB, d *dialect, readOnly bool) {
	s.db, s.d, s.readOnly = db, d, readOnly
	s.writer = writer{s: s}
}

// DB returns the underlying database, for tests and tools that read the
// store's tables directly.
func (s *sqlStore) DB() *sql.DB { return s.db }

// ReadOnly reports whether the store was opened read-only.
func (s *sqlStore) ReadOnly() bool { return s.readOnly }

// Fenced implements Store.
func (s *sqlStore) Fenced(l Lease) Checkpoints {
	return &writer{s: s, fence: &l}
}

// c returns the database with placeholders rebound for the dialect.
func (s *sqlStore) c() conn { return conn{s.db, s.d} }

// dialect expands the shared SQL for one backend.
type dialect struct {
	name string
	// dollar turns ? placeholders into $1, $2, ...
	dollar bool
	macros *strings.Replacer
	cache  sync.Map // query -> expanded query
}

var sqliteDialect = &dialect{
	name: "sqlite",
	macros: strings.NewReplacer(
		// Milliseconds since the epoch, from SQLite's clock
		// (https://www.sqlite.org/lang_datefunc.html).
		"{now}", "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
		"{int}", "INTEGER",
		"{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{norowid}", " WITHOUT ROWID",
		// One connection serialises every transaction: no row locks.
		"{skiplocked}", "",
		"{forupdate}", "",
		"{forshare}", "",
	),
}

var postgresDialect = &dialect{
	name:   "postgres",
	dollar: true,
	macros: strings.NewReplacer(
		// The database server's clock, so that runners need not agree
		// (https://www.postgresql.org/docs/current/functions-datetime.html).
		"{now}", "(extract(epoch from clock_timestamp()) * 1000)::bigint",
		"{int}", "BIGINT",
		"{serial}", "BIGSERIAL PRIMARY KEY",
		"{norowid}", "",
		"{skiplocked}", "FOR UPDATE SKIP LOCKED",
		"{forupdate}", "FOR UPDATE",
		"{forshare}", "FOR SHARE",
	),
}

// q expands query for the dialect.
func (d *dialect) q(query string) string {
	if v, ok := d.cache.Load(query); ok {
		return v.(string)
	}
	out := d.macros.Replace(query)
	if d.dollar {
		var b strings.Builder
		n := 0
		for _, r := range out {
			if r == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(r)
		}
		out = b.String()
	}
	d.cache.Store(query, out)
	return out
}

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// conn is an execer whose queries are expanded for the dialect.
type conn struct {
	ex execer
	d  *dialect
}

func (c conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.ex.ExecContext(ctx, c.d.q(query), args...)
}

func (c conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.ex.QueryContext(ctx, c.d.q(query), args...)
}

func (c conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.ex.QueryRowContext(ctx, c.d.q(query), args...)
}

func (c conn) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.ex.PrepareContext(ctx, c.d.q(query))
}

// tx runs fn in one transaction and commits it.
func (s *sqlStore) tx(ctx context.Context, fn func(c conn) error) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if err := fn(conn{t, s.d}); err != nil {
		return err
	}
	return t.Commit()
}

// writer implements Checkpoints; with a fence, every write first checks
// the lease in the same transaction.
type writer struct {
	s     *sqlStore
	fence *Lease
}

// write runs fn. Without a fence and unless atomic, fn runs on the database
// directly; otherwise in one transaction that starts with the fence check.
func (w *writer) write(ctx context.Context, atomic bool, fn func(c conn) error) error {
	if w.fence == nil && !atomic {
		return fn(w.s.c())
	}
	if w.s.pipeline != nil && !atomic {
		return w.s.pipeline(ctx, *w.fence, fn)
	}
	return w.s.tx(ctx, func(c conn) error {
		if w.fence != nil {
			if err := checkFence(ctx, c, *w.fence); err != nil {
				return err
			}
		}
		return fn(c)
	})
}

// checkFence fails with ErrLeaseLost unless l is live. On PostgreSQL the
// lease's row stays share-locked until the transaction ends, so a takeover
// (an UPDATE of that row) waits for the fenced write to commit.
func checkFence(ctx context.Context, c conn, l Lease) error {
	var q string
	switch l.Kind {
	case LeaseAccount:
		q = `SELECT 1 FROM accounts WHERE source=? AND lease_token=? AND lease_expires > {now} {forshare}`
	case LeaseGlobal:
		q = `SELECT 1 FROM jobs WHERE name=? AND token=? AND status='running' AND expires > {now} {forshare}`
	default:
		return fmt.Errorf("state: fence of unknown lease kind %q", l.Kind)
	}
	var one int
	if err := c.QueryRowContext(ctx, q, l.Key, l.Token).Scan(&one); err != nil {
		if err == sql.ErrNoRows {
			return fmt.Errorf("%w: %s %s (token %d)", ErrLeaseLost, l.Kind, l.Key, l.Token)
		}
		return fmt.Errorf("state: check lease of %s: %w", l.Key, err)
	}
	return nil
}
