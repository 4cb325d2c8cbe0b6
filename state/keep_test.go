package state

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An unreachable store (here: closed) ends the kept lease's work once the
// lease may have run out.
func TestKeepUnreachableStoreEndsWork(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(ctx, "a@x", "a@y", 1); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.ClaimAccount(ctx, "r1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	work, stop := Keep(ctx, s, l, time.Second)
	defer stop()
	s.Close()
	select {
	case <-work.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("work under a lease that could not be renewed went on")
	}
	if cause := context.Cause(work); !errors.Is(cause, ErrLeaseLost) || !strings.Contains(cause.Error(), "not renewed") {
		t.Fatalf("cause %v", cause)
	}
}
