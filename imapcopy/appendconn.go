package imapcopy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/zxmigrate/zxmigrate/internal/mutf7"
	"github.com/zxmigrate/zxmigrate/internal/retry"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// This file is a small IMAP client used only to APPEND: go-imap v2 beta.8
// has no MULTIAPPEND (RFC 3502), waits for '+' before every literal over
// 4 KiB even with LITERAL+ (RFC 7888), cannot send literal8 (RFC 3516) and
// drops the connection when a server answers NO in place of a literal's '+'.

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
	appendMaxLiteral = DefaultMaxLiteral
	// appendBufSize is the size of the write and read buffers.
	appendBufSize = 64 << 10
	// literalMinusMax is the largest non-synchronising literal LITERAL-
	// allows.
	literalMinusMax = 4096
)

// errNUL is returned by append for a message holding a NUL byte when the
// server does not offer BINARY, as a *nulError naming the message.
var errNUL = errors.New("imapcopy: the message holds a NUL byte and the server does not offer BINARY")

// nulError names the message of an append that holds a NUL byte the
// connection cannot carry. errors.Is(err, errNUL) is true.
type nulError struct {
	// Index is the message's index in the items given to append.
	Index int
	// Undeclared is true when the message was not marked NUL and the byte
	// was found while sending it (see appendItem.NUL).
	Undeclared bool
}

func (e *nulError) Error() string {
	if e.Undeclared {
		return fmt.Sprintf("imapcopy: append: message %d holds a NUL byte but was not marked NUL", e.Index+1)
	}
	return fmt.Sprintf("imapcopy: append: message %d: %v", e.Index+1, strings.TrimPrefix(errNUL.Error(), "imapcopy: "))
}

// Is makes errors.Is(err, errNUL) true.
func (e *nulError) Is(target error) bool { return target == errNUL }

// byeError is a BYE that ended an append connection in the middle of a
// command. It is transient: a new connection may succeed.
type byeError struct{ text string }

func (e *byeError) Error() string           { return "imapcopy: server closed the connection: BYE " + e.text }
func (e *byeError) RetryClass() retry.Class { return retry.Transient }

// appendCaps is what an append connection may use.
type appendCaps struct {
	Multi        bool  // MULTIAPPEND
	LiteralPlus  bool  // LITERAL+ (non-synchronising literals of any size)
	LiteralMinus bool  // LITERAL- (non-synchronising up to 4096 bytes), also implied by LITERAL+ handling
	Binary       bool  // BINARY: literal8 ~{n} in APPEND
	UIDPlus      bool  // APPENDUID expected
	AppendLimit  int64 // APPENDLIMIT=n, 0 when none
}

