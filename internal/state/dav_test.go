package state

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/dav"
)

func TestDAVCheckpoint(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	cal := s.Calendars("alice@example.com")
	r1 := dav.Record{SrcHref: "/a/cal/1.ics", SrcETag: "e1", UID: "u1", Hash: "h1", DstHref: "/b/cal/u1.ics", DstETag: "d1"}
	r2 := dav.Record{SrcHref: "/a/cal/1.ics", SrcETag: "e1", UID: "u2", Hash: "h2", DstHref: "/b/cal/u2.ics", DstETag: "d2"}
	for _, r := range []dav.Record{r1, r2} {
		if err := cal.Save(ctx, "coll", r); err != nil {
			t.Fatal(err)
		}
	}
	r1.SrcETag, r1.Hash, r1.DstETag = "e1b", "h1b", "d1b"
	if err := cal.Save(ctx, "coll", r1); err != nil {
		t.Fatal(err)
	}
	// Other account, other kind, other collection stay apart.
	if err := s.Calendars("bob").Save(ctx, "coll", r2); err != nil {
		t.Fatal(err)
	}
	if err := s.Contacts("alice@example.com").Save(ctx, "coll", r2); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Calendars("alice@example.com").Records(ctx, "coll")
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]dav.Record{}
	for _, r := range got {
		byUID[r.UID] = r
	}
	if diff := cmp.Diff(map[string]dav.Record{"u1": r1, "u2": r2}, byUID); diff != "" {
		t.Errorf("records after reopen (-want +got):\n%s", diff)
	}
	if got, _ := s.Calendars("alice@example.com").Records(ctx, "other"); len(got) != 0 {
		t.Errorf("other collection has %d records", len(got))
	}
	if got, _ := s.Contacts("alice@example.com").Records(ctx, "coll"); len(got) != 1 {
		t.Errorf("contacts checkpoint has %d records, want 1", len(got))
	}
}
