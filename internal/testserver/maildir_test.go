package testserver

import (
	"fmt"
	"testing"
)

func TestEncodeMUTF7(t *testing.T) {
	cases := map[string]string{
		"INBOX":               "INBOX",
		"~peter/mail/台北/日本語":  "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		"Reçus & Factures":    "Re&AOc-us &- Factures",
		"日本語 メール":             "&ZeVnLIqe- &MOEw,DDr-",
		"Emoji 🏢":             "Emoji &2Dzf4g-",
		"Ελληνικά/Υποφάκελος": "&A5UDuwO7A7cDvQO5A7oDrA-/&A6UDwAO,A8YDrAO6A7UDuwO,A8I-",
		"tab\there":           "tab&AAk-here",
		"":                    "",
	}
	for in, want := range cases {
		if got := encodeMUTF7(in); got != want {
			t.Errorf("encodeMUTF7(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaildirFlagLetters(t *testing.T) {
	kw := &keywords{}
	got, added, err := maildirFlagLetters([]string{`\Seen`, `$Forwarded`, `\Answered`, `\Deleted`, `Work`, `\Draft`, `\Flagged`}, kw)
	if err != nil || !added || got != "DFRSTab" {
		t.Errorf("got %q, %v, %v; want \"DFRSTab\", true, nil", got, added, err)
	}
	if string(kw.bytes()) != "0 $Forwarded\n1 Work\n" {
		t.Errorf("dovecot-keywords = %q", kw.bytes())
	}
	got, added, err = maildirFlagLetters([]string{`work`}, kw)
	if err != nil || added || got != "b" {
		t.Errorf("known keyword, other case: got %q, %v, %v; want \"b\", false, nil", got, added, err)
	}
	for i := 2; i < 26; i++ {
		if _, _, err := maildirFlagLetters([]string{fmt.Sprintf("k%d", i)}, kw); err != nil {
			t.Fatalf("keyword %d: %v", i, err)
		}
	}
	if _, _, err := maildirFlagLetters([]string{"one-too-many"}, kw); err == nil {
		t.Error("27th keyword: got nil error")
	}
	for _, bad := range []string{`\Recent`, `\Bogus`, `a b`, `x(`, ``} {
		if _, _, err := maildirFlagLetters([]string{bad}, &keywords{}); err == nil {
			t.Errorf("flag %q: got nil error", bad)
		}
	}
}
