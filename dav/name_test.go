package dav

import (
	"regexp"
	"strings"
	"testing"
)

// TestObjectName checks the hand-written safeName against the regular
// expression it replaced, and the names ObjectName gives.
func TestObjectName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9._@+=-]{1,120}$`)
	uids := []string{"", "a", "gen-0001@zxmigrate.test", "A.b_c+d=e-f", "with space", "slash/inside",
		"ü", "%41", ".hidden", strings.Repeat("x", 120), strings.Repeat("x", 121), "tab\t", "x\x00y", "q?x", "a#b"}
	for c := 0; c < 256; c++ {
		uids = append(uids, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	for _, u := range uids {
		if got, want := safeName(u), re.MatchString(u); got != want {
			t.Errorf("safeName(%q) = %v, want %v", u, got, want)
		}
	}
	for _, tc := range []struct{ uid, want string }{
		{"gen-0001@zxmigrate.test", "gen-0001@zxmigrate.test.ics"},
		{".hidden", "92f73832be5afbe3541fe743678515a4f31038db.ics"},
		{"a/b", "3ec69c85a4ff96830024afeef2d4e512181c8f7b.ics"},
	} {
		if got := ObjectName(tc.uid, ".ics"); got != tc.want {
			t.Errorf("ObjectName(%q) = %q, want %q", tc.uid, got, tc.want)
		}
	}
}
