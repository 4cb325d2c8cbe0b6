package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
	"github.com/zxmigrate/zxmigrate/state"
)

// commands lists every command of the tree by its arguments, e.g.
// ["carbonio", "mta"], leaving out cobra's own help and completion.
func commands(t *testing.T) [][]string {
	t.Helper()
	var cmds [][]string
	root := &cobra.Command{Use: "migrate"}
	e := &env{ctx: context.Background(), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}
	root.AddCommand(newMailCmd(e), newCalendarsCmd(e), newContactsCmd(e), newCarbonioCmd(e), newVersionCmd(e), newPlanCmd(e))
	root.AddCommand(newOrchestratorCmds(e)...)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		cmds = append(cmds, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), strings.Fields(sub.Use)[0]))
		}
	}
	walk(root, nil)
	return cmds
}

// TestHelp: every command's --help has examples, takes the global flags,
// writes defaults in cobra's form and points nowhere into the source tree.
func TestHelp(t *testing.T) {
	cmds := commands(t)
	if len(cmds) < 20 {
		t.Fatalf("found %d commands; the walk is broken", len(cmds))
	}
	for _, path := range cmds {
		name := strings.Join(path, " ")
		t.Run("migrate "+name, func(t *testing.T) {
			args := append(append([]string(nil), path...), "--help", "--log-level", "info", "--log-format", "json", "--progress", "plain")
			code, out, errOut := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "Examples:\n  ") {
				t.Errorf("no examples:\n%s", out)
			}
			for _, bad := range []string{"(0:", "testdata", "plan.example.yaml"} {
				if strings.Contains(out, bad) {
					t.Errorf("help contains %q:\n%s", bad, out)
				}
			}
			if !strings.Contains(out, "--log-level") {
				t.Errorf("help does not show the global --log-level:\n%s", out)
			}
			for _, old := range []string{"--debug ", "--verbose"} {
				if strings.Contains(out, old) {
					t.Errorf("help shows the old verbosity flag %s:\n%s", old, out)
				}
			}
		})
	}
}

func TestHelpTexts(t *testing.T) {
	_, mail, _ := runCLI(t, "mail", "--help")
	for _, want := range []string{`--concurrency int +folders copied in parallel; 0 chooses ` + strconv.Itoa(imapcopy.DefaultConcurrency) + ` .*, or ` + strconv.Itoa(imapcopy.WANConcurrency) + ` when a server is 5ms or more away`, `--append-batch int .*\(default 16\)`, "WITHOUT a shared state file"} {
		if !regexp.MustCompile(want).MatchString(mail) {
			t.Errorf("mail --help lacks %q:\n%s", want, mail)
		}
	}
	_, contacts, _ := runCLI(t, "contacts", "--help")
	if strings.Contains(contacts, "--to-rest") || strings.Contains(contacts, "Same flags") {
		t.Errorf("contacts --help claims flags it does not have:\n%s", contacts)
	}
	if !strings.Contains(contacts, "except the REST import") {
		t.Errorf("contacts --help does not say how it differs from calendars:\n%s", contacts)
	}
	_, run, _ := runCLI(t, "run", "--help")
	if !strings.Contains(run, "migrate plan init FILE") {
		t.Errorf("run --help does not say where a plan comes from:\n%s", run)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := runCLI(t, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, want := range []string{"migrate ", "module:   github.com/zxmigrate/zxmigrate", "revision: ", "go:       " + runtime.Version()} {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, out)
			}
		}
	}
}

