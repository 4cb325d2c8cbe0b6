package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"sort"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
)

// StoreView answers the dashboard from a state store alone: what every
// runner sharing the store has recorded. It reads, never writes; answers
// are cached for a second (longer when the store is slow to read) so that
// many open pages cost one read.
type StoreView struct {
	// Plan, when set, names the run and gives the budgets.
	Plan *migrate.Plan

	read func(ctx context.Context, fn func(state.Store) error) error

	mu      sync.Mutex
	at      time.Time
	ttl     time.Duration
	status  *Status
	rows    [][]any
	version int64
	digest  string
}

// NewStoreView reads st.
func NewStoreView(st state.Store, plan *migrate.Plan) *StoreView {
	v := &StoreView{Plan: plan}
	v.read = func(ctx context.Context, fn func(state.Store) error) error { return fn(st) }
	return v
}

// NewStoreViewPath reads the state file at path, opening it read-only for
// each read (so that it sees runs that start later, and never holds the
// file open in between).
func NewStoreViewPath(path string, plan *migrate.Plan) *StoreView {
	v := &StoreView{Plan: plan}
	v.read = func(ctx context.Context, fn func(state.Store) error) error { return readStore(ctx, path, fn) }
	return v
}

// readStore opens path read-only for fn: a state file, or a shared
// PostgreSQL state's URL, so that the counts are every runner's.
func readStore(ctx context.Context, path string, fn func(state.Store) error) error {
	var st state.Store
	var err error
	if state.IsURL(path) {
		st, err = state.OpenURLReadOnly(ctx, path)
	} else {
		st, err = state.OpenReadOnly(ctx, path)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// StoreCounts returns a function counting accounts per state in the state
// file at path, read-only (nil counts while the file does not exist yet).
// Answers are cached for a second.
func StoreCounts(path string) func(context.Context) (map[string]int, error) {
	var mu sync.Mutex
	var cached map[string]int
	var at time.Time
	return func(ctx context.Context) (map[string]int, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil && time.Since(at) < time.Second {
			return cached, nil
		}
		var c map[string]int
		err := readStore(ctx, path, func(st state.Store) (err error) {
			c, err = countAccounts(ctx, st)
			return err
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no run has created it yet
		}
		if err != nil {
			return nil, err
		}
		cached, at = c, time.Now()
		return c, nil
	}
}

func countAccounts(ctx context.Context, st state.Store) (map[string]int, error) {
	rows, err := st.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	c := map[string]int{}
	for _, r := range rows {
		c[r.Status]++
	}
	return c, nil
}

// Counts returns the accounts per state.
func (v *StoreView) Counts(ctx context.Context) (c map[string]int, err error) {
	err = v.read(ctx, func(st state.Store) (err error) {
		c, err = countAccounts(ctx, st)
		return err
	})
	return c, err
}

// Status implements Source.
func (v *StoreView) Status(ctx context.Context) (*Status, error) {
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st := *v.status
	st.Now = time.Now()
	return &st, nil
}

// Accounts implements Source.
func (v *StoreView) Accounts(ctx context.Context, version int64) (*Accounts, error) {
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := &Accounts{Version: v.version, Columns: accountColumns}
	if version != v.version || version == 0 {
		out.Rows = v.rows
	}
	return out, nil
}

// refresh reads the store again when the cache is older than a second.
func (v *StoreView) refresh(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.status != nil && time.Since(v.at) < v.ttl {
		return nil
	}
	began := time.Now()
	var accts []state.AccountRow
	var phases []state.PhaseRow
	var runs []state.RunInfo
	err := v.read(ctx, func(st state.Store) (err error) {
		if accts, err = st.Accounts(ctx); err != nil {
			return err
		}
		if phases, err = st.Phases(ctx); err != nil {
			return err
		}
		runs, err = st.Runs(ctx)
		return err
	})
	if err != nil {
		return err
	}
	status := &Status{Source: "store", CountsFrom: "store", Accounts: map[string]int{}, Total: len(accts), ETA: -1}
	if v.Plan != nil {
		status.Plan = v.Plan.Name
	}
	if len(runs) > 0 {
		last := runs[len(runs)-1]
		status.RunID, status.Started, status.Finished, status.Outcome = last.ID, last.Started, last.Finished, last.Outcome
	}
	byAcct := map[string]*row{}
	rows := make([]*row, 0, len(accts))
	for _, a := range accts {
		r := &row{source: a.Source, status: a.Status, phase: a.Phase, size: a.Size}
		byAcct[a.Source] = r
		rows = append(rows, r)
		status.Accounts[a.Status]++
		status.Size += a.Size
		if a.Status != string(migrate.StatusPending) && a.Status != string(migrate.StatusRunning) {
			status.SizeDone += a.Size
		}
		if a.Status == string(migrate.StatusFailed) && a.Error != "" {
			status.Problems = append(status.Problems, Problem{Time: a.Updated, Account: a.Source, Phase: a.Phase, Reason: a.Error})
		}
	}
	type done struct {
		at           time.Time
		items, bytes int64
	}
	var finished []done
	globals := map[string]PhaseStatus{}
	active, doneN := map[migrate.Phase]int{}, map[migrate.Phase]int{}
	for _, p := range phases {
		var res migrate.PhaseResult
		if p.Detail != "" {
			_ = json.Unmarshal([]byte(p.Detail), &res) // a row without a readable result counts as started only
		}
		if p.Account == state.GlobalAccount {
			globals[p.Phase] = PhaseStatus{Phase: p.Phase, Global: true, Status: p.Status, Started: res.Started, Finished: res.Finished}
			if p.Status == string(migrate.StatusFailed) {
				status.Problems = append(status.Problems, Problem{Time: p.Updated, Phase: p.Phase, Reason: res.Reason})
			}
			continue
		}
		ph := migrate.Phase(p.Phase)
		if p.Status == string(migrate.StatusRunning) {
			active[ph]++
		} else if p.Status != string(migrate.StatusPending) {
			doneN[ph]++
		}
		r := byAcct[p.Account]
		if r == nil {
			continue
		}
		if !res.Started.IsZero() && !res.Finished.IsZero() {
			r.seconds += res.Finished.Sub(res.Started).Seconds()
		}
		r.problems += res.Skipped + res.Failed
		if ph != migrate.PhaseVerify {
			r.items += res.Copied + res.Existing
			r.bytes += res.Bytes
			status.Items += res.Copied + res.Existing
			status.Bytes += res.Bytes
			if !res.Finished.IsZero() {
				finished = append(finished, done{res.Finished, res.Copied + res.Existing, res.Bytes})
			}
		}
		for _, pr := range res.Problems {
			status.Problems = append(status.Problems, Problem{Time: res.Finished, Account: p.Account, Phase: p.Phase, Item: pr.Item, Skipped: pr.Skipped, Reason: pr.Reason})
		}
		if p.Status == string(migrate.StatusFailed) {
			r.problems++
		}
		if p.Status == string(migrate.StatusFailed) && res.Reason != "" {
			status.Problems = append(status.Problems, Problem{Time: p.Updated, Account: p.Account, Phase: p.Phase, Reason: res.Reason})
		}
	}
	phaseOrder := migrate.AllPhases
	if v.Plan != nil {
		phaseOrder = v.Plan.EffectivePhases()
	}
	for _, ph := range phaseOrder {
		if ph.IsAccountPhase() {
			status.Phases = append(status.Phases, PhaseStatus{Phase: string(ph), Active: active[ph], Done: doneN[ph]})
		} else if g, ok := globals[string(ph)]; ok {
			status.Phases = append(status.Phases, g)
		} else if v.Plan != nil {
			status.Phases = append(status.Phases, PhaseStatus{Phase: string(ph), Global: true, Status: string(migrate.StatusPending)})
		}
	}
	// Throughput over time from the phases' finish times.
	sort.Slice(finished, func(i, j int) bool { return finished[i].at.Before(finished[j].at) })
	if len(finished) > 0 {
		t0 := status.Started
		if t0.IsZero() || finished[0].at.Before(t0) {
			t0 = finished[0].at
		}
		var items, bytes int64
		step := max(1, len(finished)/maxSamples)
		for i, f := range finished {
			items += f.items
			bytes += f.bytes
			if i%step == 0 || i == len(finished)-1 {
				status.Throughput = append(status.Throughput, Sample{Seconds: f.at.Sub(t0).Seconds(), Items: items, Bytes: bytes})
			}
		}
	}
	if status.Finished.IsZero() && !status.Started.IsZero() {
		status.ETA = eta(time.Now(), status.Started, time.Time{}, status.Size, status.SizeDone, status.Total,
			status.Total-status.Accounts[string(migrate.StatusPending)]-status.Accounts[string(migrate.StatusRunning)])
	} else if !status.Finished.IsZero() {
		status.ETA = 0
	}
	status.Load = planLoad(v.Plan, active, nil)
	sort.SliceStable(status.Problems, func(i, j int) bool { return status.Problems[i].Time.After(status.Problems[j].Time) })
	status.ProblemsTotal = int64(len(status.Problems))
	if len(status.Problems) > maxProblems {
		status.Problems = status.Problems[:maxProblems]
	}
	cells := make([][]any, len(rows))
	h := newDigest()
	for i, r := range rows {
		cells[i] = r.cells()
		h.add(cells[i])
	}
	if d := h.sum(); d != v.digest {
		v.digest = d
		v.version++
	}
	status.AccountsVersion = v.version
	v.status, v.rows, v.at = status, cells, time.Now()
	// A large store costs more to read: keep the answer for at least five
	// times the read, so that open pages never keep the store busy.
	v.ttl = max(time.Second, 5*time.Since(began))
	return nil
}
