package faultproxy

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedIMAP is a fake IMAP server that answers every command OK at
// once, except AUTHENTICATE without an initial response (a "+" first) and
// the tags the test gates, and records the command lines it receives.
type scriptedIMAP struct {
	ln      net.Listener
	mu      sync.Mutex
	arrived []string                 // command lines, in arrival order
	gates   map[string]chan struct{} // tag → closed when it may be answered
}

func startScripted(t *testing.T) *scriptedIMAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedIMAP{ln: ln, gates: map[string]chan struct{}{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *scriptedIMAP) gate(tag string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.gates[tag] = ch
	return ch
}

func (s *scriptedIMAP) serve(c net.Conn) {
	defer c.Close()
	fmt.Fprint(c, "* OK ready\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		tag, rest, _ := strings.Cut(line, " ")
		s.mu.Lock()
		s.arrived = append(s.arrived, line)
		g := s.gates[tag]
		s.mu.Unlock()
		if strings.EqualFold(rest, "AUTHENTICATE PLAIN") {
			fmt.Fprint(c, "+ \r\n")
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
		}
		if g != nil {
			<-g
		}
		if strings.Contains(strings.ToUpper(rest), "FETCH") {
			fmt.Fprintf(c, "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n")
		}
		fmt.Fprintf(c, "%s OK done\r\n", tag)
	}
}

// got reports whether a command line with this tag has arrived.
func (s *scriptedIMAP) got(tag string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.arrived {
		if strings.HasPrefix(l, tag+" ") {
			return true
		}
	}
	return false
}

// client is one raw IMAP connection to the proxy.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func newClient(t *testing.T, addr string) *client {
	c := &client{t: t, c: dial(t, addr)}
	c.br = bufio.NewReader(c.c)
	c.line() // greeting
	return c
}

func (c *client) send(s string) { fmt.Fprint(c.c, s+"\r\n") }

func (c *client) line() string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// waitTagged reads until the tagged answer of tag.
func (c *client) waitTagged(tag string) string {
	c.t.Helper()
	for {
		if l := c.line(); strings.HasPrefix(l, tag+" ") {
			return l
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestIMAPFetchPerAccount(t *testing.T) {
	srv := startScripted(t)
	p := listen(t, srv.ln.Addr().String(), Options{IMAP: ZimbraRules()})
	releaseA := srv.gate("a2")

	a := newClient(t, p.Addr())
	a.send("a1 LOGIN user1 pass1")
	a.waitTagged("a1")
	a.send("a2 UID FETCH 1:* (UID BODY.PEEK[])")
	waitFor(t, "a2 at the server", func() bool { return srv.got("a2") })

	// Same account (master login form): a FLAGS-only FETCH passes, an
	// expensive one is held.
	b := newClient(t, p.Addr())
	b.send(`b1 LOGIN "user1*admin" adminpass`)
	b.waitTagged("b1")
	b.send("b2 UID FETCH 1:* (UID FLAGS)")
	if l := b.waitTagged("b2"); !strings.Contains(l, "OK") {
		t.Fatalf("b2: %q", l)
	}
	b.send("b3 UID FETCH 1:* (RFC822.SIZE INTERNALDATE)")

	// Same account through AUTHENTICATE PLAIN with a continuation
	// (authorization identity user1): held too.
	d := newClient(t, p.Addr())
	d.send("d1 AUTHENTICATE PLAIN")
	if l := d.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("d1: %q, want a continuation", l)
	}
	d.send(base64.StdEncoding.EncodeToString([]byte("user1\x00admin\x00adminpass")))
	d.waitTagged("d1")
	d.send("d2 FETCH 1 (ENVELOPE)")

	// Another account, SASL-IR: not held.
	c := newClient(t, p.Addr())
	c.send("c1 AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00user2\x00pass2")))
	c.waitTagged("c1")
	c.send("c2 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	if l := c.waitTagged("c2"); !strings.Contains(l, "OK") {
		t.Fatalf("c2: %q", l)
	}

	waitFor(t, "two FETCHes held", func() bool { return p.Stats().FetchWaits == 2 })
	if srv.got("b3") || srv.got("d2") {
		t.Fatalf("a FETCH of user1 reached the server while another was under way")
	}
	close(releaseA)
	a.waitTagged("a2")
	// One of b3 and d2 goes now, the other after its answer: both end.
	b.waitTagged("b3")
	d.waitTagged("d2")
	if st := p.Stats(); st.FetchWaits != 2 || st.FetchWaited <= 0 {
		t.Errorf("stats %v, waited %v: want 2 FETCH waits that took time", st, st.FetchWaited)
	}
}

func TestIMAPFetchLockFreedByDroppedConnection(t *testing.T) {
	srv := startScripted(t)
	p := listen(t, srv.ln.Addr().String(), Options{IMAP: &IMAPRules{FetchPerAccount: true}})
	release := srv.gate("a2")
	a := newClient(t, p.Addr())
	a.send("a1 LOGIN user1 pass1")
	a.waitTagged("a1")
	a.send("a2 FETCH 1:* (BODY[])")
	waitFor(t, "a2 at the server", func() bool { return srv.got("a2") })
	b := newClient(t, p.Addr())
	b.send("b1 LOGIN user1 pass1")
	b.waitTagged("b1")
	b.send("b2 FETCH 1 (BODY[])")
	waitFor(t, "b2 held", func() bool { return p.Stats().FetchWaits == 1 })
	// The client holding the lock goes away; the server still finishes
	// its FETCH (Zimbra unlocks when the FETCH ends), and the lock is not
	// lost with the connection.
	a.c.Close()
	close(release)
	b.waitTagged("b2")
}

func TestExpensiveFetch(t *testing.T) {
	for args, want := range map[string]bool{
		"1:* (UID FLAGS)":                   false,
		"1:* FLAGS":                         false,
		"1:* (FLAGS UID)":                   false,
		"1:* (UID FLAGS RFC822.SIZE)":       true,
		"1:* (UID FLAGS) (CHANGEDSINCE 12)": true,
		"1:* ALL":                           true,
		"5 BODY.PEEK[]":                     true,
		"5 (BINARY.PEEK[1]<0.100>)":         true,
		"1:*":                               false,
	} {
		if got := expensiveFetch(args); got != want {
			t.Errorf("expensiveFetch(%q) = %v, want %v", args, got, want)
		}
	}
	for in, want := range map[[2]string]string{
		{"LOGIN", `user1 pass`}:            "user1",
		{"LOGIN", `"us\"er" pass`}:         `us"er`,
		{"LOGIN", `"user1*admin" x`}:       "user1",
		{"LOGIN", `{5}`}:                   "",
		{"AUTHENTICATE", "LOGIN"}:          "",
		{"AUTHENTICATE", "PLAIN AGJvYgBw"}: "bob", // "\x00bob\x00p"
	} {
		if got, _ := loginAccount(in[0], in[1]); got != want {
			t.Errorf("loginAccount(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
