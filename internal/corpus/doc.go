// Package corpus generates deterministic, realistic test data for zxmigrate:
// mailboxes (folders, messages with flags, keywords and INTERNALDATEs),
// calendars (events, recurrences, overrides, time zones, alarms, tasks) and
// address books (vCard 3.0 and 4.0, photos, groups), together with a manifest
// and comparison helpers that tests use to prove nothing was lost, changed or
// duplicated.
//
// The same seed and options always yield the same bytes (math/rand/v2 PCG
// streams, never the clock). The reference mailbox has 29 folders
// (nested, non-ASCII, spaces and dots, a \Noselect parent "Lists", the
// unsubscribed "Old Stuff", "Empty", special-use Sent/Drafts/Trash/Junk/
// Archive), text, multipart/alternative, multipart/mixed with base64
// attachments, message/rfc822 forwards, RFC 2047/2231 encodings, threads,
// exact duplicates within and across folders, ~0.5 % without Message-ID,
// ~0.3 % with an unparseable Date, 102 malformed or unusual messages in
// EdgeCases, and 8 INBOX messages flagged \Deleted but not expunged. Every
// message uses CRLF; none contains NUL unless Options.NUL asks for one.
// Small corpora keep every folder kind and every edge case: edge cases are
// planned first, then the folders are filled.
//
// Quick start:
//
//	a := corpus.Generate("user1", corpus.Options{Seed: 1, Messages: 300})
//	if err := corpus.SeedIMAP(ctx, src, a.Mail); err != nil { ... }
//	// ... copy src to dst with the code under test ...
//	got, err := corpus.SnapshotIMAP(ctx, dst)
//	if d := corpus.DiffMail(a.Mail, got, nil); d != nil {
//		t.Errorf("mail differs:\n%s", strings.Join(d, "\n"))
//	}
//	// calendars and contacts:
//	if d := corpus.DiffCollections(a.Calendars, gotCalendars, nil); d != nil { ... }
//
// The reference corpus (Options{} : 10,121 messages, ~550 MB) takes a few
// seconds on two cores; EachMessage streams it without holding it in
// memory, and Manifest.AddMessage builds its manifest on the way.
//
// SeedIMAP and SnapshotIMAP speak plain IMAP through go-imap's client, so
// they work against Dovecot, Carbonio or go-imap's in-memory server. The
// in-memory server (imapmemserver, v2.0.0-beta.8) has limits a test must
// allow for: its separator is always '/'; it neither creates nor lists
// \Noselect parents (use DiffOptions.MissingNoSelectOK); it keeps no
// special-use attributes; it lower-cases flags and keywords (DiffMail
// compares keywords case-insensitively unless DiffOptions.KeywordCase); it
// has no INBOX until one is created; and its BODY[] re-serialises the header,
// so it returns an empty body for the "header-never-ends" edge cases and
// rewrites the "broken-folding" ones 1 and 3.
//
// Types are plain data; functions are safe for concurrent use on distinct
// arguments. An *imapclient.Client passed to SeedIMAP or SnapshotIMAP must
// not be used by anything else during the call.
package corpus
