package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// sharesServers starts a source (example.com) and a destination
// (example.net) admin API. alice's calendar is shared with a user, a list,
// the domain, all users, the public, a guest, a key holder and a user the
// destination lacks; bob mounts alice's calendar and has two saved
// searches, one below Inbox.
func sharesServers(t *testing.T) (src, dst *carboniotest.Server) {
	t.Helper()
	alice := carboniotest.DefaultFolders()
	alice[0].Folders = []carboniotest.FixtureFolder{{Name: "Projects", View: "message",
		Grants: []carboniotest.FixtureGrant{{Type: "usr", Grantee: "carol@example.com", Perm: "rwidx"}}}}
	alice[5].ID = "300" // Calendar
	alice[5].Grants = []carboniotest.FixtureGrant{
		{Type: "usr", Grantee: "bob@example.com", Perm: "r"},
		{Type: "grp", Grantee: "team@example.com", Perm: "rw"},
		{Type: "dom", Grantee: "example.com", Perm: "r"},
		{Type: "all", Perm: "r"},
		{Type: "pub", Perm: "r"},
		{Type: "guest", Grantee: "partner@other.org", Perm: "r"},
		{Type: "key", Grantee: "auditor", Perm: "r"},
		{Type: "usr", Grantee: "ghost@example.com", Perm: "r"},
	}
	bob := carboniotest.DefaultFolders()
	bob[0].Folders = []carboniotest.FixtureFolder{{Name: "Urgent", Kind: "search", Query: "is:flagged", Types: "message"}}
	bob = append(bob,
		carboniotest.FixtureFolder{Name: "Alice's Calendar", Kind: "link", View: "appointment", Owner: "alice@example.com", RemoteID: "300", Color: 3},
		carboniotest.FixtureFolder{Name: "Unread", Kind: "search", Query: "is:unread", Types: "conversation", SortBy: "dateDesc"})
	src = carboniotest.New(carboniotest.Options{Admin: "admin@src", Password: "pw", Fixture: &carboniotest.Fixture{
		Domains: []string{"example.com"},
		Accounts: []carboniotest.FixtureAccount{
			{Name: "alice@example.com", Folders: alice}, {Name: "bob@example.com", Folders: bob}, {Name: "carol@example.com"},
			{Name: "ghost@example.com"},
		},
		DistributionLists: []carboniotest.FixtureList{{Name: "team@example.com"}},
	}})
	t.Cleanup(src.Close)
	dalice := carboniotest.DefaultFolders()
	dalice[0].Folders = []carboniotest.FixtureFolder{{Name: "Projects", View: "message"}}
	dst = carboniotest.New(carboniotest.Options{Admin: "admin@dst", Password: "pw", Fixture: &carboniotest.Fixture{
		Domains: []string{"example.net"},
		Accounts: []carboniotest.FixtureAccount{
			{Name: "alice@example.net", Folders: dalice}, {Name: "bob@example.net"}, {Name: "carol@example.net"},
		},
		DistributionLists: []carboniotest.FixtureList{{Name: "team@example.net"}},
	}})
	t.Cleanup(dst.Close)
	return src, dst
}

func sharesRunner(t *testing.T, src, dst *carboniotest.Server, dir string) *migrate.Runner {
	t.Helper()
	ca := func(s *carboniotest.Server, name string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, s.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &migrate.Plan{
		Name: "shares",
		Source: migrate.Endpoint{Admin: migrate.AdminEndpoint{URL: src.URL, User: "admin@src",
			Credential: migrate.Credential{Password: secret.New("pw")}, CAFile: ca(src, "src.pem")}},
		Destination: migrate.Endpoint{Admin: migrate.AdminEndpoint{URL: dst.URL, User: "admin@dst",
			Credential: migrate.Credential{Password: secret.New("pw")}, CAFile: ca(dst, "dst.pem")}},
		Domains:  []string{"example.com"},
		Accounts: migrate.Selection{Exclude: []string{"ghost@*"}},
		Map:      migrate.Mapping{Domains: map[string]string{"example.com": "example.net"}},
		Phases:   []migrate.Phase{migrate.PhaseShares},
		State:    filepath.Join(dir, "state.db"),
		Report:   dir,
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return &migrate.Runner{Plan: p}
}

// outcomes sums the items as "kind folder grantee: outcome" lines.
func outcomes(items []migrate.ShareItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, strings.TrimSpace(it.Kind+" "+it.Folder+" "+it.Grantee)+": "+string(it.Outcome))
	}
	sort.Strings(out)
	return out
}

