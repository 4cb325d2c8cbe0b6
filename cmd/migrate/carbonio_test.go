package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/testssh"
)

const (
	carbonioSentinel = "Cli-Sentinel-9d2f61"
	sourceSentinel   = "Src-Sentinel-44ab0e"
)

// carbonioBench is a fake destination and source and the flags to reach them.
type carbonioBench struct {
	dst, src   *carboniotest.Server
	dstCA      string
	srcCA      string
	outputs    []string
	dstFlags   []string
	srcFlags   []string
	sshFlags   []string
	sshEnabled bool
}

func newCarbonioBench(t *testing.T, withSSH bool) *carbonioBench {
	t.Helper()
	b := &carbonioBench{}
	b.src = carboniotest.New(carboniotest.Options{Admin: "zimbra-admin@example.com", Password: sourceSentinel})
	t.Cleanup(b.src.Close)
	b.dst = carboniotest.New(carboniotest.Options{Admin: "admin@carbonio.local", Password: carbonioSentinel,
		Fixture: carboniotest.DestinationFixture(),
		Backups: map[string]*carboniotest.Fixture{"/tmp/export": carboniotest.DefaultFixture()}})
	t.Cleanup(b.dst.Close)
	dir := t.TempDir()
	b.dstCA, b.srcCA = filepath.Join(dir, "dst.pem"), filepath.Join(dir, "src.pem")
	if err := os.WriteFile(b.dstCA, b.dst.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.srcCA, b.src.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_CARBONIO_PASSWORD", carbonioSentinel)
	t.Setenv("MIGRATE_FROM_PASSWORD", sourceSentinel)
	b.dstFlags = []string{"--url", b.dst.URL, "--user", "admin@carbonio.local", "--ca-file", b.dstCA, "--poll", "1ms"}
	b.srcFlags = []string{"--from-url", b.src.URL, "--from-user", "zimbra-admin@example.com", "--from-ca-file", b.srcCA}
	if withSSH {
		sshd := testssh.Start(t)
		cli := b.dst.BuildFakeCLI(t)
		b.sshFlags = []string{"--ssh", sshd.User + "@" + sshd.Addr, "--ssh-known-hosts", sshd.KnownHosts,
			"--ssh-key", sshd.ClientKey, "--carbonio-path", filepath.Join(cli, "carbonio")}
		b.sshEnabled = true
	}
	return b
}

// run runs `migrate carbonio ARGS` and keeps the output for the secret check.
func (b *carbonioBench) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"carbonio"}, args...), &out, &errOut)
	b.outputs = append(b.outputs, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func (b *carbonioBench) dstArgs(extra ...string) []string {
	return append(append([]string{}, b.dstFlags...), extra...)
}

func (b *carbonioBench) sshArgs(extra ...string) []string {
	return append(append(append([]string{}, b.dstFlags...), b.sshFlags...), extra...)
}

func (b *carbonioBench) checkSecrets(t *testing.T, minSecrets int) {
	t.Helper()
	all := strings.Join(b.outputs, "\n")
	secrets := []string{carbonioSentinel, sourceSentinel}
	secrets = append(secrets, b.dst.IssuedTokens()...)
	secrets = append(secrets, b.src.IssuedTokens()...)
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %.6s… appears in the CLI's output", s)
		}
	}
	if len(secrets) < minSecrets {
		t.Errorf("only %d secrets checked: the check proves little", len(secrets))
	}
}

func TestCarbonioPhase1OverSSH(t *testing.T) {
	b := newCarbonioBench(t, true)
	steps := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"mta stop", b.sshArgs("mta", "stop"), 0, "mta stop: done"},
		{"verify before restore", append(b.dstArgs("-v", "verify-provisioning"), b.srcFlags...), 3, "missing alice@example.com"},
		{"smartscan", b.sshArgs("smartscan"), 0, "SmartScan"},
		{"restore", b.sshArgs("-v", "restore", "/tmp/export", "--domains", "example.com", "--provisioning-only",
			"--concurrent-accounts", "5", "--verify"), 0, "provisioning verified"},
		{"verify from source", append(b.dstArgs("verify-provisioning", "--domains", "example.com"), b.srcFlags...), 0, "provisioning verified"},
		{"dedup", b.sshArgs("dedup", "--dry-run"), 0, "Deduplicate"},
		{"operations log", b.sshArgs("--json", "operations", "--log"), 0, `"outcome": "succeeded"`},
		{"mta start", b.sshArgs("mta", "start"), 0, "mta start: done"},
	}
	for _, st := range steps {
		code, out, errOut := b.run(t, st.args...)
		if code != st.wantCode || !strings.Contains(out, st.wantOut) {
			t.Fatalf("%s: exit %d, want %d; stdout:\n%s\nstderr:\n%s", st.name, code, st.wantCode, out, errOut)
		}
	}
	var restore map[string]string
	for _, s := range b.dst.StartedOperations() {
		if s.Action == "doExternalRestore" {
			restore = s.Args
		}
	}
	if restore["provisioning_only"] != "true" || restore["concurrent_accounts"] != "5" || restore["domains"] != "example.com" {
		t.Errorf("restore arguments = %v", restore)
	}
	if !b.dst.MTARunning() {
		t.Error("MTA not running at the end")
	}
	// mta stop, smartscan, restore, getAvailableAccounts, dedup, mta start;
	// listing and watching went over SOAP.
	for _, c := range b.dst.CLICommands() {
		if slices.Contains(c, "getAllOperations") || slices.Contains(c, "getOperationLog") {
			t.Errorf("operations listed over the command line although --url was given: %q", c)
		}
	}
	if n := len(b.dst.CLICommands()); n < 6 {
		t.Errorf("only %d commands went over SSH", n)
	}
	b.checkSecrets(t, 4)
}