// TestPlanInitCheck: the binary alone writes a plan that it accepts.
func TestPlanInitCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if code, _, errOut := runCLI(t, "plan", "init", p); code != exitOK {
		t.Fatalf("plan init: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(p)
	if err != nil || !bytes.Contains(b, []byte("password_env")) || !bytes.HasPrefix(b, []byte("#")) {
		t.Fatalf("plan init wrote %d bytes (%v); want the annotated plan", len(b), err)
	}
	code, out, errOut := runCLI(t, "plan", "check", p)
	if code != exitOK || !strings.Contains(out, "plan "+p+": ok") {
		t.Errorf("plan check of the written plan: exit %d\n%s%s", code, out, errOut)
	}
	// Secrets: the example names environment variables that are not set.
	if code, _, errOut := runCLI(t, "plan", "check", "--secrets", p); code != exitUsage || !strings.Contains(errOut, "ZX_SOURCE_ADMIN_PASSWORD") {
		t.Errorf("plan check --secrets without the variables: exit %d, want %d naming the variable: %s", code, exitUsage, errOut)
	}
	code, out, _ = runCLI(t, "plan", "init")
	if code != exitOK || !strings.HasPrefix(out, "# zxmigrate plan") {
		t.Errorf("plan init to stdout: exit %d, %.40q", code, out)
	}
	if code, _, _ := runCLI(t, "plan", "init", "--force", p); code != exitOK {
		t.Errorf("plan init --force: exit %d", code)
	}
}

// TestErrorDetailOnlyInDebug: the internal chain shows with --log-level
// debug (and the deprecated --debug), never without.
func TestErrorDetailOnlyInDebug(t *testing.T) {
	t.Setenv("MIGRATE_FROM_PASSWORD", "x")
	t.Setenv("MIGRATE_TO_PASSWORD", "x")
	addr := closedAddr(t)
	base := []string{"mail", "--from", "imap://u@" + addr, "--to", "imap://u@" + addr, "--allow-plaintext"}
	_, _, plain := runCLI(t, base...)
	if strings.Contains(plain, "imapcopy") || !strings.Contains(plain, "(--log-level debug shows the details)") {
		t.Errorf("without debug:\n%s", plain)
	}
	for _, flag := range [][]string{{"--log-level", "debug"}, {"--debug"}} {
		code, _, errOut := runCLI(t, append(base, flag...)...)
		if code != exitUnreachable || !strings.Contains(errOut, "  detail: imapcopy: connect "+addr) {
			t.Errorf("%v: exit %d, want %d and the chain:\n%s", flag, code, exitUnreachable, errOut)
		}
	}
}

// TestPreflightErrorOnce: preflight says what failed once, not in the check
// list and again at the end.
func TestPreflightErrorOnce(t *testing.T) {
	t.Setenv("ZXT_CLI_SRC", "x")
	t.Setenv("ZXT_CLI_DST", "y")
	code, out, errOut := runCLI(t, "preflight", "--plan", writePlan(t, cliPlan))
	if code != exitUnreachable {
		t.Errorf("exit %d, want %d", code, exitUnreachable)
	}
	if n := strings.Count(out+errOut, "source.imap (127.0.0.1:1)"); n != 1 {
		t.Errorf("the error is printed %d times, want once:\nstdout:\n%s\nstderr:\n%s", n, out, errOut)
	}
	if !strings.Contains(out, "WITHOUT a shared state file") {
		t.Errorf("preflight does not warn about concurrent runs without a state:\n%s", out)
	}
}

// TestRetryLines: a retry record reads as one line in the operator's words,
// not a raw WARN record with the error chain.
func TestRetryLines(t *testing.T) {
	var buf bytes.Buffer
	log, err := operatorLogger(&buf, globalFlags{logLevel: "warn", logFormat: "text"})
	if err != nil {
		t.Fatal(err)
	}
	dnsErr := &net.DNSError{Err: "no such host", Name: "carbonio.example.com", IsNotFound: true}
	for attempt := 1; attempt <= 3; attempt++ {
		// As carbonio.Client logs it.
		log.Warn("carbonio: retrying", "request", "GetAccountInfoRequest", "attempt", attempt,
			"err", &net.OpError{Op: "dial", Net: "tcp", Err: dnsErr}, "wait", time.Second)
	}
	log.Warn("something else", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := "migrate: retrying GetAccountInfoRequest: cannot reach carbonio.example.com: no such host (attempt 3/6)"
	if len(lines) != 4 || lines[1] != want {
		t.Errorf("got:\n%s\nwant line 2: %s", buf.String(), want)
	}
	if strings.Contains(strings.Join(lines[:3], "\n"), "level=") {
		t.Errorf("retries printed as raw records:\n%s", buf.String())
	}
	if !strings.Contains(lines[3], "level=WARN") {
		t.Errorf("other records must pass through: %q", lines[3])
	}
	// As imapcopy logs a failed folder pass and a failed listing.
	buf.Reset()
	log.Warn("folder pass failed; retrying", "folder", "INBOX", "attempt", 1, "wait", time.Second,
		"err", fmt.Errorf("imapcopy: fetch: %w", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}))
	log, _ = operatorLogger(&buf, globalFlags{logLevel: "info", logFormat: "text"})
	log.Info("retrying folder listing", "source", true, "attempt", 4, "error", &net.OpError{Op: "dial", Net: "tcp", Err: dnsErr}, "wait", time.Second)
	want2 := "migrate: retrying INBOX: lost the connection to the server: i/o timeout (attempt 2/6)\n" +
		"migrate: retrying the source: cannot reach carbonio.example.com: no such host (attempt 5/6)\n"
	if buf.String() != want2 {
		t.Errorf("imapcopy retries:\n%s\nwant:\n%s", buf.String(), want2)
	}
	// With --log-level debug every record stays raw.
	buf.Reset()
	log, _ = operatorLogger(&buf, globalFlags{logLevel: "debug", logFormat: "text"})
	log.Warn("carbonio: retrying", "request", "X", "attempt", 1, "err", dnsErr)
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("debug: %q", buf.String())
	}
}

