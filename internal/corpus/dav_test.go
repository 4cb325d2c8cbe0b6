package corpus

import (
	"bytes"
	"strings"
	"testing"

	ics "github.com/arran4/golang-ical"
	"github.com/emersion/go-vcard"
)

func TestCalendarsParse(t *testing.T) {
	a := Generate("user1", Options{Seed: 3, Messages: -1, Events: 80, Broken: true})
	var names []string
	features := map[string]bool{}
	total, broken := 0, 0
	for _, c := range a.Calendars {
		names = append(names, c.Name)
		seen := map[string]bool{}
		for _, o := range c.Objects {
			total++
			if seen[o.Name] {
				t.Errorf("%s: resource name %q used twice", c.Name, o.Name)
			}
			seen[o.Name] = true
			if o.Broken {
				broken++
				continue
			}
			if bad := bareLineEnd(o.Data); bad >= 0 {
				t.Errorf("%s/%s: bare CR or LF at %d", c.Name, o.UID, bad)
			}
			cal, err := ics.ParseCalendar(bytes.NewReader(o.Data))
			if err != nil {
				t.Errorf("%s/%s does not parse: %v", c.Name, o.UID, err)
				continue
			}
			tzDefined := map[string]bool{}
			tzUsed := map[string]bool{}
			for _, comp := range cal.Components {
				var props []ics.IANAProperty
				switch x := comp.(type) {
				case *ics.VTimezone:
					for _, p := range x.Properties {
						if p.IANAToken == "TZID" {
							tzDefined[p.Value] = true
						}
					}
					continue
				case *ics.VEvent:
					props = x.Properties
					if !strings.Contains(strings.Join(c.Components, ","), "VEVENT") {
						t.Errorf("%s/%s: VEVENT in a %v collection", c.Name, o.UID, c.Components)
					}
				case *ics.VTodo:
					props = x.Properties
					if !strings.Contains(strings.Join(c.Components, ","), "VTODO") {
						t.Errorf("%s/%s: VTODO in a %v collection", c.Name, o.UID, c.Components)
					}
				default:
					t.Errorf("%s/%s: unexpected component %T", c.Name, o.UID, comp)
					continue
				}
				uid := ""
				for _, p := range props {
					switch p.IANAToken {
					case "UID":
						uid = p.Value
					case "RRULE", "RECURRENCE-ID", "ATTACH", "ATTENDEE", "ORGANIZER", "COMPLETED", "DUE":
						features[p.IANAToken] = true
					case "EXDATE":
						if strings.Contains(p.Value, ",") {
							features["EXDATE with two dates"] = true
						}
					case "DTSTART":
						if p.ICalParameters["VALUE"] != nil {
							features["all-day"] = true
						}
					}
					if tz := p.ICalParameters["TZID"]; tz != nil {
						tzUsed[tz[0]] = true
					}
				}
				if uid != o.UID {
					t.Errorf("%s/%s: component UID %q", c.Name, o.UID, uid)
				}
				for _, sub := range comp.SubComponents() {
					if _, ok := sub.(*ics.VAlarm); ok {
						features["VALARM"] = true
					}
				}
			}
			for tz := range tzUsed {
				if !tzDefined[tz] {
					t.Errorf("%s/%s: TZID %s without VTIMEZONE", c.Name, o.UID, tz)
				}
				features["TZID "+tz] = true
			}
		}
	}
	if want := []string{CalendarDefault, CalendarWork, CalendarTasks}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("calendars %v, want %v", names, want)
	}
	if total != 80+broken || broken == 0 {
		t.Errorf("%d objects (%d broken), want 80 plus some broken", total, broken)
	}
	for _, f := range []string{"RRULE", "RECURRENCE-ID", "EXDATE with two dates", "ATTACH", "ATTENDEE", "ORGANIZER", "COMPLETED", "DUE", "VALARM", "all-day",
		"TZID Europe/Berlin", "TZID America/New_York", "TZID Asia/Kolkata", "TZID Asia/Tokyo"} {
		if !features[f] {
			t.Errorf("no calendar object has %s", f)
		}
	}
}

