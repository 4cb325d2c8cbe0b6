package migrate

import (
	"context"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/imapcopy"
)

// TestMailResultKeywords pins the one rule both `migrate mail` and a plan
// run follow: a keyword renamed by the documented Zimbra tag rule is listed
// but leaves the phase done; a dropped keyword makes it partial.
func TestMailResultKeywords(t *testing.T) {
	renamed := imapcopy.ItemIssue{UID: 7, Reason: "flags sanitised",
		Changes: []imapcopy.KeywordChange{{From: "Project:FLAG211", To: "Project", Reason: "Zimbra tag keyword NAME:FLAGnnn"}}}
	dropped := imapcopy.ItemIssue{UID: 9, Reason: "keywords refused by the destination",
		Changes: []imapcopy.KeywordChange{{From: "Important", Reason: "refused"}}}
	for _, tc := range []struct {
		name    string
		issues  []imapcopy.ItemIssue
		want    Status
		changed int64
	}{
		{"renamed", []imapcopy.ItemIssue{renamed}, StatusDone, 0},
		{"dropped", []imapcopy.ItemIssue{renamed, dropped}, StatusPartial, 1},
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
			if res.Status != tc.want || res.Changed != tc.changed {
				t.Fatalf("status %s, changed %d; want %s, %d", res.Status, res.Changed, tc.want, tc.changed)
			}
			if len(res.Problems) != len(tc.issues) {
				t.Fatalf("%d problems listed, want every keyword change (%d)", len(res.Problems), len(tc.issues))
			}
			for _, p := range res.Problems {
				if !p.Changed || p.Skipped || !strings.Contains(p.Reason, "keywords changed") {
					t.Errorf("problem %+v: want a changed (not skipped) item with its reason", p)
				}
			}
		})
	}
}
