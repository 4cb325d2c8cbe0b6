// Package davtest is the conformance suite for caldav and carddav: one set
// of checks run against every server pair (in-memory go-webdav, Radicale,
// Xandikos). It seeds the source over HTTP (MKCALENDAR/MKCOL and PUT), so it
// works with any server.
package davtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
	"github.com/zxmigrate/zxmigrate/secret"
)

// Side is one server of a pair.
type Side struct {
	Name string
	// URL is what the copier gets: server root, principal or home.
	URL string
	// CalendarHome and AddressBookHome are the absolute URLs where the
	// suite creates collections when seeding.
	CalendarHome, AddressBookHome string
	User                          string
	Password                      secret.Secret
	// HTTP is the transport; nil means http.DefaultClient.
	HTTP webdav.HTTPClient
}

func (s Side) client(t testing.TB, base string) *dav.Client {
	t.Helper()
	c, err := dav.Endpoint{URL: base, User: s.User, Password: s.Password, HTTPClient: s.HTTP}.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Endpoint returns the endpoint of s.
func (s Side) Endpoint() dav.Endpoint {
	return dav.Endpoint{URL: s.URL, User: s.User, Password: s.Password, HTTPClient: s.HTTP}
}

// Options sizes the suite.
type Options struct {
	// Events and Contacts are the numbers of generated objects besides
	// the fixtures.
	Events, Contacts int
	// Malformed seeds one invalid object among the generated ones; when the
	// source server refuses to store it, that check is logged and skipped.
	Malformed bool
	// Lossy lists UIDs the destination server is known to corrupt (a server
	// bug, e.g. Radicale truncating vCard 4 data: URIs). Verify must report
	// them as different; a stateless re-run rewrites them.
	Lossy []string
}

// SeedCalendar creates a calendar named name under s.CalendarHome and PUTs
// objects (name -> data).
func SeedCalendar(t testing.TB, s Side, name, display string, comps []string, objs map[string][]byte) string {
	t.Helper()
	ctx := context.Background()
	c := s.client(t, s.CalendarHome)
	href := dav.DirHref(c.Base().Path) + name + "/"
	if err := c.MakeCollection(ctx, dav.CalDAV, href, dav.CollectionProps{DisplayName: display, Description: "Seeded " + name, Color: "#FF8800FF", Components: comps}); err != nil {
		t.Fatalf("%s: MKCALENDAR %s: %v", s.Name, href, err)
	}
	for n, d := range objs {
		if _, err := c.Put(ctx, href+n, dav.CalDAV.ContentType, d, dav.Cond{Create: true}); err != nil {
			t.Fatalf("%s: PUT %s: %v", s.Name, n, err)
		}
	}
	return href
}

// SeedAddressBook creates an address book named name and PUTs objects.
func SeedAddressBook(t testing.TB, s Side, name, display string, objs map[string][]byte) string {
	t.Helper()
	ctx := context.Background()
	c := s.client(t, s.AddressBookHome)
	href := dav.DirHref(c.Base().Path) + name + "/"
	if err := c.MakeCollection(ctx, dav.CardDAV, href, dav.CollectionProps{DisplayName: display, Description: "Seeded " + name}); err != nil {
		t.Fatalf("%s: MKCOL %s: %v", s.Name, href, err)
	}
	for n, d := range objs {
		if _, err := c.Put(ctx, href+n, dav.CardDAV.ContentType, d, dav.Cond{Create: true}); err != nil {
			t.Fatalf("%s: PUT %s: %v", s.Name, n, err)
		}
	}
	return href
}

// modify rewrites n objects of the collection at href (absolute path on
// s) with If-Match, changing SUMMARY or FN, and returns their UIDs.
func modify(t testing.TB, s Side, p *dav.Protocol, href string, n int, rules dav.Rules) []string {
	t.Helper()
	ctx := context.Background()
	c := s.client(t, s.URL)
	refs, err := c.List(ctx, href)
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, r := range refs {
		if len(uids) == n {
			break
		}
		data, etag, err := c.Get(ctx, r.Href)
		if err != nil {
			t.Fatal(err)
		}
		data = davtext.CRLF(data)
		uid, _, err := rules.Fingerprint(data)
		if err != nil || !strings.HasPrefix(uid, "gen-") {
			continue
		}
		var out string
		if p == dav.CalDAV {
			out = strings.Replace(string(data), "SUMMARY:", "SUMMARY:Changed ", 1)
		} else {
			out = strings.Replace(string(data), "\nFN:", "\nFN:Changed ", 1)
		}
		if out == string(data) {
			t.Fatalf("modify %s: nothing to change", r.Href)
		}
		if etag == "" {
			etag = r.ETag
		}
		if _, err := c.Put(ctx, r.Href, p.ContentType, []byte(out), dav.Cond{IfMatch: etag}); err != nil {
			t.Fatalf("modify %s: %v", r.Href, err)
		}
		uids = append(uids, uid)
	}
	if len(uids) != n {
		t.Fatalf("modified %d objects, want %d", len(uids), n)
	}
	return uids
}

// EventFixtures returns the calendar objects every pair must carry: a
// weekly Europe/Berlin series with EXDATE, an overridden instance, VALARM,
// ATTENDEE/ORGANIZER and ATTACH; an all-day event with non-ASCII text; a
// New York event; and generated events.
func EventFixtures(n int) map[string][]byte {
	m := map[string][]byte{
		"weekly.ics":  []byte(weekly),
		"allday.ics":  []byte(allDay),
		"newyork.ics": []byte(newYork),
	}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("gen-%04d.ics", i)] = GenEvent(i)
	}
	return m
}

