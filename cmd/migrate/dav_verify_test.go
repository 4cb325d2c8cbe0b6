package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
)

// TestCalendarsCLIVerifyNamesTheChange: an event changed at the
// destination after the copy is reported as DIFFERENT with the property
// that differs (and exit 3), and nothing of its content is printed.
func TestCalendarsCLIVerifyNamesTheChange(t *testing.T) {
	src, dst, srcURL, dstURL, caFile := davCLIServers(t)
	cal := src.AddCalendar("user1", "work", "Work")
	for n, d := range davtest.EventFixtures(2) {
		if err := src.Put("user1", cal, n, d); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MIGRATE_FROM_PASSWORD", "pass1")
	t.Setenv("MIGRATE_TO_PASSWORD", "pass1")
	dir := t.TempDir()
	args := []string{"calendars", "--from", srcURL, "--to", dstURL, "--from-user", "user1", "--to-user", "user1",
		"--ca-file", caFile, "--state", filepath.Join(dir, "state.db")}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	coll := memdav.CalendarHome("user1") + "work/"
	changed := false
	for _, o := range dst.Snapshot("user1", coll) {
		if o.UID != "gen-0001@zxmigrate.test" {
			continue
		}
		data := strings.Replace(string(o.Data), "SUMMARY:", "SUMMARY:Secret ", 1)
		if err := dst.Put("user1", coll, filepath.Base(o.Path), []byte(data)); err != nil {
			t.Fatal(err)
		}
		changed = true
	}
	if !changed {
		t.Fatal("no destination object to change")
	}
	out.Reset()
	errb.Reset()
	code := run(context.Background(), args, &out, &errb)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitPartial, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "DIFFERENT at destination: ") || !strings.Contains(out.String(), "(UID gen-0001@zxmigrate.test): VEVENT/SUMMARY\n") {
		t.Errorf("the report does not name the object and the property:\n%s", out.String())
	}
	if strings.Contains(out.String()+errb.String(), "Secret") {
		t.Errorf("the report shows content:\n%s", out.String())
	}
}
