package imapcopy

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// onSource runs fn on a client logged in to d with the folder selected.
func onSource(t *testing.T, d *testserver.Dovecot, folder string, fn func(c *imapclient.Client)) {
	t.Helper()
	c, err := d.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	fn(c)
}

// expungeINBOX expunges these UIDs of user1's INBOX on the in-memory server
// at addr.
func expungeINBOX(t *testing.T, addr string, uids ...imap.UID) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("user1", "pass1").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	set := imap.UIDSetNum(uids...)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		t.Fatal(err)
	}
}

// folderIDs returns the sorted Message-IDs of one folder of a snapshot.
func folderIDs(m corpus.Mailbox, folder string) []string {
	var out []string
	for _, msg := range m.Messages {
		if msg.Folder == folder {
			out = append(out, headerValue(msg.Raw, "Message-Id"))
		}
	}
	slices.Sort(out)
	return out
}

// TestDeletePropagates (Dovecot → Dovecot): messages expunged at the source
// and messages moved to another folder there are deleted from the
// destination by a run with Delete, and only those: mail the destination
// had on its own stays, also one flagged \Deleted by its user (no plain
// EXPUNGE). Without Delete nothing is deleted; a dry run counts and deletes
// nothing; a run after deletes nothing more.
func TestDeletePropagates(t *testing.T) {
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src"})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst"})
	mb := inboxCorpus(60, false)
	if len(mb.Messages) < 30 {
		t.Fatalf("corpus has %d INBOX messages, want 30", len(mb.Messages))
	}
	mb.Messages = mb.Messages[:30]
	mb.Folders = append(mb.Folders, corpus.Folder{Name: "Archive", Subscribed: true})
	if err := src.Seed(context.Background(), testserver.DefaultUser, mb); err != nil {
		t.Fatal(err)
	}
	// The destination's own mail: one message, one more flagged \Deleted.
	own := inboxCorpus(2, false)
	for i := range own.Messages {
		own.Messages[i].Raw = []byte("Message-ID: <own-" + string(rune('a'+i)) + "@dst>\r\nSubject: own\r\n\r\nmine\r\n")
	}
	own.Messages[1].Flags = []string{`\Deleted`}
	if err := dst.Seed(context.Background(), testserver.DefaultUser, own); err != nil {
		t.Fatal(err)
	}
	srcA, dstA := dovecotAccount(t, src, false, Plaintext), dovecotAccount(t, dst, false, Plaintext)
	ctx := context.Background()
	cp := NewMemoryCheckpoint()
	run := func(c *Copier) *Stats {
		t.Helper()
		c.Checkpoint, c.InFlightSettle, c.Logger = cp, -1, testLogger(t)
		st, err := c.Copy(ctx, dstA, srcA)
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		return st
	}
	if st := run(&Copier{Delete: true}); !st.OK() || st.Totals().Copied != 30 || st.Totals().Deleted != 0 {
		t.Fatalf("first run: ok %v, %+v", st.OK(), st.Totals())
	}

	// At the source: expunge 5 messages of INBOX, move 2 to Archive.
	onSource(t, src, "INBOX", func(c *imapclient.Client) {
		var gone, moved imap.UIDSet
		gone.AddNum(3, 4, 10, 20, 30)
		moved.AddNum(7, 8)
		if err := c.Store(gone, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.UIDExpunge(gone).Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Move(moved, "Archive").Wait(); err != nil {
			t.Fatal(err)
		}
	})
	want := snapshot(t, srcA)
	wantInbox := append(folderIDs(want, "INBOX"), "<own-a@dst>", "<own-b@dst>")
	slices.Sort(wantInbox)

	// Without Delete: the moved messages are copied to Archive, nothing is
	// deleted (the destination INBOX keeps all 30 copies).
	st := run(&Copier{})
	if tt := st.Totals(); tt.Copied != 2 || tt.Deleted != 0 {
		t.Fatalf("run without Delete: %+v", tt)
	}
	if got := folderIDs(snapshot(t, dstA), "INBOX"); len(got) != 32 {
		t.Fatalf("without Delete the destination INBOX holds %d messages, want 32", len(got))
	}

	// A dry run with Delete counts 7 and deletes nothing.
	st = run(&Copier{Delete: true, DryRun: true})
	if tt := st.Totals(); tt.Deleted != 7 {
		t.Errorf("dry run: %d deletions counted, want 7", tt.Deleted)
	}
	if got := folderIDs(snapshot(t, dstA), "INBOX"); len(got) != 32 {
		t.Fatalf("after the dry run the destination INBOX holds %d messages, want 32", len(got))
	}

	// With Delete: exactly the 7 go; the destination's own two stay.
	st = run(&Copier{Delete: true})
	if tt := st.Totals(); tt.Deleted != 7 || tt.Copied != 0 || len(tt.DeleteFailed) != 0 || !st.OK() {
		t.Fatalf("run with Delete: ok %v, %+v", st.OK(), tt)
	}
	got := snapshot(t, dstA)
	if g := folderIDs(got, "INBOX"); !slices.Equal(g, wantInbox) {
		t.Errorf("destination INBOX after Delete:\n got %q\nwant %q", g, wantInbox)
	}
	if g, w := folderIDs(got, "Archive"), folderIDs(want, "Archive"); !slices.Equal(g, w) || len(g) != 2 {
		t.Errorf("destination Archive %q, want %q", g, w)
	}

	// Nothing more to delete or copy.
	st = run(&Copier{Delete: true})
	if tt := st.Totals(); tt.Deleted != 0 || tt.Copied != 0 || !st.OK() {
		t.Errorf("third run: ok %v, %+v", st.OK(), tt)
	}
}

