package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
)

// TestRunPlanFile drives run, report, verify and preflight through the
// CLI with a plan file: mail between the in-process IMAP servers, the
// admin password from a file and an environment variable.
func TestRunPlanFile(t *testing.T) {
	env, err := migratetest.Start(migratetest.Options{Accounts: 3, Dir: t.TempDir(), Events: -1, Contacts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "dst.pass")
	if err := os.WriteFile(pwFile, []byte(env.Plan.Destination.IMAP.Password.Reveal()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZXT_RUN_SRC_PW", env.Plan.Source.IMAP.Password.Reveal())
	if err := os.WriteFile(filepath.Join(dir, "accounts.txt"), []byte(strings.Join(env.Accounts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := fmt.Sprintf(`name: cli test
source:
  kind: imap
  imap: {address: %q, security: none, admin: admin, password_env: ZXT_RUN_SRC_PW}
destination:
  kind: imap
  imap: {address: %q, security: none, admin: admin, password_file: dst.pass}
accounts:
  list_file: accounts.txt
phases: [mail, verify]
state: state.db
report: out
`, env.Plan.Source.IMAP.Address, env.Plan.Destination.IMAP.Address)
	planFile := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	runCLI := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := runCLI("run", "--plan", planFile, "--progress", "plain", "--log-format", "json", "--log-level", "info")
	if code != exitOK {
		t.Fatalf("run exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "Accounts: 3 total, 3 done") || !strings.Contains(out, filepath.Join(dir, "out", "report.html")) ||
		!strings.Contains(out, filepath.Join(dir, "out", "report.csv")) {
		t.Errorf("run output:\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "out", "report.csv")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report.csv: %v", err)
	}
	if !strings.Contains(errs, `"msg":"run started"`) {
		t.Errorf("no JSON log on stderr:\n%s", errs)
	}
	for _, secretText := range []string{env.Plan.Source.IMAP.Password.Reveal()} {
		if strings.Contains(out+errs, secretText) {
			t.Error("a password was printed")
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "out", "report.json")); bytes.Contains(b, []byte(secretText)) {
			t.Error("a password is in the report")
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "state.db")); bytes.Contains(b, []byte(secretText)) {
			t.Error("a password is in the state file")
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "state.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v, mode %v", err, fi.Mode())
	}

	// Again: nothing to do, same outcome.
	code, out, errs = runCLI("run", "--plan", planFile, "--progress", "plain")
	if code != exitOK || strings.Contains(errs, "mail: done") {
		t.Errorf("second run exit %d, stderr:\n%s", code, errs)
	}
	// A daily pre-stage: mail only, again.
	code, _, errs = runCLI("run", "--plan", planFile, "--progress", "plain", "--phases", "mail", "--delta")
	if code != exitOK || !strings.Contains(errs, "mail: done, 0 copied") || strings.Contains(errs, "verify: done") {
		t.Errorf("delta mail pass: exit %d, stderr:\n%s", code, errs)
	}
	if code, _, errs = runCLI("run", "--plan", planFile, "--phases", "mail,nosuch"); code != exitUsage || !strings.Contains(errs, "nosuch") {
		t.Errorf("--phases nosuch: exit %d, %s", code, errs)
	}
	if code, _, errs = runCLI("run", "--plan", planFile, "--delete"); code != exitUsage || !strings.Contains(errs, "--delta") {
		t.Errorf("--delete without --delta: exit %d, %s", code, errs)
	}
	code, out, _ = runCLI("report", "--plan", planFile)
	if code != exitOK || !strings.Contains(out, "Run 3: DONE") {
		t.Errorf("report exit %d:\n%s", code, out)
	}
	code, out, errs = runCLI("verify", "--plan", planFile, "--progress", "none")
	if code != exitOK || !strings.Contains(out, "3 done") {
		t.Errorf("verify exit %d:\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI("preflight", "--plan", planFile)
	if code != exitOK || !strings.Contains(out, "[ok  ] servers and credentials") {
		t.Errorf("preflight exit %d:\n%s\n%s", code, out, errs)
	}
	// Refused admin credentials: exit 4, naming the server.
	t.Setenv("ZXT_RUN_SRC_PW", "wrong")
	code, _, errs = runCLI("run", "--plan", planFile, "--progress", "none")
	if code != exitAuth || !strings.Contains(errs, "source.imap") {
		t.Errorf("wrong password: exit %d, stderr %s", code, errs)
	}
	t.Setenv("ZXT_RUN_SRC_PW", env.Plan.Source.IMAP.Password.Reveal())
	// An account that does not exist on the source: named, nothing written.
	if err := os.WriteFile(filepath.Join(dir, "accounts.txt"), []byte("ghost@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI("run", "--plan", planFile, "--progress", "none")
	if code == exitOK || !strings.Contains(errs, "ghost@example.com") {
		t.Errorf("ghost account: exit %d, stderr %s", code, errs)
	}
}

func TestCompletion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"completion", "bash"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "migrate") {
		t.Errorf("completion bash: exit %d, %d bytes, %s", code, out.Len(), errb.String())
	}
}
