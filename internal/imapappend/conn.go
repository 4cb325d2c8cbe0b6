// Package imapappend is a small IMAP client used only to APPEND messages.
// go-imap v2 (github.com/emersion/go-imap/v2, beta.8) has no MULTIAPPEND
// (RFC 3502), waits for '+' before every literal over 4 KiB even with
// LITERAL+ (RFC 7888), cannot send literal8 (RFC 3516) and drops the
// connection when a server answers NO in place of a literal's '+'.
//
// The files follow the concerns of the protocol, as go-imap's imapclient
// does: conn.go holds the connection (buffers, deadlines, closing, idle
// responses), auth.go dialing, TLS and login, append.go the APPEND
// command, response.go reading and parsing responses, list.go a LIST that
// keeps mailbox names undecoded.
//
// Commands may be pipelined: Start sends an APPEND without waiting for its
// answer, and Pending.Wait reads it later; answers that arrive while
// another command's is awaited are kept for their own waits.
//
// A *Conn is not safe for concurrent use, except that Kill may be called
// from any goroutine.
package imapappend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/zxmigrate/zxmigrate/retry"
)

const (
	// appendLineTimeout bounds writing a command line and waiting for
	// one response line.
	appendLineTimeout = 30 * time.Second
	// appendLiteralTimeout bounds skipping one literal a server sends;
	// larger literals get one more second per 100 KB (appendLiteralRate).
	// Sending a message body is bounded by the idle timeout per buffer.
	appendLiteralTimeout = 5 * time.Minute
	appendLiteralRate    = 100_000
	// appendItemTimeout is added to the wait for the tagged answer of an
	// APPEND per message it carries: the server stores them all before
	// it answers (Zimbra takes up to ~1 s per message in a huge mailbox).
	appendItemTimeout = 2 * time.Second
	// appendLogoutTimeout bounds the LOGOUT of close.
	appendLogoutTimeout = 5 * time.Second
	// appendMaxLine caps one response line (literals excluded).
	appendMaxLine = 1 << 20
	// appendMaxLiteral caps the size of a literal a server may announce:
	// on an append connection only untagged data (a mailbox name in a
	// LIST) carries literals, and none is legitimately large.
	appendMaxLiteral = 1 << 20
	// appendBufSize is the size of the write and read buffers.
	appendBufSize = 64 << 10
	// literalMinusMax is the largest non-synchronising literal LITERAL-
	// allows.
	literalMinusMax = 4096
)

// byeError is a BYE that ended an append connection in the middle of a
// command. It is transient: a new connection may succeed.
type byeError struct{ text string }

func (e *byeError) Error() string           { return "imapappend: server closed the connection: BYE " + e.text }
func (e *byeError) RetryClass() retry.Class { return retry.Transient }

// Caps is what an append connection may use.
type Caps struct {
	// Multi is MULTIAPPEND (RFC 3502): several messages per command.
	Multi bool
	// LiteralPlus is LITERAL+ (RFC 7888): non-synchronising literals of
	// any size.
	LiteralPlus bool
	// LiteralMinus is LITERAL- (RFC 7888): non-synchronising literals up
	// to 4096 bytes; LITERAL+ and IMAP4rev2 imply it.
	LiteralMinus bool
	// Binary is BINARY (RFC 3516): literal8 ~{n} in APPEND.
	Binary bool
	// UIDPlus is UIDPLUS (RFC 4315): APPEND answers with APPENDUID.
	UIDPlus bool
	// AppendLimit is APPENDLIMIT=n (RFC 7889), 0 when none.
	AppendLimit int64
}

// capSet is a parsed capability list.
type capSet struct {
	Caps
	known                                            bool // a capability list was seen
	startTLS, loginDisabled, saslIR, rev2, authPlain bool
}

func parseCaps(list []string) capSet {
	cs := capSet{known: true}
	for _, c := range list {
		c = strings.ToUpper(c)
		switch {
		case c == "MULTIAPPEND":
			cs.Multi = true
		case c == "LITERAL+":
			cs.LiteralPlus, cs.LiteralMinus = true, true
		case c == "LITERAL-":
			cs.LiteralMinus = true
		case c == "BINARY":
			cs.Binary = true
		case c == "UIDPLUS":
			cs.UIDPlus = true
		case strings.HasPrefix(c, "APPENDLIMIT="):
			if n, err := strconv.ParseInt(c[len("APPENDLIMIT="):], 10, 64); err == nil && n > 0 {
				cs.AppendLimit = n
			}
		case c == "STARTTLS":
			cs.startTLS = true
		case c == "LOGINDISABLED":
			cs.loginDisabled = true
		case c == "SASL-IR":
			cs.saslIR = true
		case c == "AUTH=PLAIN":
			cs.authPlain = true
		case c == "IMAP4REV2":
			// IMAP4rev2 includes LITERAL-, UIDPLUS and SASL-IR.
			cs.rev2, cs.LiteralMinus, cs.UIDPlus, cs.saslIR = true, true, true, true
		}
	}
	return cs
}

