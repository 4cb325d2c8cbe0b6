package corpus

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cloneMailbox deep-copies mb so that tests can damage the copy.
func cloneMailbox(mb Mailbox) Mailbox {
	out := Mailbox{Folders: slices.Clone(mb.Folders)}
	for _, m := range mb.Messages {
		m.Raw = bytes.Clone(m.Raw)
		m.Flags = slices.Clone(m.Flags)
		out.Messages = append(out.Messages, m)
	}
	return out
}

func firstIndex(mb Mailbox, f func(Message) bool) int {
	for i, m := range mb.Messages {
		if f(m) {
			return i
		}
	}
	panic("no such message")
}

func TestDiffMail(t *testing.T) {
	want := small().Mail
	if d := DiffMail(want, cloneMailbox(want), nil); d != nil {
		t.Fatalf("DiffMail(copy) = %q, want nil", d)
	}
	// Order does not matter.
	rev := cloneMailbox(want)
	slices.Reverse(rev.Messages)
	slices.Reverse(rev.Folders)
	if d := DiffMail(want, rev, nil); d != nil {
		t.Fatalf("DiffMail(reversed) = %q, want nil", d)
	}
	isDup := func(m Message) bool { return strings.HasSuffix(m.Kind, "+dup") && m.Folder == spacesFolder }
	tests := []struct {
		name   string
		damage func(*Mailbox)
		opts   *DiffOptions
		want   string // a substring of one difference
	}{
		{"changed byte", func(mb *Mailbox) { mb.Messages[5].Raw[len(mb.Messages[5].Raw)/2] ^= 1 }, nil, "missing"},
		{"lost flag", func(mb *Mailbox) {
			i := firstIndex(*mb, func(m Message) bool { return slices.Contains(m.Flags, `\Seen`) })
			mb.Messages[i].Flags = removeFlag(mb.Messages[i].Flags, `\Seen`)
		}, nil, "flags want"},
		{"lost keyword", func(mb *Mailbox) {
			i := firstIndex(*mb, func(m Message) bool { return slices.Contains(m.Flags, "$label1") })
			mb.Messages[i].Flags = removeFlag(mb.Messages[i].Flags, "$label1")
		}, nil, "flags want"},
		{"missing duplicate", func(mb *Mailbox) {
			i := firstIndex(*mb, isDup)
			mb.Messages = slices.Delete(mb.Messages, i, i+1)
		}, nil, "missing"},
		{"extra duplicate", func(mb *Mailbox) {
			mb.Messages = append(mb.Messages, mb.Messages[0])
		}, nil, "unexpected message"},
		{"internaldate", func(mb *Mailbox) { mb.Messages[3].InternalDate = mb.Messages[3].InternalDate.Add(time.Second) }, nil, "internaldate want"},
		{"wrong folder", func(mb *Mailbox) { mb.Messages[len(mb.Messages)-1].Folder = "INBOX" }, nil, "unexpected message"},
		{"missing folder", func(mb *Mailbox) {
			mb.Folders = slices.DeleteFunc(mb.Folders, func(f Folder) bool { return f.Name == "Empty" })
		}, nil, `folder "Empty": missing`},
		{"made selectable", func(mb *Mailbox) {
			for i := range mb.Folders {
				mb.Folders[i].NoSelect = false
			}
		}, &DiffOptions{MissingNoSelectOK: true}, `Noselect want true`},
		{"unsubscribed", func(mb *Mailbox) { mb.Folders[1].Subscribed = false }, nil, "subscribed want true"},
		{"special use", func(mb *Mailbox) { mb.Folders[1].SpecialUse = "" }, &DiffOptions{SpecialUse: true}, "special use want"},
		{"extra folder", func(mb *Mailbox) { mb.Folders = append(mb.Folders, Folder{Name: "New"}) }, nil, `folder "New": unexpected`},
		{"keyword case, strict", func(mb *Mailbox) {
			i := firstIndex(*mb, func(m Message) bool { return slices.Contains(m.Flags, "Important") })
			mb.Messages[i].Flags = addFlag(removeFlag(mb.Messages[i].Flags, "Important"), "important")
		}, &DiffOptions{KeywordCase: true}, "flags want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cloneMailbox(want)
			tt.damage(&got)
			d := DiffMail(want, got, tt.opts)
			if !slices.ContainsFunc(d, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("DiffMail = %q, want a line containing %q", d, tt.want)
			}
		})
	}
	// Tolerances.
	got := cloneMailbox(want)
	got.Folders = slices.DeleteFunc(got.Folders, func(f Folder) bool { return f.NoSelect })
	got.Folders = append(got.Folders, Folder{Name: "Auto"})
	for i := range got.Messages {
		for j, f := range got.Messages[i].Flags {
			got.Messages[i].Flags[j] = strings.ToLower(f)
		}
		got.Messages[i].Flags = append(got.Messages[i].Flags, `\Recent`)
		got.Messages[i].InternalDate = got.Messages[i].InternalDate.UTC()
	}
	if d := DiffMail(want, got, &DiffOptions{MissingNoSelectOK: true, ExtraFoldersOK: true}); d != nil {
		t.Errorf("DiffMail with tolerated differences = %q, want nil", d)
	}
	// Mapping and ignored flags.
	got = cloneMailbox(want)
	for i := range got.Folders {
		got.Folders[i].Name = strings.ReplaceAll(got.Folders[i].Name, "/", ".")
	}
	for i := range got.Messages {
		got.Messages[i].Folder = strings.ReplaceAll(got.Messages[i].Folder, "/", ".")
		got.Messages[i].Flags = removeFlag(got.Messages[i].Flags, ZimbraTagKeyword)
	}
	o := &DiffOptions{Folder: func(s string) string { return strings.ReplaceAll(s, "/", ".") }, IgnoreFlags: []string{ZimbraTagKeyword}}
	if d := DiffMail(want, got, o); d != nil {
		t.Errorf("DiffMail with mapping = %q, want nil", d)
	}
	// The cap.
	got = cloneMailbox(want)
	got.Messages = nil
	d := DiffMail(want, got, &DiffOptions{Max: 10})
	if len(d) != 11 || !strings.Contains(d[10], "more differences") {
		t.Errorf("capped DiffMail gave %d lines, last %q", len(d), d[len(d)-1])
	}
}

