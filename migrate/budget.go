package migrate

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/state"
)

// Budget keys: the names under which the plan's limits section is kept in
// the state store, and which `migrate limits set KEY N` changes while
// runners work.
const (
	// BudgetSourceIMAP caps the IMAP connections to the source server.
	BudgetSourceIMAP = "source.imap"
	// BudgetDestinationIMAP caps the IMAP connections to the destination
	// server.
	BudgetDestinationIMAP = "destination.imap"
	// BudgetHTTPPrefix + host caps the concurrent HTTP requests to host.
	BudgetHTTPPrefix = "http:"
	// BudgetHTTPRatePrefix + host is the HTTP requests per second to host,
	// for all runners together: each runner sends its share, the budget
	// divided by the live runners (BudgetRunners).
	BudgetHTTPRatePrefix = "http_rate:"
	// BudgetRunners has one slot per live runner and no cap: its use is
	// the number of runners that share the state.
	BudgetRunners = "runners"
)

// budgets enforce the plan's limits across every runner of a state: each
// IMAP connection and each capped HTTP request holds one slot of its
// server's budget in the store (state.Coordinator.AcquireSlot), whose
// lease dies with the runner. A budget changed in the store (SetLimit, the
// `migrate limits` command) applies to the next acquisition; the cached
// view used for the HTTP caps and rates is read again every refresh.
type budgets struct {
	storeMu sync.RWMutex
	store   state.Coordinator // nil until the state is open: no cap yet
	runner  string
	ttl     time.Duration
	poll    time.Duration
	// imap maps a server's "host:port" to its budget key.
	imap map[string]string

	// early caps the connections made before the state is open (the
	// checks and look-ups of a state file's runner) at the plan's budgets,
	// inside the process.
	early map[string]chan struct{}

	mu     sync.Mutex
	held   map[string][]state.Slot
	limits map[string]int // from the store, refreshed
	live   int            // runners sharing the state
	next   map[string]time.Time
}

// budgetPoll is how often a runner waiting for a full budget asks again,
// and how often the cached budgets are read again.
const budgetPoll = 250 * time.Millisecond

func newBudgets(store state.Coordinator, runner string, ttl time.Duration, p *Plan) *budgets {
	g := &budgets{store: store, runner: runner, ttl: ttl, poll: budgetPoll, imap: map[string]string{},
		held: map[string][]state.Slot{}, limits: map[string]int{}, live: 1, next: map[string]time.Time{},
		early: map[string]chan struct{}{}}
	for k, n := range PlanBudgets(p) {
		g.early[k] = make(chan struct{}, n)
	}
	if a := p.Destination.IMAP.Address; a != "" {
		g.imap[a] = BudgetDestinationIMAP
	}
	if a := p.Source.IMAP.Address; a != "" {
		g.imap[a] = BudgetSourceIMAP
	}
	return g
}

// setStore binds the budgets to the state's store.
func (g *budgets) setStore(s state.Coordinator) {
	g.storeMu.Lock()
	g.store = s
	g.storeMu.Unlock()
}

func (g *budgets) st() state.Coordinator {
	g.storeMu.RLock()
	defer g.storeMu.RUnlock()
	return g.store
}

// PlanBudgets returns the budgets the plan's limits section sets, by key.
func PlanBudgets(p *Plan) map[string]int {
	m := map[string]int{}
	if p.Limits.SourceIMAP > 0 {
		m[BudgetSourceIMAP] = p.Limits.SourceIMAP
	}
	if p.Limits.DestinationIMAP > 0 {
		m[BudgetDestinationIMAP] = p.Limits.DestinationIMAP
	}
	for _, host := range p.httpHosts() {
		if p.Limits.HTTPConnections > 0 {
			m[BudgetHTTPPrefix+host] = p.Limits.HTTPConnections
		}
	}
	return m
}

// httpHosts lists the hosts of the plan's HTTP endpoints.
func (p *Plan) httpHosts() []string {
	var hosts []string
	seen := map[string]bool{}
	for _, u := range []string{p.Source.Admin.URL, p.Source.DAV.URL, p.Destination.Admin.URL, p.Destination.DAV.URL} {
		if u == "" {
			continue
		}
		rest, ok := strings.CutPrefix(u, "https://")
		if !ok {
			rest, _ = strings.CutPrefix(u, "http://")
		}
		host, _, _ := strings.Cut(rest, "/")
		k := pace.Key(host)
		if k != "" && !seen[k] {
			seen[k] = true
			hosts = append(hosts, k)
		}
	}
	return hosts
}

// seed writes the plan's budgets into the store. A shared store keeps a
// budget that is already there (an administrator may have changed it with
// `migrate limits` while runners work; a runner that joins later must not
// undo that); a state file of one runner takes the plan's values.
func (g *budgets) seed(ctx context.Context, p *Plan, shared bool) error {
	have := map[string]bool{}
	if shared {
		ls, err := g.st().Limits(ctx)
		if err != nil {
			return fmt.Errorf("migrate: read the budgets: %w", err)
		}
		for _, l := range ls {
			if l.Max > 0 {
				have[l.Key] = true
			}
		}
	}
	want := PlanBudgets(p)
	if shared && p.Limits.HTTPRate > 0 {
		// limits.http_rate holds for all runners together: each sends
		// its share.
		for _, host := range p.httpHosts() {
			want[BudgetHTTPRatePrefix+host] = max(1, int(p.Limits.HTTPRate))
		}
	}
	for k, n := range want {
		if have[k] {
			continue
		}
		if err := g.st().SetLimit(ctx, k, n); err != nil {
			return fmt.Errorf("migrate: set budget %s: %w", k, err)
		}
	}
	return nil
}

