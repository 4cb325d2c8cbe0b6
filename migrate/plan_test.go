package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const minimalPlan = `
source:
  kind: imap
  imap: {address: "127.0.0.1:1143", security: none, admin: admin, password_env: ZXT_SRC}
destination:
  kind: imap
  imap: {address: "127.0.0.1:2143", security: none, admin: admin, password_env: ZXT_DST}
accounts:
  list_file: accounts.txt
phases: [mail, verify]
`

func TestExamplePlanParses(t *testing.T) {
	p, err := LoadPlan("testdata/plan.example.yaml")
	if err != nil {
		t.Fatalf("LoadPlan(example) = %v", err)
	}
	want := []Phase{PhaseMTAStop, PhaseSmartScan, PhaseProvisioning, PhaseProvisioningCheck,
		PhaseMail, PhaseCalendars, PhaseContacts, PhaseVerify, PhaseMTAStart}
	if diff := cmp.Diff(p.EffectivePhases(), want); diff != "" {
		t.Errorf("phases (-got +want):\n%s", diff)
	}
	if got := p.Concurrency.ConcurrentAccounts; got != 4 {
		t.Errorf("concurrent_accounts = %d, want 4", got)
	}
	if got := p.Limits.HTTPRate; got != 30 {
		t.Errorf("limits.http_rate = %v, want 30", got)
	}
	if !filepath.IsAbs(p.StatePath()) || filepath.Base(p.StatePath()) != "zxmigrate.db" {
		t.Errorf("state path %q not resolved against the plan's directory", p.StatePath())
	}
	if p.Hash() == "" {
		t.Error("plan hash is empty")
	}
	if got := p.MapAddress("Alice@example.com"); got != "Alice@example.com" {
		t.Errorf("MapAddress = %q", got)
	}
}

