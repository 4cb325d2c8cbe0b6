package caldav

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	ical "github.com/arran4/golang-ical"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// ErrInvalid marks an object that cannot be copied as it is; the error text
// says why.
var ErrInvalid = errors.New("invalid iCalendar object")

func invalid(format string, args ...any) error {
	return fmt.Errorf("caldav: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Rules is the one place where calendar objects are validated, repaired,
// split and fingerprinted. Its zero value is ready to use and it is safe
// for concurrent use.
type Rules struct{}

var _ dav.Rules = Rules{}

// Split implements dav.Rules. It checks that data is a parsable iCalendar
// object whose components all have a UID, groups components by UID (one
// resource per UID: a master and its overridden instances together),
// rejects a UID that mixes VEVENT and VTODO, attaches every VTIMEZONE a
// group uses (placed before the components; a missing one is generated
// from the system time zone database when the TZID names a known zone) and
// removes METHOD, which CalDAV forbids in stored objects. Data that needs
// none of this is returned byte for byte.
func (Rules) Split(data []byte) ([]dav.Item, error) {
	lines := davtext.Lines(data)
	cals, closed := davtext.Blocks(lines)
	if len(cals) == 0 {
		return nil, invalid("no BEGIN:VCALENDAR")
	}
	if !closed {
		return nil, invalid("unterminated component")
	}
	type group struct {
		uid    string
		comp   string
		blocks []davtext.Block
		tzids  []string
	}
	var (
		header   []davtext.Line
		groups   []*group
		byUID    = map[string]*group{}
		tzByID   = map[string]davtext.Block{}
		tzSeen   = map[string]bool{} // TZIDs defined so far, in file order
		late     bool                // a VTIMEZONE came after its use
		method   bool
		verbatim = len(cals) == 1
	)
	for ci, cal := range cals {
		if cal.Kind != "VCALENDAR" {
			return nil, invalid("top-level %s is not VCALENDAR", cal.Kind)
		}
		if _, err := ical.ParseCalendar(bytes.NewReader(cal.Raw())); err != nil {
			return nil, invalid("does not parse: %v", err)
		}
		props, children, ok := cal.Inner()
		if !ok {
			return nil, invalid("unbalanced BEGIN/END")
		}
		for _, p := range props {
			if p.Name == "METHOD" {
				method = true
				continue
			}
			if ci == 0 {
				header = append(header, p)
			}
		}
		for i, b := range children {
			if b.Kind == "VTIMEZONE" {
				tz, _ := b.Top("TZID")
				id := strings.TrimSpace(tz.Value)
				if id == "" {
					return nil, invalid("VTIMEZONE without TZID")
				}
				tzByID[id] = b
				tzSeen[id] = true
				continue
			}
			uidLine, ok := b.Top("UID")
			uid := strings.TrimSpace(uidLine.Value)
			if !ok || uid == "" {
				return nil, invalid("%s #%d has no UID", b.Kind, i+1)
			}
			if b.Kind == "VEVENT" {
				if _, ok := b.Top("DTSTART"); !ok {
					return nil, invalid("VEVENT %q has no DTSTART", uid)
				}
			}
			for _, l := range b.Lines {
				if dateProps[l.Name] && !validDates(l.Value) {
					return nil, invalid("%s %q: %s value %q is not a DATE or DATE-TIME", b.Kind, uid, l.Name, l.Value)
				}
			}
			g := byUID[uid]
			if g == nil {
				g = &group{uid: uid, comp: b.Kind}
				byUID[uid] = g
				groups = append(groups, g)
			} else if g.comp != b.Kind {
				return nil, invalid("UID %q mixes %s and %s", uid, g.comp, b.Kind)
			}
			g.blocks = append(g.blocks, b)
			for _, l := range b.Lines {
				if id := strings.TrimSpace(l.Param("TZID")); id != "" && l.Name != "TZID" {
					if !tzSeen[id] {
						late = true
					}
					if !contains(g.tzids, id) {
						g.tzids = append(g.tzids, id)
					}
				}
			}
		}
	}
	if len(groups) == 0 {
		return nil, invalid("no VEVENT, VTODO or VJOURNAL")
	}
	verbatim = verbatim && len(groups) == 1 && !method
	var out []dav.Item
	for _, g := range groups {
		var notes []string
		var tzs []davtext.Block
		for _, id := range g.tzids {
			if b, ok := tzByID[id]; ok {
				tzs = append(tzs, b)
				continue
			}
			gen, err := vtimezone(id)
			if err != nil {
				return nil, invalid("UID %q uses TZID %q, which has no VTIMEZONE and is not a known zone", g.uid, id)
			}
			tzs = append(tzs, gen)
			notes = append(notes, fmt.Sprintf("VTIMEZONE %q generated from the time zone database", id))
			verbatim = false
		}
		if late {
			notes = append(notes, "VTIMEZONE moved before its first use")
		}
		if method {
			notes = append(notes, "METHOD removed (not allowed in a CalDAV resource)")
		}
		var raw []byte
		var h string
		if verbatim && !late && len(notes) == 0 && len(tzs) == len(tzByID) {
			raw = data
			h = semanticHash(data)
		} else {
			raw = assemble(header, tzs, g.blocks)
			var err error
			_, h, err = Rules{}.Fingerprint(raw)
			if err != nil {
				return nil, invalid("UID %q: %v", g.uid, err)
			}
		}
		out = append(out, dav.Item{UID: g.uid, Component: g.comp, Data: raw, Hash: h, Notes: notes, Repaired: len(notes) > 0})
	}
	return out, nil
}

// dateProps hold DATE or DATE-TIME values (lists for EXDATE/RDATE).
var dateProps = map[string]bool{"DTSTART": true, "DTEND": true, "DUE": true, "RECURRENCE-ID": true, "EXDATE": true, "COMPLETED": true, "DTSTAMP": true, "CREATED": true, "LAST-MODIFIED": true}

var dateRE = regexp.MustCompile(`^[0-9]{8}(T[0-9]{6}Z?)?$`)

// validDates checks a DATE / DATE-TIME value or comma-separated list.
func validDates(v string) bool {
	for _, d := range strings.Split(strings.TrimSpace(v), ",") {
		if !dateRE.MatchString(d) {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func assemble(header []davtext.Line, tzs, blocks []davtext.Block) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\n")
	hasVersion, hasProdID := false, false
	for _, l := range header {
		hasVersion = hasVersion || l.Name == "VERSION"
		hasProdID = hasProdID || l.Name == "PRODID"
	}
	if !hasVersion {
		b.WriteString("VERSION:2.0\r\n")
	}
	if !hasProdID {
		b.WriteString("PRODID:-//zxmigrate//caldav//EN\r\n")
	}
	for _, l := range header {
		b.Write(withCRLF(l.Raw))
	}
	for _, t := range tzs {
		b.Write(withCRLF(t.Raw()))
	}
	for _, x := range blocks {
		b.Write(withCRLF(x.Raw()))
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}

func withCRLF(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return append(append([]byte(nil), b...), '\r', '\n')
	}
	return b
}

// Fingerprint implements dav.Rules: the UID of the object and the hash of
// its canonical form (see semantic.go), so that two spellings of the same
// calendar data have one fingerprint.
func (Rules) Fingerprint(data []byte) (string, string, error) {
	cal, err := ical.ParseCalendar(bytes.NewReader(data))
	if err != nil {
		return "", "", invalid("does not parse: %v", err)
	}
	uid := ""
	for _, c := range cal.Components {
		if _, tz := c.(*ical.VTimezone); tz {
			continue
		}
		for _, p := range c.UnknownPropertiesIANAProperties() {
			if strings.EqualFold(p.IANAToken, "UID") {
				uid = strings.TrimSpace(p.Value)
			}
		}
		if uid != "" {
			break
		}
	}
	return uid, semanticHash(data), nil
}

// Diff implements dav.Differ: the components and properties in which dst
// differs from src, semantically (see semantic.go), e.g. "VEVENT/EXDATE".
func (Rules) Diff(src, dst []byte) []string {
	a, _ := canonical(src)
	b, _ := canonical(dst)
	return davtext.Diff(a, b)
}

func semanticHash(data []byte) string {
	c, _ := canonical(data)
	return c.Hash()
}

// compName is the name of a parsed component.
func compName(c ical.Component) string {
	switch x := c.(type) {
	case *ical.VEvent:
		return "VEVENT"
	case *ical.VTodo:
		return "VTODO"
	case *ical.VJournal:
		return "VJOURNAL"
	case *ical.VBusy:
		return "VFREEBUSY"
	case *ical.VTimezone:
		return "VTIMEZONE"
	case *ical.VAlarm:
		return "VALARM"
	case *ical.Standard:
		return "STANDARD"
	case *ical.Daylight:
		return "DAYLIGHT"
	case *ical.GeneralComponent:
		return strings.ToUpper(x.Token)
	}
	return fmt.Sprintf("%T", c)
}
