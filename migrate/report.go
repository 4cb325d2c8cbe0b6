package migrate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
)

// ReportVersion is the version of the JSON report format.
const ReportVersion = 1

// Status is the outcome of a phase, an account or a run.
type Status string

// Statuses.
const (
	StatusPending     Status = "pending"     // not started yet
	StatusRunning     Status = "running"     // started, not finished (a crash leaves this)
	StatusDone        Status = "done"        // finished, nothing skipped or failed
	StatusPartial     Status = "partial"     // finished with skipped or failed items
	StatusFailed      Status = "failed"      // could not finish
	StatusNotRun      Status = "not_run"     // did not run; Reason says why
	StatusInterrupted Status = "interrupted" // stopped by cancellation; resumable
)

// Report is the outcome of a run: data first, rendered by WriteHTML and
// WriteText. It never holds a secret.
type Report struct {
	Version  int       `json:"version"`             // ReportVersion
	Plan     string    `json:"plan,omitempty"`      // the plan's name
	PlanHash string    `json:"plan_hash,omitempty"` // a hash of the plan, to tell runs of different plans apart
	RunID    int64     `json:"run_id"`              // the run's id in the state
	Started  time.Time `json:"started"`             // when the run started
	Finished time.Time `json:"finished,omitzero"`   // when it ended; zero while it runs
	// Outcome is done, partial, failed or interrupted; running for a run
	// still in progress (read from the state of a live run).
	Outcome Status `json:"outcome"`
	// MTA is set when the run stopped the destination MTA (mta_stop) and
	// did not start it again (mta_start not done): mail is not delivered
	// until it runs. Renderers show it first and last.
	MTA *MTAStopped `json:"mta_stopped,omitempty"`
	// Phases holds the global phases (provisioning and friends).
	Phases   []PhaseResult   `json:"phases"`
	Accounts []AccountReport `json:"accounts"` // one entry per account, in the plan's order
	// NotMigrated lists what this procedure does not move (shares,
	// Files/Briefcase items, mountpoints), so nobody is surprised.
	NotMigrated []NotMigrated `json:"not_migrated"`
	// Shares lists the grants, mountpoints and saved searches of the
	// shares phase with their outcomes (created, updated, unchanged,
	// skipped, invitation_needed, failed).
	Shares []ShareItem `json:"shares,omitempty"`
	// Files lists the Briefcase documents of the files phase with their
	// outcomes (created, updated, unchanged, skipped, failed) and the
	// verification's (verified, mismatch).
	Files []files.Item `json:"files,omitempty"`
	// Throughput samples cumulative progress over the run.
	Throughput []Sample `json:"throughput"`
	Totals     Totals   `json:"totals"` // sums over the accounts
}

// AccountReport is one account's outcome.
type AccountReport struct {
	Source      string        `json:"source"`          // the source address
	Destination string        `json:"destination"`     // the destination address
	Size        int64         `json:"size"`            // bytes on the source, 0 when unknown
	Status      Status        `json:"status"`          // done, partial, failed or pending
	Error       string        `json:"error,omitempty"` // why the account failed, when it did
	Phases      []PhaseResult `json:"phases"`          // the account's phases in run order
}

// PhaseResult is one phase's outcome, for an account or for the run.
type PhaseResult struct {
	Phase    Phase     `json:"phase"`             // the phase
	Status   Status    `json:"status"`            // the phase's outcome
	Reason   string    `json:"reason,omitempty"`  // why the phase is not done, when it is not
	Started  time.Time `json:"started,omitzero"`  // when it started
	Finished time.Time `json:"finished,omitzero"` // when it ended
	// Copied items were written in this run; Existing were already on the
	// destination (an earlier run, or found by content).
	Copied   int64 `json:"copied"`
	Existing int64 `json:"existing"` // see Copied
	Skipped  int64 `json:"skipped"`  // items skipped on purpose (over a limit, refused)
	Failed   int64 `json:"failed"`   // items that could not be copied
	// Changed items arrived, but with information lost by a documented
	// rule (a keyword the destination refuses, dropped): the phase ends
	// partial, as `migrate mail` exits with the partial code.
	Changed int64 `json:"changed"`
	// Translated items arrived with a keyword renamed by the documented
	// sanitising rule (Zimbra's NAME:FLAGnnn tag keywords): nothing is
	// lost, the phase stays done. They are listed in Problems too.
	Translated int64 `json:"translated,omitempty"`
	// ToVerify and Verified are the verify phase's proof: of ToVerify
	// source items (those not skipped on purpose), Verified were found
	// equal on the destination.
	ToVerify int64 `json:"to_verify,omitempty"`
	Verified int64 `json:"verified,omitempty"` // see ToVerify
	Bytes    int64 `json:"bytes"`              // bytes copied
	// Deleted counts destination copies deleted because the source no
	// longer has their items (mail.delete, calendars.delete,
	// contacts.delete); in a dry run, how many would be.
	Deleted int64 `json:"deleted,omitempty"`
	// Details holds per-folder or per-collection rows.
	Details []Detail `json:"details,omitempty"`
	// Problems names skipped and failed items with reasons.
	Problems []Problem `json:"problems,omitempty"`
	// ProblemsOmitted counts problems left out of Problems to keep the
	// report readable (the counts above include them).
	ProblemsOmitted int64 `json:"problems_omitted,omitempty"`
	// NotMigrated lists what the phase found and left alone on purpose.
	NotMigrated []NotMigrated `json:"not_migrated,omitempty"`
	// Undo is the command that reverts the phase's effect on the servers,
	// for phases that have one (mta_stop: the command that starts the MTA
	// again).
	Undo string `json:"undo,omitempty"`
	// Shares lists the shares phase's grants, mountpoints and saved
	// searches with their outcomes.
	Shares []ShareItem `json:"shares,omitempty"`
	// Files lists the files phase's documents with their outcomes.
	Files []files.Item `json:"files,omitempty"`
}

