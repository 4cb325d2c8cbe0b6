package imapcopy

import (
	"bufio"
	"bytes"
	"net/textproto"
	"slices"
	"strings"
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

// textprotoValues is the reference scanHeader must agree with: net/textproto's
// ReadMIMEHeader, values unfolded and their whitespace collapsed.
func textprotoValues(head []byte, names ...string) ([]string, error) {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(head))).ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.Join(strings.Fields(h.Get(n)), " ")
	}
	return out, nil
}

// TestScanHeader: the quick header scan gives textproto's values for clean
// headers (folding, repeated fields, any case, absent fields) and declines
// what it does not know.
func TestScanHeader(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       []string // nil: declined
	}{
		{"folded", "From: a@b\r\nMessage-ID:\r\n <x@y>\r\nDATE: Mon,\r\n\t1 Jan 2024  10:00:00 +0000 \r\n\r\nbody", []string{"<x@y>", "Mon, 1 Jan 2024 10:00:00 +0000"}},
		{"first wins", "Message-Id: <1@a>\r\nMessage-Id: <2@a>\r\n\r\n", []string{"<1@a>", ""}},
		{"whitespace-only continuation", "Date: a\r\n \r\nMessage-Id: <m>\r\n\r\n", []string{"<m>", "a"}},
		{"empty header", "\r\nbody", []string{"", ""}},
		{"bare LF lines", "Date: a\nMessage-Id: <m>\n\n", []string{"<m>", "a"}},
		{"no blank line", "Message-Id: <m>\r\n", nil},
		{"leading continuation", " x\r\nMessage-Id: <m>\r\n\r\n", nil},
		{"space in name", "Message-Id : <m>\r\n\r\n", nil},
		{"no colon", "Message-Id <m>\r\n\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := scanHeader([]byte(tc.head), []string{"Message-Id", "Date"})
			if tc.want == nil {
				if ok {
					t.Fatalf("scanHeader = %q, want declined", got)
				}
				return
			}
			if !ok {
				t.Fatal("scanHeader declined a clean header")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if ref, err := textprotoValues([]byte(tc.head), "Message-Id", "Date"); err != nil || !slices.Equal(got, ref) {
				t.Errorf("textproto gives %q, %v", ref, err)
			}
		})
	}
}

// FuzzScanHeader: whenever scanHeader accepts a header, textproto parses it
// without error and gives the same values, so the quick path never changes
// a fingerprint.
func FuzzScanHeader(f *testing.F) {
	f.Add([]byte("From: a@b\r\nMessage-ID:\r\n <x@y>\r\nDate: Mon, 1 Jan 2024\r\n\r\nbody"))
	f.Add([]byte("Message-Id: <1@a>\r\nmessage-id: <2@a>\r\n \t\r\n\r\n"))
	f.Add([]byte("Date: \xc2\xa0x\x0b y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		got, ok := scanHeader(head, []string{"Message-Id", "Date"})
		if !ok {
			return
		}
		ref, err := textprotoValues(head, "Message-Id", "Date")
		if err != nil {
			t.Fatalf("scanHeader accepted %q, textproto refuses it: %v", head, err)
		}
		if !slices.Equal(got, ref) {
			t.Fatalf("scanHeader(%q) = %q, textproto %q", head, got, ref)
		}
	})
}