// TestDeleteNeedsTheMap: without the state of earlier runs nothing is known
// to be a copy, so a run with Delete and a fresh checkpoint deletes nothing,
// however the destination differs from the source.
func TestDeleteNeedsTheMap(t *testing.T) {
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src"})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst"})
	mb := inboxCorpus(10, false)
	if err := src.Seed(context.Background(), testserver.DefaultUser, mb); err != nil {
		t.Fatal(err)
	}
	withOwn := inboxCorpus(10, false)
	for i := 0; i < 5; i++ {
		withOwn.Messages = append(withOwn.Messages, corpus.Message{Folder: "INBOX",
			Raw: []byte("Message-ID: <own-" + string(rune('a'+i)) + "@dst>\r\nSubject: own\r\n\r\nmine\r\n")})
	}
	if err := dst.Seed(context.Background(), testserver.DefaultUser, withOwn); err != nil {
		t.Fatal(err)
	}
	c := &Copier{Delete: true, InFlightSettle: -1}
	st, err := c.Copy(context.Background(), dovecotAccount(t, dst, false, Plaintext), dovecotAccount(t, src, false, Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	if tt := st.Totals(); tt.Deleted != 0 || !st.OK() {
		t.Errorf("ok %v, %+v; want nothing deleted", st.OK(), tt)
	}
	if n := len(snapshot(t, dovecotAccount(t, dst, false, Plaintext)).Messages); n != 15 {
		t.Errorf("destination holds %d messages, want 15: the 10 source messages, found present, and its own 5", n)
	}
}

// TestDeleteCutOff: the connection is closed right after the destination
// did the UID STORE \Deleted, or the UID EXPUNGE, and before the client
// hears the answer. The folder pass tries again; the destination ends with
// exactly the source's messages (none of the expunged ones, every other),
// and a further run deletes and copies nothing.
func TestDeleteCutOff(t *testing.T) {
	for _, cmd := range []string{"UID STORE", "UID EXPUNGE"} {
		t.Run(strings.ReplaceAll(cmd, " ", "_"), func(t *testing.T) {
			src := startMem(t, memimap.Options{})
			src.AddUser("user1", "pass1")
			mb := inboxCorpus(40, false)
			if err := src.Seed("user1", mb); err != nil {
				t.Fatal(err)
			}
			d := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst"})
			var cuts atomic.Int32
			rules := &faultproxy.IMAPRules{CutAnswer: func(name, args string) bool {
				return name == cmd && (cmd != "UID STORE" || strings.Contains(args, `\Deleted`)) && cuts.Add(1) == 1
			}}
			proxy, err := faultproxy.Listen(d.Addr, faultproxy.Options{IMAP: rules})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { proxy.Close() })
			dst := &Account{Addr: proxy.Addr(), Security: Plaintext, User: testserver.DefaultUser, Password: secret.New(testserver.DefaultPassword)}
			srcA := memAccount(src, "user1", "", "pass1")
			ctx := context.Background()
			cp := NewMemoryCheckpoint()
			run := func() *Stats {
				t.Helper()
				st, err := (&Copier{Checkpoint: cp, Delete: true, InFlightSettle: -1, Logger: testLogger(t)}).Copy(ctx, dst, srcA)
				if err != nil {
					t.Fatalf("Copy: %v", err)
				}
				return st
			}
			if st := run(); !st.OK() {
				t.Fatalf("first run: %+v", st.Totals())
			}
			expungeINBOX(t, src.Addr(), 2, 5, 6, 7, 30)
			st := run()
			if cuts.Load() == 0 || proxy.Stats().Cuts != 1 {
				t.Fatalf("no %s answer was cut (%d calls, %v)", cmd, cuts.Load(), proxy.Stats())
			}
			if tt := st.Totals(); !st.OK() || tt.Deleted > 5 || tt.Copied != 0 {
				t.Errorf("run with the cut: ok %v, %d deleted, %d copied; want ok, at most 5, 0", st.OK(), tt.Deleted, tt.Copied)
			}
			if g, w := messageIDs(snapshot(t, dst)), messageIDs(snapshot(t, srcA)); !slices.Equal(g, w) {
				t.Errorf("destination holds %d messages, the source %d (or other ones)", len(g), len(w))
			}
			if tt := run().Totals(); tt.Deleted != 0 || tt.Copied != 0 {
				t.Errorf("last run deleted %d, copied %d; want 0, 0", tt.Deleted, tt.Copied)
			}
		})
	}
}

