package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoListenHold runs `migrate demo --listen --hold`: it prints the
// dashboard's URL, keeps serving after the run until Ctrl-C (the context
// ends), then exits 0. `migrate status` reads the same state afterwards.
func TestDemoListenHold(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"demo", "--out", dir, "--accounts", "2", "--progress", "none", "--listen", "127.0.0.1:0", "--hold"}, &out, &errb)
	}()
	holding := regexp.MustCompile(`Dashboard still at (http://127\.0\.0\.1:\d+/)`)
	var url string
	for deadline := time.Now().Add(2 * time.Minute); url == ""; time.Sleep(100 * time.Millisecond) {
		if m := holding.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		select {
		case code := <-codec:
			t.Fatalf("demo exited %d before holding\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dashboard held\nstdout:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "Dashboard: "+url) {
		t.Errorf("the URL was not printed while the run went on:\n%s", out.String())
	}
	resp, err := http.Get(url + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Outcome  string         `json:"outcome"`
		Total    int            `json:"total"`
		Accounts map[string]int `json:"accounts"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Outcome != "done" || st.Total != 2 || st.Accounts["done"] != 2 {
		t.Errorf("held dashboard status: %+v (%v)", st, err)
	}
	resp, err = http.Get(url + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `zxmigrate_items_total{outcome="copied",phase="mail"}`) {
		t.Errorf("metrics lack the mail counter:\n%.2000s", b)
	}
	cancel()
	select {
	case code := <-codec:
		if code != exitOK {
			t.Errorf("demo --hold exit %d after Ctrl-C, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo --hold did not stop within 10 s of Ctrl-C")
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the dashboard still answers after the demo ended")
	}

	// status reads the state file; a non-loopback listener needs a token.
	var sout, serr bytes.Buffer
	if code := run(context.Background(), []string{"status", "--state", filepath.Join(dir, "state.db")}, &sout, &serr); code != exitOK {
		t.Fatalf("status exit %d: %s", code, serr.String())
	}
	if !regexp.MustCompile(`2 accounts\n\s+done\s+2\n`).MatchString(sout.String()) {
		t.Errorf("status output:\n%s", sout.String())
	}
	t.Setenv("MIGRATE_DASHBOARD_TOKEN", "")
	serr.Reset()
	if code := run(context.Background(), []string{"status", "--state", filepath.Join(dir, "state.db"), "--serve", "0.0.0.0:0"}, &sout, &serr); code != exitUsage {
		t.Errorf("status --serve 0.0.0.0:0 without a token: exit %d, want %d (%s)", code, exitUsage, serr.String())
	}
	if !strings.Contains(serr.String(), "needs a token") {
		t.Errorf("stderr: %s", serr.String())
	}
}
