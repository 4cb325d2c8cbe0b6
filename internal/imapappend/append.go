package imapappend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/zxmigrate/zxmigrate/internal/mutf7"
)

// ErrNUL is returned by Append for a message holding a NUL byte when the
// server does not offer BINARY, as a *nulError naming the message.
var ErrNUL = errors.New("imapappend: the message holds a NUL byte and the server does not offer BINARY")

// nulError names the message of an append that holds a NUL byte the
// connection cannot carry. errors.Is(err, ErrNUL) is true.
type nulError struct {
	// Index is the message's index in the items given to append.
	Index int
	// Undeclared is true when the message was not marked NUL and the byte
	// was found while sending it (see Item.NUL).
	Undeclared bool
}

func (e *nulError) Error() string {
	if e.Undeclared {
		return fmt.Sprintf("imapappend: append: message %d holds a NUL byte but was not marked NUL", e.Index+1)
	}
	return fmt.Sprintf("imapappend: append: message %d: %v", e.Index+1, strings.TrimPrefix(ErrNUL.Error(), "imapappend: "))
}

// Is makes errors.Is(err, ErrNUL) true.
func (e *nulError) Is(target error) bool { return target == ErrNUL }

// Item is one message to append.
type Item struct {
	// Flags are sent as the message's flag list; each must be an atom or
	// a system flag.
	Flags []imap.Flag
	// Time is the INTERNALDATE, sent with its zone
	// ("02-Jan-2006 15:04:05 -0700"); zero sends none.
	Time time.Time
	// Size is the exact length of Body.
	Size int64
	// Body is the message: exactly Size bytes.
	Body io.Reader
	// NUL marks a body that holds a NUL byte: it goes as a literal8
	// (RFC 3516), which needs Caps().Binary. Bodies of type *net.Buffers,
	// *bytes.Reader, *bytes.Buffer and *strings.Reader are checked by
	// Append itself; for other readers the caller must tell (see
	// Conn.Append for what happens when it does not).
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

// Append sends ONE APPEND command carrying items (MULTIAPPEND when
// len(items) > 1; the caller checks Caps().Multi) into mailbox, a UTF-8
// name sent in modified UTF-7.
//
// Each literal is non-synchronising when LITERAL+ (or LITERAL- and at most
// 4096 bytes) is offered, else Append waits for '+'. A body marked NUL (or
// an in-memory body found to hold a NUL byte) goes as literal8 ~{n} when
// Caps().Binary; without BINARY Append returns a *nulError naming the
// first such message (errors.Is ErrNUL), sends nothing and keeps the
// connection. A body not so marked that turns out to hold a NUL byte while
// it is sent ends the command: Append returns a *nulError with Undeclared
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
//   - an error wrapping ErrClosed: the connection was closed, or the
//     server had closed it (BYE or EOF while idle); nothing was sent.
//   - anything else (I/O, timeout, BYE, protocol error, a body shorter or
//     longer than Size, ctx cancelled): another error, and the connection
//     is closed; what the server stored is unknown.
//
// Timeouts: 30 s for writing the command line and for each wait for a
// response line; 5 min per literal plus 1 s per 100 KB; the wait for the
// tagged answer after the last literal gets 2 s more per message.
func (c *Conn) Append(ctx context.Context, mailbox string, items []Item) (uidValidity uint32, uids []imap.UID, err error) {
	p, err := c.Start(ctx, mailbox, items)
	if err != nil {
		return 0, nil, err
	}
	return p.Wait(ctx)
}

// Pending is an APPEND command sent whose answer was not read yet.
type Pending struct {
	c       *Conn
	tag     string
	mailbox string
	n       int
}

// Start sends an APPEND as Append does, without waiting for its answer,
// so that several commands can be in flight on one connection (RFC 9051
// section 5.5; with LITERAL+ nothing of a command waits for the server).
// Each Pending must be waited for; answers may be read in any order. An
// error from Start is what Append would have returned for the command.
func (c *Conn) Start(ctx context.Context, mailbox string, items []Item) (*Pending, error) {
	if c.dead.Load() {
		return nil, ErrClosed
	}
	if len(items) == 0 {
		return nil, errors.New("imapappend: append: no messages")
	}
	if len(items) > 1 && !c.cs.Multi {
		return nil, fmt.Errorf("imapappend: append to %q: %d messages in one command need MULTIAPPEND, which the server does not offer", mailbox, len(items))
	}
	binary := make([]bool, len(items))
	scanned := make([]bool, len(items)) // no NUL check needed while sending
	for i, it := range items {
		if it.Size < 0 || it.Body == nil {
			return nil, fmt.Errorf("imapappend: append to %q: message %d: no body or negative size", mailbox, i+1)
		}
		for _, f := range it.Flags {
			if !validFlag(f) {
				return nil, fmt.Errorf("imapappend: append to %q: message %d: invalid flag %q", mailbox, i+1, f)
			}
		}
		if !it.Time.IsZero() && (it.Time.Year() < 0 || it.Time.Year() > 9999) {
			return nil, fmt.Errorf("imapappend: append to %q: message %d: date %v out of range", mailbox, i+1, it.Time)
		}
		if lim := c.cs.AppendLimit; lim > 0 && it.Size > lim {
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
				Text: fmt.Sprintf("message %d: %d bytes exceed the server's APPENDLIMIT of %d (not sent)", i+1, it.Size, lim)}
		}
		binary[i], scanned[i] = it.NUL, it.NUL
		if !binary[i] {
			binary[i], scanned[i] = hasNULInMemory(it.Body)
		}
		if binary[i] && !c.cs.Binary {
			return nil, &nulError{Index: i}
		}
	}

	if err := c.idleCheck(); err != nil {
		return nil, fmt.Errorf("imapappend: append to %q: %w", mailbox, err)
	}
	stop := context.AfterFunc(ctx, c.Kill)
	defer stop()
	tag := c.nextTag()
	start := c.cw.n
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return nil, c.fail(ctx, err)
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
			return nil, err
		}
		if done {
			return nil, c.refusal(ctx, r)
		}
		if err := c.armWrite(); err != nil {
			return nil, c.fail(ctx, err)
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
				err = c.fail(ctx, fmt.Errorf("imapappend: append to %q: %w", mailbox, err))
			}
			return nil, err
		}
	}
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return nil, c.fail(ctx, err)
	}
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return nil, c.failWrite(ctx, "append", err)
	}
	if c.inFlight == nil {
		c.inFlight = map[string]bool{}
	}
	c.inFlight[tag] = true
	return &Pending{c: c, tag: tag, mailbox: mailbox, n: len(items)}, nil
}

