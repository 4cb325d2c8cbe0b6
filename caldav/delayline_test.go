package caldav_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestCopyThroughDelayLine copies calendars and address books between two
// Xandikos servers (keep-alive HTTP/1.1), each behind a delay line of
// 10 ms each way with up to 4 ms of jitter (20–28 ms RTT), with the
// copiers' default concurrency and the default paced HTTP client: every
// source object arrives once (none lost, none duplicated, content equal
// by corpus.DiffCollections), and a second run writes nothing.
func TestCopyThroughDelayLine(t *testing.T) {
	ctx := context.Background()
	user, pass := testserver.DefaultUser, testserver.DefaultPassword
	src := testserver.StartXandikos(t, user, pass)
	dst := testserver.StartXandikos(t, user, pass)
	acct := corpus.Generate(user, corpus.Options{Seed: 19, Messages: -1, Events: 40, Contacts: 30})
	if err := src.Seed(ctx, acct.Calendars, acct.AddressBooks); err != nil {
		t.Fatal(err)
	}
	line := func(raw string, seed uint64) (*faultproxy.DelayLine, string) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		d, err := faultproxy.ListenDelay(u.Host, faultproxy.DelayOptions{Delay: 10 * time.Millisecond, Jitter: 4 * time.Millisecond, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		u.Host = d.Addr()
		return d, u.String()
	}
	sl, srcURL := line(src.URL, 1)
	dl, dstURL := line(dst.URL, 2)
	pw := secret.New(pass)
	cs, err := caldav.NewDAV(dav.Endpoint{URL: srcURL, User: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	cd, err := caldav.NewDAV(dav.Endpoint{URL: dstURL, User: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	as, err := carddav.NewDAV(dav.Endpoint{URL: srcURL, User: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := carddav.NewDAV(dav.Endpoint{URL: dstURL, User: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	ccp, acp := dav.NewMemoryCheckpoint(), dav.NewMemoryCheckpoint()
	copyBoth := func() (cal, card dav.CollectionStats) {
		t.Helper()
		st1, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: ccp}).Copy(ctx, cd, cs)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := (&dav.Copier{Rules: carddav.Rules{}, Checkpoint: acp}).Copy(ctx, ad, as)
		if err != nil {
			t.Fatal(err)
		}
		if !st1.OK() || !st2.OK() {
			t.Fatalf("copy not clean: calendars %+v, contacts %+v", st1.Collections, st2.Collections)
		}
		return st1.Totals(), st2.Totals()
	}
	wantCals, wantBooks, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nCal, nBook := objects(wantCals), objects(wantBooks)
	if nCal < 40 || nBook < 30 {
		t.Fatalf("source holds %d calendar objects and %d vCards, want at least 40 and 30", nCal, nBook)
	}

	cal, card := copyBoth()
	if cal.Created != nCal || card.Created != nBook {
		t.Errorf("created %d calendar objects and %d vCards, want %d and %d", cal.Created, card.Created, nCal, nBook)
	}
	check := func(when string) {
		t.Helper()
		gotCals, gotBooks, err := dst.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, cols := range [][]corpus.Collection{gotCals, gotBooks} {
			for _, c := range cols {
				seen := map[string]bool{}
				for _, o := range c.Objects {
					if seen[o.UID] {
						t.Errorf("%s: %s holds UID %s twice", when, c.Name, o.UID)
					}
					seen[o.UID] = true
				}
			}
		}
		if got := objects(gotCals); got != nCal {
			t.Errorf("%s: destination holds %d calendar objects, want %d", when, got, nCal)
		}
		if got := objects(gotBooks); got != nBook {
			t.Errorf("%s: destination holds %d vCards, want %d", when, got, nBook)
		}
		// Xandikos keeps no collection description and auto-creates
		// "calendar" and "addressbook".
		opts := &corpus.DiffOptions{ExtraCollectionsOK: true, SkipCollectionProps: true}
		for _, d := range append(corpus.DiffCollections(wantCals, gotCals, opts), corpus.DiffCollections(wantBooks, gotBooks, opts)...) {
			t.Errorf("%s: destination differs: %s", when, d)
		}
	}
	check("first run")

	cal, card = copyBoth()
	for _, tot := range []dav.CollectionStats{cal, card} {
		if tot.Created+tot.Updated != 0 {
			t.Errorf("re-run through the delay line wrote: %+v", tot)
		}
	}
	check("re-run")
	// Both copies went through the lines.
	if s, d := sl.Stats(), dl.Stats(); s.BytesToClient == 0 || d.BytesToServer == 0 {
		t.Errorf("delay lines carried nothing: source %v, destination %v", s, d)
	}
}

// objects counts the objects of cols.
func objects(cols []corpus.Collection) int {
	n := 0
	for _, c := range cols {
		n += len(c.Objects)
	}
	return n
}
