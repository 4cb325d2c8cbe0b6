package caldav

import (
	"fmt"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// tzRefYear is the year whose rules generated VTIMEZONEs describe; fixed so
// the output (and fingerprints) do not change with the clock.
const tzRefYear = 2025

// vtimezone builds a VTIMEZONE for an IANA zone from the system time zone
// database: the zone's two yearly transitions in tzRefYear as RRULEs, or one
// fixed offset.
func vtimezone(id string) (davtext.Block, error) {
	if id == "" || strings.ContainsAny(id, "\r\n") {
		return davtext.Block{}, fmt.Errorf("caldav: bad TZID %q", id)
	}
	loc, err := time.LoadLocation(id)
	if err != nil {
		return davtext.Block{}, fmt.Errorf("caldav: unknown zone %q: %w", id, err)
	}
	var b strings.Builder
	b.WriteString("BEGIN:VTIMEZONE\r\nTZID:" + id + "\r\n")
	start := time.Date(tzRefYear, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	name0, off0 := start.In(loc).Zone()
	type tr struct {
		at          time.Time // UTC instant of the change
		from, to    int
		name        string
		dst         bool
		localBefore time.Time
	}
	var trs []tr
	prevOff := off0
	for t := start; t.Before(end); t = t.Add(15 * time.Minute) {
		n, o := t.In(loc).Zone()
		if o != prevOff {
			// Find the exact minute.
			lo := t.Add(-15 * time.Minute)
			for m := lo; !m.After(t); m = m.Add(time.Minute) {
				if _, o2 := m.In(loc).Zone(); o2 == o {
					t = m
					break
				}
			}
			trs = append(trs, tr{at: t, from: prevOff, to: o, name: n, dst: t.In(loc).IsDST(),
				localBefore: t.Add(time.Duration(prevOff) * time.Second).UTC()})
			prevOff = o
		}
	}
	if len(trs) == 0 {
		fmt.Fprintf(&b, "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nTZNAME:%s\r\nEND:STANDARD\r\n",
			offset(off0), offset(off0), name0)
	}
	for _, x := range trs {
		kind := "STANDARD"
		if x.dst {
			kind = "DAYLIGHT"
		}
		lb := x.localBefore
		week := (lb.Day()-1)/7 + 1
		if lb.AddDate(0, 0, 7).Month() != lb.Month() {
			week = -1
		}
		day := strings.ToUpper(lb.Weekday().String()[:2])
		fmt.Fprintf(&b, "BEGIN:%s\r\nDTSTART:1970%02d%02dT%02d%02d00\r\nRRULE:FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s\r\nTZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nTZNAME:%s\r\nEND:%s\r\n",
			kind, lb.Month(), ruleDay(1970, lb.Month(), week, lb.Weekday()), lb.Hour(), lb.Minute(), lb.Month(), week, day, offset(x.from), offset(x.to), x.name, kind)
	}
	b.WriteString("END:VTIMEZONE\r\n")
	blocks, _ := davtext.Blocks(davtext.Lines([]byte(b.String())))
	if len(blocks) != 1 {
		return davtext.Block{}, fmt.Errorf("caldav: generated VTIMEZONE for %q does not parse", id)
	}
	return blocks[0], nil
}

// ruleDay is the day of month of the week-th (-1: last) weekday wd.
func ruleDay(year int, m time.Month, week int, wd time.Weekday) int {
	if week > 0 {
		first := time.Date(year, m, 1, 0, 0, 0, 0, time.UTC)
		return 1 + (int(wd)-int(first.Weekday())+7)%7 + 7*(week-1)
	}
	last := time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC)
	return last.Day() - (int(last.Weekday())-int(wd)+7)%7
}

func offset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign = "-"
		sec = -sec
	}
	return fmt.Sprintf("%s%02d%02d", sign, sec/3600, sec/60%60)
}
