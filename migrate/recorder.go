package migrate

import (
	"context"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/state"
)

// maxProblems bounds the problems listed per phase; the counts stay exact.
const maxProblems = 1000

// Inventory is what the runner learns about one account before copying:
// folders to skip (virtual folders: mountpoints, saved searches) and things
// this procedure does not migrate.
type Inventory struct {
	// SkipFolders maps a source folder name to the reason it is skipped.
	SkipFolders map[string]string
	NotMigrated []NotMigrated // what the procedure leaves behind for this account
	// Error is set when the inventory could not be taken; the copy then
	// runs without it.
	Error string
}

// backend is what a Runner needs from the servers. serverBackend wires the
// leaf packages; tests use fakes.
type backend interface {
	// Check logs in to every server the plan's phases need, naming the
	// server in the error (a *ServerError).
	Check(ctx context.Context) error
	// HasSourceDirectory reports whether a source admin API is configured.
	HasSourceDirectory() bool
	// SourceAccounts lists the accounts of a domain with their sizes.
	SourceAccounts(ctx context.Context, domain string) ([]AccountPlan, error)
	// CheckIMAP logs in as the admins on behalf of one account.
	CheckIMAP(ctx context.Context, a AccountPlan, destination bool) error
	// SourceExists reports whether an account exists on the source.
	SourceExists(ctx context.Context, addr string) (bool, error)
	// DestinationExists reports whether an account exists on the destination.
	DestinationExists(ctx context.Context, addr string) (bool, error)
	// CheckDirectory compares the source directory's aliases and
	// distribution lists of the plan's domains with the destination's and
	// returns what is missing there (nil when either admin API is absent).
	CheckDirectory(ctx context.Context, p *Plan) ([]Problem, error)
	// Inventory takes an account's inventory on the source.
	Inventory(ctx context.Context, a AccountPlan) (*Inventory, error)
	// Global runs a global phase for the selected accounts.
	Global(ctx context.Context, ph Phase, p *Plan, accts []AccountPlan, rec *recorder) error
	// Account runs an account phase.
	Account(ctx context.Context, ph Phase, a AccountPlan, inv *Inventory, rec *recorder) error
	// Close releases connections.
	Close() error
}

// recorder collects one phase's result and turns the leaves' progress into
// events. It is safe for concurrent use.
type recorder struct {
	r       *Runner
	account string
	store   state.Store

	mu         sync.Mutex
	res        PhaseResult
	lastItems  int64
	lastBytes  int64
	itemsTotal int64
}

func (r *Runner) newRecorder(store state.Store, account string, ph Phase) *recorder {
	return &recorder{r: r, store: store, account: account, res: PhaseResult{Phase: ph, Status: StatusRunning, Started: time.Now()}}
}

// Progress reports cumulative items and bytes of the phase; total is the
// expected number of items (0 when unknown).
func (c *recorder) Progress(items, bytes, total int64) {
	c.mu.Lock()
	di, db := items-c.lastItems, bytes-c.lastBytes
	if di < 0 {
		di = 0
	}
	if db < 0 {
		db = 0
	}
	c.lastItems, c.lastBytes = max(items, c.lastItems), max(bytes, c.lastBytes)
	if total > 0 {
		c.itemsTotal = total
	}
	ev := Progress{Account: c.account, Phase: c.res.Phase, Time: time.Now(), Items: c.lastItems, Total: c.itemsTotal, Bytes: c.lastBytes}
	c.mu.Unlock()
	if c.res.Phase != PhaseVerify {
		c.r.items.Add(di)
		c.r.bytes.Add(db)
	}
	c.r.emit(ev)
}

// Step adds delta items and bytes to the phase's progress.
func (c *recorder) Step(items, bytes int64) {
	c.mu.Lock()
	i, b := c.lastItems+items, c.lastBytes+bytes
	c.mu.Unlock()
	c.Progress(i, b, 0)
}

// AddTotal raises the number of items the phase expects and reports
// progress.
func (c *recorder) AddTotal(n int64) {
	c.mu.Lock()
	c.itemsTotal += n
	i, b := c.lastItems, c.lastBytes
	c.mu.Unlock()
	c.Progress(i, b, 0)
}

// Problem records a skipped or failed item and emits ItemProblem. It does
// not change the counts: the phase sets them from the leaf's stats.
func (c *recorder) Problem(item string, skipped bool, reason string) {
	c.mu.Lock()
	if len(c.res.Problems) < maxProblems {
		c.res.Problems = append(c.res.Problems, Problem{Item: item, Skipped: skipped, Reason: reason})
	} else {
		c.res.ProblemsOmitted++
	}
	c.mu.Unlock()
	c.r.emit(ItemProblem{Account: c.account, Phase: c.res.Phase, Item: item, Skipped: skipped, Reason: reason})
}

// add changes the result under the lock.
func (c *recorder) add(fn func(*PhaseResult)) {
	c.mu.Lock()
	fn(&c.res)
	c.mu.Unlock()
}

// finish closes the result: failed or interrupted with err, partial with
// skipped, changed or failed items, else done.
func (c *recorder) finish(ctx context.Context, err error) PhaseResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := c.res
	res.Finished = time.Now()
	switch {
	case err != nil && ctx.Err() != nil:
		res.Status, res.Reason = StatusInterrupted, "interrupted; run again to resume"
	case err != nil:
		res.Status, res.Reason = StatusFailed, err.Error()
	case res.Status == StatusNotRun:
	case res.Failed > 0 || res.Skipped > 0 || res.Changed > 0:
		res.Status = StatusPartial
	default:
		res.Status = StatusDone
	}
	return res
}

// notRun marks the phase as not run, with the reason.
func (c *recorder) notRun(reason string) {
	c.add(func(r *PhaseResult) { r.Status, r.Reason = StatusNotRun, reason })
}
