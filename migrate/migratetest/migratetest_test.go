package migratetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestRunAllPhases runs the whole plan over the in-memory servers: every
// phase, a failing account that does not stop the others, a second run
// that does nothing, and a report that adds up.
func TestRunAllPhases(t *testing.T) {
	env, err := Start(Options{Accounts: 5, Dir: t.TempDir(), Events: 6, Contacts: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	// user03 maps to an address the provisioning never creates.
	env.Plan.Map.Accounts = map[string]string{"user03@example.com": "nobody@example.com"}
	var problems []migrate.ItemProblem
	var started []string
	var sizes []int64
	r := env.Runner()
	r.OnEvent = func(ev migrate.Event) {
		switch e := ev.(type) {
		case migrate.ItemProblem:
			problems = append(problems, e)
		case migrate.RunStarted:
			for _, a := range e.Accounts {
				started = append(started, a.Source)
				sizes = append(sizes, a.Size)
			}
		}
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	for _, ph := range rep.Phases {
		if ph.Phase == migrate.PhaseProvisioningCheck {
			if ph.Status != migrate.StatusPartial || ph.Failed != 1 {
				t.Errorf("provisioning check = %+v, want partial with 1 failure", ph)
			}
			continue
		}
		if ph.Status != migrate.StatusDone {
			t.Errorf("global phase %s = %s (%s)", ph.Phase, ph.Status, ph.Reason)
		}
	}
	if got := rep.Totals; got.Accounts != 5 || got.Done != 4 || got.Failed != 1 {
		t.Errorf("totals = %+v", got)
	}
	bad := rep.Account("user03@example.com")
	if bad == nil || bad.Status != migrate.StatusFailed || !strings.Contains(bad.Error, "nobody@example.com") {
		t.Errorf("user03 = %+v", bad)
	}
	var wantMsgs, gotMsgs int64
	for _, a := range rep.Accounts {
		if a.Source == "user03@example.com" {
			continue
		}
		wantMsgs += int64(env.SourceMessages(a.Source))
		for _, ph := range a.Phases {
			if ph.Status != migrate.StatusDone {
				t.Errorf("%s %s = %s (%s) %+v", a.Source, ph.Phase, ph.Status, ph.Reason, ph.Problems)
			}
		}
		m := a.Phase(migrate.PhaseMail)
		gotMsgs += m.Copied
		if env.DestinationObjects(a.Source) == 0 {
			t.Errorf("%s: no calendar objects or contacts on the destination", a.Source)
		}
	}
	if gotMsgs != wantMsgs {
		t.Errorf("copied %d messages, want %d", gotMsgs, wantMsgs)
	}
	// user05 has a mountpoint and a saved search (skipped by the mail copy,
	// re-created by the shares phase), a Briefcase (moved into Files by the
	// files phase) and a calendar shared with user01, the public, a guest
	// and a key holder: only the guest and key grants stay behind.
	kinds := map[string]int{}
	for _, nm := range rep.NotMigrated {
		kinds[nm.Kind]++
	}
	if len(rep.NotMigrated) != 2 || kinds["share"] != 2 {
		t.Errorf("not migrated = %+v", rep.NotMigrated)
	}
	var docs []string
	for _, it := range rep.Files {
		docs = append(docs, fmt.Sprintf("%s %s/%s %d: %s", it.Account, it.Folder, it.Name, it.Versions, it.Outcome))
	}
	wantDocs := []string{
		"user05@example.com Briefcase/budget.ods 1: created",
		"user05@example.com Briefcase/logo.png 1: created",
		"user05@example.com Briefcase/report.txt 3: created",
	}
	if d := cmp.Diff(docs, wantDocs); d != "" {
		t.Errorf("files (-got +want):\n%s", d)
	}
	for _, f := range env.DestinationFiles("user05@example.com") {
		if f.Path == "Briefcase/report.txt" && (len(f.Versions) != 3 || !strings.HasSuffix(string(f.Versions[2]), "signed\n")) {
			t.Errorf("report.txt on the destination: %d versions, last %q", len(f.Versions), f.Versions[len(f.Versions)-1])
		}
	}
	if n := len(env.DestinationFiles("user05@example.com")); n != 3 {
		t.Errorf("%d files on the destination, want 3", n)
	}
	var shares []string
	for _, it := range rep.Shares {
		shares = append(shares, fmt.Sprintf("%s %s %s %s: %s", it.Account, it.Kind, it.Folder, it.Grantee, it.Outcome))
	}
	wantShares := []string{
		"user05@example.com grant Calendar usr user01@example.com: created",
		"user05@example.com grant Calendar pub: created",
		"user05@example.com grant Calendar guest partner@example.org: invitation_needed",
		"user05@example.com grant Calendar key auditor: invitation_needed",
		"user05@example.com mountpoint Shared by boss user01@example.com Inbox: created",
		"user05@example.com search Unread mail : created",
	}
	if d := cmp.Diff(shares, wantShares); d != "" {
		t.Errorf("shares (-got +want):\n%s", d)
	}
	skipped := 0
	for _, d := range rep.Account("user05@example.com").Phase(migrate.PhaseMail).Details {
		if d.Name == "Shared by boss" || d.Name == "Unread mail" {
			if d.Copied != 0 || !strings.Contains(d.Note, "skipped") {
				t.Errorf("virtual folder %q: %+v", d.Name, d)
			}
			skipped++
		}
	}
	if skipped != 2 {
		t.Errorf("%d virtual folders reported skipped, want 2", skipped)
	}
	// Largest first.
	if len(started) != 5 {
		t.Fatalf("RunStarted accounts = %v", started)
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > sizes[i-1] || sizes[i] <= 0 {
			t.Errorf("accounts not largest first: %v %v", started, sizes)
			break
		}
	}

	// A second run copies nothing and keeps the report.
	r2 := env.Runner()
	copied := 0
	r2.OnEvent = func(ev migrate.Event) {
		if p, ok := ev.(migrate.PhaseStarted); ok && p.Account != "" {
			copied++
		}
	}
	rep2, err := r2.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if copied != 0 {
		t.Errorf("second run started %d account phases, want 0", copied)
	}
	if rep2.Totals.Messages != rep.Totals.Messages {
		t.Errorf("second run totals %+v, first %+v", rep2.Totals, rep.Totals)
	}

	// A delta pass runs the copies again and finds everything present.
	r3 := env.Runner()
	r3.Delta = true
	rep3, err := r3.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep3.Accounts {
		if a.Source == "user03@example.com" {
			continue
		}
		if m := a.Phase(migrate.PhaseMail); m.Copied != 0 || m.Status != migrate.StatusDone {
			t.Errorf("delta pass %s mail: copied %d, status %s", a.Source, m.Copied, m.Status)
		}
		if c := a.Phase(migrate.PhaseCalendars); c.Copied != 0 {
			t.Errorf("delta pass %s calendars: copied %d", a.Source, c.Copied)
		}
	}
}

// TestPreflight checks that preflight writes nothing, finds the virtual
// folders and the messages over the destination's size limit, and names
// accounts missing on the destination.
func TestPreflight(t *testing.T) {
	env, err := Start(Options{Accounts: 3, Dir: t.TempDir(), Events: 4, Contacts: 4, VirtualEvery: 3, AppendLimit: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	// Preflight before provisioning: the destination has no accounts yet.
	pr, err := env.Runner().Preflight(context.Background())
	if err != nil {
		t.Fatalf("Preflight = %v", err)
	}
	if _, err := os.Stat(env.Plan.StatePath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("preflight wrote the state file (stat: %v)", err)
	}
	if len(pr.Accounts) != 3 {
		t.Fatalf("accounts = %+v", pr.Accounts)
	}
	for _, a := range pr.Accounts {
		if a.OnDestination == nil || *a.OnDestination {
			t.Errorf("%s: on destination = %v before provisioning", a.Source, a.OnDestination)
		}
		if a.Size <= 0 {
			t.Errorf("%s: size %d", a.Source, a.Size)
		}
	}
	kinds := map[string]int{}
	for _, n := range pr.NotMigrated {
		kinds[n.Kind]++
	}
	if len(pr.NotMigrated) != 2 || kinds["share"] != 2 {
		t.Errorf("not migrated = %+v", pr.NotMigrated)
	}
	// The shares dry run: nothing can be re-created before provisioning.
	for _, it := range pr.Shares {
		if it.Outcome != migrate.ShareSkipped && it.Outcome != migrate.ShareInvitation {
			t.Errorf("preflight share %+v before provisioning", it)
		}
	}
	if len(pr.Shares) != 6 {
		t.Errorf("preflight shares = %+v, want 6 items", pr.Shares)
	}
	var txt strings.Builder
	if err := pr.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "Shares: 4 skipped, 2 invitation needed") {
		t.Errorf("preflight text lacks the shares line:\n%s", txt.String())
	}

	// Once provisioned, the dry runs find the oversize messages.
	r := env.Runner()
	r.Plan.Phases = []migrate.Phase{migrate.PhaseProvisioning}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	r2 := env.Runner()
	r2.Plan.Phases = []migrate.Phase{migrate.PhaseMail, migrate.PhaseCalendars, migrate.PhaseContacts}
	pr, err = r2.Preflight(context.Background())
	if err != nil {
		t.Fatalf("Preflight = %v", err)
	}
	var oversize int64
	for _, a := range pr.Accounts {
		if a.OnDestination == nil || !*a.OnDestination || a.Mail == nil {
			t.Errorf("%s after provisioning: %+v", a.Source, a)
			continue
		}
		oversize += a.Mail.Skipped
		if a.Mail.Copied == 0 {
			t.Errorf("%s: dry run would copy nothing", a.Source)
		}
	}
	if oversize == 0 || pr.OK() {
		t.Errorf("oversize messages = %d, OK = %v; want some, not OK", oversize, pr.OK())
	}
	var b strings.Builder
	if err := pr.WriteText(&b); err != nil || !strings.Contains(b.String(), "to skip") {
		t.Errorf("preflight text (%v):\n%s", err, b.String())
	}
	// Nothing was copied by the dry runs.
	for _, u := range env.Accounts {
		if n := env.DestinationObjects(u); n != 0 {
			t.Errorf("%s: preflight wrote %d DAV objects", u, n)
		}
	}
}

// TestStopAndVerify stops a run softly, resumes it, then recomputes the
// proof with Verify.
func TestStopAndVerify(t *testing.T) {
	env, err := Start(Options{Accounts: 4, Dir: t.TempDir(), Events: 4, Contacts: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.Plan.Concurrency.ConcurrentAccounts = 1
	r := env.Runner()
	r.OnEvent = func(ev migrate.Event) {
		if a, ok := ev.(migrate.AccountFinished); ok && a.Status == migrate.StatusDone {
			r.Stop() // after the first account
		}
	}
	rep, err := r.Run(context.Background())
	if !errors.Is(err, migrate.ErrStopped) || rep == nil || rep.Outcome != migrate.StatusInterrupted {
		t.Fatalf("stopped run = %v, %+v", err, rep)
	}
	if rep.Totals.Done != 1 || rep.Totals.Pending != 3 {
		t.Errorf("after stop: %+v", rep.Totals)
	}
	for _, ph := range rep.Phases {
		if ph.Phase == migrate.PhaseMTAStart && ph.Status != migrate.StatusPending {
			t.Errorf("mta_start ran after a stop: %s", ph.Status)
		}
	}
	rep, err = env.Runner().Run(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("resumed run = %v, %s", err, rep.Outcome)
	}
	v, err := env.Runner().Verify(context.Background())
	if err != nil || !v.OK() || len(v.Accounts) != 4 {
		t.Errorf("Verify = %v, %+v", err, v)
	}
	for _, a := range v.Accounts {
		vr := a.Phase(migrate.PhaseVerify)
		if vr == nil || len(vr.Details) == 0 {
			t.Errorf("%s: verify has no details", a.Source)
		}
	}
}

// TestProvisioningCheckNamesMissingList restores without distribution
// lists: the provisioning check names the missing list, the accounts still
// migrate.
func TestProvisioningCheckNamesMissingList(t *testing.T) {
	env, err := Start(Options{Accounts: 2, Dir: t.TempDir(), Events: -1, Contacts: -1, VirtualEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.Plan.Provisioning.SkipDistributionLists = true
	env.Plan.Phases = []migrate.Phase{migrate.PhaseProvisioning, migrate.PhaseProvisioningCheck, migrate.PhaseMail}
	rep, err := env.Runner().Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var check *migrate.PhaseResult
	for i := range rep.Phases {
		if rep.Phases[i].Phase == migrate.PhaseProvisioningCheck {
			check = &rep.Phases[i]
		}
	}
	if check == nil || check.Status != migrate.StatusPartial || len(check.Problems) != 1 ||
		check.Problems[0].Item != "distribution list all@example.com" {
		t.Fatalf("provisioning check = %+v", check)
	}
	if rep.Totals.Done != 2 || rep.OK() {
		t.Errorf("totals %+v, OK %v: accounts done, run not OK", rep.Totals, rep.OK())
	}
}

// TestProvisioningAdoptsRunningRestore: a run that died after starting the
// external restore must not start a second one when it resumes; it waits
// for the restore that is still running.
func TestProvisioningAdoptsRunningRestore(t *testing.T) {
	env, err := Start(Options{Accounts: 2, Dir: t.TempDir(), Events: -1, Contacts: -1, VirtualEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	adm := &carbonio.Client{URL: env.dstAdmin.URL, Admin: dstSOAPAdm, Password: secret.New(adminPass), HTTPClient: env.dstAdmin.Client(),
		Transport: &carbonio.CLI{Runner: env.dstAdmin.CLIRunner()}}
	op, err := adm.ExternalRestore(context.Background(), BackupPath, carbonio.RestoreOptions{Domains: env.Plan.Domains, ProvisioningOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	env.Plan.Phases = []migrate.Phase{migrate.PhaseProvisioning, migrate.PhaseProvisioningCheck}
	rep, err := env.Runner().Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	restores := 0
	for _, s := range env.dstAdmin.StartedOperations() {
		if s.Action == "doExternalRestore" {
			restores++
		}
	}
	if restores != 1 {
		t.Errorf("external restores started = %d, want 1 (the running one adopted)", restores)
	}
	for _, ph := range rep.Phases {
		if ph.Phase == migrate.PhaseProvisioning && (ph.Status != migrate.StatusDone || !strings.Contains(ph.Reason, op.ID)) {
			t.Errorf("provisioning = %+v, want done watching operation %s", ph, op.ID)
		}
		if ph.Phase == migrate.PhaseProvisioningCheck && ph.Status != migrate.StatusDone {
			t.Errorf("provisioning check = %+v, want done", ph)
		}
	}
}
