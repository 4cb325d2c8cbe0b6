package caldav_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

// zimbra starts a memdav that plays a Zimbra source: user alice with the
// Calendar and Work/Team folders, readable by admin over REST.
func zimbra(t *testing.T) (*httptest.Server, *memdav.Server) {
	t.Helper()
	z := memdav.New()
	z.AdminUser, z.AdminPassword = "admin", "adminpw"
	z.AddUser("alice@example.com", "secret-alice")
	cal := z.AddCalendar("alice@example.com", "Calendar", "Calendar")
	team := z.AddCalendar("alice@example.com", "Work/Team", "Team")
	for n, d := range davtest.EventFixtures(20) {
		if err := z.Put("alice@example.com", cal, n, d); err != nil {
			t.Fatal(err)
		}
	}
	for n, d := range davtest.TaskFixtures() {
		if err := z.Put("alice@example.com", team, n, d); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewTLSServer(z)
	t.Cleanup(ts.Close)
	return ts, z
}

type tokens struct {
	srv   *memdav.Server
	calls atomic.Int64
}

func (t *tokens) UserToken(_ context.Context, account string) (secret.Secret, error) {
	t.calls.Add(1)
	return secret.New(t.srv.IssueToken(account)), nil
}

// TestZimbraRESTToTokenDAV: a source served in Zimbra's REST export format
// copies to a DAV destination that accepts only the ZM_AUTH_TOKEN cookie;
// the nested folder is flattened and reported; a re-run writes nothing.
func TestZimbraRESTToTokenDAV(t *testing.T) {
	ctx := context.Background()
	zts, _ := zimbra(t)
	src, err := caldav.NewZimbraREST(dav.Endpoint{URL: zts.URL, User: "admin", Password: secret.New("adminpw"),
		Account: "alice@example.com", HTTPClient: zts.Client()}, "Calendar", "Work/Team")
	if err != nil {
		t.Fatal(err)
	}
	carbonio := memdav.New()
	carbonio.RequireToken = true
	carbonio.AddUser("alice@example.com", "unused")
	cts := httptest.NewTLSServer(carbonio)
	defer cts.Close()
	tok := &tokens{srv: carbonio}
	dst, err := caldav.NewDAV(dav.Endpoint{URL: cts.URL + "/alice@example.com/", Token: tok, Account: "alice@example.com", HTTPClient: cts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	cp := dav.NewMemoryCheckpoint()
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	tot := st.Totals()
	if tot.Created != 24 || tot.Failed+tot.Skipped != 0 {
		t.Fatalf("totals %+v, want 24 created; errors %+v", tot, st.Collections)
	}
	if tok.calls.Load() == 0 {
		t.Errorf("token source never asked")
	}
	var flattened bool
	for _, c := range st.Collections {
		if c.Nested == "Work/Team" && c.Name == "Work-Team" {
			flattened = true
		}
	}
	if !flattened {
		t.Errorf("nested folder not reported as flattened: %+v", st.Collections)
	}
	want := []string{"/alice@example.com/calendars/Calendar/", "/alice@example.com/calendars/Work-Team/"}
	if got := carbonio.Collections("alice@example.com"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("destination collections %v, want %v", got, want)
	}
	res, err := (&dav.Copier{Rules: caldav.Rules{}}).Verify(ctx, dst, src)
	if err != nil || !res.OK() {
		t.Fatalf("verify: %v %+v", err, res)
	}
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created+tot.Updated != 0 || tot.Unchanged != 24 {
		t.Errorf("re-run totals %+v, want 24 unchanged", tot)
	}
}

// TestTokenDestinationRefusesBasic: without a token the Carbonio-like
// destination refuses and Copy stops with an auth error.
func TestTokenDestinationRefusesBasic(t *testing.T) {
	src, _ := davtest.MemSide(t, "src")
	davtest.SeedCalendar(t, src, "c", "C", nil, davtest.EventFixtures(1))
	carbonio := memdav.New()
	carbonio.RequireToken = true
	carbonio.AddUser("alice", "pw")
	cts := httptest.NewTLSServer(carbonio)
	defer cts.Close()
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dav.Endpoint{URL: cts.URL + "/alice/", User: "alice", Password: secret.New("pw"), HTTPClient: cts.Client()})
	_, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), d, s)
	if !errors.Is(err, retry.ErrAuth) {
		t.Fatalf("Copy error = %v, want retry.ErrAuth", err)
	}
}

