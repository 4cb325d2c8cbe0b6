package caldav

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// Semantic comparison of calendar objects (RFC 5545).
//
// A copy is verified on a canonical tree (davtext.Canon) built here from the
// parsed object, so that a server's re-spelling is not a difference:
//
//   - names of properties, parameters and components are case-insensitive
//     (RFC 5545 §3.1), and so are enumerated values (§3.2: CUTYPE, ROLE,
//     PARTSTAT, RSVP, ...; §3.8: STATUS, CLASS, TRANSP, ACTION);
//   - parameter values may be quoted or not (§3.1), lists of parameter
//     values are sets, and parameters with their default value (ROLE
//     REQ-PARTICIPANT, PARTSTAT NEEDS-ACTION, CUTYPE INDIVIDUAL, RSVP
//     FALSE, RELATED START, RELTYPE PARENT, FBTYPE BUSY, ENCODING 8BIT, a
//     VALUE that the value itself shows) are the same as absent;
//   - folding and the order of properties and components do not count;
//   - DATE-TIME values are instants: UTC, or local time with a TZID,
//     resolved through the object's VTIMEZONE (§3.6.5) or, when it has
//     none that can be evaluated, the time zone database. A DATE, a
//     floating time and an instant never compare equal;
//   - RRULE parts are a set with defaults applied (§3.3.10: INTERVAL=1,
//     WKST=MO, what the rule takes from DTSTART), their lists are sets,
//     and UNTIL is an instant;
//   - EXDATE and RDATE are sets of instants, however they are split
//     among properties; CATEGORIES and RESOURCES are sets of texts;
//   - TEXT escapes (§3.3.11) are decoded, DURATIONs compared by length
//     (§3.3.6: weeks and days apart from hours), integers by value, base64
//     without line breaks, URI schemes case-insensitive;
//   - SEQUENCE 0, PRIORITY 0, CLASS PUBLIC and TRANSP OPAQUE are the
//     values an absent property has (§3.8.7.4, §3.8.1.9, §3.8.1.3,
//     §3.8.2.7); so are a VEVENT's STATUS CONFIRMED and the Outlook
//     mirrors Carbonio adds when they agree with the event (see implied).
//
// What is not compared at all is listed in ignored: properties a server
// writes about its own copy, not user data.
//
// VTIMEZONE components and VCALENDAR properties are not compared; times
// that use a zone are compared as instants instead.

// ignored are properties that are not compared, with why:
//
//   - DTSTAMP (RFC 5545 §3.8.7.2): when the object was serialised; a
//     server stamps its own copy.
//   - LAST-MODIFIED and CREATED (§3.8.7.3, §3.8.7.1): when the calendar
//     store changed or created its copy.
//   - PRODID (§3.7.3): the product that wrote the object.
//
// SCHEDULE-STATUS parameters (RFC 6638 §7.4) are dropped too: the
// scheduling server sets them on delivery. Vendor properties (X-...) are
// user data unless shown otherwise: Radicale 3 and Xandikos add none.
// SEQUENCE counts: only its default 0 equals its absence.
var ignored = map[string]bool{"DTSTAMP": true, "LAST-MODIFIED": true, "CREATED": true, "PRODID": true}

// canonical returns the canonical tree of a calendar resource: its
// components other than VTIMEZONE, under a "VCALENDAR" root. It reports
// false when data does not parse as content lines.
func canonical(data []byte) (*davtext.Canon, bool) {
	top, ok := davtext.ParseContent(data)
	root := davtext.NewCanon("VCALENDAR", "")
	zones := newZones()
	for _, cal := range top {
		for _, c := range cal.Children {
			if c.Name == "VTIMEZONE" {
				zones.add(c)
			}
		}
	}
	for _, cal := range top {
		for _, c := range cal.Children {
			if c.Name != "VTIMEZONE" {
				root.Add(canonComponent(c, zones))
			}
		}
	}
	return root, ok
}

