package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/hostile/hostiledav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
)

// hostileDAVArgs starts an in-memory destination and returns the
// calendars arguments copying from src to it over plain http.
func hostileDAVArgs(t *testing.T, src string, extra ...string) []string {
	t.Helper()
	dst := memdav.New()
	dst.AddUser("user1", "pass1")
	ts := httptest.NewServer(dst)
	t.Cleanup(ts.Close)
	t.Setenv("MIGRATE_FROM_PASSWORD", "pass1")
	t.Setenv("MIGRATE_TO_PASSWORD", "pass1")
	return append([]string{"calendars", "--from", src, "--to", ts.URL, "--from-user", "user1", "--to-user", "user1",
		"--allow-plaintext", "--verify=false"}, extra...)
}

// A source listing its objects on another origin: nothing reaches it, the
// run ends partial and the report names each refused URL; --trust-origin
// lets them through.
func TestCalendarsCLIForeignHrefs(t *testing.T) {
	rec := &hostiledav.Recorder{}
	foreign := httptest.NewServer(rec)
	t.Cleanup(foreign.Close)
	href := foreign.URL + "/cal/a.ics"
	src := httptest.NewServer(hostiledav.ForeignHrefs(href))
	t.Cleanup(src.Close)
	report := filepath.Join(t.TempDir(), "r.json")

	var out, errb bytes.Buffer
	code := run(context.Background(), hostileDAVArgs(t, src.URL+"/cal/", "--report", report), &out, &errb)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitPartial, out.String(), errb.String())
	}
	if seen := rec.Seen(); len(seen) != 0 {
		t.Fatalf("the foreign origin received %+v", seen)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep davReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, c := range rep.Stats.Collections {
		for _, e := range c.Errors {
			reasons = append(reasons, e.Reason)
		}
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], href) || !strings.Contains(reasons[0], "not the configured origin") {
		t.Errorf("report reasons %q, want the refused %s", reasons, href)
	}

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), hostileDAVArgs(t, src.URL+"/cal/", "--trust-origin", foreign.URL), &out, &errb); code != exitOK {
		t.Fatalf("with --trust-origin: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if len(rec.Credentialed()) != 1 {
		t.Errorf("with --trust-origin the trusted origin saw %+v, want one authenticated GET", rec.Seen())
	}
}

// A source that never answers: with --idle-timeout 300ms the run ends by
// itself within a minute, reporting the idle timeout.
func TestCalendarsCLIIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	src := httptest.NewServer(hostiledav.Silent(release))
	t.Cleanup(src.Close)
	t.Cleanup(func() { close(release) })
	args := hostileDAVArgs(t, src.URL+"/cal/", "--idle-timeout", "300ms")
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- run(context.Background(), args, &out, &errb) }()
	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute):
		t.Fatal("migrate calendars still running after a minute against a silent server")
	}
	t.Logf("exit %d after %s", code, time.Since(start).Round(time.Millisecond))
	if code == exitOK || !strings.Contains(out.String()+errb.String(), "idle timeout") {
		t.Errorf("exit %d, want a failure naming the idle timeout\n%s%s", code, out.String(), errb.String())
	}
}

// A 300 MB REST export over --max-export-mib 1: refused at the limit, the
// run ends partial and says which flag raises it.
func TestCalendarsCLIExportLimit(t *testing.T) {
	src := httptest.NewServer(hostiledav.HugeExport(300 << 20))
	t.Cleanup(src.Close)
	var out, errb bytes.Buffer
	code := run(context.Background(), hostileDAVArgs(t, src.URL, "--from-rest-account", "alice@example.com", "--max-export-mib", "1"), &out, &errb)
	if code != exitPartial || !strings.Contains(out.String()+errb.String(), "export answer larger than 1 MiB") ||
		!strings.Contains(out.String()+errb.String(), "--max-export-mib") {
		t.Errorf("exit %d, want %d naming the limit and its flag\n%s%s", code, exitPartial, out.String(), errb.String())
	}
}