// TestRESTDestination: the REST ?fmt=ics POST fallback writes by UID and a
// second run (without state) changes nothing.
func TestRESTDestination(t *testing.T) {
	ctx := context.Background()
	src, _ := davtest.MemSide(t, "src")
	davtest.SeedCalendar(t, src, "Calendar", "Calendar", nil, davtest.EventFixtures(5))
	carbonio := memdav.New()
	carbonio.AdminUser, carbonio.AdminPassword = "admin", "pw"
	carbonio.AddUser("bob", "x")
	carbonio.AddCalendar("bob", "Calendar", "Calendar")
	cts := httptest.NewTLSServer(carbonio)
	defer cts.Close()
	s, _ := caldav.NewDAV(src.Endpoint())
	d, err := caldav.NewZimbraRESTDestination(dav.Endpoint{URL: cts.URL, User: "admin", Password: secret.New("pw"), Account: "bob", HTTPClient: cts.Client()}, "Calendar")
	if err != nil {
		t.Fatal(err)
	}
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 8 || tot.Failed != 0 {
		t.Fatalf("totals %+v, errors %+v", tot, st.Collections[0].Errors)
	}
	if n := len(carbonio.Snapshot("bob", memdav.CalendarHome("bob")+"Calendar/")); n != 8 {
		t.Errorf("destination holds %d objects, want 8", n)
	}
	st, err = (&dav.Copier{Rules: caldav.Rules{}}).Copy(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created+tot.Updated != 0 {
		t.Errorf("second run totals %+v, want nothing written", tot)
	}
	if n := len(carbonio.Snapshot("bob", memdav.CalendarHome("bob")+"Calendar/")); n != 8 {
		t.Errorf("after re-run destination holds %d objects, want 8", n)
	}
}

// TestRouting: a VTODO in a VEVENT-only source calendar goes to a companion
// task list instead of failing.
func TestRouting(t *testing.T) {
	ctx := context.Background()
	src, ssrv := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	cal := davtest.SeedCalendar(t, src, "events", "Events", []string{"VEVENT"}, davtest.EventFixtures(2))
	_ = cal
	if err := ssrv.Put("user1", memdav.CalendarHome("user1")+"events/", "todo.ics", davtest.TaskFixtures()["todo.ics"]); err != nil {
		t.Fatal(err)
	}
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dst.Endpoint())
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 6 || tot.Routed != 1 || tot.Failed != 0 {
		t.Fatalf("totals %+v, errors %+v", tot, st.Collections[0].Errors)
	}
	if n := len(dsrv.Snapshot("user1", memdav.CalendarHome("user1")+"events-tasks/")); n != 1 {
		t.Errorf("companion task list holds %d objects, want 1", n)
	}
	res, err := (&dav.Copier{Rules: caldav.Rules{}}).Verify(ctx, d, s)
	if err != nil || !res.OK() {
		t.Errorf("verify: %v %+v", err, res)
	}
}

// TestDryRunWritesNothing: a dry run reports what it would create and
// sends no PUT, MKCALENDAR or MKCOL.
func TestDryRunWritesNothing(t *testing.T) {
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	davtest.SeedCalendar(t, src, "c", "C", nil, davtest.EventFixtures(3))
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dst.Endpoint())
	st, err := (&dav.Copier{Rules: caldav.Rules{}, DryRun: true}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 6 {
		t.Errorf("dry run would create %d, want 6", tot.Created)
	}
	for _, m := range []string{http.MethodPut, "MKCALENDAR", "MKCOL"} {
		if n := dsrv.Requests(m); n != 0 {
			t.Errorf("dry run sent %d %s", n, m)
		}
	}
}

// TestServerRefusalIsolated: objects the destination refuses are reported
// with the server's answer; the others arrive.
func TestServerRefusalIsolated(t *testing.T) {
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	davtest.SeedCalendar(t, src, "c", "C", nil, davtest.EventFixtures(10))
	dsrv.FailPut = func(_, p string) int {
		if strings.Contains(p, "gen-0003") {
			return http.StatusUnsupportedMediaType
		}
		return 0
	}
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dst.Endpoint())
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	tot := st.Totals()
	if tot.Created != 12 || tot.Failed != 1 {
		t.Fatalf("totals %+v", tot)
	}
	e := st.Collections[0].Errors[0]
	if e.UID != "gen-0003@zxmigrate.test" || !strings.Contains(e.Reason, "415") || !strings.Contains(e.Reason, "injected failure") {
		t.Errorf("error %+v lacks the UID or the server's answer", e)
	}
}

