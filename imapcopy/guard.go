package imapcopy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zxmigrate/zxmigrate/retry"
)

// Limits on what an IMAP server may send, and for how long it may stay
// silent. Real servers stay far below them; a hostile or broken one meets a
// clear error instead of filling memory, disk or time.
const (
	// DefaultIdleTimeout is how long a server may send nothing while an
	// answer is due (and how long one write may make no progress).
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxLine caps one line a server sends, literals excluded.
	DefaultMaxLine = 1 << 20
	// DefaultMaxLiteral caps a literal outside message bodies: mailbox
	// names, header fields, any string go-imap holds in memory. Message
	// bodies are capped per message by the size the server announced for
	// it (RFC822.SIZE, see bodyAllowance).
	DefaultMaxLiteral = 1 << 20
	// guardWriteChunk is the largest piece written under one write
	// deadline: a slow link that moves a piece within the idle timeout is
	// never cut, however long the whole write takes.
	guardWriteChunk = 64 << 10
)

// bodyAllowance is the largest literal accepted for a message whose
// RFC822.SIZE is size: servers that store bare LF report the stored size
// and send CRLF, so a margin is allowed (a quarter, plus 64 KiB).
func bodyAllowance(size int64) int64 {
	if size < 0 {
		size = 0
	}
	return size + size/4 + 64<<10
}

// LimitError reports that a server sent more than a limit allows. The
// connection is dropped; the operation is retried like any dropped
// connection, then reported.
type LimitError struct {
	What  string // "line", "literal", "message literal"
	Size  int64  // what the server sent or announced (at least)
	Limit int64  // the limit it broke
}

// Error implements error.
func (e *LimitError) Error() string {
	return fmt.Sprintf("imapcopy: server sent a %s of %d bytes or more, over the limit of %d bytes", e.What, e.Size, e.Limit)
}

// RetryClass makes a limit hit a transient failure: the pass is tried
// again (a proxy may have garbled one answer), within its attempts.
func (e *LimitError) RetryClass() retry.Class { return retry.Transient }

// IdleTimeoutError reports that a server sent nothing for the idle timeout
// while an answer was due, or that a write made no progress for as long.
type IdleTimeoutError struct {
	After time.Duration // the idle timeout
	Write bool          // true: a write stalled; false: a read
}

// Error implements error.
func (e *IdleTimeoutError) Error() string {
	if e.Write {
		return fmt.Sprintf("imapcopy: no write progress for %v (idle timeout)", e.After)
	}
	return fmt.Sprintf("imapcopy: no data from the server for %v while an answer was due (idle timeout)", e.After)
}

// Timeout reports true: an IdleTimeoutError is a net.Error timeout.
func (e *IdleTimeoutError) Timeout() bool { return true }

// Temporary reports true (net.Error).
func (e *IdleTimeoutError) Temporary() bool { return true }