// Detail is one folder or collection of a phase.
type Detail struct {
	Name        string `json:"name"`                  // the source folder or collection
	Destination string `json:"destination,omitempty"` // its destination name when that differs
	// SourceCount and DestCount are the item counts seen on each side
	// (verification); -1 when not counted.
	SourceCount int64 `json:"source_count"`
	DestCount   int64 `json:"dest_count"` // see SourceCount
	Copied      int64 `json:"copied"`     // items copied in this run
	Existing    int64 `json:"existing"`   // items already on the destination
	Skipped     int64 `json:"skipped"`    // items skipped on purpose
	Failed      int64 `json:"failed"`     // items that failed
	// ToVerify and Verified: of ToVerify source items, Verified were
	// found equal on the destination (verify phase).
	ToVerify int64  `json:"to_verify,omitempty"`
	Verified int64  `json:"verified,omitempty"` // see ToVerify
	Note     string `json:"note,omitempty"`     // why the row is special: skipped folder, rename, error
}

// Problem is a skipped, changed or failed item.
type Problem struct {
	Item    string `json:"item"`    // the item, e.g. `INBOX UID 42`
	Skipped bool   `json:"skipped"` // true: skipped on purpose; false: failed
	// Changed marks an item that arrived with information lost by a
	// documented rule (a keyword dropped; the reason says which).
	Changed bool `json:"changed,omitempty"`
	// Translated marks an item that arrived with a keyword renamed by the
	// documented sanitising rule, nothing lost.
	Translated bool   `json:"translated,omitempty"`
	Reason     string `json:"reason"` // why
}

// NotMigrated is something the procedure leaves behind on purpose.
type NotMigrated struct {
	Account string `json:"account"` // the source account
	Kind    string `json:"kind"`    // "share", "mountpoint", "search", "files"
	Name    string `json:"name"`    // the folder, share or document
	Reason  string `json:"reason"`  // why it is left behind
}

// Sample is cumulative progress at a moment of the run.
type Sample struct {
	// Seconds since the run started.
	Seconds float64 `json:"seconds"`
	Items   int64   `json:"items"` // items copied or found present by then
	Bytes   int64   `json:"bytes"` // bytes copied by then
}

// Totals sums the accounts.
type Totals struct {
	Accounts int   `json:"accounts"`         // accounts in the run
	Done     int   `json:"done"`             // accounts done
	Partial  int   `json:"partial"`          // accounts partial
	Failed   int   `json:"failed"`           // accounts failed
	Pending  int   `json:"pending"`          // accounts not finished
	Messages int64 `json:"messages"`         // messages copied or present
	Events   int64 `json:"calendar_objects"` // calendar objects copied or present
	Contacts int64 `json:"contacts"`         // contacts copied or present
	Existing int64 `json:"existing"`         // items already on the destination
	Skipped  int64 `json:"skipped"`          // items skipped on purpose
	Changed  int64 `json:"changed"`          // items that arrived with information lost by a documented rule
	// Translated counts items with keywords renamed by the documented
	// rule (not a loss; not in Changed).
	Translated int64 `json:"translated"`
	FailedN    int64 `json:"failed_items"` // items that failed
	// ToVerify and Verified sum the verify phases: "Verified of ToVerify
	// verified".
	ToVerify int64 `json:"to_verify"`
	Verified int64 `json:"verified"`          // see ToVerify
	Bytes    int64 `json:"bytes"`             // bytes copied
	Deleted  int64 `json:"deleted,omitempty"` // destination copies deleted
}

