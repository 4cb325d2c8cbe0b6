package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--out", dir, "--accounts", "3", "--progress", "plain"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	htmlPath := filepath.Join(dir, "report", "report.html")
	jsonPath := filepath.Join(dir, "report", "report.json")
	if !strings.Contains(out.String(), htmlPath) {
		t.Errorf("stdout does not say where the report is:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Accounts: 3 total, 3 done") {
		t.Errorf("summary missing:\n%s", out.String())
	}
	if !strings.Contains(errb.String(), "user01@example.com mail: done") {
		t.Errorf("no progress lines on stderr:\n%s", errb.String())
	}
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//`).Find(html); m != nil {
		t.Errorf("HTML report loads from the network: %q", m)
	}
	for _, want := range []string{"<svg", "user01@example.com", "Not migrated by this procedure"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	var rep struct {
		Version int    `json:"version"`
		Outcome string `json:"outcome"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Version != 1 || rep.Outcome != "done" {
		t.Errorf("report.json: version %d outcome %q (%v)", rep.Version, rep.Outcome, err)
	}

	// The report renders again from the state file and from the JSON.
	for _, args := range [][]string{
		{"report", "--state", filepath.Join(dir, "state.db")},
		{"report", "--from", jsonPath},
	} {
		out.Reset()
		if code := run(context.Background(), args, &out, &errb); code != exitOK {
			t.Errorf("%v: exit %d: %s", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "Run 1: DONE") {
			t.Errorf("%v printed:\n%s", args, out.String())
		}
	}
	// A second demo into the same directory is refused (it would mix states).
	if code := run(context.Background(), []string{"demo", "--out", dir}, &out, &errb); code != exitUsage {
		t.Errorf("second demo into the same --out: exit %d, want %d", code, exitUsage)
	}
}

func writePlan(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const cliPlan = `
source:
  kind: imap
  imap: {address: "127.0.0.1:1", security: none, admin: admin, password_env: ZXT_CLI_SRC}
destination:
  kind: imap
  imap: {address: "127.0.0.1:1", security: none, admin: admin, password_env: ZXT_CLI_DST}
accounts:
  list_file: accounts.txt
phases: [mail]
`

func TestRunBadInput(t *testing.T) {
	t.Setenv("ZXT_CLI_SRC", "x")
	t.Setenv("ZXT_CLI_DST", "y")
	tests := []struct {
		name, plan string
		want       int
		wantErr    string
	}{
		{"unknown key", cliPlan + "colour: blue\n", exitUsage, "colour: unknown key"},
		{"inline password", strings.Replace(cliPlan, "password_env: ZXT_CLI_DST", "password: hunter2", 1), exitUsage, "destination.imap.password"},
		{"missing credential", strings.Replace(cliPlan, "ZXT_CLI_DST", "ZXT_CLI_UNSET", 1), exitUsage, "ZXT_CLI_UNSET"},
		{"unreachable server", cliPlan, exitUnreachable, "source.imap (127.0.0.1:1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writePlan(t, tt.plan)
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"run", "--plan", p, "--progress", "none"}, &out, &errb)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.want, errb.String())
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q does not name %q", errb.String(), tt.wantErr)
			}
			if strings.Contains(errb.String()+out.String(), "hunter2") {
				t.Error("the inline secret was printed")
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), "zxmigrate.db")); err == nil {
				t.Error("a state file was written despite the error")
			}
		})
	}
}