// capSet is a parsed capability list.
type capSet struct {
	appendCaps
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

// appendConn is an IMAP connection used only to APPEND. Not safe for
// concurrent use, except that a cancelled context may close it at any time.
type appendConn struct {
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

func newAppendConn(name string, nc, raw net.Conn) *appendConn {
	c := &appendConn{name: name, raw: raw, lineTimeout: appendLineTimeout, itemTimeout: appendItemTimeout, idle: DefaultIdleTimeout}
	c.setConn(nc)
	return c
}

// setConn (re)builds the buffers over nc (after STARTTLS).
func (c *appendConn) setConn(nc net.Conn) {
	c.nc = nc
	c.cw = countWriter{w: nc}
	c.bw = bufio.NewWriterSize(&c.cw, appendBufSize)
	c.rr = respReader{br: bufio.NewReaderSize(nc, appendBufSize), deadline: nc.SetReadDeadline}
}

// caps returns what the connection may use.
func (c *appendConn) caps() appendCaps { return c.cs.appendCaps }

// closed reports whether the connection is closed.
func (c *appendConn) closed() bool { return c.dead.Load() }

// kill closes the network connection at once; safe from any goroutine.
func (c *appendConn) kill() {
	c.killOnce.Do(func() {
		c.dead.Store(true)
		c.closeErr = c.nc.Close()
	})
}

// close logs out (with a short timeout) and closes the connection. Closing
// twice is harmless.
func (c *appendConn) close() error {
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
	c.kill()
	if errors.Is(c.closeErr, net.ErrClosed) {
		return nil
	}
	return c.closeErr
}

func (c *appendConn) nextTag() string {
	c.tagN++
	return "Z" + strconv.FormatUint(c.tagN, 10)
}

// fail closes the connection and returns err, joined with the context's
// error when ctx ended (cancellation is what closed the connection then).
func (c *appendConn) fail(ctx context.Context, err error) error {
	c.kill()
	if ctx != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// failWrite closes the connection after a failed write, quoting the
// server's last words (a BYE or a tagged refusal) when it sent any before
// closing.
func (c *appendConn) failWrite(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil && !c.dead.Load() {
		for i := 0; i < 4; i++ {
			r, rerr := c.rr.read(time.Second)
			if rerr != nil {
				break
			}
			if r.status == imap.StatusResponseTypeBye || (r.kind == respTagged && r.status != imap.StatusResponseTypeOK) {
				err = fmt.Errorf("%w (server said: %s %s)", err, r.status, r.text)
				break
			}
		}
	}
	return c.fail(ctx, fmt.Errorf("imapcopy: %s: %s: write: %w", c.name, what, err))
}

// dialAppend connects, secures and logs in an append connection, as Dial
// does for go-imap: same TLS rules, same login choices. A BYE greeting
// returns an *imap.Error of type BYE; authentication failures wrap
// zxerrors.ErrAuth.
func (a *Account) dialAppend(ctx context.Context) (*appendConn, error) {
	ctx, cancel := a.dialContext(ctx)
	defer cancel()
	nc, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	raw := nc
	var c *appendConn
	// Closing the TCP connection aborts a TLS handshake or a read too.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	fail := func(err error) (*appendConn, error) {
		raw.Close()
		if c != nil {
			c.kill()
		}
		return nil, ctxErr(ctx, err)
	}

	tcfg := a.tlsConfig()
	switch a.Security {
	case ImplicitTLS:
		tc := tls.Client(nc, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("imapcopy: tls %s: %w", a.Addr, zxerrors.Connect(err)))
		}
		nc = tc
	case StartTLS, Plaintext:
	default:
		return fail(fmt.Errorf("imapcopy: unknown security %d", a.Security))
	}
	c = newAppendConn(a.String(), nc, raw)
	c.idle = a.idleTimeout()

	g, err := c.rr.read(c.lineTimeout)
	if err != nil {
		return fail(fmt.Errorf("imapcopy: greeting from %s: %w", a.Addr, err))
	}
	switch {
	case g.kind == respUntagged && g.status == imap.StatusResponseTypeOK:
	case g.kind == respUntagged && g.status == imap.StatusResponseTypeBye:
		return fail(fmt.Errorf("imapcopy: greeting from %s: %w", a.Addr, g.err()))
	default:
		return fail(fmt.Errorf("imapcopy: greeting from %s: unexpected %q", a.Addr, g.status))
	}
	if g.code == "CAPABILITY" {
		c.cs = parseCaps(strings.Fields(g.arg))
	}

	if a.Security == StartTLS {
		if !c.cs.known {
			if _, err := c.simple(ctx, "CAPABILITY"); err != nil {
				return fail(fmt.Errorf("imapcopy: capability %s: %w", a.Addr, err))
			}
		}
		if !c.cs.startTLS {
			return fail(fmt.Errorf("imapcopy: starttls %s: the server does not offer STARTTLS", a.Addr))
		}
		if _, err := c.simple(ctx, "STARTTLS"); err != nil {
			return fail(fmt.Errorf("imapcopy: starttls %s: %w", a.Addr, zxerrors.Connect(err)))
		}
		if c.rr.br.Buffered() > 0 {
			// Bytes sent before the handshake could be injected
			// responses (CVE-2011-0411 style): refuse.
			return fail(fmt.Errorf("imapcopy: starttls %s: the server sent data before the TLS handshake", a.Addr))
		}
		tc := tls.Client(nc, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("imapcopy: starttls %s: %w", a.Addr, zxerrors.Connect(err)))
		}
		nc = tc
		c.setConn(tc)
		c.cs = capSet{}
	}
	if !c.cs.known {
		if _, err := c.simple(ctx, "CAPABILITY"); err != nil {
			return fail(fmt.Errorf("imapcopy: capability %s: %w", a.Addr, err))
		}
	}
	if err := c.login(ctx, a); err != nil {
		return fail(err)
	}
	if !c.cs.known {
		if _, err := c.simple(ctx, "CAPABILITY"); err != nil {
			return fail(fmt.Errorf("imapcopy: capability %s: %w", a.Addr, err))
		}
	}
	if !stop() || ctx.Err() != nil {
		return fail(fmt.Errorf("imapcopy: login to %s: %w", a.Addr, ctx.Err()))
	}
	_ = nc.SetDeadline(time.Time{})
	c.ready = true
	return c, nil
}

