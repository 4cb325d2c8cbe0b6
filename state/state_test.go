package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenCreatesPrivateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("state file mode = %o, want 600", got)
	}
	s.Close()
	// Reopening an existing store keeps its schema version.
	s2, err := Open(context.Background(), p)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s2.Close()
}
