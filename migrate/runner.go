package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/state"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// DefaultSampleInterval is how often a Runner samples throughput for the
// report's chart.
const DefaultSampleInterval = time.Second

// Runner runs a Plan: the global phases, then the account pool, then the
// closing global phases, recording everything in the state store so that
// the same call after a crash or Ctrl-C continues where it stopped.
//
// A Runner is used by one goroutine at a time; its OnEvent is called
// concurrently.
type Runner struct {
	// Plan is the plan to run. Its secrets are loaded by Run when missing.
	Plan *Plan
	// Store is the state store. nil means: open Plan.StatePath() after the
	// checks that precede any write, and close it at the end.
	Store state.Store
	// OnEvent, when set, receives every event. It may be called
	// concurrently and must return quickly.
	OnEvent func(Event)
	// Logger receives diagnostics; nil is silent.
	Logger *slog.Logger
	// RetryFailed runs again the phases that failed or finished partial in
	// an earlier run. Without it they keep their result.
	RetryFailed bool
	// Delta runs the copy and verify phases again for accounts already done:
	// the cutover pass, copying only what changed since. The shares phase
	// runs again too, adding what changed on the source.
	Delta bool
	// Only restricts the run to these source addresses (all when empty).
	Only []string
	// SampleInterval is the throughput sampling period (0:
	// DefaultSampleInterval).
	SampleInterval time.Duration
	// Hooks replace how the servers are reached (for embedding and the
	// demo); the zero value builds everything from the plan.
	Hooks Hooks

	// backend is the servers; nil means built from the plan.
	backend backend
	// co shares the state with other runners and keeps the budgets
	// (coord.go); set by Run.
	co *coord

	stopped   atomic.Bool
	mu        sync.Mutex
	items     atomic.Int64
	bytes     atomic.Int64
	samples   []Sample
	startTime time.Time
}

// ErrStopped is returned by Run after Stop: in-flight phases finished, the
// state is saved, and the same run continues where it stopped. It wraps
// context.Canceled.
var ErrStopped = fmt.Errorf("migrate: stopped on request, run again to resume: %w", context.Canceled)

// Stop asks a running Run to finish the phases in flight and start nothing
// new; Run then returns ErrStopped. Cancelling Run's context instead stops
// in-flight work at once (the write-ahead state still makes it resumable).
// Stop is safe to call from any goroutine, also before or after Run.
func (r *Runner) Stop() { r.stopped.Store(true) }

// AccountError names accounts that are missing on one side.
type AccountError struct {
	Side     string   // "source" or "destination"
	Accounts []string // the missing addresses
}

// Error names the side and the missing accounts.
func (e *AccountError) Error() string {
	return fmt.Sprintf("migrate: %d account(s) do not exist on the %s: %s", len(e.Accounts), e.Side, strings.Join(e.Accounts, ", "))
}

// ServerError is a server that could not be reached or refused the
// credentials. It names the server by plan key and address.
type ServerError struct {
	Key     string // e.g. "destination.imap"
	Address string // host:port or URL
	Err     error  // the cause
}