// TestCollectionProps: a created calendar gets the source's display name,
// description, colour and component set.
func TestCollectionProps(t *testing.T) {
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	davtest.SeedCalendar(t, src, "c", "Café ✓", []string{"VEVENT"}, davtest.EventFixtures(0))
	s, _ := caldav.NewDAV(src.Endpoint())
	// The source server (go-webdav) does not serve colours: give one.
	d, _ := caldav.NewDAV(dst.Endpoint())
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), d, withColor{s, "#FF8800FF"})
	if err != nil {
		t.Fatal(err)
	}
	if !st.OK() {
		t.Fatalf("stats %+v", st.Collections)
	}
	got, ok := dsrv.Props("user1", memdav.CalendarHome("user1")+"c/")
	if !ok {
		t.Fatal("calendar not created")
	}
	want := memdav.CollectionProps{DisplayName: "Café ✓", Description: "Seeded c", Color: "#FF8800FF", Components: []string{"VEVENT"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created calendar (-want +got):\n%s", diff)
	}
}

type withColor struct {
	dav.Source
	color string
}

func (w withColor) Collections(ctx context.Context) ([]dav.Collection, error) {
	cs, err := w.Source.Collections(ctx)
	for i := range cs {
		cs[i].Color = w.color
	}
	return cs, err
}

// TestCollectionURLs: source and destination given as collection URLs copy
// that one calendar into that one calendar, whatever their names.
func TestCollectionURLs(t *testing.T) {
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	davtest.SeedCalendar(t, src, "a", "A", nil, davtest.EventFixtures(2))
	davtest.SeedCalendar(t, src, "other", "Other", nil, davtest.TaskFixtures())
	target := dsrv.AddCalendar("user1", "target", "Target")
	se := src.Endpoint()
	se.URL = src.CalendarHome + "a/"
	de := dst.Endpoint()
	de.URL = strings.TrimSuffix(dst.URL, "/") + target
	s, _ := caldav.NewDAV(se)
	d, _ := caldav.NewDAV(de)
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 5 || len(st.Collections) != 1 {
		t.Fatalf("totals %+v over %d collections", tot, len(st.Collections))
	}
	if n := len(dsrv.Snapshot("user1", target)); n != 5 {
		t.Errorf("target holds %d objects, want 5", n)
	}
	if got := dsrv.Collections("user1"); len(got) != 1 {
		t.Errorf("destination collections %v, want only the target", got)
	}
}

// TestRecreatesDeletedAtDestination: objects the checkpoint records as
// copied but deleted at the destination since are created again, the rest
// stay untouched.
func TestRecreatesDeletedAtDestination(t *testing.T) {
	ctx := context.Background()
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	davtest.SeedCalendar(t, src, "c", "C", nil, davtest.EventFixtures(6))
	s, _ := caldav.NewDAV(src.Endpoint())
	cop := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: dav.NewMemoryCheckpoint()}
	d, _ := caldav.NewDAV(dst.Endpoint())
	if _, err := cop.Copy(ctx, d, s); err != nil {
		t.Fatal(err)
	}
	objs := dsrv.Snapshot("user1", memdav.CalendarHome("user1")+"c/")
	for _, o := range objs[:2] {
		if !dsrv.Delete("user1", o.Path) {
			t.Fatalf("delete %s", o.Path)
		}
	}
	d, _ = caldav.NewDAV(dst.Endpoint())
	st, err := cop.Copy(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 2 || tot.Updated != 0 || tot.Unchanged != len(objs)-2 {
		t.Errorf("totals %+v, want 2 created, %d unchanged", tot, len(objs)-2)
	}
	if n := len(dsrv.Snapshot("user1", memdav.CalendarHome("user1")+"c/")); n != len(objs) {
		t.Errorf("destination holds %d objects, want %d", n, len(objs))
	}
}

// staleTokens hands out an invalid token until ForgetUserToken is called,
// as a cached token the server no longer accepts.
type staleTokens struct {
	srv     *memdav.Server
	mu      sync.Mutex
	fresh   string
	forgets int
}

func (s *staleTokens) UserToken(_ context.Context, account string) (secret.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh == "" {
		return secret.New("expired-token"), nil
	}
	return secret.New(s.fresh), nil
}

func (s *staleTokens) ForgetUserToken(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgets++
	s.fresh = s.srv.IssueToken(account)
}