// login authenticates like Account.login: an admin with SASL PLAIN on
// behalf of the user, AUTHENTICATE PLAIN when LOGIN is disabled, else
// LOGIN. It takes the capabilities from the answer's CAPABILITY code, or
// forgets the old ones so that the caller asks again.
func (c *appendConn) login(ctx context.Context, a *Account) error {
	pass := a.Password.Reveal()
	pre := c.cs
	var r response
	var err error
	switch {
	case a.Admin != "":
		if !pre.authPlain && !pre.rev2 {
			return fmt.Errorf("imapcopy: %s: admin login needs AUTH=PLAIN, which the server does not offer", a)
		}
		r, err = c.authenticate(ctx, sasl.NewPlainClient(a.User, a.Admin, pass))
	case pre.loginDisabled:
		r, err = c.authenticate(ctx, sasl.NewPlainClient("", a.User, pass))
	default:
		r, err = c.loginCmd(ctx, a.User, pass)
	}
	if err != nil {
		return fmt.Errorf("imapcopy: login to %s: %w", a, err)
	}
	switch r.status {
	case imap.StatusResponseTypeOK:
	case imap.StatusResponseTypeNo, imap.StatusResponseTypeBad:
		if r.code == imap.ResponseCodeUnavailable {
			return fmt.Errorf("imapcopy: login to %s: %w", a, r.err())
		}
		return fmt.Errorf("imapcopy: login to %s: %w: %w", a, zxerrors.ErrAuth, r.err())
	default:
		return c.fail(ctx, fmt.Errorf("imapcopy: login to %s: unexpected %q", a, r.status))
	}
	if r.code == "CAPABILITY" {
		c.cs = parseCaps(strings.Fields(r.arg))
	} else if c.cs == pre {
		c.cs = capSet{} // the pre-login list is stale
	}
	return nil
}

// loginCmd sends LOGIN user pass and returns the tagged answer.
func (c *appendConn) loginCmd(ctx context.Context, user, pass string) (response, error) {
	tag := c.nextTag()
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return response{}, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " LOGIN ")
	for i, s := range []string{user, pass} {
		if i > 0 {
			c.bw.WriteByte(' ')
		}
		if isQuotable(s) {
			c.writeQuoted(s)
			continue
		}
		r, done, err := c.literalHeader(ctx, tag, int64(len(s)), false)
		if err != nil || done {
			return r, err
		}
		c.bw.WriteString(s)
	}
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return response{}, c.failWrite(ctx, "login", err)
	}
	return c.waitTagged(ctx, tag, c.lineTimeout)
}

// authenticate runs AUTHENTICATE with the SASL client and returns the
// tagged answer.
func (c *appendConn) authenticate(ctx context.Context, sc sasl.Client) (response, error) {
	mech, ir, err := sc.Start()
	if err != nil {
		return response{}, fmt.Errorf("sasl: %w", err)
	}
	tag := c.nextTag()
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return response{}, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " AUTHENTICATE " + mech)
	if ir != nil && c.cs.saslIR {
		c.bw.WriteByte(' ')
		c.writeSASL(ir)
		ir = nil
	}
	c.bw.WriteString("\r\n")
	for {
		if err := c.bw.Flush(); err != nil {
			return response{}, c.failWrite(ctx, "authenticate", err)
		}
		r, err := c.rr.read(c.lineTimeout)
		if err != nil {
			return response{}, c.fail(ctx, err)
		}
		switch {
		case r.kind == respCont:
			var resp []byte
			if ir != nil {
				resp, ir = ir, nil
			} else {
				ch, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(r.text))
				if derr == nil {
					resp, derr = sc.Next(ch)
				}
				if derr != nil {
					c.bw.WriteString("*\r\n") // cancel; the server answers BAD
					continue
				}
			}
			c.writeSASL(resp)
			c.bw.WriteString("\r\n")
		case r.kind == respTagged && r.tag == tag:
			return r, nil
		case r.kind == respTagged:
			return response{}, c.fail(ctx, fmt.Errorf("unexpected tag %q", r.tag))
		case r.status == imap.StatusResponseTypeBye:
			return response{}, c.fail(ctx, &byeError{text: r.text})
		case r.isCaps:
			c.cs = parseCaps(r.caps)
		}
	}
}

func (c *appendConn) writeSASL(b []byte) {
	if len(b) == 0 {
		c.bw.WriteByte('=')
		return
	}
	buf := c.bw.AvailableBuffer()
	c.bw.Write(base64.StdEncoding.AppendEncode(buf, b))
}

