package main

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/testpki"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

// cliCase is one row of the CLI table: a command with bad input, the exit
// code it must give and a pattern for the first line of its message.
type cliCase struct {
	name  string
	args  []string
	env   map[string]string // on top of cliEnv
	code  int
	first string // regexp the first stderr line must match
}

// hints are the "what to do" lines some rows must show, by row name: the
// TLS and STARTTLS cases name the way out.
var hints = map[string]string{
	"mail imap to a server without STARTTLS": `^  what to do: use imaps:// \(implicit TLS, port 993\), or --allow-plaintext `,
	"mail imaps to a plaintext port":         `^  what to do: use imap:// \(STARTTLS, usually port 143\) or the server's implicit-TLS port`,
	"mail imaps untrusted certificate":       `^  what to do: trust its CA with --ca-file`,
	"calendars untrusted certificate":        `^  what to do: trust its CA with --ca-file`,
	"calendars https to a plaintext port":    `^  what to do: use the server's HTTPS port`,
	"carbonio untrusted certificate":         `^  what to do: trust its CA with --ca-file`,
	"carbonio https to a plaintext port":     `^  what to do: use the server's HTTPS port`,
	"mail refused":                           `^  what to do: check the host and port, and that the server is running$`,
	"mail wrong password":                    `^  what to do: check the user and the password`,
}

// cliEnv is the environment of every table row: passwords set, so that a
// row fails for the reason it names.
var cliEnv = map[string]string{
	"MIGRATE_FROM_PASSWORD":     testserver.DefaultPassword,
	"MIGRATE_TO_PASSWORD":       testserver.DefaultPassword,
	"MIGRATE_CARBONIO_PASSWORD": "secret",
	"ZXT_CLI_SRC":               "x",
	"ZXT_CLI_DST":               "y",
}

// internalNames are the prefixes of our packages' errors. Without
// --log-level debug an operator never sees them.
var internalNames = regexp.MustCompile(`(^|\s)(imapcopy|caldav|carddav|dav|state|imapclient): `)

// foreignFile writes a file that is not a state file, with an old mtime.
func foreignFile(t *testing.T, dir, name string, data []byte, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	return p
}

type facts struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

func statFacts(t *testing.T, p string) facts {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return facts{fi.Mode(), fi.Size(), fi.ModTime()}
}

