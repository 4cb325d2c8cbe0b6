package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// fakeBackend simulates servers: each account has n items; the mail phase
// "copies" the items not yet on the destination.
type fakeBackend struct {
	mu       sync.Mutex
	accounts map[string]int64 // source -> items
	dest     map[string]bool  // destination accounts that exist
	copied   map[string]int64 // source -> items on the destination
	calls    map[string]int   // "phase account" -> calls
	fail     map[string]error // source -> error of the mail phase
	cancelAt string           // source whose mail phase cancels the run
	cancel   context.CancelFunc
}

func newFake(n int) *fakeBackend {
	f := &fakeBackend{accounts: map[string]int64{}, dest: map[string]bool{}, copied: map[string]int64{},
		calls: map[string]int{}, fail: map[string]error{}}
	for i := 1; i <= n; i++ {
		f.accounts[fmt.Sprintf("user%d@example.com", i)] = int64(10 * i)
	}
	return f
}

func (f *fakeBackend) Check(context.Context) error { return nil }
func (f *fakeBackend) HasSourceDirectory() bool    { return true }
func (f *fakeBackend) SourceAccounts(_ context.Context, domain string) ([]AccountPlan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AccountPlan
	for a, n := range f.accounts {
		out = append(out, AccountPlan{Source: a, Size: n * 1000})
	}
	return out, nil
}
func (f *fakeBackend) CheckDirectory(context.Context, *Plan) ([]Problem, error) { return nil, nil }
func (f *fakeBackend) CheckIMAP(context.Context, AccountPlan, bool) error       { return nil }
func (f *fakeBackend) SourceExists(_ context.Context, addr string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.accounts[addr]
	return ok, nil
}
func (f *fakeBackend) DestinationExists(_ context.Context, addr string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dest[addr], nil
}
func (f *fakeBackend) Inventory(_ context.Context, a AccountPlan) (*Inventory, error) {
	return &Inventory{SkipFolders: map[string]string{"Shared": "mountpoint"},
		NotMigrated: []NotMigrated{{Account: a.Source, Kind: "mountpoint", Name: "Shared", Reason: "a view of another account's folder"}}}, nil
}
func (f *fakeBackend) Global(_ context.Context, ph Phase, p *Plan, _ []AccountPlan, rec *recorder) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[string(ph)]++
	if ph == PhaseProvisioning {
		for a := range f.accounts {
			f.dest[p.MapAddress(a)] = true
		}
	}
	return nil
}
func (f *fakeBackend) Account(ctx context.Context, ph Phase, a AccountPlan, inv *Inventory, rec *recorder) error {
	f.mu.Lock()
	f.calls[string(ph)+" "+a.Source]++
	err := f.fail[a.Source]
	f.mu.Unlock()
	switch ph {
	case PhaseMail:
		if err != nil {
			return err
		}
		f.mu.Lock()
		n := f.accounts[a.Source] - f.copied[a.Source]
		f.copied[a.Source] = f.accounts[a.Source]
		cancelHere := f.cancelAt == a.Source
		f.mu.Unlock()
		rec.Progress(n, n*1000, n)
		rec.add(func(r *PhaseResult) {
			r.Copied = n
			r.Existing = f.accounts[a.Source] - n
			r.Details = append(r.Details, Detail{Name: "INBOX", SourceCount: -1, DestCount: -1, Copied: n})
		})
		if cancelHere {
			f.cancel()
			<-ctx.Done()
			return ctx.Err()
		}
	case PhaseVerify:
		f.mu.Lock()
		src, dst := f.accounts[a.Source], f.copied[a.Source]
		f.mu.Unlock()
		rec.add(func(r *PhaseResult) {
			r.Details = append(r.Details, Detail{Name: "INBOX", SourceCount: src, DestCount: dst})
		})
		if src != dst {
			rec.Problem("INBOX", false, fmt.Sprintf("%d messages missing", src-dst))
			rec.add(func(r *PhaseResult) { r.Failed = src - dst })
		}
	}
	return nil
}
func (f *fakeBackend) Close() error { return nil }

func fakeEndpoint(host string) Endpoint {
	c := Credential{Password: secret.New("pw")}
	return Endpoint{
		Admin: AdminEndpoint{URL: "https://" + host + ":7071", User: "admin@" + host, Credential: c},
		IMAP:  IMAPEndpoint{Address: host + ":993", Admin: "admin@" + host, Credential: c},
		DAV:   DAVEndpoint{URL: "https://" + host + "/dav/"},
	}
}

func fakePlan(t *testing.T) *Plan {
	dst := fakeEndpoint("dst.example")
	dst.Admin.UnverifiedSOAP = true // the fake backend runs no module command
	return &Plan{
		Source:       fakeEndpoint("src.example"),
		Destination:  dst,
		Provisioning: Provisioning{BackupPath: "/backup"},
		Name:         "fake",
		Domains:      []string{"example.com"},
		Map:          Mapping{Domains: map[string]string{"example.com": "example.org"}},
		Phases:       []Phase{PhaseProvisioning, PhaseProvisioningCheck, PhaseMail, PhaseCalendars, PhaseContacts, PhaseVerify},
		State:        filepath.Join(t.TempDir(), "state.db"),
		Concurrency:  Concurrency{ConcurrentAccounts: 3},
	}
}

