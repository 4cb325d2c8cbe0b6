package memimap

import (
	"bytes"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// TestBodiesOnDisk: with Options.Bodies the servers keep bodies in one
// file, once per content, and serve them byte for byte (BODY[], a section,
// RFC822.SIZE, STATUS SIZE), appended ones too.
func TestBodiesOnDisk(t *testing.T) {
	bodies, err := NewBodies(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bodies.Close()
	src := start(t, Options{Bodies: bodies})
	dst := start(t, Options{Bodies: bodies})
	raw := []byte("Subject: on disk\r\nMessage-ID: <d@x>\r\n\r\nbody\r\n")
	for _, s := range []*Server{src, dst} {
		s.AddUser("u", "pw")
		if err := s.Seed("u", corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX"}},
			Messages: []corpus.Message{{Folder: "INBOX", Raw: raw, InternalDate: time.Unix(1700000000, 0)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := bodies.Size(); got != int64(len(raw)) {
		t.Fatalf("bodies hold %d bytes, want the one body once (%d)", got, len(raw))
	}
	for i := range raw {
		raw[i] = 'X' // Seed must not keep the caller's slice
	}
	want := []byte("Subject: on disk\r\nMessage-ID: <d@x>\r\n\r\nbody\r\n")

	c, err := imapclient.DialInsecure(dst.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("", "u", "pw")); err != nil {
		t.Fatal(err)
	}
	other := []byte("Subject: appended\r\n\r\nnew\r\n")
	cmd := c.Append("INBOX", int64(len(other)), nil)
	cmd.Write(other)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := bodies.Size(); got != int64(len(want)+len(other)) {
		t.Errorf("bodies hold %d bytes after the APPEND, want %d", got, len(want)+len(other))
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}, {Peek: true, Specifier: imap.PartSpecifierText}}}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("fetch: %v (%d messages)", err, len(msgs))
	}
	for i, w := range [][]byte{want, other} {
		if msgs[i].RFC822Size != int64(len(w)) {
			t.Errorf("message %d: RFC822.SIZE %d, want %d", i+1, msgs[i].RFC822Size, len(w))
		}
		full := msgs[i].FindBodySection(&imap.FetchItemBodySection{})
		if !bytes.Equal(full, w) {
			t.Errorf("message %d: BODY[] %q, want %q", i+1, full, w)
		}
		_, text, _ := bytes.Cut(w, []byte("\r\n\r\n"))
		if got := msgs[i].FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}); !bytes.Equal(got, text) {
			t.Errorf("message %d: BODY[TEXT] %q, want %q", i+1, got, text)
		}
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{Size: true}).Wait()
	if err != nil || st.Size == nil || *st.Size != int64(len(want)+len(other)) {
		t.Errorf("STATUS SIZE = %v (%v), want %d", st, err, len(want)+len(other))
	}
}
