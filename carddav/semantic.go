package carddav

import (
	"sort"
	"strconv"
	"strings"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// Semantic comparison of vCards (RFC 6350, and RFC 2426 for vCard 3.0).
//
// A copy is verified on a canonical tree (davtext.Canon) built here, so that a
// server's re-spelling is not a difference:
//
//   - property and parameter names are case-insensitive (RFC 6350 §3.3),
//     and so are parameter values that are not free text (§5: unquoted
//     values are case-insensitive); quotes around parameter values do not
//     count (§3.3);
//   - TYPE values are a set (§5.6), however they are split ("TYPE=a,b",
//     "TYPE=a;TYPE=b", vCard 2.1's bare "TEL;CELL"); ENCODING "b" and
//     "BASE64" are one encoding, and base64 data is compared by its bytes;
//   - folding and the order of properties do not count;
//   - groups (§3.3, "item1.EMAIL") only bind properties together: their
//     names do not count, but what a property is grouped with does (an
//     EMAIL keeps its X-ABLabel);
//   - TEXT escapes (§3.4) are decoded; structured values (N, ADR, ORG,
//     GENDER) compare component by component, missing trailing components
//     being empty; CATEGORIES is a set of texts; URI schemes are
//     case-insensitive.
//
// vCard 3.0 and 4.0 are not translated into each other: VERSION is
// compared, so a server that converts a card is reported.

// ignored are properties that are not compared: PRODID (RFC 6350 §6.7.3,
// the product that wrote the card) and REV (§6.7.4, when the store last
// changed its copy).
var ignored = map[string]bool{"PRODID": true, "REV": true}

// groupParam is the pseudo-parameter under which a grouped property's
// canonical form lists the properties of its group. It cannot be a real
// parameter name: the parser trims spaces around names.
const groupParam = " GROUP"

// Value kinds.
var (
	structured = map[string]int{"N": 5, "ADR": 7, "ORG": 0, "GENDER": 2, "CLIENTPIDMAP": 2}
	listProps  = map[string]bool{"N": true, "ADR": true}
	binary     = map[string]bool{"PHOTO": true, "LOGO": true, "SOUND": true, "KEY": true}
	uriProps   = map[string]bool{"URL": true, "SOURCE": true, "MEMBER": true, "IMPP": true, "CALURI": true, "FBURL": true,
		"CALADRURI": true, "X-ADDRESSBOOKSERVER-MEMBER": true, "RELATED": true}
	// textParams keep the case of their values: free text.
	textParams = map[string]bool{"LABEL": true, "SORT-AS": true, "GEO": true, "TZ": true, "ALTID": true}
)

// canonical returns the canonical tree of the first card in data; false
// when data does not parse as content lines or holds no VCARD.
func canonical(data []byte) (*davtext.Canon, bool) {
	top, ok := davtext.ParseContent(data)
	root := davtext.NewCanon("VCARD", "")
	var card *davtext.Content
	for _, c := range top {
		if c.Name == "VCARD" {
			card = c
			break
		}
	}
	if card == nil {
		return root, false
	}
	type prop struct {
		group, name, text string
		params            []davtext.ContentParam
		value             string
	}
	var props []prop
	members := map[string][]string{} // group -> canonical texts
	add := func(p davtext.ContentProp, params []davtext.ContentParam, value string) {
		x := davtext.NewCanon("", "")
		x.AddProp(p.Name, params, value)
		t := x.String()
		props = append(props, prop{p.Group, p.Name, t, params, value})
		if p.Group != "" {
			members[p.Group] = append(members[p.Group], t)
		}
	}
	for _, p := range card.Props {
		if ignored[p.Name] || p.Name == "" {
			continue
		}
		params := canonParams(p)
		switch {
		case p.Name == "CATEGORIES":
			for _, v := range davtext.SplitEscaped(p.Value, ',') {
				add(p, params, davtext.TextValue(v))
			}
		case structured[p.Name] > 0 || p.Name == "ORG":
			add(p, params, canonStructured(p.Name, p.Value))
		case p.Name == "NICKNAME":
			var vs []string
			for _, v := range davtext.SplitEscaped(p.Value, ',') {
				vs = append(vs, strconv.Quote(davtext.TextValue(v)))
			}
			add(p, params, strings.Join(vs, ","))
		case binary[p.Name]:
			add(p, params, canonBinary(p.Value, p.ParamValue("ENCODING") != ""))
		case uriProps[p.Name]:
			add(p, params, davtext.CanonURI(p.Value))
		default:
			add(p, params, davtext.TextValue(p.Value))
		}
	}
	for _, p := range props {
		params := p.params
		if m := members[p.group]; len(m) > 1 {
			// The other members of the group, once each.
			others := make([]string, 0, len(m)-1)
			skipped := false
			for _, t := range m {
				if t == p.text && !skipped {
					skipped = true
					continue
				}
				others = append(others, t)
			}
			sort.Strings(others)
			params = append(params[:len(params):len(params)], davtext.ContentParam{Name: groupParam, Values: others})
		}
		root.AddProp(p.name, params, p.value)
	}
	return root, ok
}

// canonParams returns p's parameters in canonical spelling: names
// upper-case, bare vCard 2.1 parameters as TYPE, values lower-case except
// free text, repeated parameters merged, TYPE and other lists as sorted
// sets, VALUE=text (the default) dropped, ENCODING BASE64 spelled "b".
func canonParams(p davtext.ContentProp) []davtext.ContentParam {
	merged := map[string]map[string]bool{}
	var order []string
	for _, x := range p.Params {
		n := x.Name
		if n == "" {
			n = "TYPE"
		}
		if merged[n] == nil {
			merged[n] = map[string]bool{}
			order = append(order, n)
		}
		for _, v := range x.Values {
			if !textParams[n] {
				v = strings.ToLower(strings.TrimSpace(v))
			}
			if n == "TYPE" {
				// "TYPE=a,b" inside quotes is a list too (RFC 6350 §5.6).
				for _, t := range strings.Split(v, ",") {
					merged[n][t] = true
				}
				continue
			}
			if n == "ENCODING" && v == "base64" {
				v = "b"
			}
			if n == "PREF" {
				if i, err := strconv.Atoi(v); err == nil {
					v = strconv.Itoa(i)
				}
			}
			merged[n][v] = true
		}
	}
	var out []davtext.ContentParam
	for _, n := range order {
		vs := make([]string, 0, len(merged[n]))
		for v := range merged[n] {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		if n == "VALUE" && len(vs) == 1 && (vs[0] == "text" || vs[0] == "uri" && (binary[p.Name] || uriProps[p.Name])) {
			continue
		}
		out = append(out, davtext.ContentParam{Name: n, Values: vs})
	}
	return out
}

// canonStructured compares a structured value (RFC 6350 §6.2.2 N, §6.3.1
// ADR, §6.6.4 ORG, §6.2.7 GENDER) component by component, lists within N
// and ADR components value by value; trailing empty components do not
// count.
func canonStructured(name, v string) string {
	comps := davtext.SplitEscaped(v, ';')
	out := make([]string, len(comps))
	for i, c := range comps {
		if listProps[name] {
			var vs []string
			for _, x := range davtext.SplitEscaped(c, ',') {
				vs = append(vs, strconv.Quote(davtext.TextValue(x)))
			}
			out[i] = strings.Join(vs, ",")
		} else {
			out[i] = strconv.Quote(davtext.TextValue(c))
		}
	}
	empty := strconv.Quote("")
	for len(out) > 0 && (out[len(out)-1] == empty || out[len(out)-1] == "") {
		out = out[:len(out)-1]
	}
	return strings.Join(out, ";")
}

// canonBinary compares inline data by its bytes: base64 with ENCODING
// (vCard 3.0) or in a data: URI (RFC 2397, vCard 4.0), line breaks and
// padding aside. Other values are URIs.
func canonBinary(v string, encoded bool) string {
	v = strings.TrimSpace(v)
	if encoded {
		return davtext.CanonBase64(v)
	}
	if len(v) > 5 && strings.EqualFold(v[:5], "data:") {
		head, data, ok := strings.Cut(v[5:], ",")
		if ok && strings.HasSuffix(strings.ToLower(head), ";base64") {
			return "data:" + strings.ToLower(head) + "," + davtext.CanonBase64(data)
		}
		return "data:" + strings.ToLower(head) + "," + data
	}
	return davtext.CanonURI(v)
}
