package imapcopy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// nsInfo is one side's personal namespace: prefix and hierarchy separator.
type nsInfo struct {
	Prefix string
	Delim  rune
}

// srcFolder is one mailbox listed on the source.
type srcFolder struct {
	Name       string   // server name (decoded UTF-8)
	Path       []string // segments below the namespace prefix
	NoSelect   bool
	Subscribed bool
	SpecialUse imap.MailboxAttr
	Status     *imap.StatusData
}

// wellKnown maps lower-case folder names to their special use, as clients
// and servers commonly name them.
var wellKnown = map[string]imap.MailboxAttr{
	"sent": imap.MailboxAttrSent, "sent items": imap.MailboxAttrSent, "sent messages": imap.MailboxAttrSent,
	"sent mail": imap.MailboxAttrSent,
	"trash":     imap.MailboxAttrTrash, "deleted items": imap.MailboxAttrTrash, "deleted messages": imap.MailboxAttrTrash,
	"junk": imap.MailboxAttrJunk, "spam": imap.MailboxAttrJunk, "junk e-mail": imap.MailboxAttrJunk,
	"drafts":  imap.MailboxAttrDrafts,
	"archive": imap.MailboxAttrArchive, "archives": imap.MailboxAttrArchive,
}

// specialUses lists the attributes we map, in a stable order.
var specialUses = []imap.MailboxAttr{imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash,
	imap.MailboxAttrJunk, imap.MailboxAttrArchive}

func specialUseOf(attrs []imap.MailboxAttr) imap.MailboxAttr {
	for _, a := range attrs {
		for _, su := range specialUses {
			if strings.EqualFold(string(a), string(su)) {
				return su
			}
		}
	}
	return ""
}

func hasAttr(attrs []imap.MailboxAttr, want imap.MailboxAttr) bool {
	for _, a := range attrs {
		if strings.EqualFold(string(a), string(want)) {
			return true
		}
	}
	return false
}

// splitName turns a server name into path segments below the namespace
// prefix. INBOX is always the single segment "INBOX".
func splitName(name string, ns nsInfo) []string {
	if strings.EqualFold(name, "INBOX") {
		return []string{"INBOX"}
	}
	rest := name
	if ns.Prefix != "" && strings.HasPrefix(strings.ToUpper(name), strings.ToUpper(ns.Prefix)) {
		rest = name[len(ns.Prefix):]
	}
	if ns.Delim == 0 {
		return []string{rest}
	}
	return strings.Split(rest, string(ns.Delim))
}

// joinName builds a destination server name from path segments. A segment
// holding the destination separator has it replaced by '_' (reported by the
// caller), since the separator cannot appear inside a name.
func joinName(path []string, ns nsInfo) (name string, changed bool) {
	if len(path) == 1 && strings.EqualFold(path[0], "INBOX") {
		return "INBOX", false
	}
	// A separator inside a segment becomes '_' ('-' on a server whose
	// separator is '_' itself).
	repl := "_"
	if ns.Delim == '_' {
		repl = "-"
	}
	segs := make([]string, len(path))
	for i, s := range path {
		segs[i] = s
		if ns.Delim != 0 && strings.ContainsRune(s, ns.Delim) {
			segs[i] = strings.ReplaceAll(s, string(ns.Delim), repl)
			changed = true
		}
	}
	if ns.Delim == 0 {
		return ns.Prefix + strings.Join(segs, ""), changed
	}
	return ns.Prefix + strings.Join(segs, string(ns.Delim)), changed
}

// displayName is the source name with '/' as separator: the form patterns
// and --map use.
func displayName(path []string) string { return strings.Join(path, "/") }

