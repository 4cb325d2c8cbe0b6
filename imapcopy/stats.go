package imapcopy

import (
	"github.com/emersion/go-imap/v2"
)

// Stats is the outcome of a Copy or Verify: one entry per source folder.
type Stats struct {
	// Source and Destination name the two mailboxes.
	Source      string `json:"source"`
	Destination string `json:"destination"`       // see Source
	DryRun      bool   `json:"dry_run,omitempty"` // the Copier's DryRun: nothing was written
	// FolderConcurrency is how many folders were copied in parallel: the
	// Copier's Concurrency, or the number it chose from the round trip it
	// measured (DefaultConcurrency or WANConcurrency, divided among the
	// Copy calls sharing its budget), cut to half its share of the
	// connection budget (see Copier.Concurrency).
	FolderConcurrency int `json:"folder_concurrency,omitempty"`
	// RoundTripMillis is the longer of the two servers' round trips in
	// milliseconds, timed with a NOOP after login.
	RoundTripMillis float64       `json:"round_trip_ms,omitempty"`
	Folders         []FolderStats `json:"folders"` // one entry per source folder
}

// FolderStats is what happened to one source folder.
type FolderStats struct {
	// Source is the source folder (server name); Destination its
	// destination name ("" when the folder was skipped).
	Source      string `json:"source"`
	Destination string `json:"destination,omitempty"` // see Source
	// Renamed says why Destination differs from Source, when it does.
	Renamed string `json:"renamed,omitempty"`
	// Skipped is the reason the whole folder was not copied.
	Skipped string `json:"skipped,omitempty"`
	// NoSelect marks a \Noselect parent: it holds no messages.
	NoSelect bool `json:"noselect,omitempty"`
	// Unchanged is set when the STATUS snapshot showed nothing new since
	// the last verified pass, so the folder was not opened.
	Unchanged bool `json:"unchanged,omitempty"`

	SourceCount    int   `json:"source_count"`    // messages in the source folder
	DestCount      int   `json:"dest_count"`      // messages in the destination folder after the pass
	Copied         int   `json:"copied"`          // messages appended in this pass
	Bytes          int64 `json:"bytes"`           // their bytes
	AlreadyPresent int   `json:"already_present"` // messages already on the destination
	FlagUpdates    int   `json:"flag_updates"`    // destination messages whose flags were brought in line

	// SkippedItems are messages deliberately not copied (too big, ...).
	SkippedItems []ItemIssue `json:"skipped_items,omitempty"`
	// Failed are messages that could not be copied.
	Failed []ItemIssue `json:"failed,omitempty"`
	// Deleted counts destination copies deleted because the source no
	// longer has their message (Copier.Delete); in a dry run, how many
	// would be.
	Deleted int `json:"deleted,omitempty"`
	// DeleteFailed lists deletions that Copier.Delete asked for and that
	// did not happen; they make the folder partial.
	DeleteFailed []ItemIssue `json:"delete_failed,omitempty"`
	// Keywords lists flags that were sanitised or dropped, per message.
	Keywords []ItemIssue `json:"keywords,omitempty"`

	// Verify is the fingerprint proof; nil when not run (dry run, error).
	Verify *Verification `json:"verify,omitempty"`
	// Err is the error that stopped this folder, if any.
	Err string `json:"error,omitempty"`
	// Cancelled marks a folder the run stopped (its context ended) before
	// it started or finished; such folders are summarised, not listed.
	Cancelled bool `json:"cancelled,omitempty"`
}

// ItemIssue names one message and what went wrong with it.
type ItemIssue struct {
	UID       imap.UID        `json:"uid"`                  // the source UID
	MessageID string          `json:"message_id,omitempty"` // the Message-ID, when the message has one
	Reason    string          `json:"reason"`               // what went wrong, or what was changed
	Changes   []KeywordChange `json:"changes,omitempty"`    // the keywords sanitised, for a keyword issue
}

// Lost reports whether a keyword of the message was dropped rather than
// renamed by the documented rules of SanitizeFlags (a Zimbra tag
// NAME:FLAGnnn sent as NAME, bytes invalid in an atom replaced): a drop
// loses information and makes the folder partial; a rename is a reported
// translation.
func (i ItemIssue) Lost() bool {
	for _, c := range i.Changes {
		if c.To == "" {
			return true
		}
	}
	return false
}

