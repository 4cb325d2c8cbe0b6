package migrate

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/state"
)

// TestBudgetTransportSQLite: with one runner on a state file, the HTTP
// budgets apply inside the process: a host's connection budget caps the
// requests in flight, a lowered budget applies to the next requests
// without a restart, and a rate budget spaces the requests.
func TestBudgetTransportSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		inFlight.Add(-1)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host := u.Hostname()

	p := &Plan{Limits: Limits{HTTPConnections: 3}, Destination: Endpoint{DAV: DAVEndpoint{URL: srv.URL + "/dav/"}}}
	g := newBudgets(st, "runner-1", 10*time.Second, p)
	if err := g.seed(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	g.refresh(ctx)
	hc := &http.Client{Transport: budgetTransport{g: g, base: http.DefaultTransport}}
	burst := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := hc.Get(srv.URL + "/dav/x")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	burst(24)
	if got := peak.Load(); got > 3 || got < 2 {
		t.Errorf("peak concurrent requests %d with a budget of 3", got)
	}
	t.Logf("peak %d requests in flight with a budget of 3", peak.Load())

	// Lowered while the runner works: the next requests keep to it.
	if err := st.SetLimit(ctx, BudgetHTTPPrefix+host, 1); err != nil {
		t.Fatal(err)
	}
	g.refresh(ctx)
	peak.Store(0)
	burst(12)
	if got := peak.Load(); got != 1 {
		t.Errorf("peak concurrent requests %d after lowering the budget to 1", got)
	}

	// A rate budget: 20 requests per second for this one runner.
	if err := st.SetLimit(ctx, BudgetHTTPPrefix+host, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.SetLimit(ctx, BudgetHTTPRatePrefix+host, 20); err != nil {
		t.Fatal(err)
	}
	g.refresh(ctx)
	start := time.Now()
	burst(11)
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Errorf("11 requests at 20/s took %s, want at least 0.5 s", d)
	}
	ls, err := st.Limits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.InUse != 0 {
			t.Errorf("budget %s: %d slots still held after every request ended", l.Key, l.InUse)
		}
	}
}

// budgetSpy records the budgets reported to the run's observer.
type budgetSpy struct {
	obs.Nop
	mu  sync.Mutex
	got map[string]int
}

func (b *budgetSpy) Budget(server string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got[server] = n
}

// TestBudgetGaugeFollowsStore: the budget the dashboard shows for a server
// is the one the store holds for all runners, and a live change reaches it
// at the next refresh; a server without a global budget is not reported.
func TestBudgetGaugeFollowsStore(t *testing.T) {
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spy := &budgetSpy{got: map[string]int{}}
	ctx := obs.With(context.Background(), spy)
	p := &Plan{
		Source:      Endpoint{IMAP: IMAPEndpoint{Address: "zimbra.example.com:993"}},
		Destination: Endpoint{IMAP: IMAPEndpoint{Address: "carbonio.example.com:993"}},
		Limits:      Limits{SourceIMAP: 4},
	}
	g := newBudgets(st, "runner-1", 10*time.Second, p)
	if err := g.seed(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	g.refresh(ctx)
	if n, ok := spy.got["zimbra.example.com:993"]; !ok || n != 4 {
		t.Fatalf("source budget reported %d (%v), want 4", n, ok)
	}
	if n, ok := spy.got["carbonio.example.com:993"]; ok {
		t.Fatalf("destination has no global budget but %d was reported", n)
	}
	if err := st.SetLimit(ctx, BudgetSourceIMAP, 2); err != nil {
		t.Fatal(err)
	}
	g.refresh(ctx)
	if n := spy.got["zimbra.example.com:993"]; n != 2 {
		t.Fatalf("after a live change the source budget reported is %d, want 2", n)
	}
}
