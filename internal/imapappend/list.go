package imapappend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Mailbox is one LIST answer with its name as sent, undecoded.
type Mailbox struct {
	// Attrs are the mailbox attributes as sent.
	Attrs []imap.MailboxAttr
	// Delim is the hierarchy delimiter, 0 for NIL.
	Delim rune
	// Raw is the name as sent: modified UTF-7, UTF-8 or anything else.
	Raw string
}

// List runs LIST "" "*" (with RETURN (SUBSCRIBED SPECIAL-USE) when
// extended) and returns every mailbox with its name undecoded.
func (c *Conn) List(ctx context.Context, extended bool) ([]Mailbox, error) {
	tag := c.nextTag()
	cmd := `LIST "" "*"`
	if extended {
		cmd += " RETURN (SUBSCRIBED SPECIAL-USE)"
	}
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return nil, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " " + cmd + "\r\n")
	if err := c.bw.Flush(); err != nil {
		return nil, c.failWrite(ctx, "list", err)
	}
	var out []Mailbox
	for {
		line, err := c.rr.readLine(c.lineTimeout)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		// The response continues after each literal it announces.
		var lits [][]byte
		parts := [][]byte{append([]byte(nil), line...)}
		for {
			n, ok := literalAtEnd(parts[len(parts)-1])
			if !ok {
				break
			}
			if n < 0 {
				return nil, c.fail(ctx, fmt.Errorf("%w: bad literal in %q", errProtocol, clip(line)))
			}
			lit := make([]byte, n)
			if _, err := io.ReadFull(c.rr.br, lit); err != nil {
				return nil, c.fail(ctx, fmt.Errorf("imapappend: read literal: %w", err))
			}
			lits = append(lits, lit)
			next, err := c.rr.readLine(c.lineTimeout)
			if err != nil {
				return nil, c.fail(ctx, err)
			}
			parts = append(parts, append([]byte(nil), next...))
		}
		r, err := parseResponse(parts[0])
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		switch {
		case r.kind == respTagged && r.tag == tag:
			if r.status != imap.StatusResponseTypeOK {
				return nil, r.err()
			}
			return out, nil
		case r.kind == respTagged:
			return nil, c.fail(ctx, fmt.Errorf("imapappend: unexpected tag %q (waiting for %s)", r.tag, tag))
		case r.status == imap.StatusResponseTypeBye:
			return nil, c.fail(ctx, &byeError{text: r.text})
		}
		if m, ok := parseListLine(parts, lits); ok {
			out = append(out, m)
		}
	}
}

// parseListLine parses `* LIST (attrs) delim name ...`: parts are the
// response's lines, lits the literals between them. It never panics.
func parseListLine(parts, lits [][]byte) (Mailbox, bool) {
	var m Mailbox
	b := parts[0]
	if !bytes.HasPrefix(bytes.ToUpper(b[:min(len(b), 7)]), []byte("* LIST ")) {
		return m, false
	}
	b = b[7:]
	if len(b) == 0 || b[0] != '(' {
		return m, false
	}
	end := bytes.IndexByte(b, ')')
	if end < 0 {
		return m, false
	}
	for _, a := range strings.Fields(string(b[1:end])) {
		m.Attrs = append(m.Attrs, imap.MailboxAttr(a))
	}
	b = bytes.TrimPrefix(b[end+1:], []byte(" "))
	switch {
	case len(b) >= 3 && bytes.EqualFold(b[:3], []byte("NIL")):
		b = b[3:]
	case len(b) >= 4 && b[0] == '"' && b[1] == '\\' && b[3] == '"':
		m.Delim, b = rune(b[2]), b[4:]
	case len(b) >= 3 && b[0] == '"' && b[2] == '"':
		m.Delim, b = rune(b[1]), b[3:]
	default:
		return m, false
	}
	b = bytes.TrimPrefix(b, []byte(" "))
	switch {
	case len(b) > 0 && b[0] == '{':
		if len(lits) == 0 {
			return m, false
		}
		m.Raw = string(lits[0])
	case len(b) > 0 && b[0] == '"':
		var sb strings.Builder
		i := 1
		for ; i < len(b) && b[i] != '"'; i++ {
			if b[i] == '\\' && i+1 < len(b) {
				i++
			}
			sb.WriteByte(b[i])
		}
		if i >= len(b) {
			return m, false
		}
		m.Raw = sb.String()
	default:
		name, _, _ := bytes.Cut(b, []byte(" "))
		if len(name) == 0 {
			return m, false
		}
		m.Raw = string(name)
	}
	return m, true
}
