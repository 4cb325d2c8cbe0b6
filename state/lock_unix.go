//go:build unix

package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive lock on path+".lock" so that two processes never
// work on the same state (and so the same mailboxes) at once. The lock is
// flock(2) on that file: the kernel drops it when the process ends, also on
// SIGKILL, so a crashed run never leaves a stale lock. The holder writes its
// pid and host name into the file, and a refused Lock returns them in a
// *LockedError.
//
// Lock first checks path (see Check) and refuses a file that is not a
// state file before creating anything next to it. ":memory:" needs no lock.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	if path == ":memory:" {
		return func() {}, nil
	}
	if _, err := Check(ctx, path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			le := &LockedError{Path: path}
			b := make([]byte, 512)
			n, _ := f.ReadAt(b, 0)
			le.PID, le.Host = parseHolder(b[:n])
			return nil, le
		}
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(holderLine(os.Getpid(), host)), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
