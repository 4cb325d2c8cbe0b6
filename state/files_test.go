package state

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
)

func TestFilesStoreSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Files().Node(ctx, "a@x", "257"); err != nil || ok {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	if err := s.Files().SetNode(ctx, "a@x", "257", files.Mapping{NodeID: "n1", Versions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Files().SetNode(ctx, "a@x", "257", files.Mapping{NodeID: "n1", Versions: 3}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, ok, err := s.Files().Node(ctx, "a@x", "257")
	if err != nil || !ok || m != (files.Mapping{NodeID: "n1", Versions: 3}) {
		t.Fatalf("after reopen: %+v %v %v", m, ok, err)
	}
	if _, ok, _ := s.Files().Node(ctx, "b@x", "257"); ok {
		t.Fatal("mapping leaked across accounts")
	}
}
