package corpus

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	ics "github.com/arran4/golang-ical"
	"github.com/emersion/go-vcard"
)

// DefaultMaxDiffs caps the differences DiffMail and DiffCollections return.
const DefaultMaxDiffs = 50

// DiffOptions tunes DiffMail and DiffCollections. A nil *DiffOptions means
// the zero value: strict comparison, special-use ignored, 50 lines.
type DiffOptions struct {
	// SpecialUse compares Folder.SpecialUse too.
	SpecialUse bool
	// MissingNoSelectOK accepts that a \Noselect folder of want is absent
	// from got (servers such as imapmemserver do not list implicit parents).
	// A \Noselect folder that got lists as selectable is still a difference.
	MissingNoSelectOK bool
	// ExtraFoldersOK accepts folders in got that want lacks, as long as
	// they hold no messages (servers auto-create Sent, Trash…).
	ExtraFoldersOK bool
	// SkipCollectionProps leaves out DisplayName, Description, Color and
	// Components (for servers that do not keep them, such as Xandikos 0.2.8
	// for the description and the supported component set).
	SkipCollectionProps bool
	// ExtraCollectionsOK accepts empty collections in got that want lacks
	// (servers auto-create "calendar", "addressbook", "inbox").
	ExtraCollectionsOK bool
	// KeywordCase compares keywords case-sensitively. By default keywords
	// compare case-insensitively, as IMAP servers match them (imapmemserver
	// stores them lower-cased). System flags always compare
	// case-insensitively.
	KeywordCase bool
	// IgnoreFlags lists flags or keywords left out of the comparison on
	// both sides, e.g. ZimbraTagKeyword when the destination refuses it by
	// a documented policy.
	IgnoreFlags []string
	// Folder maps a folder name of want to the name expected in got; nil
	// means the same name.
	Folder func(string) string
	// Collection maps a collection name of want to the name expected in
	// got; nil means the same name.
	Collection func(string) string
	// TimeZonesByID compares VTIMEZONE components by TZID only, for
	// servers that replace the definitions with their own (Zimbra and
	// Carbonio do); the events still name their zones by TZID.
	TimeZonesByID bool
	// IgnoreProps lists further iCalendar/vCard property names to leave out
	// of the comparison (see DiffCollections for the built-in list).
	IgnoreProps []string
	// Max caps the number of differences; 0 means DefaultMaxDiffs. One
	// more line says how many were left out.
	Max int
}

func (o *DiffOptions) max() int {
	if o.Max > 0 {
		return o.Max
	}
	return DefaultMaxDiffs
}

// differ collects capped differences.
type differ struct {
	max   int
	lines []string
	more  int
}

func (d *differ) addf(format string, a ...any) {
	if len(d.lines) < d.max {
		d.lines = append(d.lines, fmt.Sprintf(format, a...))
		return
	}
	d.more++
}

func (d *differ) result() []string {
	if d.more > 0 {
		d.lines = append(d.lines, fmt.Sprintf("… and %d more differences", d.more))
	}
	return d.lines
}

// DiffMail compares two mailboxes and returns human-readable differences,
// nil when they hold the same data. It compares the folder tree (names,
// subscription, \Noselect, optionally special use) and, per folder, the
// multiset of messages keyed by the SHA-256 of Raw, the flags (see
// DiffOptions.KeywordCase; `\Recent` is ignored) and the INTERNALDATE to the
// second as an instant. Order never matters; duplicates count.
func DiffMail(want, got Mailbox, o *DiffOptions) []string {
	if o == nil {
		o = &DiffOptions{}
	}
	d := &differ{max: o.max()}
	diffFolders(d, want, got, o)
	wantBy, order := groupMessages(want.Messages, o, true)
	gotBy, gotOrder := groupMessages(got.Messages, o, false)
	for _, k := range gotOrder {
		if _, ok := wantBy[k]; !ok {
			order = append(order, k)
		}
	}
	for _, k := range order {
		w, g := wantBy[k], gotBy[k]
		folder := k
		if len(w) > 0 {
			folder = o.mapFolder(w[0].m.Folder)
		} else if len(g) > 0 {
			folder = g[0].m.Folder
		}
		diffMessages(d, folder, w, g)
	}
	return d.result()
}

func (o *DiffOptions) mapFolder(s string) string {
	if o.Folder != nil {
		return o.Folder(s)
	}
	return s
}

