package migrate

import (
	"context"

	"github.com/zxmigrate/zxmigrate/state"
)

// lockState takes the state's lock (state.Lock) so that two runs never work
// on the same state, and the same accounts, at once. A second run gets a
// *state.LockedError naming the first one's pid and host.
func lockState(path string) (unlock func(), err error) {
	return state.Lock(context.Background(), path)
}

// StateInUse reports whether a live process holds the lock of the state
// file at path: a run in progress (state.InUse).
func StateInUse(path string) bool { return state.InUse(path) }
