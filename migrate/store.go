package migrate

import (
	"context"

	"github.com/zxmigrate/zxmigrate/state"
)

// Store is zxmigrate's state: an embedded SQLite file (mode 0600, never
// holding a secret) or a shared PostgreSQL database, with runs, accounts,
// phase statuses and the checkpoints of the copy engines. Its Mail,
// Calendars and Contacts methods return the checkpoints that
// imapcopy.Copier and dav.Copier take, so an embedder that drives one
// engine alone gets the same resume and no-duplicate guarantees as a
// planned run.
//
// A Store is safe for concurrent use.
type Store = state.Store

// OpenStore opens or creates the state file at path and brings its schema up
// to date. A path that holds anything but a state file (a text file, a
// program, an empty file, another application's database) is refused with a
// *NotStateError and left untouched. OpenStore takes no lock; see
// OpenStoreLocked.
func OpenStore(ctx context.Context, path string) (Store, error) { return state.Open(ctx, path) }

// OpenStoreLocked is OpenStore under the state's lock, which Store.Close
// releases: while one process has it, another gets a *LockedError naming
// it. Runner.Run takes the same lock.
func OpenStoreLocked(ctx context.Context, path string) (Store, error) {
	return state.OpenLocked(ctx, path)
}

// NotStateError is returned for a state path that holds something other
// than a zxmigrate state file; nothing about that file was changed.
type NotStateError = state.NotStateError

// LockedError is returned while another process holds a state's lock; it
// names that process by pid and host.
type LockedError = state.LockedError
