// Package dav copies calendars, task lists and address books between
// CalDAV and CardDAV servers: the engine that packages caldav and carddav
// drive with their iCalendar and vCard rules.
//
// # Quick start
//
//	src, _ := caldav.NewDAV(dav.Endpoint{URL: "https://old.example.com/", User: "alice", Password: pw})
//	dst, _ := caldav.NewDAV(dav.Endpoint{URL: "https://mail.example.com/dav/alice@example.com/",
//		Token: carbonioClient, Account: "alice@example.com"})
//	c := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: store.Calendars("alice@example.com")}
//	stats, err := c.Copy(ctx, dst, src)
//	if err != nil { ... }  // auth, cancelled, checkpoint unwritable
//	if !stats.OK() { ... } // per-object problems are in stats
//	v, err := c.Verify(ctx, dst, src)
//
// # Parts
//
// A Copier copies from a Source to a Destination. A Remote (made by
// caldav.NewDAV, carddav.NewDAV or NewRemote) is a DAV server seen as
// both, and a Deleter; a REST (caldav.NewZimbraREST,
// carddav.NewZimbraREST) reads Zimbra folder exports, and for calendars
// can import through them. An Endpoint says where a server is and how to
// log in (Basic credentials, or a Carbonio token from a TokenSource), which
// origins may be followed, and the Limits on what a server may send.
//
// Rules are the format: they validate, repair, split and fingerprint
// objects (caldav.Rules for iCalendar, carddav.Rules for vCard). A
// Checkpoint records, per collection pair, source href, ETag and
// fingerprint against destination href and ETag, so a re-run reads only
// changed objects and writes only changed ones; state.Store implements it
// over SQLite, MemoryCheckpoint in memory.
//
// Copy returns Stats; OnEvent receives the progress Events. Verify compares
// both sides by UID and semantic fingerprint and returns a Verification.
//
// # How objects travel
//
// Discovery follows the current user principal and the home set
// (well-known URL first when given a bare server URL); listing is a
// PROPFIND for hrefs and ETags; reading is a multiget REPORT in batches
// with a GET per object the REPORT did not return, so one unparsable object
// never hides the others. Writing is a raw conditional PUT of the bytes
// Rules return (If-None-Match: * to create, If-Match to update): nothing is
// ever blindly overwritten. Objects are identified by UID. Requests are raw
// rather than go-webdav's client, which cannot send If-Match or
// If-None-Match, re-encodes objects, fails a whole query on one bad object
// and rejects weak ETags; go-webdav's types and server are used.
//
// Copy is additive unless Copier.Delete is set: then objects this tool
// copied (recorded in the checkpoint) that the source no longer has are
// deleted at the destination with If-Match, so an object changed there
// since is kept and reported. A collection whose listing failed or is
// empty, or whose objects failed, deletes nothing; collections are never
// deleted.
//
// # Concurrency
//
// A Copier may be used for several Copy and Verify calls, also
// concurrently, as long as its fields are not changed meanwhile. Within a
// call, collections and objects are copied in parallel, at most
// Concurrency requests per server at a time. Every goroutine a call starts
// has ended when it returns; a Copier holds no connection between calls.
// OnEvent and OnError may be called concurrently and must return quickly;
// Rules and Checkpoint methods are called concurrently.
//
// Cancelling ctx stops a call: requests in flight are abandoned, objects
// already written stay written and recorded, and the call returns ctx's
// error with the stats so far. Authentication failures, an unwritable
// checkpoint and an OnError that returns an error also stop the call;
// other per-object failures are recorded in the stats and the call goes on.
//
// Remote, REST, Client, MemoryCheckpoint and the HTTP clients Endpoint
// builds are safe for concurrent use.
package dav