// refresh reads the budgets and the number of live runners again.
func (g *budgets) refresh(ctx context.Context) {
	st := g.st()
	if st == nil {
		return
	}
	ls, err := st.Limits(ctx)
	if err != nil {
		return
	}
	m := map[string]int{}
	live := 1
	for _, l := range ls {
		if l.Max > 0 {
			m[l.Key] = l.Max
		}
		if l.Key == BudgetRunners && l.InUse > 0 {
			live = l.InUse
		}
	}
	g.mu.Lock()
	g.limits, g.live = m, live
	servers := make(map[string]int, len(g.imap))
	for addr, key := range g.imap {
		servers[addr] = m[key]
	}
	g.mu.Unlock()
	// The dashboard's budget gauge shows the budget shared by all runners,
	// as the store holds it now; without one it keeps this runner's own
	// connection limit.
	o := obs.From(ctx)
	for addr, n := range servers {
		if n > 0 {
			o.Budget(addr, n)
		}
	}
}

func (g *budgets) key(addr string) string {
	if k, ok := g.imap[addr]; ok {
		return k
	}
	return "imap:" + addr
}

func (g *budgets) push(s state.Slot) {
	g.mu.Lock()
	g.held[s.Key] = append(g.held[s.Key], s)
	g.mu.Unlock()
}

func (g *budgets) take(key string) (state.Slot, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.held[key]
	if len(h) == 0 {
		return state.Slot{}, false
	}
	s := h[len(h)-1]
	g.held[key] = h[:len(h)-1]
	return s, true
}

// earlyToken marks a slot of the in-process cap taken before the state was
// open.
const earlyToken = -1

func (g *budgets) acquireKey(ctx context.Context, key string) error {
	st := g.st()
	if st == nil {
		sem, ok := g.early[key]
		if !ok {
			return nil
		}
		select {
		case sem <- struct{}{}:
			g.push(state.Slot{Key: key, Token: earlyToken})
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s, err := state.WaitSlot(ctx, st, key, g.runner, g.ttl, g.poll)
	if err != nil {
		return fmt.Errorf("migrate: budget %s: %w", key, err)
	}
	g.push(s)
	return nil
}

// releaseGrace is how long an IMAP connection's slot is kept after the
// connection closed: the server sees the close a moment after the client
// made it, and counts the connection until then.
const releaseGrace = 250 * time.Millisecond

// releaseKey gives one slot of key back, after grace.
func (g *budgets) releaseKey(key string, grace time.Duration) {
	s, ok := g.take(key)
	if ok && s.Token == earlyToken {
		sem := g.early[key]
		time.AfterFunc(grace, func() { <-sem })
		return
	}
	st := g.st()
	if !ok || st == nil {
		return
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A slot that cannot be given back runs out with its lease.
		_ = st.ReleaseSlot(ctx, s)
	}
	if grace > 0 {
		time.AfterFunc(grace, release)
		return
	}
	release()
}

// Acquire implements imapcopy.ConnGate: it waits for a slot of the IMAP
// server's budget.
func (g *budgets) Acquire(ctx context.Context, addr string) error {
	return g.acquireKey(ctx, g.key(addr))
}

// TryAcquire implements imapcopy.ConnGate.
func (g *budgets) TryAcquire(ctx context.Context, addr string) bool {
	st := g.st()
	if st == nil {
		sem, ok := g.early[g.key(addr)]
		if !ok {
			return true
		}
		select {
		case sem <- struct{}{}:
			g.push(state.Slot{Key: g.key(addr), Token: earlyToken})
			return true
		default:
			return false
		}
	}
	s, ok, err := st.AcquireSlot(ctx, g.key(addr), g.runner, g.ttl)
	if err != nil || !ok {
		return false
	}
	g.push(s)
	return true
}

// Release implements imapcopy.ConnGate.
func (g *budgets) Release(addr string) { g.releaseKey(g.key(addr), releaseGrace) }

// dial wraps one IMAP login made outside a Copier (the account look-ups
// and the login check) in the server's budget.
func (g *budgets) dial(ctx context.Context, addr string, f func() error) error {
	if g == nil {
		return f()
	}
	if err := g.Acquire(ctx, addr); err != nil {
		return err
	}
	defer g.Release(addr)
	return f()
}

// budgetTransport caps the HTTP requests per host: a request to a host with
// a connection budget holds one of its slots until its answer's body is
// closed, and a host with a rate budget is paced at this runner's share of
// it. Hosts without a budget pass straight through.
type budgetTransport struct {
	g    *budgets
	base http.RoundTripper
}

func (t budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := pace.Key(req.URL.Host)
	t.g.mu.Lock()
	conns := t.g.limits[BudgetHTTPPrefix+host]
	rate := t.g.limits[BudgetHTTPRatePrefix+host]
	live := t.g.live
	var wait time.Duration
	if rate > 0 {
		// This runner's share of the host's rate: the budget divided by
		// the runners alive now.
		gap := time.Duration(float64(time.Second) * float64(live) / float64(rate))
		now := time.Now()
		next := t.g.next[host]
		if next.Before(now) {
			next = now
		}
		wait = next.Sub(now)
		t.g.next[host] = next.Add(gap)
	}
	t.g.mu.Unlock()
	if wait > 0 {
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-req.Context().Done():
			tm.Stop()
			return nil, req.Context().Err()
		}
	}
	if conns <= 0 {
		return t.base.RoundTrip(req)
	}
	key := BudgetHTTPPrefix + host
	if err := t.g.acquireKey(req.Context(), key); err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		t.g.releaseKey(key, 0)
		return resp, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { t.g.releaseKey(key, 0) }}
	return resp, nil
}

type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