func canonComponent(c *davtext.Content, zones *zones) *davtext.Canon {
	label, key := c.Name, ""
	for _, p := range c.Props {
		if p.Name == "RECURRENCE-ID" {
			label = c.Name + "(instance)"
			key = canonDateList(p, zones)
		}
	}
	out := davtext.NewCanon(c.Name, label)
	out.Key = key
	cx := compContext{name: c.Name}
	nStart, nTransp := 0, 0
	for _, p := range c.Props {
		switch p.Name {
		case "DTSTART":
			cx.start = strings.TrimSpace(p.Value)
			nStart++
		case "TRANSP":
			cx.transp = strings.ToUpper(strings.TrimSpace(p.Value))
			nTransp++
		}
	}
	if nStart != 1 {
		cx.start = ""
	}
	if nTransp > 1 {
		cx.transp = "?"
	}
	for _, p := range c.Props {
		canonProp(out, p, zones, cx)
	}
	for _, k := range c.Children {
		out.Add(canonComponent(k, zones))
	}
	return out
}

// Property value kinds beyond TEXT.
var (
	dateTimeProps = map[string]bool{"DTSTART": true, "DTEND": true, "DUE": true, "RECURRENCE-ID": true, "COMPLETED": true}
	dateListProps = map[string]bool{"EXDATE": true, "RDATE": true}
	recurProps    = map[string]bool{"RRULE": true, "EXRULE": true}
	uriProps      = map[string]bool{"ATTENDEE": true, "ORGANIZER": true, "URL": true, "TZURL": true, "ATTACH": true, "CONFERENCE": true, "IMAGE": true}
	enumProps     = map[string]bool{"STATUS": true, "CLASS": true, "TRANSP": true, "ACTION": true, "CALSCALE": true, "METHOD": true, "BUSYTYPE": true}
	intProps      = map[string]bool{"SEQUENCE": true, "PRIORITY": true, "PERCENT-COMPLETE": true, "REPEAT": true}
	setProps      = map[string]bool{"CATEGORIES": true, "RESOURCES": true}
	// outlookMirrors are enumerated X- properties with implied values.
	outlookMirrors = map[string]bool{"X-MICROSOFT-CDO-BUSYSTATUS": true, "X-MICROSOFT-CDO-INTENDEDSTATUS": true, "X-MICROSOFT-CDO-ALLDAYEVENT": true}
	// enumParams have case-insensitive values (RFC 5545 §3.2).
	enumParams = map[string]bool{"CUTYPE": true, "ENCODING": true, "FBTYPE": true, "PARTSTAT": true, "RANGE": true, "RELATED": true,
		"RELTYPE": true, "ROLE": true, "RSVP": true, "VALUE": true, "SCHEDULE-AGENT": true, "SCHEDULE-FORCE-SEND": true,
		"LANGUAGE": true, "FMTTYPE": true, "DISPLAY": true, "FEATURE": true}
	// uriParams hold URIs (lists are sets).
	uriParams = map[string]bool{"DELEGATED-TO": true, "DELEGATED-FROM": true, "MEMBER": true, "SENT-BY": true, "DIR": true, "ALTREP": true}
	// defaultParams are parameter values equal to the parameter's absence.
	defaultParams = map[string]string{"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "FALSE",
		"RELATED": "START", "RELTYPE": "PARENT", "FBTYPE": "BUSY", "ENCODING": "8BIT"}
)

// compContext is what the value rules need to know of the component a
// property is in.
type compContext struct {
	name string
	// start is the literal DTSTART value ("" when there is not exactly
	// one), transp the upper-cased TRANSP value ("" when absent).
	start, transp string
}

// implied returns the value a property has when absent, given its
// component, and whether there is one:
//
//   - SEQUENCE 0, PRIORITY 0 (undefined), CLASS PUBLIC, TRANSP OPAQUE
//     (RFC 5545 §3.8.7.4, §3.8.1.9, §3.8.1.3, §3.8.2.7);
//   - a VEVENT's STATUS CONFIRMED, a VTODO's NEEDS-ACTION: RFC 5545
//     §3.8.1.11 gives no default, but Zimbra and Carbonio write STATUS on
//     every event and task they serve
//     (zextras/carbonio-mailbox and Zimbra/zm-mailbox,
//     store/src/java/com/zimbra/cs/mailbox/calendar/Invite.java,
//     newToComponent), and calendar clients show an event without STATUS
//     as confirmed (a task without it as to be done);
//   - the Outlook mirrors Zimbra and Carbonio add (same source):
//     X-MICROSOFT-CDO-BUSYSTATUS and -INTENDEDSTATUS, BUSY for an opaque
//     event and FREE for a transparent one; X-MICROSOFT-CDO-ALLDAYEVENT,
//     TRUE when DTSTART is a DATE and FALSE otherwise. A mirror that says
//     something else (OOF, TENTATIVE) is compared.
func implied(name string, cx compContext) (string, bool) {
	switch name {
	case "SEQUENCE", "PRIORITY":
		return "0", true
	case "CLASS":
		return "PUBLIC", true
	case "TRANSP":
		return "OPAQUE", true
	case "STATUS":
		switch cx.name {
		case "VEVENT":
			return "CONFIRMED", true
		case "VTODO":
			return "NEEDS-ACTION", true
		}
	case "X-MICROSOFT-CDO-BUSYSTATUS", "X-MICROSOFT-CDO-INTENDEDSTATUS":
		switch cx.transp {
		case "", "OPAQUE":
			return "BUSY", true
		case "TRANSPARENT":
			return "FREE", true
		}
	case "X-MICROSOFT-CDO-ALLDAYEVENT":
		if cx.start == "" {
			return "", false
		}
		if len(cx.start) == 8 {
			return "TRUE", true
		}
		return "FALSE", true
	}
	return "", false
}

