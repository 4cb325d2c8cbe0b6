package migratetest

import (
	"context"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/migrate"
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
	r := env.Runner()
	r.OnEvent = func(ev migrate.Event) {
		switch e := ev.(type) {
		case migrate.ItemProblem:
			problems = append(problems, e)
		case migrate.RunStarted:
			for _, a := range e.Accounts {
				started = append(started, a.Source)
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
		wantMsgs += int64(len(env.SourceMail(a.Source).Messages))
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
	// user05 has a mountpoint and a saved search: skipped and listed.
	kinds := map[string]int{}
	for _, nm := range rep.NotMigrated {
		kinds[nm.Kind]++
	}
	if kinds["mountpoint"] != 1 || kinds["search"] != 1 || kinds["files"] != 1 {
		t.Errorf("not migrated = %+v", rep.NotMigrated)
	}
	// Largest first.
	if len(started) != 5 {
		t.Fatalf("RunStarted accounts = %v", started)
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
