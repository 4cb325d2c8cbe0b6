// Package respell writes iCalendar and vCard objects in other spellings of
// the same content, and with real changes, for the tests of the semantic
// comparison (caldav, carddav): a respelling must compare equal to the
// original, a real change must not.
package respell

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// Options choose what Respell changes besides what it always may:
// name case, parameter quoting and order, property and component order,
// folding and line ends.
type Options struct {
	// Seed drives every random choice.
	Seed uint64
	// RRULE reorders the parts of RRULE and EXRULE values (RFC 5545
	// §3.3.10).
	RRULE bool
	// Groups renames every vCard group (RFC 6350 §3.3), one new name per
	// old one.
	Groups bool
}

// Respell writes the components of data again in another spelling of the
// same content (RFC 5545 §3.1, RFC 6350 §3.3): property, parameter and
// group names in random case, parameter values quoted when they need not
// be or unquoted when they can be, parameters, properties and components
// in random order, folded at random widths, with CRLF or LF line ends,
// and with o.RRULE, RRULE parts reordered. It reports false when data does
// not parse as content lines (then nothing can be respelled faithfully).
func Respell(data []byte, o Options) ([]byte, bool) {
	top, ok := davtext.ParseContent(data)
	if !ok {
		return nil, false
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	if o.Groups {
		renameGroups(top, r)
	}
	return write(top, r, o), true
}

// Mutation is one real change of an object.
type Mutation struct {
	// What names the change, e.g. `drop VEVENT/EXDATE`.
	What string
	Data []byte
}

// notLoss are properties whose removal is no loss of user data: the
// semantic comparison ignores them or treats them as defaults.
var notLoss = map[string]bool{"DTSTAMP": true, "LAST-MODIFIED": true, "CREATED": true, "PRODID": true, "REV": true,
	"SEQUENCE": true, "PRIORITY": true, "CLASS": true, "TRANSP": true,
	"X-MICROSOFT-CDO-BUSYSTATUS": true, "X-MICROSOFT-CDO-INTENDEDSTATUS": true, "X-MICROSOFT-CDO-ALLDAYEVENT": true}

// notLossValue are values whose removal is no loss, by property.
var notLossValue = map[string][]string{"STATUS": {"CONFIRMED", "NEEDS-ACTION"}}

// textProps hold free text, where appending a character changes content.
var textProps = map[string]bool{"SUMMARY": true, "DESCRIPTION": true, "LOCATION": true, "COMMENT": true, "FN": true,
	"NOTE": true, "TITLE": true, "EMAIL": true, "NICKNAME": true}

// Mutations returns real changes of data, at most max. For a calendar
// (calendar true): every property whose name occurs once in its component
// dropped, free text (and X- properties) with a character appended, and
// every component but a VTIMEZONE dropped, below the top-level components
// (whose own properties, e.g. the VCALENDAR's, are not compared), and
// outside VTIMEZONEs. For a vCard: the same for the properties of the
// first top-level component. Nil when data does not parse as content
// lines.
func Mutations(data []byte, max int, calendar bool) []Mutation {
	top, ok := davtext.ParseContent(data)
	if !ok || len(top) == 0 {
		return nil
	}
	var out []Mutation
	props := func(c *davtext.Content, path string) {
		count := map[string]int{}
		for _, p := range c.Props {
			count[p.Name]++
		}
		for i, p := range c.Props {
			if count[p.Name] != 1 || notLoss[p.Name] || p.Name == "" || slices.ContainsFunc(notLossValue[p.Name], func(v string) bool {
				return strings.EqualFold(strings.TrimSpace(p.Value), v)
			}) {
				continue
			}
			keep := c.Props
			c.Props = append(append([]davtext.ContentProp(nil), keep[:i]...), keep[i+1:]...)
			out = append(out, Mutation{What: "drop " + path + p.Name, Data: write(top, nil, Options{})})
			c.Props = keep
			if textProps[p.Name] || strings.HasPrefix(p.Name, "X-") {
				c.Props = append([]davtext.ContentProp(nil), keep...)
				c.Props[i].Value += "x"
				out = append(out, Mutation{What: "change " + path + p.Name, Data: write(top, nil, Options{})})
				c.Props = keep
			}
		}
	}
	if !calendar {
		props(top[0], "")
	} else {
		var walk func(c *davtext.Content, path string, depth int)
		walk = func(c *davtext.Content, path string, depth int) {
			if c.Name == "VTIMEZONE" || len(out) >= max {
				return
			}
			if depth > 0 {
				props(c, path)
			}
			for i, k := range c.Children {
				if k.Name != "VTIMEZONE" {
					keep := c.Children
					c.Children = append(append([]*davtext.Content(nil), keep[:i]...), keep[i+1:]...)
					out = append(out, Mutation{What: "drop " + path + k.Name, Data: write(top, nil, Options{})})
					c.Children = keep
				}
				walk(k, path+k.Name+"/", depth+1)
			}
		}
		for _, c := range top {
			walk(c, "", 0)
		}
	}
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// renameGroups gives every group a new name, "item" and a number in
// random order.
func renameGroups(cs []*davtext.Content, r *rand.Rand) {
	names := map[string]string{}
	var walk func(cs []*davtext.Content)
	walk = func(cs []*davtext.Content) {
		for _, c := range cs {
			for i := range c.Props {
				g := c.Props[i].Group
				if g == "" {
					continue
				}
				if names[g] == "" {
					names[g] = "x" + strconv.Itoa(len(names)) + "-" + strconv.Itoa(r.IntN(1000))
				}
				c.Props[i].Group = names[g]
			}
			walk(c.Children)
		}
	}
	walk(cs)
}

// write serialises components; with r nil it writes them plainly (CRLF,
// upper-case names, no folding, quotes only where needed).
func write(top []*davtext.Content, r *rand.Rand, o Options) []byte {
	eol := "\r\n"
	if r != nil && r.IntN(2) == 0 && !hasCR(top) {
		eol = "\n"
	}
	width := 0 // no folding
	if r != nil && r.IntN(3) > 0 {
		width = 1 + r.IntN(75)
	}
	var b strings.Builder
	line := func(s string) {
		if width > 0 {
			for len(s) > width {
				b.WriteString(s[:width])
				b.WriteString(eol + " ")
				s = s[width:]
			}
		}
		b.WriteString(s)
		b.WriteString(eol)
	}
	var comp func(c *davtext.Content)
	comp = func(c *davtext.Content) {
		line("BEGIN:" + c.Name)
		props := append([]davtext.ContentProp(nil), c.Props...)
		kids := append([]*davtext.Content(nil), c.Children...)
		if r != nil {
			// VERSION stays first: some readers want it there.
			start := 0
			if len(props) > 0 && props[0].Name == "VERSION" {
				start = 1
			}
			rest := props[start:]
			r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
			r.Shuffle(len(kids), func(i, j int) { kids[i], kids[j] = kids[j], kids[i] })
		}
		for _, p := range props {
			line(prop(p, r, o))
		}
		for _, k := range kids {
			comp(k)
		}
		line("END:" + c.Name)
	}
	for _, c := range top {
		comp(c)
	}
	return []byte(b.String())
}

func hasCR(cs []*davtext.Content) bool {
	for _, c := range cs {
		for _, p := range c.Props {
			if strings.Contains(p.Value, "\r") || strings.Contains(p.Group+p.Name, "\r") {
				return true
			}
			for _, x := range p.Params {
				if strings.Contains(x.Name, "\r") || strings.Contains(strings.Join(x.Values, ""), "\r") {
					return true
				}
			}
		}
		if hasCR(c.Children) {
			return true
		}
	}
	return false
}

func prop(p davtext.ContentProp, r *rand.Rand, o Options) string {
	var b strings.Builder
	if p.Group != "" {
		b.WriteString(cased(p.Group, r) + ".")
	}
	b.WriteString(cased(p.Name, r))
	params := append([]davtext.ContentParam(nil), p.Params...)
	if r != nil {
		r.Shuffle(len(params), func(i, j int) { params[i], params[j] = params[j], params[i] })
	}
	for _, x := range params {
		b.WriteByte(';')
		// A bare parameter reads upper-cased: only an upper-case value
		// can be written so.
		if x.Name == "" && len(x.Values) == 1 && x.Values[0] != "" && !strings.ContainsAny(x.Values[0], `=;:,"^ abcdefghijklmnopqrstuvwxyz`+"\t\r\n") {
			b.WriteString(cased(x.Values[0], r)) // vCard 2.1 bare parameter
			continue
		}
		b.WriteString(cased(x.Name, r) + "=")
		for i, v := range x.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(paramValue(v, r))
		}
	}
	v := p.Value
	if o.RRULE && r != nil && (p.Name == "RRULE" || p.Name == "EXRULE") {
		parts := strings.Split(v, ";")
		r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		v = strings.Join(parts, ";")
	}
	b.WriteString(":" + v)
	return b.String()
}

// paramValue writes one parameter value, caret-encoded (RFC 6868), quoted
// when it must be, and at random when it need not be.
func paramValue(v string, r *rand.Rand) string {
	enc := strings.NewReplacer("^", "^^", "\n", "^n", `"`, "^'").Replace(v)
	if strings.ContainsAny(enc, ";:,") || r != nil && r.IntN(2) == 0 {
		return `"` + enc + `"`
	}
	return enc
}

// cased returns s with its ASCII letters upper-cased, lower-cased or in
// mixed case (names are ASCII: other bytes keep their case).
func cased(s string, r *rand.Rand) string {
	if r == nil {
		return s
	}
	mode := r.IntN(3)
	b := []byte(s)
	for i, c := range b {
		up := mode == 0 || mode == 2 && r.IntN(2) == 0
		switch {
		case up && c >= 'a' && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !up && c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
