package imapcopy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// inboxCorpus is n generated INBOX messages, plus one holding a NUL byte
// when nul is set.
func inboxCorpus(n int, nul bool) corpus.Mailbox {
	acc := corpus.Generate("user1", corpus.Options{Seed: 11, Messages: 4 * n, NUL: nul, Events: -1, Contacts: -1})
	m := corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}}}
	for _, msg := range acc.Mail.Messages {
		switch {
		case msg.Kind == "edge/nul":
			msg.Folder = "INBOX"
			m.Messages = append(m.Messages, msg)
		case msg.Folder == "INBOX" && len(m.Messages) < n:
			m.Messages = append(m.Messages, msg)
		}
	}
	return m
}

// messageIDs returns the Message-ID of every message, sorted, duplicates
// kept.
func messageIDs(m corpus.Mailbox) []string {
	var out []string
	for _, msg := range m.Messages {
		out = append(out, headerValue(msg.Raw, "Message-Id"))
	}
	slices.Sort(out)
	return out
}

// TestMultiAppendIntoDovecot copies from an in-memory source into a Dovecot
// behind the Zimbra rules of the fault proxy, through our append
// connection: messages travel several per MULTIAPPEND; a MULTIAPPEND that
// holds a refused keyword is refused whole and, since a refused
// MULTIAPPEND stores nothing, its messages go again alone on the same
// connection in the same pass, without a look-up (the refused keyword
// dropped and reported); a message with a NUL byte goes as a BINARY
// literal. Everything arrives once, and a re-run copies nothing.
func TestMultiAppendIntoDovecot(t *testing.T) {
	src := startMem(t, memimap.Options{})
	src.AddUser("user1", "pass1")
	mb := inboxCorpus(120, true)
	refusedAt := []int{17, 70}
	for _, i := range refusedAt {
		mb.Messages[i].Flags = append(mb.Messages[i].Flags, "Work:Other") // Carbonio refuses it; no rename rule applies
	}
	if err := src.Seed("user1", mb); err != nil {
		t.Fatal(err)
	}
	d := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst"})
	proxy, err := faultproxy.Listen(d.Addr, faultproxy.Options{IMAP: faultproxy.ZimbraRules()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	dst := &Account{Addr: proxy.Addr(), Security: Plaintext, User: testserver.DefaultUser, Password: secret.New(testserver.DefaultPassword)}
	srcAcct := memAccount(src, "user1", "", "pass1")

	ctx := context.Background()
	var (
		evMu   sync.Mutex
		passes = map[string]int{}
	)
	c := &Copier{Checkpoint: NewMemoryCheckpoint(), InFlightSettle: -1, Logger: testLogger(t),
		OnEvent: func(e Event) {
			if fs, ok := e.(FolderStarted); ok {
				evMu.Lock()
				passes[fs.Folder]++
				evMu.Unlock()
			}
		}}
	st, err := c.Copy(ctx, dst, srcAcct)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	tt := st.Totals()
	if tt.Copied != len(mb.Messages) || len(tt.Failed) != 0 {
		t.Errorf("copied %d, failed %v; want %d, none", tt.Copied, tt.Failed, len(mb.Messages))
	}
	var fromCopy int
	for _, f := range st.Folders {
		if f.Verify != nil {
			fromCopy += f.Verify.SourceFromCopy
		}
	}
	if fromCopy == 0 || fromCopy > tt.Copied {
		t.Errorf("%d source fingerprints taken from the copy, want 1..%d", fromCopy, tt.Copied)
	}
	var dropped int
	for _, k := range tt.Keywords {
		for _, ch := range k.Changes {
			if ch.From == "Work:Other" && ch.To == "" {
				dropped++
			}
		}
	}
	if dropped != len(refusedAt) {
		t.Errorf("%d refused keywords reported dropped, want %d: %+v", dropped, len(refusedAt), tt.Keywords)
	}
	ps := proxy.Stats()
	t.Logf("proxy: %d APPEND commands carried %d messages; %d refused", ps.Appends, ps.AppendedMessages, ps.Rejected)
	if ps.AppendedMessages < 2*ps.Appends {
		t.Errorf("%d APPEND commands for %d messages: MULTIAPPEND was not used", ps.Appends, ps.AppendedMessages)
	}
	if ps.Rejected < 1 {
		t.Error("no APPEND was refused: the refused keyword never reached the proxy")
	}
	// A refused MULTIAPPEND stored nothing: its messages went alone in the
	// same pass, no pass started again to look them up.
	for f, n := range passes {
		if n != 1 {
			t.Errorf("folder %s: %d passes, want 1", f, n)
		}
	}

	// Every message once: compare Message-IDs with multiplicity.
	got := snapshot(t, dst)
	if g, w := messageIDs(got), messageIDs(mb); !slices.Equal(g, w) {
		t.Fatalf("destination holds %d messages, want %d (or other ones)", len(g), len(w))
	}
	for _, msg := range got.Messages {
		if slices.Contains(msg.Flags, "Work:Other") {
			t.Errorf("message %s carries the keyword the destination refused on APPEND (stored back later?)", headerValue(msg.Raw, "Message-Id"))
		}
	}
	// The NUL byte is stored (Dovecot's FETCH turns NUL into 0x80, so look
	// at its maildir files).
	var nulRaw []byte
	for _, msg := range mb.Messages {
		if msg.Kind == "edge/nul" {
			nulRaw = msg.Raw
		}
	}
	if nulRaw == nil {
		t.Fatal("the corpus has no NUL message")
	}
	if !maildirHolds(t, d.UserDir(testserver.DefaultUser), nulRaw) {
		t.Error("the NUL message is not stored byte for byte")
	}

	st, err = c.Copy(ctx, dst, srcAcct)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if tt := st.Totals(); tt.Copied != 0 || len(tt.Failed) != 0 {
		t.Errorf("re-run copied %d, failed %v; want 0, none", tt.Copied, tt.Failed)
	}
}

// maildirHolds reports whether a file under dir holds raw, with CRLF or
// with LF line ends (Dovecot may store either).
func maildirHolds(t *testing.T, dir string, raw []byte) bool {
	t.Helper()
	lf := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	found := false
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || found || !strings.Contains(path, "/cur/") && !strings.Contains(path, "/new/") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Equal(b, raw) || bytes.Equal(b, lf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// goimapOnly hides an Account's append connection: the copy appends
// through go-imap, as it does for Dialers other than Account.
type goimapOnly struct{ a *Account }

func (g goimapOnly) Dial(ctx context.Context) (*imapclient.Client, error) { return g.a.Dial(ctx) }
func (g goimapOnly) String() string                                       { return g.a.String() }

// TestConformanceMemoryGoIMAPAppend runs the suite with go-imap's APPEND.
func TestConformanceMemoryGoIMAPAppend(t *testing.T) {
	runSuite(t, func(t *testing.T) *pair {
		p := memPair(false)(t)
		p.dst = goimapOnly{p.dst.(*Account)}
		return p
	}, false)
}
