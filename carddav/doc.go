// Package carddav is the vCard side of package dav: it copies address
// books between CardDAV servers, vCards byte for byte (3.0 and 4.0 as
// given), idempotently, with a Zimbra REST source adapter.
//
// The copy itself is a dav.Copier with Rules{}: discovery, listing,
// multiget, conditional PUT, checkpoints, deletions and verification are
// package dav's. What is specific to vCard lives here:
//
//   - Rules is the one place where cards are validated (VERSION, fields,
//     one UID per card; a missing UID is derived from the card's content)
//     and fingerprinted semantically, and where contact groups (vCard 4
//     KIND:group, Apple X-ADDRESSBOOKSERVER-KIND) are checked: members that
//     are not e-mail addresses are reported, since Carbonio keeps only
//     address members.
//   - NewDAV opens a CardDAV server; FindAddressBooks lists address books
//     with go-webdav's client.
//   - NewZimbraREST reads Zimbra contact folders (?fmt=vcf), split per card
//     by SplitExport. Contacts are never written through REST vcf/csv
//     imports, which duplicate every contact on each re-run.
//
// Quick start:
//
//	src, _ := carddav.NewZimbraREST(dav.Endpoint{URL: "https://zimbra:7071", User: "admin",
//		Password: adminPw, Account: "alice@example.com"}, "Contacts")
//	dst, _ := carddav.NewDAV(dav.Endpoint{URL: "https://mail.example.com/dav/alice@example.com/",
//		Token: carbonioClient, Account: "alice@example.com"})
//	c := &dav.Copier{Rules: carddav.Rules{}, Checkpoint: store.Contacts("alice@example.com")}
//	stats, err := c.Copy(ctx, dst, src)
//
// Rules and the functions of this package are safe for concurrent use.
package carddav
