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
