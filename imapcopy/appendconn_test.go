package imapcopy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/retry"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
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

func dialAppendT(t *testing.T, a *Account) *appendConn {
	t.Helper()
	c, err := a.dialAppend(context.Background())
	if err != nil {
		t.Fatalf("dialAppend %s: %v", a, err)
	}
	t.Cleanup(func() { c.close() })
	return c
}

func TestAppendDialDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	for _, sec := range []Security{Plaintext, StartTLS, ImplicitTLS} {
		for _, admin := range []bool{false, true} {
			name := sec.String()
			if admin {
				name += "-admin"
			}
			t.Run(name, func(t *testing.T) {
				c := dialAppendT(t, dovecotAccount(t, d, admin, sec))
				got := c.caps()
				if !got.Multi || !got.LiteralPlus || !got.LiteralMinus || !got.Binary || !got.UIDPlus {
					t.Errorf("caps() = %+v, want MULTIAPPEND, LITERAL+, LITERAL-, BINARY, UIDPLUS", got)
				}
				body := testMessage(1, 100)
				v, uids, err := c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(body)), Body: bytes.NewReader(body)}})
				if err != nil || v == 0 || len(uids) != 1 {
					t.Fatalf("append = %d, %v, %v; want a UIDVALIDITY and one UID", v, uids, err)
				}
				if err := c.noop(context.Background()); err != nil {
					t.Errorf("noop: %v", err)
				}
				if err := c.close(); err != nil {
					t.Errorf("close: %v", err)
				}
				if !c.closed() {
					t.Error("closed() = false after close")
				}
				if err := c.close(); err != nil {
					t.Errorf("second close: %v", err)
				}
				if _, _, err := c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(body)), Body: bytes.NewReader(body)}}); err == nil {
					t.Error("append after close: got nil error")
				}
			})
		}
	}
	for _, admin := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrong-password-admin-%v", admin), func(t *testing.T) {
			a := dovecotAccount(t, d, admin, StartTLS)
			a.Password = secret.New("wrong")
			c, err := a.dialAppend(context.Background())
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
		if c, err := a.dialAppend(context.Background()); err == nil {
			c.close()
			t.Fatal("dialAppend with an unknown CA: got nil error")
		}
	})
}

