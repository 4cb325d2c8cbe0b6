package state

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

type fileFacts struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

func factsOf(t *testing.T, p string) fileFacts {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fileFacts{fi.Mode(), fi.Size(), fi.ModTime()}
}

// foreignFiles writes files that are not state files into dir, each with an
// old modification time so that any write would show.
func foreignFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files := map[string]string{}
	write := func(name string, data []byte, mode fs.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	write("README.md", []byte("# Notes\n\nNot a database.\n"), 0o644)
	write("tool", []byte("#!/bin/sh\necho hello\n"), 0o755)
	write("empty", nil, 0o644)
	write("empty-private", nil, 0o600)
	write("short-sqlite", []byte("SQLite format 3\x00"), 0o644)
	// Another application's SQLite database.
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", "file:"+other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, old, old); err != nil {
		t.Fatal(err)
	}
	files["other.db"] = other
	// Another application's database in WAL mode: reading it must not
	// leave -wal or -shm files next to it.
	walDB := filepath.Join(dir, "other-wal.db")
	db, err = sql.Open("sqlite", "file:"+walDB+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chtimes(walDB, old, old); err != nil {
		t.Fatal(err)
	}
	files["other-wal.db"] = walDB
	return files
}

// TestForeignFilesAreRefusedAndUntouched: every way of opening a state
// refuses a file that is not one, and leaves its mode, size and mtime as
// they were and creates nothing next to it.
func TestForeignFilesAreRefusedAndUntouched(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := foreignFiles(t, dir)
	sub := filepath.Join(dir, "adir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	files["adir"] = sub
	opens := map[string]func(string) error{
		"Open":         func(p string) error { s, err := Open(ctx, p); closeIf(s); return err },
		"OpenLocked":   func(p string) error { s, err := OpenLocked(ctx, p); closeIf(s); return err },
		"OpenReadOnly": func(p string) error { s, err := OpenReadOnly(ctx, p); closeIf(s); return err },
		"Lock": func(p string) error {
			u, err := Lock(ctx, p)
			if u != nil {
				u()
			}
			return err
		},
	}
	before, _ := os.ReadDir(dir)
	for name, p := range files {
		for how, open := range opens {
			t.Run(name+"/"+how, func(t *testing.T) {
				want := factsOf(t, p)
				err := open(p)
				var ns *NotStateError
				if !errors.As(err, &ns) {
					t.Fatalf("%s(%s) = %v, want a *NotStateError", how, name, err)
				}
				if got := factsOf(t, p); got != want {
					t.Errorf("%s(%s) changed the file: got %+v, want %+v", how, name, got, want)
				}
				if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "left untouched") {
					t.Errorf("message %q does not name the file and say it is untouched", err)
				}
			})
		}
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		var names []string
		for _, e := range after {
			names = append(names, e.Name())
		}
		t.Errorf("files appeared next to the refused ones: %v", names)
	}
}

func closeIf(s *SQLite) {
	if s != nil {
		s.Close()
	}
}

// TestOpenReadOnlyNeverCreates: a read-only open of a missing path fails
// with fs.ErrNotExist and creates nothing.
func TestOpenReadOnlyNeverCreates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	_, err := OpenReadOnly(context.Background(), p)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly(absent) = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s (stat: %v)", p, err)
	}
}

// TestOpenReadOnlyReadsWithoutWriting: an existing state reads through a
// read-only store, refuses writes, and keeps its mode, size and mtime.
func TestOpenReadOnlyReadsWithoutWriting(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRun(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	want := factsOf(t, p)
	ro, err := OpenReadOnly(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := ro.Runs(ctx)
	if err != nil || len(runs) != 1 {
		t.Errorf("Runs = %v, %v; want one run", runs, err)
	}
	if _, err := ro.StartRun(ctx, "x"); err == nil {
		t.Error("StartRun on a read-only store succeeded")
	}
	if !ro.ReadOnly() {
		t.Error("ReadOnly() = false")
	}
	ro.Close()
	if got := factsOf(t, p); got != want {
		t.Errorf("read-only open changed the state file: got %+v, want %+v", got, want)
	}
}

// TestOpenCreatesCompleteFile: a new state is a checked state file at once,
// private, with no temporary file left behind.
func TestOpenCreatesCompleteFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := Check(ctx, p); !ok || err != nil {
		t.Errorf("Check(new state) = %v, %v; want true, nil", ok, err)
	}
	if got := factsOf(t, p).mode.Perm(); got != 0o600 {
		t.Errorf("mode = %o, want 600", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".new-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestLockNamesTheHolder: a second lock on one state is refused with the
// first holder's pid and host; after unlock it is granted.
func TestLockNamesTheHolder(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenLocked(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenLocked(ctx, p)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second OpenLocked = %v, want *LockedError", err)
	}
	host, _ := os.Hostname()
	if le.PID != os.Getpid() || le.Host != host {
		t.Errorf("holder = pid %d host %q, want pid %d host %q", le.PID, le.Host, os.Getpid(), host)
	}
	if !strings.Contains(err.Error(), "another run") || !strings.Contains(err.Error(), host) {
		t.Errorf("message %q does not name the other run and its host", err)
	}
	s.Close()
	u, err := Lock(ctx, p)
	if err != nil {
		t.Fatalf("Lock after Close = %v", err)
	}
	u()
}

// TestReadOnlyLeavesNoSideFiles: reading a closed state leaves no WAL or
// SHM file behind.
func TestReadOnlyLeavesNoSideFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.ReadDir(dir)
	ro, err := OpenReadOnly(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Runs(ctx); err != nil {
		t.Fatal(err)
	}
	ro.Close()
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		var names []string
		for _, e := range after {
			names = append(names, e.Name())
		}
		t.Errorf("files after a read-only open: %v (before: %d)", names, len(before))
	}
}

// TestReadOnlyWhileWriting: a report of a live run reads what the running
// process committed, through its WAL, while that process holds the lock.
func TestReadOnlyWhileWriting(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	w, err := OpenLocked(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.StartRun(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p + "-wal"); err != nil {
		t.Fatalf("the writer has no WAL (%v); the test needs one", err)
	}
	ro, err := OpenReadOnly(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	runs, err := ro.Runs(ctx)
	if err != nil || len(runs) != 1 {
		t.Errorf("Runs while writing = %v, %v; want the one run", runs, err)
	}
}
