// Package transfer copies a Zextras Suite export (the directory tree that
// `zxsuite backup doExport` writes) from the source host to the path the
// destination restores from, and proves the copy complete.
//
// Rsync runs the rsync program on this host: it pulls the tree from the
// source host over SSH (host keys always checked, keys from files or the
// agent, never a password) or copies it from a local path (a mounted
// share). It resumes interrupted files (--partial-dir), retries transient
// failures, reports progress from --info=progress2, and Verify checks the
// result afterwards: file count and bytes on both sides, and a dry run
// (--itemize-changes, optionally --checksum) that must find nothing left to
// do. LocalCopy and Compare do the same in pure Go for a local source when
// rsync is not installed.
//
// The tree layout is the Zextras backup path: map_<server id> files,
// accounts/, items/, servers/ (zextras/tech-doc, the Zextras Suite backup
// chapter, "Backup Path"). This package copies any tree; it does not read
// the files.
package transfer
