package caldav_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
)

func TestCalendarDeleteMemory(t *testing.T) {
	src, _ := davtest.MemSide(t, "mem-src")
	dst, _ := davtest.MemSide(t, "mem-dst")
	davtest.RunCalendarDeletes(t, src, dst)
}

// TestCalendarDeleteServers runs the deletion checks with each real server as the
// destination (and as the source).
func TestCalendarDeleteServers(t *testing.T) {
	pairs := []struct {
		name     string
		src, dst func(testing.TB, string) davtest.Side
	}{
		{"radicale-xandikos", davtest.Radicale, davtest.Xandikos},
		{"xandikos-radicale", davtest.Xandikos, davtest.Radicale},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			davtest.RunCalendarDeletes(t, p.src(t, "src"), p.dst(t, "dst"))
		})
	}
}

// seedWork adds calendar "work" with n generated events to src and returns
// its href.
func seedWork(tb testing.TB, src *memdav.Server, n int) string {
	tb.Helper()
	work := src.AddCalendar("user1", "work", "Work", "VEVENT")
	for i := 0; i < n; i++ {
		if err := src.Put("user1", work, fmt.Sprintf("e%d.ics", i), davtest.GenEvent(i)); err != nil {
			tb.Fatal(err)
		}
	}
	return work
}

// delSetup seeds calendar "work" on a memdav source with 4 generated events
// and copies it once to a memdav destination with a memory checkpoint.
func delSetup(t *testing.T) (src, dst *memdav.Server, s, d *dav.Remote, cp dav.Checkpoint, work string, dstEP dav.Endpoint) {
	t.Helper()
	srcSide, src := davtest.MemSide(t, "mem-src")
	dstSide, dst := davtest.MemSide(t, "mem-dst")
	work = seedWork(t, src, 4)
	var err error
	if s, err = caldav.NewDAV(srcSide.Endpoint()); err != nil {
		t.Fatal(err)
	}
	dstEP = dstSide.Endpoint()
	if d, err = caldav.NewDAV(dstEP); err != nil {
		t.Fatal(err)
	}
	cp = dav.NewMemoryCheckpoint()
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(context.Background(), d, s)
	if err != nil || st.Totals().Created != 4 {
		t.Fatalf("first copy: %v %+v", err, st)
	}
	return
}

func hasNote(st *dav.Stats, sub string) bool {
	for _, c := range st.Collections {
		for _, n := range c.Notes {
			if strings.Contains(n.Note, sub) {
				return true
			}
		}
	}
	return false
}

// TestCalendarDeleteZeroListingGuard: a source collection that lists no objects
// while the checkpoint holds records for it deletes nothing.
func TestCalendarDeleteZeroListingGuard(t *testing.T) {
	src, dst, s, d, cp, work, _ := delSetup(t)
	for i := 0; i < 4; i++ {
		if !src.Delete("user1", fmt.Sprintf("%se%d.ics", work, i)) {
			t.Fatal("seed delete failed")
		}
	}
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Deleted != 0 || tot.HeldBack != 4 {
		t.Errorf("totals %+v, want 0 deleted, 4 held back", tot)
	}
	if !hasNote(st, "the source lists no objects; 4 deletions held back") {
		t.Errorf("no note on the held-back deletions: %+v", st.Collections)
	}
	if n := len(dst.Snapshot("user1", memdav.CalendarHome("user1")+"work/")); n != 4 {
		t.Errorf("destination holds %d objects, want 4", n)
	}
}

// hidden is a source without one of its collections, as when it was
// deleted at the source.
type hidden struct {
	dav.Source
	name string
}

func (h hidden) Collections(ctx context.Context) ([]dav.Collection, error) {
	cs, err := h.Source.Collections(ctx)
	var out []dav.Collection
	for _, c := range cs {
		if c.Name != h.name {
			out = append(out, c)
		}
	}
	return out, err
}

