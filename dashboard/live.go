package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/migrate"
)

// Live follows one runner through its events: give its OnEvent to
// migrate.Runner (next to the progress display). It feeds the Metrics and
// answers the dashboard's API.
type Live struct {
	plan    *migrate.Plan
	metrics *Metrics
	counts  func(context.Context) (map[string]int, error)
	servers *servers

	mu            sync.Mutex
	runID         int64
	started       time.Time
	finished      time.Time
	outcome       string
	phases        []migrate.Phase
	globals       map[migrate.Phase]*PhaseStatus
	active        map[migrate.Phase]int
	done          map[migrate.Phase]int
	rows          map[string]*liveRow
	order         []*liveRow
	items, bytes  int64
	samples       []Sample
	lastSample    time.Time
	problems      []Problem // oldest first, at most maxProblems
	problemsTotal int64
	version       int64
}

type liveRow struct {
	row
	baseItems, baseBytes int64 // from finished phases
	curItems, curBytes   int64 // of the phase in flight
	baseSeconds          float64
}

// NewLive returns a view of a run of plan (used for names and budgets; nil
// is allowed). m may be nil. counts, when not nil, gives the accounts per
// state from the shared state store; else they come from the events.
func NewLive(plan *migrate.Plan, m *Metrics, counts func(context.Context) (map[string]int, error)) *Live {
	l := &Live{plan: plan, metrics: m, counts: counts, servers: newServers(m),
		globals: map[migrate.Phase]*PhaseStatus{}, active: map[migrate.Phase]int{}, done: map[migrate.Phase]int{},
		rows: map[string]*liveRow{}}
	if plan != nil {
		// The in-process IMAP connection budget (imapcopy.ConnBudget):
		// connections per server, whatever the side.
		n := plan.Concurrency.Connections()
		for _, addr := range []string{plan.Source.IMAP.Address, plan.Destination.IMAP.Address} {
			if addr != "" {
				l.servers.Budget(addr, n)
			}
		}
	}
	return l
}

// Context returns ctx carrying the live view's observer of server
// operations: run the runner with it,
//
//	rep, err := r.Run(live.Context(ctx))
//
// and the server table and the per-server metrics follow the connections,
// operations, retries and throttle answers of every server the run
// reaches (the leaf packages report to an observer the context carries,
// as net/http/httptrace hooks travel).
func (l *Live) Context(ctx context.Context) context.Context { return obs.With(ctx, l.servers) }

// OnEvent consumes one runner event. It is safe for concurrent use and
// returns quickly.
func (l *Live) OnEvent(ev migrate.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dItems, dBytes int64
	now := time.Now()
	switch e := ev.(type) {
	case migrate.RunStarted:
		l.runID, l.started, l.phases = e.RunID, e.Time, e.Phases
		l.finished, l.outcome = time.Time{}, ""
		for _, a := range e.Accounts {
			r := l.rows[a.Source]
			if r == nil {
				r = &liveRow{row: row{source: a.Source}}
				l.rows[a.Source] = r
				l.order = append(l.order, r)
			}
			r.size, r.status = a.Size, string(migrate.StatusPending)
		}
		l.version++
	case migrate.PhaseStarted:
		if e.Account == "" {
			l.globals[e.Phase] = &PhaseStatus{Phase: string(e.Phase), Global: true, Status: string(migrate.StatusRunning), Started: e.Time}
			break
		}
		r := l.row(e.Account)
		r.phase, r.status, r.started = string(e.Phase), string(migrate.StatusRunning), e.Time
		r.curItems, r.curBytes = 0, 0
		l.active[e.Phase]++
		l.version++
	case migrate.Progress:
		if e.Phase == migrate.PhaseVerify || e.Account == "" {
			break // items are messages and objects; verification and global phases copy none
		}
		r := l.row(e.Account)
		dItems, dBytes = max(e.Items-r.curItems, 0), max(e.Bytes-r.curBytes, 0)
		r.curItems, r.curBytes = max(e.Items, r.curItems), max(e.Bytes, r.curBytes)
		r.items, r.bytes = r.baseItems+r.curItems, r.baseBytes+r.curBytes
		l.items += dItems
		l.bytes += dBytes
		l.version++
	case migrate.ItemProblem:
		l.addProblem(Problem{Time: now, Account: e.Account, Phase: string(e.Phase), Item: e.Item, Skipped: e.Skipped, Reason: e.Reason})
		if e.Account != "" {
			l.row(e.Account).problems++
			l.version++
		}
	case migrate.PhaseFinished:
		res := e.Result
		if e.Account == "" {
			g := l.globals[res.Phase]
			if g == nil {
				g = &PhaseStatus{Phase: string(res.Phase), Global: true}
				l.globals[res.Phase] = g
			}
			g.Status, g.Started, g.Finished = string(res.Status), res.Started, res.Finished
			if res.Status == migrate.StatusFailed {
				l.addProblem(Problem{Time: now, Phase: string(res.Phase), Reason: res.Reason})
			}
			break
		}
		r := l.row(e.Account)
		if l.active[res.Phase] > 0 {
			l.active[res.Phase]--
		}
		l.done[res.Phase]++
		if res.Phase != migrate.PhaseVerify {
			// The result's counts are authoritative; progress may lag.
			n := res.Copied + res.Existing
			if n > r.curItems {
				dItems = n - r.curItems
				l.items += dItems
			}
			if res.Bytes > r.curBytes {
				dBytes = res.Bytes - r.curBytes
				l.bytes += dBytes
			}
			r.baseItems += max(n, r.curItems)
			r.baseBytes += max(res.Bytes, r.curBytes)
		}
		r.curItems, r.curBytes = 0, 0
		r.items, r.bytes = r.baseItems, r.baseBytes
		if !res.Started.IsZero() && !res.Finished.IsZero() {
			r.baseSeconds += res.Finished.Sub(res.Started).Seconds()
		}
		r.seconds, r.started = r.baseSeconds, time.Time{}
		if res.Status == migrate.StatusFailed || res.Status == migrate.StatusInterrupted {
			l.addProblem(Problem{Time: now, Account: e.Account, Phase: string(res.Phase), Reason: res.Reason})
			r.problems++
		}
		l.version++
	case migrate.AccountFinished:
		r := l.row(e.Account)
		r.status, r.started = string(e.Status), time.Time{}
		l.version++
	case migrate.RunFinished:
		l.finished = now
		if e.Report != nil {
			l.outcome = string(e.Report.Outcome)
			if !e.Report.Finished.IsZero() {
				l.finished = e.Report.Finished
			}
		}
		l.sample(now, true)
	}
	if l.metrics != nil {
		l.metrics.observe(ev, dItems, dBytes)
	}
	l.sample(now, false)
}

