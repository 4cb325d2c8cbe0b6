package carboniotest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestShareRequests drives the share calls of carbonio.Client against the
// fake: grants replace a grantee's rights, names taken in a folder are
// conflicts, missing grantees and unknown fields are refused.
func TestShareRequests(t *testing.T) {
	ctx := context.Background()
	s := carboniotest.New(carboniotest.Options{})
	defer s.Close()
	c := &carbonio.Client{URL: s.URL, Admin: "admin@carbonio.local", Password: secret.New("admin-password"), HTTPClient: s.Client()}

	folder := func(acct, path string) carbonio.Folder {
		t.Helper()
		fs, err := c.Folders(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Path == path {
				return f
			}
		}
		t.Fatalf("%s has no %q", acct, path)
		return carbonio.Folder{}
	}
	// Grantee lookups by name; missing ones are typed faults.
	carolID, err := c.GranteeID(ctx, carbonio.GranteeUser, "carol@example.com")
	if err != nil || carolID == "" {
		t.Fatalf("GranteeID(carol) = %q, %v", carolID, err)
	}
	for _, tc := range []struct {
		typ, name string
		want      error
	}{
		{carbonio.GranteeUser, "nobody@example.com", carbonio.ErrNoSuchAccount},
		{carbonio.GranteeGroup, "nolist@example.com", carbonio.ErrNoSuchDistList},
		{carbonio.GranteeDomain, "example.org", carbonio.ErrNoSuchDomain},
	} {
		if _, err := c.GranteeID(ctx, tc.typ, tc.name); !errors.Is(err, tc.want) {
			t.Errorf("GranteeID(%s %s) = %v, want %v", tc.typ, tc.name, err, tc.want)
		}
	}

	// A second grant to the same grantee replaces its rights.
	inbox := folder("alice@example.com", "Inbox")
	for _, perm := range []string{"rw", "r"} {
		if err := c.Grant(ctx, "alice@example.com", inbox.ID, carbonio.Grant{Type: "usr", ZID: carolID, Perm: perm}); err != nil {
			t.Fatal(err)
		}
	}
	if g := folder("alice@example.com", "Inbox").Grants; len(g) != 1 || g[0].Perm != "r" || g[0].Grantee != "carol@example.com" {
		t.Errorf("Inbox grants = %+v, want carol with r", g)
	}
	if err := c.Grant(ctx, "alice@example.com", inbox.ID, carbonio.Grant{Type: "usr", ZID: "no-such-id", Perm: "r"}); !errors.Is(err, carbonio.ErrNoSuchAccount) {
		t.Errorf("grant to an unknown id = %v", err)
	}
	if err := c.Grant(ctx, "alice@example.com", inbox.ID, carbonio.Grant{Type: "guest", Grantee: "x@other.org", Perm: "r"}); err == nil {
		t.Error("a guest grant was sent without its secret")
	}

	// Saved searches and mountpoints; a taken name is mail.ALREADY_EXISTS.
	id, err := c.CreateSearchFolder(ctx, "bob@example.com", carbonio.SearchFolder{Name: "Flagged", Query: "is:flagged", SortBy: "dateAsc"})
	if err != nil || id == "" {
		t.Fatalf("CreateSearchFolder = %q, %v", id, err)
	}
	if f := folder("bob@example.com", "Flagged"); f.Kind != carbonio.KindSearch || f.ID != id || f.Query != "is:flagged" || f.SortBy != "dateAsc" {
		t.Errorf("search = %+v", f)
	}
	if _, err := c.CreateSearchFolder(ctx, "bob@example.com", carbonio.SearchFolder{Name: "flagged", Query: "x"}); !errors.Is(err, carbonio.ErrAlreadyExists) {
		t.Errorf("second search named flagged = %v, want %s", err, carbonio.CodeAlreadyExists)
	}
	cal := folder("alice@example.com", "Calendar")
	m := carbonio.Mountpoint{Name: "Alice", Owner: "alice@example.com", RemoteID: cal.ID}
	if _, err := c.CreateMountpoint(ctx, "bob@example.com", m); err != nil {
		t.Fatal(err)
	}
	if f := folder("bob@example.com", "Alice"); f.Kind != carbonio.KindLink || f.Owner != "alice@example.com" || f.RemoteID != carbonio.LocalID(cal.ID) || f.View != "appointment" {
		t.Errorf("mountpoint = %+v", f)
	}
	if _, err := c.CreateMountpoint(ctx, "bob@example.com", m); !errors.Is(err, carbonio.ErrAlreadyExists) {
		t.Errorf("second mountpoint named Alice = %v", err)
	}
	m.Name, m.RemoteID = "Nothing", "99999"
	if _, err := c.CreateMountpoint(ctx, "bob@example.com", m); err == nil {
		t.Error("a mountpoint of a missing folder was created")
	}

	// Unknown fields are refused, in each request.
	tok := token(t, s)
	for _, body := range []string{
		`"FolderActionRequest":{"action":{"op":"grant","id":"2","grant":{"perm":"r","gt":"all","color":"1"}}}`,
		`"FolderActionRequest":{"action":{"op":"grant","id":"2","recursive":true,"grant":{"perm":"r","gt":"all"}}}`,
		`"CreateSearchFolderRequest":{"search":{"name":"S","query":"q","l":"1","owner":"x"}}`,
		`"CreateMountpointRequest":{"link":{"name":"M","l":"1","owner":"alice@example.com","rid":2,"remoteName":"x"}}`,
		`"CreateMountpointRequest":{"link":{"name":"M","l":"1","owner":"alice@example.com","rid":2},"extra":1}`,
	} {
		env := fmt.Sprintf(`{"Header":{"context":{"_jsns":"urn:zimbra","authToken":%q,"account":{"by":"name","_content":"bob@example.com"}}},"Body":{%s}}`, tok, body)
		code, ans := post(t, s, env)
		if code != 500 || !strings.Contains(ans, "service.INVALID_REQUEST") || !strings.Contains(ans, "unknown field") {
			t.Errorf("%s: %d %s, want an INVALID_REQUEST fault naming the unknown field", body, code, ans)
		}
	}
}

func TestLocalID(t *testing.T) {
	for in, want := range map[string]string{
		"257": "257", "00000000-0000-0000-0000-000000000002:257": "257", "": "",
	} {
		if got := carbonio.LocalID(in); got != want {
			t.Errorf("LocalID(%q) = %q, want %q", in, got, want)
		}
	}
}