// TestTwoMailRunsOneState runs two real `migrate mail` processes on one
// state and mailbox: the second refuses with exit 2 and names the first by
// pid and host. The first is held inside its run by a destination that
// accepts the connection and never greets, so the two overlap for sure.
func TestTwoMailRunsOneState(t *testing.T) {
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src"})
	bin := filepath.Join(t.TempDir(), "migrate")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.revision=rev-from-ldflags", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// A build without VCS stamping takes its revision from the linker.
	if out, err := exec.Command(bin, "version").Output(); err != nil || !bytes.Contains(out, []byte("revision: rev-from-ldflags")) {
		t.Errorf("version of a build with -X main.revision: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	statePath := filepath.Join(t.TempDir(), "state.db")
	args := []string{"mail", "--from", "imap://" + testserver.DefaultUser + "@" + src.Addr, "--to", "imap://" + testserver.DefaultUser + "@" + ln.Addr().String(),
		"--allow-plaintext", "--state", statePath}
	env := append(os.Environ(), "MIGRATE_FROM_PASSWORD="+testserver.DefaultPassword, "MIGRATE_TO_PASSWORD="+testserver.DefaultPassword)
	first := exec.Command(bin, args...)
	first.Env = env
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { first.Process.Kill(); first.Wait() }()
	// Wait until the first run holds the lock (it writes its pid there).
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(statePath + ".lock")
		if bytes.Contains(b, []byte("pid="+strconv.Itoa(first.Process.Pid))) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first run did not take the lock; lock file: %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	second := exec.Command(bin, args...)
	second.Env = env
	var errb bytes.Buffer
	second.Stderr = &errb
	err = second.Run()
	code := second.ProcessState.ExitCode()
	host, _ := os.Hostname()
	want := "(process " + strconv.Itoa(first.Process.Pid) + " on " + host + ")"
	if code != exitUsage || !strings.Contains(errb.String(), "another run is using the state file") || !strings.Contains(errb.String(), want) {
		t.Errorf("second run: exit %d (%v), want %d naming %s:\n%s", code, err, exitUsage, want, errb.String())
	}
}

// TestMailTakesGlobalFlags: README's global flags work on `migrate mail`:
// --progress none silences the progress lines, and the log flags parse.
func TestMailTakesGlobalFlags(t *testing.T) {
	src := startMemimap(t, memimap.Options{})
	dst := startMemimap(t, memimap.Options{})
	if err := src.Seed("u", smallMailbox()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_FROM_PASSWORD", "p")
	t.Setenv("MIGRATE_TO_PASSWORD", "p")
	code, out, errOut := runCLI(t, "mail", "--from", "imap://u@"+src.Addr(), "--to", "imap://u@"+dst.Addr(), "--allow-plaintext",
		"--progress", "none", "--log-format", "json", "--log-level", "error")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if errOut != "" {
		t.Errorf("--progress none printed on stderr:\n%s", errOut)
	}
	if !strings.Contains(out, "TOTAL") {
		t.Errorf("no summary:\n%s", out)
	}
}

// TestRunStateRefusals: a plan run whose state another run holds, or whose
// state path is not a state file, stops with exit 2 before copying.
func TestRunStateRefusals(t *testing.T) {
	menv, err := migratetest.Start(migratetest.Options{Accounts: 1, Dir: t.TempDir(), Events: -1, Contacts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer menv.Close()
	dir := t.TempDir()
	t.Setenv("ZXT_RUN_SRC_PW", menv.Plan.Source.IMAP.Password.Reveal())
	t.Setenv("ZXT_RUN_DST_PW", menv.Plan.Destination.IMAP.Password.Reveal())
	if err := os.WriteFile(filepath.Join(dir, "accounts.txt"), []byte(strings.Join(menv.Accounts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notes := foreignFile(t, dir, "notes.md", []byte("# notes\n"), 0o644)
	plan := func(statePath string) string {
		p := filepath.Join(t.TempDir(), "plan.yaml")
		body := fmt.Sprintf(`source:
  kind: imap
  imap: {address: %q, security: none, admin: admin, password_env: ZXT_RUN_SRC_PW}
destination:
  kind: imap
  imap: {address: %q, security: none, admin: admin, password_env: ZXT_RUN_DST_PW}
accounts:
  list_file: %s
phases: [mail]
state: %s
`, menv.Plan.Source.IMAP.Address, menv.Plan.Destination.IMAP.Address, filepath.Join(dir, "accounts.txt"), statePath)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	locked := filepath.Join(dir, "state.db")
	unlock, err := state.Lock(context.Background(), locked)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	host, _ := os.Hostname()
	code, _, errOut := runCLI(t, "run", "--plan", plan(locked), "--progress", "none")
	if want := fmt.Sprintf("(process %d on %s)", os.Getpid(), host); code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("run on a locked state: exit %d, want %d naming %s:\n%s", code, exitUsage, want, errOut)
	}
	before := statFacts(t, notes)
	code, _, errOut = runCLI(t, "run", "--plan", plan(notes), "--progress", "none")
	if code != exitUsage || !strings.Contains(errOut, "is not a zxmigrate state file") {
		t.Errorf("run on notes.md: exit %d, want %d:\n%s", code, exitUsage, errOut)
	}
	if after := statFacts(t, notes); after != before {
		t.Errorf("notes.md changed: %+v, want %+v", after, before)
	}
	if _, err := os.Stat(notes + ".lock"); err == nil {
		t.Error("a lock file was made next to notes.md")
	}
}

// TestPrintErrorEscapes: a server's text in an error cannot drive the
// terminal.
func TestPrintErrorEscapes(t *testing.T) {
	var b bytes.Buffer
	printError(&b, fmt.Errorf("imapcopy: select: NO \x1b[2Jgone\rnow"), true)
	if strings.ContainsAny(b.String(), "\x1b\r") {
		t.Errorf("control characters reached the terminal: %q", b.String())
	}
	if !strings.Contains(b.String(), `migrate: select: NO \x1b[2Jgone\rnow`) {
		t.Errorf("got %q", b.String())
	}
}

// TestInterruptedMessage: a cancelled run exits 130 and says how to resume,
// not "context canceled".
func TestInterruptedMessage(t *testing.T) {
	t.Setenv("MIGRATE_FROM_PASSWORD", "x")
	t.Setenv("MIGRATE_TO_PASSWORD", "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	addr := closedAddr(t)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"mail", "--from", "imap://u@" + addr, "--to", "imap://u@" + addr, "--allow-plaintext"}, &out, &errb)
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	if first, _, _ := strings.Cut(errb.String(), "\n"); first != "migrate: interrupted" || strings.Contains(errb.String(), "context canceled") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}

// FuzzPrintError: whatever an error says, the operator reads one
// "migrate: " prefix and no control characters.
func FuzzPrintError(f *testing.F) {
	for _, s := range []string{"migrate: migrate: read plan: open x: no such file", "caldav: dav: source calendars: dav: PROPFIND: 404",
		"imapcopy: NO \x1b[31mred", "migrate", "", ": : :", "state: x: y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		printError(&b, errors.New(s), false)
		out := b.String()
		if !strings.HasPrefix(out, "migrate: ") || strings.Contains(out, "migrate: migrate: ") {
			t.Errorf("%q printed as %q", s, out)
		}
		for _, r := range out {
			if r != '\n' && (r < 0x20 || (r >= 0x7f && r < 0xa0)) {
				t.Fatalf("%q printed a control character: %q", s, out)
			}
		}
	})
}
