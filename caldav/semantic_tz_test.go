package caldav

import (
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// TestVTimezoneOffsets evaluates VTIMEZONEs (as vtimezone writes them from
// the zone database, both hemispheres, and a zone without DST) at every
// hour of 2024-2026 and compares the offset with the database's, away
// from the transitions themselves.
func TestVTimezoneOffsets(t *testing.T) {
	for _, id := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham"} {
		b, err := vtimezone(id)
		if err != nil {
			t.Fatal(err)
		}
		top, ok := davtext.ParseContent(b.Raw())
		if !ok || len(top) != 1 {
			t.Fatalf("%s: generated VTIMEZONE does not parse", id)
		}
		rules := parseVTimezone(top[0])
		if rules == nil {
			t.Fatalf("%s: VTIMEZONE not evaluated", id)
		}
		loc, err := time.LoadLocation(id)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for at := time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC); at.Year() < 2027; at = at.Add(time.Hour) {
			local := at.In(loc)
			_, want := local.Zone()
			// Skip the hours around a change: a wall time there is
			// ambiguous or does not exist.
			if _, o1 := at.Add(-3 * time.Hour).In(loc).Zone(); o1 != want {
				continue
			}
			if _, o2 := at.Add(3 * time.Hour).In(loc).Zone(); o2 != want {
				continue
			}
			wall := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), 0, 0, time.UTC)
			got, ok := rules.offset(wall)
			if !ok || got != want {
				t.Fatalf("%s at %s: offset %d (%v), want %d", id, local, got, ok, want)
			}
			checked++
		}
		if checked < 20000 {
			t.Errorf("%s: only %d hours checked", id, checked)
		}
	}
}

// TestVTimezoneMonthDayRules: the "Sunday on or after the 8th" spelling
// of US rules (BYMONTHDAY with BYDAY) and an UNTIL-bounded older rule
// evaluate like the zone database.
func TestVTimezoneMonthDayRules(t *testing.T) {
	const vtz = "BEGIN:VTIMEZONE\r\nTZID:US-Eastern\r\n" +
		"BEGIN:DAYLIGHT\r\nDTSTART:19870405T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n" +
		"BEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8,9,10,11,12,13,14;BYDAY=SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n" +
		"BEGIN:STANDARD\r\nDTSTART:19671029T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n" +
		"BEGIN:STANDARD\r\nDTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=1,2,3,4,5,6,7;BYDAY=SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n" +
		"END:VTIMEZONE\r\n"
	top, ok := davtext.ParseContent([]byte(vtz))
	if !ok {
		t.Fatal("does not parse")
	}
	rules := parseVTimezone(top[0])
	if rules == nil {
		t.Fatal("not evaluated")
	}
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for at := time.Date(2004, 1, 1, 0, 30, 0, 0, time.UTC); at.Year() < 2027; at = at.Add(time.Hour) {
		local := at.In(loc)
		_, want := local.Zone()
		if _, o1 := at.Add(-3 * time.Hour).In(loc).Zone(); o1 != want {
			continue
		}
		if _, o2 := at.Add(3 * time.Hour).In(loc).Zone(); o2 != want {
			continue
		}
		wall := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), 0, 0, time.UTC)
		if got, _ := rules.offset(wall); got != want {
			t.Fatalf("at %s: offset %d, want %d", local, got, want)
		}
	}
}