// Unwrap returns os.ErrDeadlineExceeded.
func (e *IdleTimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// RetryClass makes a hung attempt a transient failure.
func (e *IdleTimeoutError) RetryClass() retry.Class { return retry.Transient }

// guardConn wraps the plaintext side of an IMAP connection (above TLS) and
// enforces, on what the server sends, a maximum line length and a maximum
// literal, and on the connection an idle timeout applied as read and write
// deadlines that move with progress.
//
// It follows the protocol's framing in both directions with a small state
// machine: a line ending in "{n}" (or "{n+}", "~{n}") announces a literal
// of n bytes. Client lines tell it when an answer is due (a command was
// sent and its tagged completion has not come, or a synchronising literal
// waits for "+"); only then does a silent server time out, so an idle
// pooled connection lives on. The read and write deadlines that go-imap
// sets itself (fixed 30 s for a response, 5 min for a literal, which would
// cut a slow but progressing transfer) are ignored: this type owns them.
//
// Read is called by one goroutine at a time, Write too (go-imap and the
// append connection both serialise them); the two may run concurrently.
type guardConn struct {
	net.Conn
	idle       time.Duration // <= 0: none
	maxLine    int64
	maxLiteral int64
	armed      atomic.Int64 // when > 0, the literal cap while message bodies are read

	mu       sync.Mutex // guards the expectation state and deadline setting
	greeting bool       // the greeting is due
	pending  int        // commands sent and not yet completed
	awaitCnt bool       // a synchronising literal waits for "+"

	in     framer // what the server sends
	inErr  error  // a limit hit, returned by the next Read
	out    framer // what we send
	closed atomic.Bool
}

// framer follows IMAP lines and literals in one direction.
type framer struct {
	lineLen int64
	lit     int64 // bytes of the current literal still to come
	litSeen int64 // bytes of the current literal seen
	litSize int64
	first   byte // first byte of the current response (0: none yet)
	cont    bool // the current line continues a response after a literal
	tail    [24]byte
	tailN   int
	// Capability data (RFC 3501 §7.2.1) where go-imap v2.0.0-beta.8 would
	// spin forever on a '(' (imapclient/capability.go readCapabilities:
	// Decoder.SP reports a '(' as a space without consuming it); only
	// followed on what a server sends.
	checkCaps bool
	head      [12]byte // the line's first bytes
	capMatch  int      // bytes of "[CAPABILITY" matched so far
	inCaps    bool
}

// ProtocolError reports server output that go-imap cannot be trusted to
// survive: the connection is dropped.
type ProtocolError struct {
	Why string // what the server sent that is not trusted
}

// Error implements error.
func (e *ProtocolError) Error() string { return "imapcopy: protocol error: " + e.Why }

// RetryClass makes a garbled answer a transient failure.
func (e *ProtocolError) RetryClass() retry.Class { return retry.Transient }

const capWord = "[CAPABILITY"

// caps follows capability data on the current line: the byte b is at
// position pos (0-based) of the line.
func (f *framer) caps(b byte, pos int64) error {
	if pos < int64(len(f.head)) {
		f.head[pos] = b
		if pos == int64(len(f.head))-1 && strings.EqualFold(string(f.head[:]), "* CAPABILITY") {
			f.inCaps = true
		}
	}
	switch {
	case f.inCaps && b == '(':
		return &ProtocolError{Why: "'(' in a capability list"}
	case f.inCaps && b == ']':
		f.inCaps = false
	}
	if f.capMatch < len(capWord) && upper(b) == capWord[f.capMatch] {
		f.capMatch++
		if f.capMatch == len(capWord) {
			f.inCaps, f.capMatch = true, 0
		}
	} else if b == '[' {
		f.capMatch = 1
	} else {
		f.capMatch = 0
	}
	return nil
}

func upper(b byte) byte {
	if 'a' <= b && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}

// lineEnd is what one LF ended.
type lineEnd struct {
	literal int64 // > 0 (or 0 with isLit) when the line announced a literal
	isLit   bool
	sync    bool // a synchronising literal ({n}, not {n+})
	first   byte // first byte of the response ('*', '+', or a tag's)
}

// newGuard wraps c. idle <= 0 disables the idle timeout; maxLine and
// maxLiteral <= 0 mean the defaults.
func newGuard(c net.Conn, idle time.Duration, maxLine, maxLiteral int64) *guardConn {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	if maxLiteral <= 0 {
		maxLiteral = DefaultMaxLiteral
	}
	return &guardConn{Conn: c, idle: idle, maxLine: maxLine, maxLiteral: maxLiteral, greeting: true, in: framer{checkCaps: true}}
}

// armBodies raises the literal cap to n while message bodies of up to n
// bytes are read; n <= 0 restores MaxLiteral.
func (g *guardConn) armBodies(n int64) {
	if g == nil {
		return
	}
	g.armed.Store(max(n, 0))
}

// raiseBodies raises the armed cap to at least n.
func (g *guardConn) raiseBodies(n int64) {
	if g == nil {
		return
	}
	for {
		cur := g.armed.Load()
		if cur >= n || g.armed.CompareAndSwap(cur, n) {
			return
		}
	}
}

// settle forgets what the login exchange left counted (SASL response
// lines look like commands): after a completed login nothing is due.
func (g *guardConn) settle() {
	g.mu.Lock()
	g.pending, g.awaitCnt, g.greeting = 0, false, false
	g.mu.Unlock()
	g.armDeadline()
}

func (g *guardConn) literalCap() int64 {
	if a := g.armed.Load(); a > g.maxLiteral {
		return a
	}
	return g.maxLiteral
}

// due reports whether an answer is due; g.mu held.
func (g *guardConn) due() bool { return g.greeting || g.pending > 0 || g.awaitCnt }

// armDeadline sets the read deadline: idle from now while an answer is
// due, none otherwise.
func (g *guardConn) armDeadline() {
	if g.idle <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.due() {
		_ = g.Conn.SetReadDeadline(time.Now().Add(g.idle))
	} else {
		_ = g.Conn.SetReadDeadline(time.Time{})
	}
}

// Read reads what the server sends, checking line and literal limits and
// moving the idle deadline with every read.
func (g *guardConn) Read(p []byte) (int, error) {
	if g.inErr != nil {
		return 0, g.inErr
	}
	g.armDeadline()
	n, err := g.Conn.Read(p)
	if err != nil && g.idle > 0 && isTimeout(err) && !g.closed.Load() {
		err = &IdleTimeoutError{After: g.idle}
	}
	for i := 0; i < n; i++ {
		if k := g.in.skipLiteral(p[i:n]); k > 0 {
			// A literal's bytes in bulk (message bodies are most of the
			// stream); the byte after them goes through step.
			if cp := g.literalCap(); g.in.litSeen > cp {
				g.inErr = &LimitError{What: "literal", Size: g.in.litSize, Limit: cp}
				return i + k - int(g.in.litSeen-cp), nil
			}
			i += k - 1
			continue
		}
		end, ok, lerr := g.in.step(p[i], g.maxLine, g.literalCap())
		if lerr != nil {
			g.inErr = lerr
			return i, nil
		}
		if ok {
			g.mu.Lock()
			switch {
			case end.isLit:
			case end.first == '+':
				g.awaitCnt = false
			case end.first == '*':
				g.greeting = false
			default: // a tagged completion
				g.greeting = false
				if g.pending > 0 {
					g.pending--
				}
			}
			g.mu.Unlock()
		}
	}
	return n, err
}

// Write sends p in pieces, each under a fresh write deadline, and notes
// the commands it carries.
func (g *guardConn) Write(p []byte) (int, error) {
	// Note the framing first: the answer may come before Write returns.
	for i := 0; i < len(p); i++ {
		if k := g.out.skipLiteral(p[i:]); k > 0 {
			i += k - 1
			continue
		}
		end, ok, _ := g.out.step(p[i], 1<<62, 1<<62)
		if !ok {
			continue
		}
		g.mu.Lock()
		if end.isLit {
			g.awaitCnt = g.awaitCnt || end.sync
		} else {
			g.pending++
		}
		g.mu.Unlock()
	}
	g.armDeadline()
	written := 0
	for written < len(p) {
		k := min(len(p)-written, guardWriteChunk)
		if g.idle > 0 {
			_ = g.Conn.SetWriteDeadline(time.Now().Add(g.idle))
		}
		n, err := g.Conn.Write(p[written : written+k])
		written += n
		if err != nil {
			if g.idle > 0 && isTimeout(err) && !g.closed.Load() {
				err = &IdleTimeoutError{After: g.idle, Write: true}
			}
			return written, err
		}
	}
	return written, nil
}

// Close closes the connection.
func (g *guardConn) Close() error {
	g.closed.Store(true)
	return g.Conn.Close()
}

// SetDeadline is ignored: the guard owns the deadlines (see guardConn).
func (g *guardConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is ignored: the guard owns the deadlines.
func (g *guardConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is ignored: the guard owns the deadlines.
func (g *guardConn) SetWriteDeadline(time.Time) error { return nil }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// skipLiteral takes, in bulk, the bytes of p that belong to the current
// literal and returns how many; the caller checks the literal cap.
func (f *framer) skipLiteral(p []byte) int {
	if f.lit <= 0 {
		return 0
	}
	k := int(min(int64(len(p)), f.lit))
	f.lit -= int64(k)
	f.litSeen += int64(k)
	return k
}

// step takes one byte. It returns ok when the byte ended a line (an LF
// outside a literal) and what that line announced, or a *LimitError.
func (f *framer) step(b byte, maxLine, maxLiteral int64) (lineEnd, bool, error) {
	if f.lit > 0 {
		f.lit--
		f.litSeen++
		if f.litSeen > maxLiteral {
			return lineEnd{}, false, &LimitError{What: "literal", Size: f.litSize, Limit: maxLiteral}
		}
		return lineEnd{}, false, nil
	}
	if f.lineLen == 0 && !f.cont {
		f.first = b
	}
	f.lineLen++
	if f.lineLen > maxLine {
		return lineEnd{}, false, &LimitError{What: "line", Size: f.lineLen, Limit: maxLine}
	}
	if f.checkCaps {
		if err := f.caps(b, f.lineLen-1); err != nil {
			return lineEnd{}, false, err
		}
	}
	if b != '\n' {
		if f.tailN < len(f.tail) {
			f.tail[f.tailN] = b
			f.tailN++
		} else {
			copy(f.tail[:], f.tail[1:])
			f.tail[len(f.tail)-1] = b
		}
		return lineEnd{}, false, nil
	}
	end := lineEnd{first: f.first}
	n, sync, isLit := literalTail(f.tail[:f.tailN])
	f.lineLen, f.tailN = 0, 0
	f.inCaps, f.capMatch = false, 0
	if isLit {
		end.isLit, end.literal, end.sync = true, n, sync
		f.lit, f.litSeen, f.litSize = n, 0, n
		f.cont = true // the response goes on after its literal
		return end, true, nil
	}
	f.cont = false
	return end, true, nil
}

// literalTail reads a literal announcement at the end of a line (CR
// excluded or not): "{n}", "{n+}", "{n-}" or "~{n}". A number too large
// for int64 counts as the largest.
func literalTail(t []byte) (n int64, sync, ok bool) {
	if len(t) > 0 && t[len(t)-1] == '\r' {
		t = t[:len(t)-1]
	}
	if len(t) < 3 || t[len(t)-1] != '}' {
		return 0, false, false
	}
	i := len(t) - 2
	sync = true
	if t[i] == '+' || t[i] == '-' {
		sync = false
		i--
	}
	digits := 0
	for ; i >= 0 && t[i] >= '0' && t[i] <= '9'; i-- {
		digits++
	}
	if digits == 0 || i < 0 || t[i] != '{' {
		return 0, false, false
	}
	for _, d := range t[i+1 : i+1+digits] {
		if n > (1<<62)/10 {
			n = 1 << 62
			break
		}
		n = n*10 + int64(d-'0')
	}
	return n, sync, true
}
