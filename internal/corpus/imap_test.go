package corpus

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// memServer starts go-imap's in-memory server on 127.0.0.1 with one user
// (INBOX created) and returns a function that dials a logged-in client.
func memServer(t *testing.T) func() *imapclient.Client {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("user1", "pass1")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return func() *imapclient.Client {
		t.Helper()
		c, err := imapclient.DialInsecure(ln.Addr().String(), dialOptions)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login("user1", "pass1").Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
}

var dialOptions *imapclient.Options

// memServerMangles lists the edge cases whose bytes imapmemserver does not
// return unchanged (see TestMemServerMangles).
var memServerMangles = map[string]bool{
	"edge/broken-folding-1":    true,
	"edge/broken-folding-3":    true,
	"edge/header-never-ends-1": true,
	"edge/header-never-ends-2": true,
}

// TestMemServerMangles documents that imapmemserver changes some edge
// cases, and shows that DiffMail sees it.
func TestMemServerMangles(t *testing.T) {
	dial := memServer(t)
	var want Mailbox
	want.Folders = []Folder{{Name: "INBOX", Subscribed: true}, {Name: "EdgeCases", Subscribed: true}}
	for _, m := range small().Mail.Messages {
		if memServerMangles[m.Kind] {
			want.Messages = append(want.Messages, m)
		}
	}
	if len(want.Messages) != len(memServerMangles) {
		t.Fatalf("found %d of the %d mangled edge cases", len(want.Messages), len(memServerMangles))
	}
	if err := SeedIMAP(context.Background(), dial(), want); err != nil {
		t.Fatal(err)
	}
	got, err := SnapshotIMAP(context.Background(), dial())
	if err != nil {
		t.Fatal(err)
	}
	d := DiffMail(want, got, nil)
	for kind := range memServerMangles {
		if !slices.ContainsFunc(d, func(s string) bool { return strings.Contains(s, kind+")") && strings.Contains(s, "missing") }) {
			t.Errorf("imapmemserver returned %s unchanged; update memServerMangles (diff: %q)", kind, d)
		}
	}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// TestSeedSnapshotMemServer round-trips the small corpus through
// imapmemserver. Its limits, from its source (v2.0.0-beta.8): the
// separator is always '/'; CREATE never makes \Noselect parents and LIST
// does not report implicit ones (so the Lists parent is absent); it keeps no
// special-use attributes; it lower-cases every flag and keyword; it does not
// create INBOX by itself; and its BODY[] re-serialises the header through
// go-message's textproto, so it returns nothing for a header it cannot parse
// and rewrites broken folding (memServerMangles). Hence MissingNoSelectOK, no
// special-use check, and those edge cases left out.
func TestSeedSnapshotMemServer(t *testing.T) {
	dial := memServer(t)
	want := small().Mail
	want.Messages = slices.DeleteFunc(slices.Clone(want.Messages), func(m Message) bool { return memServerMangles[m.Kind] })
	ctx := context.Background()
	if err := SeedIMAP(ctx, dial(), want); err != nil {
		t.Fatalf("SeedIMAP: %v", err)
	}
	got, err := SnapshotIMAP(ctx, dial())
	if err != nil {
		t.Fatalf("SnapshotIMAP: %v", err)
	}
	if len(got.Messages) != len(want.Messages) {
		t.Errorf("snapshot has %d messages, want %d", len(got.Messages), len(want.Messages))
	}
	if d := DiffMail(want, got, &DiffOptions{MissingNoSelectOK: true}); d != nil {
		t.Errorf("DiffMail after round trip:\n%s", strings.Join(d, "\n"))
	}
	// Strict keyword case shows the server's lower-casing: the diff is
	// able to see flag changes through a real server.
	if d := DiffMail(want, got, &DiffOptions{MissingNoSelectOK: true, KeywordCase: true}); d == nil {
		t.Error("DiffMail with KeywordCase found no difference, but imapmemserver lower-cases keywords")
	}
	// A second seed doubles every message: the diff must say so.
	if err := SeedIMAP(ctx, dial(), want); err != nil {
		t.Fatalf("second SeedIMAP: %v", err)
	}
	again, err := SnapshotIMAP(ctx, dial())
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffMail(want, again, &DiffOptions{MissingNoSelectOK: true}); len(d) == 0 || !strings.Contains(d[0], "unexpected message") {
		t.Errorf("DiffMail after seeding twice = %q", d)
	}
}

func TestSeedReportsNUL(t *testing.T) {
	dial := memServer(t)
	a := Generate("user1", Options{Messages: 1, NUL: true, Events: -1, Contacts: -1})
	mb := Mailbox{Folders: a.Mail.Folders}
	for _, m := range a.Mail.Messages {
		if m.Kind == "edge/nul" || (m.Folder == "INBOX" && len(mb.Messages) < 5) {
			mb.Messages = append(mb.Messages, m)
		}
	}
	err := SeedIMAP(context.Background(), dial(), mb)
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("SeedIMAP with a NUL message = %v, want an error naming it", err)
	}
	got, err := SnapshotIMAP(context.Background(), dial())
	if err != nil {
		t.Fatal(err)
	}
	want := mb
	want.Messages = slices.DeleteFunc(slices.Clone(want.Messages), func(m Message) bool { return m.Kind == "edge/nul" })
	if len(want.Messages) != 5 {
		t.Fatalf("test setup: %d other messages", len(want.Messages))
	}
	if d := DiffMail(want, got, &DiffOptions{MissingNoSelectOK: true}); d != nil {
		t.Errorf("the other messages were not all seeded:\n%s", strings.Join(d, "\n"))
	}
}

func TestSeedCancelled(t *testing.T) {
	dial := memServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SeedIMAP(ctx, dial(), small().Mail); err == nil {
		t.Fatal("SeedIMAP with a cancelled context succeeded")
	}
}