// diffFolders compares the folder trees.
func diffFolders(d *differ, want, got Mailbox, o *DiffOptions) {
	gotFolders := map[string]Folder{}
	for _, f := range got.Folders {
		gotFolders[folderKey(f.Name)] = f
	}
	wantNames := map[string]bool{}
	for _, wf := range want.Folders {
		name := o.mapFolder(wf.Name)
		wantNames[folderKey(name)] = true
		gf, ok := gotFolders[folderKey(name)]
		switch {
		case !ok && wf.NoSelect && o.MissingNoSelectOK:
			continue
		case !ok:
			d.addf("folder %q: missing", name)
			continue
		}
		if wf.NoSelect != gf.NoSelect {
			d.addf("folder %q: \\Noselect want %v, got %v", name, wf.NoSelect, gf.NoSelect)
		}
		if wf.Subscribed != gf.Subscribed {
			d.addf("folder %q: subscribed want %v, got %v", name, wf.Subscribed, gf.Subscribed)
		}
		if o.SpecialUse && !strings.EqualFold(wf.SpecialUse, gf.SpecialUse) {
			d.addf("folder %q: special use want %q, got %q", name, wf.SpecialUse, gf.SpecialUse)
		}
	}
	gotCount := map[string]int{}
	for _, m := range got.Messages {
		gotCount[folderKey(m.Folder)]++
	}
	for _, gf := range got.Folders {
		k := folderKey(gf.Name)
		if !wantNames[k] && (!o.ExtraFoldersOK || gotCount[k] > 0) {
			d.addf("folder %q: unexpected (%d messages)", gf.Name, gotCount[k])
		}
	}
}

// mailItem is a message reduced to what DiffMail compares.
type mailItem struct {
	key, sha, flags string
	date            int64
	m               *Message
}

// groupMessages reduces msgs to mailItems per folder key (mapped through
// o.Folder when mapped), and returns the folder keys in first-seen order.
func groupMessages(msgs []Message, o *DiffOptions, mapped bool) (map[string][]mailItem, []string) {
	ignore := map[string]bool{}
	for _, f := range o.IgnoreFlags {
		ignore[normFlag(f, o.KeywordCase)] = true
	}
	out := map[string][]mailItem{}
	var order []string
	for i := range msgs {
		m := &msgs[i]
		name := m.Folder
		if mapped {
			name = o.mapFolder(name)
		}
		k := folderKey(name)
		if _, ok := out[k]; !ok {
			order = append(order, k)
		}
		var fl []string
		for _, f := range m.Flags {
			n := normFlag(f, o.KeywordCase)
			if n != `\Recent` && !ignore[n] {
				fl = append(fl, n)
			}
		}
		sort.Strings(fl)
		it := mailItem{sha: sha256Hex(m.Raw), flags: strings.Join(compactStrings(fl), " "), date: m.InternalDate.Unix(), m: m}
		it.key = fmt.Sprintf("%s|%s|%d", it.sha, it.flags, it.date)
		out[k] = append(out[k], it)
	}
	return out, order
}

// diffMessages compares the messages of one folder as multisets; leftovers
// with the same bytes are reported as flag or date changes.
func diffMessages(d *differ, folder string, w, g []mailItem) {
	gotKeys := map[string]int{}
	for _, it := range g {
		gotKeys[it.key]++
	}
	var wRest []mailItem
	for _, it := range w {
		if gotKeys[it.key] > 0 {
			gotKeys[it.key]--
			continue
		}
		wRest = append(wRest, it)
	}
	var gRest []mailItem
	for _, it := range g {
		if gotKeys[it.key] > 0 {
			gotKeys[it.key]--
			gRest = append(gRest, it)
		}
	}
	bySHA := map[string][]int{}
	for i, it := range gRest {
		bySHA[it.sha] = append(bySHA[it.sha], i)
	}
	used := make([]bool, len(gRest))
	for _, it := range wRest {
		idx := -1
		for _, j := range bySHA[it.sha] {
			if !used[j] {
				idx = j
				break
			}
		}
		if idx < 0 {
			d.addf("folder %q: message %s missing", folder, describe(it.m))
			continue
		}
		used[idx] = true
		gi := gRest[idx]
		if it.flags != gi.flags {
			d.addf("folder %q: message %s: flags want [%s], got [%s]", folder, describe(it.m), it.flags, gi.flags)
		}
		if it.date != gi.date {
			const layout = "2006-01-02 15:04:05Z"
			d.addf("folder %q: message %s: internaldate want %s, got %s", folder, describe(it.m),
				it.m.InternalDate.UTC().Format(layout), gi.m.InternalDate.UTC().Format(layout))
		}
	}
	for i, it := range gRest {
		if !used[i] {
			d.addf("folder %q: unexpected message %s", folder, describe(it.m))
		}
	}
}

