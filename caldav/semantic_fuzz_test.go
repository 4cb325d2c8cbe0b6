package caldav

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
	"github.com/zxmigrate/zxmigrate/internal/davtext/respell"
)

// FuzzSemanticICS checks the semantic comparison of calendar objects on
// any input: it never panics; an object equals itself; a respelling
// (name case, quoting, parameter, property and component order, folding,
// line ends, RRULE part order) equals the original; and every real change
// (a property or component dropped, text altered) is flagged, in
// particular every one the legacy fingerprint flags.
func FuzzSemanticICS(f *testing.F) {
	for _, pat := range []string{"testdata/*.ics", "testdata/semantic/*.ics"} {
		files, _ := filepath.Glob(pat)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint64(len(name)))
		}
	}
	f.Add([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;BYDAY=TU;BYDAY=WE\r\nATTENDEE;CN=\"a,b\";X=\"^'^n^^\":mailto:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		a, ok := canonical(data)
		if d := davtext.Diff(a, a); len(d) != 0 {
			t.Fatalf("an object differs from itself: %v", d)
		}
		Rules{}.Fingerprint(data) //nolint:errcheck // must not panic
		if d := (Rules{}).Diff(data, data); len(d) != 0 {
			t.Fatalf("Diff(data, data) = %v", d)
		}
		if !ok {
			return
		}
		re, ok := respell.Respell(data, respell.Options{Seed: seed, RRULE: true})
		if !ok {
			t.Fatal("Respell: does not parse what canonical parsed")
		}
		b, ok := canonical(re)
		if !ok {
			t.Fatalf("the respelling does not parse:\n%q", re)
		}
		if a.String() != b.String() {
			t.Fatalf("a respelling differs (%v):\n%q\nrespelled:\n%q", davtext.Diff(a, b), data, re)
		}
		legacy, legacyOK := legacyHash(data)
		for _, m := range respell.Mutations(data, 24, true) {
			c, _ := canonical(m.Data)
			d := davtext.Diff(a, c)
			if a.String() == c.String() || len(d) == 0 {
				lh, lok := legacyHash(m.Data)
				t.Fatalf("%s is not flagged (legacy fingerprint flags it: %v):\n%q\nchanged:\n%q", m.What, legacyOK && lok && lh != legacy, data, m.Data)
			}
		}
	})
}
