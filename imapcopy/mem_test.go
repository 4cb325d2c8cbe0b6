package imapcopy

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

func startMem(t *testing.T, opts memimap.Options) *memimap.Server {
	t.Helper()
	s, err := memimap.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func memAccount(s *memimap.Server, user, admin, pass string) *Account {
	return &Account{Addr: s.Addr(), Security: Plaintext, User: user, Admin: admin, Password: secret.New(pass)}
}

func memPair(admin bool) func(t *testing.T) *pair {
	return func(t *testing.T) *pair {
		admins := map[string]string{"admin": "adminpass"}
		src := startMem(t, memimap.Options{Admins: admins})
		dst := startMem(t, memimap.Options{Admins: admins})
		src.AddUser("user1", "pass1")
		dst.AddUser("user1", "pass1")
		p := &pair{dstDelim: memimap.Delim}
		if admin {
			p.src, p.dst = memAccount(src, "user1", "admin", "adminpass"), memAccount(dst, "user1", "admin", "adminpass")
		} else {
			p.src, p.dst = memAccount(src, "user1", "", "pass1"), memAccount(dst, "user1", "", "pass1")
		}
		p.seed = func(t *testing.T, m corpus.Mailbox) {
			if err := src.Seed("user1", m); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
}

func TestConformanceMemory(t *testing.T) {
	t.Run("user", func(t *testing.T) { runSuite(t, memPair(false), true) })
	t.Run("admin", func(t *testing.T) { runSuite(t, memPair(true), true) })
}

// TestRefusedKeywordAndOversize: a keyword the destination refuses and a
// message over APPENDLIMIT are reported per message, the rest is copied.
func TestRefusedKeywordAndOversize(t *testing.T) {
	src := startMem(t, memimap.Options{})
	dst := startMem(t, memimap.Options{AppendLimit: 20000, AppendHook: func(_, _ string, flags []imap.Flag, _ int64) error {
		for _, f := range flags {
			if f == "Refused" {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "APPEND failed"}
			}
		}
		return nil
	}})
	src.AddUser("u", "p")
	dst.AddUser("u", "p")
	small := []byte("From: a@example.com\r\nSubject: small\r\nMessage-ID: <s@x>\r\n\r\nhello\r\n")
	big := []byte("From: a@example.com\r\nSubject: big\r\nMessage-ID: <b@x>\r\n\r\n" + strings.Repeat("x", 30000) + "\r\n")
	m := corpus.Mailbox{
		Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}},
		Messages: []corpus.Message{
			{Folder: "INBOX", Raw: small, Flags: []string{`\Seen`, "Refused"}},
			{Folder: "INBOX", Raw: big, Flags: []string{`\Seen`}},
			{Folder: "INBOX", Raw: append([]byte("X-N: 3\r\n"), small...), Flags: []string{"caf\xc3\xa9", "Tag:FLAG12"}},
		},
	}
	if err := src.Seed("u", m); err != nil {
		t.Fatal(err)
	}
	var items []string
	c := &Copier{OnError: func(item string, err error) error {
		t.Logf("OnError %s: %v", item, err)
		items = append(items, item)
		return nil
	}}
	st, err := c.Copy(context.Background(), memAccount(dst, "u", "", "p"), memAccount(src, "u", "", "p"))
	if err != nil {
		t.Fatal(err)
	}
	if st.OK() {
		t.Fatal("Stats.OK() = true, want false (partial)")
	}
	f := st.Folders[0]
	if f.Copied != 2 {
		t.Errorf("copied %d, want 2", f.Copied)
	}
	if len(f.SkippedItems) != 1 || f.SkippedItems[0].UID != 2 {
		t.Errorf("skipped items %+v, want uid 2 (too big)", f.SkippedItems)
	}
	var sawRefused, sawTag, sawAtom bool
	for _, k := range f.Keywords {
		for _, ch := range k.Changes {
			switch {
			case ch.From == "Refused":
				sawRefused = true
			case ch.From == "Tag:FLAG12" && ch.To == "Tag":
				sawTag = true
			case ch.From == "caf\xc3\xa9" && ch.To == "caf__":
				sawAtom = true
			}
		}
	}
	if !sawRefused || !sawTag || !sawAtom {
		t.Errorf("keyword report %+v: refused %v, zimbra tag %v, atom %v; want all", f.Keywords, sawRefused, sawTag, sawAtom)
	}
	if len(items) != 1 || !strings.Contains(items[0], "INBOX uid 2") {
		t.Errorf("OnError items %q, want the oversize message", items)
	}
}

func TestAuthFailureIsFatal(t *testing.T) {
	src := startMem(t, memimap.Options{})
	src.AddUser("u", "p")
	_, err := (&Copier{}).Copy(context.Background(), memAccount(src, "u", "", "p"), memAccount(src, "u", "", "wrong"))
	if err == nil || !errors.Is(err, errAuthSentinel()) {
		t.Fatalf("err %v, want retry.ErrAuth", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	p := memPair(false)(t)
	acc := corpus.Generate("user1", corpus.Options{Seed: 1, Messages: 100, Events: -1, Contacts: -1})
	p.seed(t, acc.Mail)
	st, err := (&Copier{DryRun: true}).Copy(context.Background(), p.dst, p.src)
	if err != nil {
		t.Fatal(err)
	}
	if tt := st.Totals(); tt.Copied != len(acc.Mail.Messages) {
		t.Errorf("dry run would copy %d, want %d", tt.Copied, len(acc.Mail.Messages))
	}
	got := snapshot(t, p.dst)
	if len(got.Folders) != 1 || len(got.Messages) != 0 {
		t.Errorf("dry run wrote to the destination: %d folders, %d messages", len(got.Folders), len(got.Messages))
	}
}

func errAuthSentinel() error { return retry.ErrAuth }

// TestDroppedConnectionRetries: the destination drops the connection in the
// middle of the copy; the folder pass is retried and ends with every message
// exactly once.
func TestDroppedConnectionRetries(t *testing.T) {
	var appends atomic.Int64
	src := startMem(t, memimap.Options{})
	dst := startMem(t, memimap.Options{AppendHook: func(_, _ string, _ []imap.Flag, _ int64) error {
		if n := appends.Add(1); n == 40 || n == 90 {
			return memimap.ErrDrop
		}
		return nil
	}})
	src.AddUser("user1", "pass1")
	dst.AddUser("user1", "pass1")
	acc := corpus.Generate("user1", corpus.Options{Seed: 11, Messages: 200, Events: -1, Contacts: -1})
	if err := src.Seed("user1", acc.Mail); err != nil {
		t.Fatal(err)
	}
	s, d := memAccount(src, "user1", "", "pass1"), memAccount(dst, "user1", "", "pass1")
	st, err := (&Copier{Concurrency: 1}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, st)
	if diffs := diffDest(t, &pair{dst: d, dstDelim: memimap.Delim}, acc.Mail); diffs != nil {
		t.Fatalf("after dropped connections, destination differs:\n%s", strings.Join(diffs, "\n"))
	}
	if appends.Load() < 92 {
		t.Errorf("only %d APPENDs seen; the drops did not happen", appends.Load())
	}
}