func canonProp(out *davtext.Canon, p davtext.ContentProp, zones *zones, cx compContext) {
	name := p.Name
	if ignored[name] || name == "" {
		return
	}
	params := canonParams(p)
	switch {
	case dateTimeProps[name]:
		out.AddProp(name, dropParams(params, "TZID", "VALUE"), canonDateList(p, zones))
	case dateListProps[name]:
		// One entry per instant: EXDATE:a,b is EXDATE:a plus EXDATE:b.
		ps := dropParams(params, "TZID", "VALUE")
		for _, v := range strings.Split(p.Value, ",") {
			out.AddProp(name, ps, canonDateOrPeriod(v, p.ParamValue("TZID"), zones))
		}
	case recurProps[name]:
		out.AddProp(name, dropParams(params, "VALUE"), canonRecur(p.Value, cx.start, zones))
	case name == "DURATION":
		out.AddProp(name, dropParams(params, "VALUE"), canonDuration(p.Value))
	case name == "TRIGGER":
		v := strings.TrimSpace(p.Value)
		if looksDateTime(v) {
			v = canonDateTime(v, "", zones)
		} else {
			v = canonDuration(v)
		}
		out.AddProp(name, dropParams(params, "VALUE"), v)
	case setProps[name]:
		ps := dropParams(params, "VALUE")
		for _, v := range davtext.SplitEscaped(p.Value, ',') {
			out.AddProp(name, ps, davtext.TextValue(v))
		}
	case intProps[name]:
		v := canonInt(p.Value)
		if d, ok := implied(name, cx); ok && d == v {
			return
		}
		out.AddProp(name, dropParams(params, "VALUE"), v)
	case enumProps[name] || outlookMirrors[name]:
		v := strings.ToUpper(strings.TrimSpace(p.Value))
		if d, ok := implied(name, cx); ok && d == v {
			return
		}
		out.AddProp(name, dropParams(params, "VALUE"), v)
	case name == "GEO":
		out.AddProp(name, dropParams(params, "VALUE"), canonFloats(p.Value))
	case uriProps[name] && strings.EqualFold(p.ParamValue("VALUE"), "BINARY"):
		out.AddProp(name, params, davtext.CanonBase64(p.Value))
	case uriProps[name]:
		out.AddProp(name, dropParams(params, "VALUE"), davtext.CanonURI(p.Value))
	default:
		out.AddProp(name, params, davtext.TextValue(p.Value))
	}
}

