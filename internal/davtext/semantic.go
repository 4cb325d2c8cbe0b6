package davtext

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
)

// Semantic comparison of iCalendar and vCard objects.
//
// Both formats share one content-line syntax (RFC 5545 §3.1, RFC 6350
// §3.3): folded lines, a property name with an optional group, parameters
// whose values may be quoted, and BEGIN/END components. Servers re-spell
// objects freely within that syntax (they refold, reorder, quote or unquote,
// change case), so the copy is verified on a canonical tree, not on bytes.
// ParseContent reads the syntax here; caldav and carddav turn the parsed
// components into Canon trees with their own value rules.

// ContentParam is one parameter of a content line: its upper-cased name and
// its values, unquoted and with RFC 6868 caret escapes decoded.
type ContentParam struct {
	Name   string
	Values []string
}

// ContentProp is one unfolded content line.
type ContentProp struct {
	// Group is the vCard group (RFC 6350 §3.3), lower-cased: group names
	// are case-insensitive. Empty when there is none.
	Group string
	// Name is the upper-cased property name.
	Name string
	// Params are the parameters in the order written. A parameter written
	// without "=" (vCard 2.1 style "TEL;CELL:") has an empty Name and its
	// text as the one value.
	Params []ContentParam
	// Value is the raw value: escapes are left to the value rules.
	Value string
}

// Param returns the values of parameter name (upper case), all occurrences
// joined, and whether it occurs.
func (p ContentProp) Param(name string) ([]string, bool) {
	var out []string
	found := false
	for _, x := range p.Params {
		if x.Name == name {
			out = append(out, x.Values...)
			found = true
		}
	}
	return out, found
}

// ParamValue returns the value of parameter name (upper case); several
// values are sorted and joined with ",", so that the result does not
// depend on the order they were written in. "" when absent.
func (p ContentProp) ParamValue(name string) string {
	vs, _ := p.Param(name)
	if len(vs) > 1 {
		vs = append([]string(nil), vs...)
		sort.Strings(vs)
	}
	return strings.Join(vs, ",")
}

// Content is one parsed component: BEGIN:Name ... END:Name.
type Content struct {
	// Name is the upper-cased component name, e.g. "VEVENT".
	Name     string
	Props    []ContentProp
	Children []*Content
}

// ParseContent parses data (CRLF or LF line ends, folded or not) into its
// top-level components. Lines outside any component are dropped. It
// reports false when a BEGIN has no matching END or an END no BEGIN, or a
// line has no ':'. It never panics, whatever the input.
func ParseContent(data []byte) ([]*Content, bool) {
	var top []*Content
	var stack []*Content
	ok := true
	for _, line := range unfold(data) {
		p, good := parseContentLine(line)
		if !good {
			ok = false
			continue
		}
		switch p.Name {
		case "BEGIN":
			c := &Content{Name: asciiUpper(strings.TrimSpace(p.Value))}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, c)
			} else {
				top = append(top, c)
			}
			stack = append(stack, c)
		case "END":
			if len(stack) == 0 || stack[len(stack)-1].Name != asciiUpper(strings.TrimSpace(p.Value)) {
				ok = false
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				continue
			}
			stack = stack[:len(stack)-1]
		default:
			if len(stack) > 0 {
				c := stack[len(stack)-1]
				c.Props = append(c.Props, p)
			}
		}
	}
	return top, ok && len(stack) == 0
}

// unfold returns the logical lines of data (RFC 5545 §3.1): a line break
// followed by one space or tab continues the line. Empty lines are dropped.
func unfold(data []byte) []string {
	var out []string
	var cur []byte
	have := false
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var phys []byte
		if i < 0 {
			phys, data = data, nil
		} else {
			phys, data = data[:i], data[i+1:]
		}
		phys = bytes.TrimSuffix(phys, []byte{'\r'})
		if len(phys) > 0 && (phys[0] == ' ' || phys[0] == '\t') && have {
			cur = append(cur, phys[1:]...)
			continue
		}
		if have && len(cur) > 0 {
			out = append(out, string(cur))
		}
		cur = append(cur[:0:0], phys...)
		have = true
	}
	if have && len(cur) > 0 {
		out = append(out, string(cur))
	}
	return out
}