// folderKey folds INBOX's case, which IMAP treats case-insensitively.
func folderKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX/") {
		return "INBOX/" + name[6:]
	}
	return name
}

var systemFlags = map[string]string{`\seen`: `\Seen`, `\answered`: `\Answered`, `\flagged`: `\Flagged`, `\deleted`: `\Deleted`, `\draft`: `\Draft`, `\recent`: `\Recent`}

// normFlag canonicalises a flag for comparison.
func normFlag(f string, keywordCase bool) string {
	if s, ok := systemFlags[strings.ToLower(f)]; ok {
		return s
	}
	if keywordCase {
		return f
	}
	return strings.ToLower(f)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// describe names a message in a difference: its Message-ID or hash prefix,
// size and kind.
func describe(m *Message) string {
	id := MessageID(m.Raw)
	if id == "" {
		id = "sha256:" + sha256Hex(m.Raw)[:12]
	} else {
		id = "<" + id + ">"
	}
	s := fmt.Sprintf("%s (%d bytes", id, len(m.Raw))
	if m.Kind != "" {
		s += ", " + m.Kind
	}
	return s + ")"
}

// Properties DiffCollections never compares: PRODID names the software
// that last wrote the object, which servers and exporters replace.
var droppedProps = map[string]bool{"PRODID": true}

// Properties whose value DiffCollections does not compare, and which got may
// add: servers set them when they store or re-serialise an object (DTSTAMP
// by RFC 5545 is the time the object was written; REV and LAST-MODIFIED
// likewise). If want has one, got must have it too.
var volatileProps = map[string]bool{"DTSTAMP": true, "LAST-MODIFIED": true, "REV": true}

// DiffCollections compares calendars or address books and returns
// human-readable differences, nil when they hold the same data.
// Collections match by Name (or DiffOptions.Collection); DisplayName,
// Description and Color are compared when want sets them; Components as a
// set when both set them. Objects match by UID and compare semantically:
// both sides are parsed (iCalendar with golang-ical, vCard with go-vcard)
// and compared as multisets of components and of properties (name, groups,
// parameters with TYPE values split, lower-cased and sorted, and values),
// so property order, parameter order, line folding and the order of RRULE
// parts do not matter.
// Left out: PRODID everywhere; the values of DTSTAMP, LAST-MODIFIED and REV
// (presence in want still required); DiffOptions.IgnoreProps. Objects of want
// marked Broken are not expected in got and are skipped.
func DiffCollections(want, got []Collection, o *DiffOptions) []string {
	if o == nil {
		o = &DiffOptions{}
	}
	d := &differ{max: o.max()}
	ignore := map[string]bool{}
	for _, p := range o.IgnoreProps {
		ignore[strings.ToUpper(p)] = true
	}
	gotBy := map[string]*Collection{}
	for i := range got {
		gotBy[got[i].Name] = &got[i]
	}
	seen := map[string]bool{}
	for _, wc := range want {
		name := wc.Name
		if o.Collection != nil {
			name = o.Collection(name)
		}
		seen[name] = true
		gc := gotBy[name]
		if gc == nil {
			d.addf("collection %q: missing (%d objects)", name, len(wc.Objects))
			continue
		}
		for _, f := range []struct{ what, w, g string }{{"display name", wc.DisplayName, gc.DisplayName}, {"description", wc.Description, gc.Description}, {"color", wc.Color, gc.Color}} {
			if f.w != "" && f.w != f.g && !o.SkipCollectionProps {
				d.addf("collection %q: %s want %q, got %q", name, f.what, f.w, f.g)
			}
		}
		if len(wc.Components) > 0 && len(gc.Components) > 0 && !sameSet(wc.Components, gc.Components) && !o.SkipCollectionProps {
			d.addf("collection %q: components want %v, got %v", name, wc.Components, gc.Components)
		}
		gotObjs := map[string][]*Object{}
		for i := range gc.Objects {
			gotObjs[gc.Objects[i].UID] = append(gotObjs[gc.Objects[i].UID], &gc.Objects[i])
		}
		wantUIDs := map[string]bool{}
		for i := range wc.Objects {
			wo := &wc.Objects[i]
			wantUIDs[wo.UID] = true
			g := gotObjs[wo.UID]
			if wo.Broken {
				continue
			}
			switch len(g) {
			case 0:
				d.addf("collection %q: object %q missing", name, wo.UID)
				continue
			case 1:
			default:
				d.addf("collection %q: object %q present %d times", name, wo.UID, len(g))
			}
			for _, l := range diffObject(wo.Data, g[0].Data, ignore, o.TimeZonesByID) {
				d.addf("collection %q: object %q: %s", name, wo.UID, l)
			}
		}
		for _, g := range gc.Objects {
			if !wantUIDs[g.UID] {
				d.addf("collection %q: unexpected object %q", name, g.UID)
			}
		}
	}
	for _, gc := range got {
		if !seen[gc.Name] && !(o.ExtraCollectionsOK && len(gc.Objects) == 0) {
			d.addf("collection %q: unexpected (%d objects)", gc.Name, len(gc.Objects))
		}
	}
	return d.result()
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[strings.ToUpper(x)] |= 1
	}
	for _, x := range b {
		m[strings.ToUpper(x)] |= 2
	}
	for _, v := range m {
		if v != 3 {
			return false
		}
	}
	return true
}

