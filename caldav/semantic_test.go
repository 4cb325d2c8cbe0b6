package caldav

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
	"github.com/zxmigrate/zxmigrate/internal/davtext/respell"
)

// benchEvent is a recurring event with a VTIMEZONE, RRULE with UNTIL and
// BYDAY, EXDATEs, two overridden instances, quoted parameters, attendees,
// an attachment, a VALARM and an X- property.
func benchEvent(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "semantic", "bench-recurring.ics"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit applies replacements (old, new, ...) to s; each old must occur.
func edit(t testing.TB, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in the object", pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

// dropLine removes the lines that start with prefix; at least one must.
func dropLine(t testing.TB, s, prefix string) string {
	t.Helper()
	var out []string
	n := 0
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
			continue
		}
		out = append(out, l)
	}
	if n == 0 {
		t.Fatalf("dropLine: no line starts with %q", prefix)
	}
	return strings.Join(out, "")
}

// dropBlock removes the n-th (from 1) BEGIN:kind ... END:kind block.
func dropBlock(t testing.TB, s, kind string, n int) string {
	t.Helper()
	start := -1
	for i := 0; i < n; i++ {
		j := strings.Index(s[start+1:], "BEGIN:"+kind+"\r\n")
		if j < 0 {
			t.Fatalf("dropBlock: no block %d of %s", n, kind)
		}
		start += 1 + j
	}
	end := strings.Index(s[start:], "END:"+kind+"\r\n")
	return s[:start] + s[start+end+len("END:"+kind+"\r\n"):]
}

// refold folds every line longer than width octets.
func refold(s string, width int) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\r\n") {
		l = strings.TrimSuffix(l, "\r\n")
		for len(l) > width {
			b.WriteString(l[:width] + "\r\n ")
			l = l[width:]
		}
		if l != "" {
			b.WriteString(l + "\r\n")
		}
	}
	return b.String()
}