// TestDeleteUnknownCopy: a copy whose destination UID was never known (the
// destination gave no APPENDUID) cannot be told apart from the
// destination's own mail: when its source message goes, the copy is kept and
// the message reported once (the run is partial); the next run is clean.
func TestDeleteUnknownCopy(t *testing.T) {
	src := startMem(t, memimap.Options{})
	src.AddUser("user1", "pass1")
	dst := startMem(t, memimap.Options{})
	dst.AddUser("user1", "pass1")
	mb := inboxCorpus(10, false)
	if err := src.Seed("user1", mb); err != nil {
		t.Fatal(err)
	}
	srcA, dstA := memAccount(src, "user1", "", "pass1"), memAccount(dst, "user1", "", "pass1")
	ctx := context.Background()
	cp := NewMemoryCheckpoint()
	run := func() *Stats {
		t.Helper()
		st, err := (&Copier{Checkpoint: cp, Delete: true, InFlightSettle: -1}).Copy(ctx, dstA, srcA)
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		return st
	}
	if st := run(); !st.OK() {
		t.Fatalf("first run: %+v", st.Totals())
	}
	// As if the destination had not said where UID 3's copy went.
	if err := cp.Done(ctx, "INBOX", []Mapping{{Src: 3, Dst: 0}}); err != nil {
		t.Fatal(err)
	}
	expungeINBOX(t, src.Addr(), 3, 4)
	st := run()
	tt := st.Totals()
	if st.OK() || tt.Deleted != 1 || len(tt.DeleteFailed) != 1 || tt.DeleteFailed[0].UID != 3 {
		t.Fatalf("run after the expunge: ok %v, deleted %d, not deleted %+v; want partial, 1 deleted, UID 3 reported", st.OK(), tt.Deleted, tt.DeleteFailed)
	}
	if n := len(snapshot(t, dstA).Messages); n != len(mb.Messages)-1 {
		t.Errorf("destination holds %d messages, want %d (UID 4's copy gone, UID 3's kept)", n, len(mb.Messages)-1)
	}
	if st := run(); !st.OK() || st.Totals().Deleted != 0 {
		t.Errorf("next run: ok %v, %+v; want clean", st.OK(), st.Totals())
	}
}

// TestDeleteHeldBackOnShortListing: when the source's listing holds fewer
// messages than its EXISTS (a message expunged meanwhile, or a server that
// left some out), nothing is deleted and nothing forgotten; the folder is
// reported.
func TestDeleteHeldBackOnShortListing(t *testing.T) {
	ctx := context.Background()
	cp := NewMemoryCheckpoint()
	if err := cp.Done(ctx, "INBOX", []Mapping{{Src: 1, Dst: 11}, {Src: 2, Dst: 12}, {Src: 3, Dst: 13}}); err != nil {
		t.Fatal(err)
	}
	s := &session{c: &Copier{Delete: true}, cp: cp}
	fs := &FolderStats{}
	p := folderPlan{Src: srcFolder{Name: "INBOX"}, Display: "INBOX", Dst: "INBOX"}
	dstByUID := map[imap.UID]*msgInfo{11: {UID: 11}, 12: {UID: 12}, 13: {UID: 13}}
	done, _, _ := cp.Mappings(ctx, "INBOX")
	// Message 2 is missing from a listing that should hold 3:
	// with a nil destination connection, any deletion attempt would panic.
	f := &folderRun{s: s, c: s.c, p: p, fs: fs, srcMsgs: []msgInfo{{UID: 1}, {UID: 3}}, srcSel: &imap.SelectData{NumMessages: 3},
		done: done, dstByUID: dstByUID, mapValid: true, uidPlus: true}
	if err := f.propagateDeletions(ctx); err != nil {
		t.Fatal(err)
	}
	if fs.Deleted != 0 || len(fs.DeleteFailed) != 1 || !strings.Contains(fs.DeleteFailed[0].Reason, "held back") {
		t.Errorf("deleted %d, reported %+v; want 0 and one held-back report", fs.Deleted, fs.DeleteFailed)
	}
	if after, _, _ := cp.Mappings(ctx, "INBOX"); len(after) != 3 {
		t.Errorf("the map holds %d entries, want all 3 kept", len(after))
	}
}
