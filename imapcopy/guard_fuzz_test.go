package imapcopy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// scriptConn is a net.Conn that reads a fixed script and discards what is
// written: a server that says what the fuzzer says, whatever is asked.
type scriptConn struct {
	r      *bytes.Reader
	closed chan struct{}
}

func newScriptConn(b []byte) *scriptConn {
	return &scriptConn{r: bytes.NewReader(b), closed: make(chan struct{})}
}

func (c *scriptConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	// Small reads: the guard sees the stream in pieces, as from a socket.
	return c.r.Read(p[:min(len(p), 512)])
}
func (c *scriptConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed // as a socket: a command after the end fails
	default:
		return len(p), nil
	}
}
func (c *scriptConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}
func (c *scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// Limits of the fuzz runs: small, so that the fuzzer reaches them.
const (
	fuzzMaxLine    = 2048
	fuzzMaxLiteral = 4096
)

// FuzzIMAPResponse feeds server output, with the limits on, to every
// reader of server responses the copier has on its go-imap connections:
// the guard's framing, and go-imap's decoder through a guarded connection
// as the copier drives it (greeting, LIST, SELECT, the metadata FETCH and
// a body FETCH read by readJob with a size limit). The append client's
// reader has its own target, FuzzAppendResponse in internal/imapappend.
// Nothing may panic or hang; the guard never hands out a line or a
// literal over its limit; a body larger than its limit is refused, never
// stored.
func FuzzIMAPResponse(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n",
		"* OK ready\r\n* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST () \"/\" {5}\r\nab&-c\r\nT1 OK done\r\n",
		"* OK ready\r\n* LIST () \"/\" \"Bad&Jjo\"\r\nT1 OK done\r\n",
		"* OK ready\r\n* 4294967295 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\nT2 OK [READ-ONLY] done\r\n",
		"* OK ready\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 5 INTERNALDATE \"01-Jan-2024 10:00:00 +0000\")\r\nT3 OK done\r\n",
		"* OK ready\r\n* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\nT4 OK done\r\n",
		"* OK ready\r\n* 1 FETCH (UID 1 BODY[] {99999999999}\r\nxxxxxxxx",
		"* OK ready\r\n* 1 FETCH (BODY[] {3}\r\nabc UID 9)\r\n",
		"* OK " + strings.Repeat("g", 3000) + "\r\n",
		"* OK ready\r\n* LIST () \"/\" {100000}\r\n" + strings.Repeat("n", 5000),
		"* OK ready\r\n* 1 FETCH (UID 1 BODY[] {10}\r\n0123\r\n* BYE going away\r\n",
		"* BYE [UNAVAILABLE] busy\r\n",
		"+ go\r\n",
		"* OK ready\r\n* 1 FETCH (UID 1 BODY[] ~{3}\r\na\x00b)\r\n",
		"* OK ready\r\n((((((((((((((((((((((((((((\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// 1. The guard alone: what it hands out respects the limits.
		g := newGuard(newScriptConn(data), 0, fuzzMaxLine, fuzzMaxLiteral)
		fr := framer{checkCaps: true}
		buf := make([]byte, 333)
		for {
			n, err := g.Read(buf)
			for _, b := range buf[:n] {
				if _, _, lerr := fr.step(b, fuzzMaxLine, fuzzMaxLiteral); lerr != nil {
					t.Fatalf("the guard handed out data over its limit: %v", lerr)
				}
			}
			if err != nil {
				var le *LimitError
				var pe *ProtocolError
				if err != io.EOF && !errors.As(err, &le) && !errors.As(err, &pe) {
					t.Fatalf("guard read: unexpected error %v", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}

		// 2. go-imap's decoder through a guarded connection, driven as the
		// copier drives it.
		g = newGuard(newScriptConn(data), 0, fuzzMaxLine, fuzzMaxLiteral)
		c := imapclient.New(g, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if c.WaitGreeting() != nil {
				return
			}
			_, _ = c.List("", "*", nil).Collect()
			_, _ = c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
			cn := &conn{Client: c, guard: g}
			_, _ = fetchMeta(cn, 4294967295)
			cmd := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			for {
				m := cmd.Next()
				if m == nil {
					break
				}
				j, err := readJob(m, 1<<20, nil, "", func(imap.UID) (int64, string) { return 100, "the test" }, func() { g.Close() })
				if err == nil && j != nil {
					if j.body.size > 100 {
						t.Errorf("a body of %d bytes passed a limit of 100", j.body.size)
					}
					j.body.Close()
				}
				if err != nil {
					break
				}
			}
			_ = cmd.Close()
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("go-imap over the guard did not finish on %q", data[:min(len(data), 200)])
		}
		c.Close()
	})
}
