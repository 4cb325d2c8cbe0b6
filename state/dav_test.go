package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
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

// TestDAVCheckpointBatches: a copy with the SQLite checkpoint stores the
// records batch by batch (SaveBatch), one per object, and a re-run with them
// reads nothing and writes nothing.
func TestDAVCheckpointBatches(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	objs := davtest.EventFixtures(40)
	davtest.SeedCalendar(t, src, "c", "C", nil, objs)
	run := func() dav.CollectionStats {
		t.Helper()
		from, _ := caldav.NewDAV(src.Endpoint())
		to, _ := caldav.NewDAV(dst.Endpoint())
		st, err := (&dav.Copier{Rules: caldav.Rules{}, BatchSize: 7, Checkpoint: s.Calendars("user1")}).Copy(ctx, to, from)
		if err != nil {
			t.Fatal(err)
		}
		return st.Totals()
	}
	if tot := run(); tot.Created != len(objs) {
		t.Fatalf("first run %+v, want %d created", tot, len(objs))
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM dav_objects WHERE kind='calendar' AND account='user1' AND dst_etag != ''`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(objs) {
		t.Errorf("%d records with a destination ETag, want %d", n, len(objs))
	}
	puts := dsrv.Requests("PUT")
	if tot := run(); tot.Unchanged != len(objs) || dsrv.Requests("PUT") != puts {
		t.Errorf("re-run %+v with %d PUTs, want all unchanged and none", tot, dsrv.Requests("PUT")-puts)
	}
}

// TestDAVCheckpointForget: Forget drops the named records only, of one
// collection pair of one account and kind, and Collections lists the pairs
// that still hold records; both survive a reopen. A copy with Delete runs
// on the SQLite checkpoint: the records of deleted objects are gone after.
func TestDAVCheckpointForget(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	cal := s.Calendars("alice").(dav.ForgetCheckpoint)
	rec := func(i int) dav.Record {
		return dav.Record{SrcHref: fmt.Sprintf("/a/%d.ics", i), UID: fmt.Sprint(i), DstHref: fmt.Sprintf("/b/%d.ics", i), DstETag: "d"}
	}
	for i := 0; i < 3; i++ {
		for _, k := range []string{"k1", "k2"} {
			if err := cal.Save(ctx, k, rec(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Contacts("alice").Save(ctx, "k3", rec(0)); err != nil {
		t.Fatal(err)
	}
	if err := cal.Forget(ctx, "k1", []dav.Record{rec(0), rec(2)}); err != nil {
		t.Fatal(err)
	}
	if err := cal.Forget(ctx, "k2", []dav.Record{rec(0), rec(1), rec(2)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, p); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cal = s.Calendars("alice").(dav.ForgetCheckpoint)
	got, err := cal.Records(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dav.Record{rec(1)}, got); diff != "" {
		t.Errorf("k1 after Forget (-want +got):\n%s", diff)
	}
	keys, err := cal.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k1"}, keys); diff != "" {
		t.Errorf("calendar pairs (-want +got):\n%s", diff)
	}
	if keys, _ := s.Contacts("alice").(dav.ForgetCheckpoint).Collections(ctx); len(keys) != 1 || keys[0] != "k3" {
		t.Errorf("contact pairs %v, want [k3]", keys)
	}

	src, srv := davtest.MemSide(t, "src")
	dst, _ := davtest.MemSide(t, "dst")
	href := davtest.SeedCalendar(t, src, "c", "C", nil, davtest.EventFixtures(4))
	from, _ := caldav.NewDAV(src.Endpoint())
	to, _ := caldav.NewDAV(dst.Endpoint())
	cp := s.Calendars("user1")
	if _, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(ctx, to, from); err != nil {
		t.Fatal(err)
	}
	srv.Delete("user1", href+"gen-0000.ics")
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(ctx, to, from)
	if err != nil || st.Totals().Deleted != 1 {
		t.Fatalf("copy with Delete: %v %+v", err, st)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM dav_objects WHERE kind='calendar' AND account='user1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("%d records after the deletion, want 6", n)
	}
}

func BenchmarkDAVCheckpointSave(b *testing.B) {
	for _, batch := range []int{1, 50} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "state.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cp := s.Calendars("user1").(dav.BatchCheckpoint)
			rs := make([]dav.Record, 0, batch)
			for i := 0; i < b.N; i++ {
				rs = append(rs, dav.Record{SrcHref: fmt.Sprintf("/a/c/%d.ics", i), SrcETag: "e", UID: fmt.Sprint(i), Hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", DstHref: fmt.Sprintf("/b/c/%d.ics", i), DstETag: "d"})
				if len(rs) == batch || i == b.N-1 {
					if err := cp.SaveBatch(ctx, "coll", rs); err != nil {
						b.Fatal(err)
					}
					rs = rs[:0]
				}
			}
		})
	}
}
