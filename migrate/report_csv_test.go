package migrate

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"
)

func TestReportCSV(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := &Report{Accounts: []AccountReport{
		{Source: "a@example.com", Destination: "a@carbonio.example", Size: 1234, Status: StatusDone, Phases: []PhaseResult{
			{Phase: PhaseMail, Status: StatusDone, Started: t0, Finished: t0.Add(90 * time.Second), Copied: 10, Existing: 2, Bytes: 999},
			{Phase: PhaseCalendars, Status: StatusPartial, Started: t0, Finished: t0.Add(500 * time.Millisecond), Copied: 3, Skipped: 1,
				Problems: []Problem{{Item: "cal/x.ics", Skipped: true, Reason: "too big"}}},
			{Phase: PhaseVerify, Status: StatusDone, Started: t0, Finished: t0.Add(time.Second)},
		}},
		{Source: "=cmd|' /C calc'!A0@example.com", Status: StatusFailed, Error: "-missing, \"quoted\"\nline"},
	}}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || len(recs[0]) != len(CSVColumns) {
		t.Fatalf("records: %q", recs)
	}
	want := []string{"a@example.com", "a@carbonio.example", "done", "1234", "91.5", "10", "3", "2", "1", "0", "0", "999", "done", "1", ""}
	for i, w := range want {
		if recs[1][i] != w {
			t.Errorf("%s = %q, want %q", CSVColumns[i], recs[1][i], w)
		}
	}
	if recs[2][0] != "'=cmd|' /C calc'!A0@example.com" || recs[2][14] != "'-missing, \"quoted\"\nline" {
		t.Errorf("formula-like cells not defused: %q", recs[2])
	}
}
