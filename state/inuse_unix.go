//go:build unix

package state

import (
	"errors"
	"os"
	"syscall"
)

// InUse reports whether a live process holds the lock of the state at path
// (see Lock): a run in progress. It creates and changes nothing; without a
// lock file no process holds it. The kernel drops the lock with its
// process, so the state of a crashed run is not in use.
func InUse(path string) bool {
	if path == "" || path == ":memory:" {
		return false
	}
	f, err := os.Open(path + ".lock")
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
