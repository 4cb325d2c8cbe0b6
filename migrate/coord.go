package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/state"
)

// DefaultLease is how long a runner's claim on an account or a global
// phase lives without a heartbeat when the plan sets no lease.
const DefaultLease = 60 * time.Second

// errLeaseLost is the cause of an account's context when its lease ran out
// or was taken over by another runner.
var errLeaseLost = fmt.Errorf("lease lost, taken over: %w", state.ErrLeaseLost)

// coord is what a Runner needs to share its state with other runners (a
// PostgreSQL store) or to keep the plan's budgets (any store): its runner
// id, the lease, the heartbeat and the budgets.
type coord struct {
	id     string
	ttl    time.Duration
	shared bool
	g      *budgets // nil when no budget applies

	store    state.Store
	presence state.Slot
	stop     func()

	progMu sync.Mutex
	prog   map[string]map[Phase][2]int64 // account -> phase -> items, bytes

	finMu   sync.Mutex
	finAt   time.Time
	finDone bool
}

func (p *Plan) lease() time.Duration {
	if p.Lease > 0 {
		return p.Lease
	}
	return DefaultLease
}

// openShared opens the plan's shared state (a PostgreSQL URL) before
// anything else, so that the budgets hold from the first connection on.
// It returns a function that closes it.
func (r *Runner) openShared(ctx context.Context) (func(), error) {
	r.co = nil
	if r.Plan == nil {
		return func() {}, nil
	}
	shared := r.Store != nil && r.Store.Backend() != "sqlite"
	var opened state.Store
	if r.Store == nil && state.IsURL(r.Plan.StatePath()) {
		s, err := state.OpenURL(ctx, r.Plan.StatePath())
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		opened, shared = s, true
		r.Store = s
	}
	co := &coord{id: state.NewRunnerID(), ttl: r.Plan.lease(), shared: shared, prog: map[string]map[Phase][2]int64{}}
	if shared || len(PlanBudgets(r.Plan)) > 0 {
		co.g = newBudgets(nil, co.id, co.ttl, r.Plan)
	}
	r.co = co
	if opened != nil && co.g != nil {
		// The budgets hold from the first look-up on.
		co.g.setStore(opened)
		if err := co.g.seed(ctx, r.Plan, true); err != nil {
			opened.Close()
			r.Store = nil
			return nil, err
		}
	}
	return func() {
		if opened != nil {
			opened.Close()
			r.Store = nil
		}
	}, nil
}

// attachBudgets makes the servers' connections take their budgets' slots.
func (r *Runner) attachBudgets() {
	if r.co == nil || r.co.g == nil {
		return
	}
	b, ok := r.backend.(*serverBackend)
	if !ok {
		return
	}
	b.budget.SetGate(r.co.g)
	b.gate = r.co.g
	for _, hc := range []*http.Client{b.srcHTTP, b.dstHTTP} {
		if hc != nil {
			hc.Transport = budgetTransport{g: r.co.g, base: hc.Transport}
		}
	}
}

// startCoord binds the budgets to the store, writes the plan's budgets,
// registers the runner and starts its heartbeat. The returned function
// stops it and gives the runner's slots back.
func (r *Runner) startCoord(ctx context.Context, store state.Store) (func(), error) {
	co := r.co
	if co != nil && co.g == nil && !co.shared {
		// A state file whose budgets were set with `migrate limits`.
		if ls, err := store.Limits(ctx); err == nil && slices.ContainsFunc(ls, func(l state.Limit) bool { return l.Max > 0 }) {
			co.g = newBudgets(nil, co.id, co.ttl, r.Plan)
			r.attachBudgets()
		}
	}
	if co == nil || co.g == nil && !co.shared {
		return func() {}, nil
	}
	co.store = store
	if co.g != nil {
		if co.g.st() == nil {
			co.g.setStore(store)
			if err := co.g.seed(ctx, r.Plan, co.shared); err != nil {
				return nil, err
			}
		}
		if s, ok, err := store.AcquireSlot(ctx, BudgetRunners, co.id, co.ttl); err == nil && ok {
			co.presence = s
		}
		co.g.refresh(ctx)
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		beat := time.NewTicker(co.ttl / 3)
		defer beat.Stop()
		refresh := time.NewTicker(time.Second)
		defer refresh.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-beat.C:
				if _, err := store.Heartbeat(hctx, co.id, co.ttl); err != nil && hctx.Err() == nil {
					r.log().Warn("heartbeat failed", "runner", co.id, "err", err)
				}
			case <-refresh.C:
				if co.g != nil {
					co.g.refresh(hctx)
				}
			}
		}
	}()
	r.log().Info("runner registered", "runner", co.id, "state", store.Path(), "lease", co.ttl)
	return func() {
		cancel()
		wg.Wait()
		if co.presence.Key != "" {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			_ = store.ReleaseSlot(sctx, co.presence)
			c()
		}
	}, nil
}

