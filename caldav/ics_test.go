package caldav

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ical "github.com/arran4/golang-ical"
	"github.com/google/go-cmp/cmp"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSplit(t *testing.T) {
	tests := []struct {
		file      string
		wantUIDs  []string
		wantComps []string
		verbatim  bool
		wantNotes []string // substrings, all notes joined
		wantErr   string
	}{
		{file: "weekly.ics", wantUIDs: []string{"weekly-1@example.com"}, wantComps: []string{"VEVENT"}, verbatim: true},
		{file: "allday.ics", wantUIDs: []string{"allday-1@example.com"}, wantComps: []string{"VEVENT"}, verbatim: true},
		{file: "todo.ics", wantUIDs: []string{"todo-1@example.com"}, wantComps: []string{"VTODO"}, verbatim: true},
		{file: "multi.ics", wantUIDs: []string{"multi-a@example.com", "multi-b@example.com"}, wantComps: []string{"VEVENT", "VEVENT"},
			wantNotes: []string{"VTIMEZONE moved before its first use", "METHOD removed"}},
		{file: "notz.ics", wantUIDs: []string{"notz-1@example.com"}, wantComps: []string{"VEVENT"}, wantNotes: []string{`VTIMEZONE "Asia/Kolkata" generated`}},
		{file: "mixed.ics", wantErr: `UID "mixed-1@example.com" mixes VEVENT and VTODO`},
		{file: "badtz.ics", wantErr: `TZID "Mars/Olympus_Mons", which has no VTIMEZONE`},
		{file: "nouid.ics", wantErr: "VEVENT #1 has no UID"},
		{file: "baddate.ics", wantErr: `DTSTART value "2024-13-45 25:00" is not a DATE or DATE-TIME`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, tt.file)
			items, err := Rules{}.Split(data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Split error = %v, want one containing %q wrapping ErrInvalid", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var uids, comps, notes []string
			for _, it := range items {
				uids = append(uids, it.UID)
				comps = append(comps, it.Component)
				notes = append(notes, it.Notes...)
				// Every item parses, holds one UID and has its VTIMEZONEs first.
				cal, err := ical.ParseCalendar(bytes.NewReader(it.Data))
				if err != nil {
					t.Fatalf("item %s does not parse: %v\n%s", it.UID, err, it.Data)
				}
				sawComp := false
				for _, c := range cal.Components {
					switch compName(c) {
					case "VTIMEZONE":
						if sawComp {
							t.Errorf("item %s: VTIMEZONE after a component", it.UID)
						}
					default:
						sawComp = true
					}
				}
				if bytes.Contains(it.Data, []byte("METHOD:")) {
					t.Errorf("item %s keeps METHOD", it.UID)
				}
				for _, l := range strings.Split(string(it.Data), "\r\n") {
					if strings.Contains(l, "TZID=") {
						id := l[strings.Index(l, "TZID=")+5:]
						id = id[:strings.IndexAny(id, ":;")]
						if !bytes.Contains(it.Data, []byte("TZID:"+id+"\r\n")) {
							t.Errorf("item %s uses TZID %s without its VTIMEZONE", it.UID, id)
						}
					}
				}
			}
			if diff := cmp.Diff(tt.wantUIDs, uids); diff != "" {
				t.Errorf("UIDs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantComps, comps); diff != "" {
				t.Errorf("components (-want +got):\n%s", diff)
			}
			if tt.verbatim && (len(items) != 1 || !bytes.Equal(items[0].Data, data)) {
				t.Errorf("valid single object was rewritten:\n%s", items[0].Data)
			}
			all := strings.Join(notes, "\n")
			for _, n := range tt.wantNotes {
				if !strings.Contains(all, n) {
					t.Errorf("notes %q lack %q", all, n)
				}
			}
			if len(tt.wantNotes) == 0 && len(notes) > 0 {
				t.Errorf("unexpected notes %q", notes)
			}
		})
	}
}

func TestFingerprintIgnoresFormatting(t *testing.T) {
	a := readTestdata(t, "weekly.ics")
	// Same object with LF line ends, reordered properties, refolded lines
	// and a new DTSTAMP.
	b := strings.ReplaceAll(string(a), "\r\n", "\n")
	b = strings.Replace(b, "SUMMARY:Weekly sync\n", "", 1)
	b = strings.Replace(b, "RRULE:FREQ=WEEKLY;COUNT=10\n", "RRULE:FREQ=WEEKLY;COUNT=10\nSUMMARY:Weekly \n sync\n", 1)
	b = strings.ReplaceAll(b, "DTSTAMP:20250101T000000Z", "DTSTAMP:20260101T000000Z")
	u1, h1, err := Rules{}.Fingerprint(a)
	if err != nil {
		t.Fatal(err)
	}
	u2, h2, err := Rules{}.Fingerprint([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if u1 != "weekly-1@example.com" || u2 != u1 {
		t.Errorf("UIDs %q, %q", u1, u2)
	}
	if h1 != h2 {
		t.Errorf("fingerprints differ for equivalent objects")
	}
	c := strings.Replace(string(a), "SUMMARY:Weekly sync", "SUMMARY:Weekly sync v2", 1)
	if _, h3, _ := (Rules{}).Fingerprint([]byte(c)); h3 == h1 {
		t.Errorf("fingerprint did not change with SUMMARY")
	}
}

func TestGeneratedVTimezone(t *testing.T) {
	for _, id := range []string{"Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"} {
		b, err := vtimezone(id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		raw := b.Raw()
		cal := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + string(raw) + "END:VCALENDAR\r\n"
		if _, err := ical.ParseCalendar(strings.NewReader(cal)); err != nil {
			t.Errorf("%s: generated VTIMEZONE does not parse: %v\n%s", id, err, raw)
		}
		if id == "Europe/Berlin" {
			for _, want := range []string{"BYMONTH=3;BYDAY=-1SU", "BYMONTH=10;BYDAY=-1SU", "DTSTART:19700329T020000", "DTSTART:19701025T030000", "TZOFFSETTO:+0200"} {
				if !strings.Contains(string(raw), want) {
					t.Errorf("Europe/Berlin lacks %q:\n%s", want, raw)
				}
			}
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, n := range []string{"weekly.ics", "multi.ics", "mixed.ics", "nouid.ics"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := Rules{}.Split(data)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.UID == "" {
				t.Fatalf("item without UID")
			}
			if _, _, err := (Rules{}).Fingerprint(it.Data); err != nil {
				t.Fatalf("item does not fingerprint: %v", err)
			}
		}
	})
}
