package imapappend

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/imapscript"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

func oneItem(body string) []Item {
	return []Item{{Size: int64(len(body)), Body: strings.NewReader(body)}}
}

func TestAppendFakeNoInPlaceOfContinuation(t *testing.T) {
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("MULTIAPPEND UIDPLUS")
		tag, parts, _ := s.AppendCmd("NO [TOOBIG] too big")
		if want := []string{`APPEND "INBOX" (\Seen) {5}`}; !slices.Equal(parts, want) {
			s.T.Errorf("fake server: first APPEND %q, want %q", parts, want)
		}
		_ = tag
		tag, parts, bodies := s.AppendCmd("")
		if len(bodies) != 1 || string(bodies[0]) != "hello" || parts[len(parts)-1] != "" {
			s.T.Errorf("fake server: second APPEND %q %q", parts, bodies)
		}
		s.Send(tag + " OK [APPENDUID 7 42] done")
		s.Cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	_, _, err := c.Append(context.Background(), "INBOX", []Item{{Flags: []imap.Flag{imap.FlagSeen}, Size: 5, Body: strings.NewReader("world")}})
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeTooBig || ie.Text != "too big" {
		t.Fatalf("append = %v, want NO [TOOBIG] too big", err)
	}
	if c.Closed() {
		t.Fatal("closed after NO in place of '+'")
	}
	v, uids, err := c.Append(context.Background(), "INBOX", oneItem("hello"))
	if err != nil || v != 7 || !slices.Equal(uids, []imap.UID{42}) {
		t.Fatalf("second append = %d, %v, %v; want 7, [42], nil", v, uids, err)
	}
}

func TestAppendFakeResponses(t *testing.T) {
	five := func(t *testing.T) []Item {
		var items []Item
		for i := range 6 {
			items = append(items, oneItem(fmt.Sprintf("message %d", i))...)
		}
		return items
	}
	cases := []struct {
		name     string
		reply    []string // after the APPEND; "TAG" is replaced
		items    func(t *testing.T) []Item
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
			a := startFake(t, func(s *imapscript.Session) {
				s.Login("MULTIAPPEND UIDPLUS LITERAL+")
				tag, _, bodies := s.AppendCmd("")
				if len(bodies) != 6 {
					s.T.Errorf("fake server: %d literals, want 6", len(bodies))
				}
				for _, r := range tc.reply {
					s.Send(strings.ReplaceAll(r, "TAG", tag))
				}
				if !tc.closed {
					s.Cmd("LOGOUT")
				}
			})
			c := dialAppendT(t, a)
			v, uids, err := c.Append(context.Background(), "INBOX", tc.items(t))
			if (err != nil) != tc.wantErr {
				t.Fatalf("append error = %v, want error %v", err, tc.wantErr)
			}
			if v != tc.wantV || !slices.Equal(uids, tc.wantUIDs) {
				t.Errorf("append = %d, %v; want %d, %v", v, uids, tc.wantV, tc.wantUIDs)
			}
			if c.Closed() != tc.closed {
				t.Errorf("closed() = %v, want %v", c.Closed(), tc.closed)
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
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("MULTIAPPEND UIDPLUS")
		l := s.Line()
		if !strings.HasSuffix(l, "{5}") {
			s.T.Errorf("fake server: %q", l)
		}
		s.Send("* BYE shutting down")
	})
	c := dialAppendT(t, a)
	_, _, err := c.Append(context.Background(), "INBOX", oneItem("hello"))
	var ie *imap.Error
	if err == nil || errors.As(err, &ie) || !c.Closed() {
		t.Fatalf("append = %v (closed %v); want a non-IMAP error and a closed connection", err, c.Closed())
	}
}

