package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
)

// copyFixture copies testdata/v1.db, a state file written by the release
// before leases (schema 1), into a temporary directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSchemaOneFileIsMigratedAndKeepsItsData(t *testing.T) {
	ctx := context.Background()
	p := copyFixture(t)

	// Read-only, the old file is read as it is, without lease columns.
	ro, err := OpenReadOnly(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := ro.Accounts(ctx)
	if err != nil || len(accts) != 2 {
		t.Fatalf("read-only accounts of a schema 1 file: %+v, %v", accts, err)
	}
	if g, err := ro.Globals(ctx); err != nil || len(g) != 0 {
		t.Fatalf("read-only globals: %v %v", g, err)
	}
	ro.Close()

	for round := range 2 { // the second open finds it migrated already
		s, err := Open(ctx, p)
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		var v string
		if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key='schema_version'`).Scan(&v); err != nil || v != "2" {
			t.Fatalf("schema version %q, %v", v, err)
		}
		var steps int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_version`).Scan(&steps); err != nil || steps != 1 {
			t.Fatalf("schema_version holds %d steps, want 1 (step 2), %v", steps, err)
		}
		a, ok, err := s.Account(ctx, "alice@old.example")
		if err != nil || !ok || a.Destination != "alice@new.example" || a.Size != 5000 || a.Status != "done" || a.Phase != "mail" {
			t.Fatalf("alice = %+v %v %v", a, ok, err)
		}
		ph, ok, _ := s.Phase(ctx, "alice@old.example", "mail")
		if !ok || ph.Detail != `{"copied":3}` {
			t.Fatalf("phase = %+v", ph)
		}
		runs, _ := s.Runs(ctx)
		if len(runs) != 1 || runs[0].PlanHash != "planhash-v1" || runs[0].Outcome != "interrupted" {
			t.Fatalf("runs = %+v", runs)
		}
		m := s.Mail("alice@old.example -> alice@new.example")
		st, ok, _ := m.Folder(ctx, "INBOX")
		if !ok || st.SourceUIDValidity != 11 || st.DestUIDValidity != 22 {
			t.Fatalf("folder = %+v", st)
		}
		done, inflight, _ := m.Mappings(ctx, "INBOX")
		if len(done) != 2 || done[1].Dst != 20 || len(inflight) != 1 || inflight[0] != 3 {
			t.Fatalf("mappings %v in flight %v", done, inflight)
		}
		recs, _ := s.Calendars("alice@old.example").Records(ctx, "home")
		if len(recs) != 1 || recs[0].DstHref != "/d/1.ics" {
			t.Fatalf("calendar records = %+v", recs)
		}
		var fm files.Mapping
		fm, ok, _ = s.Files().Node(ctx, "alice@old.example", "doc-1")
		if !ok || fm.NodeID != "node-1" || fm.Versions != 2 {
			t.Fatalf("files node = %+v", fm)
		}
		if r, ok, _ := s.LastReport(ctx); !ok || string(r) != `{"outcome":"interrupted"}` {
			t.Fatalf("report = %s", r)
		}
		if round == 0 {
			// The new columns work on the migrated file: bob is larger.
			l, ok, err := s.ClaimAccount(ctx, "r1", 60e9)
			if err != nil || !ok || l.Key != "bob@old.example" {
				t.Fatalf("claim on the migrated file = %+v %v %v", l, ok, err)
			}
			if err := s.Release(ctx, l, false); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	p := copyFixture(t)
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE meta SET value='99' WHERE key='schema_version'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, p); err == nil {
		s.Close()
		t.Fatal("a schema 99 file was opened")
	}
	if s, err := OpenReadOnly(ctx, p); err == nil {
		s.Close()
		t.Fatal("a schema 99 file was opened read-only")
	}
}
