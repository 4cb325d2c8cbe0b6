package testserver

import (
	"fmt"
	"testing"
)

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
