// Package carddav copies address books between CardDAV servers, vCards byte
// for byte (3.0 and 4.0 as given), idempotently, with a Zimbra REST source
// adapter.
//
// It mirrors package caldav: discovery through the principal and
// address-book home set, PROPFIND listing with ETags, addressbook-multiget
// in batches with per-object fallback, raw conditional PUT, identity by UID,
// a Checkpoint for re-runs, and Rules as the one place where cards are
// validated (VERSION, fields, one UID per card; a missing UID is derived
// from the card's content) and contact groups (vCard 4 KIND:group, Apple
// X-ADDRESSBOOKSERVER-KIND) are checked: members that are not e-mail
// addresses are reported, since Carbonio keeps only address members.
//
// Contacts are never written through REST vcf/csv imports, which duplicate
// every contact on each re-run.
//
// Copier.Delete propagates deletions as in package caldav: only recorded
// copies, under If-Match, never in a collection that lists nothing.
//
// Quick start:
//
//	src, _ := carddav.NewZimbraREST(carddav.ZimbraREST{URL: "https://zimbra:7071", User: "admin",
//		Password: adminPw, Account: "alice@example.com", Folders: []string{"Contacts"}})
//	dst, _ := carddav.NewDAV(carddav.Endpoint{URL: "https://mail.example.com/dav/alice@example.com/",
//		Token: carbonioClient, Account: "alice@example.com"})
//	stats, err := (&carddav.Copier{Checkpoint: store.Contacts("alice@example.com")}).Copy(ctx, dst, src)
package carddav
