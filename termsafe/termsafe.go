// Package termsafe escapes text that comes from servers (folder names,
// keywords, subjects, error texts) before it reaches a terminal or a text
// log, so that a hostile server cannot recolour the terminal, set its
// title, move the cursor or forge lines.
//
// Escaped are the C0 controls (NUL, ESC, CR, LF, TAB ...) and DEL as \xNN
// (\t, \n, \r as such), the C1 controls U+0080-U+009F and the Unicode
// bidirectional and invisible format controls (U+061C, U+200B-U+200F,
// U+202A-U+202E, U+2060-U+2069, U+FEFF) as \uNNNN, and bytes that are not
// UTF-8 as \xNN. Everything else, other scripts included, is kept. JSON
// and HTML output keep their own escaping and do not use this package.
package termsafe

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// String returns s with every control or format character escaped.
func String(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Error returns the message of err escaped with String; "" for nil.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// Sprintf formats like fmt.Sprintf and escapes the result: use it only
// where the format itself holds no intended control character.
func Sprintf(format string, args ...any) string {
	return String(fmt.Sprintf(format, args...))
}

// Fprintf formats like fmt.Fprintf with its string, error and fmt.Stringer
// arguments escaped with String. The format is written as it is: its tabs
// and newlines are the caller's, the arguments' are the server's.
func Fprintf(w io.Writer, format string, args ...any) (int, error) {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = String(v)
		case error:
			safe[i] = Error(v)
		case fmt.Stringer:
			safe[i] = String(v.String())
		default:
			safe[i] = a
		}
	}
	return fmt.Fprintf(w, format, safe...)
}

// clean reports whether s needs no escaping (the common case, no
// allocation).
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			for _, r := range s[i:] {
				if r == utf8.RuneError || r < 0x20 || r == 0x7f || unsafeRune(r) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// unsafeRune reports C1 controls and the bidi and invisible format
// characters that can reorder or hide text on a terminal (Unicode UAX #9;
// CVE-2021-42574 "Trojan Source").
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e,
		r >= 0x2060 && r <= 0x2069, r == 0xfeff, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