// node is a parsed component (or vCard) in canonical form.
type node struct {
	name     string
	key      string // identifies the component among its siblings
	props    []string
	children []*node
}

func (n *node) canon() string {
	var b strings.Builder
	b.WriteString("BEGIN:" + n.name + "\n")
	for _, p := range n.props {
		b.WriteString(p + "\n")
	}
	cs := make([]string, len(n.children))
	for i, c := range n.children {
		cs[i] = c.canon()
	}
	sort.Strings(cs)
	for _, c := range cs {
		b.WriteString(c)
	}
	b.WriteString("END:" + n.name + "\n")
	return b.String()
}

// diffObject compares two calendar objects or vCards semantically.
func diffObject(want, got []byte, ignore map[string]bool, tzByID bool) []string {
	isCard := bytes.HasPrefix(bytes.TrimSpace(bytes.ToUpper(want[:min(len(want), 64)])), []byte("BEGIN:VCARD"))
	parse := parseICS
	if isCard {
		parse = parseVCard
	}
	wn, err := parse(want, ignore)
	if err != nil {
		return []string{fmt.Sprintf("want does not parse: %v", err)}
	}
	gn, err := parse(got, ignore)
	if err != nil {
		return []string{fmt.Sprintf("got does not parse: %v", err)}
	}
	var out []string
	diffNode(&out, wn, gn, "", tzByID)
	return out
}

func diffNode(out *[]string, w, g *node, path string, tzByID bool) {
	if path == "" {
		path = w.name
	} else {
		path += "/" + w.name + w.key
	}
	// Properties as multisets; volatile values compare by name only.
	count := map[string]int{}
	for _, p := range g.props {
		count[p]++
	}
	for _, p := range w.props {
		if count[p] > 0 {
			count[p]--
			continue
		}
		*out = append(*out, fmt.Sprintf("%s: missing %s", path, clip(p)))
	}
	for _, p := range g.props {
		if count[p] > 0 {
			count[p]--
			if !volatileProps[propName(p)] {
				*out = append(*out, fmt.Sprintf("%s: unexpected %s", path, clip(p)))
			}
		}
	}
	// Children matched by key, then compared recursively.
	used := make([]bool, len(g.children))
	for _, wc := range w.children {
		best := -1
		for j, gc := range g.children {
			if used[j] || gc.name != wc.name || gc.key != wc.key {
				continue
			}
			if gc.canon() == wc.canon() {
				best = j
				break
			}
			if best < 0 {
				best = j
			}
		}
		if best < 0 {
			*out = append(*out, fmt.Sprintf("%s: missing component %s%s", path, wc.name, wc.key))
			continue
		}
		used[best] = true
		if tzByID && wc.name == "VTIMEZONE" {
			continue
		}
		diffNode(out, wc, g.children[best], path, tzByID)
	}
	for j, gc := range g.children {
		if !used[j] {
			*out = append(*out, fmt.Sprintf("%s: unexpected component %s%s", path, gc.name, gc.key))
		}
	}
}