func cloneCollections(cs []Collection) []Collection {
	out := slices.Clone(cs)
	for i := range out {
		out[i].Objects = slices.Clone(out[i].Objects)
		for j := range out[i].Objects {
			out[i].Objects[j].Data = bytes.Clone(out[i].Objects[j].Data)
		}
	}
	return out
}

// edit replaces old by new in the object whose UID starts with prefix.
func edit(t *testing.T, cs []Collection, prefix, old, new string) {
	t.Helper()
	for i := range cs {
		for j := range cs[i].Objects {
			o := &cs[i].Objects[j]
			if strings.HasPrefix(strings.TrimPrefix(o.UID, "urn:uuid:"), prefix) && !o.Broken && bytes.Contains(o.Data, []byte(old)) {
				o.Data = bytes.Replace(o.Data, []byte(old), []byte(new), 1)
				return
			}
		}
	}
	t.Fatalf("no object %s* containing %q", prefix, old)
}

func TestDiffCollections(t *testing.T) {
	a := Generate("user1", Options{Seed: 5, Messages: -1, Broken: true})
	for _, want := range [][]Collection{a.Calendars, a.AddressBooks} {
		if d := DiffCollections(want, cloneCollections(want), nil); d != nil {
			t.Fatalf("DiffCollections(copy) = %q", d)
		}
	}
	cal := a.Calendars
	tests := []struct {
		name   string
		books  bool
		damage func(*testing.T, []Collection) []Collection
		want   string
	}{
		{"changed summary", false, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "allday-", "SUMMARY:Geburtstag", "SUMMARY:Geburtstg")
			return cs
		}, "missing SUMMARY:Geburtstag"},
		{"override lost", false, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "monthly-", "RECURRENCE-ID:20230307T150000Z", "X-GONE:1")
			return cs
		}, "RECURRENCE-ID=20230307T150000Z"},
		{"alarm lost", false, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "todo-open-", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER;RELATED=START:-PT15M\r\nEND:VALARM\r\n", "")
			return cs
		}, "missing component VALARM"},
		{"parameter changed", false, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "weekly-berlin-", "PARTSTAT=TENTATIVE", "PARTSTAT=ACCEPTED")
			return cs
		}, "missing ATTENDEE"},
		{"second EXDATE lost", false, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "weekly-berlin-", ",20240129T100000", "")
			return cs
		}, "missing EXDATE"},
		{"object missing", false, func(t *testing.T, cs []Collection) []Collection {
			cs[1].Objects = cs[1].Objects[1:]
			return cs
		}, "missing"},
		{"object duplicated", false, func(t *testing.T, cs []Collection) []Collection {
			cs[0].Objects = append(cs[0].Objects, cs[0].Objects[0])
			return cs
		}, "present 2 times"},
		{"collection missing", false, func(t *testing.T, cs []Collection) []Collection { return cs[:2] }, `collection "tasks": missing`},
		{"display name", false, func(t *testing.T, cs []Collection) []Collection { cs[1].DisplayName = "Work"; return cs }, "display name want"},
		{"photo changed", true, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "", "PHOTO;ENCODING=b;TYPE=JPEG:/9j/", "PHOTO;ENCODING=b;TYPE=JPEG:/9k/")
			return cs
		}, "missing PHOTO"},
		{"member lost", true, func(t *testing.T, cs []Collection) []Collection {
			edit(t, cs, "", "MEMBER:sip:conference@example.com\r\n", "")
			return cs
		}, "missing MEMBER:sip:conference@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := cal
			if tt.books {
				want = a.AddressBooks
			}
			got := tt.damage(t, cloneCollections(want))
			d := DiffCollections(want, got, nil)
			if !slices.ContainsFunc(d, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("DiffCollections = %q, want a line containing %q", d, tt.want)
			}
		})
	}

	// What a server may change without losing data: line folding, order of
	// properties and parameters, PRODID, DTSTAMP, TYPE syntax.
	got := cloneCollections(cal)
	for i := range got[0].Objects {
		got[0].Objects[i].Data = bytes.ReplaceAll(got[0].Objects[i].Data, []byte("\r\n "), nil) // unfold
	}
	edit(t, got, "weekly-berlin-", "PRODID:-//zxmigrate//corpus//EN", "PRODID:-//Radicale//NONSGML Radicale Server//EN")
	edit(t, got, "weekly-berlin-", "DTSTAMP:20240101T120000Z", "DTSTAMP:20260101T000000Z")
	edit(t, got, "weekly-berlin-", "SUMMARY:Wöchentliche Teambesprechung\r\nLOCATION:Raum 4.12\r\n", "LOCATION:Raum 4.12\r\nSUMMARY:Wöchentliche\r\n  Teambesprechung\r\n")
	edit(t, got, "weekly-berlin-", "ATTENDEE;CN=\"Alice Johnson\";CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;", "ATTENDEE;PARTSTAT=ACCEPTED;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;CN=Alice Johnson;")
	if d := DiffCollections(cal, got, nil); d != nil {
		t.Errorf("DiffCollections after harmless rewrites = %q", d)
	}
	books := cloneCollections(a.AddressBooks)
	edit(t, books, "", "EMAIL;TYPE=INTERNET,WORK,pref:", "EMAIL;TYPE=work;TYPE=internet;TYPE=pref:")
	if d := DiffCollections(a.AddressBooks, books, nil); d != nil {
		t.Errorf("DiffCollections after TYPE rewrite = %q", d)
	}
	// Replaced time-zone definitions.
	tz := cloneCollections(cal)
	edit(t, tz, "weekly-berlin-", "TZNAME:CEST", "TZNAME:MESZ")
	if d := DiffCollections(cal, tz, nil); len(d) == 0 {
		t.Error("DiffCollections missed a changed VTIMEZONE")
	}
	if d := DiffCollections(cal, tz, &DiffOptions{TimeZonesByID: true}); d != nil {
		t.Errorf("DiffCollections with TimeZonesByID = %q", d)
	}
	edit(t, tz, "weekly-berlin-", "TZID:Europe/Berlin", "TZID:Europe/Paris")
	if d := DiffCollections(cal, tz, &DiffOptions{TimeZonesByID: true}); len(d) == 0 {
		t.Error("DiffCollections with TimeZonesByID missed a replaced TZID")
	}
	// Mapping names.
	mapped := cloneCollections(cal)
	mapped[0].Name = "Calendar"
	if d := DiffCollections(cal, mapped, &DiffOptions{Collection: func(s string) string {
		if s == CalendarDefault {
			return "Calendar"
		}
		return s
	}}); d != nil {
		t.Errorf("DiffCollections with mapping = %q", d)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	a := small()
	var b bytes.Buffer
	if err := WriteManifest(&b, a); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(&b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(NewManifest(a), m); diff != "" {
		t.Errorf("manifest round trip (-want +got):\n%s", diff)
	}
	if _, err := ReadManifest(strings.NewReader(`{"version": 99}`)); err == nil {
		t.Error("ReadManifest accepted version 99")
	}
	s := m.Summary()
	if s.Messages != 300 || s.EdgeCases != len(edgeCases) || s.Duplicates == 0 || s.NoMessageID == 0 || s.P50 == 0 || s.Max < s.P99 {
		t.Errorf("summary %+v", s)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil || !strings.Contains(text.String(), "Reçus & Factures") {
		t.Errorf("WriteText = %v:\n%s", err, text.String())
	}
}

func TestMessageID(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"Message-ID: <a@b>\r\n\r\nbody", "a@b"},
		{"message-id:\r\n <folded@x>\r\nSubject: s\r\n\r\n", "folded@x"},
		{"Subject: s\r\n\r\nMessage-ID: <in-body@x>\r\n", ""},
		{"\r\nMessage-ID: <no-header@x>\r\n", ""},
		{"", ""},
	} {
		if got := MessageID([]byte(tt.raw)); got != tt.want {
			t.Errorf("MessageID(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func FuzzMessageID(f *testing.F) {
	f.Add([]byte("Message-ID: <a@b>\r\n\r\n"))
	f.Add([]byte("message-id:\r\n\t<x>\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) { MessageID(raw) })
}

// FuzzDiffObject feeds arbitrary iCalendar/vCard pairs to the semantic
// comparison: nothing panics, an object equals a second, independent parse
// of itself, and an object that does not parse is reported as such. Run it
// for a million executions with
//
//	go test -run '^$' -fuzz '^FuzzDiffObject$' -fuzztime 1000000x -timeout 0 ./internal/corpus/
//
// The body parses want twice and got once (diffObject(w, w) followed by
// diffObject(w, g) parsed want three times); parsing is nearly all the cost.
func FuzzDiffObject(f *testing.F) {
	a := Generate("u", Options{Messages: -1, Events: 12, Contacts: 9})
	f.Add(a.Calendars[0].Objects[0].Data, a.Calendars[0].Objects[1].Data)
	f.Add(a.AddressBooks[0].Objects[0].Data, a.AddressBooks[0].Objects[1].Data)
	f.Add([]byte("BEGIN:VCARD\r\n"), []byte("garbage"))
	f.Fuzz(func(t *testing.T, w, g []byte) {
		// The parser diffObject picks for want (and got).
		parse := parseICS
		if bytes.HasPrefix(bytes.TrimSpace(bytes.ToUpper(w[:min(len(w), 64)])), []byte("BEGIN:VCARD")) {
			parse = parseVCard
		}
		wn, err := parse(w, nil)
		if err != nil {
			if d := diffObject(w, g, nil, false); len(d) != 1 || !strings.HasPrefix(d[0], "want does not parse") {
				t.Errorf("want does not parse (%v), but diffObject reports %q", err, d)
			}
			return
		}
		again, err := parse(w, nil)
		if err != nil {
			t.Fatalf("want parses once, then fails: %v", err)
		}
		var same []string
		diffNode(&same, wn, again, "", false)
		if len(same) > 0 {
			t.Errorf("an object differs from itself: %q", same)
		}
		if gn, err := parse(g, nil); err == nil {
			var d []string
			diffNode(&d, wn, gn, "", false)
		}
	})
}