// simple sends a command without arguments and waits for its tagged
// answer; NO and BAD come back as *imap.Error. CAPABILITY data updates
// the capabilities.
func (c *appendConn) simple(ctx context.Context, cmd string) (response, error) {
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

// errAppendClosed is returned, possibly wrapped, for a command that was
// not sent because the connection is closed, or was found closed by the
// server (a BYE or EOF while idle) before the command was sent. It is
// transient: a new connection may succeed.
var errAppendClosed error = &closedError{}

type closedError struct{}

func (*closedError) Error() string           { return "imapcopy: append connection is closed" }
func (*closedError) RetryClass() retry.Class { return retry.Transient }

// idleCheck reads what the server sent while the connection was idle (an
// untagged BYE before an autologout, say) before a command is sent. A
// BYE, EOF or anything unreadable closes the connection and returns an
// error wrapping errAppendClosed: nothing of the command was sent.
func (c *appendConn) idleCheck() error {
	if c.dead.Load() {
		return errAppendClosed
	}
	for c.ready {
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
				c.kill()
				return fmt.Errorf("%w: %w", errAppendClosed, err)
			}
		}
		r, err := c.rr.read(c.lineTimeout)
		switch {
		case err != nil:
			c.kill()
			return fmt.Errorf("%w: %w", errAppendClosed, err)
		case r.status == imap.StatusResponseTypeBye:
			c.kill()
			return fmt.Errorf("%w: BYE %s", errAppendClosed, r.text)
		case r.kind != respUntagged:
			c.kill()
			return fmt.Errorf("%w: unexpected response while idle", errAppendClosed)
		}
	}
	return nil
}

// idlePeekTimeout bounds the wait for data the socket announced while the
// connection was idle.
const idlePeekTimeout = 100 * time.Millisecond

// noop sends NOOP (Zimbra drops connections that repeat one command more
// than 25 times in a row).
func (c *appendConn) noop(ctx context.Context) error {
	stop := context.AfterFunc(ctx, c.kill)
	defer stop()
	if _, err := c.simple(ctx, "NOOP"); err != nil {
		return fmt.Errorf("imapcopy: %s: noop: %w", c.name, err)
	}
	return nil
}

// waitTagged reads responses until the tagged answer to tag, which it
// returns whatever its status. Untagged data is skipped (CAPABILITY is
// kept); a BYE or a foreign tag closes the connection.
func (c *appendConn) waitTagged(ctx context.Context, tag string, timeout time.Duration) (response, error) {
	for {
		r, err := c.rr.read(timeout)
		if err != nil {
			return response{}, c.fail(ctx, err)
		}
		switch {
		case r.kind == respTagged && r.tag == tag:
			if r.code == "CAPABILITY" && r.status == imap.StatusResponseTypeOK {
				c.cs = parseCaps(strings.Fields(r.arg))
			}
			return r, nil
		case r.kind == respTagged:
			return response{}, c.fail(ctx, fmt.Errorf("imapcopy: unexpected tag %q (waiting for %s)", r.tag, tag))
		case r.kind == respCont:
			return response{}, c.fail(ctx, errors.New("imapcopy: unexpected continuation request"))
		case r.status == imap.StatusResponseTypeBye:
			return response{}, c.fail(ctx, &byeError{text: r.text})
		case r.isCaps:
			c.cs = parseCaps(r.caps)
		}
	}
}

// waitCont waits for the continuation request of a synchronising literal.
// done is true when the tagged answer came in its place: the command is
// over and r is that answer.
func (c *appendConn) waitCont(ctx context.Context, tag string) (r response, done bool, err error) {
	for {
		r, err := c.rr.read(c.lineTimeout)
		if err != nil {
			return response{}, false, c.fail(ctx, err)
		}
		switch {
		case r.kind == respCont:
			return r, false, nil
		case r.kind == respTagged && r.tag == tag:
			return r, true, nil
		case r.kind == respTagged:
			return response{}, false, c.fail(ctx, fmt.Errorf("imapcopy: unexpected tag %q (waiting for %s)", r.tag, tag))
		case r.status == imap.StatusResponseTypeBye:
			return response{}, false, c.fail(ctx, &byeError{text: r.text})
		}
	}
}

// literalHeader writes a literal's header ({n}, {n+}, ~{n} or ~{n+}) and,
// for a synchronising literal, flushes and waits for '+'. done is true when
// the tagged answer came in place of '+'; r is that answer.
func (c *appendConn) literalHeader(ctx context.Context, tag string, n int64, binary bool) (r response, done bool, err error) {
	nonSync := c.cs.LiteralPlus || (c.cs.LiteralMinus && n <= literalMinusMax)
	if binary {
		c.bw.WriteByte('~')
	}
	c.bw.WriteByte('{')
	c.bw.Write(strconv.AppendInt(c.bw.AvailableBuffer(), n, 10))
	if nonSync {
		c.bw.WriteString("+}\r\n")
		return response{}, false, nil
	}
	c.bw.WriteString("}\r\n")
	if err := c.bw.Flush(); err != nil {
		return response{}, false, c.failWrite(ctx, "literal", err)
	}
	return c.waitCont(ctx, tag)
}

