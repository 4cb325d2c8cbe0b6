package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// davSide is an in-memory DAV server behind an HTTP fault handler.
type davSide struct {
	srv    *memdav.Server
	ts     *httptest.Server
	faults *faultproxy.HTTP
}

func newDAVSide(t *testing.T, seed uint64, methods ...string) *davSide {
	t.Helper()
	s := &davSide{srv: memdav.New()}
	s.srv.AddUser("user1", "pass1")
	s.faults = &faultproxy.HTTP{Next: s.srv, Seed: seed, Unavailable: 0.12, ResetBefore: 0.06, ResetAfter: 0.08, Methods: methods}
	s.faults.SetEnabled(false)
	s.ts = httptest.NewServer(s.faults)
	t.Cleanup(s.ts.Close)
	return s
}

func (s *davSide) calHome() string  { return s.ts.URL + memdav.CalendarHome("user1") }
func (s *davSide) cardHome() string { return s.ts.URL + memdav.AddressBookHome("user1") }

func (s *davSide) endpoint(home string) dav.Endpoint {
	return dav.Endpoint{URL: home, User: "user1", Password: secret.New("pass1"),
		HTTPClient: &http.Client{Timeout: 30 * time.Second}}
}

func (s *davSide) cardEndpoint() dav.Endpoint {
	return dav.Endpoint{URL: s.cardHome(), User: "user1", Password: secret.New("pass1"),
		HTTPClient: &http.Client{Timeout: 30 * time.Second}}
}

// TestDAVCopyUnderFaults copies calendars and address books while the
// destination answers 503 or drops the connection before or after handling
// PUT, MKCALENDAR, MKCOL and REPORT requests, and the source fails PROPFIND
// and REPORT the same way. Copy is re-run with a SQLite checkpoint (deleted
// before some runs) until a pass is clean; then the destination must hold
// every object exactly once, equal to the source.
func TestDAVCopyUnderFaults(t *testing.T) {
	events, contacts := size(60, 600), size(50, 500)
	minFaults := int64(size(30, 100))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(size(3, 20))*time.Minute)
	defer cancel()
	src := newDAVSide(t, 1, "PROPFIND", "REPORT", "GET")
	dst := newDAVSide(t, 2, "PUT", "MKCALENDAR", "MKCOL", "REPORT", "PROPFIND", "PROPPATCH", "DELETE")
	acct := corpus.Generate("user1", corpus.Options{Seed: 5, Messages: -1, Events: events, Contacts: contacts})
	if err := testserver.SeedDAV(ctx, src.calHome(), "user1", "pass1", acct.Calendars, nil); err != nil {
		t.Fatal(err)
	}
	if err := testserver.SeedDAV(ctx, src.cardHome(), "user1", "pass1", nil, acct.AddressBooks); err != nil {
		t.Fatal(err)
	}
	cs, _ := caldav.NewDAV(src.endpoint(src.calHome()))
	cd, _ := caldav.NewDAV(dst.endpoint(dst.calHome()))
	as, _ := carddav.NewDAV(src.cardEndpoint())
	ad, _ := carddav.NewDAV(dst.cardEndpoint())
	statePath := filepath.Join(t.TempDir(), "state.db")
	faults := func() int64 { return src.faults.Stats().Faults() + dst.faults.Stats().Faults() }

	var passes, hit, removals int
	for round := 0; ; round++ {
		src.faults.SetEnabled(true)
		dst.faults.SetEnabled(true)
		if round%3 == 2 {
			for _, p := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
				_ = os.Remove(p)
			}
			removals++
		}
		st, err := state.Open(ctx, statePath)
		if err != nil {
			t.Fatal(err)
		}
		s1, err1 := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: st.Calendars("user1")}).Copy(ctx, cd, cs)
		s2, err2 := (&dav.Copier{Rules: carddav.Rules{}, Checkpoint: st.Contacts("user1")}).Copy(ctx, ad, as)
		st.Close()
		passes++
		clean := err1 == nil && err2 == nil && davClean(s1) && davClean(s2)
		if !clean {
			hit++
			t.Logf("pass %d under faults: calendars %v %s; contacts %v %s", passes, err1, davProblems(s1), err2, davProblems(s2))
		}
		if clean && faults() >= minFaults {
			break
		}
		if ctx.Err() != nil || passes > 60 {
			t.Fatalf("no clean pass after %d passes and %d faults", passes, faults())
		}
	}
	src.faults.SetEnabled(false)
	dst.faults.SetEnabled(false)
	injected := faults()

	wantCals, _, err := testserver.SnapshotDAV(ctx, src.calHome(), "user1", "pass1")
	if err != nil {
		t.Fatal(err)
	}
	gotCals, _, err := testserver.SnapshotDAV(ctx, dst.calHome(), "user1", "pass1")
	if err != nil {
		t.Fatal(err)
	}
	_, wantBooks, err := testserver.SnapshotDAV(ctx, src.cardHome(), "user1", "pass1")
	if err != nil {
		t.Fatal(err)
	}
	_, gotBooks, err := testserver.SnapshotDAV(ctx, dst.cardHome(), "user1", "pass1")
	if err != nil {
		t.Fatal(err)
	}
	opts := &corpus.DiffOptions{ExtraCollectionsOK: true, SkipCollectionProps: true}
	diff := append(corpus.DiffCollections(wantCals, gotCals, opts), corpus.DiffCollections(wantBooks, gotBooks, opts)...)
	for _, d := range diff[:min(len(diff), 20)] {
		t.Errorf("destination differs: %s", d)
	}
	lost, dup := uidCounts(wantCals, gotCals)
	l2, d2 := uidCounts(wantBooks, gotBooks)
	lost, dup = lost+l2, dup+d2
	if lost != 0 || dup != 0 {
		t.Errorf("%d objects lost, %d duplicate UIDs", lost, dup)
	}
	for _, v := range []func() (bool, error){
		func() (bool, error) {
			v, err := (&dav.Copier{Rules: caldav.Rules{}}).Verify(ctx, cd, cs)
			return err == nil && v.OK(), err
		},
		func() (bool, error) {
			v, err := (&dav.Copier{Rules: carddav.Rules{}}).Verify(ctx, ad, as)
			return err == nil && v.OK(), err
		},
	} {
		if ok, err := v(); !ok {
			t.Errorf("Verify after the chaos: ok=%v err=%v", ok, err)
		}
	}
	t.Logf("dav: %d calendar objects, %d vCards; %d HTTP faults injected and survived (source %v; destination %v); %d passes (%d hit), %d state-file removals; %d lost, %d duplicate UIDs",
		countObjects(wantCals), countObjects(wantBooks), injected, src.faults.Stats(), dst.faults.Stats(), passes, hit, removals, lost, dup)
}