// TestTokenRenewedOn401: a refused token is forgotten and the request
// (with its body) is sent again with a fresh one.
func TestTokenRenewedOn401(t *testing.T) {
	src, _ := davtest.MemSide(t, "src")
	davtest.SeedCalendar(t, src, "c", "C", nil, davtest.EventFixtures(2))
	carbonio := memdav.New()
	carbonio.RequireToken = true
	carbonio.AddUser("alice", "x")
	cts := httptest.NewTLSServer(carbonio)
	defer cts.Close()
	tok := &staleTokens{srv: carbonio}
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dav.Endpoint{URL: cts.URL + "/alice/", Token: tok, Account: "alice", HTTPClient: cts.Client()})
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 5 {
		t.Errorf("totals %+v", tot)
	}
	if tok.forgets != 1 {
		t.Errorf("token forgotten %d times, want 1", tok.forgets)
	}
}

// TestCarbonioUIDConflictAdopted: a destination where a UID is unique in
// the whole mailbox (Carbonio) answers the PUT of a UID it holds in another
// calendar with 412 no-uid-conflict naming that href. Without state the
// object is matched by UID there: unchanged when equal, updated under
// If-Match when different, never written twice; a re-run writes nothing.
func TestCarbonioUIDConflictAdopted(t *testing.T) {
	ctx := context.Background()
	src, _ := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	dsrv.CarbonioUIDs = true
	objs := davtest.EventFixtures(4)
	davtest.SeedCalendar(t, src, "Work", "Work", nil, objs)
	// The destination's Calendar already holds two of the UIDs under its
	// own names: gen-0000 as at the source, gen-0001 with an older text.
	old := strings.Replace(string(davtest.GenEvent(1)), "SUMMARY:Generated event 1", "SUMMARY:Old text", 1)
	home := davtest.SeedCalendar(t, dst, "Calendar", "Calendar", nil, map[string][]byte{
		"carbonio-a.ics": davtest.GenEvent(0),
		"carbonio-b.ics": []byte(old),
	})
	var cp dav.Checkpoint // nil: no state
	var last *dav.Copier
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dst.Endpoint())
	copyOnce := func() *dav.Stats {
		t.Helper()
		last = &dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}
		st, err := last.Copy(ctx, d, s)
		if err != nil {
			t.Fatal(err)
		}
		if errs := st.Collections[0].Errors; len(errs) > 0 {
			t.Fatalf("errors: %+v", errs)
		}
		return st
	}
	// verifyWork verifies with c and returns the check of Work.
	verifyWork := func(c *dav.Copier) dav.CollectionCheck {
		t.Helper()
		v, err := c.Verify(ctx, d, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Collections) != 1 {
			t.Fatalf("verification %+v, want one collection", v.Collections)
		}
		return v.Collections[0]
	}
	// The two adopted objects sit in Calendar: verified there, once.
	wantAdopted := func(chk dav.CollectionCheck) {
		t.Helper()
		if !chk.OK() || chk.Items != len(objs) || chk.Matched != len(objs) {
			t.Errorf("verification %+v, want OK with %d matched", chk, len(objs))
		}
		var got []string
		for _, a := range chk.Adopted {
			if !strings.HasPrefix(a.Href, home) {
				t.Errorf("adopted %s from %s, want an href in %s", a.UID, a.Href, home)
			}
			got = append(got, a.UID)
		}
		if diff := cmp.Diff([]string{"gen-0000@zxmigrate.test", "gen-0001@zxmigrate.test"}, got); diff != "" {
			t.Errorf("adopted UIDs (-want +got):\n%s", diff)
		}
	}
	st := copyOnce()
	wantAdopted(verifyWork(last))
	tot := st.Totals()
	if tot.Created != len(objs)-2 || tot.Updated != 1 || tot.Unchanged != 1 {
		t.Errorf("first run totals %+v, want %d created, 1 updated, 1 unchanged", tot, len(objs)-2)
	}
	notes := 0
	for _, n := range st.Collections[0].Notes {
		if strings.Contains(n.Note, "matched by UID") {
			notes++
		}
	}
	if notes != 2 {
		t.Errorf("%d adoption notes, want 2: %+v", notes, st.Collections[0].Notes)
	}
	cal := dsrv.Snapshot("user1", home)
	work := dsrv.Snapshot("user1", memdav.CalendarHome("user1")+"Work/")
	if len(cal) != 2 || len(work) != len(objs)-2 {
		t.Fatalf("destination holds %d in Calendar and %d in Work, want 2 and %d", len(cal), len(work), len(objs)-2)
	}
	for _, o := range cal {
		if strings.Contains(string(o.Data), "Old text") {
			t.Errorf("%s not updated:\n%s", o.Path, o.Data)
		}
	}
	if tot := copyOnce().Totals(); tot.Created != 0 || tot.Updated != 0 || tot.Unchanged != len(objs) {
		t.Errorf("re-run totals %+v, want all %d unchanged", tot, len(objs))
	}
	// A Copier that did not copy knows nothing of the adoption: without
	// state the two UIDs are missing from Work (an object elsewhere is not
	// taken for a copy on the word of nothing).
	if chk := verifyWork(&dav.Copier{Rules: caldav.Rules{}}); len(chk.Missing) != 2 || len(chk.Adopted) != 0 {
		t.Errorf("verification without memo or state %+v, want 2 missing, none adopted", chk)
	}
	// With state, the adopted hrefs are recorded: the next run sends no PUT,
	// and a verification by another Copier with the same state finds them.
	cp = dav.NewMemoryCheckpoint()
	copyOnce()
	puts := dsrv.Requests(http.MethodPut)
	if tot := copyOnce().Totals(); tot.Unchanged != len(objs) || dsrv.Requests(http.MethodPut) != puts {
		t.Errorf("re-run with state: totals %+v, %d PUTs; want all unchanged, no PUT", tot, dsrv.Requests(http.MethodPut)-puts)
	}
	wantAdopted(verifyWork(&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}))
	// The proof reads the adopted objects: one changed there is different,
	// one deleted there is missing.
	for _, o := range dsrv.Snapshot("user1", home) {
		switch o.UID {
		case "gen-0000@zxmigrate.test":
			name := o.Path[strings.LastIndex(o.Path, "/")+1:]
			if err := dsrv.Put("user1", home, name, []byte(strings.Replace(string(o.Data), "SUMMARY:", "SUMMARY:Changed ", 1))); err != nil {
				t.Fatal(err)
			}
		case "gen-0001@zxmigrate.test":
			if !dsrv.Delete("user1", o.Path) {
				t.Fatalf("%s not deleted", o.Path)
			}
		}
	}
	chk := verifyWork(&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp})
	if diff := cmp.Diff([]string{"gen-0000@zxmigrate.test"}, chk.Different); diff != "" {
		t.Errorf("different (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"gen-0001@zxmigrate.test"}, chk.Missing); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	if len(chk.Adopted) != 0 || chk.Matched != len(objs)-2 {
		t.Errorf("after the changes: %d matched, adopted %+v; want %d, none", chk.Matched, chk.Adopted, len(objs)-2)
	}
}

