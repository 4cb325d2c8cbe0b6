package termsafe

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"INBOX", "INBOX"},
		{"Données/été", "Données/été"},
		{"日本語", "日本語"},
		{"a\x1b[31mred", `a\x1b[31mred`},
		{"x\r\ninjected: line FAILED", `x\r\ninjected: line FAILED`},
		{"nul\x00", `nul\x00`},
		{"tab\there", `tab\there`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"rtl\u202egnp.exe", `rtl\u202egnp.exe`},
		{"iso\u2066x\u2069", `iso\u2066x\u2069`},
		{"zw\u200b", `zw\u200b`},
		{"bad\xff\xfe", `bad\xff\xfe`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"", ""},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Error(errors.New("no\x1b")); got != `no\x1b` {
		t.Errorf("Error = %q", got)
	}
	if got := Error(nil); got != "" {
		t.Errorf("Error(nil) = %q", got)
	}
}

// FuzzString holds the promise: no control, C1 or bidi character and no
// invalid UTF-8 in the output, and clean text unchanged.
func FuzzString(f *testing.F) {
	f.Add("a\x1b[2J\r\n\u202e\x00\xff")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("String(%q) = %q: not UTF-8", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("String(%q) = %q holds %U", s, out, r)
			}
		}
		if clean(s) && out != s {
			t.Fatalf("clean %q changed to %q", s, out)
		}
	})
}
