package imapcopy

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestCompareCountsMultiplicity(t *testing.T) {
	p := func(uid imap.UID, fp string) printed {
		return printed{msgInfo: msgInfo{UID: uid, Date: 1}, fp: fp}
	}
	rule := newFlagRule([]imap.Flag{imap.FlagWildcard})
	for _, tc := range []struct {
		name                string
		src, dst            []printed
		missing, dup, extra int
		ok                  bool
	}{
		{"equal with a true duplicate", []printed{p(1, "a"), p(2, "a"), p(3, "b")}, []printed{p(7, "a"), p(8, "b"), p(9, "a")}, 0, 0, 0, true},
		{"one copy of a duplicated pair lost", []printed{p(1, "a"), p(2, "a")}, []printed{p(7, "a")}, 1, 0, 0, false},
		{"copied twice", []printed{p(1, "a"), p(2, "b")}, []printed{p(7, "a"), p(8, "b"), p(9, "b")}, 0, 1, 0, false},
		{"unrelated mail already there", []printed{p(1, "a")}, []printed{p(7, "a"), p(8, "z")}, 0, 0, 1, true},
	} {
		v := compare(tc.src, tc.dst, nil, nil, rule, false)
		if v.Missing != tc.missing || v.Duplicated != tc.dup || v.Extra != tc.extra || v.OK() != tc.ok {
			t.Errorf("%s: got missing=%d duplicated=%d extra=%d ok=%v, want %d %d %d %v",
				tc.name, v.Missing, v.Duplicated, v.Extra, v.OK(), tc.missing, tc.dup, tc.extra, tc.ok)
		}
	}
}

// TestHeaderValuesStrict: a clean header gives the values headerValues
// gives; a header that does not end within the head, has bare LF line ends,
// a NUL byte or a malformed line is left to the server.
func TestHeaderValuesStrict(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		ok         bool
	}{
		{"clean", "From: a@b\r\nMessage-ID:\r\n <x@y>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody", true},
		{"no message-id", "From: a@b\r\nDate: Mon, 1 Jan 2024\r\n\r\n", true},
		{"cut", "From: a@b\r\nMessage-ID: <x@y>\r\n", false},
		{"bare LF", "From: a@b\nMessage-ID: <x@y>\n\nbody", false},
		{"NUL", "From: a\x00b\r\nMessage-ID: <x@y>\r\n\r\n", false},
		{"malformed line", "From: a@b\r\nthis is not a field\r\nMessage-ID: <x@y>\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := headerValuesStrict([]byte(tc.head), "Message-Id", "Date")
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok {
				if want := headerValues([]byte(tc.head), "Message-Id", "Date"); got[0] != want[0] || got[1] != want[1] {
					t.Errorf("got %q, headerValues gives %q", got, want)
				}
			}
		})
	}
}