// armWrite sets the write deadline of one body buffer: idle from now, or
// none when idle is off.
func (c *appendConn) armWrite() error {
	if c.idle <= 0 {
		return c.nc.SetWriteDeadline(time.Time{})
	}
	return c.setWriteDeadline(c.idle)
}

func (c *appendConn) setWriteDeadline(d time.Duration) error {
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

func (c *appendConn) writeQuoted(s string) {
	c.bw.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			c.bw.WriteByte('\\')
		}
		c.bw.WriteByte(s[i])
	}
	c.bw.WriteByte('"')
}

// appendItem is one message to append.
type appendItem struct {
	Flags []imap.Flag
	Time  time.Time // INTERNALDATE, sent with its zone ("02-Jan-2006 15:04:05 -0700"); zero = none
	Size  int64
	Body  io.Reader // exactly Size bytes
	// NUL marks a body that holds a NUL byte: it goes as a literal8
	// (RFC 3516), which needs caps().Binary. Bodies of type *net.Buffers,
	// *bytes.Reader, *bytes.Buffer and *strings.Reader are checked by
	// append itself; for other readers the caller must tell (see
	// appendConn.append for what happens when it does not).
	NUL bool
}

// hasNULInMemory reports whether an in-memory body holds a NUL byte,
// without consuming it; ok is false for other readers.
func hasNULInMemory(r io.Reader) (nul, ok bool) {
	switch b := r.(type) {
	case *net.Buffers:
		for _, p := range *b {
			if bytes.IndexByte(p, 0) >= 0 {
				return true, true
			}
		}
		return false, true
	case *bytes.Buffer:
		return bytes.IndexByte(b.Bytes(), 0) >= 0, true
	case *bytes.Reader:
		return nulAt(b, b.Size()-int64(b.Len()), b.Len()), true
	case *strings.Reader:
		return nulAt(b, b.Size()-int64(b.Len()), b.Len()), true
	}
	return false, false
}

func nulAt(r io.ReaderAt, off int64, n int) bool {
	var buf [4096]byte
	for n > 0 {
		k, _ := r.ReadAt(buf[:min(n, len(buf))], off)
		if k <= 0 {
			return false
		}
		if bytes.IndexByte(buf[:k], 0) >= 0 {
			return true
		}
		off += int64(k)
		n -= k
	}
	return false
}

