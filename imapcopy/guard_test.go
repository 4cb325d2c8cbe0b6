package imapcopy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/zxmigrate/zxmigrate/internal/imapscript"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

func TestLiteralTail(t *testing.T) {
	for _, tc := range []struct {
		in       string
		n        int64
		sync, ok bool
	}{
		{"* 1 FETCH (BODY[] {5}", 5, true, true},
		{"* 1 FETCH (BODY[] {5}\r", 5, true, true},
		{"A1 APPEND x {12+}", 12, false, true},
		{"A1 APPEND x ~{3}", 3, true, true},
		{"{0}", 0, true, true},
		{"* OK text", 0, false, false},
		{"* OK {}", 0, false, false},
		{"* OK {a}", 0, false, false},
		{"}", 0, false, false},
		{"{99999999999999999999999}", 1 << 62, true, true},
	} {
		n, sync, ok := literalTail([]byte(tc.in))
		if n != tc.n || sync != tc.sync || ok != tc.ok {
			t.Errorf("literalTail(%q) = %d, %v, %v; want %d, %v, %v", tc.in, n, sync, ok, tc.n, tc.sync, tc.ok)
		}
	}
}

// guardReadAll reads g to its end and returns what came and the error.
func guardReadAll(g *guardConn) (string, error) {
	var sb strings.Builder
	buf := make([]byte, 100)
	for {
		n, err := g.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return sb.String(), err
		}
	}
}

func TestGuardLimits(t *testing.T) {
	body := strings.Repeat("b", 5000)
	for _, tc := range []struct {
		name   string
		in     string
		armed  int64
		what   string // "" means no limit hit
		passed int    // bytes handed out at most
	}{
		{"short lines", "* OK ready\r\n* 2 EXISTS\r\n", 0, "", 0},
		{"long line", "* OK " + strings.Repeat("a", 5000) + "\r\n", 0, "line", 1024},
		{"long line, no CRLF", "* LIST () \"/\" \"" + strings.Repeat("a", 5000), 0, "line", 1024},
		{"literal over the cap", "* LIST () \"/\" {5000}\r\n" + body + "\r\n", 0, "literal", 1024 + 30},
		{"body literal within the armed cap", "* 1 FETCH (BODY[] {5000}\r\n" + body + ")\r\n", 6000, "", 0},
		{"body literal over the armed cap", "* 1 FETCH (BODY[] {5000}\r\n" + body + ")\r\n", 4000, "literal", 4000 + 30},
		{"a literal's bytes are not a line", "* 1 FETCH (BODY[] {3000}\r\n" + strings.Repeat("c", 3000) + ")\r\n", 4000, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuard(newScriptConn([]byte(tc.in)), 0, 1024, 1024)
			g.armBodies(tc.armed)
			got, err := guardReadAll(g)
			var le *LimitError
			switch {
			case tc.what == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.what == "" && got != tc.in:
				t.Fatalf("handed out %d of %d bytes", len(got), len(tc.in))
			case tc.what != "" && !errors.As(err, &le):
				t.Fatalf("error %v, want a %s LimitError", err, tc.what)
			case tc.what != "" && le.What != tc.what:
				t.Fatalf("limit %q hit, want %q", le.What, tc.what)
			case tc.what != "" && len(got) > tc.passed:
				t.Fatalf("handed out %d bytes before the error, want at most %d", len(got), tc.passed)
			}
		})
	}
}

// TestGuardIdle: a silent server times out only while an answer is due; an
// idle pooled connection lives on. The bounds are generous multiples of
// the idle timeout.
func TestGuardIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			srv <- c
		}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-srv
	defer sc.Close()
	const idle = 300 * time.Millisecond
	g := newGuard(cc, idle, 0, 0)
	defer g.Close()
	if _, err := sc.Write([]byte("* OK ready\r\n")); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := g.Read(buf); err != nil {
				read <- err
				return
			}
		}
	}()
	// Nothing is due: the connection stays open well past the timeout.
	select {
	case err := <-read:
		t.Fatalf("an idle connection with nothing due ended: %v", err)
	case <-time.After(4 * idle):
	}
	// A command is sent and the server says nothing: it times out.
	if _, err := g.Write([]byte("T1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		var ie *IdleTimeoutError
		if !errors.As(err, &ie) {
			t.Fatalf("error %v, want an IdleTimeoutError", err)
		}
	case <-time.After(30 * idle):
		t.Fatal("no idle timeout while an answer was due")
	}
}

// Account.Dial runs STARTTLS itself (under the guard's limits) and hands
// go-imap the TLS connection: it works against Dovecot, refuses data sent
// before the handshake and a server without STARTTLS.
func TestDialStartTLS(t *testing.T) {
	d := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "starttls", TLS: true})
	for _, admin := range []bool{false, true} {
		a := dovecotAccount(t, d, admin, StartTLS)
		c, err := a.Dial(context.Background())
		if err != nil {
			t.Fatalf("Dial (admin %v): %v", admin, err)
		}
		if _, err := c.List("", "*", nil).Collect(); err != nil {
			t.Errorf("LIST over STARTTLS: %v", err)
		}
		if !c.Caps().Has(imap.CapIMAP4rev1) {
			t.Errorf("capabilities over TLS: %v", c.Caps())
		}
		c.Close()
	}
	t.Run("injection", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK [CAPABILITY IMAP4rev1 STARTTLS] fake")
			tag, _ := s.Cmd("STARTTLS")
			s.Send(tag + " OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN")
		})
		a.Security = StartTLS
		if _, err := a.Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "before the TLS handshake") {
			t.Fatalf("Dial = %v, want a refusal of data sent before the handshake", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) {
			s.Send("* OK [CAPABILITY IMAP4rev1] fake")
			tag, _ := s.Cmd("STARTTLS")
			s.Send(tag + " BAD no TLS here")
		})
		a.Security = StartTLS
		if _, err := a.Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "refused STARTTLS") {
			t.Fatalf("Dial = %v, want STARTTLS refused", err)
		}
	})
	t.Run("busy", func(t *testing.T) {
		a := startFake(t, func(s *imapscript.Session) { s.Send("* BYE [UNAVAILABLE] service busy") })
		a.Security = StartTLS
		if _, err := a.Dial(context.Background()); !isBusy(err) {
			t.Fatalf("Dial = %v, want a BYE greeting (busy)", err)
		}
	})
}

// startFake runs script for one connection (package imapscript) and
// returns a plaintext Account for it (user "user", password p"a\ss).
func startFake(t *testing.T, script func(s *imapscript.Session)) *Account {
	t.Helper()
	addr := imapscript.Start(t, script)
	return &Account{Addr: addr, Security: Plaintext, User: "user", Password: secret.New(`p"a\ss`), DialTimeout: 5 * time.Second}
}
