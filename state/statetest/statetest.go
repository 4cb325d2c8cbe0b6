// Package statetest is the conformance suite of state.Store: the same
// tests run against every backend (SQLite and PostgreSQL in package
// state's tests), so that a runner behaves the same on either.
package statetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/state"
)

// Open returns a fresh, empty store for one test; the suite closes it.
type Open func(t *testing.T) state.Store

// long is a lease that does not run out during a test; short one that
// does after a sleep of expire.
const (
	long   = time.Minute
	short  = 2 * time.Second
	expire = 3 * time.Second
)

// Run runs the whole suite, each test on a store from open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"Checkpoints", testCheckpoints},
		{"RunsAccountsPhases", testRunsAccountsPhases},
		{"ClaimOrderBySize", testClaimOrder},
		{"ClaimsConcurrentNoDuplicate", testClaimsConcurrent},
		{"LeaseExpiryTakeover", testTakeover},
		{"FencingRefusesStaleToken", testFencing},
		{"ReleaseAndReopen", testReleaseReopen},
		{"GlobalOnceConcurrent", testGlobalOnce},
		{"GlobalDeadHolder", testGlobalDeadHolder},
		{"SlotsNeverExceedLimit", testSlotsConcurrent},
		{"LiveLimitChange", testLiveLimit},
		{"SlotsDieWithHolder", testSlotExpiry},
		{"Snapshot", testSnapshot},
		{"KeepRenewsAndReportsLoss", testKeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testCheckpoints(t *testing.T, s state.Store) {
	c := ctx(t)
	m := s.Mail("a@x -> a@y")
	st := imapcopy.FolderState{Source: "INBOX", Destination: "INBOX", SourceUIDValidity: 7, DestUIDValidity: 9}
	st.SourceStatus.HighestModSeq = 1 << 40
	must(t, m.SaveFolder(c, st))
	got, ok, err := m.Folder(c, "INBOX")
	must(t, err)
	if !ok || got.SourceUIDValidity != 7 || got.DestUIDValidity != 9 || got.SourceStatus.HighestModSeq != 1<<40 {
		t.Fatalf("folder = %+v, %v", got, ok)
	}
	big := imap.UID(4_000_000_000) // past a signed 32-bit column
	must(t, m.MarkInFlight(c, "INBOX", []imap.UID{1, 2, 3, big}))
	must(t, m.Done(c, "INBOX", []imapcopy.Mapping{{Src: 1, Dst: 101}, {Src: big, Dst: big}}))
	must(t, m.ClearInFlight(c, "INBOX", []imap.UID{3}))
	done, inflight, err := m.Mappings(c, "INBOX")
	must(t, err)
	if len(done) != 2 || done[0] != (imapcopy.Mapping{Src: 1, Dst: 101}) || done[1].Src != big || len(inflight) != 1 || inflight[0] != 2 {
		t.Fatalf("mappings = %v, in flight %v", done, inflight)
	}
	if f, ok := m.(imapcopy.Forgetter); !ok {
		t.Fatal("mail checkpoint is not a Forgetter")
	} else {
		must(t, f.Forget(c, "INBOX", []imap.UID{1}))
	}
	must(t, m.ResetFolder(c, "INBOX"))
	done, inflight, err = m.Mappings(c, "INBOX")
	must(t, err)
	if len(done)+len(inflight) != 0 {
		t.Fatalf("after reset: %v %v", done, inflight)
	}

	cal := s.Calendars("a@x").(dav.BatchCheckpoint)
	must(t, cal.SaveBatch(c, "home", []dav.Record{{SrcHref: "/1.ics", UID: "u1", DstHref: "/d1.ics"}, {SrcHref: "/2.ics", UID: "u2"}}))
	must(t, cal.Save(c, "work", dav.Record{SrcHref: "/3.ics", UID: "u3"}))
	recs, err := cal.Records(c, "home")
	must(t, err)
	if len(recs) != 2 {
		t.Fatalf("records = %v", recs)
	}
	fc := s.Calendars("a@x").(dav.ForgetCheckpoint)
	must(t, fc.Forget(c, "home", recs[:1]))
	cols, err := fc.Collections(c)
	must(t, err)
	if fmt.Sprint(cols) != "[home work]" {
		t.Fatalf("collections = %v", cols)
	}
	if recs, _ := s.Contacts("a@x").Records(c, "home"); len(recs) != 0 {
		t.Fatalf("contacts share the calendars' records: %v", recs)
	}

	fs := s.Files()
	must(t, fs.SetNode(c, "a@x", "doc1", files.Mapping{NodeID: "n1", Versions: 2}))
	fm, ok, err := fs.Node(c, "a@x", "doc1")
	must(t, err)
	if !ok || fm.NodeID != "n1" || fm.Versions != 2 {
		t.Fatalf("files node = %+v %v", fm, ok)
	}
}

func testRunsAccountsPhases(t *testing.T, s state.Store) {
	c := ctx(t)
	id, err := s.StartRun(c, "hash1")
	must(t, err)
	id2, err := s.StartRun(c, "hash2")
	must(t, err)
	must(t, s.FinishRun(c, id, "ok"))
	runs, err := s.Runs(c)
	must(t, err)
	if len(runs) != 2 || runs[0].ID != id || runs[1].ID != id2 || runs[0].Outcome != "ok" || runs[0].Finished.IsZero() || !runs[1].Finished.IsZero() {
		t.Fatalf("runs = %+v", runs)
	}
	must(t, s.PutAccount(c, "b@x", "b@y", 10))
	must(t, s.PutAccount(c, "a@x", "a@y", 20))
	must(t, s.PutAccount(c, "a@x", "a@z", 0)) // size 0 keeps 20
	if err := s.SetAccountStatus(c, "nobody@x", "mail", "running", ""); err == nil {
		t.Error("status of an account never put was accepted")
	}
	must(t, s.SetAccountStatus(c, "a@x", "mail", "failed", "boom"))
	must(t, s.SetProgress(c, "a@x", 12, 3400))
	a, ok, err := s.Account(c, "a@x")
	must(t, err)
	if !ok || a.Destination != "a@z" || a.Size != 20 || a.Status != "failed" || a.Error != "boom" || a.Messages != 12 || a.Bytes != 3400 {
		t.Fatalf("account = %+v", a)
	}
	all, err := s.Accounts(c)
	must(t, err)
	if len(all) != 2 || all[0].Source != "a@x" || all[1].Status != "pending" {
		t.Fatalf("accounts = %+v", all)
	}
	must(t, s.SetPhase(c, "a@x", "mail", "failed", `{"n":1}`))
	must(t, s.SetPhase(c, state.GlobalAccount, "provisioning", "done", ""))
	n, err := s.ResetPhases(c, "failed")
	must(t, err)
	if n != 1 {
		t.Fatalf("reset %d phases, want 1", n)
	}
	p, ok, err := s.Phase(c, "a@x", "mail")
	must(t, err)
	if !ok || p.Status != "pending" || p.Detail != `{"n":1}` {
		t.Fatalf("phase = %+v", p)
	}
	ps, err := s.Phases(c)
	must(t, err)
	if len(ps) != 2 || ps[0].Account != state.GlobalAccount {
		t.Fatalf("phases = %+v", ps)
	}
	if _, ok, _ := s.LastReport(c); ok {
		t.Fatal("a report before any was saved")
	}
	must(t, s.SaveReport(c, []byte(`{"r":1}`)))
	must(t, s.SaveReport(c, []byte(`{"r":2}`)))
	r, ok, err := s.LastReport(c)
	must(t, err)
	if !ok || string(r) != `{"r":2}` {
		t.Fatalf("report = %s", r)
	}
}