// dateTimeLayout is the IMAP date-time (RFC 3501 date-day-fixed: the day
// space-padded).
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// validFlag reports whether f can be sent in a flag list: an atom, or "\"
// and an atom.
func validFlag(f imap.Flag) bool {
	s := strings.TrimPrefix(string(f), `\`)
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch <= 0x20 || ch >= 0x7f:
			return false
		case ch == '(' || ch == ')' || ch == '{' || ch == '%' || ch == '*' || ch == '"' || ch == '\\' || ch == ']':
			return false
		}
	}
	return true
}

// append sends ONE APPEND command carrying items (MULTIAPPEND when
// len(items) > 1; the caller checks caps().Multi) into mailbox, a UTF-8
// name sent in modified UTF-7.
//
// Each literal is non-synchronising when LITERAL+ (or LITERAL- and at most
// 4096 bytes) is offered, else append waits for '+'. A body marked NUL (or
// an in-memory body found to hold a NUL byte) goes as literal8 ~{n} when
// caps().Binary; without BINARY append returns a *nulError naming the
// first such message (errors.Is errNUL), sends nothing and keeps the
// connection. A body not so marked that turns out to hold a NUL byte while
// it is sent ends the command: append returns a *nulError with Undeclared
// set; the connection stays usable when nothing of the command had reached
// the server yet, else it is closed (nothing was stored: the literal was
// cut short). Invalid flags, dates outside years 0-9999, negative sizes and
// a message larger than APPENDLIMIT (an *imap.Error NO [TOOBIG]) are
// refused the same way before anything is sent.
//
// Results:
//   - tagged OK: uidValidity and uids from [APPENDUID v uid-set] in order;
//     uids is nil when there is no APPENDUID or its count differs from
//     len(items).
//   - tagged NO/BAD, also in place of a literal's '+': an *imap.Error; the
//     connection stays usable.
//   - an error wrapping errAppendClosed: the connection was closed, or the
//     server had closed it (BYE or EOF while idle); nothing was sent.
//   - anything else (I/O, timeout, BYE, protocol error, a body shorter or
//     longer than Size, ctx cancelled): another error, and the connection
//     is closed; what the server stored is unknown.
//
// Timeouts: 30 s for writing the command line and for each wait for a
// response line; 5 min per literal plus 1 s per 100 KB; the wait for the
// tagged answer after the last literal gets 2 s more per message.
func (c *appendConn) append(ctx context.Context, mailbox string, items []appendItem) (uidValidity uint32, uids []imap.UID, err error) {
	if c.dead.Load() {
		return 0, nil, errAppendClosed
	}
	if len(items) == 0 {
		return 0, nil, errors.New("imapcopy: append: no messages")
	}
	if len(items) > 1 && !c.cs.Multi {
		return 0, nil, fmt.Errorf("imapcopy: append to %q: %d messages in one command need MULTIAPPEND, which the server does not offer", mailbox, len(items))
	}
	binary := make([]bool, len(items))
	scanned := make([]bool, len(items)) // no NUL check needed while sending
	for i, it := range items {
		if it.Size < 0 || it.Body == nil {
			return 0, nil, fmt.Errorf("imapcopy: append to %q: message %d: no body or negative size", mailbox, i+1)
		}
		for _, f := range it.Flags {
			if !validFlag(f) {
				return 0, nil, fmt.Errorf("imapcopy: append to %q: message %d: invalid flag %q", mailbox, i+1, f)
			}
		}
		if !it.Time.IsZero() && (it.Time.Year() < 0 || it.Time.Year() > 9999) {
			return 0, nil, fmt.Errorf("imapcopy: append to %q: message %d: date %v out of range", mailbox, i+1, it.Time)
		}
		if lim := c.cs.AppendLimit; lim > 0 && it.Size > lim {
			return 0, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
				Text: fmt.Sprintf("message %d: %d bytes exceed the server's APPENDLIMIT of %d (not sent)", i+1, it.Size, lim)}
		}
		binary[i], scanned[i] = it.NUL, it.NUL
		if !binary[i] {
			binary[i], scanned[i] = hasNULInMemory(it.Body)
		}
		if binary[i] && !c.cs.Binary {
			return 0, nil, &nulError{Index: i}
		}
	}

	if err := c.idleCheck(); err != nil {
		return 0, nil, fmt.Errorf("imapcopy: append to %q: %w", mailbox, err)
	}
	stop := context.AfterFunc(ctx, c.kill)
	defer stop()
	tag := c.nextTag()
	start := c.cw.n
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return 0, nil, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " APPEND ")
	c.writeQuoted(mutf7.Encode(mailbox))
	for i, it := range items {
		c.bw.WriteByte(' ')
		if len(it.Flags) > 0 {
			c.bw.WriteByte('(')
			for k, f := range it.Flags {
				if k > 0 {
					c.bw.WriteByte(' ')
				}
				c.bw.WriteString(string(f))
			}
			c.bw.WriteString(") ")
		}
		if !it.Time.IsZero() {
			c.bw.WriteByte('"')
			c.bw.Write(it.Time.AppendFormat(c.bw.AvailableBuffer(), dateTimeLayout))
			c.bw.WriteString(`" `)
		}
		r, done, err := c.literalHeader(ctx, tag, it.Size, binary[i])
		if err != nil {
			return 0, nil, err
		}
		if done {
			return 0, nil, c.refusal(ctx, r)
		}
		if err := c.armWrite(); err != nil {
			return 0, nil, c.fail(ctx, err)
		}
		if err := c.copyBody(ctx, i, it, !scanned[i]); err != nil {
			var ne *nulError
			switch {
			case c.dead.Load():
			case errors.As(err, &ne) && c.cw.n == start:
				// Nothing reached the server: forget the command.
				c.bw.Reset(&c.cw)
			case errors.As(err, &ne):
				err = c.fail(ctx, err)
			default:
				err = c.fail(ctx, fmt.Errorf("imapcopy: append to %q: %w", mailbox, err))
			}
			return 0, nil, err
		}
	}
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return 0, nil, c.fail(ctx, err)
	}
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return 0, nil, c.failWrite(ctx, "append", err)
	}
	r, err := c.waitTagged(ctx, tag, c.lineTimeout+time.Duration(len(items))*c.itemTimeout)
	if err != nil {
		return 0, nil, fmt.Errorf("imapcopy: append to %q: %w", mailbox, err)
	}
	if r.status != imap.StatusResponseTypeOK {
		return 0, nil, c.refusal(ctx, r)
	}
	if strings.EqualFold(string(r.code), "APPENDUID") {
		uidValidity, uids = parseAppendUID(r.arg, len(items))
	}
	return uidValidity, uids, nil
}

// refusal returns the *imap.Error of a tagged NO or BAD; a tagged OK where
// a '+' was due is a protocol error that closes the connection.
func (c *appendConn) refusal(ctx context.Context, r response) error {
	if r.status == imap.StatusResponseTypeNo || r.status == imap.StatusResponseTypeBad {
		return r.err()
	}
	return c.fail(ctx, fmt.Errorf("imapcopy: append: unexpected tagged %q", r.status))
}

