package dav_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/dav"
)

// WriteText escapes server text, adds the deletion counts on request and
// prints at most 20 notes per collection.
func TestStatsWriteText(t *testing.T) {
	c := dav.CollectionStats{Source: "/cal/\x1b[31mred/", Destination: "/dst/red/", Name: "red", Objects: 3, Created: 2, Failed: 1,
		Deleted: 4, Kept: 1,
		Errors: []dav.ItemError{{Item: "/cal/a.ics", UID: "u\r\nforged", Reason: "HTTP 507\x07"}}}
	for i := range 25 {
		c.Notes = append(c.Notes, dav.ItemNote{Item: fmt.Sprintf("/cal/n%d.ics", i), Note: "repaired"})
	}
	s := &dav.Stats{Collections: []dav.CollectionStats{c}}
	var out bytes.Buffer
	if err := s.WriteText(&out, "calendars", true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\r\x07") {
		t.Errorf("raw control characters in %q", got)
	}
	for _, want := range []string{
		"calendars: 1 collections, 3 objects: 2 created, 0 updated, 0 unchanged, 0 skipped, 1 failed, 0 repaired, 4 deleted, 1 kept",
		`FAILED /cal/a.ics (UID u\r\nforged): HTTP 507\x07`,
		"... 5 more notes",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "  note "); n != 20 {
		t.Errorf("%d notes printed, want 20", n)
	}

	out.Reset()
	if err := s.WriteText(&out, "calendars", false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "deleted") {
		t.Errorf("deletions printed without withDeletes:\n%s", out.String())
	}

	v := &dav.Verification{Collections: []dav.CollectionCheck{{Source: "/cal/x/", Matched: 5, Missing: []string{"m1"}, Duplicates: []string{"d1"}}}}
	out.Reset()
	if err := v.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MISSING at destination: /cal/x/ (UID m1)", "DUPLICATE at destination: /cal/x/ (UID d1)", "verify: 5 objects equal, 2 problems"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verification lacks %q:\n%s", want, out.String())
		}
	}
}