// Conn is an IMAP connection used only to APPEND. It is not safe for
// concurrent use, except that a cancelled context may close it at any time.
type Conn struct {
	name string   // the account, for messages; no secret
	nc   net.Conn // the connection, TLS or not
	raw  net.Conn // the TCP connection under it
	cw   countWriter
	bw   *bufio.Writer
	rr   respReader
	cs   capSet
	tagN uint64
	// lineTimeout bounds writing a command line and each wait for a
	// response line: appendLineTimeout (tests shorten it).
	lineTimeout time.Duration
	// itemTimeout is added to the wait for an APPEND's tagged answer per
	// message: appendItemTimeout (tests shorten it).
	itemTimeout time.Duration
	// idle bounds each write of a message body (one buffer, 64 KiB): a
	// slow but progressing upload is never cut. Account.IdleTimeout; <= 0
	// means no bound.
	idle time.Duration
	// ready is set once logged in: idleCheck looks for idle-time
	// responses from then on.
	ready bool

	// inFlight holds the tags of commands sent whose answers were not
	// read (Start); answers holds the answers read while waiting for
	// another command's.
	inFlight map[string]bool
	answers  map[string]response

	dead     atomic.Bool
	killOnce sync.Once
	closeErr error
}

// countWriter counts the bytes that reached the connection, so that append
// knows whether anything of a command was sent.
type countWriter struct {
	w net.Conn
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

func newConn(name string, nc, raw net.Conn) *Conn {
	c := &Conn{name: name, raw: raw, lineTimeout: appendLineTimeout, itemTimeout: appendItemTimeout, idle: 2 * time.Minute}
	c.setConn(nc)
	return c
}

// setConn (re)builds the buffers over nc (after STARTTLS).
func (c *Conn) setConn(nc net.Conn) {
	c.nc = nc
	c.cw = countWriter{w: nc}
	c.bw = bufio.NewWriterSize(&c.cw, appendBufSize)
	c.rr = respReader{br: bufio.NewReaderSize(nc, appendBufSize), deadline: nc.SetReadDeadline}
}

// Caps returns what the connection may use.
func (c *Conn) Caps() Caps { return c.cs.Caps }

// Closed reports whether the connection is closed.
func (c *Conn) Closed() bool { return c.dead.Load() }

// Kill closes the network connection at once; safe from any goroutine.
func (c *Conn) Kill() {
	c.killOnce.Do(func() {
		c.dead.Store(true)
		c.closeErr = c.nc.Close()
	})
}

// Close logs out (with a short timeout) and closes the connection. Closing
// twice is harmless.
func (c *Conn) Close() error {
	if c.dead.Load() {
		return nil
	}
	_ = c.nc.SetDeadline(time.Now().Add(appendLogoutTimeout))
	tag := c.nextTag()
	c.bw.WriteString(tag + " LOGOUT\r\n")
	if c.bw.Flush() == nil {
		for {
			r, err := c.rr.read(appendLogoutTimeout)
			if err != nil || r.kind == respTagged {
				break
			}
		}
	}
	c.Kill()
	if errors.Is(c.closeErr, net.ErrClosed) {
		return nil
	}
	return c.closeErr
}

func (c *Conn) nextTag() string {
	c.tagN++
	return "Z" + strconv.FormatUint(c.tagN, 10)
}

// fail closes the connection and returns err, joined with the context's
// error when ctx ended (cancellation is what closed the connection then).
func (c *Conn) fail(ctx context.Context, err error) error {
	c.Kill()
	if ctx != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// failWrite closes the connection after a failed write, quoting the
// server's last words (a BYE or a tagged refusal) when it sent any before
// closing.
func (c *Conn) failWrite(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil && !c.dead.Load() {
		for i := 0; i < 4; i++ {
			r, rerr := c.rr.read(time.Second)
			if rerr != nil {
				break
			}
			if r.kind == respTagged && c.stash(r) {
				continue // an answer to a command in flight
			}
			if r.status == imap.StatusResponseTypeBye || (r.kind == respTagged && r.status != imap.StatusResponseTypeOK) {
				err = fmt.Errorf("%w (server said: %s %s)", err, r.status, r.text)
				break
			}
		}
	}
	return c.fail(ctx, fmt.Errorf("imapappend: %s: %s: write: %w", c.name, what, err))
}

// ErrClosed is returned, possibly wrapped, for a command that was
// not sent because the connection is closed, or was found closed by the
// server (a BYE or EOF while idle) before the command was sent. It is
// transient: a new connection may succeed.
var ErrClosed error = &closedError{}

type closedError struct{}

func (*closedError) Error() string           { return "imapappend: append connection is closed" }
func (*closedError) RetryClass() retry.Class { return retry.Transient }

// idleCheck reads what the server sent while the connection was idle (an
// untagged BYE before an autologout, say) before a command is sent. A
// BYE, EOF or anything unreadable closes the connection and returns an
// error wrapping ErrClosed: nothing of the command was sent.
func (c *Conn) idleCheck() error {
	if c.dead.Load() {
		return ErrClosed
	}
	// Answers due to commands in flight are read by their waits.
	for c.ready && len(c.inFlight) == 0 {
		if c.rr.br.Buffered() == 0 {
			if !peekPending(c.raw) {
				return nil
			}
			// Under TLS the bytes may be a record without data (a
			// session ticket): wait briefly for a first byte.
			_ = c.nc.SetReadDeadline(time.Now().Add(idlePeekTimeout))
			if _, err := c.rr.br.Peek(1); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return nil
				}
				c.Kill()
				return fmt.Errorf("%w: %w", ErrClosed, err)
			}
		}
		r, err := c.rr.read(c.lineTimeout)
		switch {
		case err != nil:
			c.Kill()
			return fmt.Errorf("%w: %w", ErrClosed, err)
		case r.status == imap.StatusResponseTypeBye:
			c.Kill()
			return fmt.Errorf("%w: BYE %s", ErrClosed, r.text)
		case r.kind != respUntagged:
			c.Kill()
			return fmt.Errorf("%w: unexpected response while idle", ErrClosed)
		}
	}
	return nil
}

