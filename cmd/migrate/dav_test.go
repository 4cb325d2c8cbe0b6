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

	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/testpki"
)

// davCLIServers starts two memdav servers over TLS with a test CA and
// writes the CA to a file.
func davCLIServers(t *testing.T) (src, dst *memdav.Server, srcURL, dstURL, caFile string) {
	t.Helper()
	ca, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ca.ServerTLSConfig("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	start := func() (*memdav.Server, string) {
		s := memdav.New()
		s.AddUser("user1", "pass1")
		ts := httptest.NewUnstartedServer(s)
		ts.TLS = tlsCfg
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return s, ts.URL
	}
	src, srcURL = start()
	dst, dstURL = start()
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return
}

func TestCalendarsCLI(t *testing.T) {
	src, dst, srcURL, dstURL, caFile := davCLIServers(t)
	cal := src.AddCalendar("user1", "work", "Work")
	for n, d := range davtest.EventFixtures(5) {
		if err := src.Put("user1", cal, n, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Put("user1", cal, "bad.ics", []byte(davtest.Malformed)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_FROM_PASSWORD", "pass1")
	t.Setenv("MIGRATE_TO_PASSWORD", "pass1")
	dir := t.TempDir()
	args := []string{"calendars", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--to-user", "user1",
		"--ca-file", caFile, "--state", filepath.Join(dir, "state.db"), "--report", filepath.Join(dir, "r.json")}

	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d (one malformed object)\nstdout:\n%s\nstderr:\n%s", code, exitPartial, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "8 created") || !strings.Contains(out.String(), "bad.ics") || !strings.Contains(out.String(), "has no DTSTART") {
		t.Errorf("summary lacks counts or the failed object:\n%s", out.String())
	}
	if strings.Contains(out.String()+errb.String(), "pass1") {
		t.Errorf("password printed")
	}
	var rep davReport
	b, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if tot := rep.Stats.Totals(); tot.Created != 8 || tot.Skipped != 1 || rep.Verification == nil {
		t.Errorf("report totals %+v, verification %v", tot, rep.Verification)
	}
	if n := len(dst.Snapshot("user1", memdav.CalendarHome("user1")+"work/")); n != 8 {
		t.Errorf("destination holds %d objects", n)
	}

	// Re-run with state: nothing written (still partial: the bad object).
	out.Reset()
	errb.Reset()
	puts := dst.Requests("PUT")
	if code := run(context.Background(), args, &out, &errb); code != exitPartial {
		t.Fatalf("re-run exit %d\n%s%s", code, out.String(), errb.String())
	}
	if dst.Requests("PUT") != puts || !strings.Contains(out.String(), "0 created, 0 updated, 8 unchanged") {
		t.Errorf("re-run wrote: %d PUTs\n%s", dst.Requests("PUT")-puts, out.String())
	}
}

func TestContactsCLIUsageAndAuth(t *testing.T) {
	_, _, srcURL, dstURL, caFile := davCLIServers(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"missing --to", []string{"contacts", "--from", srcURL}, nil, exitUsage},
		{"plain http refused", []string{"contacts", "--from", "http://127.0.0.1:1/", "--to", dstURL}, nil, exitUsage},
		{"credentials in URL", []string{"contacts", "--from", strings.Replace(srcURL, "https://", "https://u:p@", 1), "--to", dstURL}, nil, exitUsage},
		{"missing password", []string{"contacts", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--ca-file", caFile}, map[string]string{"MIGRATE_FROM_PASSWORD": ""}, exitUsage},
		{"wrong password", []string{"contacts", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--to-user", "user1", "--ca-file", caFile},
			map[string]string{"MIGRATE_FROM_PASSWORD": "nope", "MIGRATE_TO_PASSWORD": "pass1"}, exitAuth},
		{"untrusted certificate", []string{"contacts", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--to-user", "user1"},
			map[string]string{"MIGRATE_FROM_PASSWORD": "pass1", "MIGRATE_TO_PASSWORD": "pass1"}, exitUnreachable},
		{"unreachable", []string{"contacts", "--from", "https://127.0.0.1:1/", "--to", dstURL, "--ca-file", caFile}, nil, exitUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errb); code != tt.want {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.want, out.String(), errb.String())
			}
			if strings.Contains(out.String()+errb.String(), "nope") {
				t.Errorf("password printed")
			}
		})
	}
}

func TestCalendarsCLIRESTDestination(t *testing.T) {
	src, dst, srcURL, dstURL, caFile := davCLIServers(t)
	cal := src.AddCalendar("user1", "work", "Work")
	for n, d := range davtest.EventFixtures(3) {
		if err := src.Put("user1", cal, n, d); err != nil {
			t.Fatal(err)
		}
	}
	target := dst.AddCalendar("user1", "Calendar", "Calendar")
	t.Setenv("MIGRATE_FROM_PASSWORD", "pass1")
	t.Setenv("MIGRATE_TO_PASSWORD", "pass1")
	args := []string{"calendars", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--to-user", "user1",
		"--ca-file", caFile, "--to-rest", "--to-account", "user1"}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if n := len(dst.Snapshot("user1", target)); n != 6 {
		t.Errorf("REST destination holds %d objects, want 6\n%s", n, out.String())
	}
	// Usage: the token path needs the account.
	if code := run(context.Background(), []string{"contacts", "--from", srcURL, "--to", dstURL, "--to-carbonio-admin", "https://127.0.0.1:7071", "--to-user", "admin"}, &out, &errb); code != exitUsage {
		t.Errorf("--to-carbonio-admin without --to-account: exit %d, want %d", code, exitUsage)
	}
}

// TestCalendarsCLIDelete: --delete needs --state; a dry run counts; a run
// deletes at the destination what the source deleted, reports it on stdout
// and in the JSON report; the next run deletes and writes nothing.
func TestCalendarsCLIDelete(t *testing.T) {
	src, dst, srcURL, dstURL, caFile := davCLIServers(t)
	cal := src.AddCalendar("user1", "work", "Work")
	for n, d := range davtest.EventFixtures(4) {
		if err := src.Put("user1", cal, n, d); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MIGRATE_FROM_PASSWORD", "pass1")
	t.Setenv("MIGRATE_TO_PASSWORD", "pass1")
	dir := t.TempDir()
	base := []string{"calendars", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--to-user", "user1", "--ca-file", caFile}
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(base, "--delete"), &out, &errb); code != exitUsage {
		t.Errorf("--delete without --state: exit %d, want %d", code, exitUsage)
	}
	args := append(base, "--state", filepath.Join(dir, "state.db"), "--report", filepath.Join(dir, "r.json"))
	if code := run(context.Background(), args, &out, &errb); code != exitOK {
		t.Fatalf("first run exit %d\n%s%s", code, out.String(), errb.String())
	}
	src.Delete("user1", cal+"gen-0001.ics")
	src.Delete("user1", cal+"weekly.ics")
	dstCal := memdav.CalendarHome("user1") + "work/"

	out.Reset()
	if code := run(context.Background(), append(args, "--delete", "--dry-run"), &out, &errb); code != exitOK {
		t.Fatalf("dry run exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "2 deleted") || !strings.Contains(out.String(), "dry run") || len(dst.Snapshot("user1", dstCal)) != 7 {
		t.Errorf("dry run: %d objects at the destination\n%s", len(dst.Snapshot("user1", dstCal)), out.String())
	}

	out.Reset()
	if code := run(context.Background(), append(args, "--delete"), &out, &errb); code != exitOK {
		t.Fatalf("run with --delete exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "5 unchanged") || !strings.Contains(out.String(), "2 deleted, 0 kept") || !strings.Contains(out.String(), "verify: 5 objects equal, 0 problems") {
		t.Errorf("summary:\n%s", out.String())
	}
	if n := len(dst.Snapshot("user1", dstCal)); n != 5 {
		t.Errorf("destination holds %d objects, want 5", n)
	}
	var rep davReport
	b, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Delete || rep.Stats.Totals().Deleted != 2 || !strings.Contains(string(b), `"deleted": 2`) {
		t.Errorf("report: delete %v, totals %+v", rep.Delete, rep.Stats.Totals())
	}

	out.Reset()
	puts, dels := dst.Requests("PUT"), dst.Requests("DELETE")
	if code := run(context.Background(), append(args, "--delete"), &out, &errb); code != exitOK {
		t.Fatalf("third run exit %d\n%s%s", code, out.String(), errb.String())
	}
	if dst.Requests("PUT") != puts || dst.Requests("DELETE") != dels || !strings.Contains(out.String(), "0 deleted") {
		t.Errorf("third run sent %d PUT, %d DELETE\n%s", dst.Requests("PUT")-puts, dst.Requests("DELETE")-dels, out.String())
	}
}