func literalTimeout(size int64) time.Duration {
	return appendLiteralTimeout + time.Duration(size/appendLiteralRate)*time.Second
}

// copyBody copies exactly it.Size bytes of it.Body into the write buffer,
// checking for NUL bytes when checkNUL.
func (c *appendConn) copyBody(ctx context.Context, i int, it appendItem, checkNUL bool) error {
	remaining := it.Size
	stalls := 0
	for remaining > 0 {
		if c.bw.Available() == 0 {
			// Each buffer gets the idle time anew: progress keeps the
			// upload going, a stalled server ends it.
			if err := c.armWrite(); err != nil {
				return c.fail(ctx, err)
			}
			if err := c.bw.Flush(); err != nil {
				return c.failWrite(ctx, "append", err)
			}
		}
		buf := c.bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), remaining)]
		n, err := it.Body.Read(buf)
		if n > 0 {
			stalls = 0
			if checkNUL && bytes.IndexByte(buf[:n], 0) >= 0 {
				return &nulError{Index: i, Undeclared: true}
			}
			c.bw.Write(buf[:n])
			remaining -= int64(n)
		}
		switch {
		case err == io.EOF:
			if remaining > 0 {
				return fmt.Errorf("message %d: body ended %d bytes short of its size %d", i+1, remaining, it.Size)
			}
		case err != nil:
			return fmt.Errorf("message %d: read body: %w", i+1, err)
		case n == 0:
			if stalls++; stalls > 100 {
				return fmt.Errorf("message %d: read body: %w", i+1, io.ErrNoProgress)
			}
		}
	}
	// A longer body means a wrong size: the message would be cut.
	var one [1]byte
	for tries := 0; ; tries++ {
		n, err := it.Body.Read(one[:])
		if n > 0 {
			return fmt.Errorf("message %d: body longer than its size %d", i+1, it.Size)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("message %d: read body: %w", i+1, err)
		}
		if tries > 100 {
			return fmt.Errorf("message %d: read body: %w", i+1, io.ErrNoProgress)
		}
	}
}

// parseAppendUID parses the arguments of an APPENDUID code, "v uid-set",
// and expands the set in order. uids is nil unless the set holds exactly
// want UIDs.
func parseAppendUID(arg string, want int) (uint32, []imap.UID) {
	vs, set, ok := strings.Cut(strings.TrimSpace(arg), " ")
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseUint(vs, 10, 32)
	if err != nil || v == 0 {
		return 0, nil
	}
	return uint32(v), expandUIDSet(strings.TrimSpace(set), want)
}

// expandUIDSet expands "5:9,12" in order; nil when the set is malformed or
// does not hold exactly want UIDs. It counts before it allocates.
func expandUIDSet(set string, want int) []imap.UID {
	if set == "" || want <= 0 {
		return nil
	}
	type span struct{ lo, hi uint32 }
	var spans []span
	count := 0
	for part := range strings.SplitSeq(set, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := parseNZ(a)
		if err != nil {
			return nil
		}
		hi := lo
		if isRange {
			if hi, err = parseNZ(b); err != nil {
				return nil
			}
			if lo > hi {
				lo, hi = hi, lo
			}
		}
		if n := int64(hi-lo) + 1; n > int64(want-count) {
			return nil
		} else {
			count += int(n)
		}
		spans = append(spans, span{lo, hi})
	}
	if count != want {
		return nil
	}
	uids := make([]imap.UID, 0, want)
	for _, s := range spans {
		for u := uint64(s.lo); u <= uint64(s.hi); u++ {
			uids = append(uids, imap.UID(u))
		}
	}
	return uids
}

func parseNZ(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err == nil && v == 0 {
		err = errors.New("zero")
	}
	return uint32(v), err
}

// respKind tells continuation requests, untagged and tagged responses
// apart.
type respKind uint8

const (
	respUntagged respKind = iota
	respCont
	respTagged
)

// response is the first line of one server response, parsed as far as an
// append connection needs.
type response struct {
	kind   respKind
	tag    string                  // respTagged
	status imap.StatusResponseType // OK, NO, BAD, BYE, PREAUTH; "" for untagged data
	code   imap.ResponseCode       // upper case
	arg    string                  // the code's arguments
	text   string
	isCaps bool     // untagged CAPABILITY data
	caps   []string // its list
}

// err returns the response as an *imap.Error.
func (r response) err() *imap.Error {
	return &imap.Error{Type: r.status, Code: r.code, Text: r.text}
}

// errProtocol marks responses that are not IMAP.
var errProtocol = errors.New("imapcopy: protocol error")

