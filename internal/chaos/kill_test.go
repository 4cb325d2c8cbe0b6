package chaos

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/state"
)

// buildKillcopy builds testdata/killcopy, a process that runs one
// imapcopy.Copy with the SQLite state store, as the CLI does.
func buildKillcopy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "killcopy")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/killcopy")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build killcopy: %v\n%s", err, out)
	}
	return bin
}

// proc is one started copy process with its captured output.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	cmdline        []byte // /proc/PID/cmdline, read while it ran
	environ        []string
}

func startCopy(t *testing.T, bin string, r *mailRig, statePath string) *proc {
	t.Helper()
	p := &proc{}
	p.cmd = exec.Command(bin)
	p.environ = []string{
		"ZXM_SRC=" + r.srcProxy.Addr(), "ZXM_DST=" + r.dstProxy.Addr(), "ZXM_USER=user1",
		"ZXM_SRC_PASSWORD=" + mailPassword, "ZXM_DST_PASSWORD=" + mailPassword, "ZXM_STATE=" + statePath,
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
	}
	p.cmd.Env = p.environ
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmdline, _ = os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/cmdline")
	return p
}

// TestMailResumeAfterSIGKILL copies a mailbox through the fault proxies
// with a separate process that is SIGKILLed at seeded random moments and
// started again, sometimes after its state file was deleted. Runs without
// kills then finish the job; the destination must equal the source, and no
// password may appear in any process's argv, output or state file.
func TestMailResumeAfterSIGKILL(t *testing.T) {
	bin := buildKillcopy(t)
	r := newMailRig(t, size(300, 10_000), 11)
	kills := size(6, 20)
	rng := rand.New(rand.NewPCG(11, 0))
	statePath := filepath.Join(t.TempDir(), "state.db")
	out := newSink()
	removals, resumes := 0, 0
	// Slow the source so that kills land mid-copy.
	r.srcProxy.SetBandwidth(int64(size(6<<20, 40<<20)))
	for k := range kills {
		// ZXM_CHAOS_NO_FAULTS=1 and ZXM_CHAOS_KEEP_STATE=1 narrow a failure
		// down to kills alone.
		r.faults(os.Getenv("ZXM_CHAOS_NO_FAULTS") != "1", uint64(k+1)*7919)
		if k%3 == 2 && os.Getenv("ZXM_CHAOS_KEEP_STATE") != "1" {
			for _, p := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
				_ = os.Remove(p)
			}
			removals++
		}
		p := startCopy(t, bin, r, statePath)
		delay := time.Duration(150+rng.IntN(1500)) * time.Millisecond
		exited := make(chan error, 1)
		go func() { exited <- p.cmd.Wait() }()
		select {
		case err := <-exited:
			t.Logf("run %d finished before its kill (%v)", k+1, err)
		case <-time.After(delay):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
		if k > 0 {
			resumes++
		}
		out.add("argv", p.cmdline)
		out.add("stdout", p.stdout.Bytes())
		out.add("stderr", p.stderr.Bytes())
		if os.Getenv("ZXM_CHAOS_TRACE") == "1" {
			t.Logf("after run %d (state removed: %v): destination holds %d messages", k+1, k%3 == 2, count(readMailbox(t, r.direct(r.dst), nil)))
		}
	}
	// Heal the network and run to the end.
	r.faults(false, 0)
	r.srcProxy.SetBandwidth(0)
	var final error
	for i := range 5 {
		p := startCopy(t, bin, r, statePath)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case final = <-done:
		case <-time.After(4 * time.Minute):
			_ = p.cmd.Process.Signal(syscall.SIGQUIT)
			<-done
			t.Fatalf("copy process hangs (no exit after 4 minutes); its goroutines:\n%s", tail(p.stderr.String(), 8000))
		}
		resumes++
		out.add("argv", p.cmdline)
		out.add("stdout", p.stdout.Bytes())
		out.add("stderr", p.stderr.Bytes())
		if final == nil {
			break
		}
		var ee *exec.ExitError
		if !errors.As(final, &ee) {
			t.Fatal(final)
		}
		t.Logf("clean run %d exited %v: %s", i+1, final, tail(p.stderr.String(), 500))
	}
	if final != nil {
		t.Fatalf("no clean exit after the kills: %v", final)
	}
	r.check(t)
	out.addFile(t, "state.db", statePath)
	out.addFile(t, "state.db-wal", statePath+"-wal")
	found, scanned := out.scan(mailPassword)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	t.Logf("kill/resume: %d messages, %d SIGKILLs, %d resumes, %d state-file removals, %d network faults during the killed runs (source %v; destination %v); destination == source; secrets found in %d bytes of argv, output and state: %d",
		r.msgs, kills, resumes, removals, r.faultCount(), r.srcProxy.Stats(), r.dstProxy.Stats(), scanned, len(found))
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
	r := newMailRig(t, 300, 11)
	statePath := filepath.Join(t.TempDir(), "state.db")
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
		stats, _ := copyOnce(t, ctx, cp, r.viaProxy(r.dstProxy), r.viaProxy(r.srcProxy))
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