// TestAppendFakeIdleBye: a BYE (or a close) that came while the connection
// was idle is noticed before the next command is sent, which then fails
// with ErrClosed: nothing was sent.
func TestAppendFakeIdleBye(t *testing.T) {
	for _, tc := range []struct{ name, send string }{{"bye", "* BYE autologout"}, {"eof", ""}, {"untagged-then-bye", "* 2 EXISTS\r\n* BYE autologout"}} {
		t.Run(tc.name, func(t *testing.T) {
			said := make(chan struct{})
			a := startFake(t, func(s *imapscript.Session) {
				s.Login("UIDPLUS LITERAL+")
				tag, _ := s.Cmd("NOOP")
				s.Send(tag + " OK noop")
				if tc.send != "" {
					s.Send(tc.send)
				}
				s.Conn.(*net.TCPConn).CloseWrite()
				close(said)
				// Nothing more must come: the next read sees EOF.
				if b, err := io.ReadAll(s.R); len(b) > 0 {
					s.T.Errorf("fake server: got %q (%v) after its BYE", b, err)
				}
			})
			c := dialAppendT(t, a)
			if err := c.Noop(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-said
			time.Sleep(50 * time.Millisecond) // let the bytes land
			_, _, err := c.Append(context.Background(), "INBOX", oneItem("hello"))
			if !errors.Is(err, ErrClosed) || !c.Closed() {
				t.Fatalf("append = %v (closed %v), want ErrClosed", err, c.Closed())
			}
			if retry.Classify(err) != retry.Transient {
				t.Errorf("classified %v, want transient", retry.Classify(err))
			}
		})
	}
}

// TestAppendKickedDovecot: Dovecot closes sessions it kicks (with a BYE);
// over TLS and plaintext, the next append notices before sending.
func TestAppendFakeTimeoutAndCancel(t *testing.T) {
	t.Run("silent-server", func(t *testing.T) {
		release := make(chan struct{})
		a := startFake(t, func(s *imapscript.Session) {
			s.Login("UIDPLUS LITERAL+")
			s.AppendCmd("")
			<-release
		})
		defer close(release)
		c := dialAppendT(t, a)
		c.lineTimeout, c.itemTimeout = 200*time.Millisecond, 0
		_, _, err := c.Append(context.Background(), "INBOX", oneItem("hello"))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !c.Closed() {
			t.Fatalf("append = %v (closed %v), want a timeout and a closed connection", err, c.Closed())
		}
	})
	t.Run("cancel", func(t *testing.T) {
		release := make(chan struct{})
		a := startFake(t, func(s *imapscript.Session) {
			s.Login("UIDPLUS LITERAL+")
			s.AppendCmd("")
			<-release
		})
		defer close(release)
		c := dialAppendT(t, a)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err := c.Append(ctx, "INBOX", oneItem("hello"))
		if !errors.Is(err, context.DeadlineExceeded) || !c.Closed() {
			t.Fatalf("append = %v (closed %v), want the context's error and a closed connection", err, c.Closed())
		}
	})
	t.Run("silent-greeting", func(t *testing.T) {
		release := make(chan struct{})
		a := startFake(t, func(s *imapscript.Session) { <-release })
		defer close(release)
		a.DialTimeout = 200 * time.Millisecond
		if c, err := a.dial(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dialAppend = %v, %v; want the deadline", c, err)
		}
	})
}

func TestAppendFakeRefusedBeforeSending(t *testing.T) {
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("UIDPLUS LITERAL+ APPENDLIMIT=10")
		tag, _ := s.Cmd("NOOP")
		s.Send(tag + " OK noop")
		s.Cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	if c.Caps().AppendLimit != 10 || c.Caps().Multi {
		t.Errorf("caps() = %+v, want AppendLimit 10 and no Multi", c.Caps())
	}
	bad := []struct {
		name  string
		items []Item
	}{
		{"two-without-multiappend", append(oneItem("a"), oneItem("b")...)},
		{"toobig", oneItem("eleven byte")},
		{"flag-space", []Item{{Flags: []imap.Flag{"a b"}, Size: 1, Body: strings.NewReader("a")}}},
		{"flag-paren", []Item{{Flags: []imap.Flag{`\Seen)`}, Size: 1, Body: strings.NewReader("a")}}},
		{"flag-empty", []Item{{Flags: []imap.Flag{`\`}, Size: 1, Body: strings.NewReader("a")}}},
		{"flag-8bit", []Item{{Flags: []imap.Flag{"Entwürfe"}, Size: 1, Body: strings.NewReader("a")}}},
		{"date", []Item{{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Size: 1, Body: strings.NewReader("a")}}},
		{"nil-body", []Item{{Size: 1}}},
		{"none", nil},
		{"nul-without-binary", oneItem("a\x00")},
	}
	for _, b := range bad {
		if _, _, err := c.Append(context.Background(), "INBOX", b.items); err == nil {
			t.Errorf("%s: got nil error", b.name)
		}
	}
	_, _, err := c.Append(context.Background(), "INBOX", oneItem("eleven byte"))
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeTooBig {
		t.Errorf("over APPENDLIMIT: got %v, want NO [TOOBIG]", err)
	}
	if err := c.Noop(context.Background()); err != nil || c.Closed() {
		t.Fatalf("noop after refusals = %v (closed %v)", err, c.Closed())
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
			a := startFake(t, func(s *imapscript.Session) {
				s.Login("UIDPLUS LITERAL+")
				// The client closes mid-command; reads end the script.
				io.Copy(io.Discard, s.R)
			})
			c := dialAppendT(t, a)
			_, _, err := c.Append(context.Background(), "INBOX", []Item{{Size: tc.size, Body: tc.body}})
			var ie *imap.Error
			if err == nil || errors.As(err, &ie) || !c.Closed() {
				t.Fatalf("append = %v (closed %v); want an error and a closed connection", err, c.Closed())
			}
		})
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestAppendFakeLogin(t *testing.T) {
	t.Run("bye-greeting", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) { s.Send("* BYE [UNAVAILABLE] service busy") })
		_, err := a.dial(context.Background())
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeBye {
			t.Fatalf("dialAppend = %v, want a busy BYE", err)
		}
	})
	t.Run("logindisabled-authenticate-no-ir", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK fake")
			tag, _ := s.Cmd("CAPABILITY")
			s.Send("* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN MULTIAPPEND", tag+" OK done")
			tag, rest := s.Cmd("AUTHENTICATE")
			if rest != "AUTHENTICATE PLAIN" {
				s.T.Errorf("fake server: %q", rest)
			}
			s.Send("+ ")
			got, _ := base64.StdEncoding.DecodeString(s.Line())
			if string(got) != "\x00user\x00p\"a\\ss" {
				s.T.Errorf("fake server: PLAIN response %q", got)
			}
			s.Send(tag + " OK logged in") // no CAPABILITY code: the client asks
			tag, _ = s.Cmd("CAPABILITY")
			s.Send("* CAPABILITY IMAP4rev1 MULTIAPPEND BINARY LITERAL- UIDPLUS", tag+" OK done")
			s.Cmd("LOGOUT")
		})
		c := dialAppendT(t, a)
		if got := c.Caps(); !got.Multi || !got.Binary || got.LiteralPlus || !got.LiteralMinus || !got.UIDPlus {
			t.Errorf("caps() = %+v", got)
		}
	})
	t.Run("admin-sasl-ir", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] fake")
			tag, rest := s.Cmd("AUTHENTICATE")
			b64, _ := strings.CutPrefix(rest, "AUTHENTICATE PLAIN ")
			got, _ := base64.StdEncoding.DecodeString(b64)
			if string(got) != "user\x00boss\x00p\"a\\ss" {
				s.T.Errorf("fake server: PLAIN %q", got)
			}
			s.Send(tag + " OK [CAPABILITY IMAP4rev1 MULTIAPPEND] hi")
			s.Cmd("LOGOUT")
		})
		a.Admin = "boss"
		c := dialAppendT(t, a)
		if !c.Caps().Multi {
			t.Errorf("caps() = %+v", c.Caps())
		}
	})
	t.Run("admin-without-plain", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) { s.Send("* OK [CAPABILITY IMAP4rev1] fake") })
		a.Admin = "boss"
		if _, err := a.dial(context.Background()); err == nil || errors.Is(err, retry.ErrAuth) {
			t.Fatalf("dialAppend = %v, want a non-auth error", err)
		}
	})
	t.Run("literal-password", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK [CAPABILITY IMAP4rev1] fake")
			tag, rest := s.Cmd("LOGIN")
			if rest != `LOGIN "user" {8}` {
				s.T.Errorf("fake server: %q", rest)
			}
			s.Send("+ ok")
			b := make([]byte, 8)
			io.ReadFull(s.R, b)
			if string(b) != "pässwd\x7f" || s.Line() != "" {
				s.T.Errorf("fake server: password %q", b)
			}
			s.Send(tag + " NO [AUTHENTICATIONFAILED] nope")
		})
		a.Password = secret.New("pässwd\x7f")
		_, err := a.dial(context.Background())
		if !errors.Is(err, retry.ErrAuth) {
			t.Fatalf("dialAppend = %v, want retry.ErrAuth", err)
		}
	})
	t.Run("no-in-place-of-login-literal", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK [CAPABILITY IMAP4rev1] fake")
			tag, _ := s.Cmd("LOGIN")
			s.Send(tag + " NO [UNAVAILABLE] try later")
		})
		a.Password = secret.New("pässwd")
		_, err := a.dial(context.Background())
		var ie *imap.Error
		if err == nil || errors.Is(err, retry.ErrAuth) || !errors.As(err, &ie) || ie.Code != imap.ResponseCodeUnavailable {
			t.Fatalf("dialAppend = %v, want NO [UNAVAILABLE] without ErrAuth", err)
		}
	})
	t.Run("starttls-not-offered", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) { s.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake") })
		a.Security = StartTLS
		if _, err := a.dial(context.Background()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("dialAppend = %v, want a STARTTLS error", err)
		}
	})
	t.Run("starttls-injection", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK [CAPABILITY IMAP4rev1 STARTTLS] fake")
			tag, _ := s.Cmd("STARTTLS")
			// An injected answer, sent before the handshake in one write.
			s.Send(tag + " OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN")
		})
		a.Security = StartTLS
		if _, err := a.dial(context.Background()); err == nil || !strings.Contains(err.Error(), "before the TLS handshake") {
			t.Fatalf("dialAppend = %v, want a refusal of data sent before the handshake", err)
		}
	})
	t.Run("garbage-greeting", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) { s.Send("HTTP/1.1 400 Bad Request") })
		if _, err := a.dial(context.Background()); err == nil {
			t.Fatal("dialAppend: got nil error")
		}
	})
}

// TestAppendFakeMailboxAndDate checks the command line itself.
func TestAppendFakeMailboxAndDate(t *testing.T) {
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("MULTIAPPEND BINARY LITERAL+")
		tag, parts, bodies := s.AppendCmd("")
		want := []string{
			`APPEND "Entw&APw-rfe/&ZeVnLA-/\"q\\" (\Seen $Forwarded) " 5-Mar-2024 07:08:09 +0530" {1+}`,
			` "31-Dec-1999 23:59:59 -0800" ~{2+}`,
			` {1+}`,
			``,
		}
		if diff := cmp.Diff(want, parts); diff != "" {
			s.T.Errorf("fake server: APPEND (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]byte{[]byte("a"), []byte("b\x00"), []byte("c")}, bodies); diff != "" {
			s.T.Errorf("fake server: literals (-want +got):\n%s", diff)
		}
		s.Send(tag + " OK done")
		s.Cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	items := []Item{
		{Flags: []imap.Flag{imap.FlagSeen, "$Forwarded"}, Time: time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("IST", 5*3600+1800)), Size: 1, Body: strings.NewReader("a")},
		{Time: time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("PST", -8*3600)), Size: 2, Body: strings.NewReader("b\x00")},
		{Size: 1, Body: strings.NewReader("c")},
	}
	if _, uids, err := c.Append(context.Background(), `Entwürfe/日本/"q\`, items); err != nil || uids != nil {
		t.Fatalf("append = %v, %v; want nil uids (no APPENDUID), nil", uids, err)
	}
}

func TestAppendParseCaps(t *testing.T) {
	for _, tc := range []struct {
		list string
		want Caps
	}{
		{"IMAP4rev1 LITERAL+ MULTIAPPEND BINARY UIDPLUS APPENDLIMIT=35651584", Caps{Multi: true, LiteralPlus: true, LiteralMinus: true, Binary: true, UIDPlus: true, AppendLimit: 35651584}},
		{"imap4rev1 literal- multiappend", Caps{Multi: true, LiteralMinus: true}},
		{"IMAP4rev2 APPENDLIMIT", Caps{LiteralMinus: true, UIDPlus: true}},
		{"IMAP4rev1 APPENDLIMIT=x APPENDLIMIT=-5", Caps{}},
	} {
		if got := parseCaps(strings.Fields(tc.list)).Caps; got != tc.want {
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
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("MULTIAPPEND UIDPLUS")
		l := s.Line()
		tag, _, _ := strings.Cut(l, " ")
		if !strings.HasSuffix(l, " {5}") {
			s.T.Errorf("fake server: %q", l)
		}
		s.Send("+ go")
		b := make([]byte, 5)
		io.ReadFull(s.R, b)
		if l := s.Line(); l != " (\\Seen) {6}" || string(b) != "first" {
			s.T.Errorf("fake server: %q then %q", b, l)
		}
		s.Send(tag + " NO [OVERQUOTA] quota exceeded")
		tag, rest := s.Cmd("NOOP") // not "second"
		if rest != "NOOP" {
			s.T.Errorf("fake server: %q", rest)
		}
		s.Send(tag + " OK noop")
		s.Cmd("LOGOUT")
	})
	c := dialAppendT(t, a)
	items := []Item{
		{Size: 5, Body: strings.NewReader("first")},
		{Flags: []imap.Flag{imap.FlagSeen}, Size: 6, Body: strings.NewReader("second")},
	}
	_, _, err := c.Append(context.Background(), "INBOX", items)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeOverQuota || c.Closed() {
		t.Fatalf("append = %v (closed %v), want NO [OVERQUOTA] on an open connection", err, c.Closed())
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("noop: %v", err)
	}
}

// An upload the server stops reading ends after the idle timeout per
// buffer, not after the size-based bound of a whole literal (minutes).
func TestAppendStalledUpload(t *testing.T) {
	stop := make(chan struct{})
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("LITERAL+")
		s.Line() // the APPEND line; its literal is never read
		<-stop
	})
	c, err := a.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	c.idle = 300 * time.Millisecond
	body := bytes.Repeat([]byte("x"), 32<<20) // more than the loopback socket buffers hold
	start := time.Now()
	_, _, err = c.Append(context.Background(), "INBOX", []Item{{Size: int64(len(body)), Body: bytes.NewReader(body)}})
	took := time.Since(start)
	close(stop)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("append = %v, want a write deadline error", err)
	}
	if took > 60*time.Second {
		t.Errorf("a stalled upload took %v to fail, want about the idle timeout", took)
	}
}