// matchPattern matches name against a glob: '*' matches any run of
// characters (separators included), '?' one character. Matching is
// case-sensitive except for INBOX.
func matchPattern(pattern, name string) bool {
	if strings.EqualFold(pattern, "INBOX") {
		return strings.EqualFold(name, "INBOX")
	}
	p, n := []rune(pattern), []rune(name)
	// Iterative wildcard match with backtracking on the last '*'.
	pi, ni, star, mark := 0, 0, -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && p[pi] == '*': // before the literal test: "*" matches a name holding '*'
			star, mark = pi, ni
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// folderPlan is what to do with one source folder.
type folderPlan struct {
	Src      srcFolder
	Display  string // source path with '/'
	Dst      string // destination server name; "" when skipped
	DstUse   imap.MailboxAttr
	Renamed  string // why the name changed, for the report
	Skip     string // reason when skipped on purpose
	Err      string // why the folder cannot be copied (a failure)
	NoSelect bool   // do not create as a real folder
}

// planFolders maps every source folder to a destination name.
func (c *Copier) planFolders(src []srcFolder, srcNS, dstNS nsInfo, dstList []*imap.ListData, srcHasSpecialUse bool) ([]folderPlan, error) {
	// Destination folders by special use, and by lower-case name.
	dstByUse := map[imap.MailboxAttr]string{}
	dstByLower := map[string]string{}
	for _, d := range dstList {
		if su := specialUseOf(d.Attrs); su != "" {
			if _, ok := dstByUse[su]; !ok {
				dstByUse[su] = d.Mailbox
			}
		}
		dstByLower[strings.ToLower(d.Mailbox)] = d.Mailbox
	}
	usedUse := map[imap.MailboxAttr]bool{}
	var plans []folderPlan
	taken := map[string]string{} // dst name -> src display
	sort.Slice(src, func(i, j int) bool { return src[i].Name < src[j].Name })
	for _, f := range src {
		p := folderPlan{Src: f, Display: displayName(f.Path), NoSelect: f.NoSelect}
		if reason := c.skipReason(p.Display); reason != "" {
			p.Skip = reason
			plans = append(plans, p)
			continue
		}
		// Special use: by attribute, else (source without SPECIAL-USE) by a
		// well-known top-level name.
		use := f.SpecialUse
		if use == "" && !srcHasSpecialUse && len(f.Path) == 1 {
			use = wellKnown[strings.ToLower(f.Path[0])]
		}
		if mapped, ok := c.Map[p.Display]; ok {
			p.Dst, _ = joinName(strings.Split(mapped, "/"), dstNS)
			p.Renamed = "mapped by --map"
			use = ""
		} else if use != "" && !usedUse[use] {
			usedUse[use] = true
			p.DstUse = use
			if d, ok := dstByUse[use]; ok {
				p.Dst = d
			} else if d, ok := dstByLower[strings.ToLower(mustJoin(f.Path, dstNS))]; ok {
				p.Dst = d
			}
		}
		if p.Dst == "" {
			name, changed := joinName(f.Path, dstNS)
			p.Dst = name
			if changed {
				p.Renamed = fmt.Sprintf("source name contains the destination separator %q, replaced by '_'", dstNS.Delim)
			}
		}
		if p.Dst != mustJoin(f.Path, dstNS) && p.Renamed == "" {
			p.Renamed = "special use " + string(p.DstUse)
		}
		if prev, dup := taken[strings.ToLower(p.Dst)]; dup && !f.NoSelect {
			p.Err = fmt.Sprintf("imapcopy: destination name %q already used by source folder %q; use --map", p.Dst, prev)
			p.Dst = ""
		} else if !f.NoSelect {
			taken[strings.ToLower(p.Dst)] = p.Display
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func mustJoin(path []string, ns nsInfo) string {
	n, _ := joinName(path, ns)
	return n
}

// skipReason applies Include, Exclude and SkipFolder.
func (c *Copier) skipReason(display string) string {
	if len(c.Include) > 0 {
		in := false
		for _, p := range c.Include {
			if matchPattern(p, display) {
				in = true
				break
			}
		}
		if !in {
			return "not included"
		}
	}
	for _, p := range c.Exclude {
		if matchPattern(p, display) {
			return "excluded by " + p
		}
	}
	if c.SkipFolder != nil {
		if skip, reason := c.SkipFolder(display); skip {
			if reason == "" {
				reason = "skipped by SkipFolder"
			}
			return reason
		}
	}
	return ""
}
