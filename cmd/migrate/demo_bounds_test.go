package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoBadSize: --accounts and --messages outside their bounds are
// refused with exit 2 and a message naming the range, before anything is
// seeded.
func TestDemoBadSize(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--accounts", "0"}, "--accounts 0: want 1 to 5000"},
		{[]string{"--accounts", "-5"}, "--accounts -5: want 1 to 5000"},
		{[]string{"--accounts", "5001"}, "--accounts 5001: want 1 to 5000"},
		{[]string{"--messages", "0"}, "--messages 0: want 1 to 20000 per account"},
		{[]string{"--messages", "-1"}, "--messages -1: want 1 to 20000 per account"},
		{[]string{"--messages", "100000000"}, "--messages 100000000: want 1 to 20000 per account"},
		{[]string{"--accounts", "2000", "--messages", "1000"}, "want at most 1000000 in all"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"demo", "--out", dir, "--progress", "none"}, tc.args...), &out, &errb)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", errb.String(), tc.want)
			}
			if strings.Contains(out.String(), "Seeding") {
				t.Errorf("seeded despite the bad input:\n%s", out.String())
			}
		})
	}
	var out bytes.Buffer
	run(context.Background(), []string{"demo", "--help"}, &out, &out)
	for _, want := range []string{"1 to 5000", "1 to 20000", "at most 1000000 messages in all", "--with-faults"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo --help does not name %q", want)
		}
	}
}

// TestDemoStopsWhileSeeding: an interrupt (the cancelled context a first
// Ctrl-C or SIGTERM gives while no run is in progress) stops the seeding
// of a large domain promptly, with the interrupted exit code.
func TestDemoStopsWhileSeeding(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--out", t.TempDir(), "--accounts", "5000", "--progress", "none"}, &out, &errb)
	}()
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != exitInterrupted {
			t.Errorf("exit %d, want %d; stderr %s", code, exitInterrupted, errb.String())
		}
		if strings.Contains(out.String(), "Run 1") {
			t.Errorf("the demo ran after the interrupt:\n%s", out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the demo still seeds 10 s after the interrupt")
	}
}

// TestDemoWithFaults: --with-faults ends partial (exit 3) and the report
// shows each seeded fault as what it is.
func TestDemoWithFaults(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--out", dir, "--accounts", "2", "--with-faults", "--progress", "none"}, &out, &errb)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitPartial, out.String(), errb.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "report", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Outcome  string `json:"outcome"`
		Accounts []struct {
			Source string `json:"source"`
			Status string `json:"status"`
			Phases []struct {
				Phase    string `json:"phase"`
				Status   string `json:"status"`
				Problems []struct {
					Skipped, Changed bool
					Reason           string
				} `json:"problems"`
			} `json:"phases"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, a := range rep.Accounts {
		for _, p := range a.Phases {
			for _, pr := range p.Problems {
				switch {
				case p.Phase == "mail" && pr.Changed && strings.Contains(pr.Reason, "Refused -> (dropped)"):
					found["refused keyword"] = true
				case p.Phase == "mail" && pr.Skipped && strings.Contains(pr.Reason, "exceeds the limit"):
					found["oversize message"] = true
				case p.Phase == "contacts" && strings.Contains(pr.Reason, "invalid vCard"):
					found["broken vCard"] = true
				}
			}
		}
		if a.Source == "user02@example.com" && a.Status != "done" {
			t.Errorf("user02, whose connection was reset once, is %s, want done (the copy retries)", a.Status)
		}
	}
	for _, f := range []string{"refused keyword", "oversize message", "broken vCard"} {
		if !found[f] {
			t.Errorf("the report does not show the %s", f)
		}
	}
	if rep.Outcome != "partial" {
		t.Errorf("outcome %s, want partial", rep.Outcome)
	}
	if _, err := os.Stat(filepath.Join(dir, "bodies")); !os.IsNotExist(err) {
		t.Errorf("the demo left its message bodies behind: %v", err)
	}
}

// TestDemoMemoryBounded runs a 60-account demo in a child process and
// bounds its peak RSS. The servers keep message bodies on disk: the peak
// grows with the message count, not the bytes (60 accounts hold about
// 370 MB of mail: kept in memory on both servers and in the seeding
// corpus it would take more than 1 GB).
func TestDemoMemoryBounded(t *testing.T) {
	if os.Getenv("ZXT_DEMO_CHILD") != "" {
		code := run(context.Background(), strings.Fields(os.Getenv("ZXT_DEMO_CHILD")), os.Stdout, os.Stderr)
		os.Exit(code)
	}
	if testing.Short() {
		t.Skip("a 60-account demo: not in -short")
	}
	if raceEnabled {
		t.Skip("the race detector multiplies memory use: the bound is for the plain binary")
	}
	const boundMB = 300
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemoMemoryBounded$")
	cmd.Env = append(os.Environ(), "ZXT_DEMO_CHILD=demo --accounts 60 --progress none --out "+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Accounts: 60 total, 60 done") {
		t.Fatalf("demo did not finish every account:\n%s", out)
	}
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024 // kB on Linux
	t.Logf("peak RSS of a 60-account demo: %d MB", peak)
	if peak > boundMB {
		t.Errorf("peak RSS %d MB, want at most %d MB", peak, boundMB)
	}
}