// Account returns the report of the account with source address src, or nil.
func (r *Report) Account(src string) *AccountReport {
	for i := range r.Accounts {
		if r.Accounts[i].Source == src {
			return &r.Accounts[i]
		}
	}
	return nil
}

// Phase returns the account's result for ph, or nil.
func (a *AccountReport) Phase(ph Phase) *PhaseResult {
	for i := range a.Phases {
		if a.Phases[i].Phase == ph {
			return &a.Phases[i]
		}
	}
	return nil
}

// OK reports whether every account and global phase finished with nothing
// skipped, failed or unverified.
func (r *Report) OK() bool { return r.Outcome == StatusDone }

// finalize recomputes totals, statuses and the outcome from the phases.
func (r *Report) finalize() {
	r.Version = ReportVersion
	t := Totals{Accounts: len(r.Accounts)}
	worst := StatusDone
	for i := range r.Accounts {
		a := &r.Accounts[i]
		a.Status = rollup(a.Phases, a.Error)
		switch a.Status {
		case StatusDone:
			t.Done++
		case StatusPartial:
			t.Partial++
		case StatusFailed:
			t.Failed++
		default:
			t.Pending++
		}
		worst = worse(worst, a.Status)
		for _, p := range a.Phases {
			switch p.Phase {
			case PhaseMail:
				t.Messages += p.Copied
			case PhaseCalendars:
				t.Events += p.Copied
			case PhaseContacts:
				t.Contacts += p.Copied
			}
			if p.Phase != PhaseVerify {
				t.Existing += p.Existing
				t.Bytes += p.Bytes
				t.Deleted += p.Deleted
			}
			t.Skipped += p.Skipped
			t.Changed += p.Changed
			t.Translated += p.Translated
			t.FailedN += p.Failed
			t.ToVerify += p.ToVerify
			t.Verified += p.Verified
		}
	}
	for _, p := range r.Phases {
		worst = worse(worst, p.Status)
	}
	r.Totals = t
	if r.Outcome != StatusInterrupted && r.Outcome != StatusRunning {
		r.Outcome = worst
	}
}

var severity = map[Status]int{
	StatusDone: 0, StatusNotRun: 0, StatusPartial: 1, StatusPending: 2, StatusRunning: 2,
	StatusInterrupted: 3, StatusFailed: 4,
}

func worse(a, b Status) Status {
	if b == StatusNotRun {
		return a
	}
	if severity[b] > severity[a] {
		return b
	}
	return a
}

// rollup is an account's status from its phases.
func rollup(phases []PhaseResult, accErr string) Status {
	if accErr != "" {
		return StatusFailed
	}
	st := StatusDone
	ran := false
	for _, p := range phases {
		if p.Status == StatusNotRun {
			continue
		}
		ran = true
		if p.Status == StatusPending || p.Status == StatusRunning {
			st = worse(st, StatusPending)
			continue
		}
		st = worse(st, p.Status)
	}
	if !ran {
		return StatusPending
	}
	if st == StatusFailed {
		// Some phases may have done their part: still failed, the account
		// needs attention.
		return StatusFailed
	}
	return st
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("migrate: write report json: %w", err)
	}
	return nil
}

// ReadReport reads a JSON report and checks its version.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("migrate: read report: %w", err)
	}
	if r.Version != ReportVersion {
		return nil, fmt.Errorf("migrate: report version %d is not supported (want %d)", r.Version, ReportVersion)
	}
	return &r, nil
}

// WriteFiles writes report.json, report.html and report.csv (the accounts
// table, see WriteCSV) into dir (created 0700 when missing; files 0600) and
// returns the paths of the first two; the CSV is CSVPath(dir).
func (r *Report) WriteFiles(dir string) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("migrate: report dir: %w", err)
	}
	jsonPath = filepath.Join(dir, "report.json")
	htmlPath = filepath.Join(dir, "report.html")
	write := func(p string, fn func(io.Writer) error) error {
		// A temporary name of its own (mode 0600): runners that share a
		// report directory each replace the files whole.
		f, err := os.CreateTemp(dir, filepath.Base(p)+".*.tmp")
		if err != nil {
			return fmt.Errorf("migrate: write report: %w", err)
		}
		tmp := f.Name()
		if err := fn(f); err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
		if err := f.Close(); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("migrate: write report: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("migrate: write report: %w", err)
		}
		return nil
	}
	if err := write(jsonPath, r.WriteJSON); err != nil {
		return "", "", err
	}
	if err := write(htmlPath, r.WriteHTML); err != nil {
		return "", "", err
	}
	if err := write(CSVPath(dir), r.WriteCSV); err != nil {
		return "", "", err
	}
	return jsonPath, htmlPath, nil
}

