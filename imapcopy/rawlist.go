package imapcopy

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/zxmigrate/zxmigrate/internal/mutf7"
)

// This file lists mailboxes without decoding their names, for a server
// that sends a name that is not valid modified UTF-7 (RFC 3501 §5.1.3):
// go-imap's decoder fails the whole LIST on it, so one bad name would block
// the whole account. The listing is read on an append connection, which
// keeps the names as raw bytes; each is then decoded alone, and a bad one
// becomes one bad folder.

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

// errNoRawList is returned when a listing failed on a bad name and the
// Dialer cannot list raw names (it is not an Account).
var errNoRawList = errors.New("imapcopy: a mailbox name is not valid modified UTF-7 and this Dialer cannot list raw names")