// parseResponse parses the first line of a response (CRLF removed). It
// never panics and allocates only the strings it returns.
func parseResponse(line []byte) (response, error) {
	var r response
	if len(line) == 0 {
		return r, fmt.Errorf("%w: empty response line", errProtocol)
	}
	if line[0] == '+' {
		r.kind = respCont
		r.text = string(bytes.TrimPrefix(line[1:], []byte(" ")))
		return r, nil
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return r, fmt.Errorf("%w: %q", errProtocol, clip(line))
	}
	tag, rest := line[:sp], line[sp+1:]
	if len(tag) == 1 && tag[0] == '*' {
		r.kind = respUntagged
	} else {
		for _, ch := range tag {
			if ch <= 0x20 || ch >= 0x7f || ch == '+' || ch == '(' || ch == ')' || ch == '{' || ch == '%' || ch == '*' || ch == '"' || ch == '\\' {
				return r, fmt.Errorf("%w: bad tag in %q", errProtocol, clip(line))
			}
		}
		r.kind = respTagged
		r.tag = string(tag)
	}
	word, after, _ := bytes.Cut(rest, []byte(" "))
	switch st := imap.StatusResponseType(strings.ToUpper(string(word))); st {
	case imap.StatusResponseTypeOK, imap.StatusResponseTypeNo, imap.StatusResponseTypeBad,
		imap.StatusResponseTypeBye, imap.StatusResponseTypePreAuth:
		r.status = st
		parseRespText(&r, after)
		return r, nil
	}
	if r.kind == respTagged {
		return r, fmt.Errorf("%w: tagged response without status: %q", errProtocol, clip(line))
	}
	if strings.EqualFold(string(word), "CAPABILITY") {
		r.isCaps = true
		r.caps = strings.Fields(string(after))
	}
	return r, nil
}

// parseRespText fills code, arg and text from resp-text: ["[" code [SP
// arg] "]" SP] text. A code without its "]" is kept as text.
func parseRespText(r *response, b []byte) {
	if len(b) > 0 && b[0] == '[' {
		if end := bytes.IndexByte(b, ']'); end > 0 {
			code, arg, _ := bytes.Cut(b[1:end], []byte(" "))
			r.code = imap.ResponseCode(strings.ToUpper(string(code)))
			r.arg = string(arg)
			b = bytes.TrimPrefix(b[end+1:], []byte(" "))
		}
	}
	r.text = string(b)
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// respReader reads responses: lines, with the literals of untagged data
// skipped.
type respReader struct {
	br       *bufio.Reader
	deadline func(time.Time) error // may be nil
	line     []byte
}

// read reads one whole response and returns its first line parsed; the
// wait for each line is bounded by timeout, each skipped literal by
// literalTimeout.
func (rr *respReader) read(timeout time.Duration) (response, error) {
	line, err := rr.readLine(timeout)
	if err != nil {
		return response{}, err
	}
	r, err := parseResponse(line)
	if err != nil {
		return r, err
	}
	// Only untagged data may carry literals ({n}, ~{n} at a line end);
	// status responses and continuation requests end at CRLF.
	for r.kind == respUntagged && r.status == "" {
		n, ok := literalAtEnd(line)
		if !ok {
			break
		}
		if n < 0 {
			return r, fmt.Errorf("%w: bad literal in %q", errProtocol, clip(line))
		}
		if rr.deadline != nil {
			_ = rr.deadline(time.Now().Add(literalTimeout(n)))
		}
		if _, err := rr.br.Discard(int(n)); err != nil {
			return r, fmt.Errorf("imapcopy: read literal: %w", err)
		}
		if line, err = rr.readLine(timeout); err != nil {
			return r, err
		}
	}
	return r, nil
}

// readLine reads one line without its CRLF (a bare LF is accepted).
func (rr *respReader) readLine(timeout time.Duration) ([]byte, error) {
	if rr.deadline != nil {
		_ = rr.deadline(time.Now().Add(timeout))
	}
	rr.line = rr.line[:0]
	for {
		frag, err := rr.br.ReadSlice('\n')
		if len(rr.line)+len(frag) > appendMaxLine {
			return nil, fmt.Errorf("%w: response line longer than %d bytes", errProtocol, appendMaxLine)
		}
		rr.line = append(rr.line, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("imapcopy: read response: %w", err)
		}
	}
	line := bytes.TrimSuffix(rr.line[:len(rr.line)-1], []byte("\r"))
	return line, nil
}

// literalAtEnd reports whether line ends with a literal announcement
// ({n}, {n+}, ~{n}) and its size; n is -1 for a malformed or too large one.
func literalAtEnd(line []byte) (n int64, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	if len(digits) == 0 || len(digits) > 13 {
		return -1, true
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return -1, true
		}
		n = n*10 + int64(d-'0')
	}
	if n > appendMaxLiteral {
		return -1, true
	}
	return n, true
}
