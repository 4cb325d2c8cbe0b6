package imapappend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

func startAppendDovecot(t *testing.T) *testserver.Dovecot {
	t.Helper()
	// A fresh server per test keeps tests independent; starting one
	// takes well under a second.
	return testserver.StartDovecot(t, testserver.DovecotOptions{Name: "append", TLS: true})
}

// testMessage returns a CRLF message of about size bytes whose body
// carries n.
func testMessage(n, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: a%d@example.org\r\nTo: b@example.org\r\nSubject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n", n, n, n)
	line := 0
	for b.Len() < size {
		fmt.Fprintf(&b, "line %d of message %d: the quick brown fox jumps over the lazy dog\r\n", line, n)
		line++
	}
	return b.Bytes()
}

type fetched struct {
	UID   imap.UID
	Flags []string
	Date  time.Time
	Body  []byte
}

// fetchAll returns every message of mailbox of user1 by UID order. With
// binary, bodies are read with BINARY.PEEK[]: Dovecot stores NUL bytes as
// they came but serves them as 0x80 in BODY[].
func fetchAll(t *testing.T, d *testserver.Dovecot, mailbox string, binary ...bool) []fetched {
	t.Helper()
	cl, err := d.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %q: %v", mailbox, err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	bsec := &imap.FetchItemBinarySection{Peek: true}
	opts := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{sec}}
	if len(binary) > 0 && binary[0] {
		opts.BodySection, opts.BinarySection = nil, []*imap.FetchItemBinarySection{bsec}
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	msgs, err := cl.Fetch(all, opts).Collect()
	if err != nil {
		t.Fatalf("fetch %q: %v", mailbox, err)
	}
	out := make([]fetched, len(msgs))
	for i, m := range msgs {
		var flags []string
		for _, f := range m.Flags {
			if !strings.EqualFold(string(f), `\Recent`) {
				flags = append(flags, string(f))
			}
		}
		slices.Sort(flags)
		body := m.FindBodySection(sec)
		if body == nil {
			body = m.FindBinarySection(bsec)
		}
		out[i] = fetched{UID: m.UID, Flags: flags, Date: m.InternalDate, Body: body}
	}
	slices.SortFunc(out, func(a, b fetched) int { return int(a.UID) - int(b.UID) })
	return out
}

func createMailbox(t *testing.T, d *testserver.Dovecot, name string) {
	t.Helper()
	cl, err := d.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Create(name, nil).Wait(); err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
}

func dialAppendT(t *testing.T, a *Config) *Conn {
	t.Helper()
	c, err := a.dial(context.Background())
	if err != nil {
		t.Fatalf("dial %s: %v", a.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAppendDialDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	for _, sec := range []Security{Plaintext, StartTLS, ImplicitTLS} {
		for _, admin := range []bool{false, true} {
			name := secName[sec]
			if admin {
				name += "-admin"
			}
			t.Run(name, func(t *testing.T) {
				c := dialAppendT(t, dovecotAccount(t, d, admin, sec))
				got := c.Caps()
				if !got.Multi || !got.LiteralPlus || !got.LiteralMinus || !got.Binary || !got.UIDPlus {
					t.Errorf("caps() = %+v, want MULTIAPPEND, LITERAL+, LITERAL-, BINARY, UIDPLUS", got)
				}
				body := testMessage(1, 100)
				v, uids, err := c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(body)), Body: bytes.NewReader(body)}})
				if err != nil || v == 0 || len(uids) != 1 {
					t.Fatalf("append = %d, %v, %v; want a UIDVALIDITY and one UID", v, uids, err)
				}
				if err := c.Noop(context.Background()); err != nil {
					t.Errorf("noop: %v", err)
				}
				if err := c.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
				if !c.Closed() {
					t.Error("closed() = false after close")
				}
				if err := c.Close(); err != nil {
					t.Errorf("second close: %v", err)
				}
				if _, _, err := c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(body)), Body: bytes.NewReader(body)}}); err == nil {
					t.Error("append after close: got nil error")
				}
			})
		}
	}
	for _, admin := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrong-password-admin-%v", admin), func(t *testing.T) {
			a := dovecotAccount(t, d, admin, StartTLS)
			a.Password = secret.New("wrong")
			c, err := a.dial(context.Background())
			if !errors.Is(err, retry.ErrAuth) {
				t.Fatalf("dialAppend = %v, %v; want retry.ErrAuth", c, err)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	t.Run("unverified-certificate", func(t *testing.T) {
		a := dovecotAccount(t, d, false, ImplicitTLS)
		a.TLSConfig = nil // system roots do not know the test CA
		if c, err := a.dial(context.Background()); err == nil {
			c.Close()
			t.Fatal("dialAppend with an unknown CA: got nil error")
		}
	})
}

