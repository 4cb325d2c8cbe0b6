package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

// buildCLI builds the migrate command.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "migrate")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/zxmigrate/zxmigrate/cmd/migrate")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build migrate: %v\n%s", err, out)
	}
	return bin
}

// proc is one started copy process with its captured output.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	cmdline        []byte // /proc/PID/cmdline, read while it ran
	reportPath     string
}

// startCopy starts `migrate mail` from the rig's source proxy to its
// destination proxy, passwords in the environment as documented.
func startCopy(t *testing.T, bin string, r *mailRig, statePath string) *proc {
	t.Helper()
	p := &proc{reportPath: filepath.Join(t.TempDir(), "report.json")}
	p.cmd = exec.Command(bin, "mail",
		"--from", "imap://user1@"+r.srcProxy.Addr(), "--to", "imap://user1@"+r.dstProxy.Addr(),
		"--allow-plaintext", "--state", statePath, "--report", p.reportPath)
	p.cmd.Env = []string{
		"MIGRATE_FROM_PASSWORD=" + mailPassword, "MIGRATE_TO_PASSWORD=" + mailPassword,
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmdline, _ = os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/cmdline")
	return p
}

// report reads the JSON report the process wrote, if any.
func (p *proc) report() (stats *imapcopy.Stats, raw []byte) {
	raw, err := os.ReadFile(p.reportPath)
	if err != nil {
		return nil, nil
	}
	var rep struct {
		Stats *imapcopy.Stats `json:"stats"`
	}
	if json.Unmarshal(raw, &rep) != nil {
		return nil, raw
	}
	return rep.Stats, raw
}

// done reports whether the process exited 0 or 3 (sanitised keywords are
// reported as partial) with a report showing every folder copied and
// verified.
func (p *proc) done() bool {
	if p.cmd.ProcessState == nil {
		return false
	}
	if c := p.cmd.ProcessState.ExitCode(); c != 0 && c != 3 {
		return false
	}
	stats, _ := p.report()
	return stats != nil && len(stats.Folders) > 0 && problems(stats) == ""
}

func (p *proc) collect(out *sink) {
	_, raw := p.report()
	out.add("argv", p.cmdline)
	out.add("stdout", p.stdout.Bytes())
	out.add("stderr", p.stderr.Bytes())
	out.add("report.json", raw)
}

// TestMailResumeAfterSIGKILL copies a mailbox through the fault proxies
// with `migrate mail --state`, SIGKILLed at seeded random moments and
// started again, sometimes after its state file was deleted. Runs without
// kills then finish the job; the destination must equal the source, and no
// password may appear in any process's argv, output or state file.
func TestMailResumeAfterSIGKILL(t *testing.T) {
	bin := buildCLI(t)
	r := newMailRig(t, size(300, 10_000), 11)
	kills := size(6, 20)
	rng := rand.New(rand.NewPCG(11, 0))
	statePath := filepath.Join(t.TempDir(), "state.db")
	out := newSink()
	removals, resumes, killed := 0, 0, 0
	// Slow the source so that kills land mid-copy, and keep going until
	// enough kills landed or a run finished the job first.
	r.srcProxy.SetBandwidth(int64(size(256<<10, 4<<20)))
	for k := 0; killed < kills && k < 4*kills; k++ {
		// ZXM_CHAOS_NO_FAULTS=1 and ZXM_CHAOS_KEEP_STATE=1 narrow a failure
		// down to kills alone.
		r.faults(os.Getenv("ZXM_CHAOS_NO_FAULTS") != "1", uint64(k+1)*7919)
		removed := k%3 == 2 && os.Getenv("ZXM_CHAOS_KEEP_STATE") != "1"
		if removed {
			for _, p := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
				_ = os.Remove(p)
			}
			removals++
		}
		p := startCopy(t, bin, r, statePath)
		delay := time.Duration(100+rng.IntN(900)) * time.Millisecond
		exited := make(chan error, 1)
		go func() { exited <- p.cmd.Wait() }()
		finished := false
		select {
		case err := <-exited:
			finished = p.done()
			t.Logf("run %d finished before its kill (%v): %s", k+1, err, tail(strings.TrimSpace(p.stderr.String()), 300))
		case <-time.After(delay):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			killed++
		}
		if k > 0 {
			resumes++
		}
		p.collect(out)
		if os.Getenv("ZXM_CHAOS_TRACE") == "1" {
			t.Logf("after run %d (state removed: %v): destination holds %d messages", k+1, removed, count(readMailbox(t, r.direct(r.dstAddr), nil)))
		}
		if finished {
			break // the job is done: nothing left to kill
		}
	}
	if killed < kills {
		t.Errorf("only %d SIGKILLs landed mid-copy, want %d (slow the copy down)", killed, kills)
	}
	// Heal the network and run to the end.
	r.faults(false, 0)
	r.srcProxy.SetBandwidth(0)
	// Exit 3 is expected: the corpus has Zimbra tag keywords, which are
	// sanitised and reported. A run is complete when its report shows
	// nothing else.
	complete := false
	for i := range 5 {
		p := startCopy(t, bin, r, statePath)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(4 * time.Minute):
			_ = p.cmd.Process.Signal(syscall.SIGQUIT)
			<-done
			t.Fatalf("migrate mail hangs (no exit after 4 minutes); its goroutines:\n%s", tail(p.stderr.String(), 8000))
		}
		resumes++
		p.collect(out)
		if complete = p.done(); complete {
			break
		}
		stats, _ := p.report()
		t.Logf("clean run %d: %v; %s; %s", i+1, err, problems(stats), tail(p.stderr.String(), 300))
	}
	if !complete {
		t.Fatal("no complete run after the kills")
	}
	out.addFile(t, "state.db", statePath)
	out.addFile(t, "state.db-wal", statePath+"-wal")
	found, scanned := out.scan(mailPassword)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	r.check(t)
	t.Logf("kill/resume: %d messages, %d SIGKILLs wanted, %d landed mid-copy, %d resumes, %d state-file removals, %d network faults during the killed runs (source %v; destination %v); destination == source; secrets found in %d bytes of argv, output and state: %d",
		r.msgs, kills, killed, resumes, removals, r.faultCount(), r.srcProxy.Stats(), r.dstProxy.Stats(), scanned, len(found))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// TestMailStateLossAfterInterruptedCopy is the smallest reproduction of what