// CSVPath is where WriteFiles puts the accounts table as CSV: report.csv
// next to report.json.
func CSVPath(dir string) string { return filepath.Join(dir, "report.csv") }

// WriteText writes a one-screen summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	t := r.Totals
	fmt.Fprintf(&b, "Run %d: %s", r.RunID, strings.ToUpper(string(r.Outcome)))
	if r.Plan != "" {
		fmt.Fprintf(&b, " (%s)", r.Plan)
	}
	if !r.Finished.IsZero() {
		fmt.Fprintf(&b, " in %s", r.Finished.Sub(r.Started).Round(100*time.Millisecond))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Accounts: %d total, %d done, %d partial, %d failed, %d pending\n",
		t.Accounts, t.Done, t.Partial, t.Failed, t.Pending)
	fmt.Fprintf(&b, "Copied:   %d messages (%s), %d calendar objects, %d contacts; %d already present\n",
		t.Messages, HumanBytes(t.Bytes), t.Events, t.Contacts, t.Existing)
	if t.Deleted > 0 {
		fmt.Fprintf(&b, "Deleted:  %d copies of items the source no longer has\n", t.Deleted)
	}
	fmt.Fprintf(&b, "Problems: %d skipped, %d changed, %d failed items", t.Skipped, t.Changed, t.FailedN)
	if t.Translated > 0 {
		fmt.Fprintf(&b, "; %d translated (keywords renamed, nothing lost)", t.Translated)
	}
	b.WriteString("\n")
	if t.ToVerify > 0 || t.Verified > 0 {
		fmt.Fprintf(&b, "Verified: %s of %s items found equal on the destination\n", thousands(t.Verified), thousands(t.ToVerify))
	}
	for _, p := range r.Phases {
		if p.Status == StatusDone || p.Status == StatusNotRun && p.Reason == "" {
			continue
		}
		fmt.Fprintf(&b, "  phase %s: %s", p.Phase, p.Status)
		if p.Reason != "" {
			fmt.Fprintf(&b, ": %s", p.Reason)
		}
		b.WriteString("\n")
	}
	shown := 0
	for _, a := range r.Accounts {
		if a.Status == StatusDone {
			continue
		}
		if shown == 10 {
			fmt.Fprintf(&b, "  ... and more: see the HTML or JSON report\n")
			break
		}
		shown++
		fmt.Fprintf(&b, "  %s: %s", a.Source, a.Status)
		if a.Error != "" {
			fmt.Fprintf(&b, ": %s", a.Error)
		}
		for _, p := range a.Phases {
			if p.Status == StatusFailed || p.Status == StatusPartial {
				fmt.Fprintf(&b, "; %s %s", p.Phase, p.Status)
				if p.Reason != "" {
					fmt.Fprintf(&b, " (%s)", p.Reason)
				}
			}
			if p.Phase == PhaseVerify && (p.ToVerify > 0 || p.Verified > 0) {
				fmt.Fprintf(&b, "; %s", p.VerifiedText())
			}
		}
		b.WriteString("\n")
	}
	writeShares(&b, r.Shares)
	writeFiles(&b, r.Files)
	if n := len(r.NotMigrated); n > 0 {
		kinds := map[string]int{}
		for _, nm := range r.NotMigrated {
			kinds[nm.Kind]++
		}
		var ks []string
		for k, c := range kinds {
			ks = append(ks, fmt.Sprintf("%d %s", c, k))
		}
		sort.Strings(ks)
		fmt.Fprintf(&b, "Not migrated by this procedure: %s\n", strings.Join(ks, ", "))
	}
	if r.Outcome == StatusRunning {
		b.WriteString("The run is still in progress (its state file is locked by a live process): these figures are a snapshot.\n")
	}
	// Last, so that it is what the operator reads.
	b.WriteString(r.MTA.Warning())
	_, err := io.WriteString(w, b.String())
	return err
}

// VerifiedText is the verify phase's proof in words, e.g. "3,800 of 3,800
// verified".
func (p PhaseResult) VerifiedText() string {
	return fmt.Sprintf("%s of %s verified", thousands(p.Verified), thousands(p.ToVerify))
}

// thousands formats n with comma thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// HumanBytes prints n bytes in SI units (kB, MB, GB ...), as the reports
// and the status view show sizes.
func HumanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
