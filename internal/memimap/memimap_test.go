package memimap

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAdminLoginNoselectAndExactBytes(t *testing.T) {
	s := start(t, Options{Admins: map[string]string{"admin": "secret"}, AppendLimit: 1000})
	s.AddUser("alice", "pw")
	// A header block that never ends: imapmemserver would serve it empty.
	raw := []byte("Subject: broken\r\nX-Folded: a\r\n  b\r\nno colon here")
	err := s.Seed("alice", corpus.Mailbox{
		Folders:  []corpus.Folder{{Name: "Lists", NoSelect: true, Subscribed: true}, {Name: "Lists/go", SpecialUse: `\Archive`}},
		Messages: []corpus.Message{{Folder: "Lists/go", Raw: raw, Flags: []string{`\Seen`, "Tag"}, InternalDate: time.Unix(1700000000, 0)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("alice", "admin", "wrong")); err == nil {
		t.Fatal("admin login with a wrong password succeeded")
	}
	if err := c.Authenticate(sasl.NewPlainClient("alice", "admin", "secret")); err != nil {
		t.Fatalf("admin login as alice: %v", err)
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnSubscribed: true, ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
	}
	if !has(attrs["Lists"], imap.MailboxAttrNoSelect) || !has(attrs["Lists"], imap.MailboxAttrSubscribed) {
		t.Errorf("Lists attrs %v, want \\Noselect \\Subscribed", attrs["Lists"])
	}
	if !has(attrs["Lists/go"], imap.MailboxAttrArchive) {
		t.Errorf("Lists/go attrs %v, want \\Archive", attrs["Lists/go"])
	}
	if _, err := c.Select("Lists/go", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v (%d messages)", err, len(msgs))
	}
	for _, b := range msgs[0].BodySection {
		if !bytes.Equal(b.Bytes, raw) {
			t.Errorf("BODY[] = %q, want the stored bytes %q", b.Bytes, raw)
		}
	}
	big := bytes.Repeat([]byte("x"), 2000)
	cmd := c.Append("Lists/go", int64(len(big)), nil)
	cmd.Write(big)
	cmd.Close()
	_, err = cmd.Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeTooBig {
		t.Errorf("APPEND over APPENDLIMIT: %v, want NO [TOOBIG]", err)
	}
}

func has(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if x == a {
			return true
		}
	}
	return false
}