// parseContentLine parses one logical line:
//
//	[group "."] name *(";" param) ":" value
//	param = param-name "=" param-value *("," param-value)
//
// where a param-value is a quoted string or text without ";", ":" and ","
// (RFC 5545 §3.1, RFC 6350 §3.3).
func parseContentLine(s string) (ContentProp, bool) {
	var p ContentProp
	end := strings.IndexAny(s, ";:")
	if end < 0 {
		return p, false
	}
	name := s[:end]
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		p.Group = asciiLower(name[:dot])
		name = name[dot+1:]
	}
	p.Name = asciiUpper(strings.TrimSpace(name))
	rest := s[end:]
	for len(rest) > 0 && rest[0] == ';' {
		rest = rest[1:]
		// Parameter name up to '=', ';' or ':'.
		j := strings.IndexAny(rest, "=;:")
		if j < 0 {
			return p, false
		}
		prm := ContentParam{Name: asciiUpper(strings.TrimSpace(rest[:j]))}
		if rest[j] != '=' {
			// vCard 2.1 bare parameter ("TEL;CELL:").
			prm.Values = []string{prm.Name}
			prm.Name = ""
			p.Params = append(p.Params, prm)
			rest = rest[j:]
			continue
		}
		rest = rest[j+1:]
		for {
			var v string
			if len(rest) > 0 && rest[0] == '"' {
				k := strings.IndexByte(rest[1:], '"')
				if k < 0 {
					return p, false
				}
				v, rest = rest[1:1+k], rest[2+k:]
			} else {
				k := strings.IndexAny(rest, ";:,")
				if k < 0 {
					return p, false
				}
				v, rest = rest[:k], rest[k:]
			}
			prm.Values = append(prm.Values, caretDecode(v))
			if len(rest) > 0 && rest[0] == ',' {
				rest = rest[1:]
				continue
			}
			break
		}
		p.Params = append(p.Params, prm)
	}
	if len(rest) == 0 || rest[0] != ':' {
		return p, false
	}
	p.Value = rest[1:]
	return p, true
}

// asciiUpper upper-cases the ASCII letters of s: names are ASCII (RFC 5545
// §3.1, RFC 6350 §3.3), and other bytes are left as they are.
func asciiUpper(s string) string {
	return asciiCase(s, 'a', 'z', 'A'-'a')
}

// asciiLower lower-cases the ASCII letters of s.
func asciiLower(s string) string {
	return asciiCase(s, 'A', 'Z', 'a'-'A')
}

func asciiCase(s string, lo, hi byte, delta int) string {
	i := 0
	for i < len(s) && (s[i] < lo || s[i] > hi) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if b[i] >= lo && b[i] <= hi {
			b[i] = byte(int(b[i]) + delta)
		}
	}
	return string(b)
}

