package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
)

// resetStops undoes requestStop for the tests that follow.
func resetStops(t *testing.T) {
	t.Cleanup(func() {
		stopMu.Lock()
		defer stopMu.Unlock()
		if stopClosed {
			stopRequests, stopClosed = make(chan struct{}), false
		}
	})
}

// mtaRun is a plan with mta_stop, mail and mta_start against a
// carboniotest destination driven through the fakecli command line, and a
// destination IMAP server whose first APPEND waits until the test has
// interrupted the run: the interrupt always falls between mta_stop and
// mta_start.
type mtaRun struct {
	plan     string
	src      *memimap.Server
	admin    *carboniotest.Server
	appendAt chan struct{} // closed at the first APPEND
	release  chan struct{} // closing it lets the APPENDs go on
}

func newMTARun(t *testing.T, restart bool) *mtaRun {
	t.Helper()
	const pw = "mta-test-password"
	t.Setenv("ZXT_MTA_PW", pw)
	const user = "u@example.com"
	m := &mtaRun{appendAt: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	src := startMemimap(t, memimap.Options{Admins: map[string]string{"admin": pw}})
	dst := startMemimap(t, memimap.Options{Admins: map[string]string{"admin": pw},
		AppendHook: func(string, string, []imap.Flag, int64) error {
			once.Do(func() { close(m.appendAt) })
			<-m.release
			return nil
		}})
	for _, s := range []*memimap.Server{src, dst} {
		s.AddUser(user, "unused")
	}
	if err := src.Seed(user, smallMailbox()); err != nil {
		t.Fatal(err)
	}
	m.src = src
	m.admin = carboniotest.New(carboniotest.Options{Admin: "admin@carbonio.local", Password: pw, Fixture: carboniotest.DestinationFixture()})
	t.Cleanup(m.admin.Close)
	m.admin.AddAccount(carboniotest.FixtureAccount{Name: user})
	cli := m.admin.BuildFakeCLI(t)
	t.Setenv("PATH", cli+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(cli) // fakecli finds its fakecli.json next to argv[0], here "./zmmtactl"

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), m.admin.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.txt"), []byte(user+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.plan = filepath.Join(dir, "plan.yaml")
	body := fmt.Sprintf(`
source:
  kind: imap
  imap: {address: %q, security: none, admin: admin, password_env: ZXT_MTA_PW}
destination:
  kind: imap
  admin: {url: %q, user: admin@carbonio.local, password_env: ZXT_MTA_PW, ca_file: ca.pem}
  imap: {address: %q, security: none, admin: admin, password_env: ZXT_MTA_PW}
  cli: {mode: local}
accounts:
  list_file: accounts.txt
phases: [mta_stop, mail, mta_start]
state: state.db
report: report
mta: {restart_on_interrupt: %v}
`, src.Addr(), m.admin.URL, dst.Addr(), restart)
	if err := os.WriteFile(m.plan, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRunInterruptedWithMTAStopped: Ctrl-C (the soft stop) after mta_stop
// ends the run with exit 130 and, as its last lines, the warning that the
// destination MTA is stopped with the commands that start it; `report
// --state` says the same.
func TestRunInterruptedWithMTAStopped(t *testing.T) {
	resetStops(t)
	m := newMTARun(t, false)
	go func() {
		<-m.appendAt
		requestStop() // what the first Ctrl-C or SIGTERM does
		close(m.release)
	}()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"run", "--plan", m.plan, "--progress", "none"}, &out, &errb)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInterrupted, out.String(), errb.String())
	}
	if m.admin.MTARunning() {
		t.Fatal("the fake MTA runs: the run was not interrupted between mta_stop and mta_start")
	}
	wantStart := "migrate carbonio mta start --local-cli"
	wantResume := "migrate run --plan " + m.plan
	lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
	tail := strings.Join(lines[max(0, len(lines)-5):], "\n")
	for _, want := range []string{"!!! The destination MTA is STOPPED", wantStart, wantResume} {
		if !strings.Contains(tail, want) {
			t.Errorf("the last lines of stderr lack %q:\n%s", want, tail)
		}
	}

	out.Reset()
	errb.Reset()
	state := filepath.Join(filepath.Dir(m.plan), "state.db")
	if code := run(context.Background(), []string{"report", "--state", state}, &out, &errb); code != exitOK {
		t.Fatalf("report --state: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "destination MTA is STOPPED") || !strings.Contains(out.String(), wantStart) {
		t.Errorf("report --state does not warn:\n%s", out.String())
	}

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"status", "--state", state}, &out, &errb); code != exitOK {
		t.Fatalf("status --state: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "destination MTA is STOPPED") || !strings.Contains(out.String(), wantStart) {
		t.Errorf("status --state does not warn:\n%s", out.String())
	}

	// The resume fails before it starts (the source is gone): it still
	// ends with the warning, read from the state.
	m.src.Close()
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"run", "--plan", m.plan, "--progress", "none"}, &out, &errb)
	if code != exitUnreachable {
		t.Fatalf("resume with the source down: exit %d, want %d\nstderr:\n%s", code, exitUnreachable, errb.String())
	}
	lines = strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
	tail = strings.Join(lines[max(0, len(lines)-5):], "\n")
	if !strings.Contains(tail, "!!! The destination MTA is STOPPED") || !strings.Contains(tail, wantStart) {
		t.Errorf("a resume that failed early does not end with the warning:\n%s", errb.String())
	}
}

// TestRunRestartsMTAOnInterrupt: with mta.restart_on_interrupt a cancelled
// run starts the MTA again (the fake records zmmtactl start) and prints no
// warning.
func TestRunRestartsMTAOnInterrupt(t *testing.T) {
	m := newMTARun(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.appendAt
		cancel() // the second Ctrl-C: stop at once
		close(m.release)
	}()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"run", "--plan", m.plan, "--progress", "none"}, &out, &errb)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", code, exitInterrupted, errb.String())
	}
	if !m.admin.MTARunning() {
		t.Fatalf("the MTA is still stopped\nstderr:\n%s", errb.String())
	}
	var mta []string
	for _, c := range m.admin.CLICommands() {
		if len(c) > 0 && c[0] == "zmmtactl" {
			mta = append(mta, strings.Join(c, " "))
		}
	}
	if strings.Join(mta, ",") != "zmmtactl stop,zmmtactl start" {
		t.Errorf("MTA commands %q, want stop then start", mta)
	}
	if strings.Contains(errb.String()+out.String(), "MTA is STOPPED") {
		t.Errorf("warned though the MTA was started again:\n%s", errb.String())
	}
}