func TestAddressBooksParse(t *testing.T) {
	a := Generate("user1", Options{Seed: 3, Messages: -1, Contacts: 40, Broken: true})
	features := map[string]bool{}
	total, broken := 0, 0
	for _, c := range a.AddressBooks {
		for _, o := range c.Objects {
			total++
			if o.Broken {
				broken++
				continue
			}
			if bad := bareLineEnd(o.Data); bad >= 0 {
				t.Errorf("%s/%s: bare CR or LF at %d", c.Name, o.UID, bad)
			}
			card, err := vcard.NewDecoder(bytes.NewReader(o.Data)).Decode()
			if err != nil {
				t.Errorf("%s/%s does not parse: %v", c.Name, o.UID, err)
				continue
			}
			if card.Value(vcard.FieldUID) != o.UID {
				t.Errorf("%s/%s: UID %q", c.Name, o.UID, card.Value(vcard.FieldUID))
			}
			if card.Value(vcard.FieldFormattedName) == "" {
				t.Errorf("%s/%s: no FN", c.Name, o.UID)
			}
			v := card.Value(vcard.FieldVersion)
			features["VERSION "+v] = true
			if p := card.Get(vcard.FieldPhoto); p != nil {
				if v == "3.0" && p.Params.Get("ENCODING") == "b" {
					features["PHOTO;ENCODING=b"] = true
				}
				if v == "4.0" && strings.HasPrefix(p.Value, "data:image/jpeg;base64,") {
					features["PHOTO data:"] = true
				}
			}
			if len(card[vcard.FieldEmail]) > 1 && len(card[vcard.FieldTelephone]) > 1 && len(card[vcard.FieldAddress]) > 1 {
				features["several EMAIL/TEL/ADR"] = true
			}
			if card.Kind() == vcard.KindGroup && len(card[vcard.FieldMember]) > 0 {
				features["KIND:group"] = true
				if strings.HasPrefix(card.Value(vcard.FieldMember), "mailto:") {
					features["group of plain addresses"] = true
				}
			}
			if card.Value("X-ADDRESSBOOKSERVER-KIND") == "group" && len(card["X-ADDRESSBOOKSERVER-MEMBER"]) > 0 {
				features["Apple group"] = true
			}
			if fn := card.Value(vcard.FieldFormattedName); !isASCII(fn) {
				features["non-ASCII name"] = true
			}
		}
	}
	if len(a.AddressBooks) != 2 || a.AddressBooks[0].Name != BookDefault {
		t.Errorf("address books: %d, first %q", len(a.AddressBooks), a.AddressBooks[0].Name)
	}
	if total != 40+broken || broken == 0 {
		t.Errorf("%d cards (%d broken), want 40 plus some broken", total, broken)
	}
	for _, f := range []string{"VERSION 3.0", "VERSION 4.0", "PHOTO;ENCODING=b", "PHOTO data:", "several EMAIL/TEL/ADR", "KIND:group", "group of plain addresses", "Apple group", "non-ASCII name"} {
		if !features[f] {
			t.Errorf("no vCard has %s", f)
		}
	}
}

func TestDefaultDAVSizes(t *testing.T) {
	a := Generate("user1", Options{Messages: -1})
	n := func(cs []Collection) (k int) {
		for _, c := range cs {
			k += len(c.Objects)
		}
		return k
	}
	if got := n(a.Calendars); got != DefaultEvents {
		t.Errorf("%d calendar objects, want DefaultEvents = %d", got, DefaultEvents)
	}
	if got := n(a.AddressBooks); got != DefaultContacts {
		t.Errorf("%d cards, want DefaultContacts = %d", got, DefaultContacts)
	}
}

func TestFolding(t *testing.T) {
	var b davBuilder
	long := "DESCRIPTION:" + strings.Repeat("ü€", 60)
	b.line(long)
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
		if len(l) > 75 {
			t.Errorf("folded line of %d octets", len(l))
		}
	}
	if got := strings.ReplaceAll(b.String(), "\r\n ", ""); got != long+"\r\n" {
		t.Errorf("unfolding gives %q", got)
	}
}
