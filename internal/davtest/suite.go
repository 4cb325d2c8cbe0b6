package davtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
)

// totals is the part of the stats the suite compares.
type totals struct {
	Created, Updated, Unchanged, Skipped, Failed int
}

func sum(s *dav.Stats) totals {
	t := s.Totals()
	return totals{t.Created, t.Updated, t.Unchanged, t.Skipped, t.Failed}
}

func errorsOf(s *dav.Stats) []dav.ItemError {
	var out []dav.ItemError
	for _, c := range s.Collections {
		out = append(out, c.Errors...)
	}
	return out
}

// RunCalendars runs the calendar conformance suite from src to dst: the
// fixtures arrive semantically equal, a re-run writes nothing, changing 5
// events updates exactly 5, a run without state matches by UID, the
// destination never holds a UID twice, and a malformed object is reported
// while the others arrive. Both servers must start empty.
func RunCalendars(t *testing.T, src, dst Side, o Options) {
	ctx := context.Background()
	events := EventFixtures(o.Events)
	SeedCalendar(t, src, "work", "Work ✓", []string{"VEVENT"}, events)
	SeedCalendar(t, src, "tasks", "Tasks", []string{"VTODO"}, TaskFixtures())
	want := len(events) + 1
	malformed := false
	if o.Malformed {
		c := src.client(t, src.CalendarHome)
		href := dav.DirHref(c.Base().Path) + "work/malformed.ics"
		if _, err := c.Put(ctx, href, dav.CalDAV.ContentType, []byte(Malformed), dav.Cond{Create: true}); err != nil {
			t.Logf("%s refuses the malformed object (%v): malformed check skipped for this pair", src.Name, err)
		} else {
			malformed = true
		}
	}
	s, err := caldav.NewDAV(src.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	newDst := func() *dav.Remote {
		d, err := caldav.NewDAV(dst.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cp := dav.NewMemoryCheckpoint()
	cop := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}

	st, err := cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatalf("first copy: %v", err)
	}
	wantFirst := totals{Created: want}
	if malformed {
		wantFirst.Skipped = 1
	}
	if diff := cmp.Diff(wantFirst, sum(st)); diff != "" {
		t.Fatalf("first copy totals (-want +got):\n%s\nerrors: %v", diff, errorsOf(st))
	}
	if malformed {
		errs := errorsOf(st)
		if len(errs) != 1 || !strings.HasSuffix(errs[0].Item, "malformed.ics") || !strings.Contains(errs[0].Reason, "has no DTSTART") {
			t.Errorf("malformed object reported as %+v, want malformed.ics with the reason", errs)
		}
	}
	verify(t, &dav.Copier{Rules: caldav.Rules{}}, newDst(), s, want)
	checkCollections(t, st, "work", "tasks")

	// Re-run: nothing written.
	st, err = cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if got := sum(st); got.Created != 0 || got.Updated != 0 || got.Unchanged != want {
		t.Fatalf("re-run totals %+v, want 0 created, 0 updated, %d unchanged", got, want)
	}

	// Change 5 events: exactly those are updated.
	workHref := dav.DirHref(src.client(t, src.CalendarHome).Base().Path) + "work/"
	changed := modify(t, src, dav.CalDAV, workHref, 5, caldav.Rules{})
	var (
		updMu   sync.Mutex // OnEvent may be called concurrently
		updated []string
	)
	cop.OnEvent = func(ev dav.Event) {
		if d, ok := ev.(dav.ObjectDone); ok && d.Action == dav.Updated {
			updMu.Lock()
			updated = append(updated, d.UID)
			updMu.Unlock()
		}
	}
	st, err = cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatalf("after change: %v", err)
	}
	cop.OnEvent = nil
	if got := sum(st); got.Created != 0 || got.Updated != 5 {
		t.Fatalf("after changing 5: totals %+v, want 0 created, 5 updated", got)
	}
	sort.Strings(changed)
	sort.Strings(updated)
	if diff := cmp.Diff(changed, updated); diff != "" {
		t.Errorf("updated UIDs (-changed +updated):\n%s", diff)
	}
	verify(t, &dav.Copier{Rules: caldav.Rules{}}, newDst(), s, want)

	// No state: objects matched by UID at the destination, nothing written.
	st, err = (&dav.Copier{Rules: caldav.Rules{}}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatalf("stateless re-run: %v", err)
	}
	if got := sum(st); got.Created != 0 || got.Updated != 0 || got.Unchanged != want {
		t.Fatalf("stateless re-run totals %+v, want everything unchanged (%d)", got, want)
	}
	verify(t, &dav.Copier{Rules: caldav.Rules{}}, newDst(), s, want)
}

