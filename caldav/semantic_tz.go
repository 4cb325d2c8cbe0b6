package caldav

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// zones resolves local times with a TZID to UTC offsets: through the
// object's VTIMEZONE (RFC 5545 §3.6.5) when it defines the TZID with rules
// evaluated here, else through the time zone database when the TZID names
// a zone there.
type zones struct {
	defs map[string]*vtimezoneRules
}

func newZones() *zones { return &zones{defs: map[string]*vtimezoneRules{}} }

// add records a VTIMEZONE component; one that cannot be evaluated is
// recorded as such (its TZID then falls back to the database).
func (z *zones) add(c *davtext.Content) {
	id, n := "", 0
	for _, p := range c.Props {
		if p.Name == "TZID" {
			id = strings.TrimSpace(p.Value)
			n++
		}
	}
	if id == "" || n > 1 {
		return
	}
	if _, dup := z.defs[id]; dup {
		// Two definitions of one TZID: neither is used.
		z.defs[id] = nil
		return
	}
	z.defs[id] = parseVTimezone(c)
}

// offset returns the UTC offset in seconds of wall time local (a time.Time
// in UTC holding the wall clock) in zone tzid.
func (z *zones) offset(tzid string, local time.Time) (int, bool) {
	tzid = strings.TrimSpace(tzid)
	if d := z.defs[tzid]; d != nil {
		if off, ok := d.offset(local); ok {
			return off, true
		}
	}
	loc := loadZone(tzid)
	if loc == nil {
		return 0, false
	}
	t := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), local.Second(), 0, loc)
	_, off := t.Zone()
	return off, true
}