func davClean(s *dav.Stats) bool { return s != nil && davProblems(s) == "" }

func davProblems(s *dav.Stats) string {
	if s == nil {
		return "no stats"
	}
	var p []string
	for _, c := range s.Collections {
		if c.Failed > 0 || c.Skipped > 0 {
			first := ""
			if len(c.Errors) > 0 {
				first = c.Errors[0].Item + ": " + c.Errors[0].Reason
			}
			p = append(p, fmt.Sprintf("%s: %d failed, %d skipped (%s)", c.Name, c.Failed, c.Skipped, first))
		}
	}
	if len(p) > 3 {
		p = append(p[:3], fmt.Sprintf("and %d more", len(p)-3))
	}
	return strings.Join(p, "; ")
}

// uidCounts returns how many source UIDs are missing from got and how many
// UIDs got holds more than once, per collection name.
func uidCounts(want, got []corpus.Collection) (lost, dup int) {
	g := map[string]map[string]int{}
	for _, c := range got {
		m := map[string]int{}
		for _, o := range c.Objects {
			m[o.UID]++
		}
		g[c.Name] = m
	}
	for _, c := range want {
		for _, o := range c.Objects {
			if g[c.Name][o.UID] == 0 {
				lost++
			}
		}
	}
	for _, m := range g {
		for _, n := range m {
			if n > 1 {
				dup += n - 1
			}
		}
	}
	return lost, dup
}

func countObjects(cs []corpus.Collection) (n int) {
	for _, c := range cs {
		n += len(c.Objects)
	}
	return n
}
