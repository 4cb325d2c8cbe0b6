package carddav

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestSplit(t *testing.T) {
	v3 := crlf("BEGIN:VCARD\nVERSION:3.0\nUID:a\nFN:Ann\nEMAIL:a@example.com\nEND:VCARD\n")
	v4 := crlf("BEGIN:VCARD\nVERSION:4.0\nUID:b\nFN:Bö\nEND:VCARD\n")
	noUID := crlf("BEGIN:VCARD\nVERSION:3.0\nFN:Nobody\nEND:VCARD\n")
	tests := []struct {
		name      string
		data      []byte
		wantUIDs  []string
		verbatim  bool
		wantNotes string
		wantErr   string
	}{
		{name: "v3", data: v3, wantUIDs: []string{"a"}, verbatim: true},
		{name: "v4", data: v4, wantUIDs: []string{"b"}, verbatim: true},
		{name: "two cards", data: append(append([]byte{}, v3...), v4...), wantUIDs: []string{"a", "b"}},
		{name: "no UID", data: noUID, wantUIDs: []string{"zxmigrate-"}, wantNotes: "added"},
		{name: "group", data: crlf("BEGIN:VCARD\nVERSION:4.0\nUID:g\nKIND:group\nFN:G\nMEMBER:urn:uuid:x\nMEMBER:mailto:a@example.com\nEND:VCARD\n"),
			wantUIDs: []string{"g"}, verbatim: true, wantNotes: "1 members that are not e-mail addresses"},
		{name: "apple group", data: crlf("BEGIN:VCARD\nVERSION:3.0\nUID:ag\nFN:AG\nX-ADDRESSBOOKSERVER-KIND:group\nX-ADDRESSBOOKSERVER-MEMBER:mailto:a@example.com\nEND:VCARD\n"),
			wantUIDs: []string{"ag"}, verbatim: true},
		{name: "group without members", data: crlf("BEGIN:VCARD\nVERSION:3.0\nUID:zg\nFN:ZG\nX-ADDRESSBOOKSERVER-KIND:group\nEND:VCARD\n"),
			wantUIDs: []string{"zg"}, verbatim: true, wantNotes: "without members"},
		{name: "empty card", data: crlf("BEGIN:VCARD\nVERSION:3.0\nUID:e\nEND:VCARD\n"), wantErr: "has no fields"},
		{name: "no version", data: crlf("BEGIN:VCARD\nUID:e\nFN:x\nEND:VCARD\n"), wantErr: "has no VERSION"},
		{name: "unterminated", data: crlf("BEGIN:VCARD\nVERSION:3.0\nFN:x\n"), wantErr: "unterminated"},
		{name: "duplicate UID", data: append(append([]byte{}, v3...), v3...), wantErr: "appears twice"},
		{name: "not a vcard", data: crlf("BEGIN:VCALENDAR\nEND:VCALENDAR\n"), wantErr: "not VCARD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := Rules{}.Split(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var uids, notes []string
			for _, it := range items {
				u := it.UID
				if strings.HasPrefix(u, "zxmigrate-") {
					u = "zxmigrate-"
					if !bytes.Contains(it.Data, []byte("UID:"+it.UID+"\r\n")) {
						t.Errorf("added UID not in data:\n%s", it.Data)
					}
				}
				uids = append(uids, u)
				notes = append(notes, it.Notes...)
				// Split's hash is what Fingerprint finds in the data written.
				if uid, h, err := (Rules{}).Fingerprint(it.Data); err != nil || uid != it.UID || h != it.Hash {
					t.Errorf("Fingerprint(item %q) = %q, %q, %v; Split said hash %q", it.UID, uid, h, err, it.Hash)
				}
			}
			if diff := cmp.Diff(tt.wantUIDs, uids); diff != "" {
				t.Errorf("UIDs (-want +got):\n%s", diff)
			}
			if tt.verbatim && !bytes.Equal(items[0].Data, tt.data) {
				t.Errorf("card rewritten:\n%s", items[0].Data)
			}
			if all := strings.Join(notes, "\n"); tt.wantNotes != "" && !strings.Contains(all, tt.wantNotes) {
				t.Errorf("notes %q lack %q", all, tt.wantNotes)
			}
		})
	}
	// The added UID is the same on every run.
	a, _ := Rules{}.Split(noUID)
	b, _ := Rules{}.Split(noUID)
	if a[0].UID != b[0].UID {
		t.Errorf("generated UID not stable")
	}
}