var (
	zoneCache sync.Map // name -> *time.Location (nil: unknown)
	zoneName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$`)
)

// loadZone returns the database zone called name (a leading "/", the RFC
// 5545 §3.2.19 globally-unique prefix, is ignored), or nil.
func loadZone(name string) *time.Location {
	name = strings.TrimPrefix(name, "/")
	if !zoneName.MatchString(name) || name == "Local" || len(name) > 64 {
		return nil
	}
	if l, ok := zoneCache.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	zoneCache.Store(name, loc)
	return loc
}

// vtimezoneRules are the observances of one VTIMEZONE; nil when it has a
// rule not evaluated here.
type vtimezoneRules struct {
	obs []observance
}

// observance is one STANDARD or DAYLIGHT sub-component.
type observance struct {
	start    time.Time // DTSTART, wall clock of the offset before it
	from, to int       // TZOFFSETFROM, TZOFFSETTO in seconds
	rule     *yearlyRule
	rdates   []time.Time
}

// yearlyRule is the RRULE subset time zones use: FREQ=YEARLY with
// BYMONTH, BYDAY (with or without an ordinal), BYMONTHDAY, UNTIL, COUNT.
type yearlyRule struct {
	months    []time.Month
	days      []weekdayN
	monthDays []int
	until     time.Time
	untilUTC  bool
	hasUntil  bool
	count     int
}

type weekdayN struct {
	n  int
	wd time.Weekday
}

var weekdays = map[string]time.Weekday{"SU": time.Sunday, "MO": time.Monday, "TU": time.Tuesday, "WE": time.Wednesday, "TH": time.Thursday, "FR": time.Friday, "SA": time.Saturday}

func parseVTimezone(c *davtext.Content) *vtimezoneRules {
	out := &vtimezoneRules{}
	for _, k := range c.Children {
		if k.Name != "STANDARD" && k.Name != "DAYLIGHT" {
			continue
		}
		var o observance
		var haveStart, haveFrom, haveTo bool
		for _, p := range k.Props {
			v := strings.ToUpper(strings.TrimSpace(p.Value))
			var err error
			switch p.Name {
			case "DTSTART":
				if haveStart {
					return nil
				}
				o.start, err = time.Parse("20060102T150405", v)
				haveStart = err == nil
			case "TZOFFSETFROM":
				if haveFrom {
					return nil
				}
				o.from, haveFrom = parseOffset(v)
			case "TZOFFSETTO":
				if haveTo {
					return nil
				}
				o.to, haveTo = parseOffset(v)
			case "RRULE":
				if o.rule != nil {
					return nil
				}
				if o.rule = parseYearly(v); o.rule == nil {
					return nil
				}
			case "RDATE":
				for _, d := range strings.Split(v, ",") {
					t, err := time.Parse("20060102T150405", d)
					if err != nil {
						return nil
					}
					o.rdates = append(o.rdates, t)
				}
			}
			if err != nil {
				return nil
			}
		}
		if !haveStart || !haveFrom || !haveTo {
			return nil
		}
		out.obs = append(out.obs, o)
	}
	if len(out.obs) == 0 {
		return nil
	}
	return out
}

// parseOffset parses a UTC-OFFSET (RFC 5545 §3.3.14): ("+" / "-") hhmm[ss].
func parseOffset(v string) (int, bool) {
	if len(v) != 5 && len(v) != 7 || v[0] != '+' && v[0] != '-' {
		return 0, false
	}
	n := 0
	for i, unit := range []int{3600, 60, 1} {
		if 1+2*i >= len(v) {
			break
		}
		x, err := strconv.Atoi(v[1+2*i : 3+2*i])
		if err != nil || x < 0 {
			return 0, false
		}
		n += x * unit
	}
	if v[0] == '-' {
		n = -n
	}
	return n, true
}

func parseYearly(v string) *yearlyRule {
	r := &yearlyRule{}
	freq := false
	for _, part := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(part, "=")
		switch k {
		case "FREQ":
			if val != "YEARLY" {
				return nil
			}
			freq = true
		case "INTERVAL":
			if val != "1" {
				return nil
			}
		case "WKST":
		case "BYMONTH":
			for _, m := range strings.Split(val, ",") {
				n, err := strconv.Atoi(m)
				if err != nil || n < 1 || n > 12 {
					return nil
				}
				r.months = append(r.months, time.Month(n))
			}
		case "BYMONTHDAY":
			for _, m := range strings.Split(val, ",") {
				n, err := strconv.Atoi(m)
				if err != nil || n == 0 || n < -31 || n > 31 {
					return nil
				}
				r.monthDays = append(r.monthDays, n)
			}
		case "BYDAY":
			for _, d := range strings.Split(val, ",") {
				if len(d) < 2 {
					return nil
				}
				wd, ok := weekdays[d[len(d)-2:]]
				if !ok {
					return nil
				}
				n := 0
				if num := d[:len(d)-2]; num != "" {
					x, err := strconv.Atoi(num)
					if err != nil || x == 0 || x < -5 || x > 5 {
						return nil
					}
					n = x
				}
				r.days = append(r.days, weekdayN{n, wd})
			}
		case "UNTIL":
			var err error
			if strings.HasSuffix(val, "Z") {
				r.until, err = time.Parse("20060102T150405Z", val)
				r.untilUTC = true
			} else if len(val) == 8 {
				r.until, err = time.Parse("20060102", val)
				r.until = r.until.Add(24*time.Hour - time.Second)
			} else {
				r.until, err = time.Parse("20060102T150405", val)
			}
			if err != nil {
				return nil
			}
			r.hasUntil = true
		case "COUNT":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return nil
			}
			r.count = n
		default:
			return nil
		}
	}
	if !freq {
		return nil
	}
	return r
}

// onsets returns the wall-clock onsets of o in year y.
func (o observance) onsets(y int) []time.Time {
	r := o.rule
	if r == nil || y < o.start.Year() || r.count > 0 && y-o.start.Year() >= r.count {
		return nil
	}
	months := r.months
	if len(months) == 0 {
		months = []time.Month{o.start.Month()}
	}
	h, mi, s := o.start.Clock()
	var out []time.Time
	for _, m := range months {
		last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		inDays := func(d int) bool {
			if len(r.monthDays) == 0 {
				return true
			}
			for _, md := range r.monthDays {
				if md == d || md < 0 && last+1+md == d {
					return true
				}
			}
			return false
		}
		var days []int
		switch {
		case len(r.days) > 0:
			first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Weekday()
			for _, wd := range r.days {
				d1 := 1 + (int(wd.wd)-int(first)+7)%7 // first such weekday
				var cands []int
				for d := d1; d <= last; d += 7 {
					cands = append(cands, d)
				}
				switch {
				case wd.n > 0 && wd.n <= len(cands):
					cands = cands[wd.n-1 : wd.n]
				case wd.n < 0 && -wd.n <= len(cands):
					cands = cands[len(cands)+wd.n : len(cands)+wd.n+1]
				case wd.n != 0:
					cands = nil
				}
				for _, d := range cands {
					if inDays(d) {
						days = append(days, d)
					}
				}
			}
		case len(r.monthDays) > 0:
			for d := 1; d <= last; d++ {
				if inDays(d) {
					days = append(days, d)
				}
			}
		default:
			days = []int{o.start.Day()}
		}
		for _, d := range days {
			t := time.Date(y, m, d, h, mi, s, 0, time.UTC)
			if t.Before(o.start) {
				continue
			}
			if r.hasUntil {
				u := t
				if r.untilUTC {
					u = t.Add(-time.Duration(o.from) * time.Second)
				}
				if u.After(r.until) {
					continue
				}
			}
			out = append(out, t)
		}
	}
	return out
}

// offset returns the offset in force at wall time local: that of the
// observance with the latest onset not after it, or, before every onset,
// the offset the earliest observance changes from.
func (v *vtimezoneRules) offset(local time.Time) (int, bool) {
	if v == nil || len(v.obs) == 0 {
		return 0, false
	}
	var best time.Time
	off, found := 0, false
	consider := func(t time.Time, to int) {
		// Ties go to the smaller offset, so that the order of the
		// observances does not matter.
		if !t.After(local) && (!found || t.After(best) || t.Equal(best) && to < off) {
			best, off, found = t, to, true
		}
	}
	for _, o := range v.obs {
		consider(o.start, o.to)
		for _, t := range o.rdates {
			consider(t, o.to)
		}
		for _, y := range []int{local.Year() - 1, local.Year()} {
			for _, t := range o.onsets(y) {
				consider(t, o.to)
			}
		}
	}
	if found {
		return off, true
	}
	first := v.obs[0]
	for _, o := range v.obs[1:] {
		if o.start.Before(first.start) || o.start.Equal(first.start) && o.from < first.from {
			first = o
		}
	}
	return first.from, true
}