// TestCalendarDeleteGoneCollection: when the source collection itself is gone,
// nothing is deleted and the collection pair is reported.
func TestCalendarDeleteGoneCollection(t *testing.T) {
	_, dst, s, d, cp, _, _ := delSetup(t)
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), d, hidden{s, "work"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Collections) != 1 || !st.Collections[0].Gone || st.Collections[0].HeldBack != 4 || st.Collections[0].Deleted != 0 {
		t.Fatalf("collections %+v, want one gone pair with 4 held back", st.Collections)
	}
	if !hasNote(st, "source collection is gone") {
		t.Errorf("no note on the gone collection: %+v", st.Collections)
	}
	if n := len(dst.Snapshot("user1", memdav.CalendarHome("user1")+"work/")); n != 4 {
		t.Errorf("destination holds %d objects, want 4", n)
	}
}

// TestCalendarDeleteNeedsCheckpoint: only recorded copies may be deleted, so
// Delete without a checkpoint is refused before anything is sent.
func TestCalendarDeleteNeedsCheckpoint(t *testing.T) {
	_, _, s, d, _, _, _ := delSetup(t)
	if _, err := (&dav.Copier{Rules: caldav.Rules{}, Delete: true}).Copy(context.Background(), d, s); err == nil || !strings.Contains(err.Error(), "Checkpoint") {
		t.Errorf("Copy with Delete and no checkpoint: %v, want an error", err)
	}
}

// failDelete answers 403 to DELETE (or method) of one path and passes the
// rest on.
type failDelete struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	path   string
	method string
}

func (f *failDelete) Do(req *http.Request) (*http.Response, error) {
	m := f.method
	if m == "" {
		m = http.MethodDelete
	}
	if req.Method == m && strings.HasSuffix(req.URL.Path, f.path) {
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Body: io.NopCloser(strings.NewReader("no")), Header: http.Header{}, Request: req}, nil
	}
	return f.next.Do(req)
}

// TestCalendarDeleteFailureNamesHref: a refused DELETE is a failure naming the
// object; the other deletions go on; the record stays, so the next run
// deletes it.
func TestCalendarDeleteFailureNamesHref(t *testing.T) {
	srcSide, src := davtest.MemSide(t, "mem-src")
	dstSide, dst := davtest.MemSide(t, "mem-dst")
	work := seedWork(t, src, 4)
	s, _ := caldav.NewDAV(srcSide.Endpoint())
	d, _ := caldav.NewDAV(dstSide.Endpoint())
	cp := dav.NewMemoryCheckpoint()
	if _, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(context.Background(), d, s); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"e1.ics", "e2.ics"} {
		src.Delete("user1", work+n)
	}
	ep := dstSide.Endpoint()
	ep.HTTPClient = &failDelete{next: dstSide.HTTP, path: "/gen-0001@zxmigrate.test.ics"}
	fd, _ := caldav.NewDAV(ep)
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), fd, s)
	if err != nil {
		t.Fatal(err)
	}
	tot := st.Totals()
	if tot.Deleted != 1 || tot.Failed != 1 || st.OK() {
		t.Errorf("totals %+v, want 1 deleted, 1 failed", tot)
	}
	errs := st.Collections[0].Errors
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "gen-0001@zxmigrate.test.ics") || !strings.Contains(errs[0].Reason, "403") {
		t.Errorf("errors %+v, want the refused object named", errs)
	}
	dstWork := memdav.CalendarHome("user1") + "work/"
	if n := len(dst.Snapshot("user1", dstWork)); n != 3 {
		t.Errorf("destination holds %d objects, want 3", n)
	}
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Deleted != 1 || tot.Failed != 0 {
		t.Errorf("next run totals %+v, want the remaining one deleted", tot)
	}
	if n := len(dst.Snapshot("user1", dstWork)); n != 2 {
		t.Errorf("destination holds %d objects, want 2", n)
	}
}

