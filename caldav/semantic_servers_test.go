package caldav_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// TestSemanticVerifyRadicaleXandikos copies a recurring event (RRULE with
// UNTIL and BYDAY, EXDATEs, overridden instances, CN="Bench User", an
// alarm, an attachment), the same spelt as in the report (BYDAY before
// UNTIL, CN unquoted) and a plain event from Radicale to Xandikos, which
// re-serialises them; Verify finds them equal. Then the destination loses
// an EXDATE of one and gets another SUMMARY on the other: Verify reports
// both as different and names the property, nothing else.
func TestSemanticVerifyRadicaleXandikos(t *testing.T) {
	ctx := context.Background()
	src := davtest.Radicale(t, "radicale")
	dst := davtest.Xandikos(t, "xandikos")
	recurring, err := os.ReadFile(filepath.Join("testdata", "semantic", "bench-recurring.ics"))
	if err != nil {
		t.Fatal(err)
	}
	const recUID, genUID = "bench-recurring-1@zxmigrate.test", "gen-0001@zxmigrate.test"
	// The spelling of the report: RRULE parts in another order, CN
	// without quotes.
	const rec2UID = "bench-recurring-2@zxmigrate.test"
	recurring2 := strings.NewReplacer(recUID, rec2UID,
		"RRULE:FREQ=WEEKLY;UNTIL=20250630T080000Z;BYDAY=MO,WE,FR", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20250630T080000Z",
		`CN="Bench User"`, `CN=Bench User`).Replace(string(recurring))
	davtest.SeedCalendar(t, src, "bench", "Bench", []string{"VEVENT"}, map[string][]byte{
		"recurring.ics":  recurring,
		"recurring2.ics": []byte(recurring2),
		"gen.ics":        davtest.GenEvent(1),
	})
	s, err := caldav.NewDAV(src.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	d, err := caldav.NewDAV(dst.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	cop := &dav.Copier{Rules: caldav.Rules{}}
	st, err := cop.Copy(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 3 || tot.Failed != 0 {
		t.Fatalf("copy totals %+v, want 3 created", tot)
	}
	v, err := cop.Verify(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Collections) != 1 || !v.OK() || v.Collections[0].Matched != 3 {
		t.Fatalf("verify after the copy: %+v, want 3 matched", v.Collections)
	}

	// The destination's spelling differs from the source's: what the
	// byte or legacy comparison would have called different.
	c, err := dav.Endpoint{URL: dst.URL, User: dst.User, Password: dst.Password, HTTPClient: dst.HTTP}.Client()
	if err != nil {
		t.Fatal(err)
	}
	col := v.Collections[0].Destination
	refs, err := c.List(ctx, col)
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]dav.Ref{}
	var legacyFlags []string
	for _, r := range refs {
		data, _, err := c.Get(ctx, r.Href)
		if err != nil {
			t.Fatal(err)
		}
		uid, _, err := caldav.Rules{}.Fingerprint(davtext.CRLF(data))
		if err != nil {
			t.Fatal(err)
		}
		byUID[uid] = r
		orig := map[string]string{recUID: string(recurring), rec2UID: recurring2}[uid]
		if orig == "" {
			continue
		}
		got := string(davtext.CRLF(data))
		if got == orig {
			t.Errorf("Xandikos kept %s byte for byte", uid)
		}
		lsrc, _ := caldav.LegacyHash([]byte(orig))
		ldst, _ := caldav.LegacyHash(davtext.CRLF(data))
		if lsrc != ldst {
			legacyFlags = append(legacyFlags, uid)
		}
	}
	// The legacy fingerprint calls the re-spelled report case different.
	if diff := cmp.Diff([]string{rec2UID}, legacyFlags); diff != "" {
		t.Errorf("objects the legacy fingerprint finds different (-want +got):\n%s", diff)
	}
	if len(byUID) != 3 {
		t.Fatalf("destination holds %v, want the 2 UIDs", byUID)
	}

	// One real change each: an EXDATE dropped, a SUMMARY changed.
	change := func(uid string, f func(string) string) {
		t.Helper()
		r := byUID[uid]
		data, etag, err := c.Get(ctx, r.Href)
		if err != nil {
			t.Fatal(err)
		}
		if etag == "" {
			etag = r.ETag
		}
		out := f(string(davtext.CRLF(data)))
		if out == string(davtext.CRLF(data)) {
			t.Fatalf("change %s: nothing changed", uid)
		}
		if _, err := c.Put(ctx, r.Href, dav.CalDAV.ContentType, []byte(out), dav.Cond{IfMatch: etag}); err != nil {
			t.Fatalf("change %s: %v", uid, err)
		}
	}
	change(recUID, func(s string) string {
		// Xandikos writes the two EXDATEs as one or two properties:
		// drop the one of 2025-01-15 either way.
		var lines []string
		for _, l := range strings.Split(s, "\r\n") {
			if strings.HasPrefix(strings.ToUpper(l), "EXDATE") && strings.Contains(l, "20250115T") {
				if i := strings.LastIndex(l, ":"); strings.Contains(l[i:], ",") {
					var keep []string
					for _, x := range strings.Split(l[i+1:], ",") {
						if !strings.HasPrefix(x, "20250115T") {
							keep = append(keep, x)
						}
					}
					lines = append(lines, l[:i+1]+strings.Join(keep, ","))
				}
				continue
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\r\n")
	})
	change(genUID, func(s string) string { return strings.Replace(s, "SUMMARY:", "SUMMARY:Changed ", 1) })

	v, err = cop.Verify(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	chk := v.Collections[0]
	if v.OK() || chk.Matched != 1 {
		t.Errorf("verify after the change: OK %v, %d matched, want 1", v.OK(), chk.Matched)
	}
	if diff := cmp.Diff([]string{recUID, genUID}, chk.Different); diff != "" {
		t.Errorf("Different (-want +got):\n%s", diff)
	}
	want := []dav.ItemChange{{UID: recUID, Paths: []string{"VEVENT/EXDATE"}}, {UID: genUID, Paths: []string{"VEVENT/SUMMARY"}}}
	if diff := cmp.Diff(want, chk.Changes); diff != "" {
		t.Errorf("Changes (-want +got):\n%s", diff)
	}
}