// appendItems turns bodies into items.
func appendItems(bodies [][]byte, flags [][]imap.Flag, dates []time.Time) []appendItem {
	items := make([]appendItem, len(bodies))
	for i, b := range bodies {
		items[i] = appendItem{Flags: flags[i], Time: dates[i], Size: int64(len(b)), Body: bytes.NewReader(b)}
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
			v, uids, err := c.append(context.Background(), box, appendItems(bodies, flags, dates))
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
			if _, uids, err := c.append(context.Background(), box, []appendItem{{Size: int64(len(body)), Body: bytes.NewReader(body)}}); err != nil || len(uids) != 1 {
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
	items := []appendItem{
		{Size: int64(len(nul)), Body: io.MultiReader(bytes.NewReader(nul)), NUL: true},
		{Size: int64(len(big)), Body: bytes.NewReader(big)},
		{Size: int64(len(plain)), Body: bytes.NewReader(plain)},
	}
	_, uids, err := c.append(context.Background(), "INBOX", items)
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
	_, _, err = c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(nul)), Body: io.MultiReader(bytes.NewReader(nul))}})
	var ne *nulError
	if !errors.As(err, &ne) || !ne.Undeclared || ne.Index != 0 || !errors.Is(err, errNUL) {
		t.Fatalf("undeclared NUL: got %v, want an undeclared *nulError for message 0", err)
	}
	if c.closed() {
		t.Fatal("connection closed although nothing was sent")
	}
	// Found after the buffer was flushed: the connection is closed and
	// nothing is stored.
	_, _, err = c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(big)), Body: io.MultiReader(bytes.NewReader(big))}})
	if !errors.As(err, &ne) || !ne.Undeclared {
		t.Fatalf("undeclared NUL after 64 KiB: got %v, want an undeclared *nulError", err)
	}
	if !c.closed() {
		t.Fatal("connection still open after a cut literal")
	}
	if got := fetchAll(t, d, "INBOX"); len(got) != 3 {
		t.Errorf("%d messages after the refused ones, want 3", len(got))
	}

	// Synchronising literal8: ~{n}, then '+'.
	createMailbox(t, d, "Sync")
	c = dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
	c.cs.LiteralPlus, c.cs.LiteralMinus = false, false
	if _, uids, err := c.append(context.Background(), "Sync", []appendItem{{Size: int64(len(nul)), Body: bytes.NewReader(nul)}, {Size: int64(len(plain)), Body: bytes.NewReader(plain)}}); err != nil || len(uids) != 2 {
		t.Fatalf("synchronising append = %v, %v", uids, err)
	}
	if got := fetchAll(t, d, "Sync", true); len(got) != 2 || !bytes.Equal(got[0].Body, nul) || !bytes.Equal(got[1].Body, plain) {
		t.Errorf("synchronising literal8: fetched %d messages, or other bytes", len(got))
	}

	// Without BINARY: refused before anything is sent.
	c = dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
	c.cs.Binary = false
	_, _, err = c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(plain)), Body: bytes.NewReader(plain)}, {Size: int64(len(nul)), Body: bytes.NewReader(nul)}})
	if !errors.As(err, &ne) || ne.Index != 1 || ne.Undeclared || !errors.Is(err, errNUL) {
		t.Fatalf("NUL without BINARY: got %v, want *nulError for message 1", err)
	}
	if err := c.noop(context.Background()); err != nil {
		t.Fatalf("noop after errNUL: %v", err)
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
	items := func(n int) []appendItem {
		var out []appendItem
		for range n {
			out = append(out, appendItem{Size: int64(len(body)), Body: bytes.NewReader(body)})
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
				_, _, err := c.append(context.Background(), "Nowhere/日本", items(n))
				if sent = c.cw.n - sent; sync && sent >= int64(len(body)) {
					t.Errorf("%d bytes sent after a NO in place of '+', want the command line only", sent)
				}
				var ie *imap.Error
				if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeTryCreate {
					t.Fatalf("append to a missing mailbox: got %v, want NO [TRYCREATE]", err)
				}
				if c.closed() {
					t.Fatal("connection closed after NO")
				}
				if _, uids, err := c.append(context.Background(), box, items(n)); err != nil || len(uids) != n {
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
type fakeSess struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// startFake runs script for one connection on a loopback listener and
// returns an Account for it. The test waits for the script at cleanup.
func startFake(t *testing.T, script func(s *fakeSess)) *Account {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		script(&fakeSess{t: t, conn: conn, br: bufio.NewReader(conn)})
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return &Account{Addr: ln.Addr().String(), Security: Plaintext, User: "user", Password: secret.New(`p"a\ss`), DialTimeout: 5 * time.Second}
}

// send writes lines, each followed by CRLF.
func (s *fakeSess) send(lines ...string) {
	for _, l := range lines {
		if _, err := io.WriteString(s.conn, l+"\r\n"); err != nil {
			s.t.Errorf("fake server: write: %v", err)
			runtime.Goexit()
		}
	}
}

// line reads one line without CRLF; it ends the script on error.
func (s *fakeSess) line() string {
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Errorf("fake server: read: %v", err)
		runtime.Goexit()
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd reads a command line and returns its tag and the rest.
func (s *fakeSess) cmd(want string) (tag, rest string) {
	l := s.line()
	tag, rest, _ = strings.Cut(l, " ")
	if !strings.HasPrefix(strings.ToUpper(rest), want) {
		s.t.Errorf("fake server: got %q, want %s", l, want)
		runtime.Goexit()
	}
	return tag, rest
}

// login greets with caps and accepts the LOGIN.
func (s *fakeSess) login(caps string) {
	s.send("* OK [CAPABILITY IMAP4rev1 " + caps + "] fake ready")
	tag, rest := s.cmd("LOGIN")
	if rest != `LOGIN "user" "p\"a\\ss"` {
		s.t.Errorf("fake server: login line %q", rest)
	}
	s.send(tag + " OK [CAPABILITY IMAP4rev1 " + caps + "] logged in")
}

// appendCmd reads an APPEND with its literals, answering '+' to
// synchronising ones, and returns the tag, the parts between literals
// and the literal contents. refuse, when not empty, is sent in place of
// the '+' of the first synchronising literal (with the tag prefixed), and
// appendCmd returns at once.
func (s *fakeSess) appendCmd(refuse string) (tag string, parts []string, bodies [][]byte) {
	l := s.line()
	tag, l, _ = strings.Cut(l, " ")
	for {
		open := strings.LastIndexByte(l, '{')
		if open < 0 || !strings.HasSuffix(l, "}") {
			parts = append(parts, l)
			return tag, parts, bodies
		}
		parts = append(parts, l)
		spec := strings.TrimSuffix(l[open+1:len(l)-1], "+")
		n, err := strconv.Atoi(spec)
		if err != nil {
			s.t.Errorf("fake server: bad literal in %q", l)
			runtime.Goexit()
		}
		if !strings.HasSuffix(l, "+}") {
			if refuse != "" {
				s.send(tag + " " + refuse)
				return tag, parts, bodies
			}
			s.send("+ go ahead")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(s.br, b); err != nil {
			s.t.Errorf("fake server: literal: %v", err)
			runtime.Goexit()
		}
		bodies = append(bodies, b)
		l = s.line()
	}
}

func oneItem(body string) []appendItem {
	return []appendItem{{Size: int64(len(body)), Body: strings.NewReader(body)}}
}

func TestAppendFakeNoInPlaceOfContinuation(t *testing.T) {
	a := startFake(t, func(s *fakeSess) {
		s.login("MULTIAPPEND UIDPLUS")
		tag, parts, _ := s.appendCmd("NO [TOOBIG] too big")
		if want := []string{`APPEND "INBOX" (\Seen) {5}`}; !slices.Equal(parts, want) {
			s.t.Errorf("fake server: first APPEND %q, want %q", parts, want)
		}
		_ = tag
		tag, parts, bodies := s.appendCmd("")
		if len(bodies) != 1 || string(bodies[0]) != "hello" || parts[len(parts)-1] != "" {
			s.t.Errorf("fake server: second APPEND %q %q", parts, bodies)
		}
		s.send(tag + " OK [APPENDUID 7 42] done")
		s.cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	_, _, err := c.append(context.Background(), "INBOX", []appendItem{{Flags: []imap.Flag{imap.FlagSeen}, Size: 5, Body: strings.NewReader("world")}})
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeTooBig || ie.Text != "too big" {
		t.Fatalf("append = %v, want NO [TOOBIG] too big", err)
	}
	if c.closed() {
		t.Fatal("closed after NO in place of '+'")
	}
	v, uids, err := c.append(context.Background(), "INBOX", oneItem("hello"))
	if err != nil || v != 7 || !slices.Equal(uids, []imap.UID{42}) {
		t.Fatalf("second append = %d, %v, %v; want 7, [42], nil", v, uids, err)
	}
}

func TestAppendFakeResponses(t *testing.T) {
	five := func(t *testing.T) []appendItem {
		var items []appendItem
		for i := range 6 {
			items = append(items, oneItem(fmt.Sprintf("message %d", i))...)
		}
		return items
	}
	cases := []struct {
		name     string
		reply    []string // after the APPEND; "TAG" is replaced
		items    func(t *testing.T) []appendItem
		wantV    uint32
		wantUIDs []imap.UID
		wantErr  bool
		closed   bool
	}{
		{name: "range", reply: []string{"TAG OK [APPENDUID 9 5:9,12] ok"}, items: five, wantV: 9, wantUIDs: []imap.UID{5, 6, 7, 8, 9, 12}},
		{name: "reversed-range", reply: []string{"TAG OK [APPENDUID 9 12,9:5] ok"}, items: five, wantV: 9, wantUIDs: []imap.UID{12, 5, 6, 7, 8, 9}},
		{name: "count-differs", reply: []string{"TAG OK [APPENDUID 9 5:8] ok"}, items: five, wantV: 9},
		{name: "huge-range", reply: []string{"TAG OK [APPENDUID 9 1:4294967295] ok"}, items: five, wantV: 9},
		{name: "no-appenduid", reply: []string{"TAG OK done"}, items: five},
		{name: "untagged-with-literals", reply: []string{"* 3 EXISTS", "* 1 FETCH (BODY[] {12}", "hello\r\n}{7}\r)", "* CAPABILITY IMAP4rev1 MULTIAPPEND", "* OK [ALERT] {5}", "TAG OK [APPENDUID 9 5:10] ok"}, items: five, wantV: 9, wantUIDs: []imap.UID{5, 6, 7, 8, 9, 10}},
		{name: "bye", reply: []string{"* BYE going away"}, items: five, wantErr: true, closed: true},
		{name: "bad", reply: []string{"TAG BAD [CLIENTBUG] what"}, items: five, wantErr: true},
		{name: "garbage", reply: []string{"\x00\xff garbage"}, items: five, wantErr: true, closed: true},
		{name: "other-tag", reply: []string{"Q1 OK what"}, items: five, wantErr: true, closed: true},
		{name: "tagged-no-status", reply: []string{"TAG 3 EXISTS"}, items: five, wantErr: true, closed: true},
		{name: "eof", reply: []string{"* 1 EXISTS"}, items: five, wantErr: true, closed: true},
		{name: "bad-literal", reply: []string{"* 1 FETCH (BODY[] {99999999999999999}"}, items: five, wantErr: true, closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := startFake(t, func(s *fakeSess) {
				s.login("MULTIAPPEND UIDPLUS LITERAL+")
				tag, _, bodies := s.appendCmd("")
				if len(bodies) != 6 {
					s.t.Errorf("fake server: %d literals, want 6", len(bodies))
				}
				for _, r := range tc.reply {
					s.send(strings.ReplaceAll(r, "TAG", tag))
				}
				if !tc.closed {
					s.cmd("LOGOUT")
				}
			})
			c := dialAppendT(t, a)
			v, uids, err := c.append(context.Background(), "INBOX", tc.items(t))
			if (err != nil) != tc.wantErr {
				t.Fatalf("append error = %v, want error %v", err, tc.wantErr)
			}
			if v != tc.wantV || !slices.Equal(uids, tc.wantUIDs) {
				t.Errorf("append = %d, %v; want %d, %v", v, uids, tc.wantV, tc.wantUIDs)
			}
			if c.closed() != tc.closed {
				t.Errorf("closed() = %v, want %v", c.closed(), tc.closed)
			}
			var ie *imap.Error
			if tc.closed && errors.As(err, &ie) {
				t.Errorf("error %v on a closed connection is an *imap.Error", err)
			}
			if tc.name == "bye" && retry.Classify(err) != retry.Transient {
				t.Errorf("BYE classified %v, want transient", retry.Classify(err))
			}
		})
	}
}

func TestAppendFakeByeMidCommand(t *testing.T) {
	a := startFake(t, func(s *fakeSess) {
		s.login("MULTIAPPEND UIDPLUS")
		l := s.line()
		if !strings.HasSuffix(l, "{5}") {
			s.t.Errorf("fake server: %q", l)
		}
		s.send("* BYE shutting down")
	})
	c := dialAppendT(t, a)
	_, _, err := c.append(context.Background(), "INBOX", oneItem("hello"))
	var ie *imap.Error
	if err == nil || errors.As(err, &ie) || !c.closed() {
		t.Fatalf("append = %v (closed %v); want a non-IMAP error and a closed connection", err, c.closed())
	}
}

// TestAppendFakeIdleBye: a BYE (or a close) that came while the connection
// was idle is noticed before the next command is sent, which then fails
// with errAppendClosed: nothing was sent.
func TestAppendFakeIdleBye(t *testing.T) {
	for _, tc := range []struct{ name, send string }{{"bye", "* BYE autologout"}, {"eof", ""}, {"untagged-then-bye", "* 2 EXISTS\r\n* BYE autologout"}} {
		t.Run(tc.name, func(t *testing.T) {
			said := make(chan struct{})
			a := startFake(t, func(s *fakeSess) {
				s.login("UIDPLUS LITERAL+")
				tag, _ := s.cmd("NOOP")
				s.send(tag + " OK noop")
				if tc.send != "" {
					s.send(tc.send)
				}
				s.conn.(*net.TCPConn).CloseWrite()
				close(said)
				// Nothing more must come: the next read sees EOF.
				if b, err := io.ReadAll(s.br); len(b) > 0 {
					s.t.Errorf("fake server: got %q (%v) after its BYE", b, err)
				}
			})
			c := dialAppendT(t, a)
			if err := c.noop(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-said
			time.Sleep(50 * time.Millisecond) // let the bytes land
			_, _, err := c.append(context.Background(), "INBOX", oneItem("hello"))
			if !errors.Is(err, errAppendClosed) || !c.closed() {
				t.Fatalf("append = %v (closed %v), want errAppendClosed", err, c.closed())
			}
			if retry.Classify(err) != retry.Transient {
				t.Errorf("classified %v, want transient", retry.Classify(err))
			}
		})
	}
}

// TestAppendKickedDovecot: Dovecot closes sessions it kicks (with a BYE);
// over TLS and plaintext, the next append notices before sending.
func TestAppendKickedDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	for _, sec := range []Security{ImplicitTLS, StartTLS, Plaintext} {
		t.Run(sec.String(), func(t *testing.T) {
			c := dialAppendT(t, dovecotAccount(t, d, false, sec))
			body := testMessage(1, 100)
			if _, _, err := c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(body)), Body: bytes.NewReader(body)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Doveadm(context.Background(), "kick", testserver.DefaultUser); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			_, _, err := c.append(context.Background(), "INBOX", []appendItem{{Size: int64(len(body)), Body: bytes.NewReader(body)}})
			if !errors.Is(err, errAppendClosed) || !c.closed() {
				t.Fatalf("append after a kick = %v (closed %v), want errAppendClosed", err, c.closed())
			}
			t.Logf("append after a kick: %v", err)
		})
	}
}

func TestAppendFakeTimeoutAndCancel(t *testing.T) {
	t.Run("silent-server", func(t *testing.T) {
		release := make(chan struct{})
		a := startFake(t, func(s *fakeSess) {
			s.login("UIDPLUS LITERAL+")
			s.appendCmd("")
			<-release
		})
		defer close(release)
		c := dialAppendT(t, a)
		c.lineTimeout, c.itemTimeout = 200*time.Millisecond, 0
		_, _, err := c.append(context.Background(), "INBOX", oneItem("hello"))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !c.closed() {
			t.Fatalf("append = %v (closed %v), want a timeout and a closed connection", err, c.closed())
		}
	})
	t.Run("cancel", func(t *testing.T) {
		release := make(chan struct{})
		a := startFake(t, func(s *fakeSess) {
			s.login("UIDPLUS LITERAL+")
			s.appendCmd("")
			<-release
		})
		defer close(release)
		c := dialAppendT(t, a)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err := c.append(ctx, "INBOX", oneItem("hello"))
		if !errors.Is(err, context.DeadlineExceeded) || !c.closed() {
			t.Fatalf("append = %v (closed %v), want the context's error and a closed connection", err, c.closed())
		}
	})
	t.Run("silent-greeting", func(t *testing.T) {
		release := make(chan struct{})
		a := startFake(t, func(s *fakeSess) { <-release })
		defer close(release)
		a.DialTimeout = 200 * time.Millisecond
		if c, err := a.dialAppend(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dialAppend = %v, %v; want the deadline", c, err)
		}
	})
}

func TestAppendFakeRefusedBeforeSending(t *testing.T) {
	a := startFake(t, func(s *fakeSess) {
		s.login("UIDPLUS LITERAL+ APPENDLIMIT=10")
		tag, _ := s.cmd("NOOP")
		s.send(tag + " OK noop")
		s.cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	if c.caps().AppendLimit != 10 || c.caps().Multi {
		t.Errorf("caps() = %+v, want AppendLimit 10 and no Multi", c.caps())
	}
	bad := []struct {
		name  string
		items []appendItem
	}{
		{"two-without-multiappend", append(oneItem("a"), oneItem("b")...)},
		{"toobig", oneItem("eleven byte")},
		{"flag-space", []appendItem{{Flags: []imap.Flag{"a b"}, Size: 1, Body: strings.NewReader("a")}}},
		{"flag-paren", []appendItem{{Flags: []imap.Flag{`\Seen)`}, Size: 1, Body: strings.NewReader("a")}}},
		{"flag-empty", []appendItem{{Flags: []imap.Flag{`\`}, Size: 1, Body: strings.NewReader("a")}}},
		{"flag-8bit", []appendItem{{Flags: []imap.Flag{"Entwürfe"}, Size: 1, Body: strings.NewReader("a")}}},
		{"date", []appendItem{{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Size: 1, Body: strings.NewReader("a")}}},
		{"nil-body", []appendItem{{Size: 1}}},
		{"none", nil},
		{"nul-without-binary", oneItem("a\x00")},
	}
	for _, b := range bad {
		if _, _, err := c.append(context.Background(), "INBOX", b.items); err == nil {
			t.Errorf("%s: got nil error", b.name)
		}
	}
	_, _, err := c.append(context.Background(), "INBOX", oneItem("eleven byte"))
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeTooBig {
		t.Errorf("over APPENDLIMIT: got %v, want NO [TOOBIG]", err)
	}
	if err := c.noop(context.Background()); err != nil || c.closed() {
		t.Fatalf("noop after refusals = %v (closed %v)", err, c.closed())
	}
}

func TestAppendFakeBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		body io.Reader
	}{
		{"short", 10, strings.NewReader("hello")},
		{"long", 3, strings.NewReader("hello")},
		{"read-error", 10, io.MultiReader(strings.NewReader("hel"), iotestErrReader{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startFake(t, func(s *fakeSess) {
				s.login("UIDPLUS LITERAL+")
				// The client closes mid-command; reads end the script.
				io.Copy(io.Discard, s.br)
			})
			c := dialAppendT(t, a)
			_, _, err := c.append(context.Background(), "INBOX", []appendItem{{Size: tc.size, Body: tc.body}})
			var ie *imap.Error
			if err == nil || errors.As(err, &ie) || !c.closed() {
				t.Fatalf("append = %v (closed %v); want an error and a closed connection", err, c.closed())
			}
		})
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestAppendFakeLogin(t *testing.T) {
	t.Run("bye-greeting", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) { s.send("* BYE [UNAVAILABLE] service busy") })
		_, err := a.dialAppend(context.Background())
		if !isBusy(err) {
			t.Fatalf("dialAppend = %v, want a busy BYE", err)
		}
	})
	t.Run("logindisabled-authenticate-no-ir", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) {
			s.send("* OK fake")
			tag, _ := s.cmd("CAPABILITY")
			s.send("* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN MULTIAPPEND", tag+" OK done")
			tag, rest := s.cmd("AUTHENTICATE")
			if rest != "AUTHENTICATE PLAIN" {
				s.t.Errorf("fake server: %q", rest)
			}
			s.send("+ ")
			got, _ := base64.StdEncoding.DecodeString(s.line())
			if string(got) != "\x00user\x00p\"a\\ss" {
				s.t.Errorf("fake server: PLAIN response %q", got)
			}
			s.send(tag + " OK logged in") // no CAPABILITY code: the client asks
			tag, _ = s.cmd("CAPABILITY")
			s.send("* CAPABILITY IMAP4rev1 MULTIAPPEND BINARY LITERAL- UIDPLUS", tag+" OK done")
			s.cmd("LOGOUT")
		})
		c := dialAppendT(t, a)
		if got := c.caps(); !got.Multi || !got.Binary || got.LiteralPlus || !got.LiteralMinus || !got.UIDPlus {
			t.Errorf("caps() = %+v", got)
		}
	})
	t.Run("admin-sasl-ir", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) {
			s.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] fake")
			tag, rest := s.cmd("AUTHENTICATE")
			b64, _ := strings.CutPrefix(rest, "AUTHENTICATE PLAIN ")
			got, _ := base64.StdEncoding.DecodeString(b64)
			if string(got) != "user\x00boss\x00p\"a\\ss" {
				s.t.Errorf("fake server: PLAIN %q", got)
			}
			s.send(tag + " OK [CAPABILITY IMAP4rev1 MULTIAPPEND] hi")
			s.cmd("LOGOUT")
		})
		a.Admin = "boss"
		c := dialAppendT(t, a)
		if !c.caps().Multi {
			t.Errorf("caps() = %+v", c.caps())
		}
	})
	t.Run("admin-without-plain", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) { s.send("* OK [CAPABILITY IMAP4rev1] fake") })
		a.Admin = "boss"
		if _, err := a.dialAppend(context.Background()); err == nil || errors.Is(err, retry.ErrAuth) {
			t.Fatalf("dialAppend = %v, want a non-auth error", err)
		}
	})
	t.Run("literal-password", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) {
			s.send("* OK [CAPABILITY IMAP4rev1] fake")
			tag, rest := s.cmd("LOGIN")
			if rest != `LOGIN "user" {8}` {
				s.t.Errorf("fake server: %q", rest)
			}
			s.send("+ ok")
			b := make([]byte, 8)
			io.ReadFull(s.br, b)
			if string(b) != "pässwd\x7f" || s.line() != "" {
				s.t.Errorf("fake server: password %q", b)
			}
			s.send(tag + " NO [AUTHENTICATIONFAILED] nope")
		})
		a.Password = secret.New("pässwd\x7f")
		_, err := a.dialAppend(context.Background())
		if !errors.Is(err, retry.ErrAuth) {
			t.Fatalf("dialAppend = %v, want retry.ErrAuth", err)
		}
	})
	t.Run("no-in-place-of-login-literal", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) {
			s.send("* OK [CAPABILITY IMAP4rev1] fake")
			tag, _ := s.cmd("LOGIN")
			s.send(tag + " NO [UNAVAILABLE] try later")
		})
		a.Password = secret.New("pässwd")
		_, err := a.dialAppend(context.Background())
		var ie *imap.Error
		if err == nil || errors.Is(err, retry.ErrAuth) || !errors.As(err, &ie) || ie.Code != imap.ResponseCodeUnavailable {
			t.Fatalf("dialAppend = %v, want NO [UNAVAILABLE] without ErrAuth", err)
		}
	})
	t.Run("starttls-not-offered", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) { s.send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake") })
		a.Security = StartTLS
		if _, err := a.dialAppend(context.Background()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("dialAppend = %v, want a STARTTLS error", err)
		}
	})
	t.Run("starttls-injection", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) {
			s.send("* OK [CAPABILITY IMAP4rev1 STARTTLS] fake")
			tag, _ := s.cmd("STARTTLS")
			// An injected answer, sent before the handshake in one write.
			s.send(tag + " OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN")
		})
		a.Security = StartTLS
		if _, err := a.dialAppend(context.Background()); err == nil || !strings.Contains(err.Error(), "before the TLS handshake") {
			t.Fatalf("dialAppend = %v, want a refusal of data sent before the handshake", err)
		}
	})
	t.Run("garbage-greeting", func(t *testing.T) {
		a := startFake(t, func(s *fakeSess) { s.send("HTTP/1.1 400 Bad Request") })
		if _, err := a.dialAppend(context.Background()); err == nil {
			t.Fatal("dialAppend: got nil error")
		}
	})
}

// TestAppendFakeMailboxAndDate checks the command line itself.
func TestAppendFakeMailboxAndDate(t *testing.T) {
	a := startFake(t, func(s *fakeSess) {
		s.login("MULTIAPPEND BINARY LITERAL+")
		tag, parts, bodies := s.appendCmd("")
		want := []string{
			`APPEND "Entw&APw-rfe/&ZeVnLA-/\"q\\" (\Seen $Forwarded) " 5-Mar-2024 07:08:09 +0530" {1+}`,
			` "31-Dec-1999 23:59:59 -0800" ~{2+}`,
			` {1+}`,
			``,
		}
		if diff := cmp.Diff(want, parts); diff != "" {
			s.t.Errorf("fake server: APPEND (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]byte{[]byte("a"), []byte("b\x00"), []byte("c")}, bodies); diff != "" {
			s.t.Errorf("fake server: literals (-want +got):\n%s", diff)
		}
		s.send(tag + " OK done")
		s.cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	items := []appendItem{
		{Flags: []imap.Flag{imap.FlagSeen, "$Forwarded"}, Time: time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("IST", 5*3600+1800)), Size: 1, Body: strings.NewReader("a")},
		{Time: time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("PST", -8*3600)), Size: 2, Body: strings.NewReader("b\x00")},
		{Size: 1, Body: strings.NewReader("c")},
	}
	if _, uids, err := c.append(context.Background(), `Entwürfe/日本/"q\`, items); err != nil || uids != nil {
		t.Fatalf("append = %v, %v; want nil uids (no APPENDUID), nil", uids, err)
	}
}

// TestAppendBench measures the append paths into a fresh Dovecot per run:
// go-imap single APPENDs pipelined 4 deep against appendConn with
// MULTIAPPEND batches of 1, 16 and 64 messages. It runs only when
// ZXMIGRATE_APPENDBENCH is set (to the number of messages, "1" meaning
// 2000) and prints, per variant, the medians of ZXMIGRATE_APPENDBENCH_RUNS
// runs (default 3) of the client's CPU (this process, getrusage) and the
// Dovecot's (its master and reaped children, /proc/PID/stat). Run it
// without -race:
//
//	ZXMIGRATE_APPENDBENCH=1 go test -run TestAppendBench -v -timeout 30m ./imapcopy/
func TestAppendBench(t *testing.T) {
	env := os.Getenv("ZXMIGRATE_APPENDBENCH")
	if env == "" {
		t.Skip("set ZXMIGRATE_APPENDBENCH=1 (or a message count) to run")
	}
	n, _ := strconv.Atoi(env)
	if n <= 1 {
		n = 2000
	}
	runs := 3
	if r, err := strconv.Atoi(os.Getenv("ZXMIGRATE_APPENDBENCH_RUNS")); err == nil && r > 0 {
		runs = r
	}
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Seed: 3, Messages: n, Events: -1, Contacts: -1})
	msgs := acc.Mail.Messages
	if len(msgs) > n {
		msgs = msgs[:n]
	}
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Raw))
	}
	t.Logf("corpus: %d messages, %.1f MB, mean %.1f KB", len(msgs), float64(total)/1e6, float64(total)/1e3/float64(len(msgs)))

	type variant struct {
		name string
		run  func(t *testing.T, d *testserver.Dovecot) error
	}
	flagsOf := func(m corpus.Message) []imap.Flag {
		var out []imap.Flag
		for _, f := range m.Flags {
			if !strings.EqualFold(f, `\Recent`) {
				out = append(out, imap.Flag(f))
			}
		}
		return out
	}
	goimap := func(t *testing.T, d *testserver.Dovecot) error {
		cl, err := d.Dial(testserver.DefaultUser)
		if err != nil {
			return err
		}
		defer cl.Close()
		var inflight []*imapclient.AppendCommand
		for _, m := range msgs {
			cmd := cl.Append("INBOX", int64(len(m.Raw)), &imap.AppendOptions{Flags: flagsOf(m), Time: m.InternalDate})
			if _, err := cmd.Write(m.Raw); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			inflight = append(inflight, cmd)
			if len(inflight) >= 4 {
				if _, err := inflight[0].Wait(); err != nil {
					return err
				}
				inflight = inflight[1:]
			}
		}
		for _, cmd := range inflight {
			if _, err := cmd.Wait(); err != nil {
				return err
			}
		}
		return cl.Logout().Wait()
	}
	raw := func(batch int) func(t *testing.T, d *testserver.Dovecot) error {
		return func(t *testing.T, d *testserver.Dovecot) error {
			c, err := dovecotAccount(t, d, false, Plaintext).dialAppend(context.Background())
			if err != nil {
				return err
			}
			defer c.close()
			items := make([]appendItem, 0, batch)
			for start := 0; start < len(msgs); start += batch {
				items = items[:0]
				for _, m := range msgs[start:min(start+batch, len(msgs))] {
					items = append(items, appendItem{Flags: flagsOf(m), Time: m.InternalDate, Size: int64(len(m.Raw)), Body: bytes.NewReader(m.Raw)})
				}
				if _, uids, err := c.append(context.Background(), "INBOX", items); err != nil || len(uids) != len(items) {
					return fmt.Errorf("append at %d: %d uids, %w", start, len(uids), err)
				}
			}
			return c.close()
		}
	}
	variants := []variant{
		{"go-imap, 1 per APPEND, 4 in flight", goimap},
		{"appendConn, batches of 1", raw(1)},
		{"appendConn, batches of 16", raw(16)},
		{"appendConn, batches of 64", raw(64)},
	}
	type sample struct{ wall, client, server time.Duration }
	results := make([][]sample, len(variants))
	for r := range runs {
		for vi, v := range variants {
			d, err := testserver.NewDovecot(context.Background(), testserver.DovecotOptions{Name: "appendbench"})
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			srv0 := procCPU(t, d.PID())
			cli0 := selfCPU()
			t0 := time.Now()
			err = v.run(t, d)
			wall := time.Since(t0)
			cli := selfCPU() - cli0
			waitNoChild(d.PID(), "imap")
			srv := procCPU(t, d.PID()) - srv0
			got := fetchCount(t, d)
			d.Close()
			if err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			if got != len(msgs) {
				t.Fatalf("%s: %d messages stored, want %d", v.name, got, len(msgs))
			}
			results[vi] = append(results[vi], sample{wall, cli, srv})
			t.Logf("run %d %-36s wall %6.2fs client %6.2fs dovecot %6.2fs", r+1, v.name, wall.Seconds(), cli.Seconds(), srv.Seconds())
		}
	}
	med := func(s []sample, f func(sample) time.Duration) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i]).Seconds()
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| variant (%d msgs, %.0f MB) | client CPU s | Dovecot CPU s | total CPU s | wall s |\n|---|---|---|---|---|\n", len(msgs), float64(total)/1e6)
	for vi, v := range variants {
		c, s, w := med(results[vi], func(x sample) time.Duration { return x.client }), med(results[vi], func(x sample) time.Duration { return x.server }), med(results[vi], func(x sample) time.Duration { return x.wall })
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f |\n", v.name, c, s, c+s, w)
	}
	t.Log(b.String())
}

// fetchCount returns the number of messages in user1's INBOX.
func fetchCount(t *testing.T, d *testserver.Dovecot) int {
	cl, err := d.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sd, err := cl.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return int(sd.NumMessages)
}

// selfCPU returns this process's user+sys time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns utime+stime+cutime+cstime of pid.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var sum time.Duration
	for _, i := range []int{11, 12, 13, 14} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		sum += time.Duration(n) * 10 * time.Millisecond
	}
	return sum
}

// waitNoChild waits (up to 10 s) until pid has no child process named
// comm: its CPU time is then in pid's cutime and cstime.
func waitNoChild(pid int, comm string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		found := false
		for _, k := range strings.Fields(string(kids)) {
			if c, _ := os.ReadFile("/proc/" + k + "/comm"); strings.TrimSpace(string(c)) == comm {
				found = true
			}
		}
		if !found {
			return
		}
	}
}

func TestAppendParseCaps(t *testing.T) {
	for _, tc := range []struct {
		list string
		want appendCaps
	}{
		{"IMAP4rev1 LITERAL+ MULTIAPPEND BINARY UIDPLUS APPENDLIMIT=35651584", appendCaps{Multi: true, LiteralPlus: true, LiteralMinus: true, Binary: true, UIDPlus: true, AppendLimit: 35651584}},
		{"imap4rev1 literal- multiappend", appendCaps{Multi: true, LiteralMinus: true}},
		{"IMAP4rev2 APPENDLIMIT", appendCaps{LiteralMinus: true, UIDPlus: true}},
		{"IMAP4rev1 APPENDLIMIT=x APPENDLIMIT=-5", appendCaps{}},
	} {
		if got := parseCaps(strings.Fields(tc.list)).appendCaps; got != tc.want {
			t.Errorf("parseCaps(%q) = %+v, want %+v", tc.list, got, tc.want)
		}
	}
}

func TestAppendExpandUIDSet(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want int
		uids []imap.UID
	}{
		{"5:9,12", 6, []imap.UID{5, 6, 7, 8, 9, 12}},
		{"7", 1, []imap.UID{7}},
		{"3:1", 3, []imap.UID{1, 2, 3}},
		{"5:9,12", 5, nil},
		{"5:9,12", 7, nil},
		{"0", 1, nil},
		{"1:*", 2, nil},
		{"1,,2", 2, nil},
		{"", 0, nil},
		{"4294967295", 1, []imap.UID{4294967295}},
		{"4294967296", 1, nil},
		{"1:4294967295", 3, nil},
	} {
		if got := expandUIDSet(tc.set, tc.want); !slices.Equal(got, tc.uids) {
			t.Errorf("expandUIDSet(%q, %d) = %v, want %v", tc.set, tc.want, got, tc.uids)
		}
	}
}

// TestAppendFakeNoForSecondLiteral: in a synchronising MULTIAPPEND the
// server refuses the second message in place of its '+': no byte of it is
// sent and the connection goes on.
func TestAppendFakeNoForSecondLiteral(t *testing.T) {
	a := startFake(t, func(s *fakeSess) {
		s.login("MULTIAPPEND UIDPLUS")
		l := s.line()
		tag, _, _ := strings.Cut(l, " ")
		if !strings.HasSuffix(l, " {5}") {
			s.t.Errorf("fake server: %q", l)
		}
		s.send("+ go")
		b := make([]byte, 5)
		io.ReadFull(s.br, b)
		if l := s.line(); l != " (\\Seen) {6}" || string(b) != "first" {
			s.t.Errorf("fake server: %q then %q", b, l)
		}
		s.send(tag + " NO [OVERQUOTA] quota exceeded")
		tag, rest := s.cmd("NOOP") // not "second"
		if rest != "NOOP" {
			s.t.Errorf("fake server: %q", rest)
		}
		s.send(tag + " OK noop")
		s.cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	items := []appendItem{
		{Size: 5, Body: strings.NewReader("first")},
		{Flags: []imap.Flag{imap.FlagSeen}, Size: 6, Body: strings.NewReader("second")},
	}
	_, _, err := c.append(context.Background(), "INBOX", items)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeOverQuota || c.closed() {
		t.Fatalf("append = %v (closed %v), want NO [OVERQUOTA] on an open connection", err, c.closed())
	}
	if err := c.noop(context.Background()); err != nil {
		t.Fatalf("noop: %v", err)
	}
}
