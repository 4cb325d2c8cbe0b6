//go:build unix

package migrate

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockState takes an exclusive lock on path+".lock" so that two runs never
// work on the same state (and the same accounts) at once. The lock goes
// with the process, also on SIGKILL.
func lockState(path string) (unlock func(), err error) {
	if path == ":memory:" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("migrate: lock state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("migrate: another run is using the state file %s", path)
		}
		return nil, fmt.Errorf("migrate: lock state: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// StateInUse reports whether a live process holds the lock of the state
// file at path (a run in progress). It creates nothing: a missing lock file
// means no run holds it. The kernel drops the lock with its process, so a
// crashed run's state is not in use.
func StateInUse(path string) bool {
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
