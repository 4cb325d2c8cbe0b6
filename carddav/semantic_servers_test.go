package carddav_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// TestSemanticVerifyRadicaleXandikos copies a vCard with groups
// (item1.EMAIL with its item1.X-ABLabel), TYPE lists and a PHOTO, and a
// plain card, from Radicale to Xandikos; Verify finds them equal. Then the
// destination loses the PHOTO of one and a label of the other moves to
// another address: Verify reports both and names the properties.
func TestSemanticVerifyRadicaleXandikos(t *testing.T) {
	ctx := context.Background()
	src := davtest.Radicale(t, "radicale")
	dst := davtest.Xandikos(t, "xandikos")
	card, err := os.ReadFile(filepath.Join("testdata", "semantic", "bench-group.vcf"))
	if err != nil {
		t.Fatal(err)
	}
	const cardUID, card2UID = "bench-card-1@zxmigrate.test", "bench-card-2@zxmigrate.test"
	// The same card re-spelt: groups renamed, TYPE repeated and quoted.
	card2 := strings.NewReplacer(cardUID, card2UID, "item1.", "ITEM5.", "item2.", "work.",
		"EMAIL;TYPE=INTERNET,HOME:", `EMAIL;TYPE=home;TYPE="internet":`).Replace(string(card))
	davtest.SeedAddressBook(t, src, "bench", "Bench", map[string][]byte{"card.vcf": card, "card2.vcf": []byte(card2)})
	s, err := carddav.NewDAV(src.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	d, err := carddav.NewDAV(dst.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	cop := &dav.Copier{Rules: carddav.Rules{}}
	st, err := cop.Copy(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 2 || tot.Failed != 0 {
		t.Fatalf("copy totals %+v, want 2 created", tot)
	}
	v, err := cop.Verify(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Collections) != 1 || !v.OK() || v.Collections[0].Matched != 2 {
		t.Fatalf("verify after the copy: %+v, want 2 matched", v.Collections)
	}

	c, err := dav.Endpoint{URL: dst.URL, User: dst.User, Password: dst.Password, HTTPClient: dst.HTTP}.Client()
	if err != nil {
		t.Fatal(err)
	}
	refs, err := c.List(ctx, v.Collections[0].Destination)
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]dav.Ref{}
	for _, r := range refs {
		data, _, err := c.Get(ctx, r.Href)
		if err != nil {
			t.Fatal(err)
		}
		uid, _, err := carddav.Rules{}.Fingerprint(davtext.CRLF(data))
		if err != nil {
			t.Fatal(err)
		}
		byUID[uid] = r
	}
	if len(byUID) != 2 {
		t.Fatalf("destination holds %v, want the 2 UIDs", byUID)
	}

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
		in := string(davtext.CRLF(data))
		out := f(in)
		if out == in {
			t.Fatalf("change %s: nothing changed", uid)
		}
		if _, err := c.Put(ctx, r.Href, dav.CardDAV.ContentType, []byte(out), dav.Cond{IfMatch: etag}); err != nil {
			t.Fatalf("change %s: %v", uid, err)
		}
	}
	// Drop the PHOTO (with its folded lines) of the first card.
	change(cardUID, func(s string) string {
		var out []string
		inPhoto := false
		for _, l := range strings.SplitAfter(s, "\r\n") {
			if strings.HasPrefix(strings.ToUpper(l), "PHOTO") {
				inPhoto = true
				continue
			}
			if inPhoto && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
				continue
			}
			inPhoto = false
			out = append(out, l)
		}
		return strings.Join(out, "")
	})
	// Move the Work label of the second card to its other address.
	change(card2UID, func(s string) string {
		var work, home string // group names as the server writes them
		lines := strings.Split(s, "\r\n")
		for _, l := range lines {
			g, rest, ok := strings.Cut(l, ".")
			if ok && strings.HasPrefix(strings.ToUpper(rest), "EMAIL") {
				if strings.HasSuffix(l, ":bench@home.example") {
					home = g
				} else {
					work = g
				}
			}
		}
		for i, l := range lines {
			if g, rest, ok := strings.Cut(l, "."); ok && g == work && strings.HasPrefix(strings.ToUpper(rest), "X-ABLABEL") {
				lines[i] = home + "." + rest
			}
		}
		return strings.Join(lines, "\r\n")
	})
	v, err = cop.Verify(ctx, d, s)
	if err != nil {
		t.Fatal(err)
	}
	chk := v.Collections[0]
	if v.OK() || chk.Matched != 0 {
		t.Errorf("verify after the change: OK %v, %d matched, want 0", v.OK(), chk.Matched)
	}
	want := []dav.ItemChange{{UID: cardUID, Paths: []string{"PHOTO"}}, {UID: card2UID, Paths: []string{"EMAIL", "X-ABLABEL"}}}
	if diff := cmp.Diff(want, chk.Changes); diff != "" {
		t.Errorf("Changes (-want +got):\n%s", diff)
	}
}
