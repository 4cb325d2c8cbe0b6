package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// NotStateError is returned for a state path that holds something other
// than a zxmigrate state file. Nothing about the file was changed.
type NotStateError struct {
	Path   string // the path given, left untouched
	Reason string // e.g. "not a SQLite database"
}

func (e *NotStateError) Error() string {
	return fmt.Sprintf("%s is not a zxmigrate state file (%s); it was left untouched: give a new path or an existing state file", e.Path, e.Reason)
}

// sqliteMagic starts every SQLite 3 database file
// (https://www.sqlite.org/fileformat.html, section 1.3 "The Database Header").
var sqliteMagic = []byte("SQLite format 3\x00")

// Check reports whether path exists and, if it does, whether it is a
// zxmigrate state file: a regular file that starts with the SQLite header
// and holds a meta table with a schema_version row. It returns (false, nil)
// for an absent path and a *NotStateError for anything else that is not a
// state file: a directory, an empty file, a text file, a program, another
// application's SQLite database.
//
// Check only reads: the file's mode, size and modification time stay as they
// were. The SQL look at a SQLite file is made read-only.
func Check(ctx context.Context, path string) (exists bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	notState := func(reason string) (bool, error) { return true, &NotStateError{Path: path, Reason: reason} }
	switch {
	case fi.IsDir():
		return notState("a directory")
	case !fi.Mode().IsRegular():
		return notState("not a regular file")
	case fi.Size() == 0:
		// zxmigrate creates state files complete (see Open): an empty one
		// was made by something else.
		return notState("an empty file")
	}
	f, err := os.Open(path)
	if err != nil {
		return notState(fmt.Sprintf("cannot read it: %v", errors.Unwrap(err)))
	}
	head := make([]byte, 100)
	n, _ := io.ReadFull(f, head)
	f.Close()
	if n < len(head) || !bytes.HasPrefix(head, sqliteMagic) {
		return notState("not a SQLite database")
	}
	db, err := sql.Open("sqlite", roDSN(path))
	if err != nil {
		return notState(fmt.Sprintf("cannot open it: %v", err))
	}
	defer db.Close()
	var v string
	err = db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key='schema_version'`).Scan(&v)
	if err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return notState("a SQLite database without zxmigrate's meta table")
	}
	return true, nil
}
