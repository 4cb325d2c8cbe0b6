package migrate

import (
	"context"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/imapcopy"
)

// TestMailResultKeywords pins the one rule both `migrate mail` and a plan
// run follow: a keyword renamed by the documented Zimbra tag rule is listed
// as translated and leaves the phase done; a dropped keyword is listed as
// changed and makes it partial. The counts agree with the rows: every row
// marked changed is counted in Changed, every row marked translated in
// Translated, and the report's totals (its tiles) add them up.
func TestMailResultKeywords(t *testing.T) {
	renamed := imapcopy.ItemIssue{UID: 7, Reason: "flags sanitised",
		Changes: []imapcopy.KeywordChange{{From: "Project:FLAG211", To: "Project", Reason: "Zimbra tag keyword NAME:FLAGnnn"}}}
	dropped := imapcopy.ItemIssue{UID: 9, Reason: "keywords refused by the destination",
		Changes: []imapcopy.KeywordChange{{From: "Important", Reason: "refused"}}}
	for _, tc := range []struct {
		name                string
		issues              []imapcopy.ItemIssue
		want                Status
		changed, translated int64
	}{
		{"renamed", []imapcopy.ItemIssue{renamed}, StatusDone, 0, 1},
		{"dropped", []imapcopy.ItemIssue{renamed, dropped}, StatusPartial, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &imapcopy.Stats{Folders: []imapcopy.FolderStats{{Source: "INBOX", Destination: "INBOX", Copied: 2, Keywords: tc.issues}}}
			lost := false
			for _, k := range tc.issues {
				lost = lost || k.Lost()
			}
			if lost != (tc.want == StatusPartial) {
				t.Fatalf("ItemIssue.Lost = %v, want %v", lost, tc.want == StatusPartial)
			}
			rec := (&Runner{}).newRecorder(nil, "user@example.com", PhaseMail)
			mailResult(st, rec, false)
			res := rec.finish(context.Background(), nil)
			if res.Status != tc.want || res.Changed != tc.changed || res.Translated != tc.translated {
				t.Fatalf("status %s, changed %d, translated %d; want %s, %d, %d", res.Status, res.Changed, res.Translated, tc.want, tc.changed, tc.translated)
			}
			if len(res.Problems) != len(tc.issues) {
				t.Fatalf("%d problems listed, want every keyword change (%d)", len(res.Problems), len(tc.issues))
			}
			var rowsChanged, rowsTranslated int64
			for _, p := range res.Problems {
				if p.Skipped || p.Changed == p.Translated || !strings.Contains(p.Reason, "keywords changed") {
					t.Errorf("problem %+v: want a changed or translated (not skipped) item with its reason", p)
				}
				if p.Changed {
					rowsChanged++
				}
				if p.Translated {
					rowsTranslated++
				}
			}
			rep := &Report{Accounts: []AccountReport{{Source: "user@example.com", Phases: []PhaseResult{res}}}}
			rep.finalize()
			if rep.Totals.Changed != rowsChanged || rep.Totals.Translated != rowsTranslated {
				t.Errorf("tiles: %d changed, %d translated; rows: %d changed, %d translated",
					rep.Totals.Changed, rep.Totals.Translated, rowsChanged, rowsTranslated)
			}
			var html strings.Builder
			if err := rep.WriteHTML(&html); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(html.String(), `">changed</td>`); int64(got) != rep.Totals.Changed {
				t.Errorf("HTML shows %d rows marked changed next to a tile of %d", got, rep.Totals.Changed)
			}
			if got := strings.Count(html.String(), `">translated</td>`); int64(got) != rep.Totals.Translated {
				t.Errorf("HTML shows %d rows marked translated next to a tile of %d", got, rep.Totals.Translated)
			}
		})
	}
}
