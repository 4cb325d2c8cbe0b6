package carddav

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-vcard"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// ErrInvalid marks a vCard that cannot be copied as it is; the error text
// says why.
var ErrInvalid = errors.New("invalid vCard")

func invalid(format string, args ...any) error {
	return fmt.Errorf("carddav: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Rules is the one place where vCards are validated, repaired, split and
// fingerprinted. Its zero value is ready to use and it is safe for
// concurrent use.
type Rules struct{}

var _ dav.Rules = Rules{}

// Split implements dav.Rules. Each BEGIN:VCARD block becomes one item, kept
// byte for byte (vCard 3.0 and 4.0 as given). A card must parse and carry
// VERSION and at least one field besides it; a card without UID gets one
// derived from its content (the same on every run). Groups (vCard 4
// KIND:group, Apple X-ADDRESSBOOKSERVER-KIND:group) are carried; members
// that are not e-mail addresses are noted, since Carbonio keeps only
// address members.
func (Rules) Split(data []byte) ([]dav.Item, error) {
	blocks, closed := davtext.Blocks(davtext.Lines(data))
	if len(blocks) == 0 {
		return nil, invalid("no BEGIN:VCARD")
	}
	if !closed {
		return nil, invalid("unterminated BEGIN:VCARD")
	}
	seen := map[string]bool{}
	var out []dav.Item
	for i, b := range blocks {
		if b.Kind != "VCARD" {
			return nil, invalid("block %d is %s, not VCARD", i+1, b.Kind)
		}
		raw := b.Raw()
		if len(blocks) == 1 {
			raw = data
		}
		dec := vcard.NewDecoder(bytes.NewReader(raw))
		card, err := dec.Decode()
		if err != nil {
			return nil, invalid("card %d does not parse: %v", i+1, err)
		}
		if _, err := dec.Decode(); err != io.EOF {
			return nil, invalid("more than one card")
		}
		if _, ok := b.Top("VERSION"); !ok {
			return nil, invalid("card %d has no VERSION", i+1)
		}
		fields := 0
		for k := range card {
			if k != "VERSION" && k != "UID" {
				fields++
			}
		}
		if fields == 0 {
			return nil, invalid("card %d has no fields", i+1)
		}
		var notes []string
		repaired := false
		uidLine, _ := b.Top("UID")
		uid := strings.TrimSpace(uidLine.Value)
		if uid == "" {
			h := sha1.Sum(b.Raw())
			uid = "zxmigrate-" + hex.EncodeToString(h[:12])
			raw = addUID(b, uid)
			notes = append(notes, "UID "+uid+" added (the card had none)")
			repaired = true
		}
		if seen[uid] {
			return nil, invalid("UID %q appears twice in one resource", uid)
		}
		seen[uid] = true
		if isGroup(card) {
			n, all := 0, 0
			for _, k := range []string{"MEMBER", "X-ADDRESSBOOKSERVER-MEMBER"} {
				for _, f := range card[k] {
					all++
					if !strings.HasPrefix(strings.ToLower(f.Value), "mailto:") {
						n++
					}
				}
			}
			if all == 0 {
				notes = append(notes, "contact group without members (Zimbra's vCard export drops them): recreate its members at the destination")
			}
			if n > 0 {
				notes = append(notes, fmt.Sprintf("contact group with %d members that are not e-mail addresses (Carbonio keeps only address members)", n))
			}
		}
		var h string
		if repaired {
			// raw is the card with the UID line added: hash what a reader
			// of raw parses, and make sure it reads the new UID.
			got, gh, err := Rules{}.Fingerprint(raw)
			if err != nil || got != uid {
				return nil, invalid("card %d: its empty UID cannot be replaced (the repaired card reads UID %q, %v)", i+1, got, err)
			}
			h = gh
		} else {
			h = semanticHash(raw)
		}
		out = append(out, dav.Item{UID: uid, Data: raw, Hash: h, Notes: notes, Repaired: repaired})
	}
	return out, nil
}

func isGroup(c vcard.Card) bool {
	return strings.EqualFold(c.Value("KIND"), "group") || strings.EqualFold(c.Value("X-ADDRESSBOOKSERVER-KIND"), "group")
}

// addUID inserts a UID line after VERSION, dropping UID lines without a
// value (they carry nothing, and a reader would take the first UID).
func addUID(b davtext.Block, uid string) []byte {
	var out []byte
	done := false
	for _, l := range b.Lines {
		if l.Name == "UID" && strings.TrimSpace(l.Value) == "" {
			continue
		}
		out = append(out, l.Raw...)
		if n := len(out); out[n-1] != '\n' {
			out = append(out, '\r', '\n')
		}
		if !done && l.Name == "VERSION" {
			out = append(out, []byte("UID:"+uid+"\r\n")...)
			done = true
		}
	}
	return out
}

// Fingerprint implements dav.Rules: the card's UID and the hash of its
// canonical form (see semantic.go), so that two spellings of the same card
// have one fingerprint.
func (Rules) Fingerprint(data []byte) (string, string, error) {
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err != nil {
		return "", "", invalid("does not parse: %v", err)
	}
	if _, err := dec.Decode(); err != io.EOF {
		return "", "", invalid("more than one card")
	}
	return strings.TrimSpace(card.Value("UID")), semanticHash(data), nil
}

// Diff implements dav.Differ: the properties in which dst differs from
// src, semantically (see semantic.go), e.g. "EMAIL" or "PHOTO".
func (Rules) Diff(src, dst []byte) []string {
	a, _ := canonical(src)
	b, _ := canonical(dst)
	return davtext.Diff(a, b)
}

func semanticHash(data []byte) string {
	c, _ := canonical(data)
	return c.Hash()
}