// fencedStore is a Store whose per-account writes go through one lease's
// fenced checkpoints: once the lease is lost, every write fails with
// state.ErrLeaseLost and nothing is written.
type fencedStore struct {
	state.Store
	cp state.Checkpoints
}

func (f fencedStore) Mail(key string) imapcopy.Checkpoint { return f.cp.Mail(key) }
func (f fencedStore) SetPhase(ctx context.Context, account, phase, status, detail string) error {
	return f.cp.SetPhase(ctx, account, phase, status, detail)
}
func (f fencedStore) SetAccountStatus(ctx context.Context, source, phase, status, errText string) error {
	return f.cp.SetAccountStatus(ctx, source, phase, status, errText)
}
func (f fencedStore) SetProgress(ctx context.Context, source string, messages, bytes int64) error {
	return f.cp.SetProgress(ctx, source, messages, bytes)
}

func (f fencedStore) Calendars(account string) dav.Checkpoint { return f.cp.Calendars(account) }
func (f fencedStore) Contacts(account string) dav.Checkpoint  { return f.cp.Contacts(account) }
func (f fencedStore) Files() files.Store                      { return f.cp.Files() }

// runShared is Runner.run for runners that share a store: the global
// phases run once under a claim (the others wait for them), the accounts
// are claimed one by one with a lease, and the closing phases run once,
// after every account is finished.
func (r *Runner) runShared(ctx context.Context, store state.Store, accts []AccountPlan) error {
	co := r.co
	p := r.Plan
	if r.Delta {
		return errors.New("migrate: --delta with a shared state is not supported: run the delta pass from one runner with its own state file")
	}
	if r.RetryFailed {
		if _, err := store.ReopenAccounts(ctx, string(StatusFailed), string(StatusPartial)); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if jobs, err := store.Globals(ctx); err == nil {
			for _, j := range jobs {
				if j.Status == state.GlobalFailed {
					_ = store.ReopenGlobal(ctx, j.Name)
				}
			}
		}
	}
	// Account progress for the status view.
	onEvent := r.OnEvent
	r.OnEvent = func(ev Event) {
		if pr, ok := ev.(Progress); ok && pr.Account != "" && pr.Phase != PhaseVerify {
			co.progMu.Lock()
			m := co.prog[pr.Account]
			if m == nil {
				m = map[Phase][2]int64{}
				co.prog[pr.Account] = m
			}
			m[pr.Phase] = [2]int64{pr.Items, pr.Bytes}
			co.progMu.Unlock()
		}
		if onEvent != nil {
			onEvent(ev)
		}
	}
	defer func() { r.OnEvent = onEvent }()

	phases := p.EffectivePhases()
	for _, ph := range phases {
		if ph.IsAccountPhase() || ph.closing() {
			continue
		}
		if r.stopped.Load() {
			return ErrStopped
		}
		st, err := r.once(ctx, store, ph, accts)
		if err != nil {
			return err
		}
		if st == StatusFailed {
			return nil
		}
	}

	byKey := map[string]AccountPlan{}
	for _, a := range accts {
		byKey[a.Source] = a
	}
	poolCtx, cancelPool := context.WithCancel(ctx)
	defer cancelPool()
	var fatalMu sync.Mutex
	var fatal error
	storeErrs := 0
	work := func(l state.Lease) {
		a, known := byKey[l.Key]
		if !known {
			a = AccountPlan{Source: l.Key, Destination: l.Destination, Size: l.Size}
		}
		err := r.claimed(poolCtx, store, l, a)
		fatalMu.Lock()
		defer fatalMu.Unlock()
		switch {
		case err == nil:
			storeErrs = 0
		case errors.Is(err, errAdminAuth) || storeErrs >= 3:
			if fatal == nil {
				fatal = err
			}
			cancelPool()
		default:
			storeErrs++
		}
	}
	g := new(errgroup.Group)
	for range p.Concurrency.accounts() {
		g.Go(func() error {
			backoff := co.poll()
			for poolCtx.Err() == nil && !r.stopped.Load() {
				l, ok, err := store.ClaimAccount(poolCtx, co.id, co.ttl)
				if err != nil {
					if poolCtx.Err() == nil {
						r.log().Warn("claim failed, trying again", "err", err)
					}
					sleepCtx(poolCtx, backoff)
					backoff = min(2*backoff, co.ttl)
					continue
				}
				backoff = co.poll()
				if !ok {
					if co.allFinished(poolCtx) {
						return nil
					}
					sleepCtx(poolCtx, co.poll())
					continue
				}
				work(l)
			}
			return nil
		})
	}
	// The rescuer takes up an account whose runner died (its lease ran out
	// unreleased) at once, even while every worker is busy: one account
	// beyond the runner's concurrency, for takeovers only. Accounts are
	// claimed largest first, so an account that was taken before is ahead
	// of every account not taken yet in that order, and the claim picks it.
	g.Go(func() error {
		for poolCtx.Err() == nil && !r.stopped.Load() {
			sleepCtx(poolCtx, co.rescuePoll())
			if !co.orphaned(poolCtx) {
				if co.allFinished(poolCtx) {
					return nil
				}
				continue
			}
			l, ok, err := store.ClaimAccount(poolCtx, co.id, co.ttl)
			if err != nil || !ok {
				continue
			}
			work(l)
		}
		return nil
	})
	_ = g.Wait()
	return r.closeRun(ctx, fatal, phases, func(ph Phase) error {
		_, err := r.once(ctx, store, ph, accts)
		return err
	})
}