func propName(p string) string {
	i := strings.IndexAny(p, ";:")
	if i < 0 {
		return p
	}
	name := p[:i]
	if j := strings.LastIndexByte(name, '.'); j >= 0 {
		name = name[j+1:] // vCard group prefix
	}
	return name
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// canonProp renders one property canonically. Volatile properties keep
// only their name.
func canonProp(group, name string, params map[string][]string, value string) string {
	name = strings.ToUpper(name)
	if volatileProps[name] {
		return name
	}
	var ps []string
	for k, vs := range params {
		k = strings.ToUpper(k)
		var vals []string
		for _, v := range vs {
			if k == "TYPE" {
				for _, t := range strings.Split(v, ",") {
					vals = append(vals, strings.ToLower(strings.TrimSpace(t)))
				}
			} else {
				vals = append(vals, v)
			}
		}
		sort.Strings(vals)
		ps = append(ps, k+"="+strings.Join(vals, ","))
	}
	sort.Strings(ps)
	var b strings.Builder
	if group != "" {
		b.WriteString(strings.ToLower(group) + ".")
	}
	b.WriteString(name)
	for _, p := range ps {
		b.WriteString(";" + p)
	}
	if name == "RRULE" || name == "EXRULE" {
		// Rule parts are unordered (RFC 5545 §3.3.10).
		parts := strings.Split(strings.ToUpper(value), ";")
		sort.Strings(parts)
		value = strings.Join(parts, ";")
	}
	b.WriteString(":" + strings.ReplaceAll(value, `\N`, `\n`))
	return b.String()
}

func parseICS(data []byte, ignore map[string]bool) (*node, error) {
	cal, err := ics.ParseCalendar(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	root := &node{name: "VCALENDAR"}
	for _, p := range cal.CalendarProperties {
		if n := strings.ToUpper(p.IANAToken); !droppedProps[n] && !ignore[n] {
			root.props = append(root.props, canonProp("", p.IANAToken, p.ICalParameters, p.Value))
		}
	}
	sort.Strings(root.props)
	for _, c := range cal.Components {
		root.children = append(root.children, icsNode(c, ignore))
	}
	return root, nil
}

func icsNode(c ics.Component, ignore map[string]bool) *node {
	n := &node{}
	switch c := c.(type) {
	case *ics.VEvent:
		n.name = "VEVENT"
	case *ics.VTodo:
		n.name = "VTODO"
	case *ics.VJournal:
		n.name = "VJOURNAL"
	case *ics.VBusy:
		n.name = "VFREEBUSY"
	case *ics.VTimezone:
		n.name = "VTIMEZONE"
	case *ics.VAlarm:
		n.name = "VALARM"
	case *ics.Standard:
		n.name = "STANDARD"
	case *ics.Daylight:
		n.name = "DAYLIGHT"
	case *ics.GeneralComponent:
		n.name = strings.ToUpper(c.Token)
	default:
		n.name = fmt.Sprintf("%T", c)
	}
	var uid, rid, tzid string
	for _, p := range c.UnknownPropertiesIANAProperties() {
		name := strings.ToUpper(p.IANAToken)
		switch name {
		case "UID":
			uid = p.Value
		case "RECURRENCE-ID":
			rid = p.Value
		case "TZID":
			tzid = p.Value
		}
		if droppedProps[name] || ignore[name] {
			continue
		}
		n.props = append(n.props, canonProp("", p.IANAToken, p.ICalParameters, p.Value))
	}
	sort.Strings(n.props)
	switch {
	case rid != "":
		n.key = "[RECURRENCE-ID=" + rid + "]"
	case tzid != "":
		n.key = "[" + tzid + "]"
	case uid != "":
		n.key = ""
	}
	for _, sc := range c.SubComponents() {
		n.children = append(n.children, icsNode(sc, ignore))
	}
	return n
}

func parseVCard(data []byte, ignore map[string]bool) (*node, error) {
	card, err := vcard.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, err
	}
	n := &node{name: "VCARD"}
	for name, fields := range card {
		up := strings.ToUpper(name)
		if droppedProps[up] || ignore[up] {
			continue
		}
		for _, f := range fields {
			n.props = append(n.props, canonProp(f.Group, name, f.Params, f.Value))
		}
	}
	sort.Strings(n.props)
	return n, nil
}
