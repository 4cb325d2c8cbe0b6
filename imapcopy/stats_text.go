package imapcopy

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/zxmigrate/zxmigrate/termsafe"
)

// WriteText writes s for a terminal: a table of the folders with their
// counts and verification, then one line per rename, error, skipped,
// failed or deleted message and keyword change. Text from the servers
// (folder names, Message-IDs, reasons) is escaped with termsafe. Folders a
// stopped run did not finish are counted on one line.
func (s *Stats) WriteText(w io.Writer) error {
	var b bytes.Buffer
	s.writeText(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (s *Stats) writeText(w io.Writer) {
	dryRun := s.DryRun
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	copied := "COPIED"
	if dryRun {
		copied = "TO COPY"
	}
	termsafe.Fprintf(tw, "FOLDER\tDESTINATION\tSOURCE\tDEST\t%s\tPRESENT\tFLAGS\tSKIPPED\tFAILED\tVERIFIED\n", copied)
	// Folders the run stopped before they were done are summarised in one
	// line: a stop must not print one row per folder of a huge account.
	var folders []FolderStats
	cancelled := 0
	for _, f := range s.Folders {
		if f.Cancelled {
			cancelled++
			continue
		}
		folders = append(folders, f)
	}
	sort.SliceStable(folders, func(i, j int) bool { return folders[i].Source < folders[j].Source })
	for _, f := range folders {
		verified := "-"
		switch {
		case f.Skipped != "":
			verified = "skipped: " + f.Skipped
		case f.NoSelect:
			verified = "(\\Noselect)"
		case f.Err != "":
			verified = "ERROR"
		case f.Unchanged:
			verified = "unchanged"
		case f.Verify != nil && f.Verify.OK():
			verified = "yes"
		case f.Verify != nil:
			verified = fmt.Sprintf("NO: %d missing, %d duplicated, %d flag/date mismatches, %d body mismatches", f.Verify.Missing, f.Verify.Duplicated, f.Verify.FlagMismatches, f.Verify.BodyMismatches)
		}
		dest := f.Destination
		if f.Renamed != "" {
			dest += " *"
		}
		termsafe.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Source, dest, f.SourceCount, f.DestCount,
			f.Copied, f.AlreadyPresent, f.FlagUpdates, len(f.SkippedItems), len(f.Failed), verified)
	}
	t := s.Totals()
	termsafe.Fprintf(tw, "TOTAL\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.SourceCount, t.DestCount, t.Copied, t.AlreadyPresent, t.FlagUpdates, len(t.SkippedItems), len(t.Failed))
	tw.Flush()
	proof, sampled := "", 0
	for _, f := range folders {
		if f.Verify != nil && f.Verify.Proof != "" {
			proof = f.Verify.Proof
			sampled += f.Verify.Sampled
		}
	}
	if proof != "" {
		if proof == ProofDeep {
			termsafe.Fprintf(w, "proof: deep (every message read whole on both sides)\n")
		} else {
			termsafe.Fprintf(w, "proof: %s (%d messages read whole on both sides)\n", proof, sampled)
		}
	}
	if s.FolderConcurrency > 0 {
		termsafe.Fprintf(w, "folders in parallel: %d (round trip %.1f ms)\n", s.FolderConcurrency, s.RoundTripMillis)
	}
	if cancelled > 0 {
		termsafe.Fprintf(w, "cancelled: %d folders not copied or not finished (the run was stopped)\n", cancelled)
	}
	if t.Deleted > 0 {
		verb := "deleted on the destination"
		if dryRun {
			verb = "would delete on the destination"
		}
		termsafe.Fprintf(w, "%s: %d copies of messages the source no longer has\n", verb, t.Deleted)
	}
	for _, f := range folders {
		if f.Renamed != "" {
			termsafe.Fprintf(w, "renamed: %s → %s (%s)\n", f.Source, f.Destination, f.Renamed)
		}
		if f.Err != "" {
			termsafe.Fprintf(w, "error: %s: %s\n", f.Source, f.Err)
		}
		for _, it := range f.SkippedItems {
			termsafe.Fprintf(w, "skipped: %s uid %d %s: %s\n", f.Source, it.UID, it.MessageID, it.Reason)
		}
		for _, it := range f.Failed {
			termsafe.Fprintf(w, "failed: %s uid %d %s: %s\n", f.Source, it.UID, it.MessageID, it.Reason)
		}
		if f.Deleted > 0 {
			termsafe.Fprintf(w, "deleted: %s: %d\n", f.Source, f.Deleted)
		}
		for _, it := range f.DeleteFailed {
			termsafe.Fprintf(w, "not deleted: %s uid %d: %s\n", f.Source, it.UID, it.Reason)
		}
		for _, it := range f.Keywords {
			for _, ch := range it.Changes {
				to := "dropped"
				if ch.To != "" {
					to = "sent as " + strconv.Quote(ch.To)
				}
				termsafe.Fprintf(w, "keyword: %s uid %d %s: %s %s (%s)\n", f.Source, it.UID, it.MessageID, strconv.Quote(ch.From), to, ch.Reason)
			}
		}
		if f.Verify != nil && len(f.Verify.Examples) > 0 {
			termsafe.Fprintf(w, "missing: %s: source uids %v\n", f.Source, f.Verify.Examples)
		}
		if f.Verify != nil && len(f.Verify.BodyExamples) > 0 {
			termsafe.Fprintf(w, "bytes differ: %s: source uids %v\n", f.Source, f.Verify.BodyExamples)
		}
	}
}
