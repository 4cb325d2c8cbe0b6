// Package mutf7 encodes and decodes the modified UTF-7 of IMAP mailbox names
// (RFC 3501 §5.1.3).
package mutf7

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// b64 is base64 with ',' in place of '/' and no padding (RFC 3501 §5.1.3).
var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// ErrInvalid is returned by Decode for text that is not modified UTF-7.
var ErrInvalid = errors.New("mutf7: invalid modified UTF-7")

// Encode returns s, a UTF-8 string, in modified UTF-7: printable ASCII
// stays as is ('&' becomes "&-"), every other run of characters becomes
// "&" + modified base64 of its UTF-16 + "-". Invalid UTF-8 bytes are
// encoded as U+FFFD. The result is printable ASCII only.
func Encode(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		u16 := make([]byte, 0, 4*len(pending))
		for _, c := range utf16.Encode(pending) {
			u16 = append(u16, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(b64.EncodeToString(u16))
		b.WriteByte('-')
		pending = pending[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		pending = append(pending, r)
	}
	flush()
	return b.String()
}

// Decode returns the UTF-8 form of s, a modified UTF-7 string. It returns
// ErrInvalid for bytes outside printable ASCII, an unterminated or empty
// shift, bad base64, a shift that encodes printable ASCII or follows
// another shift directly, and broken UTF-16.
func Decode(s string) (string, error) {
	var b strings.Builder
	lastShiftEnd := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrInvalid
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", ErrInvalid
		}
		end += i + 1
		if end == i+1 { // "&-"
			b.WriteByte('&')
			i = end
			continue
		}
		if lastShiftEnd == i {
			return "", ErrInvalid // two shifts in a row must be one
		}
		raw, err := b64.DecodeString(s[i+1 : end])
		if err != nil || len(raw)%2 != 0 {
			return "", ErrInvalid
		}
		u16 := make([]uint16, len(raw)/2)
		for k := range u16 {
			u16[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for k := 0; k < len(u16); k++ {
			r := rune(u16[k])
			switch {
			case utf16.IsSurrogate(r):
				if k+1 >= len(u16) {
					return "", ErrInvalid
				}
				r = utf16.DecodeRune(r, rune(u16[k+1]))
				if r == utf8.RuneError {
					return "", ErrInvalid
				}
				k++
			case r >= 0x20 && r <= 0x7e:
				return "", ErrInvalid // must have been sent as ASCII
			}
			b.WriteRune(r)
		}
		i = end
		lastShiftEnd = end + 1
	}
	return b.String(), nil
}