// Verification is the per-folder fingerprint proof: every source message's
// fingerprint (size, Message-ID, Date; with Deep a digest of the bytes) is
// found on the destination, counting multiplicity.
type Verification struct {
	// Deep is set when whole messages were hashed.
	Deep bool `json:"deep,omitempty"`
	// Proof names the proof that ran: ProofDeep, or "fingerprint + 5%
	// sample" (see DefaultVerifySample).
	Proof string `json:"proof,omitempty"`
	// Sampled counts the message pairs the sample read whole on both
	// sides, and BodyMismatches those whose bytes differed (which fails
	// the proof); BodyExamples names a few of their source UIDs.
	Sampled        int        `json:"sampled,omitempty"`
	BodyMismatches int        `json:"body_mismatches,omitempty"` // see Sampled
	BodyExamples   []imap.UID `json:"body_examples,omitempty"`   // see Sampled
	// SampleSeed reproduces the sample's choice (Copier.VerifySeed).
	SampleSeed  uint64 `json:"sample_seed,omitempty"`
	SourceCount int    `json:"source_count"` // messages fingerprinted on the source
	DestCount   int    `json:"dest_count"`   // messages fingerprinted on the destination
	// Missing counts source messages without a destination counterpart.
	Missing int `json:"missing"`
	// Extra counts destination messages with no source counterpart (mail
	// already there, or delivered since): reported, not an error.
	Extra int `json:"extra"`
	// Duplicated counts destination copies beyond the source's own
	// multiplicity of a fingerprint: duplicates, which fail the proof.
	Duplicated int `json:"duplicated,omitempty"`
	// FlagMismatches counts copies whose flags differ from the source's
	// (after sanitising); INTERNALDATE mismatches count as well.
	FlagMismatches int `json:"flag_mismatches"`
	// Examples names a few missing source UIDs.
	Examples []imap.UID `json:"examples,omitempty"`
	// Skipped counts source messages excluded on purpose (too big, ...);
	// they are not counted as Missing.
	Skipped int `json:"skipped,omitempty"`
	// SourceFromCopy counts source fingerprints taken from the bytes the
	// pass had just read to copy them rather than read from the source
	// again (the destination is always read).
	SourceFromCopy int `json:"source_from_copy,omitempty"`
}

// OK reports whether the verification proved the folder complete.
func (v *Verification) OK() bool {
	return v != nil && v.Missing == 0 && v.Duplicated == 0 && v.FlagMismatches == 0 && v.BodyMismatches == 0
}

// OK reports whether the folder was copied completely and verified: no
// failed or skipped message, no dropped keyword (renamed keywords are
// listed in Keywords but do not count), no folder error, and a passing
// verification (or no messages to verify).
func (f *FolderStats) OK() bool {
	if f.Err != "" || f.Cancelled || len(f.Failed) > 0 || len(f.SkippedItems) > 0 || len(f.DeleteFailed) > 0 {
		return false
	}
	for _, k := range f.Keywords {
		if k.Lost() {
			return false
		}
	}
	if f.Skipped != "" || f.NoSelect || f.Unchanged {
		return f.Err == ""
	}
	return f.Verify.OK()
}

// OK reports whether every folder is OK.
func (s *Stats) OK() bool {
	for i := range s.Folders {
		if !s.Folders[i].OK() {
			return false
		}
	}
	return true
}

// Totals sums the per-folder counters.
func (s *Stats) Totals() FolderStats {
	var t FolderStats
	for _, f := range s.Folders {
		t.SourceCount += f.SourceCount
		t.DestCount += f.DestCount
		t.Copied += f.Copied
		t.Bytes += f.Bytes
		t.AlreadyPresent += f.AlreadyPresent
		t.FlagUpdates += f.FlagUpdates
		t.Deleted += f.Deleted
		t.DeleteFailed = append(t.DeleteFailed, f.DeleteFailed...)
		t.SkippedItems = append(t.SkippedItems, f.SkippedItems...)
		t.Failed = append(t.Failed, f.Failed...)
		t.Keywords = append(t.Keywords, f.Keywords...)
	}
	return t
}

// Event is one progress report from a Copier. The set is closed: it is one
// of FolderStarted, MessageCopied, MessageSkipped, MessageFailed,
// KeywordsChanged, FolderDone.
type Event interface{ isEvent() }

// FolderStarted is sent when work on a folder begins.
type FolderStarted struct {
	Folder, Destination string // the source folder and its destination name
	// ToCopy is how many messages are about to be appended.
	ToCopy int
}

// MessageCopied is sent after each successful APPEND.
type MessageCopied struct {
	Folder string   // the source folder
	UID    imap.UID // the source UID
	Bytes  int64    // the message's size
}

// MessageSkipped is sent for a message deliberately not copied.
type MessageSkipped struct {
	Folder string   // the source folder
	UID    imap.UID // the source UID
	Reason string   // why it was skipped
}

// MessageFailed is sent for a message that could not be copied.
type MessageFailed struct {
	Folder string   // the source folder
	UID    imap.UID // the source UID
	Err    error    // why it failed
}

// KeywordsChanged is sent when flags of a message were sanitised.
type KeywordsChanged struct {
	Folder  string          // the source folder
	UID     imap.UID        // the source UID
	Changes []KeywordChange // what was changed
}

// FolderDone is sent when a folder is finished, with its statistics.
type FolderDone struct {
	Stats FolderStats // the folder's statistics
}

func (FolderStarted) isEvent()   {}
func (MessageCopied) isEvent()   {}
func (MessageSkipped) isEvent()  {}
func (MessageFailed) isEvent()   {}
func (KeywordsChanged) isEvent() {}
func (FolderDone) isEvent()      {}
