package dashboard

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
	"github.com/zxmigrate/zxmigrate/secret"
)

// sentinelToken is a listener token that must never show in what the
// listener serves.
const sentinelToken = "sentinel-dashboard-token-7f3a9c"

// failingTokens refuses the DAV tokens of every n-th account, so that its
// calendar and contact phases fail and the account ends failed.
type failingTokens struct {
	next  migrate.TokenSource
	every int
	accts []string
}

func (f failingTokens) UserToken(ctx context.Context, account string) (secret.Secret, error) {
	for i, a := range f.accts {
		if a == account && (i+1)%f.every == 0 {
			return secret.Secret{}, errors.New("seeded failure: no DAV token for this account")
		}
	}
	return f.next.UserToken(ctx, account)
}

// runEnv is a demo environment with the dashboard listening on it.
type runEnv struct {
	env  *migratetest.Env
	r    *migrate.Runner
	live *Live
	m    *Metrics
	srv  *Server
	stop func()
}

// startEnv seeds accounts and serves the dashboard of a runner not yet
// started. failEvery > 0 seeds failed accounts.
func startEnv(t *testing.T, accounts, failEvery int, o Options) *runEnv {
	t.Helper()
	env, err := migratetest.Start(migratetest.Options{Accounts: accounts, Dir: t.TempDir(), Events: 2, Contacts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	r := env.Runner()
	if failEvery > 0 {
		r.Hooks.SourceTokens = failingTokens{next: r.Hooks.SourceTokens, every: failEvery, accts: env.Accounts}
	}
	counts := StoreCounts(env.Plan.StatePath())
	m := NewMetrics(counts)
	live := NewLive(env.Plan, m, counts)
	r.OnEvent = live.OnEvent
	srv, err := Listen(o, Handler(live, m))
	if err != nil {
		t.Fatal(err)
	}
	re := &runEnv{env: env, r: r, live: live, m: m, srv: srv, stop: func() { srv.Close() }}
	t.Cleanup(re.stop)
	return re
}

// run starts the runner; the channel yields its report.
func (re *runEnv) run(t *testing.T) <-chan *migrate.Report {
	ch := make(chan *migrate.Report, 1)
	go func() {
		rep, err := re.r.Run(re.live.Context(context.Background()))
		if err != nil {
			t.Errorf("run: %v", err)
		}
		ch <- rep
	}()
	return ch
}

func get(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, http.DefaultClient, url+"metrics", token)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mf
}

// value returns the sample of family name whose labels include want (sum
// over the matching series).
func value(mf map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := mf[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// TestMetricsDuringRun scrapes /metrics while a demo domain migrates,
// checks that the counters move, that they match the final report, and
// that no label value is an account address or a secret.
func TestMetricsDuringRun(t *testing.T) {
	re := startEnv(t, 12, 4, Options{Addr: "127.0.0.1:0"})
	url := re.srv.URL()
	done := re.run(t)
	var seen []float64 // progress items, distinct successive values
	var rep *migrate.Report
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case rep = <-done:
			break loop
		case <-tick.C:
			v := value(scrape(t, url, ""), "zxmigrate_progress_items_total", nil)
			if len(seen) == 0 || v != seen[len(seen)-1] {
				if len(seen) > 0 && v < seen[len(seen)-1] {
					t.Fatalf("counter went down: %v after %v", v, seen)
				}
				seen = append(seen, v)
			}
		}
	}
	if rep == nil {
		t.Fatal("no report")
	}
	mf := scrape(t, url, "")
	final := value(mf, "zxmigrate_progress_items_total", nil)
	t.Logf("progress items seen while running: %d distinct values, final %v", len(seen), final)
	if len(seen) < 3 {
		t.Errorf("counters did not move during the run: %v (final %v)", seen, final)
	}

	// The finished-phase counters match the report, per phase.
	for _, ph := range []migrate.Phase{migrate.PhaseMail, migrate.PhaseCalendars, migrate.PhaseContacts} {
		var copied, existing, skipped, failed, bytes int64
		var results int
		for _, a := range rep.Accounts {
			if p := a.Phase(ph); p != nil && p.Status != migrate.StatusPending && p.Status != migrate.StatusNotRun {
				copied += p.Copied
				existing += p.Existing
				skipped += p.Skipped
				failed += p.Failed
				bytes += p.Bytes
				results++
			}
		}
		l := func(o string) map[string]string { return map[string]string{"phase": string(ph), "outcome": o} }
		for o, want := range map[string]int64{"copied": copied, "existing": existing, "skipped": skipped, "failed": failed} {
			if got := value(mf, "zxmigrate_items_total", l(o)); got != float64(want) {
				t.Errorf("items_total{phase=%s,outcome=%s} = %v, report says %d", ph, o, got, want)
			}
		}
		if got := value(mf, "zxmigrate_bytes_total", map[string]string{"phase": string(ph)}); got != float64(bytes) {
			t.Errorf("bytes_total{phase=%s} = %v, report says %d", ph, got, bytes)
		}
		if got := value(mf, "zxmigrate_phase_results_total", map[string]string{"phase": string(ph)}); got != float64(results) {
			t.Errorf("phase_results_total{phase=%s} = %v, report has %d results", ph, got, results)
		}
		if got := value(mf, "zxmigrate_phase_duration_seconds", map[string]string{"phase": string(ph)}); got != float64(results) {
			t.Errorf("phase_duration_seconds{phase=%s} count = %v, want %d", ph, got, results)
		}
	}
	if got, want := value(mf, "zxmigrate_items_total", map[string]string{"phase": "mail", "outcome": "copied"}), float64(rep.Totals.Messages); got != want {
		t.Errorf("mail copied = %v, report totals say %v messages", got, want)
	}
	// Accounts per state come from the state store (read at most once a
	// second): wait for the read after the run.
	for st, want := range map[string]int{"done": rep.Totals.Done, "partial": rep.Totals.Partial, "failed": rep.Totals.Failed} {
		var got float64
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if got = value(scrape(t, url, ""), "zxmigrate_accounts", map[string]string{"state": st}); got == float64(want) {
				break
			}
		}
		if got != float64(want) {
			t.Errorf("accounts{state=%s} = %v, report says %d", st, got, want)
		}
	}
	if rep.Totals.Failed == 0 {
		t.Errorf("the seeded failures did not show: %+v", rep.Totals)
	}
	if value(mf, "zxmigrate_build_info", nil) != 1 {
		t.Error("no build info")
	}

	// No label value names an account or holds a secret.
	pw := re.env.Plan.Source.IMAP.Password.Reveal()
	for name, f := range mf {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, "@") || strings.Contains(v, pw) || strings.Contains(v, "example.com") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
	}
	// No secret anywhere in what the listener serves.
	for _, path := range []string{"", "app.js", "api/status", "api/accounts", "metrics"} {
		code, body := get(t, http.DefaultClient, url+path, "")
		if code != http.StatusOK {
			t.Errorf("GET /%s: %d", path, code)
		}
		if pw == "" || strings.Contains(body, pw) {
			t.Errorf("GET /%s shows the admin password", path)
		}
	}
	_, status := get(t, http.DefaultClient, url+"api/status", "")
	if !strings.Contains(status, "seeded failure") {
		t.Errorf("/api/status does not list the seeded failures' reasons")
	}

	// The state store alone (migrate status --serve) tells the same story.
	view := NewStoreViewPath(re.env.Plan.StatePath(), re.env.Plan)
	vs, err := view.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantItems := rep.Totals.Messages + rep.Totals.Events + rep.Totals.Contacts + rep.Totals.Existing
	if vs.Total != len(rep.Accounts) || vs.Accounts["done"] != rep.Totals.Done || vs.Accounts["failed"] != rep.Totals.Failed ||
		vs.Items != wantItems || vs.Bytes != rep.Totals.Bytes || vs.Outcome != string(rep.Outcome) {
		t.Errorf("store view: total %d, %v, items %d, bytes %d, outcome %s; report: %+v, outcome %s",
			vs.Total, vs.Accounts, vs.Items, vs.Bytes, vs.Outcome, rep.Totals, rep.Outcome)
	}
	if len(vs.Throughput) == 0 || vs.Throughput[len(vs.Throughput)-1].Items != wantItems {
		t.Errorf("store view throughput ends at %+v, want %d items", vs.Throughput[len(vs.Throughput)-1:], wantItems)
	}
	ls, _ := re.live.Status(context.Background())
	if ls.Items != wantItems || ls.Bytes != rep.Totals.Bytes {
		t.Errorf("live view: %d items, %d bytes; report %d, %d", ls.Items, ls.Bytes, wantItems, rep.Totals.Bytes)
	}
	va, err := view.Accounts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range va.Rows {
		a := rep.Account(r[0].(string))
		if a == nil || r[3].(int64) != a.Size {
			t.Errorf("store row %v does not match the report", r)
		}
		if r[1] == "failed" {
			failed++
		}
	}
	if len(va.Rows) != len(rep.Accounts) || failed != rep.Totals.Failed {
		t.Errorf("store rows: %d, %d failed; report %d, %d failed", len(va.Rows), failed, len(rep.Accounts), rep.Totals.Failed)
	}
	if again, _ := view.Accounts(context.Background(), va.Version); again.Rows != nil {
		t.Error("rows sent again for an unchanged version")
	}
	var sawSeeded bool
	for _, p := range vs.Problems {
		sawSeeded = sawSeeded || strings.Contains(p.Reason, "seeded failure")
	}
	if !sawSeeded {
		t.Error("store view problems lack the seeded failures")
	}
}