// the kill test checks: a copy is interrupted after 100 messages (context
// cancelled, as a SIGINT would), the state file is deleted, and the copy is
// run again. Messages appended by the first run must be recognised at the
// destination, not appended again.
func TestMailStateLossAfterInterruptedCopy(t *testing.T) {
	mem := func(t *testing.T) *mailRig { return newMailRig(t, 300, 11) }
	t.Run("append-connection", func(t *testing.T) { stateLossAfterInterruptedCopy(t, mem(t), false) })
	t.Run("go-imap", func(t *testing.T) { stateLossAfterInterruptedCopy(t, mem(t), true) })
	// The same between two Dovecots, through both append paths.
	for _, goimap := range []bool{false, true} {
		t.Run(fmt.Sprintf("dovecot/go-imap=%v", goimap), func(t *testing.T) {
			users := map[string]string{"user1": mailPassword}
			src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "loss-src", Users: users})
			dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "loss-dst", Users: users})
			a := corpus.Generate("user1", corpus.Options{Seed: 11, Messages: 300, Events: -1, Contacts: -1})
			if err := src.Seed(context.Background(), "user1", a.Mail); err != nil {
				t.Fatal(err)
			}
			stateLossAfterInterruptedCopy(t, newMailRigBetween(t, src.Addr, dst.Addr, len(a.Mail.Messages)), goimap)
		})
	}
}

// plainDialer hides an Account's append connection, as any Dialer other
// than imapcopy.Account does: the copy appends through go-imap.
type plainDialer struct{ a *imapcopy.Account }

func (d plainDialer) Dial(ctx context.Context) (*imapclient.Client, error) { return d.a.Dial(ctx) }
func (d plainDialer) String() string                                       { return d.a.String() }