func TestPlanBadInput(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantKey    string
		wantLine   int
		wantMsg    string
	}{
		{"unknown key", minimalPlan + "concurency:\n  concurrent_accounts: 3\n", "concurency", 11, "unknown key"},
		{"unknown nested key", strings.Replace(minimalPlan, "security: none,", "security: none, porrt: 3,", 1), "porrt", 4, "unknown key"},
		{"inline password", strings.Replace(minimalPlan, "password_env: ZXT_DST", "password: hunter2", 1), "destination.imap.password", 7, "inline secrets"},
		{"missing credential", strings.Replace(minimalPlan, ", password_env: ZXT_DST", "", 1), "destination.imap", 0, "missing credential"},
		{"bad pattern", minimalPlan + "mail:\n  exclude: [\"Junk[\"]\n", "mail.exclude[0]", 0, "bad pattern"},
		{"bad phase", strings.Replace(minimalPlan, "[mail, verify]", "[mail, verfy]", 1), "phases[1]", 0, "unknown phase"},
		{"bad security", strings.Replace(minimalPlan, "security: none, admin: admin, password_env: ZXT_SRC", "security: ssl, admin: admin, password_env: ZXT_SRC", 1), "source.imap.security", 4, "unknown security"},
		{"no domains", strings.Replace(minimalPlan, "  list_file: accounts.txt\n", "  include: [\"*\"]\n", 1), "domains", 0, "at least one domain"},
		{"provisioning without backup", strings.Replace(minimalPlan, "[mail, verify]", "[provisioning]", 1) +
			"destination2: x\n", "destination2", 0, "unknown key"},
		{"missing admin for provisioning", strings.Replace(minimalPlan, "[mail, verify]", "[provisioning]", 1), "destination.admin.url", 0, "required"},
		{"http rate not a number", minimalPlan + "limits:\n  http_rate: .nan\n", "limits.http_rate", 0, "requests per second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlan(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("ParsePlan succeeded, want an error naming %q", tt.wantKey)
			}
			var found *PlanError
			for _, e := range flatten(err) {
				var pe *PlanError
				if errors.As(e, &pe) && pe.Key == tt.wantKey {
					found = pe
				}
			}
			if found == nil {
				t.Fatalf("error %q does not name key %q", err, tt.wantKey)
			}
			if !strings.Contains(found.Msg, tt.wantMsg) {
				t.Errorf("message %q, want it to contain %q", found.Msg, tt.wantMsg)
			}
			if tt.wantLine != 0 && found.Line != tt.wantLine {
				t.Errorf("line = %d, want %d", found.Line, tt.wantLine)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the inline secret: %v", err)
			}
		})
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func TestLoadSecrets(t *testing.T) {
	p, err := ParsePlan(strings.NewReader(minimalPlan))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZXT_SRC", "s3cret")
	os.Unsetenv("ZXT_DST")
	err = p.LoadSecrets()
	var pe *PlanError
	if !errors.As(err, &pe) || pe.Key != "destination.imap" || !strings.Contains(pe.Msg, "ZXT_DST") {
		t.Fatalf("LoadSecrets = %v, want an error naming destination.imap and ZXT_DST", err)
	}
	if p.Source.IMAP.Password.Reveal() != "s3cret" {
		t.Errorf("source password not loaded")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte("fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Destination.IMAP.PasswordEnv, p.Destination.IMAP.PasswordFile = "", f
	if err := p.LoadSecrets(); err != nil {
		t.Fatalf("LoadSecrets with file = %v", err)
	}
	if got := p.Destination.IMAP.Password.Reveal(); got != "fromfile" {
		t.Errorf("password from file = %q", got)
	}
}

func TestMapAndSelect(t *testing.T) {
	p := &Plan{Map: Mapping{
		Domains:  map[string]string{"old.example": "new.example"},
		Accounts: map[string]string{"boss@old.example": "chief@new.example"},
	}}
	for src, want := range map[string]string{
		"alice@old.example": "alice@new.example",
		"boss@old.example":  "chief@new.example",
		"bob@other.example": "bob@other.example",
	} {
		if got := p.MapAddress(src); got != want {
			t.Errorf("MapAddress(%q) = %q, want %q", src, got, want)
		}
	}
	s := Selection{Include: []string{"*@old.example"}, Exclude: []string{"galsync*"}}
	for addr, want := range map[string]bool{
		"alice@old.example":   true,
		"galsync@old.example": false,
		"bob@other.example":   false,
	} {
		if got := s.Selects(addr); got != want {
			t.Errorf("Selects(%q) = %v, want %v", addr, got, want)
		}
	}
}

// FuzzParsePlan feeds arbitrary YAML to ParsePlan: it must not panic, a
// plan comes with no error and passes Validate again, and a refusal is a
// *PlanError. Run it for a million executions with
//
//	go test -run '^$' -fuzz '^FuzzParsePlan$' -fuzztime 1000000x -timeout 0 ./migrate/
//
// One execution costs one YAML parse (parsePlan decodes the plan and keeps
// the node tree from the same parse).
func FuzzParsePlan(f *testing.F) {
	f.Add(minimalPlan)
	if b, err := os.ReadFile("testdata/plan.example.yaml"); err == nil {
		f.Add(string(b))
	}
	f.Add("phases: [mail]\nmap: {domains: {a: b}}")
	f.Add("source: {imap: {password: x}}")
	f.Add("a: &x {b: 1}\nc: *x")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlan(strings.NewReader(s))
		if err != nil {
			if p != nil {
				t.Errorf("ParsePlan returned a plan and the error %v", err)
			}
			var pe *PlanError
			if !errors.As(err, &pe) {
				t.Errorf("ParsePlan error %v (%T) is not a *PlanError", err, err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil plan without error")
		}
		if p.Hash() == "" {
			t.Error("a parsed plan has no hash")
		}
		if err := p.Validate(); err != nil {
			t.Errorf("a parsed plan fails Validate: %v", err)
		}
	})
}