// checkCollections checks that the seeded collections were created at the
// destination (servers may hold default collections of their own).
func checkCollections(t *testing.T, st *dav.Stats, names ...string) {
	t.Helper()
	for _, n := range names {
		found := false
		for _, c := range st.Collections {
			if c.Name == n {
				found = true
				if !c.CollectionCreated {
					t.Errorf("collection %s: destination not created by the copy", c.Source)
				}
			}
		}
		if !found {
			t.Errorf("collection %q not copied", n)
		}
	}
}

type verifier interface {
	Verify(ctx context.Context, dst dav.Destination, src dav.Source) (*dav.Verification, error)
}

func verify(t *testing.T, v verifier, dst dav.Destination, src dav.Source, want int, lossy ...string) {
	t.Helper()
	res, err := v.Verify(context.Background(), dst, src)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	matched := 0
	var different []string
	for _, c := range res.Collections {
		if len(c.Missing)+len(c.Duplicates) > 0 {
			t.Errorf("verify %s -> %s: missing %v, duplicates %v", c.Source, c.Destination, c.Missing, c.Duplicates)
		}
		different = append(different, c.Different...)
		matched += c.Matched
	}
	sort.Strings(different)
	lossy = append([]string(nil), lossy...)
	sort.Strings(lossy)
	if diff := cmp.Diff(lossy, different); diff != "" {
		t.Errorf("verify: objects found different (-known server bugs +got):\n%s", diff)
	}
	if matched != want-len(lossy) {
		t.Errorf("verify matched %d objects, want %d", matched, want-len(lossy))
	}
}

// RunContacts is RunCalendars for address books.
func RunContacts(t *testing.T, src, dst Side, o Options) {
	ctx := context.Background()
	cards := ContactFixtures(o.Contacts)
	SeedAddressBook(t, src, "friends", "Friends ✓", cards)
	SeedAddressBook(t, src, "work", "Work", map[string][]byte{"w1.vcf": GenCard(9000)})
	want := len(cards) + 1
	s, err := carddav.NewDAV(src.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	newDst := func() *dav.Remote {
		d, err := carddav.NewDAV(dst.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cp := dav.NewMemoryCheckpoint()
	cop := &dav.Copier{Rules: carddav.Rules{}, Checkpoint: cp}
	st, err := cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatalf("first copy: %v", err)
	}
	if diff := cmp.Diff(totals{Created: want}, sum(st)); diff != "" {
		t.Fatalf("first copy totals (-want +got):\n%s\nerrors: %v", diff, errorsOf(st))
	}
	// The group with a urn:uuid member is noted.
	noted := false
	for _, c := range st.Collections {
		for _, n := range c.Notes {
			noted = noted || (n.UID == "urn:uuid:group4-1" && strings.Contains(n.Note, "not e-mail addresses"))
		}
	}
	if !noted {
		t.Errorf("group with a non-address member not reported")
	}
	verify(t, &dav.Copier{Rules: carddav.Rules{}}, newDst(), s, want, o.Lossy...)
	checkCollections(t, st, "friends", "work")

	st, err = cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(st); got.Created != 0 || got.Updated != 0 || got.Unchanged != want {
		t.Fatalf("re-run totals %+v, want 0 created, 0 updated, %d unchanged", got, want)
	}
	friends := dav.DirHref(src.client(t, src.AddressBookHome).Base().Path) + "friends/"
	changed := modify(t, src, dav.CardDAV, friends, 5, carddav.Rules{})
	st, err = cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(st); got.Created != 0 || got.Updated != 5 {
		t.Fatalf("after changing %v: totals %+v, want 0 created, 5 updated", changed, got)
	}
	verify(t, &dav.Copier{Rules: carddav.Rules{}}, newDst(), s, want, o.Lossy...)
	st, err = (&dav.Copier{Rules: carddav.Rules{}}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(st); got.Created != 0 || got.Updated != len(o.Lossy) || got.Unchanged != want-len(o.Lossy) {
		t.Fatalf("stateless re-run totals %+v, want %d unchanged, %d rewritten (known server bugs)", got, want-len(o.Lossy), len(o.Lossy))
	}
}

// Name formats a pair name.
func Name(src, dst Side) string { return fmt.Sprintf("%s->%s", src.Name, dst.Name) }
