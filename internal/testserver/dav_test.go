package testserver

import (
	"context"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// davCorpus is a small generated set of calendars and address books with
// recurrences, overrides, time zones, tasks, photos, groups and broken
// objects.
func davCorpus() *corpus.Account {
	return corpus.Generate("user1", corpus.Options{Messages: -1, Events: 25, Contacts: 20, Broken: true})
}

// countBroken counts the objects marked Broken.
func countBroken(cols []corpus.Collection) int {
	n := 0
	for _, c := range cols {
		for _, o := range c.Objects {
			if o.Broken {
				n++
			}
		}
	}
	return n
}

// withoutEmptyExtras drops collections of got that want lacks and that
// hold no objects (server defaults such as Xandikos' addressbook).
func withoutEmptyExtras(want, got []corpus.Collection) []corpus.Collection {
	names := map[string]bool{}
	for _, c := range want {
		names[c.Name] = true
	}
	var out []corpus.Collection
	for _, c := range got {
		if names[c.Name] || len(c.Objects) > 0 {
			out = append(out, c)
		}
	}
	return out
}

func TestRadicaleSeedSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := StartRadicale(t, map[string]string{"user1": "pass1", "user2": "pass2"})
	a := davCorpus()
	if countBroken(a.Calendars)+countBroken(a.AddressBooks) == 0 {
		t.Fatal("the corpus has no broken objects; the test would prove nothing about them")
	}
	if err := SeedDAV(ctx, r.CalendarHome("user1"), "user1", "pass1", a.Calendars, a.AddressBooks); err != nil {
		t.Fatalf("seed: %v", err)
	}
	cals, books, err := SnapshotDAV(ctx, r.CalendarHome("user1"), "user1", "pass1")
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if diff := corpus.DiffCollections(a.Calendars, cals, nil); diff != nil {
		t.Errorf("calendars differ:\n%s", strings.Join(diff, "\n"))
	}
	// Radicale 3.1.8 (vobject) cuts vCard 4.0 "PHOTO:data:image/jpeg;base64,…"
	// at the comma, whatever the parameters: a server bug, left out here.
	if diff := corpus.DiffCollections(a.AddressBooks, books, &corpus.DiffOptions{IgnoreProps: []string{"PHOTO"}}); diff != nil {
		t.Errorf("address books differ:\n%s", strings.Join(diff, "\n"))
	}
	// Radicale is strict: no broken object got in.
	for _, cols := range [][]corpus.Collection{cals, books} {
		for _, c := range cols {
			for _, o := range c.Objects {
				if o.UID == "" {
					t.Errorf("collection %q: object %q without UID stored", c.Name, o.Name)
				}
			}
		}
	}

	// Seeding again: every PUT meets If-None-Match: * and fails.
	if err := SeedDAV(ctx, r.CalendarHome("user1"), "user1", "pass1", a.Calendars, a.AddressBooks); err == nil {
		t.Error("second seed over existing objects: got nil error, want 412 errors")
	} else if !strings.Contains(err.Error(), "412") {
		t.Errorf("second seed: got %v, want 412 errors", err)
	}

	// Another user sees nothing of user1 and cannot read it.
	if cals2, books2, err := SnapshotDAV(ctx, r.CalendarHome("user2"), "user2", "pass2"); err != nil || len(cals2)+len(books2) != 0 {
		t.Errorf("user2 snapshot: %d calendars, %d address books, err %v; want none", len(cals2), len(books2), err)
	}
	if _, _, err := SnapshotDAV(ctx, r.CalendarHome("user1"), "user2", "pass2"); err == nil {
		t.Error("user2 reading user1's home: got nil error")
	}
	if _, _, err := SnapshotDAV(ctx, r.CalendarHome("user1"), "user1", "wrong"); err == nil {
		t.Error("wrong password: got nil error")
	}
}

