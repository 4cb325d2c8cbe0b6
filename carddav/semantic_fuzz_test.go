package carddav

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
	"github.com/zxmigrate/zxmigrate/internal/davtext/respell"
)

// FuzzSemanticVCard checks the semantic comparison of vCards on any
// input: it never panics; a card equals itself; a respelling (group
// names, name case, quoting, parameter and property order, folding, line ends)
// equals the original; and every real change (a property dropped, text
// altered) is flagged, in particular every one the legacy fingerprint
// flags.
func FuzzSemanticVCard(f *testing.F) {
	files, _ := filepath.Glob("testdata/semantic/*.vcf")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint64(len(name)))
	}
	f.Add([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u\r\nFN:A\r\nPHOTO:data:image/png;base64,iVBORw0KGgo=\r\ngrp.EMAIL;TYPE=\"work,pref\":a@b\r\nGRP.X-ABLabel:x\r\nTEL;CELL:1\r\nEND:VCARD\r\n"), uint64(5))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		a, ok := canonical(data)
		if d := davtext.Diff(a, a); len(d) != 0 {
			t.Fatalf("a card differs from itself: %v", d)
		}
		Rules{}.Fingerprint(data) //nolint:errcheck // must not panic
		Rules{}.Split(data)       //nolint:errcheck // must not panic
		if d := (Rules{}).Diff(data, data); len(d) != 0 {
			t.Fatalf("Diff(data, data) = %v", d)
		}
		if !ok {
			return
		}
		re, ok := respell.Respell(data, respell.Options{Seed: seed, Groups: true})
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
		top, _ := davtext.ParseContent(data)
		if len(top) == 0 || top[0].Name != "VCARD" {
			return // only the first VCARD is compared
		}
		legacy, legacyOK := legacyHash(data)
		for _, m := range respell.Mutations(data, 24, false) {
			c, _ := canonical(m.Data)
			d := davtext.Diff(a, c)
			if a.String() == c.String() || len(d) == 0 {
				lh, lok := legacyHash(m.Data)
				t.Fatalf("%s is not flagged (legacy fingerprint flags it: %v):\n%q\nchanged:\n%q", m.What, legacyOK && lok && lh != legacy, data, m.Data)
			}
		}
	})
}