// TestVerifyAfterCopyReadsSourceOnce: Verify right after Copy, on the same
// Copier and source, takes the source objects from the copy (no REPORT or
// GET at the source) unless their ETag changed; it still reads the whole
// destination and still catches a change.
func TestVerifyAfterCopyReadsSourceOnce(t *testing.T) {
	ctx := context.Background()
	src, ssrv := davtest.MemSide(t, "src")
	dst, dsrv := davtest.MemSide(t, "dst")
	objs := davtest.EventFixtures(30)
	href := davtest.SeedCalendar(t, src, "c", "C", nil, objs)
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dst.Endpoint())
	cop := &dav.Copier{Rules: caldav.Rules{}}
	if _, err := cop.Copy(ctx, d, s); err != nil {
		t.Fatal(err)
	}
	reads := func(srv *memdav.Server) int { return srv.Requests("REPORT") + srv.Requests(http.MethodGet) }
	s0, d0 := reads(ssrv), reads(dsrv)
	v, err := cop.Verify(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() || v.Collections[0].Matched != len(objs) {
		t.Fatalf("verification %+v, want all %d matched", v.Collections, len(objs))
	}
	if n := reads(ssrv) - s0; n != 0 {
		t.Errorf("verify read the source %d times, want 0", n)
	}
	if n := reads(dsrv) - d0; n == 0 {
		t.Errorf("verify did not read the destination")
	}
	// A source object changed after the copy is read again and differs.
	changed := strings.Replace(string(davtest.GenEvent(3)), "SUMMARY:Generated event 3", "SUMMARY:Changed", 1)
	if err := ssrv.Put("user1", href, "gen-0003.ics", []byte(changed)); err != nil {
		t.Fatal(err)
	}
	s0 = reads(ssrv)
	v, err = cop.Verify(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"gen-0003@zxmigrate.test"}, v.Collections[0].Different); diff != "" {
		t.Errorf("different (-want +got):\n%s", diff)
	}
	if reads(ssrv) == s0 {
		t.Errorf("the changed source object was not read")
	}
}
