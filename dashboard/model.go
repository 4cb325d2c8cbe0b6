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
	Plan     string    `json:"plan,omitempty"`    // the plan's name
	RunID    int64     `json:"run_id,omitempty"`  // the run's id in the state
	Started  time.Time `json:"started,omitzero"`  // when the run started
	Finished time.Time `json:"finished,omitzero"` // when it ended; zero while it runs
	Outcome  string    `json:"outcome,omitempty"` // the run's outcome once it ended
	Now      time.Time `json:"now"`               // when the status was taken
	// Phases are the run's phases in order; account phases carry how many
	// accounts are in them now and how many finished them.
	Phases []PhaseStatus `json:"phases"`
	// Accounts counts accounts per state; CountsFrom says where from
	// ("store" when the shared state store answered, else "run").
	Accounts   map[string]int `json:"accounts"`
	CountsFrom string         `json:"counts_from"` // see Accounts
	Total      int            `json:"total"`       // accounts in the run
	// Items and Bytes are copied so far; Size sums the accounts' sizes
	// (0 when unknown) and SizeDone those of finished accounts.
	Items    int64 `json:"items"`
	Bytes    int64 `json:"bytes"`     // see Items
	Size     int64 `json:"size"`      // see Items
	SizeDone int64 `json:"size_done"` // see Items
	// ETA is the estimated seconds left, -1 when unknown.
	ETA        float64  `json:"eta_seconds"`
	Throughput []Sample `json:"throughput"` // cumulative progress samples
	// Load is per-server work against the plan's budgets.
	Load          []Load    `json:"load"`
	Problems      []Problem `json:"problems"`       // the latest skipped and failed items
	ProblemsTotal int64     `json:"problems_total"` // all problems so far, including those not listed
	// AccountsVersion changes whenever a row of the accounts table does.
	AccountsVersion int64 `json:"accounts_version"`
}

// PhaseStatus is one phase of the run.
type PhaseStatus struct {
	Phase    string    `json:"phase"`             // the phase's name
	Global   bool      `json:"global"`            // a global phase (run once), not an account phase
	Status   string    `json:"status,omitempty"`  // a global phase's status
	Started  time.Time `json:"started,omitzero"`  // when it started
	Finished time.Time `json:"finished,omitzero"` // when it ended
	Active   int       `json:"active,omitempty"`  // accounts in the phase now
	Done     int       `json:"done,omitempty"`    // accounts that finished it
}

// Sample is cumulative progress at Seconds since the run started.
type Sample struct {
	Seconds float64 `json:"t"`     // seconds since the run started
	Items   int64   `json:"items"` // items copied by then
	Bytes   int64   `json:"bytes"` // bytes copied by then
}

// Load is one server (host:port): the accounts working on it now against
// the budget of accounts at once, its connections in use against the
// connection budget, and, from what the run observed, its operations per
// second, retries, throttle answers and latency.
type Load struct {
	Server string `json:"server"`         // host:port, never a user name or a path
	Side   string `json:"side,omitempty"` // source, destination (both joined by "+")
	// Kind is IMAP, DAV, admin, or other (a server the run reached
	// outside the plan's endpoints).
	Kind   string `json:"kind"`
	Active int    `json:"active"`           // accounts working on it now
	Budget int    `json:"budget,omitempty"` // accounts it may serve at once
	// Connections are in use now; ConnectionsBudget is how many may be
	// (0: no connection budget). An HTTP connection is in use while a
	// request is in flight on it.
	Connections       int `json:"connections"`
	ConnectionsBudget int `json:"connections_budget,omitempty"` // see Connections
	// Rate is operations (IMAP APPEND and FETCH, HTTP requests) per second
	// over the last 10 s; RateLimit the HTTP request pace the run keeps
	// to (0: none).
	Rate         float64 `json:"rate"`
	RateLimit    float64 `json:"rate_limit,omitempty"`    // see Rate
	Ops          int64   `json:"ops"`                     // operations so far
	Errors       int64   `json:"errors"`                  // operations that failed
	Retries      int64   `json:"retries"`                 // work tried again
	Throttled    int64   `json:"throttled"`               // throttle answers (BYE, UNAVAILABLE, 429, 503...)
	LastThrottle string  `json:"last_throttle,omitempty"` // the last throttle answer
	// P50 and P95 are operation latencies over the run, in seconds (0
	// before the first operation).
	P50 float64 `json:"p50_seconds"`
	P95 float64 `json:"p95_seconds"` // see P50
}

// Problem is one skipped or failed item, or a failed phase.
type Problem struct {
	Time    time.Time `json:"time,omitzero"`     // when it happened
	Account string    `json:"account"`           // the source account
	Phase   string    `json:"phase"`             // the phase
	Item    string    `json:"item,omitempty"`    // the item, e.g. INBOX UID 42
	Skipped bool      `json:"skipped,omitempty"` // true: skipped on purpose; false: failed
	Reason  string    `json:"reason"`            // why
}

// Accounts is what /api/accounts returns: one row per account, as arrays to
// keep 50,000 rows small: [source, status, phase, size, seconds, items,
// bytes, problems]. seconds is the time spent in the account's phases;
// problems counts skipped and failed items and failed phases.
type Accounts struct {
	Version int64    `json:"version"`        // changes whenever a row does
	Columns []string `json:"columns"`        // the column names
	Rows    [][]any  `json:"rows,omitempty"` // one row per account, in Columns' order
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