// Error names the server by plan key and address, then the cause.
func (e *ServerError) Error() string {
	return fmt.Sprintf("migrate: %s (%s): %v", e.Key, e.Address, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *ServerError) Unwrap() error { return e.Err }

// Unreachable reports whether the server could not be reached, or not
// securely (as opposed to refusing the login or answering an error).
func (e *ServerError) Unreachable() bool {
	if errors.Is(e.Err, zxerrors.ErrAuth) {
		return false
	}
	return errors.Is(e.Err, zxerrors.ErrUnreachable) || errors.Is(e.Err, zxerrors.ErrTLS) ||
		retry.Classify(e.Err) == retry.Transient
}

func (r *Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) emit(ev Event) {
	if r.OnEvent != nil {
		r.OnEvent(ev)
	}
}

// prepare validates the plan, loads secrets, connects the backend and
// selects the accounts. It writes nothing.
func (r *Runner) prepare(ctx context.Context) ([]AccountPlan, error) {
	if r.Plan == nil {
		return nil, errors.New("migrate: runner has no plan")
	}
	r.Plan.cliInjected = r.Hooks.DestinationCLI != nil
	r.Plan.srcCLIInjected = r.Hooks.SourceCLI != nil
	r.Plan.davInjected = r.Hooks.DAVCredentials != nil
	if err := r.Plan.Validate(); err != nil {
		return nil, err
	}
	if err := r.Plan.LoadSecrets(); err != nil {
		return nil, err
	}
	if r.backend == nil {
		b, err := newServerBackend(r.Plan, r.log(), r.Hooks)
		if err != nil {
			return nil, err
		}
		r.backend = b
	}
	r.attachBudgets()
	if err := r.backend.Check(ctx); err != nil {
		return nil, err
	}
	return r.selectAccounts(ctx)
}

func (r *Runner) selectAccounts(ctx context.Context) ([]AccountPlan, error) {
	p := r.Plan
	var accts []AccountPlan
	seen := map[string]bool{}
	add := func(a AccountPlan) {
		a.Source = strings.ToLower(a.Source)
		if seen[a.Source] || !p.Accounts.Selects(a.Source) {
			return
		}
		if len(r.Only) > 0 && !slices.Contains(r.Only, a.Source) {
			return
		}
		seen[a.Source] = true
		a.Destination = p.MapAddress(a.Source)
		accts = append(accts, a)
	}
	fromDir := p.Accounts.FromDirectory == nil && p.Accounts.ListFile == "" ||
		p.Accounts.FromDirectory != nil && *p.Accounts.FromDirectory
	dir := map[string]AccountPlan{}
	if fromDir || p.Accounts.ListFile != "" && r.backend.HasSourceDirectory() {
		for _, d := range p.Domains {
			list, err := r.backend.SourceAccounts(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("migrate: list accounts of %s: %w", d, err)
			}
			for _, a := range list {
				dir[strings.ToLower(a.Source)] = a
			}
		}
	}
	if p.Accounts.ListFile != "" {
		list, err := readListFile(p.Accounts.ListFile)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, addr := range list {
			a, ok := dir[addr]
			if !ok && len(dir) > 0 {
				missing = append(missing, addr)
				continue
			}
			if !ok {
				a = AccountPlan{Source: addr}
			}
			add(a)
		}
		if len(missing) > 0 {
			return nil, &AccountError{Side: "source", Accounts: missing}
		}
	} else {
		for _, a := range dir {
			add(a)
		}
	}
	for _, o := range r.Only {
		if !seen[o] {
			return nil, &AccountError{Side: "source", Accounts: []string{o}}
		}
	}
	if len(dir) == 0 {
		// No directory to list from: look each account up.
		missing, err := r.lookUp(ctx, accts, r.backend.SourceExists, func(a AccountPlan) string { return a.Source })
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			return nil, &AccountError{Side: "source", Accounts: missing}
		}
	}
	// Largest first, to shorten the tail; then by name for a stable order.
	sort.Slice(accts, func(i, j int) bool {
		if accts[i].Size != accts[j].Size {
			return accts[i].Size > accts[j].Size
		}
		return accts[i].Source < accts[j].Source
	})
	return accts, nil
}

// checkDestination lists the accounts missing on the destination.
func (r *Runner) checkDestination(ctx context.Context, accts []AccountPlan) ([]string, error) {
	return r.lookUp(ctx, accts, r.backend.DestinationExists, func(a AccountPlan) string { return a.Destination })
}

