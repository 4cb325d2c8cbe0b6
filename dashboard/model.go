package dashboard

import (
	"time"
)

// Status is what /api/status returns: the whole dashboard but the accounts
// table. It holds counts, names and reasons only: never a secret, never an
// item's content.
type Status struct {
	// Source is "run" (a runner's events) or "store" (a state store alone).
	Source   string    `json:"source"`
	Plan     string    `json:"plan,omitempty"`
	RunID    int64     `json:"run_id,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Outcome  string    `json:"outcome,omitempty"`
	Now      time.Time `json:"now"`
	// Phases are the run's phases in order; account phases carry how many
	// accounts are in them now and how many finished them.
	Phases []PhaseStatus `json:"phases"`
	// Accounts counts accounts per state; CountsFrom says where from
	// ("store" when the shared state store answered, else "run").
	Accounts   map[string]int `json:"accounts"`
	CountsFrom string         `json:"counts_from"`
	Total      int            `json:"total"`
	// Items and Bytes are copied so far; Size sums the accounts' sizes
	// (0 when unknown) and SizeDone those of finished accounts.
	Items    int64 `json:"items"`
	Bytes    int64 `json:"bytes"`
	Size     int64 `json:"size"`
	SizeDone int64 `json:"size_done"`
	// ETA is the estimated seconds left, -1 when unknown.
	ETA        float64  `json:"eta_seconds"`
	Throughput []Sample `json:"throughput"`
	// Load is per-server work against the plan's budgets.
	Load          []Load    `json:"load"`
	Problems      []Problem `json:"problems"`
	ProblemsTotal int64     `json:"problems_total"`
	// AccountsVersion changes whenever a row of the accounts table does.
	AccountsVersion int64 `json:"accounts_version"`
}

// PhaseStatus is one phase of the run.
type PhaseStatus struct {
	Phase    string    `json:"phase"`
	Global   bool      `json:"global"`
	Status   string    `json:"status,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Active   int       `json:"active,omitempty"`
	Done     int       `json:"done,omitempty"`
}

// Sample is cumulative progress at Seconds since the run started.
type Sample struct {
	Seconds float64 `json:"t"`
	Items   int64   `json:"items"`
	Bytes   int64   `json:"bytes"`
}

// Load is one server: accounts working on it now against the budget of
// accounts at once, and the connection cap of the plan.
type Load struct {
	Server      string `json:"server"`
	Active      int    `json:"active"`
	Budget      int    `json:"budget"`
	Connections int    `json:"connections_budget,omitempty"`
}

// Problem is one skipped or failed item, or a failed phase.
type Problem struct {
	Time    time.Time `json:"time,omitzero"`
	Account string    `json:"account"`
	Phase   string    `json:"phase"`
	Item    string    `json:"item,omitempty"`
	Skipped bool      `json:"skipped,omitempty"`
	Reason  string    `json:"reason"`
}

// Accounts is what /api/accounts returns: one row per account, as arrays to
// keep 50,000 rows small: [source, status, phase, size, seconds, items,
// bytes, problems]. seconds is the time spent in the account's phases;
// problems counts skipped and failed items and failed phases.
type Accounts struct {
	Version int64    `json:"version"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows,omitempty"`
}

var accountColumns = []string{"account", "status", "phase", "size", "seconds", "items", "bytes", "problems"}

// row is one account as the views keep it.
type row struct {
	source   string
	status   string
	phase    string
	size     int64
	seconds  float64
	items    int64
	bytes    int64
	problems int64
	started  time.Time // of the phase in flight
}

func (r *row) cells() []any {
	return []any{r.source, r.status, r.phase, r.size, float64(int64(r.seconds*10)) / 10, r.items, r.bytes, r.problems}
}

// maxProblems bounds the problems the dashboard keeps (newest first); the
// total stays exact.
const maxProblems = 500

// maxSamples bounds the throughput history (older samples are thinned).
const maxSamples = 600