// refusedListener accepts connections and closes them at once.
func plainHTTP(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestCLITable runs the CLI table: every command with bad input gives the
// exit code of the README table and one message line that says what failed
// in the operator's words, with one "migrate:" prefix and no internal
// chain.
func TestCLITable(t *testing.T) {
	plain := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "plain"})
	secure := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "tls", TLS: true})
	dir := t.TempDir()
	readme := foreignFile(t, dir, "README.md", []byte("# Notes\n"), 0o644)
	tool := foreignFile(t, dir, "tool", []byte("#!/bin/sh\necho hi\n"), 0o755)
	empty := foreignFile(t, dir, "empty", nil, 0o644)
	goodState := filepath.Join(dir, "good.db")
	st, err := state.Open(context.Background(), goodState)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	lockedState := filepath.Join(dir, "locked.db")
	unlock, err := state.Lock(context.Background(), lockedState)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	host, _ := os.Hostname()
	lockedMsg := `^migrate: another run is using the state file .*locked\.db \(process \d+ on ` + regexp.QuoteMeta(host) + `\)`

	// DAV: a memdav server over TLS with a private CA, a plaintext HTTP
	// server, and the CA file.
	ca, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ca.ServerTLSConfig("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	md := memdav.New()
	md.AddUser("user1", "pass1")
	ts := httptest.NewUnstartedServer(md)
	ts.TLS = tlsCfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	davURL := ts.URL
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The Carbonio admin API: the exported fake over TLS, with its CA.
	cs := carboniotest.New(carboniotest.Options{Admin: "admin@example.com", Password: "secret"})
	t.Cleanup(cs.Close)
	csCA := filepath.Join(t.TempDir(), "carbonio-ca.pem")
	if err := os.WriteFile(csCA, cs.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	httpURL := plainHTTP(t)
	httpsToPlain := "https://" + strings.TrimPrefix(httpURL, "http://")
	closed := closedAddr(t)

	plan := writePlan(t, cliPlan)
	badPlan := writePlan(t, cliPlan+"colour: blue\n")
	missingPlan := filepath.Join(dir, "no-such-plan.yaml")

	imapURL := func(addr string) string { return "imap://" + testserver.DefaultUser + "@" + addr }
	imapsURL := func(addr string) string { return "imaps://" + testserver.DefaultUser + "@" + addr }
	mail := func(extra ...string) []string {
		return append([]string{"mail", "--from", imapURL(plain.Addr), "--to", imapURL(plain.Addr), "--allow-plaintext"}, extra...)
	}
	cal := func(cmd string, extra ...string) []string {
		return append([]string{cmd, "--from", davURL + "/", "--from-user", "user1", "--to", davURL + "/", "--to-user", "user1", "--ca-file", caFile}, extra...)
	}
	carb := func(url string, extra ...string) []string {
		return append([]string{"carbonio", "--url", url, "--user", "admin@example.com"}, extra...)
	}

	tests := []cliCase{
		// global
		{"unknown command", []string{"migrat"}, nil, exitUsage, `^migrate: unknown command "migrat"`},
		{"unknown flag", []string{"mail", "--frmo", "x"}, nil, exitUsage, `^migrate: unknown flag: --frmo`},
		{"bad log level", []string{"version", "--log-level", "loud"}, nil, exitUsage, `^migrate: --log-level "loud": want debug, info, warn or error`},
		{"bad progress", []string{"mail", "--progress", "fancy"}, nil, exitUsage, `^migrate: --progress "fancy"`},
		{"version takes no argument", []string{"version", "x"}, nil, exitUsage, `^migrate: unknown command "x"|^migrate: accepts 0 arg`},

		// mail: usage
		{"mail without --to", []string{"mail", "--from", imapURL(plain.Addr)}, nil, exitUsage, `^migrate: mail: --from and --to are required$`},
		{"mail bad scheme", []string{"mail", "--from", "pop3://u@h", "--to", imapURL(plain.Addr)}, nil, exitUsage, `^migrate: `},
		{"mail no password", mail(), map[string]string{"MIGRATE_FROM_PASSWORD": ""}, exitUsage, `^migrate: environment variable MIGRATE_FROM_PASSWORD is not set \(set MIGRATE_FROM_PASSWORD or --from-password-file\)$`},
		{"mail negative concurrency", mail("--concurrency", "-1"), nil, exitUsage, `^migrate: mail: --concurrency, --max-writers, --append-batch, --max-size and --idle-timeout must not be negative`},
		{"mail delete without state", mail("--delete"), nil, exitUsage, `^migrate: mail: --delete needs --state`},
		{"mail bad map", mail("--map", "Sent"), nil, exitUsage, `^migrate: mail: --map "Sent": want SRC=DST$`},
		{"mail state is a README", mail("--state", readme), nil, exitUsage, `^migrate: .*README\.md is not a zxmigrate state file \(not a SQLite database\); it was left untouched`},
		{"mail state is a program", mail("--state", tool), nil, exitUsage, `^migrate: .*tool is not a zxmigrate state file`},
		{"mail state is empty", mail("--state", empty), nil, exitUsage, `^migrate: .*empty is not a zxmigrate state file \(an empty file\)`},
		{"mail state locked", mail("--state", lockedState), nil, exitUsage, lockedMsg},
		{"mail state in a missing directory", mail("--state", filepath.Join(dir, "no-dir", "s.db")), nil, exitUsage, `^migrate: --state .*no-dir/s\.db: `},
		{"mail ca-file missing", mail("--ca-file", filepath.Join(dir, "nope.pem")), nil, exitUsage, `^migrate: read --ca-file: `},
		// mail: servers
		{"mail wrong password", mail(), map[string]string{"MIGRATE_TO_PASSWORD": "wrong"}, exitAuth, `^migrate: a server refused the credentials`},
		{"mail refused", []string{"mail", "--from", imapURL(closed), "--to", imapURL(plain.Addr), "--allow-plaintext"}, nil, exitUnreachable, `^migrate: cannot reach 127\.0\.0\.1:\d+: connection refused$`},
		{"mail imap to a server without STARTTLS", []string{"mail", "--from", imapURL(plain.Addr), "--to", imapURL(plain.Addr)}, nil, exitUnreachable, `^migrate: the server does not offer STARTTLS on this port$`},
		{"mail imaps to a plaintext port", []string{"mail", "--from", imapsURL(plain.Addr), "--to", imapsURL(plain.Addr)}, nil, exitUnreachable, `^migrate: the server did not answer with TLS: the port speaks plaintext$`},
		{"mail imaps untrusted certificate", []string{"mail", "--from", imapsURL(secure.TLSAddr), "--to", imapsURL(secure.TLSAddr)}, nil, exitUnreachable, `^migrate: the certificate of the server is not trusted: `},

		// calendars
		{"calendars without --to", []string{"calendars", "--from", davURL}, nil, exitUsage, `^migrate: --from and --to are required$`},
		{"calendars plain http", []string{"calendars", "--from", httpURL, "--to", davURL}, nil, exitUsage, `^migrate: http://127\.0\.0\.1:\d+ is plain http: pass --allow-plaintext`},
		{"calendars credentials in URL", []string{"calendars", "--from", "https://u:p@h/", "--to", davURL}, nil, exitUsage, `^migrate: https://u:xxxxx@h/: put no credentials in URLs`},
		{"calendars negative concurrency", cal("calendars", "--concurrency", "-2"), nil, exitUsage, `^migrate: --concurrency must not be negative$`},
		{"calendars state is a README", cal("calendars", "--state", readme), nil, exitUsage, `^migrate: .*README\.md is not a zxmigrate state file`},
		{"calendars state locked", cal("calendars", "--state", lockedState), nil, exitUsage, lockedMsg},
		{"calendars refused", []string{"calendars", "--from", "https://" + closed + "/", "--to", davURL + "/", "--ca-file", caFile}, nil, exitUnreachable, `^migrate: cannot reach 127\.0\.0\.1:\d+: connection refused$`},
		{"calendars untrusted certificate", []string{"calendars", "--from", davURL + "/", "--from-user", "user1", "--to", davURL + "/", "--to-user", "user1"}, nil, exitUnreachable, `^migrate: the certificate of the server is not trusted`},
		{"calendars https to a plaintext port", []string{"calendars", "--from", httpsToPlain + "/", "--to", davURL + "/", "--ca-file", caFile}, nil, exitUnreachable, `^migrate: the server did not answer with TLS`},
		{"calendars wrong password", cal("calendars"), map[string]string{"MIGRATE_FROM_PASSWORD": "wrong"}, exitAuth, `^migrate: a server refused the credentials`},

		// contacts
		{"contacts has no --to-rest", cal("contacts", "--to-rest"), nil, exitUsage, `^migrate: unknown flag: --to-rest$`},
		{"contacts state is a program", cal("contacts", "--state", tool), nil, exitUsage, `^migrate: .*tool is not a zxmigrate state file`},
		{"contacts state locked", cal("contacts", "--state", lockedState), nil, exitUsage, lockedMsg},
		{"contacts refused", []string{"contacts", "--from", "https://" + closed + "/", "--to", davURL + "/", "--ca-file", caFile}, nil, exitUnreachable, `^migrate: cannot reach 127\.0\.0\.1:\d+: connection refused$`},

		// carbonio
		{"carbonio without --url", []string{"carbonio", "accounts"}, nil, exitUsage, `^migrate: this command needs --url and --user$`},
		{"carbonio http url", carb("http://carbonio:7071", "accounts"), nil, exitUsage, `^migrate: --url "http://carbonio:7071" must be https://$`},
		{"carbonio no password", carb("https://carbonio:7071", "accounts"), map[string]string{"MIGRATE_CARBONIO_PASSWORD": ""}, exitUsage, `^migrate: .*MIGRATE_CARBONIO_PASSWORD or --password-file`},
		{"carbonio folders without account", carb("https://carbonio:7071", "folders"), nil, exitUsage, `^migrate: accepts 1 arg`},
		{"carbonio untrusted certificate", carb(davURL, "accounts"), nil, exitUnreachable, `^migrate: the certificate of the server is not trusted`},
		{"carbonio wrong password", carb(cs.URL, "--ca-file", csCA, "accounts"), map[string]string{"MIGRATE_CARBONIO_PASSWORD": "wrong"}, exitAuth, `^migrate: a server refused the credentials`},
		{"carbonio refused", carb("https://"+closed, "accounts"), nil, exitUnreachable, `^migrate: cannot reach 127\.0\.0\.1:\d+: connection refused$`},
		{"carbonio https to a plaintext port", carb(httpsToPlain, "accounts"), nil, exitUnreachable, `^migrate: the server did not answer with TLS`},

		// plans: run, preflight, verify
		{"run missing plan", []string{"run", "--plan", missingPlan}, nil, exitUsage, `^migrate: plan file .*no-such-plan\.yaml not found \('migrate plan init `},
		{"run without --plan", []string{"run"}, nil, exitUsage, `^migrate: required flag\(s\) "plan" not set$`},
		{"run bad plan", []string{"run", "--plan", badPlan}, nil, exitUsage, `^migrate: plan .*colour: unknown key`},
		{"run delete without delta", []string{"run", "--plan", plan, "--delete"}, nil, exitUsage, `^migrate: --delete goes with --delta`},
		{"run unknown phase", []string{"run", "--plan", plan, "--phases", "bogus"}, nil, exitUsage, `^migrate: --phases: plan: phases\[0\]: unknown phase "bogus"`},
		{"run unreachable", []string{"run", "--plan", plan}, nil, exitUnreachable, `^migrate: cannot reach source\.imap \(127\.0\.0\.1:1\): connection refused; cannot reach destination\.imap \(127\.0\.0\.1:1\): connection refused$`},
		{"preflight missing plan", []string{"preflight", "--plan", missingPlan}, nil, exitUsage, `^migrate: plan file .* not found`},
		{"preflight unreachable", []string{"preflight", "--plan", plan}, nil, exitUnreachable, `^migrate: cannot reach source\.imap \(127\.0\.0\.1:1\): connection refused; cannot reach destination\.imap \(127\.0\.0\.1:1\): connection refused$`},
		{"verify missing plan", []string{"verify", "--plan", missingPlan}, nil, exitUsage, `^migrate: plan file .* not found`},
		{"verify bad plan", []string{"verify", "--plan", badPlan}, nil, exitUsage, `^migrate: plan .*colour: unknown key`},
		{"verify unreachable", []string{"verify", "--plan", plan}, nil, exitUnreachable, `^migrate: cannot reach source\.imap \(127\.0\.0\.1:1\): connection refused; cannot reach destination\.imap \(127\.0\.0\.1:1\): connection refused$`},
		{"plan check missing", []string{"plan", "check", missingPlan}, nil, exitUsage, `^migrate: plan file .* not found`},
		{"plan check bad", []string{"plan", "check", badPlan}, nil, exitUsage, `^migrate: plan .*colour: unknown key`},
		{"plan init over a file", []string{"plan", "init", readme}, nil, exitUsage, `^migrate: .*README\.md exists; it was left untouched`},

		// report
		{"report without source", []string{"report"}, nil, exitUsage, `^migrate: give --plan, --state or --from$`},
		{"report state is a README", []string{"report", "--state", readme}, nil, exitUsage, `^migrate: .*README\.md is not a zxmigrate state file`},
		{"report state is a program", []string{"report", "--state", tool}, nil, exitUsage, `^migrate: .*tool is not a zxmigrate state file`},
		{"report state is empty", []string{"report", "--state", empty}, nil, exitUsage, `^migrate: .*empty is not a zxmigrate state file \(an empty file\)`},
		{"report state missing", []string{"report", "--state", filepath.Join(dir, "absent.db")}, nil, exitUsage, `^migrate: state file .*absent\.db not found$`},
		{"report from missing", []string{"report", "--from", filepath.Join(dir, "absent.json")}, nil, exitUsage, `^migrate: --from: open `},
		{"report from a README", []string{"report", "--from", readme}, nil, exitUsage, `^migrate: --from .*README\.md is not a zxmigrate JSON report: `},
		{"report bad format", []string{"report", "--state", goodState, "--format", "pdf"}, nil, exitUsage, `^migrate: --format "pdf": want text, json or html$`},
		{"report plan whose state is a README", []string{"report", "--plan", writePlan(t, cliPlan+"state: "+readme+"\n")}, nil, exitUsage, `^migrate: .*README\.md is not a zxmigrate state file`},
		{"report missing plan", []string{"report", "--plan", missingPlan}, nil, exitUsage, `^migrate: plan file .* not found`},
	}
	for name := range hints {
		if !slices.ContainsFunc(tests, func(c cliCase) bool { return c.name == name }) {
			t.Errorf("hint for %q, which is no row of the table", name)
		}
	}
	if len(tests) < 30 {
		t.Fatalf("the table has %d rows; it must cover at least 30 cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range cliEnv {
				t.Setenv(k, v)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var before map[string]facts
			before = map[string]facts{}
			for _, p := range []string{readme, tool, empty} {
				before[p] = statFacts(t, p)
			}
			args := tt.args
			if !slices.Contains(args, "--progress") {
				args = append(append([]string(nil), args...), "--progress", "none")
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), args, &out, &errb)
			stderr := errb.String()
			first, _, _ := strings.Cut(stderr, "\n")
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.code, stderr)
			}
			if !regexp.MustCompile(tt.first).MatchString(first) {
				t.Errorf("first line %q does not match %q\nstderr:\n%s", first, tt.first, stderr)
			}
			if h, ok := hints[tt.name]; ok {
				lines := strings.Split(stderr, "\n")
				if len(lines) < 2 || !regexp.MustCompile(h).MatchString(lines[1]) {
					t.Errorf("second line does not match %q:\n%s", h, stderr)
				}
			}
			if strings.Count(stderr, "migrate: migrate:") > 0 || !strings.HasPrefix(first, "migrate: ") {
				t.Errorf("want one \"migrate: \" prefix, got %q", first)
			}
			if m := internalNames.FindString(stderr); m != "" {
				t.Errorf("stderr shows the internal chain (%q) without --log-level debug:\n%s", m, stderr)
			}
			if strings.Contains(out.String(), "FOLDER") {
				t.Errorf("a folder table was printed for a failed run:\n%s", out.String())
			}
			for p, want := range before {
				if got := statFacts(t, p); got != want {
					t.Errorf("%s changed: %+v, want %+v", p, got, want)
				}
			}
			if _, err := os.Stat(readme + ".lock"); err == nil {
				t.Errorf("a lock file was made next to %s", readme)
			}
		})
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