func TestSemanticEqual(t *testing.T) {
	base := benchEvent(t)
	var legacyFlagged []string
	tests := []struct {
		name string
		edit func(t *testing.T, s string) string
	}{
		{"RRULE parts reordered (Xandikos)", func(t *testing.T, s string) string {
			return edit(t, s, "RRULE:FREQ=WEEKLY;UNTIL=20250630T080000Z;BYDAY=MO,WE,FR", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20250630T080000Z")
		}},
		{"RRULE defaults, BYDAY order, case", func(t *testing.T, s string) string {
			return edit(t, s, "RRULE:FREQ=WEEKLY;UNTIL=20250630T080000Z;BYDAY=MO,WE,FR", "RRULE:wkst=MO;BYDAY=fr,MO,we;INTERVAL=01;Freq=weekly;UNTIL=20250630T080000Z")
		}},
		{"parameter quotes dropped (Xandikos)", func(t *testing.T, s string) string {
			return edit(t, s, `CN="Bench User"`, `CN=Bench User`)
		}},
		{"parameter quotes added", func(t *testing.T, s string) string {
			return edit(t, s, "ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED", `ROLE="REQ-PARTICIPANT";PARTSTAT="ACCEPTED"`)
		}},
		{"names in lower and mixed case", func(t *testing.T, s string) string {
			return edit(t, s, "SUMMARY:", "summary:", "ATTENDEE;CN=", "Attendee;cn=", "RRULE:", "rRule:", "DTSTART;TZID=", "dtstart;tzid=")
		}},
		{"enumerated values in another case", func(t *testing.T, s string) string {
			return edit(t, s, "PARTSTAT=ACCEPTED", "PARTSTAT=accepted", "ACTION:DISPLAY", "ACTION:Display")
		}},
		{"default parameters spelled out (Carbonio)", func(t *testing.T, s string) string {
			return edit(t, s, `ATTENDEE;CN="Other, Person";PARTSTAT=TENTATIVE`, `ATTENDEE;CUTYPE=INDIVIDUAL;RSVP=FALSE;ROLE=REQ-PARTICIPANT;CN="Other, Person";PARTSTAT=TENTATIVE`,
				"TRIGGER:-PT15M", "TRIGGER;RELATED=START;VALUE=DURATION:-PT0H15M")
		}},
		{"folded at 20 octets", func(t *testing.T, s string) string { return refold(s, 20) }},
		{"folded at 1 octet", func(t *testing.T, s string) string { return refold(s, 1) }},
		{"LF line ends", func(t *testing.T, s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }},
		{"properties reordered", func(t *testing.T, s string) string {
			s = dropLine(t, s, "SUMMARY:Bench sync\r")
			return edit(t, s, "UID:bench-recurring-1@zxmigrate.test\r\nDTSTAMP:20250101T000000Z\r\nCREATED", "UID:bench-recurring-1@zxmigrate.test\r\nSUMMARY:Bench sync\r\nDTSTAMP:20250101T000000Z\r\nCREATED")
		}},
		{"overridden instances before the master", func(t *testing.T, s string) string {
			i := strings.Index(s, "BEGIN:VEVENT")
			j := strings.Index(s, "END:VEVENT\r\n") + len("END:VEVENT\r\n")
			master := s[i:j]
			s = s[:i] + s[j:]
			return edit(t, s, "END:VCALENDAR", master+"END:VCALENDAR")
		}},
		{"times in UTC instead of a TZID", func(t *testing.T, s string) string {
			return edit(t, s,
				"DTSTART;TZID=Europe/Berlin:20250106T100000", "DTSTART:20250106T090000Z",
				"RECURRENCE-ID;TZID=Europe/Berlin:20250407T100000", "RECURRENCE-ID:20250407T080000Z", // summer time: +02:00
				"EXDATE;TZID=Europe/Berlin:20250113T100000,20250115T100000", "EXDATE:20250113T090000Z,20250115T090000Z")
		}},
		{"TZID resolved by the zone database without VTIMEZONE", func(t *testing.T, s string) string {
			return dropBlock(t, s, "VTIMEZONE", 1)
		}},
		{"VTIMEZONE with another TZID for the same zone", func(t *testing.T, s string) string {
			return strings.ReplaceAll(s, "Europe/Berlin", "W. Europe Standard Time")
		}},
		{"EXDATE split into two properties, in another order", func(t *testing.T, s string) string {
			return edit(t, s, "EXDATE;TZID=Europe/Berlin:20250113T100000,20250115T100000", "EXDATE;TZID=Europe/Berlin:20250115T100000\r\nEXDATE;VALUE=DATE-TIME;TZID=Europe/Berlin:20250113T100000")
		}},
		{"CATEGORIES reordered and split", func(t *testing.T, s string) string {
			return edit(t, s, "CATEGORIES:Work,Bench", "CATEGORIES:Bench\r\nCATEGORIES:Work")
		}},
		{"server stamps: DTSTAMP, LAST-MODIFIED, CREATED, PRODID, SEQUENCE:0", func(t *testing.T, s string) string {
			s = edit(t, s, "DTSTAMP:20250101T000000Z", "DTSTAMP:20261206T101010Z\r\nSEQUENCE:0", "PRODID:-//zxmigrate//bench//EN", "PRODID:-//Xandikos//EN")
			s = dropLine(t, s, "CREATED:")
			return edit(t, s, "LAST-MODIFIED:20250101T000000Z", "LAST-MODIFIED:20261206T101010Z")
		}},
		{"what Carbonio writes on every event it serves", func(t *testing.T, s string) string {
			return edit(t, s, "SUMMARY:Bench sync\r", "SUMMARY:Bench sync\r\nSTATUS:CONFIRMED\r\nTRANSP:OPAQUE\r\nCLASS:PUBLIC\r\nSEQUENCE:0\r\n"+
				"X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\nX-MICROSOFT-CDO-INTENDEDSTATUS:BUSY\r\nX-MICROSOFT-CDO-ALLDAYEVENT:FALSE\r")
		}},
		{"TEXT escapes", func(t *testing.T, s string) string {
			return edit(t, s, `DESCRIPTION:Agenda:\nfirst line\, then the second\; done`, `DESCRIPTION:Agenda:\Nfirst line\, then the second\; done`)
		}},
		{"mailto scheme in upper case", func(t *testing.T, s string) string {
			return edit(t, s, "mailto:other@example.com", "MAILTO:other@example.com")
		}},
		{"base64 attachment folded inside", func(t *testing.T, s string) string {
			return edit(t, s, "VALUE=BINARY:iVBORw0KGgo", "VALUE=BINARY:iVBORw0K\r\n Ggo")
		}},
		{"SCHEDULE-STATUS added by the scheduling server", func(t *testing.T, s string) string {
			return edit(t, s, `ATTENDEE;CN="Other, Person"`, `ATTENDEE;SCHEDULE-STATUS=1.2;CN="Other, Person"`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := tt.edit(t, base)
			if other == base {
				t.Fatal("the edit changed nothing")
			}
			a, b := base, other
			if d := (Rules{}).Diff([]byte(a), []byte(b)); len(d) != 0 {
				t.Errorf("Diff = %v, want none", d)
			}
			_, ha, errA := Rules{}.Fingerprint([]byte(a))
			_, hb, errB := Rules{}.Fingerprint([]byte(b))
			if errA != nil || errB != nil {
				t.Fatalf("Fingerprint: %v, %v", errA, errB)
			}
			if ha != hb {
				t.Errorf("fingerprints differ")
			}
			la, _ := legacyHash([]byte(a))
			lb, _ := legacyHash([]byte(b))
			if la != lb {
				legacyFlagged = append(legacyFlagged, tt.name)
			}
		})
	}
	// The reported case failed with the fingerprint used before.
	if len(legacyFlagged) == 0 || legacyFlagged[0] != tests[0].name {
		t.Errorf("the legacy fingerprint flagged %q, want it to flag %q first", legacyFlagged, tests[0].name)
	}
	t.Logf("the legacy fingerprint flags %d of %d respellings: %q", len(legacyFlagged), len(tests), legacyFlagged)
}

func TestSemanticDifferent(t *testing.T) {
	base := benchEvent(t)
	tests := []struct {
		name string
		edit func(t *testing.T, s string) string
		want []string
	}{
		{"SUMMARY changed", func(t *testing.T, s string) string {
			return edit(t, s, "SUMMARY:Bench sync\r", "SUMMARY:Bench Sync\r")
		}, []string{"VEVENT/SUMMARY"}},
		{"DTSTART moved by an hour", func(t *testing.T, s string) string {
			return edit(t, s, "DTSTART;TZID=Europe/Berlin:20250106T100000", "DTSTART:20250106T100000Z")
		}, []string{"VEVENT/DTSTART"}},
		{"DTSTART floating instead of zoned", func(t *testing.T, s string) string {
			return edit(t, s, "DTSTART;TZID=Europe/Berlin:20250106T100000", "DTSTART:20250106T100000")
		}, []string{"VEVENT/DTSTART"}},
		{"DTSTART a DATE instead of a DATE-TIME", func(t *testing.T, s string) string {
			return edit(t, s, "DTSTART;TZID=Europe/Berlin:20250106T100000", "DTSTART;VALUE=DATE:20250106")
		}, []string{"VEVENT/DTSTART"}},
		{"same wall time in another zone", func(t *testing.T, s string) string {
			return edit(t, s, "DTEND;TZID=Europe/Berlin:20250106T110000", "DTEND;TZID=Europe/London:20250106T110000")
		}, []string{"VEVENT/DTEND"}},
		{"an EXDATE missing", func(t *testing.T, s string) string {
			return edit(t, s, "EXDATE;TZID=Europe/Berlin:20250113T100000,20250115T100000", "EXDATE;TZID=Europe/Berlin:20250113T100000")
		}, []string{"VEVENT/EXDATE"}},
		{"every EXDATE missing", func(t *testing.T, s string) string {
			return dropLine(t, s, "EXDATE")
		}, []string{"VEVENT/EXDATE"}},
		{"RRULE BYDAY changed", func(t *testing.T, s string) string {
			return edit(t, s, "BYDAY=MO,WE,FR", "BYDAY=MO,WE")
		}, []string{"VEVENT/RRULE"}},
		{"RRULE UNTIL changed", func(t *testing.T, s string) string {
			return edit(t, s, "UNTIL=20250630T080000Z", "UNTIL=20250630T090000Z")
		}, []string{"VEVENT/RRULE"}},
		{"RRULE INTERVAL=2", func(t *testing.T, s string) string {
			return edit(t, s, "FREQ=WEEKLY;", "FREQ=WEEKLY;INTERVAL=2;")
		}, []string{"VEVENT/RRULE"}},
		{"an overridden instance missing", func(t *testing.T, s string) string {
			return dropBlock(t, s, "VEVENT", 2)
		}, []string{"VEVENT(instance)"}},
		{"an overridden instance changed", func(t *testing.T, s string) string {
			return edit(t, s, "DTSTART;TZID=Europe/Berlin:20250407T120000", "DTSTART;TZID=Europe/Berlin:20250407T130000")
		}, []string{"VEVENT(instance)/DTSTART"}},
		{"an overridden instance moved to another occurrence", func(t *testing.T, s string) string {
			return edit(t, s, "RECURRENCE-ID;TZID=Europe/Berlin:20250407T100000", "RECURRENCE-ID;TZID=Europe/Berlin:20250409T100000")
		}, []string{"VEVENT(instance)"}},
		{"VALARM dropped", func(t *testing.T, s string) string {
			return dropBlock(t, s, "VALARM", 1)
		}, []string{"VEVENT/VALARM"}},
		{"VALARM trigger changed", func(t *testing.T, s string) string {
			return edit(t, s, "TRIGGER:-PT15M", "TRIGGER:-PT10M")
		}, []string{"VEVENT/VALARM/TRIGGER"}},
		{"an ATTENDEE dropped", func(t *testing.T, s string) string {
			return dropLine(t, s, `ATTENDEE;CN="Other`)
		}, []string{"VEVENT/ATTENDEE"}},
		{"an ATTENDEE's PARTSTAT changed", func(t *testing.T, s string) string {
			return edit(t, s, "PARTSTAT=TENTATIVE", "PARTSTAT=DECLINED")
		}, []string{"VEVENT/ATTENDEE"}},
		{"a parameter value changed inside quotes", func(t *testing.T, s string) string {
			return edit(t, s, `CN="Other, Person"`, `CN="Other; Person"`)
		}, []string{"VEVENT/ATTENDEE"}},
		{"the attachment altered", func(t *testing.T, s string) string {
			return edit(t, s, "VALUE=BINARY:iVBORw0KGgo", "VALUE=BINARY:iVBORw0KGgp")
		}, []string{"VEVENT/ATTACH"}},
		{"the attachment dropped", func(t *testing.T, s string) string {
			return dropLine(t, s, "ATTACH")
		}, []string{"VEVENT/ATTACH"}},
		{"a CATEGORY lost", func(t *testing.T, s string) string {
			return edit(t, s, "CATEGORIES:Work,Bench", "CATEGORIES:Work")
		}, []string{"VEVENT/CATEGORIES"}},
		{"an X- property dropped", func(t *testing.T, s string) string {
			return dropLine(t, s, "X-BENCH-FLAG")
		}, []string{"VEVENT/X-BENCH-FLAG"}},
		{"SEQUENCE raised", func(t *testing.T, s string) string {
			return edit(t, s, "SUMMARY:Bench sync\r", "SEQUENCE:1\r\nSUMMARY:Bench sync\r")
		}, []string{"VEVENT/SEQUENCE"}},
		{"STATUS TENTATIVE added", func(t *testing.T, s string) string {
			return edit(t, s, "SUMMARY:Bench sync\r", "STATUS:TENTATIVE\r\nSUMMARY:Bench sync\r")
		}, []string{"VEVENT/STATUS"}},
		{"an Outlook busy status other than the event's", func(t *testing.T, s string) string {
			return edit(t, s, "SUMMARY:Bench sync\r", "X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\nX-MICROSOFT-CDO-ALLDAYEVENT:TRUE\r\nSUMMARY:Bench sync\r")
		}, []string{"VEVENT/X-MICROSOFT-CDO-ALLDAYEVENT", "VEVENT/X-MICROSOFT-CDO-BUSYSTATUS"}},
		{"a TEXT escape that changes the text", func(t *testing.T, s string) string {
			return edit(t, s, `first line\, then`, `first line\\, then`)
		}, []string{"VEVENT/DESCRIPTION"}},
	}
	valid := regexp.MustCompile(`^[A-Z0-9-]+(\(instance\))?(/[A-Z0-9-]+(\(instance\))?)*$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := tt.edit(t, base)
			got := Rules{}.Diff([]byte(base), []byte(other))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if !valid.MatchString(p) {
					t.Errorf("path %q holds more than names", p)
				}
			}
			_, ha, _ := Rules{}.Fingerprint([]byte(base))
			_, hb, err := Rules{}.Fingerprint([]byte(other))
			if err != nil {
				t.Fatal(err)
			}
			if ha == hb {
				t.Errorf("fingerprints equal")
			}
			// The change is found however the destination spells it.
			re, ok := respell.Respell([]byte(other), respell.Options{Seed: 7, RRULE: true})
			if !ok {
				t.Fatal("Respell: does not parse")
			}
			if diff := cmp.Diff(tt.want, Rules{}.Diff([]byte(base), re)); diff != "" {
				t.Errorf("Diff after respelling (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSemanticAllDay: a DATE and the DATE-TIME at its midnight differ, in
// UTC, floating or zoned.
func TestSemanticAllDay(t *testing.T) {
	day := davtext.CRLF([]byte("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:d@x\nDTSTART;VALUE=DATE:20250301\nSUMMARY:Day\nEND:VEVENT\nEND:VCALENDAR\n"))
	for _, v := range []string{"DTSTART:20250301T000000Z", "DTSTART:20250301T000000", "DTSTART;TZID=UTC:20250301T000000"} {
		other := []byte(strings.Replace(string(day), "DTSTART;VALUE=DATE:20250301", v, 1))
		if diff := cmp.Diff([]string{"VEVENT/DTSTART"}, Rules{}.Diff(day, other)); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", v, diff)
		}
	}
	same := []byte(strings.Replace(string(day), "DTSTART;VALUE=DATE:20250301", "DTSTART:20250301", 1))
	if d := (Rules{}).Diff(day, same); len(d) != 0 {
		t.Errorf("VALUE=DATE spelled out or not: Diff = %v", d)
	}
}

// BenchmarkFingerprint measures the fingerprint of the bench event, which
// Index computes for every destination object.
func BenchmarkFingerprint(b *testing.B) {
	data := []byte(benchEvent(b))
	b.Run("semantic", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := (Rules{}).Fingerprint(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("legacy", func(b *testing.B) {
		for b.Loop() {
			legacyHash(data)
		}
	})
}

// TestSemanticRecurDefaults: what an RRULE takes from DTSTART (Monday 6
// January 2025) may be written out or not; WKST counts only where it can
// change the instances.
func TestSemanticRecurDefaults(t *testing.T) {
	event := func(rrule string) []byte {
		return davtext.CRLF([]byte("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:r@x\nDTSTART;TZID=Europe/Berlin:20250106T100000\n" +
			"RRULE:" + rrule + "\nSUMMARY:R\nEND:VEVENT\nEND:VCALENDAR\n"))
	}
	tests := []struct {
		a, b  string
		equal bool
	}{
		{"FREQ=WEEKLY", "FREQ=WEEKLY;BYDAY=MO", true},
		{"FREQ=WEEKLY", "FREQ=WEEKLY;BYDAY=TU", false},
		{"FREQ=WEEKLY;INTERVAL=2", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;WKST=SU", true},
		{"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU;WKST=SU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU", false},
		{"FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;WKST=TU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", false},
		{"FREQ=WEEKLY;BYDAY=MO,TU;WKST=SU", "FREQ=WEEKLY;BYDAY=MO,TU", true},
		{"FREQ=DAILY;WKST=SU", "FREQ=DAILY", true},
		{"FREQ=MONTHLY", "FREQ=MONTHLY;BYMONTHDAY=6", true},
		{"FREQ=MONTHLY", "FREQ=MONTHLY;BYMONTHDAY=7", false},
		{"FREQ=MONTHLY", "FREQ=MONTHLY;BYDAY=1MO", false},
		{"FREQ=YEARLY", "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=6", true},
		{"FREQ=YEARLY;BYMONTH=3", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=6", true},
		{"FREQ=YEARLY", "FREQ=YEARLY;BYMONTH=2", false},
		{"FREQ=YEARLY;BYWEEKNO=20;WKST=SU", "FREQ=YEARLY;BYWEEKNO=20", false},
		{"FREQ=WEEKLY;COUNT=10", "FREQ=WEEKLY;COUNT=11", false},
	}
	for _, tt := range tests {
		d := Rules{}.Diff(event(tt.a), event(tt.b))
		if got := len(d) == 0; got != tt.equal {
			t.Errorf("%s vs %s: equal %v, want %v (Diff %v)", tt.a, tt.b, got, tt.equal, d)
		}
	}
}

// TestSemanticTaskStatus: a task's STATUS:NEEDS-ACTION is its absence;
// COMPLETED is not.
func TestSemanticTaskStatus(t *testing.T) {
	task := davtext.CRLF([]byte("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTODO\nUID:t@x\nSUMMARY:T\nEND:VTODO\nEND:VCALENDAR\n"))
	with := func(status string) []byte {
		return []byte(strings.Replace(string(task), "SUMMARY:T", "SUMMARY:T\r\nSTATUS:"+status, 1))
	}
	if d := (Rules{}).Diff(task, with("needs-action")); len(d) != 0 {
		t.Errorf("NEEDS-ACTION: Diff = %v, want none", d)
	}
	if diff := cmp.Diff([]string{"VTODO/STATUS"}, Rules{}.Diff(task, with("COMPLETED"))); diff != "" {
		t.Errorf("COMPLETED (-want +got):\n%s", diff)
	}
}
