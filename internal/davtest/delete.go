package davtest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// Counter is an HTTP client that counts requests by method.
type Counter struct {
	Next interface {
		Do(*http.Request) (*http.Response, error)
	}
	mu sync.Mutex
	n  map[string]int
}

// Do implements webdav.HTTPClient.
func (c *Counter) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[req.Method]++
	c.mu.Unlock()
	next := c.Next
	if next == nil {
		next = http.DefaultClient
	}
	return next.Do(req)
}

// N returns the number of requests sent with method.
func (c *Counter) N(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

// Counted returns s with its transport wrapped in a Counter.
func Counted(s Side) (Side, *Counter) {
	c := &Counter{Next: s.HTTP}
	s.HTTP = c
	return s, c
}

// DeleteAt deletes the objects named (by last path segment) in the
// collection at href on s, with If-Match on their listed ETags.
func DeleteAt(t testing.TB, s Side, href string, names ...string) {
	t.Helper()
	ctx := context.Background()
	c := s.client(t, s.URL)
	refs, err := c.List(ctx, href)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, n := range names {
		left[n] = true
	}
	for _, r := range refs {
		seg := dav.CleanPath(r.Href)
		seg = seg[strings.LastIndex(seg, "/")+1:]
		if !left[seg] {
			continue
		}
		etag := r.ETag
		if etag == "" {
			if _, etag, err = c.Get(ctx, r.Href); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Delete(ctx, r.Href, etag); err != nil {
			t.Fatalf("%s: delete %s: %v", s.Name, r.Href, err)
		}
		delete(left, seg)
	}
	if len(left) > 0 {
		t.Fatalf("%s: %v not found in %s", s.Name, left, href)
	}
}

// UIDs returns the UIDs held in the collection at href on s, sorted.
func UIDs(t testing.TB, s Side, href string, rules dav.Rules) []string {
	t.Helper()
	r, err := dav.NewRemote(rules.Protocol(), s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	col := dav.Collection{Href: href}
	refs, err := r.List(ctx, col)
	if err != nil {
		t.Fatalf("%s: list %s: %v", s.Name, href, err)
	}
	var out []string
	err = r.Read(ctx, col, refs, func(ref dav.Ref, data []byte, err error) {
		if err != nil {
			return
		}
		if uid, _, err := rules.Fingerprint(davtext.CRLF(data)); err == nil && uid != "" {
			out = append(out, uid)
		}
	})
	if err != nil {
		t.Fatalf("%s: read %s: %v", s.Name, href, err)
	}
	sort.Strings(out)
	return out
}

// changeAt rewrites the object at href on s (SUMMARY or FN changed) with
// If-Match on its current ETag.
func changeAt(t testing.TB, s Side, p *dav.Protocol, href string) {
	t.Helper()
	ctx := context.Background()
	c := s.client(t, s.URL)
	data, etag, err := c.Get(ctx, href)
	if err != nil {
		t.Fatal(err)
	}
	if etag == "" {
		if etag, err = c.ETag(ctx, href); err != nil {
			t.Fatal(err)
		}
	}
	data = davtext.CRLF(data)
	out := strings.Replace(string(data), "SUMMARY:", "SUMMARY:Changed at the destination ", 1)
	if p == dav.CardDAV {
		out = strings.Replace(string(data), "\nFN:", "\nFN:Changed ", 1)
	}
	if out == string(data) {
		t.Fatalf("change %s: nothing to change", href)
	}
	if _, err := c.Put(ctx, href, p.ContentType, []byte(out), dav.Cond{IfMatch: etag}); err != nil {
		t.Fatalf("%s: change %s: %v", s.Name, href, err)
	}
}

func destinationOf(t testing.TB, st *dav.Stats, name string) string {
	t.Helper()
	for _, c := range st.Collections {
		if c.Name == name {
			return c.Destination
		}
	}
	t.Fatalf("collection %q not in the stats", name)
	return ""
}

func without(all []string, drop ...string) []string {
	var out []string
	for _, u := range all {
		keep := true
		for _, d := range drop {
			keep = keep && u != d
		}
		if keep {
			out = append(out, u)
		}
	}
	return out
}

func notesOf(st *dav.Stats) []dav.ItemNote {
	var out []dav.ItemNote
	for _, c := range st.Collections {
		out = append(out, c.Notes...)
	}
	return out
}

type delTotals struct {
	Created, Updated, Unchanged, Failed, Deleted, Kept, HeldBack int
}

func delSum(st *dav.Stats) delTotals {
	t := st.Totals()
	return delTotals{t.Created, t.Updated, t.Unchanged, t.Failed, t.Deleted, t.Kept, t.HeldBack}
}

// RunCalendarDeletes checks Delete for calendars: after a copy, 3 events
// are deleted at the source and one of them is changed at the destination.
// A re-run without Delete deletes nothing; with Delete exactly the 2
// unchanged ones go, the changed one is kept and noted; a third run deletes
// and writes nothing; verification passes. Both servers must start empty.
func RunCalendarDeletes(t *testing.T, src, dst Side) {
	ctx := context.Background()
	const n = 6
	srcHref := SeedCalendar(t, src, "work", "Work", []string{"VEVENT"}, EventFixtures(n))
	all := []string{"allday-1@example.com", "newyork-1@example.com", "weekly-1@example.com"}
	for i := 0; i < n; i++ {
		all = append(all, fmt.Sprintf("gen-%04d@zxmigrate.test", i))
	}
	sort.Strings(all)
	s, err := caldav.NewDAV(src.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	dstC, count := Counted(dst)
	newDst := func() *dav.Remote {
		d, err := caldav.NewDAV(dstC.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cp := dav.NewMemoryCheckpoint()
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(delTotals{Created: len(all)}, delSum(st)); diff != "" {
		t.Fatalf("first copy (-want +got):\n%s", diff)
	}
	dstHref := destinationOf(t, st, "work")

	DeleteAt(t, src, srcHref, "gen-0000.ics", "gen-0001.ics", "gen-0002.ics")
	changed := dstHref + dav.EscapeSegment(dav.ObjectName("gen-0002@zxmigrate.test", ".ics"))
	changeAt(t, dst, dav.CalDAV, changed)
	gone := []string{"gen-0000@zxmigrate.test", "gen-0001@zxmigrate.test"}

	// Without Delete: nothing is deleted.
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(delTotals{Unchanged: len(all) - 3}, delSum(st)); diff != "" {
		t.Errorf("re-run without Delete (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all, UIDs(t, dst, dstHref, caldav.Rules{})); diff != "" {
		t.Errorf("destination after a run without Delete (-want +got):\n%s", diff)
	}

	// Dry run: counts, deletes nothing.
	dels := count.N(http.MethodDelete)
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true, DryRun: true}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Totals().Deleted; got != 3 || count.N(http.MethodDelete) != dels {
		t.Errorf("dry run: %d deleted, %d DELETE requests; want 3 counted, none sent", got, count.N(http.MethodDelete)-dels)
	}
	if diff := cmp.Diff(all, UIDs(t, dst, dstHref, caldav.Rules{})); diff != "" {
		t.Errorf("destination after a dry run (-want +got):\n%s", diff)
	}

	// With Delete: the 2 unchanged ones go, the changed one stays.
	var (
		evMu   sync.Mutex
		events []string
	)
	cop := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true, OnEvent: func(ev dav.Event) {
		if d, ok := ev.(dav.ObjectDeleted); ok {
			evMu.Lock()
			events = append(events, d.UID)
			evMu.Unlock()
		}
	}}
	st, err = cop.Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(delTotals{Unchanged: len(all) - 3, Deleted: 2, Kept: 1}, delSum(st)); diff != "" {
		t.Errorf("run with Delete (-want +got):\n%s\nerrors %v\nnotes %v", diff, errorsOf(st), notesOf(st))
	}
	sort.Strings(events)
	if diff := cmp.Diff(gone, events); diff != "" {
		t.Errorf("ObjectDeleted events (-want +got):\n%s", diff)
	}
	noted := false
	for _, n := range notesOf(st) {
		noted = noted || (n.UID == "gen-0002@zxmigrate.test" && strings.Contains(n.Note, "kept: changed on the destination") && strings.Contains(n.Note, dav.CleanPath(changed)[strings.LastIndex(dav.CleanPath(changed), "/")+1:]))
	}
	if !noted {
		t.Errorf("kept object not noted with its href: %v", notesOf(st))
	}
	if diff := cmp.Diff(without(all, gone...), UIDs(t, dst, dstHref, caldav.Rules{})); diff != "" {
		t.Errorf("destination after Delete (-want +got):\n%s", diff)
	}

	// Third run: nothing deleted, nothing written.
	puts, dels := count.N(http.MethodPut), count.N(http.MethodDelete)
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp, Delete: true}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(delTotals{Unchanged: len(all) - 3}, delSum(st)); diff != "" {
		t.Errorf("third run (-want +got):\n%s\nnotes %v", diff, notesOf(st))
	}
	if p, d := count.N(http.MethodPut)-puts, count.N(http.MethodDelete)-dels; p != 0 || d != 0 {
		t.Errorf("third run sent %d PUT and %d DELETE requests, want none", p, d)
	}
	verify(t, &dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}, newDst(), s, len(all)-3)
}

// RunContactDeletes is RunCalendarDeletes for address books: 2 contacts
// deleted at the source are deleted at the destination, and only them.
func RunContactDeletes(t *testing.T, src, dst Side) {
	ctx := context.Background()
	const n = 5
	// Without the vCard 4 photo, which Radicale damages (see Options.Lossy).
	cards := ContactFixtures(n)
	delete(cards, "v4.vcf")
	srcHref := SeedAddressBook(t, src, "friends", "Friends", cards)
	s, err := carddav.NewDAV(src.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	dstC, count := Counted(dst)
	newDst := func() *dav.Remote {
		d, err := carddav.NewDAV(dstC.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cp := dav.NewMemoryCheckpoint()
	st, err := (&dav.Copier{Rules: carddav.Rules{}, Checkpoint: cp}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	want := len(cards)
	if diff := cmp.Diff(delTotals{Created: want}, delSum(st)); diff != "" {
		t.Fatalf("first copy (-want +got):\n%s", diff)
	}
	dstHref := destinationOf(t, st, "friends")
	all := UIDs(t, dst, dstHref, carddav.Rules{})
	DeleteAt(t, src, srcHref, "gen-0000.vcf", "gen-0003.vcf")
	gone := []string{"gen-0000@zxmigrate.test", "gen-0003@zxmigrate.test"}

	st, err = (&dav.Copier{Rules: carddav.Rules{}, Checkpoint: cp}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Totals().Deleted; got != 0 {
		t.Errorf("without Delete: %d deleted", got)
	}
	if diff := cmp.Diff(all, UIDs(t, dst, dstHref, carddav.Rules{})); diff != "" {
		t.Errorf("destination after a run without Delete (-want +got):\n%s", diff)
	}
	st, err = (&dav.Copier{Rules: carddav.Rules{}, Checkpoint: cp, Delete: true}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(delTotals{Unchanged: want - 2, Deleted: 2}, delSum(st)); diff != "" {
		t.Errorf("run with Delete (-want +got):\n%s\nerrors %v", diff, errorsOf(st))
	}
	if diff := cmp.Diff(without(all, gone...), UIDs(t, dst, dstHref, carddav.Rules{})); diff != "" {
		t.Errorf("destination after Delete (-want +got):\n%s", diff)
	}
	puts, dels := count.N(http.MethodPut), count.N(http.MethodDelete)
	st, err = (&dav.Copier{Rules: carddav.Rules{}, Checkpoint: cp, Delete: true}).Copy(ctx, newDst(), s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(delTotals{Unchanged: want - 2}, delSum(st)); diff != "" {
		t.Errorf("third run (-want +got):\n%s", diff)
	}
	if p, d := count.N(http.MethodPut)-puts, count.N(http.MethodDelete)-dels; p != 0 || d != 0 {
		t.Errorf("third run sent %d PUT and %d DELETE requests, want none", p, d)
	}
	verify(t, &dav.Copier{Rules: carddav.Rules{}, Checkpoint: cp}, newDst(), s, want-2)
}