func TestRunnerFake(t *testing.T) {
	ctx := context.Background()
	f := newFake(6)
	f.fail["user3@example.com"] = errors.New("imapcopy: login user3: NO [AUTHORIZATIONFAILED]")
	p := fakePlan(t)
	var evMu sync.Mutex
	started := map[string]bool{}
	r := &Runner{Plan: p, backend: f, OnEvent: func(ev Event) {
		evMu.Lock()
		defer evMu.Unlock()
		if ps, ok := ev.(PhaseStarted); ok {
			started[ps.Account+" "+string(ps.Phase)] = true
		}
	}}
	rep, err := r.run1(ctx)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rep.Outcome != StatusFailed {
		t.Errorf("outcome = %s, want failed (one account failed)", rep.Outcome)
	}
	if got := rep.Totals; got.Accounts != 6 || got.Done != 5 || got.Failed != 1 || got.Messages != 10+20+40+50+60 {
		t.Errorf("totals = %+v", got)
	}
	bad := rep.Account("user3@example.com")
	if bad == nil || bad.Destination != "user3@example.org" || bad.Phase(PhaseMail).Status != StatusFailed ||
		bad.Phase(PhaseMail).Reason == "" || bad.Phase(PhaseVerify).Status != StatusPartial {
		t.Errorf("failing account = %+v", bad)
	}
	// The failing account's other phases still ran.
	if !started["user3@example.com contacts"] {
		t.Error("contacts of the failing account did not run")
	}
	if len(rep.NotMigrated) != 6 {
		t.Errorf("not migrated = %d entries, want 6 (one mountpoint per account)", len(rep.NotMigrated))
	}

	// A second run does nothing.
	before := f.snapshot()
	r2 := &Runner{Plan: p, backend: f}
	rep2, err := r2.run1(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(); after != before {
		t.Errorf("second run made calls: before %v, after %v", before, after)
	}
	if rep2.Totals.Messages != rep.Totals.Messages || rep2.Outcome != StatusFailed {
		t.Errorf("second report differs: %+v", rep2.Totals)
	}

	// --retry-failed runs the failed account again; it now succeeds.
	delete(f.fail, "user3@example.com")
	r3 := &Runner{Plan: p, backend: f, RetryFailed: true}
	rep3, err := r3.run1(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Outcome != StatusDone {
		t.Errorf("after retry outcome = %s; accounts %+v", rep3.Outcome, rep3.Account("user3@example.com"))
	}
	if f.calls["mail user1@example.com"] != 1 {
		t.Errorf("retry ran a done account again: %d", f.calls["mail user1@example.com"])
	}
	// Report rebuilt from the state alone matches.
	s, err := state.Open(ctx, p.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep4, err := ReportFromStore(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep4.Outcome != StatusDone || rep4.Totals != rep3.Totals {
		t.Errorf("ReportFromStore = %s %+v, want %+v", rep4.Outcome, rep4.Totals, rep3.Totals)
	}
}

func (r *Runner) run1(ctx context.Context) (*Report, error) { return r.Run(ctx) }

func (f *fakeBackend) snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.calls)
}

func TestRunnerResumeAfterCancel(t *testing.T) {
	f := newFake(4)
	p := fakePlan(t)
	p.Concurrency.ConcurrentAccounts = 1
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.cancelAt = "user2@example.com" // sizes: user4 > user3 > user2 > user1
	rep, err := (&Runner{Plan: p, backend: f}).Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if rep == nil || rep.Outcome != StatusInterrupted {
		t.Fatalf("report after cancel = %+v", rep)
	}
	if st := rep.Account("user1@example.com").Phase(PhaseMail).Status; st != StatusPending {
		t.Errorf("user1 mail = %s, want pending (never started)", st)
	}
	if st := rep.Account("user2@example.com").Phase(PhaseMail).Status; st != StatusInterrupted {
		t.Errorf("user2 mail = %s, want interrupted", st)
	}
	f.cancelAt = ""
	rep, err = (&Runner{Plan: p, backend: f}).Run(context.Background())
	if err != nil || rep.Outcome != StatusDone {
		t.Fatalf("resumed run = %v, %v", rep.Outcome, err)
	}
	for a, n := range f.accounts {
		if f.copied[a] != n {
			t.Errorf("%s: %d of %d items copied", a, f.copied[a], n)
		}
	}
	if got := f.calls["mail user4@example.com"]; got != 1 {
		t.Errorf("user4 (done before the cancel) copied %d times, want 1", got)
	}
	if got := f.calls["provisioning"]; got != 1 {
		t.Errorf("provisioning ran %d times, want 1", got)
	}
}

func TestRunnerMissingDestinationAccount(t *testing.T) {
	f := newFake(3)
	p := fakePlan(t)
	p.Phases = []Phase{PhaseMail, PhaseVerify}
	f.dest["user1@example.org"] = true
	f.dest["user2@example.org"] = true
	_, err := (&Runner{Plan: p, backend: f}).Run(context.Background())
	var ae *AccountError
	if !errors.As(err, &ae) || ae.Side != "destination" || len(ae.Accounts) != 1 || ae.Accounts[0] != "user3@example.org" {
		t.Fatalf("Run = %v, want an AccountError naming user3@example.org", err)
	}
	if _, statErr := os.Stat(p.StatePath()); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("state file written before the account check (stat: %v)", statErr)
	}
}

func TestStateLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	unlock, err := lockState(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockState(p); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Errorf("second lock = %v, want an error naming another run", err)
	}
	unlock()
	unlock2, err := lockState(p)
	if err != nil {
		t.Errorf("lock after unlock = %v", err)
	} else {
		unlock2()
	}
}
