package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
)

// TestRunRestoreOutcome runs `migrate run` with the provisioning phase
// against a destination whose restore ends with type Exception, with a type
// the client does not know, or with type Finished; over SOAP (opted in with
// unverified_soap) and over the command line (the fake carbonio run as a
// local process). A restore that did not succeed fails its phase, the run
// exits 3, and the report names the operation and its outcome.
func TestRunRestoreOutcome(t *testing.T) {
	bin, err := carboniotest.BuildFakeCLIBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_TEST_SRC_PW", sourceSentinel)
	t.Setenv("MIGRATE_TEST_DST_PW", carbonioSentinel)
	for _, tr := range []string{"soap", "cli"} {
		for _, end := range []string{"Exception", "Aborted", "Finished"} {
			t.Run(tr+"/"+end, func(t *testing.T) {
				src := carboniotest.New(carboniotest.Options{Admin: "zimbra-admin@example.com", Password: sourceSentinel})
				t.Cleanup(src.Close)
				dst := carboniotest.New(carboniotest.Options{Admin: "admin@carbonio.local", Password: carbonioSentinel,
					Fixture: carboniotest.DestinationFixture(),
					Backups: map[string]*carboniotest.Fixture{"/tmp/export": carboniotest.DefaultFixture()}})
				t.Cleanup(dst.Close)
				if end != "Finished" {
					dst.EndOperations("doExternalRestore", end)
				}
				dir := t.TempDir()
				srcCA, dstCA := filepath.Join(dir, "src.pem"), filepath.Join(dir, "dst.pem")
				if err := os.WriteFile(srcCA, src.CertPEM(), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dstCA, dst.CertPEM(), 0o600); err != nil {
					t.Fatal(err)
				}
				transport := "    unverified_soap: true\n"
				if tr == "cli" {
					cliDir := dst.InstallFakeCLI(t, bin)
					transport = fmt.Sprintf("  cli:\n    mode: local\n    program: %s\n", filepath.Join(cliDir, "carbonio"))
				}
				plan := fmt.Sprintf(`name: outcome
source:
  admin:
    url: %s
    user: zimbra-admin@example.com
    password_env: MIGRATE_TEST_SRC_PW
    ca_file: %s
destination:
  admin:
    url: %s
    user: admin@carbonio.local
    password_env: MIGRATE_TEST_DST_PW
    ca_file: %s
%sdomains: [example.com]
phases: [provisioning]
provisioning:
  backup_path: /tmp/export
state: %s
report: %s
`, src.URL, srcCA, dst.URL, dstCA, transport, filepath.Join(dir, "state.db"), filepath.Join(dir, "report"))
				planPath := filepath.Join(dir, "plan.yaml")
				if err := os.WriteFile(planPath, []byte(plan), 0o600); err != nil {
					t.Fatal(err)
				}
				if end == "Exception" {
					// Preflight says how the restore will run.
					var pout, perr bytes.Buffer
					pcode := run(context.Background(), []string{"preflight", "--plan", planPath, "--json"}, &pout, &perr)
					want := map[string]string{"soap": "unverified", "cli": "command line"}[tr]
					if !strings.Contains(pout.String(), "provisioning (ZxBackup doExternalRestore)") || !strings.Contains(pout.String(), want) {
						t.Errorf("preflight (exit %d) does not say %q of the restore:\n%s\n%s", pcode, want, pout.String(), perr.String())
					}
				}
				var out, errOut bytes.Buffer
				code := run(context.Background(), []string{"run", "--plan", planPath}, &out, &errOut)

				var id string
				for _, s := range dst.StartedOperations() {
					if s.Action == "doExternalRestore" {
						id = s.ID
					}
				}
				if id == "" {
					t.Fatalf("no restore started; exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
				}
				viaCLI := slices.ContainsFunc(dst.CLICommands(), func(c []string) bool { return slices.Contains(c, "doExternalRestore") })
				if viaCLI != (tr == "cli") {
					t.Errorf("restore over the command line = %v, want %v", viaCLI, tr == "cli")
				}
				b, err := os.ReadFile(filepath.Join(dir, "report", "report.json"))
				if err != nil {
					matches, _ := filepath.Glob(filepath.Join(dir, "report", "*.json"))
					if len(matches) == 0 {
						t.Fatalf("no JSON report: %v\nstdout: %s", err, out.String())
					}
					b, err = os.ReadFile(matches[0])
					if err != nil {
						t.Fatal(err)
					}
				}
				var rep struct {
					Outcome string `json:"outcome"`
					Phases  []struct {
						Phase, Status, Reason string
					} `json:"phases"`
				}
				if err := json.Unmarshal(b, &rep); err != nil {
					t.Fatal(err)
				}
				var reason, status string
				for _, ph := range rep.Phases {
					if ph.Phase == "provisioning" {
						reason, status = ph.Reason, ph.Status
					}
				}
				want := map[string]struct {
					code           int
					status, reason string
				}{
					"Exception": {exitPartial, "failed", "outcome failed"},
					"Aborted":   {exitPartial, "failed", `unknown outcome "Aborted"`},
					// With no copy phase the accounts stay pending: exit 3 too;
					// the phase's status tells success from failure.
					"Finished": {exitPartial, "done", "outcome succeeded"},
				}[end]
				if code != want.code || status != want.status || !strings.Contains(reason, id) || !strings.Contains(reason, want.reason) {
					t.Errorf("exit %d, provisioning %s %q; want exit %d, %s, naming %s and %q\nstdout: %s\nstderr: %s",
						code, status, reason, want.code, want.status, id, want.reason, out.String(), errOut.String())
				}
				if end != "Finished" && !strings.Contains(out.String()+errOut.String(), id) {
					t.Errorf("the printed report does not name the operation %s:\n%s", id, out.String())
				}
				if tr == "soap" && !strings.Contains(reason, "unverified") {
					t.Errorf("a restore sent over SOAP is not called unverified: %q", reason)
				}
			})
		}
	}
}