func writes(reqs []string) []string {
	var out []string
	for _, r := range reqs {
		switch r {
		case "FolderActionRequest", "CreateMountpointRequest", "CreateSearchFolderRequest":
			out = append(out, r)
		}
	}
	return out
}

// TestSharesPhase re-creates grants, a mountpoint and saved searches
// across a domain rename, reports the missing grantee and the guest and
// key grants, and changes nothing on a second run.
func TestSharesPhase(t *testing.T) {
	ctx := context.Background()
	src, dst := sharesServers(t)
	dc := &carbonio.Client{URL: dst.URL, Admin: "admin@dst", Password: secret.New("pw"), HTTPClient: dst.Client()}
	// bob already has alice's calendar with other rights: updated.
	bobID, err := dc.GranteeID(ctx, carbonio.GranteeUser, "bob@example.net")
	if err != nil {
		t.Fatal(err)
	}
	cal := folder(t, dc, "alice@example.net", "Calendar")
	if err := dc.Grant(ctx, "alice@example.net", cal.ID, carbonio.Grant{Type: "usr", Grantee: "bob@example.net", ZID: bobID, Perm: "rwidx"}); err != nil {
		t.Fatal(err)
	}

	// Preflight is the dry run: it lists what would be done, writes nothing.
	before := len(dst.Requests())
	pr, err := sharesRunner(t, src, dst, t.TempDir()).Preflight(ctx)
	if err != nil {
		t.Fatalf("preflight: %v", err)
	}
	if w := writes(dst.Requests()[before:]); len(w) != 0 {
		t.Errorf("preflight wrote %v", w)
	}
	wantDry := []string{
		"grant Calendar all: would_create",
		"grant Calendar dom example.net: would_create",
		"grant Calendar grp team@example.net: would_create",
		"grant Calendar guest partner@other.org: invitation_needed",
		"grant Calendar key auditor: invitation_needed",
		"grant Calendar pub: would_create",
		"grant Calendar usr bob@example.net: would_update",
		"grant Calendar usr ghost@example.net: skipped",
		"grant Inbox/Projects usr carol@example.net: would_create",
		"mountpoint Alice's Calendar alice@example.net Calendar: would_create",
		"search Inbox/Urgent: would_create",
		"search Unread: would_create",
	}
	if d := cmp.Diff(outcomes(pr.Shares), wantDry); d != "" {
		t.Errorf("preflight shares (-got +want):\n%s", d)
	}

	rep, err := sharesRunner(t, src, dst, t.TempDir()).Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	want := make([]string, len(wantDry))
	for i, s := range wantDry {
		s = strings.Replace(s, "would_create", "created", 1)
		want[i] = strings.Replace(s, "would_update", "updated", 1)
	}
	if d := cmp.Diff(outcomes(rep.Shares), want); d != "" {
		t.Errorf("first run (-got +want):\n%s", d)
	}
	for _, it := range rep.Shares {
		if it.Outcome == migrate.ShareSkipped && !strings.Contains(it.Reason, "does not exist on the destination") {
			t.Errorf("missing grantee reason = %q", it.Reason)
		}
	}
	// Not migrated: only the guest and key grants, each with its reason.
	var nm []string
	for _, n := range rep.NotMigrated {
		nm = append(nm, n.Kind+" "+n.Name)
		if !strings.Contains(n.Reason, "invite") {
			t.Errorf("not migrated %s: reason %q does not say to invite again", n.Name, n.Reason)
		}
	}
	sort.Strings(nm)
	if d := cmp.Diff(nm, []string{"share Calendar (guest partner@other.org)", "share Calendar (key auditor)"}); d != "" {
		t.Errorf("not migrated (-got +want):\n%s", d)
	}
	var ph *migrate.PhaseResult
	for i := range rep.Phases {
		if rep.Phases[i].Phase == migrate.PhaseShares {
			ph = &rep.Phases[i]
		}
	}
	if ph == nil || ph.Status != migrate.StatusPartial || ph.Copied != 9 || ph.Skipped != 1 || ph.Failed != 0 {
		t.Errorf("shares phase = %+v, want partial with 9 copied, 1 skipped", ph)
	}

	// The destination holds what the source had, with mapped names.
	cal = folder(t, dc, "alice@example.net", "Calendar")
	var grants []string
	for _, g := range cal.Grants {
		if g.Type == carbonio.GranteeAll || g.Type == carbonio.GranteePublic {
			g.Grantee = "-" // the server names them by a well-known id
		}
		grants = append(grants, g.Type+" "+g.Grantee+" "+g.Perm)
	}
	sort.Strings(grants)
	if d := cmp.Diff(grants, []string{"all - r", "dom example.net r", "grp team@example.net rw", "pub - r", "usr bob@example.net r"}); d != "" {
		t.Errorf("destination Calendar grants (-got +want):\n%s", d)
	}
	if g := folder(t, dc, "alice@example.net", "Inbox/Projects").Grants; len(g) != 1 || g[0].Grantee != "carol@example.net" || g[0].Perm != "rwidx" {
		t.Errorf("Projects grants = %+v", g)
	}
	link := folder(t, dc, "bob@example.net", "Alice's Calendar")
	if link.Kind != carbonio.KindLink || link.Owner != "alice@example.net" || link.RemoteID != carbonio.LocalID(cal.ID) || link.View != "appointment" || link.Color != 3 {
		t.Errorf("mountpoint = %+v, want a link to alice@example.net's Calendar (id %s)", link, cal.ID)
	}
	if s := folder(t, dc, "bob@example.net", "Unread"); s.Kind != carbonio.KindSearch || s.Query != "is:unread" || s.Types != "conversation" || s.SortBy != "dateDesc" {
		t.Errorf("saved search = %+v", s)
	}
	if s := folder(t, dc, "bob@example.net", "Inbox/Urgent"); s.Kind != carbonio.KindSearch || s.Query != "is:flagged" {
		t.Errorf("nested saved search = %+v", s)
	}

	// A second run (with a new state, so that the phase runs again)
	// writes nothing.
	before = len(dst.Requests())
	dir := t.TempDir()
	rep, err = sharesRunner(t, src, dst, dir).Run(ctx)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if w := writes(dst.Requests()[before:]); len(w) != 0 {
		t.Errorf("second run wrote %v", w)
	}
	want2 := make([]string, len(wantDry))
	for i, s := range wantDry {
		s = strings.Replace(s, "would_create", "unchanged", 1)
		want2[i] = strings.Replace(s, "would_update", "unchanged", 1)
	}
	if d := cmp.Diff(outcomes(rep.Shares), want2); d != "" {
		t.Errorf("second run (-got +want):\n%s", d)
	}

	// On the same state the done phase is not run again, except with
	// --delta.
	for _, delta := range []bool{false, true} {
		before = len(dst.Requests())
		r := sharesRunner(t, src, dst, dir)
		r.Delta = delta
		if _, err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		reads := slices.Index(dst.Requests()[before:], "GetFolderRequest") >= 0
		if reads != delta {
			t.Errorf("re-run with delta %v: shares phase ran = %v", delta, reads)
		}
		if w := writes(dst.Requests()[before:]); len(w) != 0 {
			t.Errorf("re-run with delta %v wrote %v", delta, w)
		}
	}

	// The text and HTML reports have a Shares section.
	var txt, html strings.Builder
	if err := rep.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "Shares: 9 unchanged, 1 skipped, 2 invitation needed") {
		t.Errorf("text report lacks the shares line:\n%s", txt.String())
	}
	if !strings.Contains(html.String(), "<h2>Shares</h2>") || !strings.Contains(html.String(), "ghost@example.net") {
		t.Error("HTML report lacks the Shares section")
	}
}