func TestFingerprint(t *testing.T) {
	a := crlf("BEGIN:VCARD\nVERSION:3.0\nUID:a\nFN:Ann\nEMAIL;TYPE=WORK:a@example.com\nREV:2020\nEND:VCARD\n")
	b := []byte("BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nEMAIL;type=work:a@example.com\nUID:a\nREV:2025\nEND:VCARD\n")
	_, ha, _ := Rules{}.Fingerprint(a)
	_, hb, _ := Rules{}.Fingerprint(b)
	if ha != hb {
		t.Errorf("equivalent cards fingerprint differently")
	}
	c := bytes.Replace(a, []byte("FN:Ann"), []byte("FN:Anne"), 1)
	if _, hc, _ := (Rules{}).Fingerprint(c); hc == ha {
		t.Errorf("changed FN kept the fingerprint")
	}
}

func TestZimbraRESTSource(t *testing.T) {
	ctx := context.Background()
	z := memdav.New()
	z.AdminUser, z.AdminPassword = "admin", "pw"
	z.AddUser("alice", "x")
	book := z.AddAddressBook("alice", "Contacts", "Contacts")
	for i, c := range []string{"BEGIN:VCARD\nVERSION:3.0\nUID:a\nFN:Ann\nEND:VCARD\n", "BEGIN:VCARD\nVERSION:3.0\nUID:b\nFN:Bob\nEND:VCARD\n"} {
		if err := z.Put("alice", book, string(rune('a'+i))+".vcf", crlf(c)); err != nil {
			t.Fatal(err)
		}
	}
	zts := httptest.NewTLSServer(z)
	defer zts.Close()
	src, err := NewZimbraREST(dav.Endpoint{URL: zts.URL, User: "admin", Password: secret.New("pw"), Account: "alice", HTTPClient: zts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	d := memdav.New()
	d.AddUser("alice", "pw2")
	dts := httptest.NewTLSServer(d)
	defer dts.Close()
	dst, _ := NewDAV(dav.Endpoint{URL: dts.URL + "/alice/contacts/", User: "alice", Password: secret.New("pw2"), HTTPClient: dts.Client()})
	st, err := (&dav.Copier{Rules: Rules{}}).Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 2 || tot.Failed+tot.Skipped != 0 {
		t.Fatalf("totals %+v", tot)
	}
	if n := len(d.Snapshot("alice", memdav.AddressBookHome("alice")+"Contacts/")); n != 2 {
		t.Errorf("destination holds %d cards", n)
	}
	// Bad password at the source: auth error, not a per-item failure.
	bad, _ := NewZimbraREST(dav.Endpoint{URL: zts.URL, User: "admin", Password: secret.New("wrong"), Account: "alice", HTTPClient: zts.Client()})
	st, err = (&dav.Copier{Rules: Rules{}}).Copy(ctx, dst, bad)
	if !errors.Is(err, retry.ErrAuth) {
		t.Fatalf("copy with a wrong password: error %v, want retry.ErrAuth", err)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(crlf("BEGIN:VCARD\nVERSION:3.0\nUID:a\nFN:Ann\nEND:VCARD\n"))
	f.Add(crlf("BEGIN:VCARD\nVERSION:4.0\nFN:x\nMEMBER:urn:uuid:1\nKIND:group\nEND:VCARD\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := Rules{}.Split(data)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.UID == "" {
				t.Fatalf("item without UID")
			}
			uid, h, err := (Rules{}).Fingerprint(it.Data)
			if err != nil || h != it.Hash {
				t.Fatalf("Fingerprint of item %q: hash %q, %v; Split said %q", it.UID, h, err, it.Hash)
			}
			if uid != it.UID {
				t.Fatalf("Fingerprint reads UID %q from the item Split named %q", uid, it.UID)
			}
		}
	})
}

// TestNoETagOnPut: a server that sends no ETag with PUT answers still gets
// conditional updates (the ETag is asked for with PROPFIND).
func TestNoETagOnPut(t *testing.T) {
	ctx := context.Background()
	start := func() (*memdav.Server, *httptest.Server) {
		s := memdav.New()
		s.AddUser("u", "p")
		ts := httptest.NewTLSServer(s)
		t.Cleanup(ts.Close)
		return s, ts
	}
	ssrv, sts := start()
	dsrv, dts := start()
	dsrv.NoETagOnPut = true
	book := ssrv.AddAddressBook("u", "b", "B")
	card := "BEGIN:VCARD\nVERSION:3.0\nUID:n1\nFN:One\nEND:VCARD\n"
	if err := ssrv.Put("u", book, "n1.vcf", crlf(card)); err != nil {
		t.Fatal(err)
	}
	ep := func(ts *httptest.Server) dav.Endpoint {
		return dav.Endpoint{URL: ts.URL + "/", User: "u", Password: secret.New("p"), HTTPClient: ts.Client()}
	}
	cp := dav.NewMemoryCheckpoint()
	src, _ := NewDAV(ep(sts))
	dst, _ := NewDAV(ep(dts))
	if _, err := (&dav.Copier{Rules: Rules{}, Checkpoint: cp}).Copy(ctx, dst, src); err != nil {
		t.Fatal(err)
	}
	if err := ssrv.Put("u", book, "n1.vcf", crlf(strings.Replace(card, "FN:One", "FN:One changed", 1))); err != nil {
		t.Fatal(err)
	}
	src, _ = NewDAV(ep(sts))
	dst, _ = NewDAV(ep(dts))
	st, err := (&dav.Copier{Rules: Rules{}, Checkpoint: cp}).Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Updated != 1 || tot.Failed != 0 {
		t.Fatalf("totals %+v, errors %+v", tot, st.Collections[0].Errors)
	}
	got := dsrv.Snapshot("u", memdav.AddressBookHome("u")+"b/")
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "One changed") {
		t.Errorf("destination %+v", got)
	}
}

