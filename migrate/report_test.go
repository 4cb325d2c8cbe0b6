package migrate

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func sampleReport() *Report {
	t0 := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	r := &Report{
		Plan: "sample <plan>", RunID: 7, Started: t0, Finished: t0.Add(95 * time.Second),
		Phases: []PhaseResult{
			{Phase: PhaseSmartScan, Status: StatusDone},
			{Phase: PhaseProvisioning, Status: StatusDone},
			{Phase: PhaseMTAStart, Status: StatusNotRun, Reason: "not in the plan"},
		},
		Accounts: []AccountReport{
			{Source: "alice@example.com", Destination: "alice@example.org", Size: 5e6, Phases: []PhaseResult{
				{Phase: PhaseMail, Status: StatusDone, Copied: 120, Bytes: 4e6,
					Details: []Detail{{Name: "INBOX", Destination: "INBOX", SourceCount: -1, DestCount: -1, Copied: 100}}},
				{Phase: PhaseCalendars, Status: StatusDone, Copied: 12},
				{Phase: PhaseContacts, Status: StatusDone, Copied: 30},
				{Phase: PhaseVerify, Status: StatusDone, ToVerify: 3800, Verified: 3800,
					Details: []Detail{{Name: "INBOX", SourceCount: 3800, DestCount: 3800, ToVerify: 3800, Verified: 3800}}},
			}},
			{Source: "bob@example.com", Destination: "bob@example.org", Phases: []PhaseResult{
				{Phase: PhaseMail, Status: StatusPartial, Copied: 10, Skipped: 1, Bytes: 1e5,
					Problems:    []Problem{{Item: "INBOX UID 9", Skipped: true, Reason: "larger than max_size (11000000 > 10240000 bytes)"}},
					NotMigrated: []NotMigrated{{Account: "bob@example.com", Kind: "mountpoint", Name: "Team <Shared>", Reason: "a view of another account's folder"}}},
				{Phase: PhaseCalendars, Status: StatusFailed, Reason: "caldav: PROPFIND /dav/bob/: 503 Service Unavailable"},
				{Phase: PhaseContacts, Status: StatusDone, Existing: 4},
				{Phase: PhaseVerify, Status: StatusPartial, Failed: 1, ToVerify: 11, Verified: 10,
					Details:  []Detail{{Name: "INBOX", SourceCount: 11, DestCount: 10, ToVerify: 11, Verified: 10}},
					Problems: []Problem{{Item: "INBOX UID 9", Reason: "missing on the destination"}}},
			}},
		},
		NotMigrated: []NotMigrated{{Account: "bob@example.com", Kind: "mountpoint", Name: "Team <Shared>", Reason: "a view of another account's folder"},
			{Account: "alice@example.com", Kind: "files", Name: "Briefcase", Reason: "Files items are not migrated by this procedure"}},
		Throughput: []Sample{{0, 0, 0}, {1, 50, 1e6}, {2, 120, 3e6}, {3, 160, 4.1e6}},
	}
	r.finalize()
	return r
}

func TestReportFinalize(t *testing.T) {
	r := sampleReport()
	want := Totals{Accounts: 2, Done: 1, Failed: 1, Messages: 130, Events: 12, Contacts: 30, Existing: 4, Skipped: 1, FailedN: 1, Bytes: 4.1e6, ToVerify: 3811, Verified: 3810}
	if diff := cmp.Diff(r.Totals, want); diff != "" {
		t.Errorf("totals (-got +want):\n%s", diff)
	}
	if r.Outcome != StatusFailed || r.OK() {
		t.Errorf("outcome = %s", r.Outcome)
	}
	if r.Version != ReportVersion {
		t.Errorf("version = %d", r.Version)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"version": 1`) {
		t.Errorf("JSON lacks the version:\n%s", b.String()[:200])
	}
	raw := append([]byte(nil), b.Bytes()...)
	got, err := ReadReport(&b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, r); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}
	if _, err := ReadReport(strings.NewReader(`{"version":2}`)); err == nil {
		t.Error("ReadReport accepted version 2")
	}
	golden(t, "report.golden.json", raw)
}

func TestReportHTMLSelfContained(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	// No network: nothing loaded from anywhere; the one script is inline.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//`).FindString(html); m != "" {
		t.Errorf("HTML loads something from the network: %q", m)
	}
	if n := strings.Count(html, "<script"); n != 1 || !strings.Contains(html, "<script>\n") {
		t.Errorf("want one inline <script>, found %d", n)
	}
	for _, bad := range []string{"<script src", "<link", "@import", "url(", "fetch(", "XMLHttpRequest"} {
		if strings.Contains(strings.ToLower(html), bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	for _, want := range []string{
		"<svg", "<polyline", // the chart
		"alice@example.com", "bob@example.org", // account table
		"INBOX UID 9", "larger than max_size", // skipped item with reason
		"503 Service Unavailable", // failed phase reason
		"Not migrated by this procedure", "Team &lt;Shared&gt;", "Briefcase",
		"sample &lt;plan&gt;",                                               // escaped
		`<h2 id="problems">Problems</h2>`, `href="#acct-bob%40example.com"`, // problems first
		"10 of 11 verified", "3,800 of 3,800 verified", "5.0 MB", // accounts table
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	golden(t, "report.golden.html", b.Bytes())
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"Run 7: FAILED", "2 total, 1 done, 0 partial, 1 failed", "130 messages",
		"bob@example.com: failed", "calendars failed", "1 files, 1 mountpoint"} {
		if !strings.Contains(s, want) {
			t.Errorf("text summary lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "\n"); n > 24 {
		t.Errorf("text summary has %d lines, want one screen", n)
	}
}

func TestReportWriteFiles(t *testing.T) {
	dir := t.TempDir() + "/out"
	j, h, err := sampleReport().WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := CSVPath(dir)
	if filepath.Dir(c) != filepath.Dir(j) || filepath.Base(c) != "report.csv" {
		t.Errorf("CSV at %s, JSON at %s", c, j)
	}
	rows, err := os.ReadFile(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rows), strings.Join(CSVColumns, ",")+"\n") || !strings.Contains(string(rows), "bob@example.com,bob@example.org,failed,") {
		t.Errorf("report.csv:\n%s", rows)
	}
	for _, p := range []string{j, h, c} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 600", p, fi.Mode().Perm())
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := "testdata/" + name
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(got), string(want)); diff != "" {
		t.Errorf("%s differs (-got +want); run with -update if intended:\n%s", name, diff)
	}
}

// TestReportHTMLInChromium opens the page in headless Chromium with the
// network pointed at a dead proxy and checks that the tables and the chart
// are in the rendered DOM. It runs when chromium is installed.
func TestReportHTMLInChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not installed")
	}
	dir := t.TempDir()
	_, htmlPath, err := sampleReport().WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--proxy-server=127.0.0.1:9", "--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+htmlPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{"<svg", "<polyline", "<table", "alice@example.com", "Not migrated by this procedure"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
}

func TestThin(t *testing.T) {
	var s []Sample
	for i := 0; i < 5000; i++ {
		s = append(s, Sample{Seconds: float64(i), Items: int64(i)})
	}
	got := thin(s, 1000)
	if len(got) != 1000 || got[0].Seconds != 0 || got[999].Seconds != 4999 {
		t.Errorf("thin: %d samples, first %v, last %v", len(got), got[0], got[len(got)-1])
	}
	if got := thin(s[:10], 1000); len(got) != 10 {
		t.Errorf("thin of a short series = %d samples", len(got))
	}
}