func folder(t *testing.T, c *carbonio.Client, acct, path string) carbonio.Folder {
	t.Helper()
	fs, err := c.Folders(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("%s has no folder %q", acct, path)
	return carbonio.Folder{}
}

// TestSharesSkipped: what cannot be re-created is skipped with its reason,
// and nothing is written for it.
func TestSharesSkipped(t *testing.T) {
	alice := carboniotest.DefaultFolders()
	alice = append(alice, carboniotest.FixtureFolder{ID: "400", Name: "Old", View: "message", Grants: []carboniotest.FixtureGrant{
		{Type: "usr", Grantee: "bob@example.com", Perm: "r"}}})
	alice[5].Grants = []carboniotest.FixtureGrant{
		{Type: "cos", Grantee: "default", Perm: "r"},
		{Type: "usr", Perm: "r", ZID: "deleted-user-id"},
	}
	bob := carboniotest.DefaultFolders()
	bob = append(bob,
		carboniotest.FixtureFolder{Name: "Alice Old", Kind: "link", Owner: "alice@example.com", RemoteID: "400"},
		carboniotest.FixtureFolder{Name: "Gone", Kind: "link", Owner: "alice@example.com", RemoteID: "999"},
		carboniotest.FixtureFolder{Name: "Nobody's", Kind: "link"},
		carboniotest.FixtureFolder{Name: "Flagged", Kind: "search", Query: "is:flagged"})
	src := carboniotest.New(carboniotest.Options{Admin: "admin@src", Password: "pw", Fixture: &carboniotest.Fixture{
		Domains:  []string{"example.com"},
		Accounts: []carboniotest.FixtureAccount{{Name: "alice@example.com", Folders: alice}, {Name: "bob@example.com", Folders: bob}},
	}})
	defer src.Close()
	dbob := carboniotest.DefaultFolders()
	dbob = append(dbob, carboniotest.FixtureFolder{Name: "Flagged", View: "message"}) // a mail folder holds the name
	dst := carboniotest.New(carboniotest.Options{Admin: "admin@dst", Password: "pw", Fixture: &carboniotest.Fixture{
		Domains:  []string{"example.net"},
		Accounts: []carboniotest.FixtureAccount{{Name: "alice@example.net"}, {Name: "bob@example.net", Folders: dbob}},
	}})
	defer dst.Close()
	rep, err := sharesRunner(t, src, dst, t.TempDir()).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range rep.Shares {
		got = append(got, it.Kind+" "+it.Folder+": "+string(it.Outcome)+": "+it.Reason)
	}
	sort.Strings(got)
	want := []string{
		"grant Calendar: skipped: grantee type \"cos\" is not re-created (class-of-service ids differ between servers)",
		"grant Calendar: skipped: the source names this grantee only by id (deleted from the directory?)",
		"grant Old: skipped: the folder is not on the destination",
		"mountpoint Alice Old: skipped: the owner's folder is not on the destination",
		"mountpoint Gone: skipped: the shared folder (id 999 of alice@example.com) no longer exists on the source",
		"mountpoint Nobody's: skipped: the source does not name the owner of the shared folder",
		"search Flagged: skipped: another folder with this name exists on the destination",
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("shares (-got +want):\n%s", d)
	}
	if w := writes(dst.Requests()); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}
	if len(rep.NotMigrated) != 0 {
		t.Errorf("not migrated = %+v, want none (skipped items are problems of the phase)", rep.NotMigrated)
	}
	ph := rep.Phases[0]
	if ph.Phase != migrate.PhaseShares || ph.Status != migrate.StatusPartial || ph.Skipped != 7 || len(ph.Problems) != 7 {
		t.Errorf("phase = %+v", ph)
	}
}
