package corpus

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"
)

// Collection names of the generated calendars and address books.
const (
	CalendarDefault = "calendar" // default calendar (VEVENT)
	CalendarWork    = "work"     // second calendar (VEVENT)
	CalendarTasks   = "tasks"    // task list (VTODO only)
	BookDefault     = "contacts" // default address book
	BookColleagues  = "colleagues"
)

// davBuilder writes iCalendar or vCard content lines, folded at 75 octets
// on UTF-8 boundaries, with CRLF endings.
type davBuilder struct{ strings.Builder }

func (b *davBuilder) line(s string) {
	cut := 75
	for len(s) > cut {
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		b.WriteString(s[:cut])
		b.WriteString("\r\n ")
		s = s[cut:]
		cut = 74
	}
	b.WriteString(s)
	b.WriteString("\r\n")
}

func (b *davBuilder) lines(ls ...string) {
	for _, l := range ls {
		b.line(l)
	}
}

// escapeText escapes an iCalendar/vCard TEXT value.
func escapeText(s string) string {
	r := strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)
	return r.Replace(s)
}

var vtimezones = map[string][]string{
	"Europe/Berlin": {
		"BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
		"BEGIN:DAYLIGHT", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST", "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
		"BEGIN:STANDARD", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "TZNAME:CET", "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
		"END:VTIMEZONE"},
	"America/New_York": {
		"BEGIN:VTIMEZONE", "TZID:America/New_York",
		"BEGIN:DAYLIGHT", "TZOFFSETFROM:-0500", "TZOFFSETTO:-0400", "TZNAME:EDT", "DTSTART:19700308T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", "END:DAYLIGHT",
		"BEGIN:STANDARD", "TZOFFSETFROM:-0400", "TZOFFSETTO:-0500", "TZNAME:EST", "DTSTART:19701101T020000", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU", "END:STANDARD",
		"END:VTIMEZONE"},
	"Asia/Kolkata": {
		"BEGIN:VTIMEZONE", "TZID:Asia/Kolkata",
		"BEGIN:STANDARD", "TZOFFSETFROM:+0530", "TZOFFSETTO:+0530", "TZNAME:IST", "DTSTART:19700101T000000", "END:STANDARD",
		"END:VTIMEZONE"},
	"Asia/Tokyo": {
		"BEGIN:VTIMEZONE", "TZID:Asia/Tokyo",
		"BEGIN:STANDARD", "TZOFFSETFROM:+0900", "TZOFFSETTO:+0900", "TZNAME:JST", "DTSTART:19700101T000000", "END:STANDARD",
		"END:VTIMEZONE"},
}

// TimeZones lists the TZIDs the calendars use, each with a VTIMEZONE.
var TimeZones = []string{"Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo"}

// ical starts a VCALENDAR with the VTIMEZONEs of tzids; the caller adds
// components and calls end.
func ical(tzids ...string) *davBuilder {
	b := &davBuilder{}
	b.lines("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//zxmigrate//corpus//EN", "CALSCALE:GREGORIAN")
	for _, tz := range tzids {
		b.lines(vtimezones[tz]...)
	}
	return b
}

func (b *davBuilder) end() []byte {
	b.line("END:VCALENDAR")
	return []byte(b.String())
}

// objName is the resource name for a UID: the UID itself when it is safe in
// a URL path segment, else a hash.
func objName(uid, ext string) string {
	for _, c := range uid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			h := sha256.Sum256([]byte(uid))
			return hex.EncodeToString(h[:12]) + ext
		}
	}
	return uid + ext
}