// TestCarbonioUIDAdoptedVerified: on a destination where a UID is unique in
// the whole mailbox (Carbonio), a card whose UID already sits in another
// address book is adopted there (412 no-uid-conflict names it). The
// verification of its own address book counts it once, as adopted from
// that href, not missing; a second run with state sends no PUT for it.
func TestCarbonioUIDAdoptedVerified(t *testing.T) {
	ctx := context.Background()
	start := func() (*memdav.Server, *httptest.Server) {
		s := memdav.New()
		s.AddUser("u", "p")
		ts := httptest.NewTLSServer(s)
		t.Cleanup(ts.Close)
		return s, ts
	}
	ssrv, sts := start()
	dsrv, dts := start()
	dsrv.CarbonioUIDs = true
	book := ssrv.AddAddressBook("u", "Work", "Work")
	cards := map[string]string{
		"a": "BEGIN:VCARD\nVERSION:3.0\nUID:a\nFN:Alice\nEND:VCARD\n",
		"b": "BEGIN:VCARD\nVERSION:3.0\nUID:b\nFN:Bob\nEND:VCARD\n",
	}
	for uid, c := range cards {
		if err := ssrv.Put("u", book, uid+".vcf", crlf(c)); err != nil {
			t.Fatal(err)
		}
	}
	// The destination's Contacts already holds b, under its own name.
	contacts := dsrv.AddAddressBook("u", "Contacts", "Contacts")
	if err := dsrv.Put("u", contacts, "carbonio-17.vcf", crlf(cards["b"])); err != nil {
		t.Fatal(err)
	}
	ep := func(ts *httptest.Server) dav.Endpoint {
		return dav.Endpoint{URL: ts.URL + "/", User: "u", Password: secret.New("p"), HTTPClient: ts.Client()}
	}
	src, _ := NewDAV(ep(sts))
	dst, _ := NewDAV(ep(dts))
	cp := dav.NewMemoryCheckpoint()
	c := &dav.Copier{Rules: Rules{}, Checkpoint: cp}
	st, err := c.Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != 1 || tot.Unchanged != 1 || tot.Failed != 0 {
		t.Fatalf("totals %+v, errors %+v", tot, st.Collections[0].Errors)
	}
	for name, c := range map[string]*dav.Copier{"same copier": c, "another copier with the state": {Rules: Rules{}, Checkpoint: cp}} {
		v, err := c.Verify(ctx, dst, src)
		if err != nil {
			t.Fatal(err)
		}
		var work dav.CollectionCheck
		for _, chk := range v.Collections {
			if strings.HasSuffix(chk.Source, "/Work/") {
				work = chk
			}
		}
		want := []dav.AdoptedItem{{UID: "b", Href: contacts + "carbonio-17.vcf"}}
		if diff := cmp.Diff(want, work.Adopted); diff != "" || !work.OK() || work.Matched != 2 || work.Items != 2 {
			t.Errorf("%s: Work verified as %+v; adopted (-want +got):\n%s", name, work, diff)
		}
	}
	puts := dsrv.Requests("PUT")
	src, _ = NewDAV(ep(sts))
	dst, _ = NewDAV(ep(dts))
	st, err = (&dav.Copier{Rules: Rules{}, Checkpoint: cp}).Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Unchanged != 2 || dsrv.Requests("PUT") != puts {
		t.Errorf("second run: totals %+v, %d PUTs; want 2 unchanged, none", tot, dsrv.Requests("PUT")-puts)
	}
}