func (l *Live) row(account string) *liveRow {
	r := l.rows[account]
	if r == nil {
		r = &liveRow{row: row{source: account, status: string(migrate.StatusPending)}}
		l.rows[account] = r
		l.order = append(l.order, r)
	}
	return r
}

func (l *Live) addProblem(p Problem) {
	l.problemsTotal++
	if len(l.problems) >= maxProblems {
		copy(l.problems, l.problems[1:])
		l.problems = l.problems[:len(l.problems)-1]
	}
	l.problems = append(l.problems, p)
}

// sample records cumulative progress at most once a second (or now, when
// force is set), thinning old samples to keep maxSamples.
func (l *Live) sample(now time.Time, force bool) {
	if l.started.IsZero() || (!force && now.Sub(l.lastSample) < time.Second) {
		return
	}
	l.lastSample = now
	l.samples = append(l.samples, Sample{Seconds: now.Sub(l.started).Seconds(), Items: l.items, Bytes: l.bytes})
	if len(l.samples) > maxSamples {
		thin := l.samples[:0]
		for i, s := range l.samples {
			if i%2 == 0 || i == len(l.samples)-1 {
				thin = append(thin, s)
			}
		}
		l.samples = thin
	}
}

// Status implements Source.
func (l *Live) Status(ctx context.Context) (*Status, error) {
	var counts map[string]int
	var countsErr error
	if l.counts != nil {
		counts, countsErr = l.counts(ctx)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	st := &Status{Source: "run", RunID: l.runID, Started: l.started, Finished: l.finished, Outcome: l.outcome, Now: now,
		Items: l.items, Bytes: l.bytes, Total: len(l.order), ProblemsTotal: l.problemsTotal, AccountsVersion: l.version}
	if l.plan != nil {
		st.Plan = l.plan.Name
	}
	for _, ph := range l.phases {
		if !ph.IsAccountPhase() {
			if g := l.globals[ph]; g != nil {
				st.Phases = append(st.Phases, *g)
			} else {
				st.Phases = append(st.Phases, PhaseStatus{Phase: string(ph), Global: true, Status: string(migrate.StatusPending)})
			}
			continue
		}
		st.Phases = append(st.Phases, PhaseStatus{Phase: string(ph), Active: l.active[ph], Done: l.done[ph]})
	}
	own := map[string]int{}
	for _, r := range l.order {
		own[r.status]++
		st.Size += r.size
		if r.status != string(migrate.StatusPending) && r.status != string(migrate.StatusRunning) {
			st.SizeDone += r.size
		}
	}
	st.Accounts, st.CountsFrom = own, "run"
	if counts != nil && countsErr == nil && len(counts) > 0 {
		st.Accounts, st.CountsFrom = counts, "store"
	}
	st.Throughput = append(st.Throughput, l.samples...)
	if l.finished.IsZero() && !l.started.IsZero() {
		st.Throughput = append(st.Throughput, Sample{Seconds: now.Sub(l.started).Seconds(), Items: l.items, Bytes: l.bytes})
	}
	finishedAccts := st.Total - own[string(migrate.StatusPending)] - own[string(migrate.StatusRunning)]
	st.ETA = eta(now, l.started, l.finished, st.Size, max(st.SizeDone, l.bytes), st.Total, finishedAccts)
	st.Load = planLoad(l.plan, l.active, l.servers)
	st.Problems = make([]Problem, 0, len(l.problems))
	for i := len(l.problems) - 1; i >= 0; i-- {
		st.Problems = append(st.Problems, l.problems[i])
	}
	return st, nil
}

// Accounts implements Source: nil rows when version is still current.
func (l *Live) Accounts(_ context.Context, version int64) (*Accounts, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := &Accounts{Version: l.version, Columns: accountColumns}
	if version == l.version && version != 0 {
		return out, nil
	}
	now := time.Now()
	out.Rows = make([][]any, 0, len(l.order))
	for _, r := range l.order {
		c := r.row
		if !r.started.IsZero() {
			c.seconds = r.baseSeconds + now.Sub(r.started).Seconds()
		}
		out.Rows = append(out.Rows, c.cells())
	}
	return out, nil
}

// eta estimates the seconds left from the share done so far: by size when
// the accounts' sizes are known, else by accounts. -1 when unknown.
func eta(now, started, finished time.Time, size, sizeDone int64, total, doneAccts int) float64 {
	if !finished.IsZero() {
		return 0
	}
	if started.IsZero() {
		return -1
	}
	el := now.Sub(started).Seconds()
	var frac float64
	switch {
	case size > 0:
		frac = float64(min(sizeDone, size)) / float64(size)
	case total > 0:
		frac = float64(doneAccts) / float64(total)
	}
	if frac <= 0 || el <= 0 {
		return -1
	}
	return el * (1 - frac) / frac
}