func uuid(r *rand.Rand) string {
	b := randomBytes(r, 16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const dtstamp = "DTSTAMP:20240101T120000Z"

func icsTime(t time.Time) string { return t.Format("20060102T150405") }

// generateDAV builds the calendars and address books.
func generateDAV(user string, o Options) (cals, books []Collection) {
	r := rng(o.Seed, streamDAV)
	me := user
	if !strings.Contains(me, "@") {
		me += "@example.com"
	}
	if o.Events >= 0 {
		cals = calendars(r, me, o)
	}
	if o.Contacts >= 0 {
		books = addressBooks(r, o)
	}
	return cals, books
}

func calendars(r *rand.Rand, me string, o Options) []Collection {
	def := Collection{Name: CalendarDefault, DisplayName: "Calendar", Color: "#3A87ADFF", Components: []string{"VEVENT"}}
	work := Collection{Name: CalendarWork, DisplayName: "Arbeit – Büro 🏢", Description: "Team meetings, deadlines; shared with the office", Color: "#D06B64FF", Components: []string{"VEVENT"}}
	tasks := Collection{Name: CalendarTasks, DisplayName: "Tasks", Components: []string{"VTODO"}}
	add := func(c *Collection, uid string, data []byte) {
		c.Objects = append(c.Objects, Object{UID: uid, Name: objName(uid, ".ics"), Data: data})
	}
	org := "ORGANIZER;CN=\"Müller, Jürgen\":mailto:juergen.mueller@example.de"
	att := func(cn, addr, stat string) string {
		return fmt.Sprintf("ATTENDEE;CN=\"%s\";CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=%s;RSVP=TRUE:mailto:%s", cn, stat, addr)
	}
	alarm := []string{"BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER;RELATED=START:-PT15M", "END:VALARM"}

	// 1. Weekly recurrence in Berlin: RRULE, one EXDATE line with two dates,
	// an overridden instance in the same object, alarm, attendees.
	uid := "weekly-berlin-" + uuid(r)
	b := ical("Europe/Berlin")
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;TZID=Europe/Berlin:20240108T100000", "DTEND;TZID=Europe/Berlin:20240108T110000",
		"RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=20", "EXDATE;TZID=Europe/Berlin:20240122T100000,20240129T100000",
		"SUMMARY:Wöchentliche Teambesprechung", "LOCATION:Raum 4.12", "SEQUENCE:2", org,
		att("Alice Johnson", "alice@example.org", "ACCEPTED"), att("Γιώργος Παπαδόπουλος", "georgios@example.gr", "TENTATIVE"))
	b.lines(alarm...)
	b.lines("END:VEVENT", "BEGIN:VEVENT", "UID:"+uid, dtstamp, "RECURRENCE-ID;TZID=Europe/Berlin:20240205T100000",
		"DTSTART;TZID=Europe/Berlin:20240205T113000", "DTEND;TZID=Europe/Berlin:20240205T123000",
		"SUMMARY:Wöchentliche Teambesprechung (verschoben)", "SEQUENCE:3", org, att("Alice Johnson", "alice@example.org", "DECLINED"), "END:VEVENT")
	add(&def, uid, b.end())

	// 2. All-day event with emoji.
	uid = "allday-" + uuid(r)
	b = ical()
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;VALUE=DATE:20240315", "DTEND;VALUE=DATE:20240316",
		"SUMMARY:Geburtstag 🎂 party 🎉", "TRANSP:TRANSPARENT", "CATEGORIES:Birthday,Family", "END:VEVENT")
	add(&def, uid, b.end())

	// 3. New York with escaped text and a long folded description.
	uid = "ny-escaped-" + uuid(r)
	b = ical("America/New_York")
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;TZID=America/New_York:20240611T090000", "DTEND;TZID=America/New_York:20240611T103000",
		"SUMMARY:"+escapeText(`Budget, Q3; review \ "final" notes`),
		"DESCRIPTION:"+escapeText("Agenda:\n1. Numbers, forecasts; risks\n2. C:\\shares\\finance\n3. ünïcödé ✓ — long enough to be folded over several lines by any conforming writer at 75 octets"),
		"LOCATION:"+escapeText("Room 5, Building B; 2nd floor"), "CLASS:PRIVATE", "X-MICROSOFT-CDO-BUSYSTATUS:BUSY", "END:VEVENT")
	add(&work, uid, b.end())

	// 4. Daily recurrence in Kolkata (+05:30) until a date.
	uid = "kolkata-" + uuid(r)
	b = ical("Asia/Kolkata")
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;TZID=Asia/Kolkata:20240902T093000", "DURATION:PT30M",
		"RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20240927T040000Z", "SUMMARY:Daily stand-up (Bengaluru)", org,
		att("Priya Sharma", "priya@example.in", "NEEDS-ACTION"), "END:VEVENT")
	add(&work, uid, b.end())

	// 5. Tokyo with inline and URI attachments.
	uid = "tokyo-attach-" + uuid(r)
	b = ical("Asia/Tokyo")
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;TZID=Asia/Tokyo:20241105T140000", "DTEND;TZID=Asia/Tokyo:20241105T150000",
		"SUMMARY:会議 プロジェクト", "ATTACH;FMTTYPE=text/plain;ENCODING=BASE64;VALUE=BINARY:"+base64.StdEncoding.EncodeToString([]byte("agenda: 資料\r\n"+string(randomBytesPrintable(r, 300)))),
		"ATTACH;FMTTYPE=application/pdf:https://files.example.com/agenda.pdf", "END:VEVENT")
	add(&def, uid, b.end())

	// 6. Start and end in different zones: two VTIMEZONEs in one object.
	uid = "flight-" + uuid(r) + "@example.com"
	b = ical("Europe/Berlin", "America/New_York")
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;TZID=Europe/Berlin:20240520T103000", "DTEND;TZID=America/New_York:20240520T133000",
		"SUMMARY:Flight FRA → JFK ✈️", "END:VEVENT")
	add(&def, uid, b.end())

	// 7. Monthly UTC recurrence with a moved and a cancelled instance.
	uid = "monthly-" + uuid(r)
	b = ical()
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART:20230103T150000Z", "DTEND:20230103T160000Z", "RRULE:FREQ=MONTHLY;BYDAY=1TU",
		"SUMMARY:Monthly review", "END:VEVENT",
		"BEGIN:VEVENT", "UID:"+uid, dtstamp, "RECURRENCE-ID:20230307T150000Z", "DTSTART:20230308T150000Z", "DTEND:20230308T160000Z", "SUMMARY:Monthly review (Wednesday)", "END:VEVENT",
		"BEGIN:VEVENT", "UID:"+uid, dtstamp, "RECURRENCE-ID:20230404T150000Z", "DTSTART:20230404T150000Z", "DTEND:20230404T160000Z", "SUMMARY:Monthly review", "STATUS:CANCELLED", "END:VEVENT")
	add(&work, uid, b.end())

	// 8. Yearly multi-day all-day event with unknown X- properties.
	uid = "holiday-" + uuid(r)
	b = ical()
	b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;VALUE=DATE:20231224", "DTEND;VALUE=DATE:20231227", "RRULE:FREQ=YEARLY",
		"SUMMARY:Weihnachten", "X-ZIMBRA-ITEM-ID:4711", "X-CUSTOM-PROP;X-PARAM=\"a,b\":value with ; semicolons", "END:VEVENT")
	add(&def, uid, b.end())

	// Tasks.
	uid = "todo-open-" + uuid(r)
	b = ical("Europe/Berlin")
	b.lines("BEGIN:VTODO", "UID:"+uid, dtstamp, "DUE;TZID=Europe/Berlin:20250110T170000", "SUMMARY:Steuererklärung abgeben", "PRIORITY:1", "STATUS:NEEDS-ACTION")
	b.lines(alarm...)
	b.lines("END:VTODO")
	add(&tasks, uid, b.end())
	uid = "todo-done-" + uuid(r)
	b = ical()
	b.lines("BEGIN:VTODO", "UID:"+uid, dtstamp, "DUE;VALUE=DATE:20240301", "COMPLETED:20240228T101500Z", "PERCENT-COMPLETE:100", "STATUS:COMPLETED", "SUMMARY:Renew passport ✅", "END:VTODO")
	add(&tasks, uid, b.end())
	uid = "todo-progress-" + uuid(r)
	b = ical()
	b.lines("BEGIN:VTODO", "UID:"+uid, dtstamp, "DTSTART:20240401T080000Z", "DUE:20240415T080000Z", "PERCENT-COMPLETE:40", "STATUS:IN-PROCESS",
		"SUMMARY:"+escapeText("Migrate mail, calendars; contacts"), "DESCRIPTION:"+escapeText("Line one\nLine two"), "END:VTODO")
	add(&tasks, uid, b.end())

	// Fill up to Events with simple variations.
	special := len(def.Objects) + len(work.Objects) + len(tasks.Objects)
	n := o.Events
	if n == 0 {
		n = DefaultEvents
	}
	for i := special; i < n; i++ {
		uid := uuid(r)
		start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(3*365*24)) * time.Hour)
		lang := r.IntN(numLangs)
		sum := escapeText(subjectFor(r, lang))
		switch x := r.IntN(100); {
		case x < 15:
			b := ical()
			b.lines("BEGIN:VTODO", "UID:"+uid, dtstamp, "DUE:"+icsTime(start)+"Z", "SUMMARY:"+sum, "STATUS:NEEDS-ACTION", "END:VTODO")
			add(&tasks, uid, b.end())
		default:
			tz := TimeZones[r.IntN(len(TimeZones))]
			b := ical(tz)
			b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART;TZID="+tz+":"+icsTime(start),
				"DTEND;TZID="+tz+":"+icsTime(start.Add(time.Duration(30+30*r.IntN(4))*time.Minute)), "SUMMARY:"+sum)
			if r.IntN(3) == 0 {
				b.line("DESCRIPTION:" + escapeText(strings.ReplaceAll(strings.TrimSpace(text(r, lang, 200)), crlf, "\n")))
			}
			if r.IntN(4) == 0 {
				b.lines(alarm...)
			}
			b.line("END:VEVENT")
			if x < 80 {
				add(&def, uid, b.end())
			} else {
				add(&work, uid, b.end())
			}
		}
	}
	if o.Broken {
		// VEVENT and VTODO with different UIDs in one resource (RFC 4791 §4.1).
		uid := "broken-mixed-" + uuid(r)
		b := ical()
		b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART:20240101T100000Z", "SUMMARY:broken mixed", "END:VEVENT",
			"BEGIN:VTODO", "UID:other-"+uid, dtstamp, "SUMMARY:other uid", "END:VTODO")
		def.Objects = append(def.Objects, Object{UID: uid, Name: objName(uid, ".ics"), Data: b.end(), Broken: true})
		// Truncated: no END lines.
		uid = "broken-truncated-" + uuid(r)
		b = ical()
		b.lines("BEGIN:VEVENT", "UID:"+uid, dtstamp, "DTSTART:20240101T100000Z", "SUMMARY:truncated")
		def.Objects = append(def.Objects, Object{UID: uid, Name: objName(uid, ".ics"), Data: []byte(b.String()), Broken: true})
		// Invalid date value and no DTSTAMP.
		uid = "broken-date-" + uuid(r)
		b = ical()
		b.lines("BEGIN:VEVENT", "UID:"+uid, "DTSTART:2024-13-45 25:00", "SUMMARY:bad date", "END:VEVENT")
		work.Objects = append(work.Objects, Object{UID: uid, Name: objName(uid, ".ics"), Data: b.end(), Broken: true})
	}
	return []Collection{def, work, tasks}
}