// makeItems turns bodies into items.
func makeItems(bodies [][]byte, flags [][]imap.Flag, dates []time.Time) []Item {
	items := make([]Item, len(bodies))
	for i, b := range bodies {
		items[i] = Item{Flags: flags[i], Time: dates[i], Size: int64(len(b)), Body: bytes.NewReader(b)}
	}
	return items
}

func TestAppendMultiDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	for _, mode := range []string{"literal+", "synchronising", "literal-"} {
		t.Run(mode, func(t *testing.T) {
			box := "Multi-" + mode
			createMailbox(t, d, box)
			c := dialAppendT(t, dovecotAccount(t, d, mode == "literal-", Plaintext))
			switch mode {
			case "synchronising":
				c.cs.LiteralPlus, c.cs.LiteralMinus = false, false
			case "literal-":
				c.cs.LiteralPlus = false
			}
			const n = 50
			bodies := make([][]byte, n)
			flags := make([][]imap.Flag, n)
			dates := make([]time.Time, n)
			zones := []*time.Location{time.FixedZone("", 2*3600), time.FixedZone("", -7*3600-1800), time.UTC}
			flagSets := [][]imap.Flag{nil, {imap.FlagSeen}, {imap.FlagSeen, imap.FlagAnswered, "$Forwarded"}, {imap.FlagFlagged, "Work", "project_x"}, {imap.FlagDraft, imap.FlagDeleted}}
			for i := range n {
				size := 300 + 37*i
				switch i {
				case 7:
					size = 5000 // over 4 KiB: synchronising under LITERAL-
				case 30:
					size = 1 << 20
				}
				bodies[i] = testMessage(i, size)
				flags[i] = flagSets[i%len(flagSets)]
				dates[i] = time.Date(2019+i%5, time.Month(1+i%12), 1+i%28, i%24, i, 7, 0, zones[i%len(zones)])
			}
			v, uids, err := c.Append(context.Background(), box, makeItems(bodies, flags, dates))
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if v == 0 || len(uids) != n {
				t.Fatalf("append = %d, %d uids; want a UIDVALIDITY and %d uids", v, len(uids), n)
			}
			got := fetchAll(t, d, box)
			if len(got) != n {
				t.Fatalf("fetched %d messages, want %d", len(got), n)
			}
			for i, g := range got {
				if g.UID != uids[i] {
					t.Errorf("message %d: fetched UID %d, append returned %d", i, g.UID, uids[i])
				}
				if !bytes.Equal(g.Body, bodies[i]) {
					t.Errorf("message %d: body differs (%d bytes, want %d)", i, len(g.Body), len(bodies[i]))
				}
				var want []string
				for _, f := range flags[i] {
					want = append(want, string(f))
				}
				slices.Sort(want)
				if diff := cmp.Diff(want, g.Flags, cmp.Comparer(func(a, b string) bool { return strings.EqualFold(a, b) })); diff != "" {
					t.Errorf("message %d: flags (-want +got):\n%s", i, diff)
				}
				if !g.Date.Equal(dates[i]) {
					t.Errorf("message %d: INTERNALDATE %v, want %v", i, g.Date, dates[i])
				}
			}
			// The connection goes on.
			body := testMessage(99, 200)
			if _, uids, err := c.Append(context.Background(), box, []Item{{Size: int64(len(body)), Body: bytes.NewReader(body)}}); err != nil || len(uids) != 1 {
				t.Fatalf("append after the batch = %v, %v", uids, err)
			}
		})
	}
}

func TestAppendNULDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	c := dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
	nul := []byte("From: a@example.org\r\nSubject: nul\r\n\r\nbefore\x00after\r\n\x00\x00 end\r\n")
	big := append(testMessage(2, 200_000), "tail \x00 byte\r\n"...)
	// Declared, auto-detected in memory, and a plain message after them.
	plain := testMessage(3, 500)
	items := []Item{
		{Size: int64(len(nul)), Body: io.MultiReader(bytes.NewReader(nul)), NUL: true},
		{Size: int64(len(big)), Body: bytes.NewReader(big)},
		{Size: int64(len(plain)), Body: bytes.NewReader(plain)},
	}
	_, uids, err := c.Append(context.Background(), "INBOX", items)
	if err != nil || len(uids) != 3 {
		t.Fatalf("append = %v, %v", uids, err)
	}
	got := fetchAll(t, d, "INBOX", true)
	if len(got) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(got))
	}
	for i, want := range [][]byte{nul, big, plain} {
		if !bytes.Equal(got[i].Body, want) {
			t.Errorf("message %d: body differs:\n got %q\nwant %q", i, clip(got[i].Body), clip(want))
		}
	}

	// Undeclared, in a reader append cannot look into: found while it is
	// buffered, nothing sent, the connection stays.
	_, _, err = c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(nul)), Body: io.MultiReader(bytes.NewReader(nul))}})
	var ne *nulError
	if !errors.As(err, &ne) || !ne.Undeclared || ne.Index != 0 || !errors.Is(err, ErrNUL) {
		t.Fatalf("undeclared NUL: got %v, want an undeclared *nulError for message 0", err)
	}
	if c.Closed() {
		t.Fatal("connection closed although nothing was sent")
	}
	// Found after the buffer was flushed: the connection is closed and
	// nothing is stored.
	_, _, err = c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(big)), Body: io.MultiReader(bytes.NewReader(big))}})
	if !errors.As(err, &ne) || !ne.Undeclared {
		t.Fatalf("undeclared NUL after 64 KiB: got %v, want an undeclared *nulError", err)
	}
	if !c.Closed() {
		t.Fatal("connection still open after a cut literal")
	}
	if got := fetchAll(t, d, "INBOX"); len(got) != 3 {
		t.Errorf("%d messages after the refused ones, want 3", len(got))
	}

	// Synchronising literal8: ~{n}, then '+'.
	createMailbox(t, d, "Sync")
	c = dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
	c.cs.LiteralPlus, c.cs.LiteralMinus = false, false
	if _, uids, err := c.Append(context.Background(), "Sync", []Item{{Size: int64(len(nul)), Body: bytes.NewReader(nul)}, {Size: int64(len(plain)), Body: bytes.NewReader(plain)}}); err != nil || len(uids) != 2 {
		t.Fatalf("synchronising append = %v, %v", uids, err)
	}
	if got := fetchAll(t, d, "Sync", true); len(got) != 2 || !bytes.Equal(got[0].Body, nul) || !bytes.Equal(got[1].Body, plain) {
		t.Errorf("synchronising literal8: fetched %d messages, or other bytes", len(got))
	}

	// Without BINARY: refused before anything is sent.
	c = dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
	c.cs.Binary = false
	_, _, err = c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(plain)), Body: bytes.NewReader(plain)}, {Size: int64(len(nul)), Body: bytes.NewReader(nul)}})
	if !errors.As(err, &ne) || ne.Index != 1 || ne.Undeclared || !errors.Is(err, ErrNUL) {
		t.Fatalf("NUL without BINARY: got %v, want *nulError for message 1", err)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("noop after ErrNUL: %v", err)
	}
}

// TestAppendMailboxesDovecot appends to a non-ASCII mailbox and to a
// missing one, with non-synchronising literals and with synchronising ones
// (where Dovecot answers NO in place of '+'), in one MULTIAPPEND too: the
// refusal is an *imap.Error and the connection goes on.
func TestAppendMailboxesDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	const box = "Entwürfe/日本"
	createMailbox(t, d, box)
	body := testMessage(1, 1000)
	items := func(n int) []Item {
		var out []Item
		for range n {
			out = append(out, Item{Size: int64(len(body)), Body: bytes.NewReader(body)})
		}
		return out
	}
	want := 0
	for _, sync := range []bool{false, true} {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("sync-%v-%d", sync, n), func(t *testing.T) {
				c := dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
				if sync {
					c.cs.LiteralPlus, c.cs.LiteralMinus = false, false
				}
				sent := c.cw.n
				_, _, err := c.Append(context.Background(), "Nowhere/日本", items(n))
				if sent = c.cw.n - sent; sync && sent >= int64(len(body)) {
					t.Errorf("%d bytes sent after a NO in place of '+', want the command line only", sent)
				}
				var ie *imap.Error
				if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeTryCreate {
					t.Fatalf("append to a missing mailbox: got %v, want NO [TRYCREATE]", err)
				}
				if c.Closed() {
					t.Fatal("connection closed after NO")
				}
				if _, uids, err := c.Append(context.Background(), box, items(n)); err != nil || len(uids) != n {
					t.Fatalf("append to %q = %v, %v", box, uids, err)
				}
				want += n
				got := fetchAll(t, d, box)
				if len(got) != want {
					t.Fatalf("fetched %d messages from %q, want %d", len(got), box, want)
				}
				for _, g := range got {
					if !bytes.Equal(g.Body, body) {
						t.Fatalf("message %d: body differs", g.UID)
					}
				}
			})
		}
	}
}

// fakeSess is one scripted server session.
func TestAppendKickedDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	for _, sec := range []Security{ImplicitTLS, StartTLS, Plaintext} {
		t.Run(secName[sec], func(t *testing.T) {
			c := dialAppendT(t, dovecotAccount(t, d, false, sec))
			body := testMessage(1, 100)
			if _, _, err := c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(body)), Body: bytes.NewReader(body)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Doveadm(context.Background(), "kick", testserver.DefaultUser); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			_, _, err := c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(body)), Body: bytes.NewReader(body)}})
			if !errors.Is(err, ErrClosed) || !c.Closed() {
				t.Fatalf("append after a kick = %v (closed %v), want ErrClosed", err, c.Closed())
			}
			t.Logf("append after a kick: %v", err)
		})
	}
}