func (co *coord) poll() time.Duration { return min(time.Second, co.ttl/4) }

// rescuePoll is how often the rescuer looks for accounts of dead runners.
func (co *coord) rescuePoll() time.Duration {
	return max(500*time.Millisecond, min(co.ttl/4, 10*time.Second))
}

// orphaned reports whether an unfinished account was left running without
// a live lease: its runner died or lost the state (the store shows no
// runner once a lease ran out).
func (co *coord) orphaned(ctx context.Context) bool {
	rows, err := co.store.Accounts(ctx)
	if err != nil {
		return false
	}
	for _, a := range rows {
		if !a.Finished && a.Runner == "" && Status(a.Status) == StatusRunning {
			return true
		}
	}
	return false
}

// allFinished reports whether every account of the state is finished
// (released as done by some runner). Its answer is shared by the workers
// for a poll period.
func (co *coord) allFinished(ctx context.Context) bool {
	co.finMu.Lock()
	defer co.finMu.Unlock()
	if time.Since(co.finAt) < co.poll() {
		return co.finDone
	}
	rows, err := co.store.Accounts(ctx)
	if err != nil {
		return false
	}
	done := true
	for _, a := range rows {
		if !a.Finished {
			done = false
			break
		}
	}
	co.finAt, co.finDone = time.Now(), done
	return done
}