func TestRadicaleSeedFS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := StartRadicale(t, nil)
	a := davCorpus()
	if err := r.SeedFS("user1", a.Calendars, a.AddressBooks); err != nil {
		t.Fatalf("seed: %v", err)
	}
	cals, books, err := SnapshotDAV(ctx, r.CalendarHome("user1"), "user1", "pass1")
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if diff := corpus.DiffCollections(a.Calendars, cals, nil); diff != nil {
		t.Errorf("calendars differ:\n%s", strings.Join(diff, "\n"))
	}
	// Radicale re-serialises objects on GET too, cutting vCard 4.0 data:
	// URI photos (see TestRadicaleSeedSnapshot).
	if diff := corpus.DiffCollections(a.AddressBooks, books, &corpus.DiffOptions{IgnoreProps: []string{"PHOTO"}}); diff != nil {
		t.Errorf("address books differ:\n%s", strings.Join(diff, "\n"))
	}
	// The objects are really there for clients: PUT meets them.
	if err := SeedDAV(ctx, r.CalendarHome("user1"), "user1", "pass1", a.Calendars[:1], nil); err == nil {
		t.Error("PUT over objects written by SeedFS: got nil error, want 412")
	}
	if err := r.SeedFS("user1", a.Calendars[:1], nil); err == nil {
		t.Error("SeedFS over existing objects: got nil error")
	}
	if err := r.SeedFS("nosuch", a.Calendars, nil); err == nil {
		t.Error("SeedFS for an unknown user: got nil error")
	}
}

func TestXandikosSeedSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := StartXandikos(t, "user1", "pass1")
	a := davCorpus()
	if err := x.Seed(ctx, a.Calendars, a.AddressBooks); err != nil {
		t.Fatalf("seed: %v", err)
	}
	cals, books, err := x.Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// Xandikos is lenient: it may have stored broken objects; leave them
	// out of the comparison.
	drop := func(got []corpus.Collection, want []corpus.Collection) []corpus.Collection {
		broken := map[string]bool{}
		for _, c := range want {
			for _, o := range c.Objects {
				if o.Broken {
					broken[o.Name] = true
				}
			}
		}
		for i := range got {
			var keep []corpus.Object
			for _, o := range got[i].Objects {
				if broken[o.Name] {
					t.Logf("xandikos accepted broken object %s/%s", got[i].Name, o.Name)
					continue
				}
				keep = append(keep, o)
			}
			got[i].Objects = keep
		}
		return withoutEmptyExtras(want, got)
	}
	// Known Xandikos 0.2.8 limits: calendar-description cannot be set
	// (409), every calendar accepts all component types, and it rewrites
	// RRULE parts in another order (same rule; the diff compares the text).
	for i := range a.Calendars {
		a.Calendars[i].Description = ""
		a.Calendars[i].Components = nil
	}
	opts := &corpus.DiffOptions{IgnoreProps: []string{"RRULE"}}
	if diff := corpus.DiffCollections(a.Calendars, drop(cals, a.Calendars), opts); diff != nil {
		t.Errorf("calendars differ:\n%s", strings.Join(diff, "\n"))
	}
	if diff := corpus.DiffCollections(a.AddressBooks, drop(books, a.AddressBooks), opts); diff != nil {
		t.Errorf("address books differ:\n%s", strings.Join(diff, "\n"))
	}
	if _, _, err := SnapshotDAV(ctx, x.CalendarHome("user1"), "user1", "wrong"); err == nil {
		t.Error("wrong password: got nil error")
	}
}

func TestParseUID(t *testing.T) {
	cases := []struct {
		name string
		data string
		cal  bool
		want string
	}{
		{"event", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:VALARM\r\nUID:alarm\r\nEND:VALARM\r\nUID:ev\r\n 1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", true, "ev1"},
		{"timezone first", "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:X\nEND:VTIMEZONE\nBEGIN:VTODO\nUID:t\nEND:VTODO\nEND:VCALENDAR\n", true, "t"},
		{"vcard group", "BEGIN:VCARD\r\nVERSION:3.0\r\nitem1.UID:urn:uuid:1\r\nEND:VCARD\r\n", false, "urn:uuid:1"},
		{"none", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", true, ""},
		{"garbage", "\x00\xff:::\n", true, ""},
	}
	for _, tc := range cases {
		if got := parseUID([]byte(tc.data), tc.cal); got != tc.want {
			t.Errorf("%s: parseUID = %q, want %q", tc.name, got, tc.want)
		}
	}
}
