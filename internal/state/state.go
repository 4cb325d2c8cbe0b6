// Package state is zxmigrate's one embedded SQLite store (modernc.org/sqlite,
// pure Go). It holds runs, accounts and phase statuses, and implements the
// checkpoint interfaces that imapcopy, caldav and carddav declare, so that
// every copy is resumable and a re-run never duplicates.
//
// The file is created with mode 0600 and never holds a secret.
//
// A *Store is safe for concurrent use.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is an open state file.
type Store struct {
	db   *sql.DB
	path string
}

// Open opens or creates the state file at path (":memory:" for a throwaway
// store) and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path != ":memory:" {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("state: open %s: %w", path, err)
		}
		f.Close()
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("state: chmod %s: %w", path, err)
		}
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	if path == ":memory:" {
		dsn = "file::memory:?_pragma=foreign_keys(ON)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	// One writer at a time keeps SQLite's locking simple; reads are cheap.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := s.upgrade(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// WAL and SHM side files hold the same data: keep them private too.
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Stat(side); err == nil {
			_ = os.Chmod(side, 0o600)
		}
	}
	return s, nil
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// DB returns the underlying database for the package's own tables.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// schemaVersion is bumped whenever a schema list below changes shape in a way
// CREATE ... IF NOT EXISTS cannot express; upgrade then runs the step.
const schemaVersion = 1

var coreSchema = []string{
	`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS runs (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		plan_hash TEXT NOT NULL DEFAULT '',
		started TEXT NOT NULL,
		finished TEXT,
		outcome TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE IF NOT EXISTS accounts (
		source TEXT PRIMARY KEY,
		destination TEXT NOT NULL,
		phase TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL DEFAULT 'pending',
		error TEXT NOT NULL DEFAULT '',
		size INTEGER NOT NULL DEFAULT 0,
		updated TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE IF NOT EXISTS phases (
		account TEXT NOT NULL,
		phase TEXT NOT NULL,
		status TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '',
		updated TEXT NOT NULL,
		PRIMARY KEY (account, phase)
	)`,
}

func (s *Store) upgrade(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: begin schema upgrade: %w", err)
	}
	defer tx.Rollback()
	for _, list := range [][]string{coreSchema, mailSchema, davSchema, filesSchema} {
		for _, stmt := range list {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("state: schema: %w", err)
			}
		}
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key='schema_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key,value) VALUES('schema_version',?)`, schemaVersion); err != nil {
			return fmt.Errorf("state: schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("state: schema version: %w", err)
	case v > schemaVersion:
		return fmt.Errorf("state: %s was written by a newer zxmigrate (schema %d > %d)", s.path, v, schemaVersion)
	}
	return tx.Commit()
}