// caretDecode decodes RFC 6868 §3 escapes in a parameter value: ^n is a
// newline, ^' a double quote, ^^ a caret; other carets stay.
func caretDecode(v string) string {
	if !strings.Contains(v, "^") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '^' && i+1 < len(v) {
			switch v[i+1] {
			case 'n', 'N':
				b.WriteByte('\n')
				i++
				continue
			case '\'':
				b.WriteByte('"')
				i++
				continue
			case '^':
				b.WriteByte('^')
				i++
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Canon is a component in canonical form: two objects are semantically
// equal when their Canon trees serialise to the same text (String), and
// Diff names what differs. Build it with NewCanon and AddProp.
type Canon struct {
	// Name is the component name, e.g. "VEVENT".
	Name string
	// Key matches a component with its counterpart among its siblings when
	// they differ, e.g. an overridden instance by its RECURRENCE-ID. Empty
	// for components matched by content alone (alarms).
	Key string
	// Label names the component in a difference report, e.g. "VEVENT" or
	// "VEVENT(instance)". Labels never hold object content.
	Label    string
	props    []canonProp
	Children []*Canon
	text     string
}

type canonProp struct {
	name, text string
}

// NewCanon returns an empty canonical component called name, labelled
// label (name when empty).
func NewCanon(name, label string) *Canon {
	if label == "" {
		label = name
	}
	return &Canon{Name: name, Label: label}
}

// AddProp adds a canonical property: name is what a report shows; value
// and params (already canonical: names upper-case, values in canonical
// spelling) make up what is compared. Parameters are sorted here.
func (c *Canon) AddProp(name string, params []ContentParam, value string) {
	ps := make([]string, 0, len(params))
	for _, p := range params {
		vs := append([]string(nil), p.Values...)
		var b strings.Builder
		b.WriteString(strconv.Quote(p.Name))
		for _, v := range vs {
			b.WriteByte('=')
			b.WriteString(strconv.Quote(v))
		}
		ps = append(ps, b.String())
	}
	sort.Strings(ps)
	text := strconv.Quote(name) + "[" + strings.Join(ps, ";") + "]" + strconv.Quote(value)
	c.props = append(c.props, canonProp{name: name, text: text})
	c.text = ""
}

// Add appends a child component.
func (c *Canon) Add(child *Canon) {
	c.Children = append(c.Children, child)
	c.text = ""
}

// String returns the canonical serialisation: properties and children
// sorted, duplicates of a property kept (a multiset).
func (c *Canon) String() string {
	if c.text != "" {
		return c.text
	}
	props := make([]string, len(c.props))
	for i, p := range c.props {
		props[i] = p.text
	}
	sort.Strings(props)
	kids := make([]string, len(c.Children))
	for i, k := range c.Children {
		kids[i] = k.String()
	}
	sort.Strings(kids)
	var b strings.Builder
	b.WriteString("BEGIN " + strconv.Quote(c.Name) + "\n")
	for _, p := range props {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	for _, k := range kids {
		b.WriteString(k)
	}
	b.WriteString("END " + strconv.Quote(c.Name) + "\n")
	c.text = b.String()
	return c.text
}

// Hash returns the hex SHA-256 of String.
func (c *Canon) Hash() string {
	h := sha256.Sum256([]byte(c.String()))
	return hex.EncodeToString(h[:])
}

// Diff names what differs between a and b, as sorted, distinct paths of
// component labels and property names ("VEVENT/SUMMARY",
// "VEVENT/VALARM", "VEVENT(instance)/DTSTART"), relative to a and b
// themselves. It is empty exactly when a.String() == b.String(). Paths
// never hold values.
func Diff(a, b *Canon) []string {
	set := map[string]bool{}
	diffInto(a, b, "", set)
	if len(set) == 0 && a.String() != b.String() {
		set[a.Label] = true // cannot happen; never report equal by mistake
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func diffInto(a, b *Canon, prefix string, out map[string]bool) {
	if a.Name != b.Name {
		out[strings.TrimSuffix(prefix, "/")+a.Label] = true
		return
	}
	// Properties: a multiset difference, reported by name.
	count := map[string]int{}
	name := map[string]string{}
	for _, p := range a.props {
		count[p.text]++
		name[p.text] = p.name
	}
	for _, p := range b.props {
		count[p.text]--
		name[p.text] = p.name
	}
	for t, n := range count {
		if n != 0 {
			out[prefix+name[t]] = true
		}
	}
	// Children: drop the ones equal on both sides, pair the rest by key
	// (in order), report the unpaired by label.
	idx := map[string][]int{}
	for j, k := range b.Children {
		idx[k.String()] = append(idx[k.String()], j)
	}
	taken := make([]bool, len(b.Children))
	var restA, restB []*Canon
	for _, k := range a.Children {
		if l := idx[k.String()]; len(l) > 0 {
			taken[l[0]] = true
			idx[k.String()] = l[1:]
			continue
		}
		restA = append(restA, k)
	}
	for j, k := range b.Children {
		if !taken[j] {
			restB = append(restB, k)
		}
	}
	used := make([]bool, len(restB))
	for _, ka := range restA {
		paired := false
		for j, kb := range restB {
			if !used[j] && ka.Name == kb.Name && ka.Key == kb.Key {
				used[j] = true
				paired = true
				diffInto(ka, kb, prefix+ka.Label+"/", out)
				break
			}
		}
		if !paired {
			out[prefix+ka.Label] = true
		}
	}
	for j, kb := range restB {
		if !used[j] {
			out[prefix+kb.Label] = true
		}
	}
}

// TextValue unescapes an RFC 5545 §3.3.11 / RFC 6350 §3.4 TEXT value:
// "\n" and "\N" are a newline, "\x" is x.
func TextValue(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			if v[i] == 'n' || v[i] == 'N' {
				b.WriteByte('\n')
			} else {
				b.WriteByte(v[i])
			}
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// SplitEscaped splits v at every sep not preceded by a backslash escape;
// the parts keep their escapes.
func SplitEscaped(v string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case sep:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// CanonURI lower-cases a URI's scheme (RFC 3986 §3.1), e.g. "MAILTO:".
func CanonURI(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i > 0 && !strings.ContainsAny(v[:i], "/?#@ ") {
		return strings.ToLower(v[:i]) + v[i:]
	}
	return v
}

// CanonBase64 spells inline binary by its bytes when it decodes ("B:"
// and unpadded base64), so that line breaks and padding do not count; else
// it returns v without white space.
func CanonBase64(v string) string {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, v)
	if b, err := base64.StdEncoding.DecodeString(clean); err == nil {
		return "B:" + base64.RawStdEncoding.EncodeToString(b)
	}
	if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "=")); err == nil {
		return "B:" + base64.RawStdEncoding.EncodeToString(b)
	}
	return clean
}
