// Package imaphostile runs small scripted IMAP servers on 127.0.0.1 that
// misbehave in one way each: a huge EXISTS, a line or a literal without
// end, a literal larger than its message, a server that stops answering,
// trickles a literal or says BYE in the middle of one, mailbox names with
// control characters or that are not modified UTF-7, and many folders.
//
// Apart from its one misbehaviour a Server is a plain IMAP4rev1 source: it
// logs in any user, lists its folders, answers EXAMINE/SELECT, UID FETCH of
// UID, FLAGS, INTERNALDATE, RFC822.SIZE and BODY.PEEK[] / header fields,
// UNSELECT, CLOSE, NOOP and LOGOUT. It is read-only: it is a migration's
// source. Tests pair it with a real destination.
package imaphostile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Folder is one mailbox of a Server.
type Folder struct {
	// Wire is the name as sent in LIST and expected in EXAMINE: modified
	// UTF-7, or anything a hostile server sends.
	Wire string
	// Messages are the message bodies; UIDs are 1, 2, ...
	Messages [][]byte
}

// Behaviour is what a Server does differently from a plain server. Each
// hook, when set, replaces the plain answer; it writes to w (buffered,
// flushed after the hook) and may block (Hang) until the client goes.
type Behaviour struct {
	// Greeting replaces "* OK [CAPABILITY IMAP4rev1 UNSELECT] ready".
	Greeting func(w *bufio.Writer) error
	// List answers LIST; tag is the command's tag.
	List func(w *bufio.Writer, tag string) error
	// Select answers EXAMINE or SELECT of folder f (nil when unknown).
	Select func(w *bufio.Writer, tag string, f *Folder) error
	// FetchBody answers a UID FETCH of message bodies for the uids.
	FetchBody func(w *bufio.Writer, tag string, f *Folder, uids []uint32) error
}

// Server is a scripted IMAP server. Its methods are safe for concurrent
// use.
type Server struct {
	ln      net.Listener
	folders []Folder
	b       Behaviour

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	// Conns counts accepted connections.
	Conns atomic.Int64
	// Written counts bytes written to clients.
	Written atomic.Int64
}

// Start listens on 127.0.0.1 and serves folders with behaviour b.
func Start(folders []Folder, b Behaviour) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, folders: folders, b: b, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener, closes every connection and waits for them.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Conns.Add(1)
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			_ = s.serve(c)
		}()
	}
}

// countWriter counts what reaches the client.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// errHang is returned by hooks through HangNow to leave the socket open.
var errHang = errors.New("imaphostile: hang")

// HangNow flushes w and returns an error that makes the server keep the
// connection open without answering anything more, until the client
// closes it.
func HangNow(w *bufio.Writer) error {
	_ = w.Flush()
	return errHang
}

// Repeat writes b n times to w in pieces; it stops at the first write
// error (the client went away).
func Repeat(w io.Writer, b byte, n int64) error {
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = b
	}
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (s *Server) folder(wire string) *Folder {
	for i := range s.folders {
		if s.folders[i].Wire == wire || (strings.EqualFold(wire, "INBOX") && strings.EqualFold(s.folders[i].Wire, "INBOX")) {
			return &s.folders[i]
		}
	}
	return nil
}