func TestCarbonioSOAP(t *testing.T) {
	b := newCarbonioBench(t, false)
	code, _, errOut := b.run(t, b.dstArgs("--json", "smartscan")...)
	if code != exitUsage || !strings.Contains(errOut, "--unverified-soap") {
		t.Fatalf("smartscan over SOAP without the opt-in: exit %d\n%s", code, errOut)
	}
	code, out, errOut := b.run(t, b.dstArgs("--unverified-soap", "--json", "smartscan")...)
	var op map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &op) != nil || op["outcome"] != "succeeded" || op["type"] != "Finished" {
		t.Fatalf("smartscan: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "Started") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	code, out, _ = b.run(t, b.dstArgs("--unverified-soap", "restore", "/tmp/export", "--provisioning-only", "--skip-aliases")...)
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	code, out, _ = b.run(t, b.dstArgs("accounts", "--domain", "example.com")...)
	if code != 0 || out != "alice@example.com\nbob@example.com\ncarol@example.com\n" {
		t.Errorf("accounts: exit %d, out %q", code, out)
	}
	// Aliases were skipped: the check must say so and exit 3.
	code, out, _ = b.run(t, append(b.dstArgs("--json", "verify-provisioning"), b.srcFlags...)...)
	var rep struct {
		OK      bool `json:"ok"`
		Aliases struct {
			Missing []string `json:"missing"`
		} `json:"aliases"`
	}
	if code != 3 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || len(rep.Aliases.Missing) != 1 {
		t.Errorf("verify with skipped aliases: exit %d\n%s", code, out)
	}
	if err := b.dst.AddFolder("admin@carbonio.local", carboniotest.FixtureFolder{Name: "Team", View: "message",
		Grants: []carboniotest.FixtureGrant{{Type: "grp", Grantee: "team@example.com", Perm: "rwidx"}}}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = b.run(t, b.dstArgs("folders", "admin@carbonio.local")...)
	if code != 0 || !strings.Contains(out, "Calendar") || !strings.Contains(out, "shared: grp:team@example.com=rwidx") {
		t.Errorf("folders (a shared Team folder among them): exit %d\n%s", code, out)
	}
	b.dst.FailOperations("doDeduplicate", "volume is read-only")
	code, out, errOut = b.run(t, b.dstArgs("--unverified-soap", "dedup", "message1")...)
	if code != 3 || !strings.Contains(out+errOut, "failed") || !strings.Contains(out+errOut, "Exception") {
		t.Errorf("failed dedup: exit %d\n%s\n%s", code, out, errOut)
	}
	b.checkSecrets(t, 3)
}

func TestCarbonioExitCodes(t *testing.T) {
	b := newCarbonioBench(t, true)
	wrongPw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(wrongPw, []byte("not-"+carbonioSentinel+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherKey := testssh.NewKey(t, filepath.Join(t.TempDir(), "k"))
	badKH := filepath.Join(t.TempDir(), "known_hosts")
	addr := strings.SplitN(b.sshFlags[1], "@", 2)[1]
	if err := testssh.WriteKnownHosts(badKH, addr, otherKey); err != nil {
		t.Fatal(err)
	}
	sshBadKH := append(append([]string{}, b.sshFlags...), "--ssh-known-hosts", badKH)
	tests := []struct {
		name string
		args []string
		env  string // MIGRATE_CARBONIO_PASSWORD; "-" unsets
		want int
	}{
		{"no subcommand args", []string{"accounts", "extra"}, "", exitUsage},
		{"no url", []string{"accounts"}, "", exitUsage},
		{"no password", b.dstArgs("accounts"), "-", exitUsage},
		{"wrong password", b.dstArgs("--password-file", wrongPw, "accounts"), "", exitAuth},
		{"untrusted certificate", []string{"--url", b.dst.URL, "--user", "admin@carbonio.local", "accounts"}, "", exitUnreachable},
		{"nothing listening", []string{"--url", "https://127.0.0.1:1", "--user", "a", "accounts"}, "", exitUnreachable},
		{"plain http", []string{"--url", "http://127.0.0.1:1", "--user", "a", "accounts"}, "", exitUsage},
		{"mta without ssh", b.dstArgs("mta", "stop"), "", exitUsage},
		{"mta bad verb", append(b.sshFlags, "mta", "restart"), "", exitUsage},
		{"host key mismatch", append(sshBadKH, "mta", "stop"), "", exitAuth},
		{"verify without source", b.dstArgs("verify-provisioning"), "", exitUsage},
		{"unknown backup", append(b.sshFlags, "restore", "/nowhere"), "", exitInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env == "-" {
				t.Setenv("MIGRATE_CARBONIO_PASSWORD", "")
				os.Unsetenv("MIGRATE_CARBONIO_PASSWORD")
			}
			code, out, errOut := b.run(t, tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.want, out, errOut)
			}
		})
	}
	if b.dst.MTARunning() == false {
		t.Error("a refused command stopped the MTA")
	}
	b.checkSecrets(t, 2)
}

// TestCarbonioOperationsContract checks the command-line contract of
// `migrate carbonio operations` and `wait` over SOAP (--url) and over the
// command line alone (--local-cli with the fake carbonio): --json carries
// id, outcome, state and type; wait exits 0 only for succeeded, 3 for a
// failed or unknown outcome, non-zero with a message for a lost operation.
func TestCarbonioOperationsContract(t *testing.T) {
	b := newCarbonioBench(t, false)
	cli := b.dst.BuildFakeCLI(t)
	local := []string{"--local-cli", "--carbonio-path", filepath.Join(cli, "carbonio"), "--poll", "1ms"}
	for _, tr := range []struct {
		name  string
		flags []string
	}{{"soap", append(b.dstArgs(), local...)}, {"cli", local}} {
		t.Run(tr.name, func(t *testing.T) {
			args := func(extra ...string) []string { return append(append([]string{}, tr.flags...), extra...) }
			start := func() string {
				t.Helper()
				code, out, errOut := b.run(t, args("--json", "smartscan", "--no-wait")...)
				var v map[string]any
				if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["id"] == "" {
					t.Fatalf("smartscan --no-wait: exit %d\n%s\n%s", code, out, errOut)
				}
				return v["id"].(string)
			}
			for _, tc := range []struct {
				name    string
				setup   func()
				code    int
				outcome string
				msg     string
			}{
				{"finished", func() {}, 0, "succeeded", ""},
				{"exception", func() { b.dst.FailOperations("doSmartScan", "scan failed") }, exitPartial, "failed", "Exception"},
				{"unknown type", func() { b.dst.EndOperations("doSmartScan", "Aborted") }, exitPartial, "unknown", `unknown outcome "Aborted"`},
				{"lost", func() { b.dst.LoseOperations("doSmartScan") }, exitInternal, "", "vanished"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					tc.setup()
					defer b.dst.ResetOperations("doSmartScan")
					id := start()
					code, out, errOut := b.run(t, args("--json", "wait", id)...)
					if code != tc.code || !strings.Contains(out+errOut, tc.msg) {
						t.Fatalf("wait: exit %d, want %d (%q)\nstdout: %s\nstderr: %s", code, tc.code, tc.msg, out, errOut)
					}
					if tc.outcome == "" {
						return
					}
					var v map[string]any
					if err := json.Unmarshal([]byte(out), &v); err != nil || v["id"] != id || v["outcome"] != tc.outcome {
						t.Errorf("wait --json = %s (%v), want id %s, outcome %s", out, err, id, tc.outcome)
					}
				})
			}
			code, out, errOut := b.run(t, args("--json", "operations", "--log")...)
			var ops []map[string]any
			if code != 0 || json.Unmarshal([]byte(out), &ops) != nil {
				t.Fatalf("operations --log: exit %d\n%s\n%s", code, out, errOut)
			}
			seen := map[string]int{}
			for _, o := range ops {
				for _, k := range []string{"id", "outcome", "state", "type"} {
					if _, ok := o[k]; !ok {
						t.Errorf("operation %v has no %q", o, k)
					}
				}
				seen[o["outcome"].(string)]++
			}
			if seen["succeeded"] == 0 || seen["failed"] == 0 || seen["unknown"] == 0 {
				t.Errorf("outcomes listed = %v, want succeeded, failed and unknown among them", seen)
			}
		})
	}
	b.checkSecrets(t, 2)
}
