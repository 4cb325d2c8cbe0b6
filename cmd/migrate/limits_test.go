package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/state"
)

// TestStatusAndLimitsOnStateFile: on a state file, `migrate status` says
// "running" while a process holds the state's lock and "interrupted" once
// it is gone, lists the running account with its phase and the budgets;
// `migrate limits set` changes a budget that `migrate limits` and
// `status --json` then show.
func TestStatusAndLimitsOnStateFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartRun(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"a@example.com", "b@example.com"} {
		if err := st.PutAccount(ctx, a, a, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAccountStatus(ctx, "a@example.com", "mail", "running", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAccountStatus(ctx, "b@example.com", "", "done", ""); err != nil {
		t.Fatal(err)
	}
	st.Close()
	unlock, err := state.Lock(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb)
		return out.String() + errb.String(), code
	}

	out, code := cli("status", "--state", path)
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, ": running\n") || strings.Contains(out, "interrupted") {
		t.Errorf("status while the lock is held does not say running:\n%s", out)
	}
	if !strings.Contains(out, "a@example.com") || !strings.Contains(out, "mail") {
		t.Errorf("status does not list the running account and its phase:\n%s", out)
	}

	if out, code := cli("limits", "--state", path, "set", "source.imap", "3"); code != exitOK || !strings.Contains(out, "source.imap: 3") {
		t.Fatalf("limits set: exit %d\n%s", code, out)
	}
	if out, code := cli("limits", "--state", path, "set", "source.imap", "x"); code != exitUsage {
		t.Errorf("limits set with a bad number: exit %d, want %d\n%s", code, exitUsage, out)
	}
	out, code = cli("limits", "--state", path)
	if code != exitOK || !regexp.MustCompile(`source\.imap\s+0\s+3`).MatchString(out) {
		t.Errorf("limits show: exit %d\n%s", code, out)
	}

	unlock()
	out, code = cli("status", "--state", path, "--json")
	if code != exitOK {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	var s stateStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if s.Outcome != "interrupted" || s.ByStatus["interrupted"] != 1 || s.ByStatus["done"] != 1 || s.Accounts != 2 {
		t.Errorf("status after the process ended: %+v", s)
	}
	if len(s.Budgets) != 1 || s.Budgets[0].Key != "source.imap" || s.Budgets[0].Max != 3 {
		t.Errorf("budgets: %+v", s.Budgets)
	}
	if time.Since(s.Time) > time.Minute {
		t.Errorf("status time %v", s.Time)
	}
}
