package migrate

import (
	"context"

	"github.com/zxmigrate/zxmigrate/internal/state"
)

// Store is zxmigrate's state file: one embedded SQLite database (mode 0600,
// never holding a secret) with runs, accounts, phase statuses and the
// checkpoints of the copy engines. Its Mail, Calendars and Contacts methods
// return the checkpoints that imapcopy.Copier, caldav.Copier and
// carddav.Copier take, so an embedder that drives one engine alone gets the
// same resume and no-duplicate guarantees as a planned run.
//
// A *Store is safe for concurrent use.
type Store = state.Store

// OpenStore opens or creates the state file at path and brings its schema up
// to date.
func OpenStore(ctx context.Context, path string) (*Store, error) { return state.Open(ctx, path) }