// TestCalendarDeleteRESTDestination: the REST import cannot delete; the candidates
// are reported as held back, once per collection.
func TestCalendarDeleteRESTDestination(t *testing.T) {
	srcSide, src := davtest.MemSide(t, "mem-src")
	dstSide, dst := davtest.MemSide(t, "mem-dst")
	work := seedWork(t, src, 3)
	target := dst.AddCalendar("user1", "Calendar", "Calendar")
	s, _ := caldav.NewDAV(srcSide.Endpoint())
	d, err := caldav.NewZimbraRESTDestination(dav.Endpoint{URL: strings.TrimSuffix(dstSide.URL, "/"), User: "user1", Password: dstSide.Password,
		Account: "user1", HTTPClient: dstSide.HTTP}, "Calendar")
	if err != nil {
		t.Fatal(err)
	}
	cp := dav.NewMemoryCheckpoint()
	if st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(context.Background(), d, s); err != nil || st.Totals().Created != 3 {
		t.Fatalf("copy: %v %+v", err, st)
	}
	src.Delete("user1", work+"e0.ics")
	src.Delete("user1", work+"e1.ics")
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Deleted != 0 || tot.HeldBack != 2 {
		t.Errorf("totals %+v, want 0 deleted, 2 held back", tot)
	}
	n := 0
	for _, c := range st.Collections {
		for _, note := range c.Notes {
			if strings.Contains(note.Note, "cannot delete") {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("%d notes on the destination that cannot delete, want 1: %+v", n, st.Collections)
	}
	if got := len(dst.Snapshot("user1", target)); got != 3 {
		t.Errorf("destination holds %d objects, want 3", got)
	}
}

// TestCalendarDeleteMovedEvent: an event moved to another calendar at the source
// is deleted from the first at the destination and exists once; on a
// server where a UID is unique per mailbox (Carbonio) the copy adopts it
// where it is, and it is not deleted.
func TestCalendarDeleteMovedEvent(t *testing.T) {
	for _, carbonio := range []bool{false, true} {
		t.Run(fmt.Sprintf("carbonio=%v", carbonio), func(t *testing.T) {
			srcSide, src := davtest.MemSide(t, "mem-src")
			dstSide, dst := davtest.MemSide(t, "mem-dst")
			dst.CarbonioUIDs = carbonio
			work := src.AddCalendar("user1", "work", "Work", "VEVENT")
			home := src.AddCalendar("user1", "home", "Home", "VEVENT")
			for i := 0; i < 3; i++ {
				if err := src.Put("user1", work, fmt.Sprintf("e%d.ics", i), davtest.GenEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := src.Put("user1", home, "h.ics", davtest.GenEvent(10)); err != nil {
				t.Fatal(err)
			}
			s, _ := caldav.NewDAV(srcSide.Endpoint())
			d, _ := caldav.NewDAV(dstSide.Endpoint())
			cp := dav.NewMemoryCheckpoint()
			if _, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(context.Background(), d, s); err != nil {
				t.Fatal(err)
			}
			// Move e1 from work to home.
			src.Delete("user1", work+"e1.ics")
			if err := src.Put("user1", home, "moved.ics", davtest.GenEvent(1)); err != nil {
				t.Fatal(err)
			}
			cop := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}
			st, err := cop.Copy(context.Background(), d, s)
			if err != nil || !st.OK() {
				t.Fatalf("copy: %v %+v", err, st)
			}
			count := 0
			for _, c := range []string{"work/", "home/"} {
				for _, o := range dst.Snapshot("user1", memdav.CalendarHome("user1")+c) {
					if o.UID == "gen-0001@zxmigrate.test" {
						count++
					}
				}
			}
			if count != 1 {
				t.Errorf("the moved event is %d times at the destination, want once", count)
			}
			wantDeleted := 1
			if carbonio {
				wantDeleted = 0
			}
			if got := st.Totals().Deleted; got != wantDeleted {
				t.Errorf("%d deleted, want %d", got, wantDeleted)
			}
			if carbonio && !hasNote(st, "holds the copy of another source object") {
				t.Errorf("the adopted object's old record not noted: %+v", st.Collections)
			}
			v, err := cop.Verify(context.Background(), d, s)
			if err != nil || !v.OK() {
				t.Errorf("verify: %v %+v", err, v)
			}
			// Nothing more to do.
			st, err = cop.Copy(context.Background(), d, s)
			if err != nil || st.Totals().Deleted+st.Totals().Created+st.Totals().Updated != 0 {
				t.Errorf("re-run: %v %+v", err, st.Totals())
			}
		})
	}
}

// TestCalendarDeleteAlreadyGone: an object the destination lost already
// counts as deleted without a request, and its record is forgotten.
func TestCalendarDeleteAlreadyGone(t *testing.T) {
	src, dst, s, d, cp, work, _ := delSetup(t)
	src.Delete("user1", work+"e0.ics")
	if !dst.Delete("user1", memdav.CalendarHome("user1")+"work/gen-0000@zxmigrate.test.ics") {
		t.Fatal("destination copy not found")
	}
	dels := dst.Requests("DELETE")
	cop := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}
	st, err := cop.Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Deleted != 1 || dst.Requests("DELETE") != dels {
		t.Errorf("totals %+v with %d DELETE requests, want 1 deleted, none sent", tot, dst.Requests("DELETE")-dels)
	}
	if recs, _ := cp.Records(context.Background(), st.Collections[0].Source+" => "+st.Collections[0].Destination); len(recs) != 3 {
		t.Errorf("%d records left, want 3", len(recs))
	}
}

// TestCalendarDeleteHeldBackOnFailure: while objects of a collection fail,
// its deletions wait (a failed object may be the new home of a UID).
func TestCalendarDeleteHeldBackOnFailure(t *testing.T) {
	src, _, s, d, cp, work, ep := delSetup(t)
	src.Delete("user1", work+"e0.ics")
	changed := strings.Replace(string(davtest.GenEvent(1)), "SUMMARY:", "SUMMARY:Changed ", 1)
	src.Delete("user1", work+"e1.ics")
	if err := src.Put("user1", work, "e1.ics", []byte(changed)); err != nil {
		t.Fatal(err)
	}
	ep.HTTPClient = &failDelete{next: ep.HTTPClient, path: "/gen-0001@zxmigrate.test.ics", method: http.MethodPut}
	fd, _ := caldav.NewDAV(ep)
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), fd, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Deleted != 0 || tot.HeldBack != 1 || tot.Failed != 1 {
		t.Errorf("totals %+v, want 1 failed, 1 held back", tot)
	}
	if !hasNote(st, "1 objects of this collection failed; 1 deletions held back") {
		t.Errorf("no note on the held-back deletion: %+v", st.Collections)
	}
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Deleted != 1 || tot.Updated != 1 || tot.Failed != 0 {
		t.Errorf("clean run totals %+v, want 1 updated, 1 deleted", tot)
	}
}

// BenchmarkCalendarDelete measures, for 500 events in memory, an unchanged
// re-run with and without Delete (the cost of looking for deletions), and
// a run that deletes 250 of them (per op: one such run).
func BenchmarkCalendarDelete(b *testing.B) {
	setup := func(b *testing.B) (*memdav.Server, string, *dav.Remote, *dav.Remote, dav.Checkpoint) {
		srcSide, src := davtest.MemSide(b, "mem-src")
		dstSide, _ := davtest.MemSide(b, "mem-dst")
		work := seedWork(b, src, 500)
		s, _ := caldav.NewDAV(srcSide.Endpoint())
		d, _ := caldav.NewDAV(dstSide.Endpoint())
		cp := dav.NewMemoryCheckpoint()
		if _, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(context.Background(), d, s); err != nil {
			b.Fatal(err)
		}
		return src, work, s, d, cp
	}
	for _, del := range []bool{false, true} {
		b.Run(fmt.Sprintf("rerun/delete=%v", del), func(b *testing.B) {
			_, _, s, d, cp := setup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: del}).Copy(context.Background(), d, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("delete250", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			src, work, s, d, cp := setup(b)
			for j := 0; j < 500; j += 2 {
				src.Delete("user1", fmt.Sprintf("%se%d.ics", work, j))
			}
			b.StartTimer()
			st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(context.Background(), d, s)
			if err != nil || st.Totals().Deleted != 250 {
				b.Fatalf("%v %+v", err, st.Totals())
			}
		}
	})
}
