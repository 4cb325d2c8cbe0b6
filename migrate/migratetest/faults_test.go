package migratetest

import (
	"context"
	"testing"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// TestFaults: Options.Faults makes the run partial on the first account
// (a dropped keyword, a message over APPENDLIMIT, an invalid vCard) and
// the destination resets one connection of the second account, whose copy
// retries and ends done and verified.
func TestFaults(t *testing.T) {
	env, err := Start(Options{Accounts: 2, Dir: t.TempDir(), Events: 2, Contacts: 2, Faults: true})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	rep, err := env.Runner().Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if env.Resets() != 1 {
		t.Errorf("%d connection resets, want 1", env.Resets())
	}
	if rep.Outcome != migrate.StatusPartial {
		t.Errorf("outcome %s, want partial", rep.Outcome)
	}
	u1 := rep.Account("user01@example.com")
	if m := u1.Phase(migrate.PhaseMail); m.Changed != 1 || m.Skipped != 1 {
		t.Errorf("user01 mail: %d changed, %d skipped; want 1 and 1", m.Changed, m.Skipped)
	}
	if c := u1.Phase(migrate.PhaseContacts); c.Status != migrate.StatusPartial {
		t.Errorf("user01 contacts %s, want partial (the invalid vCard)", c.Status)
	}
	u2 := rep.Account("user02@example.com")
	if u2.Status != migrate.StatusDone {
		t.Errorf("user02 %s, want done after the reset", u2.Status)
	}
	if v := u2.Phase(migrate.PhaseVerify); v.Verified != v.ToVerify || v.Verified == 0 {
		t.Errorf("user02 verify: %d of %d", v.Verified, v.ToVerify)
	}
}