// once runs global phase ph unless another runner runs or ran it: the
// first runner to claim it runs it under a lease; the others wait for its
// end and take its result. A holder that dies loses the claim with its
// lease, and the next runner to ask runs the phase again from the state.
func (r *Runner) once(ctx context.Context, store state.Store, ph Phase, accts []AccountPlan) (Status, error) {
	co := r.co
	waiting := false
	for {
		if ctx.Err() != nil {
			return StatusInterrupted, ctx.Err()
		}
		l, st, err := store.ClaimGlobal(ctx, string(ph), co.id, co.ttl)
		if err != nil {
			r.log().Warn("claim of a global phase failed, trying again", "phase", ph, "err", err)
			sleepCtx(ctx, co.poll())
			continue
		}
		switch st {
		case state.GlobalDone, state.GlobalFailed:
			row, ok, err := store.Phase(ctx, state.GlobalAccount, string(ph))
			if err != nil {
				return StatusFailed, fmt.Errorf("migrate: %w", err)
			}
			if st == state.GlobalFailed {
				return StatusFailed, nil
			}
			if ok {
				return Status(row.Status), nil
			}
			return StatusDone, nil
		case state.GlobalRunning:
			if !waiting {
				r.log().Info("waiting for another runner's global phase", "phase", ph)
				waiting = true
			}
			sleepCtx(ctx, co.poll())
			continue
		}
		if l.PrevRunner != "" {
			r.log().Warn("global phase taken over from a runner whose lease ran out", "phase", ph, "from", l.PrevRunner)
		}
		lctx, stop := r.keep(ctx, store, l)
		fs := fencedStore{Store: store, cp: store.Fenced(l)}
		var res Status
		if ph == PhaseProvisioningCheck {
			res = StatusDone
			err = r.provisioningCheck(lctx, fs, accts)
			if row, ok, _ := store.Phase(ctx, state.GlobalAccount, string(ph)); ok {
				res = Status(row.Status)
			}
		} else {
			res, err = r.globalPhase(lctx, fs, ph, accts)
		}
		lost := stop()
		if lost || errors.Is(err, state.ErrLeaseLost) {
			return StatusFailed, fmt.Errorf("migrate: %s: %w", ph, errLeaseLost)
		}
		if ferr := store.FinishGlobal(context.WithoutCancel(ctx), l, err == nil && res != StatusFailed, string(res)); ferr != nil {
			return StatusFailed, fmt.Errorf("migrate: %s: %w", ph, ferr)
		}
		return res, err
	}
}

// keep renews lease l every third of its life until the returned stop is
// called. When the lease is lost the returned context is cancelled (with
// errLeaseLost as its cause) and stop reports it. A runner that cannot
// reach the store gives the lease up on its own clock, three quarters of
// the lease after its last renewal: its work stops, and its connections
// close, before the lease runs out in the store and another runner takes
// the account (and the budget's slots) over.
func (r *Runner) keep(ctx context.Context, store state.Store, l state.Lease) (context.Context, func() (lost bool)) {
	co := r.co
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		renew := time.NewTicker(co.ttl / 3)
		defer renew.Stop()
		watch := time.NewTicker(min(250*time.Millisecond, co.ttl/8))
		defer watch.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-done:
				return
			case <-lctx.Done():
				return
			case <-watch.C:
				if time.Since(lastOK) > co.ttl*3/4 {
					r.log().Warn("lease lost, taken over: the state was not reachable to renew it", "key", l.Key, "runner", co.id)
					cancel(errLeaseLost)
					return
				}
				continue
			case <-renew.C:
			}
			rctx, rcancel := context.WithTimeout(lctx, co.ttl/3)
			nl, err := store.Renew(rctx, l, co.ttl)
			rcancel()
			switch {
			case errors.Is(err, state.ErrLeaseLost):
				r.log().Warn("lease lost, taken over", "key", l.Key, "runner", co.id, "err", err)
				cancel(errLeaseLost)
				return
			case err != nil:
				if lctx.Err() == nil {
					r.log().Warn("lease renewal failed, trying again", "key", l.Key, "err", err)
				}
			default:
				l, lastOK = nl, time.Now()
			}
		}
	}()
	return lctx, func() bool {
		close(done)
		wg.Wait()
		lost := errors.Is(context.Cause(lctx), errLeaseLost)
		cancel(nil)
		return lost
	}
}

