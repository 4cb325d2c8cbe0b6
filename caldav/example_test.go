package caldav_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// Rules split a resource that holds two UIDs into one item each (CalDAV
// stores one UID per resource), and remove METHOD, which stored objects
// may not carry.
func ExampleRules_Split() {
	data := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\nMETHOD:PUBLISH\r\n" +
		"BEGIN:VEVENT\r\nUID:a@example.com\r\nDTSTAMP:20260101T090000Z\r\nDTSTART:20260105T090000Z\r\nSUMMARY:Planning\r\nEND:VEVENT\r\n" +
		"BEGIN:VTODO\r\nUID:b@example.com\r\nDTSTAMP:20260101T090000Z\r\nSUMMARY:Report\r\nEND:VTODO\r\n" +
		"END:VCALENDAR\r\n"
	items, err := caldav.Rules{}.Split([]byte(data))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range items {
		fmt.Println(it.UID, it.Component, it.Repaired, it.Notes)
	}
	// Output:
	// a@example.com VEVENT true [METHOD removed (not allowed in a CalDAV resource)]
	// b@example.com VTODO true [METHOD removed (not allowed in a CalDAV resource)]
}

// Fingerprint sees through a server's re-spelling: RRULE parts in another
// order and lines folded elsewhere are the same event.
func ExampleRules_Fingerprint() {
	a := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//a//EN\r\nBEGIN:VEVENT\r\nUID:r@example.com\r\n" +
		"DTSTAMP:20260101T090000Z\r\nDTSTART:20260105T090000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4;BYDAY=MO\r\n" +
		"SUMMARY:Weekly planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	b := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//b//EN\r\nBEGIN:VEVENT\r\nUID:r@example.com\r\n" +
		"DTSTAMP:20260101T090000Z\r\nDTSTART:20260105T090000Z\r\nRRULE:BYDAY=MO;FREQ=WEEKLY;COUNT=4\r\n" +
		"SUMMARY:Weekly\r\n  planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	uid, ha, _ := caldav.Rules{}.Fingerprint([]byte(a))
	_, hb, _ := caldav.Rules{}.Fingerprint([]byte(b))
	fmt.Println(uid, ha == hb)
	// Output:
	// r@example.com true
}

// NewZimbraREST reads calendar folders through the REST UserServlet, here
// of an in-memory server standing in for Zimbra, with the admin's
// credentials; NewDAV writes them over CalDAV.
func ExampleNewZimbraREST() {
	zimbra := memdav.New()
	zimbra.AddUser("alice", "alice-pw")
	zimbra.AdminUser, zimbra.AdminPassword = "admin", "admin-pw"
	cal := zimbra.AddCalendar("alice", "Calendar", "Calendar")
	zimbra.Put("alice", cal, "a.ics", []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\n"+
		"BEGIN:VEVENT\r\nUID:a@example.com\r\nDTSTAMP:20260101T090000Z\r\nDTSTART:20260105T090000Z\r\nSUMMARY:Planning\r\nEND:VEVENT\r\n"+
		"END:VCALENDAR\r\n"))
	zts := httptest.NewTLSServer(zimbra)
	defer zts.Close()
	carbonio := memdav.New()
	carbonio.AddUser("alice", "pw")
	cts := httptest.NewTLSServer(carbonio)
	defer cts.Close()

	src, err := caldav.NewZimbraREST(dav.Endpoint{URL: zts.URL, User: "admin", Password: secret.New("admin-pw"),
		Account: "alice", HTTPClient: zts.Client()}, "Calendar")
	if err != nil {
		fmt.Println(err)
		return
	}
	dst, err := caldav.NewDAV(dav.Endpoint{URL: cts.URL + memdav.CalendarHome("alice"), User: "alice",
		Password: secret.New("pw"), HTTPClient: cts.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	stats, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), dst, src)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range stats.Collections {
		fmt.Printf("%s: %d created, collection created %v\n", c.Name, c.Created, c.CollectionCreated)
	}
	fmt.Println(carbonio.Collections("alice"))
	// Output:
	// Calendar: 1 created, collection created true
	// [/alice/calendars/Calendar/]
}
