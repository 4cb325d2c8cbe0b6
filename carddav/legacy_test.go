package carddav

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sort"
	"strings"

	"github.com/emersion/go-vcard"
)

// The fingerprint verification used before the semantic comparison: the
// fuzz tests check that the semantic comparison flags every change this
// one flags as a loss.

// legacyIgnored are the properties the legacy fingerprint skipped.
var legacyIgnored = map[string]bool{"PRODID": true, "REV": true}

// legacyHash is the legacy fingerprint of data; ok is false when go-vcard
// does not parse it as one card.
func legacyHash(data []byte) (string, bool) {
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err != nil {
		return "", false
	}
	if _, err := dec.Decode(); err != io.EOF {
		return "", false
	}
	return hashCard(card), true
}

// hashCard hashes a card's fields with parameters sorted, ignoring PRODID
// and REV.
func hashCard(card vcard.Card) string {
	var lines []string
	for k, fs := range card {
		if legacyIgnored[k] {
			continue
		}
		for _, f := range fs {
			var ps []string
			for pk, pv := range f.Params {
				vv := append([]string(nil), pv...)
				for i := range vv {
					vv[i] = strings.ToLower(vv[i])
				}
				sort.Strings(vv)
				ps = append(ps, strings.ToUpper(pk)+"="+strings.Join(vv, ","))
			}
			sort.Strings(ps)
			lines = append(lines, k+";"+strings.Join(ps, ";")+":"+f.Value)
		}
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\x1f")))
	return hex.EncodeToString(h[:])
}