// Wait reads the answer to the command, with the results Append
// describes. A connection closed before the answer arrived fails the
// wait: what the server stored is then unknown.
func (p *Pending) Wait(ctx context.Context) (uidValidity uint32, uids []imap.UID, err error) {
	c := p.c
	stop := context.AfterFunc(ctx, c.Kill)
	defer stop()
	r, err := c.waitTagged(ctx, p.tag, c.lineTimeout+time.Duration(p.n)*c.itemTimeout)
	delete(c.inFlight, p.tag)
	if err != nil {
		return 0, nil, fmt.Errorf("imapappend: append to %q: %w", p.mailbox, err)
	}
	if r.status != imap.StatusResponseTypeOK {
		return 0, nil, c.refusal(ctx, r)
	}
	if strings.EqualFold(string(r.code), "APPENDUID") {
		uidValidity, uids = parseAppendUID(r.arg, p.n)
	}
	return uidValidity, uids, nil
}

// refusal returns the *imap.Error of a tagged NO or BAD; a tagged OK where
// a '+' was due is a protocol error that closes the connection.
func (c *Conn) refusal(ctx context.Context, r response) error {
	if r.status == imap.StatusResponseTypeNo || r.status == imap.StatusResponseTypeBad {
		return r.err()
	}
	return c.fail(ctx, fmt.Errorf("imapappend: append: unexpected tagged %q", r.status))
}

func literalTimeout(size int64) time.Duration {
	return appendLiteralTimeout + time.Duration(size/appendLiteralRate)*time.Second
}

// copyBody copies exactly it.Size bytes of it.Body into the write buffer,
// checking for NUL bytes when checkNUL.
func (c *Conn) copyBody(ctx context.Context, i int, it Item, checkNUL bool) error {
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
