package state

import (
	"context"
	"time"
)

// Snapshot is the state of a migration across its runners at one moment:
// what `migrate status` shows.
type Snapshot struct {
	// Now is the store's clock when the snapshot was taken; leases are
	// live while their expiry is after it.
	Now time.Time
	// Accounts are all accounts with their runner, lease expiry, phase
	// and progress; ByStatus counts them per status.
	Accounts []AccountRow
	ByStatus map[string]int
	// Running counts the accounts that hold a live lease.
	Running int
	// Globals are the run-once jobs as recorded.
	Globals []GlobalJob
	// Limits are the budgets and their slots in use, per server key.
	Limits []Limit
}

// TakeSnapshot reads a Snapshot of s. It only reads, so it works on a
// read-only store (OpenURLReadOnly) while runners are working.
func TakeSnapshot(ctx context.Context, s Store) (Snapshot, error) {
	var snap Snapshot
	var err error
	if snap.Now, err = s.Now(ctx); err != nil {
		return snap, err
	}
	if snap.Accounts, err = s.Accounts(ctx); err != nil {
		return snap, err
	}
	snap.ByStatus = map[string]int{}
	for _, a := range snap.Accounts {
		snap.ByStatus[a.Status]++
		if a.Runner != "" {
			snap.Running++
		}
	}
	if snap.Globals, err = s.Globals(ctx); err != nil {
		return snap, err
	}
	if snap.Limits, err = s.Limits(ctx); err != nil {
		return snap, err
	}
	return snap, nil
}