// settle records that account a stopped, through its fenced writes, once
// the store answers: it returns nil when the lease was still this
// runner's (the write went through) and an error matching
// state.ErrLeaseLost when the store refused the late write because
// another runner holds the account now.
func (r *Runner) settle(ctx context.Context, fs fencedStore, a AccountPlan) error {
	deadline := time.Now().Add(2*r.co.ttl + time.Minute)
	for {
		err := fs.SetAccountStatus(ctx, a.Source, "", string(StatusInterrupted), "")
		if err == nil || errors.Is(err, state.ErrLeaseLost) || time.Now().After(deadline) {
			return err
		}
		sleepCtx(ctx, r.co.poll())
		if ctx.Err() != nil {
			return err
		}
	}
}

// claimed works on one claimed account: its phases through the lease's
// fenced writes, its progress written every few seconds, then the release
// (finished, or open again when the run was interrupted). A lease lost on
// the way stops the account without a write and is not the account's
// failure: the runner that took it over continues it. The error is for a
// doomed run or a store that could not be written.
func (r *Runner) claimed(ctx context.Context, store state.Store, l state.Lease, a AccountPlan) error {
	co := r.co
	if l.PrevRunner != "" {
		r.log().Warn("account taken over from a runner whose lease ran out", "account", a.Source, "from", l.PrevRunner)
	} else {
		r.log().Info("account claimed", "account", a.Source, "runner", co.id)
	}
	lctx, stop := r.keep(ctx, store, l)
	fs := fencedStore{Store: store, cp: store.Fenced(l)}
	progDone := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progDone:
				return
			case <-t.C:
				items, bytes := co.progress(a.Source)
				_ = fs.SetProgress(lctx, a.Source, items, bytes)
			}
		}
	}()
	err := r.account(lctx, fs, a)
	close(progDone)
	pwg.Wait()
	lost := stop()
	sctx := context.WithoutCancel(ctx)
	if errors.Is(err, errAdminAuth) {
		_ = store.Release(sctx, l, false)
		return err
	}
	if lost || err != nil {
		// The lease ran out, the state could not be reached to renew it,
		// or a write failed: once the store answers, the account's last
		// write either goes through (the lease is still this runner's: the
		// account is given back for the next claim) or is refused, and
		// the runner that took the account over continues it.
		serr := r.settle(ctx, fs, a)
		switch {
		case errors.Is(serr, state.ErrLeaseLost):
			r.log().Warn("lease lost, taken over: late write refused", "account", a.Source, "runner", co.id, "err", serr)
			return nil
		case serr == nil:
			_ = store.Release(sctx, l, false)
			r.log().Warn("account given back for another claim", "account", a.Source, "err", err)
			if lost {
				return nil
			}
			return err
		default:
			r.log().Warn("account left to its lease", "account", a.Source, "err", errors.Join(err, serr))
			return serr
		}
	}
	items, bytes := co.progress(a.Source)
	_ = fs.SetProgress(sctx, a.Source, items, bytes)
	finished := true
	if row, ok, rerr := store.Account(sctx, a.Source); rerr == nil && ok && Status(row.Status) == StatusInterrupted {
		finished = false
	}
	if err := store.Release(sctx, l, finished); err != nil {
		if errors.Is(err, state.ErrLeaseLost) {
			r.log().Warn("lease lost, taken over", "account", a.Source, "runner", co.id, "err", err)
			return nil
		}
		return fmt.Errorf("migrate: release %s: %w", a.Source, err)
	}
	return nil
}

func (co *coord) progress(account string) (items, bytes int64) {
	co.progMu.Lock()
	defer co.progMu.Unlock()
	for _, v := range co.prog[account] {
		items += v[0]
		bytes += v[1]
	}
	return items, bytes
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