// lookUp runs exists for every account, a few at a time, and returns the
// addresses it did not find, in account order.
func (r *Runner) lookUp(ctx context.Context, accts []AccountPlan, exists func(context.Context, string) (bool, error), addr func(AccountPlan) string) ([]string, error) {
	found := make([]bool, len(accts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * r.Plan.Concurrency.accounts())
	for i, a := range accts {
		g.Go(func() error {
			ok, err := exists(gctx, addr(a))
			if err != nil {
				return fmt.Errorf("migrate: look up %s: %w", addr(a), err)
			}
			found[i] = ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var missing []string
	for i, a := range accts {
		if !found[i] {
			missing = append(missing, addr(a))
		}
	}
	return missing, nil
}

// Run runs the plan and returns its report. The report is returned even
// with an error when the run got far enough to have one. Per-account
// problems are in the report, not in the error; the error says why the run
// could not go on (bad plan, unreachable server, refused credentials,
// unwritable state, cancellation).
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	closeShared, err := r.openShared(ctx)
	if err != nil {
		return nil, err
	}
	defer closeShared()
	accts, err := r.prepare(ctx)
	if r.backend != nil {
		defer r.backend.Close()
	}
	if err != nil {
		return nil, err
	}
	p := r.Plan
	if p.HasPhase(PhaseMail) && len(accts) > 0 {
		// Refused admin credentials would fail every account: find out now.
		if err := r.backend.CheckIMAP(ctx, accts[0], !p.HasPhase(PhaseProvisioning)); err != nil {
			return nil, err
		}
	}
	store := r.Store
	if store == nil {
		// Nothing is written before this point.
		provisioning := p.HasPhase(PhaseProvisioning)
		if !provisioning && p.HasPhase(PhaseMail) || p.HasPhase(PhaseCalendars) && !provisioning || p.HasPhase(PhaseContacts) && !provisioning {
			missing, err := r.checkDestination(ctx, accts)
			if err != nil {
				return nil, err
			}
			if len(missing) > 0 {
				return nil, &AccountError{Side: "destination", Accounts: missing}
			}
		}
		unlock, err := lockState(p.StatePath())
		if err != nil {
			return nil, err
		}
		defer unlock()
		s, err := state.Open(ctx, p.StatePath())
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		defer s.Close()
		store = s
	}
	if r.RetryFailed {
		if _, err := store.ResetPhases(ctx, string(StatusFailed), string(StatusPartial)); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	runID, err := store.StartRun(ctx, p.Hash())
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, a := range accts {
		if err := store.PutAccount(ctx, a.Source, a.Destination, a.Size); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	stopCoord, err := r.startCoord(ctx, store)
	if err != nil {
		return nil, err
	}
	defer stopCoord()
	r.startTime = time.Now()
	r.emit(RunStarted{RunID: runID, Time: r.startTime, Accounts: accts, Phases: p.EffectivePhases()})
	r.log().Info("run started", "run", runID, "accounts", len(accts))

	stopSampler := r.startSampler()
	runErr := r.run(ctx, store, accts)
	stopSampler()
	// One runner of a shared state that stops leaves the MTA to the
	// others: mta_start runs once every account is done.
	if (ctx.Err() != nil || errors.Is(runErr, ErrStopped)) && (r.co == nil || !r.co.shared) {
		r.restartMTA(ctx, store, accts)
	}

	rep, err := r.buildReport(ctx, store, runID, accts)
	if err != nil {
		return nil, errors.Join(runErr, err)
	}
	if ctx.Err() != nil || errors.Is(runErr, ErrStopped) {
		rep.Outcome = StatusInterrupted
	}
	rep.finalize()
	// The state is saved even when ctx is cancelled.
	sctx := context.WithoutCancel(ctx)
	if b, err := json.Marshal(rep); err == nil {
		if err := store.SaveReport(sctx, b); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if err := store.FinishRun(sctx, runID, string(rep.Outcome)); err != nil {
		runErr = errors.Join(runErr, err)
	}
	r.emit(RunFinished{Report: rep})
	r.log().Info("run finished", "run", runID, "outcome", rep.Outcome)
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err()
	}
	return rep, runErr
}

func (r *Runner) run(ctx context.Context, store state.Store, accts []AccountPlan) error {
	if r.co != nil && r.co.shared {
		return r.runShared(ctx, store, accts)
	}
	p := r.Plan
	phases := p.EffectivePhases()
	// Opening global phases. A failure here stops the run: the accounts
	// need provisioning before anything can be copied.
	for _, ph := range phases {
		if ph.IsAccountPhase() || ph.closing() {
			continue
		}
		if r.stopped.Load() {
			return ErrStopped
		}
		if ph == PhaseProvisioningCheck {
			if err := r.provisioningCheck(ctx, store, accts); err != nil {
				return err
			}
			continue
		}
		st, err := r.globalPhase(ctx, store, ph, accts)
		if err != nil {
			return err
		}
		if st == StatusFailed {
			return nil
		}
	}
	// The account pool.
	g := new(errgroup.Group)
	g.SetLimit(p.Concurrency.accounts())
	var fatalMu sync.Mutex
	var fatal error
	poolCtx, cancelPool := context.WithCancel(ctx)
	defer cancelPool()
	for _, a := range accts {
		if poolCtx.Err() != nil || r.stopped.Load() {
			break
		}
		g.Go(func() error {
			if poolCtx.Err() != nil || r.stopped.Load() {
				return nil
			}
			if err := r.account(poolCtx, store, a); err != nil {
				// Only a doomed run stops the pool: refused admin
				// credentials, an unwritable state.
				fatalMu.Lock()
				if fatal == nil {
					fatal = err
				}
				fatalMu.Unlock()
				cancelPool()
			}
			return nil
		})
	}
	_ = g.Wait()
	return r.closeRun(ctx, fatal, phases, func(ph Phase) error {
		_, err := r.globalPhase(ctx, store, ph, accts)
		return err
	})
}

// closeRun ends the account phases of a run: a fatal error, a cancelled
// context or a stop ends it there; otherwise the closing global phases
// (mta_start) run, through run, in order.
func (r *Runner) closeRun(ctx context.Context, fatal error, phases []Phase, run func(Phase) error) error {
	if fatal != nil {
		return fatal
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.stopped.Load() {
		return ErrStopped
	}
	for _, ph := range phases {
		if !ph.closing() {
			continue
		}
		if err := run(ph); err != nil {
			return err
		}
	}
	return nil
}

// shouldRun decides from the recorded status whether a phase runs now.
func (r *Runner) shouldRun(row state.PhaseRow, ok bool, ph Phase) bool {
	if !ok {
		return true
	}
	switch Status(row.Status) {
	case StatusDone, StatusPartial:
		return r.Delta && (ph.IsAccountPhase() || ph == PhaseMTAStop || ph == PhaseMTAStart || ph == PhaseShares || ph == PhaseFiles)
	case StatusFailed:
		return false // --retry-failed reset these to pending
	default:
		return true
	}
}

func (r *Runner) globalPhase(ctx context.Context, store state.Store, ph Phase, accts []AccountPlan) (Status, error) {
	row, ok, err := store.Phase(ctx, state.GlobalAccount, string(ph))
	if err != nil {
		return StatusFailed, fmt.Errorf("migrate: %w", err)
	}
	if !r.shouldRun(row, ok, ph) {
		return Status(row.Status), nil
	}
	rec := r.newRecorder(store, "", ph)
	running := ""
	if ph == PhaseMTAStop {
		// Recorded before the MTA stops, so that a report read from the
		// state after any stop (even SIGKILL) can say how to start it.
		undo := r.Plan.MTAStartCommand()
		rec.add(func(res *PhaseResult) { res.Undo = undo })
		if b, err := json.Marshal(PhaseResult{Phase: ph, Status: StatusRunning, Undo: undo}); err == nil {
			running = string(b)
		}
	}
	if err := store.SetPhase(ctx, state.GlobalAccount, string(ph), string(StatusRunning), running); err != nil {
		return StatusFailed, fmt.Errorf("migrate: %w", err)
	}
	r.emit(PhaseStarted{Phase: ph, Time: rec.res.Started})
	perr := r.backend.Global(ctx, ph, r.Plan, accts, rec)
	res := rec.finish(ctx, perr)
	if err := r.savePhase(ctx, store, state.GlobalAccount, res); err != nil {
		return StatusFailed, err
	}
	r.emit(PhaseFinished{Result: res})
	if perr != nil && retry.Classify(perr) == retry.Fatal && ctx.Err() == nil {
		return res.Status, fmt.Errorf("migrate: %s: %w", ph, perr)
	}
	return res.Status, nil
}

func (r *Runner) savePhase(ctx context.Context, store state.Store, account string, res PhaseResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("migrate: encode phase result: %w", err)
	}
	if err := store.SetPhase(context.WithoutCancel(ctx), account, string(res.Phase), string(res.Status), string(b)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// provisioningCheck looks every account up on the destination. Missing
// accounts are marked failed and skipped by the pool.
func (r *Runner) provisioningCheck(ctx context.Context, store state.Store, accts []AccountPlan) error {
	rec := r.newRecorder(store, "", PhaseProvisioningCheck)
	r.emit(PhaseStarted{Phase: PhaseProvisioningCheck, Time: rec.res.Started})
	var perr error
	for _, a := range accts {
		ok, err := r.backend.DestinationExists(ctx, a.Destination)
		if err != nil {
			if retry.Classify(err) == retry.Fatal {
				perr = err
				break
			}
			rec.Problem(a.Source, false, fmt.Sprintf("look up %s: %v", a.Destination, err))
			rec.add(func(res *PhaseResult) { res.Failed++ })
			continue
		}
		if !ok {
			rec.Problem(a.Source, false, fmt.Sprintf("account %s does not exist on the destination", a.Destination))
			rec.add(func(res *PhaseResult) { res.Failed++ })
			if err := store.SetAccountStatus(ctx, a.Source, string(PhaseProvisioningCheck), string(StatusFailed),
				fmt.Sprintf("account %s does not exist on the destination", a.Destination)); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			continue
		}
		rec.add(func(res *PhaseResult) { res.Existing++ })
		if row, ok, _ := store.Account(ctx, a.Source); ok && row.Phase == string(PhaseProvisioningCheck) && row.Status == string(StatusFailed) {
			// It exists now: clear the earlier failure.
			if err := store.SetAccountStatus(ctx, a.Source, "", string(StatusPending), ""); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		}
	}
	if perr == nil {
		missing, err := r.backend.CheckDirectory(ctx, r.Plan)
		switch {
		case err != nil && retry.Classify(err) == retry.Fatal:
			perr = err
		case err != nil:
			rec.Problem("aliases and distribution lists", false, "could not compare: "+err.Error())
			rec.add(func(res *PhaseResult) { res.Failed++ })
		}
		for _, m := range missing {
			rec.Problem(m.Item, false, m.Reason)
			rec.add(func(res *PhaseResult) { res.Failed++ })
		}
	}
	res := rec.finish(ctx, perr)
	if err := r.savePhase(ctx, store, state.GlobalAccount, res); err != nil {
		return err
	}
	r.emit(PhaseFinished{Result: res})
	if perr != nil && retry.Classify(perr) == retry.Fatal && ctx.Err() == nil {
		return fmt.Errorf("migrate: %s: %w", PhaseProvisioningCheck, perr)
	}
	return nil
}

// account runs the account phases of one account. It returns an error only
// when the whole run is doomed.
func (r *Runner) account(ctx context.Context, store state.Store, a AccountPlan) error {
	row, _, err := store.Account(ctx, a.Source)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if row.Phase == string(PhaseProvisioningCheck) && row.Status == string(StatusFailed) && r.Plan.HasPhase(PhaseProvisioningCheck) {
		// Missing on the destination (this run's check said so).
		r.emit(AccountFinished{Account: a.Source, Status: StatusFailed})
		return nil
	}
	var inv *Inventory
	worst := StatusDone
	cut := false
	for _, ph := range r.Plan.EffectivePhases() {
		if !ph.IsAccountPhase() {
			continue
		}
		if ctx.Err() != nil || r.stopped.Load() {
			cut = true
			break
		}
		prow, ok, err := store.Phase(ctx, a.Source, string(ph))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if !r.shouldRun(prow, ok, ph) {
			worst = worse(worst, Status(prow.Status))
			continue
		}
		if inv == nil && (ph == PhaseMail || ph == PhaseVerify) {
			var i *Inventory
			err := r.noPanic("inventory of "+a.Source, func() (err error) { i, err = r.backend.Inventory(ctx, a); return err })
			if err != nil {
				if retry.Classify(err) == retry.Fatal && ctx.Err() == nil {
					return fmt.Errorf("migrate: inventory %s: %w", a.Source, err)
				}
				r.log().Warn("inventory failed", "account", a.Source, "err", err)
				i = &Inventory{Error: err.Error()}
			}
			inv = i
		}
		if err := store.SetAccountStatus(ctx, a.Source, string(ph), string(StatusRunning), ""); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if err := store.SetPhase(ctx, a.Source, string(ph), string(StatusRunning), ""); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		rec := r.newRecorder(store, a.Source, ph)
		r.emit(PhaseStarted{Account: a.Source, Phase: ph, Time: rec.res.Started})
		perr := r.noPanic(string(ph)+" of "+a.Source, func() error { return r.backend.Account(ctx, ph, a, inv, rec) })
		if ph == PhaseMail && inv != nil {
			rec.add(func(res *PhaseResult) { res.NotMigrated = append(res.NotMigrated, inv.NotMigrated...) })
		}
		res := rec.finish(ctx, perr)
		if err := r.savePhase(ctx, store, a.Source, res); err != nil {
			return err
		}
		r.emit(PhaseFinished{Account: a.Source, Result: res})
		worst = worse(worst, res.Status)
		if perr != nil {
			r.log().Warn("phase failed", "account", a.Source, "phase", ph, "err", perr)
			if errors.Is(perr, errAdminAuth) && ctx.Err() == nil {
				return fmt.Errorf("migrate: %s %s: %w", a.Source, ph, perr)
			}
		}
	}
	st := worst
	if cut || ctx.Err() != nil {
		st = StatusInterrupted
	}
	if err := store.SetAccountStatus(context.WithoutCancel(ctx), a.Source, "", string(st), ""); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	r.emit(AccountFinished{Account: a.Source, Status: st})
	return nil
}

// errAdminAuth marks an admin credential refused in the middle of a run:
// every account would fail the same way, so the pool stops.
var errAdminAuth = fmt.Errorf("admin credentials refused: %w", zxerrors.ErrAuth)

// buildReport assembles the report from the state store: earlier runs'
// results for phases that did not run again are kept.
func (r *Runner) buildReport(ctx context.Context, store state.Store, runID int64, accts []AccountPlan) (*Report, error) {
	ctx = context.WithoutCancel(ctx)
	rep, err := reportFromStore(ctx, store, r.Plan, accts)
	if err != nil {
		return nil, err
	}
	rep.RunID = runID
	rep.Started = r.startTime
	rep.Finished = time.Now()
	r.mu.Lock()
	rep.Throughput = thin(r.samples, maxSamples)
	r.mu.Unlock()
	return rep, nil
}

// maxSamples bounds the throughput samples kept in a report.
const maxSamples = 1000

// thin returns at most n samples spread evenly over s, keeping the last.
func thin(s []Sample, n int) []Sample {
	if len(s) <= n {
		return append([]Sample(nil), s...)
	}
	out := make([]Sample, 0, n)
	step := float64(len(s)-1) / float64(n-1)
	for i := 0; i < n; i++ {
		out = append(out, s[int(float64(i)*step+0.5)])
	}
	return out
}

// ReportFromStore rebuilds a report from a state store without the servers:
// the last saved report when there is one, else from the phase records.
// plan may be nil.
//
// A run that has not finished reads "running" while a live process holds
// the state's lock (StateInUse), else "interrupted"; its report is rebuilt
// from the phase records, not taken from an earlier run's saved report.
func ReportFromStore(ctx context.Context, store state.Store, plan *Plan) (*Report, error) {
	runs, err := store.Runs(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var last state.RunInfo
	if len(runs) > 0 {
		last = runs[len(runs)-1]
	}
	unfinished := len(runs) > 0 && last.Finished.IsZero()
	if b, ok, err := store.LastReport(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	} else if ok && !unfinished {
		var rep Report
		if err := json.Unmarshal(b, &rep); err == nil && rep.Version == ReportVersion {
			return &rep, nil
		}
	}
	live := unfinished && StateInUse(store.Path())
	rep, err := buildFromStore(ctx, store, plan, nil, live)
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 {
		rep.RunID, rep.Started, rep.Finished = last.ID, last.Started, last.Finished
		switch {
		case live:
			rep.Outcome = StatusRunning
		case unfinished:
			rep.Outcome = StatusInterrupted
		}
	}
	rep.finalize()
	return rep, nil
}

func reportFromStore(ctx context.Context, store state.Store, plan *Plan, accts []AccountPlan) (*Report, error) {
	return buildFromStore(ctx, store, plan, accts, false)
}

// buildFromStore assembles a report from the phase records. live says that
// a process is running the recorded run now: its running phases are
// running, not interrupted.
func buildFromStore(ctx context.Context, store state.Store, plan *Plan, accts []AccountPlan, live bool) (*Report, error) {
	rows, err := store.Phases(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	byAcct := map[string]map[Phase]PhaseResult{}
	for _, row := range rows {
		var res PhaseResult
		if row.Detail != "" {
			if err := json.Unmarshal([]byte(row.Detail), &res); err != nil {
				return nil, fmt.Errorf("migrate: phase %s of %s: %w", row.Phase, row.Account, err)
			}
		}
		res.Phase = Phase(row.Phase)
		res.Status = Status(row.Status)
		if byAcct[row.Account] == nil {
			byAcct[row.Account] = map[Phase]PhaseResult{}
		}
		byAcct[row.Account][res.Phase] = res
	}
	phases := AllPhases
	rep := &Report{Version: ReportVersion}
	if plan != nil {
		phases = plan.EffectivePhases()
		rep.Plan, rep.PlanHash = plan.Name, plan.Hash()
	}
	for _, ph := range phases {
		if ph.IsAccountPhase() {
			continue
		}
		res, ok := byAcct[state.GlobalAccount][ph]
		if !ok {
			if plan == nil {
				continue
			}
			res = PhaseResult{Phase: ph, Status: StatusPending}
		}
		rep.Phases = append(rep.Phases, res)
		rep.NotMigrated = append(rep.NotMigrated, res.NotMigrated...)
		rep.Shares = append(rep.Shares, res.Shares...)
		rep.Files = append(rep.Files, res.Files...)
	}
	// Whatever this run's phases, the state says whether an earlier
	// mta_stop left the MTA stopped.
	rep.MTA = mtaStopped(byAcct[state.GlobalAccount], plan)
	if accts == nil {
		all, err := store.Accounts(ctx)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		for _, a := range all {
			accts = append(accts, AccountPlan{Source: a.Source, Destination: a.Destination, Size: a.Size})
		}
	}
	for _, a := range accts {
		ar := AccountReport{Source: a.Source, Destination: a.Destination, Size: a.Size}
		if row, ok, err := store.Account(ctx, a.Source); err == nil && ok && row.Status == string(StatusFailed) && row.Error != "" {
			ar.Error = row.Error
		}
		for _, ph := range phases {
			if !ph.IsAccountPhase() {
				continue
			}
			res, ok := byAcct[a.Source][ph]
			if !ok {
				res = PhaseResult{Phase: ph, Status: StatusPending}
				if ar.Error != "" {
					res.Status, res.Reason = StatusNotRun, ar.Error
				}
			}
			if res.Status == StatusRunning && !live {
				res.Status, res.Reason = StatusInterrupted, "interrupted; run again to resume"
			}
			ar.Phases = append(ar.Phases, res)
			rep.NotMigrated = append(rep.NotMigrated, res.NotMigrated...)
		}
		rep.Accounts = append(rep.Accounts, ar)
	}
	return rep, nil
}

func (r *Runner) startSampler() (stop func()) {
	iv := r.SampleInterval
	if iv <= 0 {
		iv = DefaultSampleInterval
	}
	sample := func() {
		r.mu.Lock()
		r.samples = append(r.samples, Sample{
			Seconds: time.Since(r.startTime).Seconds(),
			Items:   r.items.Load(),
			Bytes:   r.bytes.Load(),
		})
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.samples = nil
	r.mu.Unlock()
	sample()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(iv)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		sample()
	}
}
