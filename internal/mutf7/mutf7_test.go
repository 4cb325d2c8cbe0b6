package mutf7

import (
	"errors"
	"testing"
	"unicode/utf8"
)

var cases = map[string]string{
	"INBOX":               "INBOX",
	"~peter/mail/台北/日本語":  "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	"Reçus & Factures":    "Re&AOc-us &- Factures",
	"日本語 メール":             "&ZeVnLIqe- &MOEw,DDr-",
	"Emoji 🏢":             "Emoji &2Dzf4g-",
	"Ελληνικά/Υποφάκελος": "&A5UDuwO7A7cDvQO5A7oDrA-/&A6UDwAO,A8YDrAO6A7UDuwO,A8I-",
	"Entwürfe/日本":         "Entw&APw-rfe/&ZeVnLA-",
	"tab\there":           "tab&AAk-here",
	"&":                   "&-",
	"":                    "",
}

func TestEncode(t *testing.T) {
	for in, want := range cases {
		if got := Encode(in); got != want {
			t.Errorf("Encode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecode(t *testing.T) {
	for want, in := range cases {
		got, err := Decode(in)
		if err != nil || got != want {
			t.Errorf("Decode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"&", "&Jjo", "&AGE-", "&ZeVnLIqe-&MOEw,DDr-", "a\x01", "é", "&2Dw-", "&A-"} {
		if got, err := Decode(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) = %q, %v; want ErrInvalid", bad, got, err)
		}
	}
}

func FuzzEncode(f *testing.F) {
	for in := range cases {
		f.Add(in)
	}
	f.Add("\xff\xfe&-")
	f.Fuzz(func(t *testing.T, s string) {
		enc := Encode(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("Encode(%q) = %q: byte %#x is not printable ASCII", s, enc, enc[i])
			}
		}
		dec, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%q)) = %q: %v", s, enc, err)
		}
		if utf8.ValidString(s) && dec != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, dec)
		}
	})
}
