package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// startMemServer starts go-imap's in-memory server with user/pass and an
// INBOX. literalPlus decides whether LITERAL+ is advertised (clients then send
// non-synchronizing literals).
func startMemServer(t *testing.T, literalPlus bool) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("user", "pass")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	caps := imap.CapSet{imap.CapIMAP4rev1: {}}
	if literalPlus {
		caps[imap.CapLiteralPlus] = struct{}{}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

func login(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("user", "pass").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func appendMsg(c *imapclient.Client, mailbox string, body []byte, flags ...imap.Flag) error {
	cmd := c.Append(mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)})
	_, werr := cmd.Write(body)
	cerr := cmd.Close()
	_, err := cmd.Wait()
	return errors.Join(err, werr, cerr)
}

func message(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: test\r\n\r\n")
	for b.Len() < n-2 {
		b.WriteString("x")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func mailboxCount(t *testing.T, c *imapclient.Client, name string) uint32 {
	t.Helper()
	st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumMessages
}

func TestIMAPRejectsZimbraTagKeyword(t *testing.T) {
	for _, lp := range []bool{true, false} {
		t.Run(fmt.Sprintf("literalPlus=%v", lp), func(t *testing.T) {
			p := listen(t, startMemServer(t, lp), Options{IMAP: ZimbraRules()})
			c := login(t, p.Addr())
			err := appendMsg(c, "INBOX", message(500), imap.FlagSeen, "TEST:FLAG211")
			var ie *imap.Error
			if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Text != "APPEND failed" {
				t.Fatalf("APPEND with a tag keyword: %v, want NO APPEND failed", err)
			}
			// The connection survives and a clean APPEND goes through.
			if err := appendMsg(c, "INBOX", message(500), imap.FlagSeen, "$Forwarded"); err != nil {
				t.Fatalf("clean APPEND after a refused one: %v", err)
			}
			if n := mailboxCount(t, c, "INBOX"); n != 1 {
				t.Errorf("INBOX holds %d messages, want 1", n)
			}
			if st := p.Stats(); st.Rejected != 1 {
				t.Errorf("rejected = %d, want 1", st.Rejected)
			}
		})
	}
}

func TestIMAPMaxLiteral(t *testing.T) {
	for _, lp := range []bool{true, false} {
		t.Run(fmt.Sprintf("literalPlus=%v", lp), func(t *testing.T) {
			p := listen(t, startMemServer(t, lp), Options{IMAP: &IMAPRules{MaxLiteral: 4096}})
			c := login(t, p.Addr())
			if err := appendMsg(c, "INBOX", message(4096)); err != nil {
				t.Fatalf("APPEND of exactly the limit: %v", err)
			}
			err := appendMsg(c, "INBOX", message(4097))
			var ie *imap.Error
			if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || !strings.Contains(ie.Text, "maximum message size exceeded") {
				t.Fatalf("APPEND one byte over: %v, want NO maximum message size exceeded", err)
			}
			// go-imap closes its connection after a synchronizing literal
			// is refused, so count on a new one.
			if n := mailboxCount(t, login(t, p.Addr()), "INBOX"); n != 1 {
				t.Errorf("INBOX holds %d messages, want 1", n)
			}
		})
	}
}

func TestIMAPThrottleRepeatedCreate(t *testing.T) {
	p := listen(t, startMemServer(t, true), Options{IMAP: ZimbraRules()})
	c := login(t, p.Addr())
	for i := range ZimbraRepeatLimit {
		if err := c.Create(fmt.Sprintf("F%d", i), nil).Wait(); err != nil {
			t.Fatalf("CREATE %d: %v", i+1, err)
		}
	}
	// go-imap drops an untagged BYE and reports the close that follows.
	if err := c.Create("one-too-many", nil).Wait(); err == nil {
		t.Fatalf("CREATE %d went through", ZimbraRepeatLimit+1)
	}
	if st := p.Stats(); st.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", st.Dropped)
	}
}

func TestIMAPThrottleBrokenByOtherCommand(t *testing.T) {
	p := listen(t, startMemServer(t, true), Options{IMAP: ZimbraRules()})
	c := login(t, p.Addr())
	for i := range 3 * ZimbraRepeatLimit {
		if i%20 == 19 {
			if err := c.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Create(fmt.Sprintf("F%d", i), nil).Wait(); err != nil {
			t.Fatalf("CREATE %d with a NOOP every 20: %v", i+1, err)
		}
	}
	// Different arguments do not count for other commands.
	for i := range 2 * ZimbraRepeatLimit {
		if _, err := c.Status(fmt.Sprintf("F%d", i), &imap.StatusOptions{NumMessages: true}).Wait(); err != nil {
			t.Fatalf("STATUS %d: %v", i, err)
		}
	}
	// Identical ones do.
	var err error
	for range ZimbraRepeatLimit + 1 {
		if _, err = c.Status("F1", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatalf("%d identical STATUS commands went through", ZimbraRepeatLimit+1)
	}
}

// TestIMAPFetchIntact checks that responses with literals cross the IMAP
// mode byte for byte, large ones included.
func TestIMAPFetchIntact(t *testing.T) {
	p := listen(t, startMemServer(t, true), Options{IMAP: ZimbraRules()})
	c := login(t, p.Addr())
	want := [][]byte{message(10), message(70_000), message(3 << 20)}
	for _, m := range want {
		if err := appendMsg(c, "INBOX", m, imap.FlagSeen); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(want) {
		t.Fatalf("fetched %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if got := m.FindBodySection(&imap.FetchItemBodySection{}); !bytes.Equal(got, want[i]) {
			t.Errorf("message %d: %d bytes back, want %d identical", i+1, len(got), len(want[i]))
		}
	}
}

// TestIMAPResetMidAppendLiteral cuts the connection inside an APPEND
// literal: the server must not store a truncated message.
func TestIMAPResetMidAppendLiteral(t *testing.T) {
	addr := startMemServer(t, true)
	p := listen(t, addr, Options{IMAP: ZimbraRules(), Schedule: Fixed{0: {{Kind: Reset, Dir: ToServer, Offset: 30_000}}}})
	c := login(t, p.Addr())
	if err := appendMsg(c, "INBOX", message(100_000)); err == nil {
		t.Fatal("APPEND cut mid-literal reported success")
	}
	c2 := login(t, p.Addr())
	if n := mailboxCount(t, c2, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages after a cut APPEND, want 0", n)
	}
	if st := p.Stats(); st.Resets != 1 {
		t.Errorf("resets = %d, want 1", st.Resets)
	}
}

func TestIMAPBusyGreeting(t *testing.T) {
	p := listen(t, startMemServer(t, true), Options{IMAP: ZimbraRules(), MaxConns: 1})
	login(t, p.Addr())
	c, err := imapclient.DialInsecure(p.Addr(), nil)
	if err == nil {
		defer c.Close()
		err = c.Login("user", "pass").Wait()
	}
	if err == nil {
		t.Fatal("second connection over the cap logged in")
	}
	if st := p.Stats(); st.Busy != 1 {
		t.Errorf("busy = %d, want 1", st.Busy)
	}
}

// TestIMAPMaxConsecutiveErrors follows Zimbra's imap_max_consecutive_error:
// the answer that makes 5 errors in a row is delivered, then the connection
// is dropped with a BYE; a tagged OK in between starts the count again.
func TestIMAPMaxConsecutiveErrors(t *testing.T) {
	p := listen(t, startMemServer(t, true), Options{IMAP: ZimbraRules()})
	c := login(t, p.Addr())
	selectMissing := func(i int) error {
		_, err := c.Select(fmt.Sprintf("missing-%d", i), nil).Wait()
		return err
	}
	for round := range 3 {
		for i := range ZimbraMaxConsecutiveErrors - 1 {
			var ie *imap.Error
			if err := selectMissing(i); !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
				t.Fatalf("round %d: SELECT of a missing mailbox %d: %v, want a NO", round, i, err)
			}
		}
		if err := c.Noop().Wait(); err != nil {
			t.Fatalf("round %d: NOOP after %d errors in a row: %v", round, ZimbraMaxConsecutiveErrors-1, err)
		}
	}
	if st := p.Stats(); st.ErrorDrops != 0 {
		t.Fatalf("error drops = %d before the limit, want 0", st.ErrorDrops)
	}
	for i := range ZimbraMaxConsecutiveErrors {
		var ie *imap.Error
		if err := selectMissing(i); !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
			t.Fatalf("SELECT of a missing mailbox %d: %v, want its NO delivered", i, err)
		}
	}
	if err := c.Noop().Wait(); err == nil {
		t.Fatalf("NOOP after %d errors in a row went through, want the connection dropped", ZimbraMaxConsecutiveErrors)
	}
	if st := p.Stats(); st.ErrorDrops != 1 {
		t.Errorf("error drops = %d, want 1", st.ErrorDrops)
	}
}

// TestIMAPMaxConsecutiveErrorsCountsRuleAnswers checks that refusals made
// by the rules themselves (oversize APPENDs) count like the server's.
func TestIMAPMaxConsecutiveErrorsCountsRuleAnswers(t *testing.T) {
	p := listen(t, startMemServer(t, true), Options{IMAP: &IMAPRules{MaxLiteral: 1000, MaxConsecutiveErrors: 3}})
	c := login(t, p.Addr())
	for i := range 2 {
		if err := appendMsg(c, "INBOX", message(2000)); err == nil {
			t.Fatalf("oversize APPEND %d went through", i)
		}
	}
	if err := appendMsg(c, "INBOX", message(500)); err != nil {
		t.Fatalf("APPEND after 2 refusals: %v", err)
	}
	for i := range 3 {
		if err := appendMsg(c, "INBOX", message(2000)); err == nil {
			t.Fatalf("oversize APPEND %d went through", i)
		}
	}
	if err := c.Noop().Wait(); err == nil {
		t.Fatal("NOOP after 3 refused APPENDs in a row went through, want the connection dropped")
	}
	st := p.Stats()
	if st.ErrorDrops != 1 || st.Rejected != 5 {
		t.Errorf("error drops = %d, rejected = %d; want 1 and 5", st.ErrorDrops, st.Rejected)
	}
	if n := mailboxCount(t, login(t, p.Addr()), "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d messages, want 1", n)
	}
}

func TestClassifyAnswer(t *testing.T) {
	for _, tc := range []struct {
		line string
		want answerKind
	}{
		{"A1 OK done\r\n", answerOK},
		{"a1 ok\r\n", answerOK},
		{"A1 NO [TRYCREATE] no such mailbox\r\n", answerError},
		{"A1 BAD parse error\r\n", answerError},
		{"* BAD unknown command\r\n", answerError},
		{"* NO [ALERT] quota\r\n", answerOther},
		{"* OK [UIDVALIDITY 1]\r\n", answerOther},
		{"* 3 FETCH (FLAGS (\\Seen))\r\n", answerOther},
		{"+ ready\r\n", answerOther},
		{"A1 NOOP\r\n", answerOther},
		{"A1\r\n", answerOther},
		{"\r\n", answerOther},
	} {
		if got := classifyAnswer([]byte(tc.line)); got != tc.want {
			t.Errorf("classifyAnswer(%q) = %d, want %d", tc.line, got, tc.want)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	for _, tc := range []struct {
		line string
		n    int64
		sync bool
	}{
		{"A1 APPEND INBOX {12}\r\n", 12, true},
		{"A1 APPEND INBOX {12+}\r\n", 12, false},
		{"* 1 FETCH (BODY[] ~{5}\r\n", 5, true},
		{"A1 NOOP\r\n", -1, false},
		{"A1 X {abc}\r\n", -1, false},
		{"}\r\n", -1, false},
		{"{-1}\r\n", -1, false},
	} {
		if n, sync := literalAt([]byte(tc.line)); n != tc.n || (n >= 0 && sync != tc.sync) {
			t.Errorf("literalAt(%q) = %d, %v; want %d, %v", tc.line, n, sync, tc.n, tc.sync)
		}
	}
	r := &IMAPRules{MaxLiteral: 10}
	for _, tc := range []struct{ args, want string }{
		{`INBOX (\Seen A:B) {5}`, "APPEND failed"},
		{`"My \"box\" (x)" (\Seen) {5}`, ""},
		{`"My box" (X:1) {5}`, "APPEND failed"},
		{`INBOX {11}`, "maximum message size exceeded"},
		{`{5}`, ""},
		{`"unterminated (A:B) {5}`, ""},
	} {
		if got := r.appendVerdict(tc.args, []byte("A APPEND "+tc.args+"\r\n")); got != tc.want {
			t.Errorf("appendVerdict(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func FuzzIMAPParse(f *testing.F) {
	for _, s := range []string{"A1 APPEND INBOX (\\Seen) {12+}\r\n", "A UID FETCH 1:* (FLAGS)\r\n", "{99999999999999999999}\r\n", "\"\\"} {
		f.Add(s)
	}
	f.Add("A2 APPEND INBOX (\\Seen) {3+}\r\nabc (X:1) ~{2+}\r\nx\x00\r\n")
	r := ZimbraRules()
	f.Fuzz(func(t *testing.T, s string) {
		literalAt([]byte(s))
		classifyAnswer([]byte(s))
		if _, name, args, ok := parseCommand([]byte(s)); ok {
			r.appendVerdict(args, []byte(s))
			if name == "APPEND" {
				// The whole command as the proxy reads it: the input's first
				// line, then the rest as literals and continuation lines.
				br := bufio.NewReader(strings.NewReader(s))
				if line, err := readLine(br); err == nil {
					whole, text, _, err := r.readAppend(br, args, line, io.Discard)
					if err == nil && whole != nil && text == "" && !strings.HasPrefix(s, string(whole)) {
						t.Fatalf("readAppend returned %q, not a prefix of the input", whole)
					}
				}
			}
		}
	})
}

// TestReadAppendMulti checks that a MULTIAPPEND with non-synchronizing
// literals is checked message by message: a refused message anywhere refuses
// the whole command (nothing reaches the server), a clean one is forwarded
// byte for byte.
func TestReadAppendMulti(t *testing.T) {
	r := &IMAPRules{MaxLiteral: 8}
	msg := func(flags, body string) string {
		return fmt.Sprintf(" (%s) \"01-Jan-2024 10:00:00 +0100\" {%d+}\r\n%s", flags, len(body), body)
	}
	for _, tc := range []struct {
		name, rest, want string
	}{
		{"clean", msg(`\Seen`, "one") + msg("", "two") + msg("$Label1", "three") + "\r\n", ""},
		{"tag on the second", msg(`\Seen`, "one") + msg("Work:FLAG211", "two") + msg("", "three") + "\r\n", "APPEND failed"},
		{"oversize third", msg(`\Seen`, "one") + msg("", "two") + msg("", "123456789") + "\r\n", "maximum message size exceeded"},
		{"tag on the first", msg("A:B", "one") + msg("", "two") + "\r\n", "APPEND failed"},
		{"binary literal", " () ~{3+}\r\na\x00b" + msg("", "x") + "\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := "A7 APPEND INBOX" + tc.rest
			after := "A8 NOOP\r\n"
			br := bufio.NewReader(strings.NewReader(cmd + after))
			first, err := readLine(br)
			if err != nil {
				t.Fatal(err)
			}
			_, _, args, _ := parseCommand(first)
			var server bytes.Buffer
			whole, text, msgs, err := r.readAppend(br, args, first, &server)
			if err != nil {
				t.Fatal(err)
			}
			if text != tc.want {
				t.Errorf("verdict %q, want %q", text, tc.want)
			}
			if server.Len() != 0 {
				t.Errorf("%d bytes reached the server before the verdict", server.Len())
			}
			if want := strings.Count(cmd, "+}"); msgs != want {
				t.Errorf("counted %d messages, want %d", msgs, want)
			}
			if tc.want == "" && string(whole) != cmd {
				t.Errorf("forwarded %q, want %q", whole, cmd)
			}
			// The whole command was consumed: the next one is intact.
			if next, _ := readLine(br); string(next) != after {
				t.Errorf("next command read as %q, want %q", next, after)
			}
		})
	}
}

// TestIMAPCutAnswer: a command CutAnswer picks reaches the server, which
// does it; its answer never reaches the client, whose connection closes.
func TestIMAPCutAnswer(t *testing.T) {
	addr := startMemServer(t, true)
	p := listen(t, addr, Options{IMAP: &IMAPRules{CutAnswer: func(name, args string) bool { return name == "CREATE" && strings.Contains(args, "Cut") }}})
	c := login(t, p.Addr())
	if err := c.Create("Kept", nil).Wait(); err != nil {
		t.Fatalf("CREATE Kept: %v", err)
	}
	if err := c.Create("Cut", nil).Wait(); err == nil {
		t.Fatal("CREATE Cut was answered")
	}
	if st := p.Stats(); st.Cuts != 1 {
		t.Errorf("cuts = %d, want 1", st.Cuts)
	}
	direct := login(t, addr)
	boxes, err := direct.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "Cut") || !strings.Contains(got, "Kept") {
		t.Errorf("server holds %s; want Cut and Kept: the cut command was done", got)
	}
}