// randomBytesPrintable returns n printable ASCII bytes.
func randomBytesPrintable(r *rand.Rand, n int) []byte {
	b := randomBytes(r, n)
	for i := range b {
		b[i] = ' ' + b[i]%95
	}
	return b
}

func addressBooks(r *rand.Rand, o Options) []Collection {
	def := Collection{Name: BookDefault, DisplayName: "Contacts", Description: "Personal contacts"}
	coll := Collection{Name: BookColleagues, DisplayName: "Kollegen & Partner"}
	add := func(c *Collection, uid string, data []byte) {
		c.Objects = append(c.Objects, Object{UID: uid, Name: objName(strings.TrimPrefix(uid, "urn:uuid:"), ".vcf"), Data: data})
	}
	photo := func() string {
		return base64.StdEncoding.EncodeToString(append([]byte{0xff, 0xd8, 0xff, 0xe0}, randomBytes(r, 1200+r.IntN(2000))...))
	}
	card := func(version string, ls ...string) []byte {
		b := &davBuilder{}
		b.lines("BEGIN:VCARD", "VERSION:"+version)
		b.lines(ls...)
		b.line("END:VCARD")
		return []byte(b.String())
	}

	// vCard 3.0 with a binary photo, several EMAIL/TEL/ADR.
	u1 := uuid(r)
	add(&def, u1, card("3.0", "PRODID:-//zxmigrate//corpus//EN", "UID:"+u1, "N:Müller;Jürgen;Hans;Dr.;", "FN:Dr. Jürgen Hans Müller",
		"ORG:Müller & Söhne GmbH;Vertrieb", "TITLE:Geschäftsführer",
		"EMAIL;TYPE=INTERNET,WORK,pref:juergen.mueller@example.de", "EMAIL;TYPE=INTERNET,HOME:jmueller@example.net",
		"TEL;TYPE=CELL:+49 171 5550100", "TEL;TYPE=WORK,VOICE:+49 221 5550100", "TEL;TYPE=HOME:+49 221 5550199",
		"ADR;TYPE=WORK:;;Hauptstraße 1;Köln;;50667;Deutschland", "ADR;TYPE=HOME:;Apt. 3;Blumenweg 7;Köln;NRW;50668;Deutschland",
		"NOTE:"+escapeText("Met at the fair, 2019; prefers calls\nafter 10:00"), "BDAY:1970-04-01", "CATEGORIES:Business,VIP",
		"PHOTO;ENCODING=b;TYPE=JPEG:"+photo()))
	// vCard 4.0 with a data: URI photo, Greek name.
	u2 := uuid(r)
	add(&def, "urn:uuid:"+u2, card("4.0", "UID:urn:uuid:"+u2, "N:Παπαδόπουλος;Γιώργος;;;", "FN:Γιώργος Παπαδόπουλος",
		"EMAIL;TYPE=work;PREF=1:georgios@example.gr", "EMAIL;TYPE=home:giorgos@example.com",
		"TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+30-210-555-0101", "TEL;VALUE=uri;TYPE=work:tel:+30-210-555-0102",
		"ADR;TYPE=work;LABEL=\"Οδός Ερμού 10\\n10563 Αθήνα\":;;Οδός Ερμού 10;Αθήνα;;10563;Ελλάδα",
		"PHOTO:data:image/jpeg;base64,"+photo(), "REV:20240101T120000Z"))
	// Contact with only an e-mail address.
	u3 := uuid(r)
	add(&def, u3, card("3.0", "UID:"+u3, "N:;;;;", "FN:info@example.org", "EMAIL;TYPE=INTERNET:info@example.org"))
	// Japanese name with phonetic fields, in the second book.
	u4 := uuid(r)
	add(&coll, "urn:uuid:"+u4, card("4.0", "UID:urn:uuid:"+u4, "N:山田;太郎;;;", "FN:山田 太郎", "X-PHONETIC-LAST-NAME:やまだ", "X-PHONETIC-FIRST-NAME:たろう",
		"EMAIL:yamada@example.jp", "ORG:株式会社例", "TEL;TYPE=work:+81-3-5555-0100"))
	// Russian name, vCard 3.0 with emoji in the note.
	u5 := uuid(r)
	add(&coll, u5, card("3.0", "UID:"+u5, "N:Иванов;Дмитрий;;;", "FN:Дмитрий Иванов", "EMAIL;TYPE=INTERNET:dmitry@example.ru",
		"NOTE:"+escapeText("Любит кофе ☕, не звонить после 20:00")))
	// vCard 4.0 group with MEMBER references.
	g1 := uuid(r)
	add(&def, "urn:uuid:"+g1, card("4.0", "UID:urn:uuid:"+g1, "KIND:group", "FN:Team Köln", "MEMBER:urn:uuid:"+u1, "MEMBER:urn:uuid:"+u2))
	// Apple-style group.
	g2 := uuid(r)
	add(&def, g2, card("3.0", "UID:"+g2, "N:Familie;;;;", "FN:Familie", "X-ADDRESSBOOKSERVER-KIND:group",
		"X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:"+u3, "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:"+u5))
	// A group whose members are not contact references: plain addresses,
	// a SIP URI and a reference to a contact that does not exist.
	g3 := uuid(r)
	add(&def, "urn:uuid:"+g3, card("4.0", "UID:urn:uuid:"+g3, "KIND:group", "FN:Newsletter-Verteiler",
		"MEMBER:mailto:team@example.com", "MEMBER:mailto:Max Mustermann <max@example.de>", "MEMBER:sip:conference@example.com",
		"MEMBER:urn:uuid:00000000-0000-4000-8000-000000000000"))

	n := o.Contacts
	if n == 0 {
		n = DefaultContacts
	}
	special := len(def.Objects) + len(coll.Objects)
	for i := special; i < n; i++ {
		p := people[r.IntN(len(people))]
		uid := uuid(r)
		name := p.name
		if name == "" {
			name = p.addr
		}
		local := fmt.Sprintf("%s.%d@%s", strings.SplitN(p.addr, "@", 2)[0], i, strings.SplitN(p.addr, "@", 2)[1])
		var data []byte
		v4 := r.IntN(2) == 1
		if !v4 {
			data = card("3.0", "UID:"+uid, "N:"+escapeText(name)+";;;;", "FN:"+escapeText(name), "EMAIL;TYPE=INTERNET:"+local,
				fmt.Sprintf("TEL;TYPE=CELL:+1 555 %04d", r.IntN(10000)))
		} else {
			data = card("4.0", "UID:urn:uuid:"+uid, "FN:"+escapeText(name), "EMAIL;TYPE=home:"+local,
				fmt.Sprintf("TEL;VALUE=uri;TYPE=cell:tel:+1-555-%04d", r.IntN(10000)))
		}
		if v4 {
			uid = "urn:uuid:" + uid
		}
		if r.IntN(10) < 7 {
			add(&def, uid, data)
		} else {
			add(&coll, uid, data)
		}
	}
	if o.Broken {
		uid := "broken-noend-" + uuid(r)
		def.Objects = append(def.Objects, Object{UID: uid, Name: objName(uid, ".vcf"), Broken: true,
			Data: []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:No End\r\n")})
		uid = "broken-noversion-" + uuid(r)
		def.Objects = append(def.Objects, Object{UID: uid, Name: objName(uid, ".vcf"), Broken: true,
			Data: []byte("BEGIN:VCARD\r\nUID:" + uid + "\r\nEMAIL:nofn@example.com\r\nEND:VCARD\r\n")})
		uid = "broken-garbage-" + uuid(r)
		coll.Objects = append(coll.Objects, Object{UID: uid, Name: objName(uid, ".vcf"), Broken: true,
			Data: []byte("this is not a vCard at all\r\n\xff\xfe\r\n")})
	}
	return []Collection{def, coll}
}
