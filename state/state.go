// Package state is zxmigrate's store: runs, accounts and phase statuses,
// the checkpoints that imapcopy, caldav and carddav declare (so that every
// copy is resumable and a re-run never duplicates), and the coordination of
// runners that share one store (account leases with fencing, run-once
// global jobs, per-server budgets).
//
// Store is the interface; two backends implement it. *SQLite, the default,
// is one embedded file (modernc.org/sqlite, pure Go) for one machine: it is
// created with mode 0600 and never holds a secret, a path is opened only
// when it is absent or already a zxmigrate state file (see Check), and Lock
// and OpenLocked keep one process per file. *Postgres (OpenPostgres, or
// OpenURL with a postgres:// URL) is shared by any number of runners on any
// number of hosts. Both migrate their schema on open.
//
// A Store is safe for concurrent use.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLite is a Store in one SQLite file.
type SQLite struct {
	sqlStore
	path   string
	unlock func() // set by OpenLocked; Close calls it
}

// Open opens or creates the state file at path (":memory:" for a throwaway
// store) and brings its schema up to date.
//
// A file that already exists is opened only when Check finds it is a
// zxmigrate state file; anything else is refused with a *NotStateError and
// left exactly as it was (its mode, size and times do not change). An absent
// file is created complete: the schema is written into a temporary file in
// the same directory (mode 0600), which is then linked into place. A state
// file therefore never exists empty, and an empty file at path, made by
// touch or a shell redirection, is refused like any other foreign file.
//
// Open does not take the state's lock; OpenLocked does.
func Open(ctx context.Context, path string) (*SQLite, error) {
	if path == ":memory:" {
		return openDB(ctx, path, "file::memory:?_pragma=foreign_keys(ON)", false)
	}
	exists, err := Check(ctx, path)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := create(ctx, path); err != nil {
			return nil, err
		}
	}
	// Check (or create) proved the file is ours: keeping it private is now
	// safe, also for a state an older version created with a wider mode.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o600 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("state: chmod %s: %w", path, err)
		}
	}
	s, err := openDB(ctx, path, rwDSN(path), true)
	if err != nil {
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

// OpenLocked takes the state's lock (see Lock) and then opens it as Open
// does. Close releases the lock. Every command that writes a state opens it
// so; a second one on the same state gets a *LockedError naming the first.
func OpenLocked(ctx context.Context, path string) (*SQLite, error) {
	unlock, err := Lock(ctx, path)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, path)
	if err != nil {
		unlock()
		return nil, err
	}
	s.unlock = unlock
	return s, nil
}

// OpenReadOnly opens an existing state file for reading: for a report or a
// status of a run, which must never create or change one. A missing file is
// an error that matches fs.ErrNotExist; a file that is not a zxmigrate state
// file is a *NotStateError. Writes through the returned Store fail.
func OpenReadOnly(ctx context.Context, path string) (*SQLite, error) {
	exists, err := Check(ctx, path)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("state: %s: %w", path, fs.ErrNotExist)
	}
	return openDB(ctx, path, roDSN(path), false)
}

func rwDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
}

// roDSN opens path read-only without leaving anything behind. A database
// with a WAL file is being written (or was not closed): it is read through
// the WAL and its shared memory, which exist already. Without one, nothing
// is in flight, and immutable=1 reads the file alone, so SQLite creates no
// -wal or -shm file next to it (https://www.sqlite.org/uri.html, "immutable").
func roDSN(path string) string {
	if _, err := os.Stat(path + "-wal"); err == nil {
		return "file:" + path + "?mode=ro&_pragma=busy_timeout(10000)"
	}
	return "file:" + path + "?mode=ro&immutable=1"
}

func openDB(ctx context.Context, path, dsn string, upgrade bool) (*SQLite, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	// One writer at a time keeps SQLite's locking simple; reads are cheap.
	db.SetMaxOpenConns(1)
	s := &SQLite{path: path}
	s.init(db, sqliteDialect, !upgrade)
	if upgrade {
		err = s.upgrade(ctx, path)
	} else {
		err = s.checkVersion(ctx, path)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// create writes a new, complete state file at path, which must not exist.
func create(ctx context.Context, path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".new-*") // mode 0600
	if err != nil {
		return fmt.Errorf("state: create %s: %w", path, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	s, err := openDB(ctx, tmpName, rwDSN(tmpName), true)
	if err != nil {
		return err
	}
	// Closing the only connection checkpoints the WAL into the file.
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: create %s: %w", path, err)
	}
	// A hard link never replaces an existing file: two processes creating
	// the same state cannot overwrite each other's.
	err = os.Link(tmpName, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		// Another process created it meanwhile; Open checks it again.
		_, cerr := Check(ctx, path)
		return cerr
	}
	// A file system without hard links: rename, if the path is still free.
	if _, serr := os.Lstat(path); !errors.Is(serr, fs.ErrNotExist) {
		return fmt.Errorf("state: create %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("state: create %s: %w", path, err)
	}
	return nil
}

// Backend returns "sqlite".
func (s *SQLite) Backend() string { return "sqlite" }

// Path returns the file the store lives in.
func (s *SQLite) Path() string { return s.path }

// Close closes the store and, for OpenLocked, releases the lock.
func (s *SQLite) Close() error {
	err := s.db.Close()
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	return err
}
