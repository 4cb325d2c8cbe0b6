// Package imapcopy copies a whole IMAP mailbox to another server exactly,
// resumably and concurrently: the imapsync replacement of zxmigrate.
//
// # Quick start
//
//	src := &imapcopy.Account{Addr: "zimbra.example.com:993", User: "alice@example.com",
//		Admin: "admin@example.com", Password: secret.New(os.Getenv("SRC_ADMIN_PASSWORD"))}
//	dst, _ := imapcopy.ParseURL("imaps://alice@carbonio.example.com")
//	dst.Password = secret.New(os.Getenv("DST_PASSWORD"))
//	c := &imapcopy.Copier{Checkpoint: store.Mail("alice")} // nil: in memory
//	stats, err := c.Copy(ctx, dst, src)
//	if err != nil { ... }        // auth, cancelled, checkpoint unwritable
//	if !stats.OK() { ... }       // per-message problems are in stats
//
// ExampleCopier_Copy runs a copy and a second pass against in-memory
// servers.
//
// # What is copied
//
// Every message's BODY[] byte for byte (nothing injected), all system flags
// (\Deleted-but-not-expunged messages keep the flag unless SkipDeleted), all
// keywords after sanitising (see SanitizeFlags), and INTERNALDATE. The folder
// tree is translated segment by segment between separators and namespace
// prefixes (a segment holding the destination separator has it replaced by
// '_', reported as a rename); special-use folders map by SPECIAL-USE
// attribute, else, on a source without SPECIAL-USE, by well-known name
// (Sent, Sent Items, Trash, Deleted Items, Junk, Spam, Drafts, Archive); a
// \Noselect parent is never created as a real folder; subscriptions are
// copied. Include, Exclude, Map and SkipFolder select and rename folders.
//
// # Identity, resume and re-runs
//
// The Checkpoint (zxmigrate/state implements it over SQLite) keeps per folder
// the UIDVALIDITYs and every source UID → destination UID (APPENDUID). Before
// a chunk of messages is fetched for APPEND its source UIDs are marked in
// flight, durably. On the next run, messages still in flight are looked up
// on the destination by a SHA-256 of their bytes (sizes first), counting
// multiplicity, before anything is appended again. With no usable map (no
// state, a UIDVALIDITY changed, or a destination without UIDPLUS) the whole
// folder is reconciled that way, so messages without Message-ID and true
// duplicates are neither lost nor doubled.
//
// A re-run makes one LIST-STATUS pass per side: a folder whose UIDVALIDITY,
// UIDNEXT, MESSAGES and HIGHESTMODSEQ equal the snapshot of the last verified
// pass (on both sides) is skipped without SELECT. This needs CONDSTORE on the
// source; without it every folder is opened and its flags compared. New
// messages are found by UID; changed flags are stored on the copies.
//
// # Proof
//
// After copying, each folder is verified: every source message's
// fingerprint (RFC822.SIZE, Message-ID and Date; with DeepVerify a SHA-256
// of the bytes) must be found on the destination with multiplicity, and
// flags and INTERNALDATE of each copy must match. Without DeepVerify a
// seeded sample of the copies (VerifySample, default 5%, capped at 10% of
// the folder's bytes) is also read whole on both sides and compared, so
// the proof adds about 5% to the bytes read from the destination instead
// of 100%; DefaultVerifySample documents the odds. Stats holds per folder the
// source and destination counts, copied, already present, skipped (with
// reasons), failed, sanitised keywords, flag updates and the verification.
//
// # Manners (Zimbra, Carbonio)
//
// Folders run in parallel (Concurrency, default 2), each with one source
// connection and MaxWriters (default 1, at most 4 advised) pipelined APPEND
// connections; a ConnBudget caps
// connections per server across Copiers. UID sets are chunked (command lines
// stay far below 8 KB), a NOOP is interleaved after 20 identical commands in
// a row, and a folder pass is retried with backoff after BYE, UNAVAILABLE,
// LIMIT, INUSE or a dropped connection (package retry). Messages over the
// destination's APPENDLIMIT or MaxSize are skipped and reported; an APPEND
// refused with keywords is retried once without them and reported.
// Message bodies are held in reused buffers within MemoryBudget; messages
// larger than SpillThreshold, or that do not fit the budget, are spooled to
// an unlinked temporary file, so memory stays bounded whatever the message
// size.
//
// # Appending
//
// When the destination Dialer is an Account, messages are appended through
// a small APPEND-only IMAP client (internal/imapappend) rather than go-imap:
// several messages per command (MULTIAPPEND, RFC 3502; AppendBatch, 16 by
// default) without waiting for '+' (LITERAL+/LITERAL-, RFC 7888), messages
// holding NUL bytes as BINARY literals (RFC 3516), and a refusal in place
// of a literal's '+' refuses that message without losing the connection.
// APPENDUID sets are mapped back to each message. A refused MULTIAPPEND
// names no message and stores none (RFC 3502; Zimbra and Carbonio delete
// what the command had stored when it fails, ImapHandler.doAPPEND), so its
// messages go again at once, one per command, where a refusal names the
// message. Only a MULTIAPPEND whose answer never arrives (the connection
// dropped) leaves its messages' outcome unknown: they keep their
// in-flight marks and the next pass looks them up on the destination
// before it sends the missing ones. Other Dialers append through go-imap,
// one message per command, pipelined.
//
// When the server offers LITERAL+, up to 8 APPEND commands (8 MiB of
// messages) are in flight on a connection, so that a round trip is not
// paid per command; their answers are read in order. A copy that stops
// hears out the commands in flight before it returns. When the round trip
// to either server is 5 ms or more (WANRoundTrip), a zero Concurrency
// copies WANConcurrency folders at once.
//
// A message's way through the code: Copier.Copy (copier.go) runs a
// folderRun per folder (folder.go: select, reconcile, propagate, plan,
// append, verify, checkpoint); its append step fetches bodies from the
// source (fetch.go) into a queue that writers (writer.go) send through an
// appender: internal/imapappend's Conn.Start (append.go), or go-imap.
//
// # Deletions
//
// With Delete, a pass deletes on the destination the copies of messages
// the source no longer has: the UID map names them (copies appended, or
// found as the copy of a source message), so mail without a source
// counterpart is never touched. They are flagged \Deleted and removed by
// UID EXPUNGE of exactly their UIDs (UIDPLUS); a copy whose UID the
// destination never gave is reported, not deleted; a listing shorter than
// the folder's EXISTS holds the folder's deletions back. Outcomes are in
// FolderStats.Deleted and DeleteFailed; a Checkpoint that is a Forgetter
// drops the map entries of deleted copies.
//
// # Known limits
//
// Reading uses go-imap v2 beta.8 (no COMPRESS). Through go-imap (Dialers
// other than Account) a message containing a NUL byte cannot be appended
// and is reported as failed, as it is when the destination lacks BINARY.
// Messages the source expunges are deleted from the destination only with
// Copier.Delete, and only their recorded copies (see Deletions).
package imapcopy
