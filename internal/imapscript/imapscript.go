// Package imapscript runs scripted IMAP servers for tests: each reads
// the client's lines and answers what the test wrote, so that a test can
// send what no real server sends (a NO in place of a continuation, a BYE in
// the middle of a command, an unknown tag).
package imapscript

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Session is one connection to a scripted server.
type Session struct {
	// T is the test the server runs for.
	T *testing.T
	// Conn is the accepted connection.
	Conn net.Conn
	// R reads from Conn; read through it only.
	R *bufio.Reader
}

// Start runs script for one connection on a loopback listener and returns
// the listener's address. The test waits for the script at cleanup; a
// script ends early (runtime.Goexit) on the first read or write error.
func Start(t *testing.T, script func(s *Session)) string {
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
		script(&Session{T: t, Conn: conn, R: bufio.NewReader(conn)})
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// Send writes lines, each followed by CRLF.
func (s *Session) Send(lines ...string) {
	for _, l := range lines {
		if _, err := io.WriteString(s.Conn, l+"\r\n"); err != nil {
			s.T.Errorf("fake server: write: %v", err)
			runtime.Goexit()
		}
	}
}

// Line reads one line without CRLF; it ends the script on error.
func (s *Session) Line() string {
	l, err := s.R.ReadString('\n')
	if err != nil {
		s.T.Errorf("fake server: read: %v", err)
		runtime.Goexit()
	}
	return strings.TrimSuffix(l, "\r\n")
}

// Cmd reads a command line and returns its tag and the rest.
func (s *Session) Cmd(want string) (tag, rest string) {
	l := s.Line()
	tag, rest, _ = strings.Cut(l, " ")
	if !strings.HasPrefix(strings.ToUpper(rest), want) {
		s.T.Errorf("fake server: got %q, want %s", l, want)
		runtime.Goexit()
	}
	return tag, rest
}

// Login greets with caps and accepts the LOGIN of user "user" with the
// password p"a\ss.
func (s *Session) Login(caps string) {
	s.Send("* OK [CAPABILITY IMAP4rev1 " + caps + "] fake ready")
	tag, rest := s.Cmd("LOGIN")
	if rest != `LOGIN "user" "p\"a\\ss"` {
		s.T.Errorf("fake server: login line %q", rest)
	}
	s.Send(tag + " OK [CAPABILITY IMAP4rev1 " + caps + "] logged in")
}

// AppendCmd reads an APPEND with its literals, answering '+' to
// synchronising ones, and returns the tag, the parts between literals
// and the literal contents. refuse, when not empty, is sent in place of
// the '+' of the first synchronising literal (with the tag prefixed), and
// appendCmd returns at once.
func (s *Session) AppendCmd(refuse string) (tag string, parts []string, bodies [][]byte) {
	l := s.Line()
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
			s.T.Errorf("fake server: bad literal in %q", l)
			runtime.Goexit()
		}
		if !strings.HasSuffix(l, "+}") {
			if refuse != "" {
				s.Send(tag + " " + refuse)
				return tag, parts, bodies
			}
			s.Send("+ go ahead")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(s.R, b); err != nil {
			s.T.Errorf("fake server: literal: %v", err)
			runtime.Goexit()
		}
		bodies = append(bodies, b)
		l = s.Line()
	}
}