func (s *Server) serve(c net.Conn) error {
	br := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(countWriter{c, &s.Written}, 64<<10)
	hang := func() error {
		// Keep the socket open, answer nothing, until the client closes.
		_, _ = io.Copy(io.Discard, br)
		return nil
	}
	if s.b.Greeting != nil {
		if err := s.b.Greeting(w); err != nil {
			if err == errHang {
				return hang()
			}
			return err
		}
	} else {
		w.WriteString("* OK [CAPABILITY IMAP4rev1 UNSELECT] hostile test server ready\r\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var sel *Folder
	for {
		line, err := readCommand(br, func() { w.WriteString("+ go on\r\n"); w.Flush() })
		if err != nil {
			return err
		}
		tag, rest, _ := strings.Cut(line, " ")
		verb, args, _ := strings.Cut(rest, " ")
		verb = strings.ToUpper(verb)
		if verb == "UID" {
			verb2, args2, _ := strings.Cut(args, " ")
			verb, args = "UID "+strings.ToUpper(verb2), args2
		}
		var herr error
		switch verb {
		case "CAPABILITY":
			w.WriteString("* CAPABILITY IMAP4rev1 UNSELECT\r\n" + tag + " OK done\r\n")
		case "LOGIN", "AUTHENTICATE":
			w.WriteString(tag + " OK [CAPABILITY IMAP4rev1 UNSELECT] logged in\r\n")
		case "NOOP", "CHECK":
			w.WriteString(tag + " OK done\r\n")
		case "LOGOUT":
			w.WriteString("* BYE bye\r\n" + tag + " OK done\r\n")
			w.Flush()
			return nil
		case "LIST", "LSUB":
			if s.b.List != nil {
				herr = s.b.List(w, tag)
				break
			}
			for _, f := range s.folders {
				w.WriteString(`* LIST (\HasNoChildren) "/" ` + quote(f.Wire) + "\r\n")
			}
			w.WriteString(tag + " OK done\r\n")
		case "EXAMINE", "SELECT":
			name := unquote(args)
			sel = s.folder(name)
			if s.b.Select != nil {
				herr = s.b.Select(w, tag, sel)
				break
			}
			if sel == nil {
				w.WriteString(tag + " NO no such mailbox\r\n")
				break
			}
			fmt.Fprintf(w, "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n* %d EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT %d] n\r\n%s OK [READ-ONLY] done\r\n",
				len(sel.Messages), len(sel.Messages)+1, tag)
		case "UNSELECT", "CLOSE":
			sel = nil
			w.WriteString(tag + " OK done\r\n")
		case "UID FETCH":
			herr = s.fetch(w, tag, sel, args)
		case "CREATE", "SUBSCRIBE", "DELETE":
			w.WriteString(tag + " OK done\r\n")
		case "STATUS":
			w.WriteString(tag + " NO not here\r\n")
		default:
			w.WriteString(tag + " BAD unknown command\r\n")
		}
		if herr == errHang {
			_ = w.Flush()
			return hang()
		}
		if herr != nil {
			return herr
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// fetch answers UID FETCH set (items).
func (s *Server) fetch(w *bufio.Writer, tag string, f *Folder, args string) error {
	set, items, _ := strings.Cut(args, " ")
	if f == nil {
		w.WriteString(tag + " BAD no mailbox selected\r\n")
		return nil
	}
	uids := parseSet(set, uint32(len(f.Messages)))
	up := strings.ToUpper(items)
	full := strings.Contains(up, "BODY.PEEK[]") || strings.Contains(up, "BODY[]")
	header := strings.Contains(up, "HEADER.FIELDS")
	if full && s.b.FetchBody != nil {
		return s.b.FetchBody(w, tag, f, uids)
	}
	for _, u := range uids {
		m := f.Messages[u-1]
		fmt.Fprintf(w, "* %d FETCH (UID %d FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" RFC822.SIZE %d", u, u, len(m))
		switch {
		case full:
			fmt.Fprintf(w, " BODY[] {%d}\r\n", len(m))
			w.Write(m)
		case header:
			h := m
			if i := strings.Index(string(m), "\r\n\r\n"); i >= 0 {
				h = m[:i+4]
			}
			fmt.Fprintf(w, " BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {%d}\r\n", len(h))
			w.Write(h)
		}
		w.WriteString(")\r\n")
	}
	w.WriteString(tag + " OK done\r\n")
	return nil
}

// WriteMessage writes the plain FETCH response of message uid of f.
func WriteMessage(w *bufio.Writer, f *Folder, uid uint32) {
	m := f.Messages[uid-1]
	fmt.Fprintf(w, "* %d FETCH (UID %d BODY[] {%d}\r\n", uid, uid, len(m))
	w.Write(m)
	w.WriteString(")\r\n")
}

// readCommand reads one command line with its literals inlined (LOGIN may
// send the password as a literal).
func readCommand(br *bufio.Reader, cont func()) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if sb.Len()+len(line) > 1<<20 {
			return "", errors.New("command too long")
		}
		line = strings.TrimRight(line, "\r\n")
		if n, ok := trailingLiteral(line); ok {
			sb.WriteString(line[:strings.LastIndexByte(line, '{')])
			if !strings.HasSuffix(line, "+}") && cont != nil {
				cont() // a synchronising literal waits for '+'
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(br, buf); err != nil {
				return "", err
			}
			sb.WriteString(strconv.Quote(string(buf)))
			continue
		}
		sb.WriteString(line)
		return sb.String(), nil
	}
}

func trailingLiteral(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
	if err != nil || n < 0 || n > 1<<20 {
		return 0, false
	}
	return n, true
}

// quote writes s as an IMAP quoted string when it can be one, else as a
// literal.
func quote(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			return fmt.Sprintf("{%d}\r\n%s", len(s), s)
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// unquote reads the first argument: quoted or atom.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		var sb strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					sb.WriteByte(s[i])
				}
			case '"':
				return sb.String()
			default:
				sb.WriteByte(s[i])
			}
		}
		return sb.String()
	}
	a, _, _ := strings.Cut(s, " ")
	return a
}

// parseSet expands a UID set ("1:*", "2,4:6") against n messages.
func parseSet(set string, n uint32) []uint32 {
	var out []uint32
	for _, part := range strings.Split(set, ",") {
		lo, hi, rng := strings.Cut(part, ":")
		a := parseNum(lo, n)
		b := a
		if rng {
			b = parseNum(hi, n)
		}
		if a > b {
			a, b = b, a
		}
		for u := max(a, 1); u <= b && u <= n; u++ {
			out = append(out, u)
		}
	}
	return out
}

func parseNum(s string, n uint32) uint32 {
	if s == "*" {
		return n
	}
	v, _ := strconv.ParseUint(s, 10, 32)
	return uint32(v)
}

// Trickle writes b one byte at a time with a pause between bytes,
// flushing each; it stops at the first error.
func Trickle(w *bufio.Writer, b []byte, pause time.Duration) error {
	for _, c := range b {
		if err := w.WriteByte(c); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		time.Sleep(pause)
	}
	return nil
}