// canonParams returns p's parameters in canonical spelling: SCHEDULE-STATUS
// and defaults dropped, VALUE=TEXT dropped, enumerated values upper-cased,
// URI schemes lower-cased, lists as sorted sets, repeated parameters merged.
func canonParams(p davtext.ContentProp) []davtext.ContentParam {
	merged := map[string]map[string]bool{}
	var order []string
	for _, x := range p.Params {
		n := x.Name
		if n == "SCHEDULE-STATUS" {
			continue
		}
		if merged[n] == nil {
			merged[n] = map[string]bool{}
			order = append(order, n)
		}
		for _, v := range x.Values {
			switch {
			case enumParams[n]:
				v = strings.ToUpper(strings.TrimSpace(v))
			case uriParams[n]:
				v = davtext.CanonURI(v)
			}
			merged[n][v] = true
		}
	}
	var out []davtext.ContentParam
	for _, n := range order {
		vs := sortedKeys(merged[n])
		if d, ok := defaultParams[n]; len(vs) == 1 && (ok && d == vs[0] || n == "VALUE" && vs[0] == "TEXT") {
			continue
		}
		if n == "ENCODING" && len(vs) == 1 && vs[0] == "B" {
			vs = []string{"BASE64"}
		}
		out = append(out, davtext.ContentParam{Name: n, Values: vs})
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dropParams(ps []davtext.ContentParam, names ...string) []davtext.ContentParam {
	out := ps[:0:0]
	for _, p := range ps {
		if !contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// canonDateList canonicalises the (first) value of a DATE / DATE-TIME
// property.
func canonDateList(p davtext.ContentProp, zones *zones) string {
	return canonDateTime(strings.TrimSpace(p.Value), p.ParamValue("TZID"), zones)
}

// canonDateOrPeriod canonicalises one EXDATE/RDATE entry: a DATE, a
// DATE-TIME or a PERIOD (start "/" end or duration).
func canonDateOrPeriod(v, tzid string, zones *zones) string {
	v = strings.TrimSpace(v)
	if a, b, ok := strings.Cut(v, "/"); ok {
		end := canonDuration(b)
		if looksDateTime(b) {
			end = canonDateTime(b, tzid, zones)
		}
		return canonDateTime(a, tzid, zones) + "/" + end
	}
	return canonDateTime(v, tzid, zones)
}

func looksDateTime(v string) bool {
	v = strings.TrimSpace(v)
	return len(v) >= 8 && v[0] >= '0' && v[0] <= '9'
}

// canonDateTime returns "D:yyyymmdd" for a DATE, "U:yyyymmddThhmmssZ" for
// an instant (UTC, or local time in a zone that resolves), "F:..." for a
// floating time, "L:tzid:..." for local time in a zone that does not
// resolve, and "?:value" for anything else.
func canonDateTime(v, tzid string, zones *zones) string {
	v = strings.ToUpper(strings.TrimSpace(v))
	switch len(v) {
	case 8:
		if _, err := time.Parse("20060102", v); err == nil {
			return "D:" + v
		}
	case 16:
		if t, err := time.Parse("20060102T150405Z", v); err == nil {
			return "U:" + t.UTC().Format("20060102T150405Z")
		}
	case 15:
		t, err := time.Parse("20060102T150405", v)
		if err != nil {
			break
		}
		if tzid == "" {
			return "F:" + v
		}
		if off, ok := zones.offset(tzid, t); ok {
			return "U:" + t.Add(-time.Duration(off)*time.Second).Format("20060102T150405Z")
		}
		return "L:" + tzid + ":" + v
	}
	return "?:" + v
}

// canonRecur canonicalises a RECUR value (RFC 5545 §3.3.10): parts as a
// sorted set, names and enumerations upper-cased, numbers by value, lists
// as sorted sets, INTERVAL=1 and WKST=MO (the defaults) dropped, UNTIL as
// an instant. What the rule takes from DTSTART (start, its literal value)
// is written out: the weekday of a WEEKLY rule, the day of a MONTHLY
// one, the month and day of a YEARLY one (as in python-dateutil's rrule).
// WKST is dropped where it cannot change the instances.
func canonRecur(v, start string, zones *zones) string {
	parts := map[string][]string{}
	for _, part := range strings.Split(strings.TrimSpace(v), ";") {
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		k = strings.ToUpper(strings.TrimSpace(k))
		val = strings.ToUpper(strings.TrimSpace(val))
		switch k {
		case "UNTIL":
			val = canonDateTime(val, "", zones)
		case "INTERVAL", "COUNT":
			val = canonInt(val)
		case "BYDAY":
			set := map[string]bool{}
			for _, d := range strings.Split(val, ",") {
				d = strings.TrimPrefix(strings.TrimSpace(d), "+")
				n := strings.TrimRight(d, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
				if n != "" {
					d = canonInt(n) + d[len(n):]
				}
				set[d] = true
			}
			val = strings.Join(sortedKeys(set), ",")
		case "BYSECOND", "BYMINUTE", "BYHOUR", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS":
			set := map[string]bool{}
			for _, d := range strings.Split(val, ",") {
				set[canonInt(d)] = true
			}
			val = strings.Join(sortedKeys(set), ",")
		}
		if k == "INTERVAL" && val == "1" || k == "WKST" && val == "MO" {
			continue
		}
		parts[k] = append(parts[k], val)
	}
	recurDefaults(parts, start)
	keys := make(map[string]bool, len(parts))
	for k := range parts {
		keys[k] = true
	}
	var b strings.Builder
	for _, k := range sortedKeys(keys) {
		// A part given more than once (invalid) keeps every value, in a
		// fixed order.
		vals := map[string]bool{}
		for _, v := range parts[k] {
			vals[v] = true
		}
		b.WriteString(k + "=" + strings.Join(sortedKeys(vals), "|") + ";")
	}
	return b.String()
}

// recurDefaults adds to a valid rule (each part once) the parts it takes
// from the DTSTART value start, and drops a WKST that cannot matter: WKST
// counts only for a WEEKLY rule with INTERVAL above 1 whose BYDAY is not
// just DTSTART's weekday, and for a YEARLY rule with BYWEEKNO (RFC 5545
// §3.3.10).
func recurDefaults(parts map[string][]string, start string) {
	for _, vs := range parts {
		if len(vs) != 1 {
			return
		}
	}
	has := func(k string) bool { return len(parts[k]) > 0 }
	freq := ""
	if has("FREQ") {
		freq = parts["FREQ"][0]
	}
	day, err := time.Parse("20060102", start[:min(8, len(start))])
	if err == nil {
		wd := strings.ToUpper(day.Weekday().String()[:2])
		switch {
		case freq == "WEEKLY" && !has("BYDAY"):
			parts["BYDAY"] = []string{wd}
		case freq == "MONTHLY" && !has("BYDAY") && !has("BYMONTHDAY") && !has("BYYEARDAY") && !has("BYWEEKNO"):
			parts["BYMONTHDAY"] = []string{strconv.Itoa(day.Day())}
		case freq == "YEARLY" && !has("BYWEEKNO") && !has("BYYEARDAY") && !has("BYMONTHDAY") && !has("BYDAY"):
			if !has("BYMONTH") {
				parts["BYMONTH"] = []string{strconv.Itoa(int(day.Month()))}
			}
			parts["BYMONTHDAY"] = []string{strconv.Itoa(day.Day())}
		}
		if has("WKST") && freq == "WEEKLY" && has("BYDAY") && parts["BYDAY"][0] == wd {
			delete(parts, "WKST")
		}
	}
	if has("WKST") && !(freq == "WEEKLY" && has("INTERVAL") && has("BYDAY") || freq == "YEARLY" && has("BYWEEKNO")) {
		delete(parts, "WKST")
	}
}

// canonInt spells an integer without sign "+" or leading zeros; other text
// is returned trimmed.
func canonInt(v string) string {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return strconv.FormatInt(n, 10)
	}
	return v
}

func canonFloats(v string) string {
	parts := strings.Split(v, ";")
	for i, p := range parts {
		if f, err := strconv.ParseFloat(strings.TrimSpace(p), 64); err == nil {
			parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return strings.Join(parts, ";")
}

// canonDuration returns a DURATION (RFC 5545 §3.3.6) as sign, days (weeks
// counted as 7 days) and seconds; a nominal day is not 24 exact hours.
// Text that is not a duration is returned upper-cased.
func canonDuration(v string) string {
	s := strings.ToUpper(strings.TrimSpace(v))
	sign := "+"
	switch {
	case strings.HasPrefix(s, "-"):
		sign, s = "-", s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return "?:" + strings.ToUpper(strings.TrimSpace(v))
	}
	s = s[1:]
	var days, secs int64
	inTime := false
	num := ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			num += string(c)
			continue
		case c == 'T' && num == "":
			inTime = true
			continue
		}
		n, err := strconv.ParseInt(num, 10, 32)
		if err != nil {
			return "?:" + strings.ToUpper(strings.TrimSpace(v))
		}
		num = ""
		switch {
		case c == 'W' && !inTime:
			days += 7 * n
		case c == 'D' && !inTime:
			days += n
		case c == 'H' && inTime:
			secs += 3600 * n
		case c == 'M' && inTime:
			secs += 60 * n
		case c == 'S' && inTime:
			secs += n
		default:
			return "?:" + strings.ToUpper(strings.TrimSpace(v))
		}
	}
	if num != "" {
		return "?:" + strings.ToUpper(strings.TrimSpace(v))
	}
	if days == 0 && secs == 0 {
		sign = "+"
	}
	return "P:" + sign + strconv.FormatInt(days, 10) + "d" + strconv.FormatInt(secs, 10) + "s"
}
