// Package caldav is the iCalendar side of package dav: it copies calendars
// and task lists between CalDAV servers, losslessly and idempotently, with
// adapters for Zimbra and Carbonio.
//
// The copy itself is a dav.Copier with Rules{}: discovery, listing,
// multiget, conditional PUT, checkpoints, deletions and verification are
// package dav's. What is specific to iCalendar lives here:
//
//   - Rules validates and repairs each resource in one place (one UID per
//     resource, VTIMEZONE for every TZID placed before use, no METHOD) and
//     fingerprints it semantically: a server's re-spelling (RRULE part
//     order, quoting, case, folding, order, an instant in UTC or with a
//     TZID) is not a change, a lost EXDATE, alarm, attendee or instance is
//     (semantic.go lists the rules). A component the destination calendar
//     does not accept goes to a companion calendar ("<name>-tasks" for
//     VTODO).
//   - NewDAV opens a CalDAV server; FindCalendars lists calendars with
//     go-webdav's client.
//   - NewZimbraREST reads Zimbra sources without user passwords:
//     /home/<user>/<folder>?fmt=ics&icalAttach=inline on the admin port,
//     split per UID by SplitExport. Carbonio destinations take NewDAV with
//     a dav.TokenSource (DelegateAuth token sent as the ZM_AUTH_TOKEN
//     cookie), or, as the documented fallback, NewZimbraRESTDestination
//     (REST ?fmt=ics POST).
//
// Quick start:
//
//	src, _ := caldav.NewDAV(dav.Endpoint{URL: "https://old.example.com/", User: "alice", Password: pw})
//	dst, _ := caldav.NewDAV(dav.Endpoint{URL: "https://mail.example.com/dav/alice@example.com/",
//		Token: carbonioClient, Account: "alice@example.com"})
//	c := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: store.Calendars("alice@example.com")}
//	stats, err := c.Copy(ctx, dst, src)
//
// Rules and the functions of this package are safe for concurrent use.
package caldav