func stateLossAfterInterruptedCopy(t *testing.T, r *mailRig, goimap bool) {
	statePath := filepath.Join(t.TempDir(), "state.db")
	var dst imapcopy.Dialer = r.viaProxy(r.dstProxy)
	if goimap {
		dst = plainDialer{r.viaProxy(r.dstProxy)}
	}
	run := func(stopAfter int) *imapcopy.Stats {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := state.Open(ctx, statePath)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var n atomic.Int64
		cp := &imapcopy.Copier{Checkpoint: st.Mail("user1 -> user1"), OnEvent: func(e imapcopy.Event) {
			if _, ok := e.(imapcopy.MessageCopied); ok && n.Add(1) == int64(stopAfter) {
				cancel()
			}
		}}
		stats, _ := copyOnce(t, ctx, cp, dst, r.viaProxy(r.srcProxy))
		return stats
	}
	run(100)
	for _, p := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
		_ = os.Remove(p)
	}
	stats := run(0)
	tot := stats.Totals()
	t.Logf("second run: copied %d, already present %d", tot.Copied, tot.AlreadyPresent)
	r.check(t)
}

// TestSecretHygieneCLI runs `migrate mail` with the password from a file and
// from the environment, and with a wrong password, and scans argv, output,
// the report and the state file for the passwords.
func TestSecretHygieneCLI(t *testing.T) {
	bin := buildCLI(t)
	r := newMailRig(t, 1, 17)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "from.pw")
	if err := os.WriteFile(pwFile, []byte(mailPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, "state.db")
	out := newSink()
	run := func(env []string, args ...string) int {
		cmd := exec.Command(bin, append([]string{"mail", "--from", "imap://user1@" + r.srcProxy.Addr(),
			"--to", "imap://user1@" + r.dstProxy.Addr(), "--allow-plaintext", "--state", statePath,
			"--report", filepath.Join(dir, "report.json")}, args...)...)
		cmd.Env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		argv, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
		_ = cmd.Wait()
		out.add("argv", argv)
		out.add("argv", []byte(strings.Join(cmd.Args, " ")))
		out.add("stdout", so.Bytes())
		out.add("stderr", se.Bytes())
		out.addFile(t, "report.json", filepath.Join(dir, "report.json"))
		return cmd.ProcessState.ExitCode()
	}
	if code := run([]string{"MIGRATE_TO_PASSWORD=" + mailPassword}, "--from-password-file", pwFile); code != 0 && code != 3 {
		t.Errorf("copy with the right passwords exited %d", code)
	}
	if code := run([]string{"MIGRATE_FROM_PASSWORD=" + sentinelWrong, "MIGRATE_TO_PASSWORD=" + mailPassword}); code != 4 {
		t.Errorf("copy with a wrong source password exited %d, want 4 (auth)", code)
	}
	out.addFile(t, "state.db", statePath)
	out.addFile(t, "state.db-wal", statePath+"-wal")
	found, scanned := out.scan(mailPassword, sentinelWrong)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	t.Logf("secret hygiene (CLI): scanned %d bytes of argv, stdout, stderr, JSON report and state DB over 2 runs: %d sentinels found", scanned, len(found))
}

// cancelOn is a slog handler that calls cancel when a record has attribute
// key equal to value.
type cancelOn struct {
	key, value string
	cancel     context.CancelFunc
}

func (h cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOn) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == h.key && a.Value.String() == h.value {
			h.cancel()
			return false
		}
		return true
	})
	return nil
}
func (h cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOn) WithGroup(string) slog.Handler      { return h }

// TestMailStateLossThenInterruptedReconcile pins down the duplication the
// kill and fault tests find: the destination already holds everything, the
// state file is lost, and the next run stops while it reconciles a folder
// (after listing the destination, before recording what it found). The run
// after that must still recognise the messages, not append them again.
func TestMailStateLossThenInterruptedReconcile(t *testing.T) {
	r := newMailRig(t, 300, 19)
	dir := t.TempDir()
	run := func(statePath string, stopAt string) *imapcopy.Stats {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := state.Open(ctx, statePath)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		cp := &imapcopy.Copier{Checkpoint: st.Mail("user1 -> user1"), Concurrency: 1}
		if stopAt != "" {
			cp.Logger = slog.New(cancelOn{key: "phase", value: stopAt, cancel: cancel})
		}
		stats, _ := copyOnce(t, ctx, cp, r.viaProxy(r.dstProxy), r.viaProxy(r.srcProxy))
		return stats
	}
	run(filepath.Join(dir, "first.db"), "")                    // everything copied
	run(filepath.Join(dir, "second.db"), "destination listed") // state lost; stopped mid-reconcile
	stats := run(filepath.Join(dir, "second.db"), "")
	tot := stats.Totals()
	t.Logf("third run: copied %d, already present %d", tot.Copied, tot.AlreadyPresent)
	r.check(t)
}
