package imapcopy

import (
	"regexp"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// systemFlags are the flags every server stores; \Recent is session state
// and can never be set.
var systemFlags = map[string]imap.Flag{
	`\seen`: imap.FlagSeen, `\answered`: imap.FlagAnswered, `\flagged`: imap.FlagFlagged,
	`\deleted`: imap.FlagDeleted, `\draft`: imap.FlagDraft,
}

// zimbraTag matches Zimbra tag keywords such as "TEST:FLAG211", which
// Carbonio refuses in APPEND.
var zimbraTag = regexp.MustCompile(`^(.+):FLAG[0-9]+$`)

// KeywordChange records one flag that was not sent as read from the source.
type KeywordChange struct {
	// From is the flag as read from the source.
	From string `json:"from"`
	// To is what was sent instead; "" when the flag was dropped.
	To string `json:"to,omitempty"`
	// Reason says which rule applied.
	Reason string `json:"reason"`
}

// flagRule is the destination's view of flags, from PERMANENTFLAGS.
type flagRule struct {
	anyKeyword bool            // PERMANENTFLAGS holds \*
	allowed    map[string]bool // lower-case keywords listed in PERMANENTFLAGS
	known      bool            // PERMANENTFLAGS was reported at all
}

func newFlagRule(perm []imap.Flag) flagRule {
	r := flagRule{allowed: map[string]bool{}, known: perm != nil}
	for _, f := range perm {
		if f == imap.FlagWildcard {
			r.anyKeyword = true
		}
		r.allowed[strings.ToLower(string(f))] = true
	}
	return r
}

// SanitizeFlags applies the documented keyword rule and returns the flags
// to send, sorted and without duplicates, plus what changed:
//
//  1. The five system flags pass (canonical spelling). \Recent is dropped
//     silently (no client can set it). Any other flag starting with '\' is
//     dropped and reported.
//  2. A Zimbra tag keyword NAME:FLAGnnn becomes NAME (Carbonio refuses the
//     ":FLAGnnn" form; the tag name is what users see).
//  3. Every byte that is not a printable ASCII atom character (controls,
//     space, 8-bit, and ( ) { % * " \ ]) is replaced by '_'. go-imap drops
//     the whole connection on an invalid flag, so nothing else is sent.
//  4. When the destination's PERMANENTFLAGS is known and lacks \*, keywords
//     it does not list are dropped and reported.
func SanitizeFlags(flags []imap.Flag, perm []imap.Flag) ([]imap.Flag, []KeywordChange) {
	return sanitize(flags, newFlagRule(perm))
}

func sanitize(flags []imap.Flag, r flagRule) ([]imap.Flag, []KeywordChange) {
	var out []imap.Flag
	var changes []KeywordChange
	seen := map[string]bool{}
	add := func(f string) {
		k := strings.ToLower(f)
		if !seen[k] {
			seen[k] = true
			out = append(out, imap.Flag(f))
		}
	}
	for _, f := range flags {
		s := string(f)
		if strings.HasPrefix(s, `\`) {
			if sf, ok := systemFlags[strings.ToLower(s)]; ok {
				add(string(sf))
			} else if !strings.EqualFold(s, `\Recent`) {
				changes = append(changes, KeywordChange{From: s, Reason: "unknown system flag"})
			}
			continue
		}
		to, reason := s, ""
		if m := zimbraTag.FindStringSubmatch(to); m != nil {
			to, reason = m[1], "Zimbra tag keyword NAME:FLAGnnn"
		}
		if clean := cleanAtom(to); clean != to {
			to = clean
			if reason == "" {
				reason = "not a valid IMAP atom"
			} else {
				reason += "; not a valid IMAP atom"
			}
		}
		if r.known && !r.anyKeyword && !r.allowed[strings.ToLower(to)] {
			changes = append(changes, KeywordChange{From: s, Reason: "destination does not allow new keywords (PERMANENTFLAGS without \\*)"})
			continue
		}
		if to == "" {
			changes = append(changes, KeywordChange{From: s, Reason: reason})
			continue
		}
		if reason != "" {
			changes = append(changes, KeywordChange{From: s, To: to, Reason: reason})
		}
		add(to)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, changes
}

// cleanAtom replaces every byte that may not appear in an IMAP atom.
func cleanAtom(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if ch <= 0x20 || ch >= 0x7f || strings.IndexByte(`(){%*"\]`, ch) >= 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// flagKey is a canonical, order-independent form of a flag set for
// comparison (flags compare case-insensitively).
func flagKey(flags []imap.Flag) string {
	l := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		l = append(l, strings.ToLower(string(f)))
	}
	sort.Strings(l)
	return strings.Join(l, " ")
}

func hasKeywords(flags []imap.Flag) bool {
	for _, f := range flags {
		if len(f) > 0 && f[0] != '\\' {
			return true
		}
	}
	return false
}

func systemOnly(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range flags {
		if len(f) > 0 && f[0] == '\\' {
			out = append(out, f)
		}
	}
	return out
}

func droppedKeywords(flags []imap.Flag, cause error) []KeywordChange {
	var out []KeywordChange
	for _, f := range flags {
		if len(f) > 0 && f[0] != '\\' {
			out = append(out, KeywordChange{From: string(f), Reason: "APPEND with keywords refused: " + cause.Error()})
		}
	}
	return out
}
