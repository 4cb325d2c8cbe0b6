// Package caldav copies calendars and task lists between CalDAV servers,
// losslessly and idempotently, with adapters for Zimbra and Carbonio.
//
// Discovery follows the principal and calendar home set (well-known URL
// first when given a bare server URL); listing is a PROPFIND for hrefs and
// ETags; reading is calendar-multiget in batches with a GET per object the
// REPORT did not return, so one unparsable object never hides the others.
// Writing is a raw conditional PUT of the original bytes (If-None-Match: *
// to create, If-Match to update): nothing is ever blindly overwritten.
//
// Objects are identified by UID. Rules validates and repairs each resource
// in one place (one UID per resource, VTIMEZONE for every TZID placed
// before use, no METHOD) and fingerprints it semantically: a server's
// re-spelling (RRULE part order, quoting, case, folding, order, an instant
// in UTC or with a TZID) is not a change, a lost EXDATE, alarm, attendee
// or instance is (semantic.go lists the rules). A Checkpoint
// (zxmigrate/state implements it over SQLite) records source href, ETag and
// fingerprint against destination href and ETag, so a re-run reads only
// changed objects and writes only changed ones; without a checkpoint,
// objects are matched by UID at the destination.
//
// Copy is additive unless Copier.Delete is set: then objects this tool
// copied (recorded in the checkpoint) that the source no longer has are
// deleted at the destination with If-Match, so an object changed there
// since is kept and reported. A collection whose listing failed or is
// empty, or whose objects failed, deletes nothing; collections are never
// deleted.
//
// Quick start:
//
//	src, _ := caldav.NewDAV(caldav.Endpoint{URL: "https://old.example.com/", User: "alice", Password: pw})
//	dst, _ := caldav.NewDAV(caldav.Endpoint{URL: "https://mail.example.com/dav/alice@example.com/",
//		Token: carbonioClient, Account: "alice@example.com"})
//	stats, err := (&caldav.Copier{Checkpoint: store.Calendars("alice@example.com")}).Copy(ctx, dst, src)
//
// Zimbra sources without user passwords: NewZimbraREST reads
// /home/<user>/<folder>?fmt=ics&icalAttach=inline on the admin port and
// splits the export per UID. Carbonio destinations: NewDAV with a
// TokenSource (DelegateAuth token sent as the ZM_AUTH_TOKEN cookie), or, as
// the documented fallback, NewZimbraRESTDestination (REST ?fmt=ics POST).
package caldav