// idlePeekTimeout bounds the wait for data the socket announced while the
// connection was idle.
const idlePeekTimeout = 100 * time.Millisecond

// Noop sends NOOP (Zimbra drops connections that repeat one command more
// than 25 times in a row).
func (c *Conn) Noop(ctx context.Context) error {
	stop := context.AfterFunc(ctx, c.Kill)
	defer stop()
	if _, err := c.simple(ctx, "NOOP"); err != nil {
		return fmt.Errorf("imapappend: %s: noop: %w", c.name, err)
	}
	return nil
}

// waitTagged reads responses until the tagged answer to tag, which it
// returns whatever its status. Untagged data is skipped (CAPABILITY is
// kept); a BYE or a foreign tag closes the connection.

// simple sends a command without arguments and waits for its tagged
// answer; NO and BAD come back as *imap.Error. CAPABILITY data updates
// the capabilities.
func (c *Conn) simple(ctx context.Context, cmd string) (response, error) {
	if err := c.idleCheck(); err != nil {
		return response{}, err
	}
	tag := c.nextTag()
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return response{}, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " " + cmd + "\r\n")
	if err := c.bw.Flush(); err != nil {
		return response{}, c.failWrite(ctx, strings.ToLower(cmd), err)
	}
	r, err := c.waitTagged(ctx, tag, c.lineTimeout)
	if err != nil {
		return r, err
	}
	if r.status != imap.StatusResponseTypeOK {
		return r, r.err()
	}
	return r, nil
}

// armWrite sets the write deadline of one body buffer: idle from now, or
// none when idle is off.
func (c *Conn) armWrite() error {
	if c.idle <= 0 {
		return c.nc.SetWriteDeadline(time.Time{})
	}
	return c.setWriteDeadline(c.idle)
}

func (c *Conn) setWriteDeadline(d time.Duration) error {
	return c.nc.SetWriteDeadline(time.Now().Add(d))
}

// isQuotable reports whether s can be a quoted string: printable ASCII.
func isQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (c *Conn) writeQuoted(s string) {
	c.bw.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			c.bw.WriteByte('\\')
		}
		c.bw.WriteByte(s[i])
	}
	c.bw.WriteByte('"')
}