// TaskFixtures returns VTODO objects.
func TaskFixtures() map[string][]byte {
	return map[string][]byte{"todo.ics": []byte(todo)}
}

// GenEvent returns generated event i.
func GenEvent(i int) []byte {
	return []byte(crlf(fmt.Sprintf(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//zxmigrate//davtest//EN
BEGIN:VEVENT
UID:gen-%04d@zxmigrate.test
DTSTAMP:20250101T000000Z
DTSTART:2025%02d%02dT%02d0000Z
DURATION:PT1H
SUMMARY:Generated event %d – é
DESCRIPTION:Body of event %d\, with escapes\; and a newline\nsecond line
LOCATION:Room %d
END:VEVENT
END:VCALENDAR
`, i, 1+i%12, 1+i%28, 8+i%10, i, i, i%50)))
}

// Malformed is a calendar object the caldav rules reject: a VEVENT without
// DTSTART (RFC 5545 requires it in a stored object).
var Malformed = crlf(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//zxmigrate//davtest//EN
BEGIN:VEVENT
UID:malformed-1@zxmigrate.test
DTSTAMP:20250101T000000Z
SUMMARY:Event without a start
END:VEVENT
END:VCALENDAR
`)

// ContactFixtures returns vCards: 3.0 with a base64 PHOTO, 4.0 with a data:
// PHOTO, several EMAIL/TEL/ADR, non-ASCII names, a vCard 4 group and an
// Apple group, plus n generated cards.
func ContactFixtures(n int) map[string][]byte {
	m := map[string][]byte{
		"v3.vcf":         []byte(card3),
		"v4.vcf":         []byte(card4),
		"group4.vcf":     []byte(group4),
		"applegroup.vcf": []byte(appleGroup),
	}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("gen-%04d.vcf", i)] = GenCard(i)
	}
	return m
}

// GenCard returns generated card i.
func GenCard(i int) []byte {
	return []byte(crlf(fmt.Sprintf(`BEGIN:VCARD
VERSION:3.0
UID:gen-%04d@zxmigrate.test
FN:Person %d Müller
N:Müller;Person %d;;;
EMAIL;TYPE=INTERNET,WORK:p%d@example.com
EMAIL;TYPE=INTERNET,HOME:p%d@home.example
TEL;TYPE=CELL:+49 170 %07d
ADR;TYPE=WORK:;;Hauptstraße %d;Berlin;;10115;Germany
END:VCARD
`, i, i, i, i, i, i, i)))
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// HTTPStatus is a helper for servers that refuse a seed.
func HTTPStatus(err error) int {
	for _, c := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusUnsupportedMediaType, http.StatusConflict} {
		if dav.IsStatus(err, c) {
			return c
		}
	}
	return 0
}
