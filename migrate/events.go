package migrate

import "time"

// Event is something a Runner reports while it works. The set is closed:
// RunStarted, PhaseStarted, Progress, ItemProblem, PhaseFinished,
// AccountFinished and RunFinished.
//
// OnEvent handlers may be called concurrently from several goroutines and
// must return quickly. The report is built from the same events.
type Event interface{ isEvent() }

// RunStarted opens a run.
type RunStarted struct {
	RunID    int64         // the run's id in the state
	Time     time.Time     // when the run started
	Accounts []AccountPlan // in the order they start (largest first)
	Phases   []Phase       // the phases the run runs, in order
}

// PhaseStarted says a phase began. Account is "" for a global phase.
type PhaseStarted struct {
	Account string    // the source account; "" for a global phase
	Phase   Phase     // the phase
	Time    time.Time // when it started
}

// Progress reports work done in an account phase. Counts are cumulative for
// the phase in this run; Total is 0 when unknown.
type Progress struct {
	Account string    // the source account
	Phase   Phase     // the phase
	Time    time.Time // when the counts were taken
	// Items copied or found present (messages or DAV objects) so far, and
	// how many the phase expects in all.
	Items, Total int64
	// Bytes copied so far.
	Bytes int64
	// TotalBytes is how many bytes the phase expects in all, 0 when
	// unknown (the transfer phase knows the size of the export).
	TotalBytes int64
}

// ItemProblem names one item that was skipped or failed, with the reason.
type ItemProblem struct {
	Account string // the source account
	Phase   Phase  // the phase
	// Item names the item, e.g. `INBOX UID 42` or `calendar/abc.ics`.
	Item    string
	Skipped bool   // true: skipped on purpose; false: failed
	Reason  string // why, in the server's or the rule's words
}

// PhaseFinished closes a phase with its result.
type PhaseFinished struct {
	Account string      // the source account; "" for a global phase
	Result  PhaseResult // the phase's outcome and counts
}

// AccountFinished closes one account.
type AccountFinished struct {
	Account string // the source account
	Status  Status // done, partial or failed
}

// RunFinished closes the run.
type RunFinished struct {
	Report *Report // the run's report, as Run returns it
}

func (RunStarted) isEvent()      {}
func (PhaseStarted) isEvent()    {}
func (Progress) isEvent()        {}
func (ItemProblem) isEvent()     {}
func (PhaseFinished) isEvent()   {}
func (AccountFinished) isEvent() {}
func (RunFinished) isEvent()     {}

// AccountPlan is one account to migrate.
type AccountPlan struct {
	Source      string `json:"source"`      // the source address
	Destination string `json:"destination"` // the destination address (after the domain map)
	// Size is the account's size in bytes on the source (0 when unknown).
	Size int64 `json:"size"`
}
