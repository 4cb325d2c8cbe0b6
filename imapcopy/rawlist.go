package imapcopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/mutf7"
)

// This file lists mailboxes without decoding their names, for a server
// that sends a name that is not valid modified UTF-7 (RFC 3501 §5.1.3):
// go-imap's decoder fails the whole LIST on it, so one bad name would block
// the whole account. The listing is read on an append connection, which
// keeps the names as raw bytes; each is then decoded alone, and a bad one
// becomes one bad folder.

// rawMailbox is one LIST answer with its name as sent.
type rawMailbox struct {
	Attrs []imap.MailboxAttr
	Delim rune
	Raw   string
}

// isUTF7Error reports whether err is go-imap's failure to decode a mailbox
// name. go-imap keeps that error unexported (internal/utf7), so its text
// is the only mark.
func isUTF7Error(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "utf7: invalid") || strings.Contains(err.Error(), "invalid UTF-8"))
}

// decodeName decodes a raw mailbox name as go-imap does: modified UTF-7,
// or UTF-8 as some servers send it (RFC 6855); ok is false for anything
// else.
func decodeName(raw string) (string, bool) {
	if strings.EqualFold(raw, "INBOX") {
		return "INBOX", true
	}
	if name, err := mutf7.Decode(raw); err == nil {
		return name, true
	}
	if !utf8.ValidString(raw) || strings.IndexByte(raw, '&') >= 0 {
		return "", false
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return raw, true
}

// listRaw runs LIST "" "*" (with RETURN (SUBSCRIBED SPECIAL-USE) when
// extended) and returns every mailbox with its name undecoded.
func (c *appendConn) listRaw(ctx context.Context, extended bool) ([]rawMailbox, error) {
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
	var out []rawMailbox
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
				return nil, c.fail(ctx, fmt.Errorf("imapcopy: read literal: %w", err))
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
			return nil, c.fail(ctx, fmt.Errorf("imapcopy: unexpected tag %q (waiting for %s)", r.tag, tag))
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
func parseListLine(parts, lits [][]byte) (rawMailbox, bool) {
	var m rawMailbox
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

// errNoRawList is returned when a listing failed on a bad name and the
// Dialer cannot list raw names (it is not an Account).
var errNoRawList = errors.New("imapcopy: a mailbox name is not valid modified UTF-7 and this Dialer cannot list raw names")
