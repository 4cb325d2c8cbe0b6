package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

func startMemimap(t *testing.T, opts memimap.Options) *memimap.Server {
	t.Helper()
	s, err := memimap.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser("u", "p")
	return s
}

func smallMailbox() corpus.Mailbox {
	msg := func(folder, id string, flags ...string) corpus.Message {
		return corpus.Message{Folder: folder, Flags: flags, InternalDate: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
			Raw: []byte("From: a@example.com\r\nMessage-ID: <" + id + "@x>\r\nSubject: " + id + "\r\n\r\nbody " + id + "\r\n")}
	}
	return corpus.Mailbox{
		Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}, {Name: "Work", Subscribed: true}, {Name: "Work/Sub"}},
		Messages: []corpus.Message{msg("INBOX", "a", `\Seen`), msg("INBOX", "b", `\Flagged`, "$Forwarded"),
			msg("Work", "c"), msg("Work/Sub", "d", `\Seen`), msg("Work/Sub", "d", `\Seen`)},
	}
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// readMailReport reads and decodes a --report file; it returns the bytes
// too.
func readMailReport(t *testing.T, path string) (mailReport, []byte) {
	t.Helper()
	var rep mailReport
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, b
}

func TestMailCLI(t *testing.T) {
	src := startMemimap(t, memimap.Options{})
	dst := startMemimap(t, memimap.Options{})
	if err := src.Seed("u", smallMailbox()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_FROM_PASSWORD", "p")
	t.Setenv("MIGRATE_TO_PASSWORD", "p")
	dir := t.TempDir()
	report := filepath.Join(dir, "r.json")
	statePath := filepath.Join(dir, "state.db")
	args := []string{"mail", "--from", "imap://u@" + src.Addr(), "--to", "imap://u@" + dst.Addr(), "--allow-plaintext",
		"--state", statePath, "--report", report}

	code, out, errOut := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "TOTAL") || !strings.Contains(out, "Work/Sub") {
		t.Errorf("summary table missing:\n%s", out)
	}
	rep, b := readMailReport(t, report)
	if !rep.OK || rep.Stats.Totals().Copied != 5 {
		t.Errorf("report ok %v copied %d, want true, 5", rep.OK, rep.Stats.Totals().Copied)
	}
	if rep.Proof != "fingerprint + 5% sample" || !strings.Contains(out, "proof: fingerprint + 5% sample") {
		t.Errorf("report proof %q, want the default named in the report and the summary:\n%s", rep.Proof, out)
	}
	if strings.Contains(string(b), "\"p\"") {
		t.Error("report contains the password")
	}

	// Re-run: nothing copied, exit 0.
	code, out, _ = runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("re-run exit %d, want 0:\n%s", code, out)
	}
	b, _ = os.ReadFile(report)
	_ = json.Unmarshal(b, &rep)
	if n := rep.Stats.Totals().Copied; n != 0 {
		t.Errorf("re-run copied %d, want 0", n)
	}

	// Message a is expunged at the source: --delete removes its copy, and
	// only with the state that records it as one.
	c, err := imapclient.DialInsecure(src.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u", "p").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "mail", "--from", "imap://u@"+src.Addr(), "--to", "imap://u@"+dst.Addr(), "--allow-plaintext", "--delete"); code != exitUsage || !strings.Contains(errOut, "--state") {
		t.Errorf("--delete without --state: exit %d, want %d naming --state (%s)", code, exitUsage, errOut)
	}
	code, out, errOut = runCLI(t, append(args, "--delete")...)
	if code != exitOK || !strings.Contains(out, "deleted on the destination: 1 ") {
		t.Fatalf("--delete: exit %d, want 0 and one deletion\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	b, _ = os.ReadFile(report)
	_ = json.Unmarshal(b, &rep)
	if tt := rep.Stats.Totals(); tt.Deleted != 1 || tt.DestCount != 4 {
		t.Errorf("--delete report: %d deleted, %d at the destination; want 1, 4", tt.Deleted, tt.DestCount)
	}
}

func TestMailCLIExitCodes(t *testing.T) {
	src := startMemimap(t, memimap.Options{})
	dst := startMemimap(t, memimap.Options{AppendLimit: 10})
	if err := src.Seed("u", smallMailbox()); err != nil {
		t.Fatal(err)
	}
	base := []string{"mail", "--from", "imap://u@" + src.Addr(), "--to", "imap://u@" + dst.Addr(), "--allow-plaintext"}
	t.Setenv("MIGRATE_FROM_PASSWORD", "p")
	t.Setenv("MIGRATE_TO_PASSWORD", "p")

	// Every message exceeds APPENDLIMIT=10: reported, partial.
	code, out, _ := runCLI(t, base...)
	if code != exitPartial {
		t.Errorf("oversize: exit %d, want %d\n%s", code, exitPartial, out)
	}
	if !strings.Contains(out, "skipped: INBOX uid 1") {
		t.Errorf("oversize message not named in the summary:\n%s", out)
	}

	t.Setenv("MIGRATE_TO_PASSWORD", "wrong")
	if code, _, errOut := runCLI(t, base...); code != exitAuth {
		t.Errorf("bad password: exit %d, want %d (%s)", code, exitAuth, errOut)
	}
	if code, _, _ := runCLI(t, "mail", "--from", "imap://u@"+src.Addr()); code != exitUsage {
		t.Errorf("missing --to: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLI(t, "mail", "--from", "imap://u:secret@"+src.Addr(), "--to", "imap://u@"+dst.Addr()); code != exitUsage {
		t.Errorf("password in URL: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := runCLI(t, append(base, "--append-batch", "-1")...); code != exitUsage || !strings.Contains(errOut, "--append-batch") {
		t.Errorf("--append-batch -1: exit %d, want %d naming the flag (%s)", code, exitUsage, errOut)
	}
	os.Unsetenv("MIGRATE_TO_PASSWORD")
	if code, _, _ := runCLI(t, base...); code != exitUsage {
		t.Errorf("no password: exit %d, want %d", code, exitUsage)
	}
	// Without --allow-plaintext, imap:// insists on STARTTLS, which memimap
	// does not offer.
	t.Setenv("MIGRATE_TO_PASSWORD", "p")
	if code, _, _ := runCLI(t, "mail", "--from", "imap://u@"+src.Addr(), "--to", "imap://u@"+dst.Addr()); code == exitOK {
		t.Errorf("plaintext without --allow-plaintext: exit 0, want a failure")
	}
}

// TestMailKill kills `migrate mail` with SIGKILL at random moments, re-runs
// it each time, and checks that the destination ends with exactly the
// source's messages; then the same with the state file deleted before each
// re-run.
func TestMailKill(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "migrate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	acc := corpus.Generate("user1", corpus.Options{Seed: 7, Messages: 400, Events: -1, Contacts: -1})
	for _, keepState := range []bool{true, false} {
		name := "with-state"
		if !keepState {
			name = "state-deleted"
		}
		t.Run(name, func(t *testing.T) {
			src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src"})
			dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst", Separator: '.'})
			ctx := context.Background()
			if err := src.Seed(ctx, testserver.DefaultUser, acc.Mail); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			statePath := filepath.Join(dir, "state.db")
			args := []string{"mail", "--from", "imap://" + testserver.DefaultUser + "@" + src.Addr,
				"--to", "imap://" + testserver.DefaultUser + "@" + dst.Addr, "--allow-plaintext", "--state", statePath}
			env := append(os.Environ(), "MIGRATE_FROM_PASSWORD="+testserver.DefaultPassword, "MIGRATE_TO_PASSWORD="+testserver.DefaultPassword)
			rng := rand.New(rand.NewPCG(1, uint64(len(name))))
			kills := 0
			want, err := src.Snapshot(ctx, testserver.DefaultUser)
			if err != nil {
				t.Fatal(err)
			}
			// check compares the destination with the source. The Zimbra
			// tag keyword is sent as "Project" by the documented rule, and
			// "Beta v1.2" becomes "Beta v1_2" on the destination whose
			// separator is "."; everything else must be identical.
			check := func(kills int) {
				t.Helper()
				got, err := dst.Snapshot(ctx, testserver.DefaultUser)
				if err != nil {
					t.Fatal(err)
				}
				if d := corpus.DiffMail(want, got, &corpus.DiffOptions{IgnoreFlags: []string{corpus.ZimbraTagKeyword, "Project"}, ExtraFoldersOK: true,
					Folder: func(n string) string { return strings.ReplaceAll(n, ".", "_") }}); d != nil {
					t.Fatalf("after %d kills, destination differs (lost or duplicated):\n%s", kills, strings.Join(d, "\n"))
				}
			}
			// Kill until 10 runs died mid-copy. A run may finish first (the
			// whole copy of 400 messages takes well under a second); then
			// the destination and the state start afresh, so that the
			// later kills still land mid-copy.
			for i := 0; kills < 10 && i < 80; i++ {
				if !keepState {
					for _, f := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
						os.Remove(f)
					}
				}
				cmd := exec.Command(bin, args...)
				cmd.Env = env
				var errb bytes.Buffer
				cmd.Stderr = &errb
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					t.Logf("run %d finished before the kill: %v; checked, starting afresh", i, err)
					check(kills)
					if err := dst.ResetUser(ctx, testserver.DefaultUser); err != nil {
						t.Fatal(err)
					}
					for _, f := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
						os.Remove(f)
					}
				case <-time.After(time.Duration(20+rng.IntN(1200)) * time.Millisecond):
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
				}
			}
			if kills < 10 {
				t.Errorf("only %d runs were killed mid-copy, want ≥ 10", kills)
			}
			if !keepState {
				os.Remove(statePath)
				os.Remove(statePath + "-wal")
				os.Remove(statePath + "-shm")
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			out, err := cmd.Output()
			if code := cmd.ProcessState.ExitCode(); code != exitOK && code != exitPartial {
				t.Fatalf("final run: exit %d (%v)\n%s", code, err, out)
			}
			check(kills)
		})
	}
}

// TestMailCLIFolderConcurrency: without --concurrency, migrate mail lets
// the copier choose from the round trip it measures, so a server behind a
// 10 ms delay line gets imapcopy.WANConcurrency folders at once, and a
// loopback one DefaultConcurrency; --concurrency overrides both. The
// choice is in the report and the summary.
func TestMailCLIFolderConcurrency(t *testing.T) {
	src := startMemimap(t, memimap.Options{})
	if err := src.Seed("u", smallMailbox()); err != nil {
		t.Fatal(err)
	}
	line, err := faultproxy.ListenDelay(src.Addr(), faultproxy.DelayOptions{Delay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	t.Setenv("MIGRATE_FROM_PASSWORD", "p")
	t.Setenv("MIGRATE_TO_PASSWORD", "p")
	for _, tc := range []struct {
		name string
		from string
		args []string
		want int
	}{
		{"loopback", src.Addr(), nil, imapcopy.DefaultConcurrency},
		{"delay line", line.Addr(), nil, imapcopy.WANConcurrency},
		{"delay line, --concurrency 2", line.Addr(), []string{"--concurrency", "2"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := startMemimap(t, memimap.Options{})
			report := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"mail", "--from", "imap://u@" + tc.from, "--to", "imap://u@" + dst.Addr(),
				"--allow-plaintext", "--report", report}, tc.args...)
			code, out, errOut := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			rep, _ := readMailReport(t, report)
			if rep.Stats.FolderConcurrency != tc.want {
				t.Errorf("report: %d folders in parallel (round trip %.1f ms), want %d", rep.Stats.FolderConcurrency, rep.Stats.RoundTripMillis, tc.want)
			}
			if want := fmt.Sprintf("folders in parallel: %d ", tc.want); !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		})
	}
}
