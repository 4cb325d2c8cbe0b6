package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestServerMetricsDovecot migrates accounts between real Dovecot and
// Radicale servers with the dashboard's observer in the run's context,
// scrapes /metrics while the run goes and after it, and checks the
// per-server series: APPEND and FETCH latency histograms count at least
// every message copied, PUT every object, connections rise and come back
// to 0, and the throttle answers the fault proxies sent (a BYE greeting
// over a connection cap, 429 from a DoSFilter, 503) are counted and
// retried. No label value holds an address or a secret.
func TestServerMetricsDovecot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	const domain = "example.com"
	users := map[string]string{}
	for i := 1; i <= 3; i++ {
		users[fmt.Sprintf("obs%d@%s", i, domain)] = fmt.Sprintf("sentinel-pass-%d-5e1d", i)
	}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "obs-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "obs-dst", Users: users})
	rsrc := testserver.StartRadicale(t, users)
	rdst := testserver.StartRadicale(t, users)

	// The destination IMAP server takes 3 connections at once and greets
	// the next ones with BYE, as Zimbra does at zimbraImapMaxConnections.
	imapProxy, err := faultproxy.Listen(dst.Addr, faultproxy.Options{MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapProxy.Close() })
	// The source DAV server sits behind a DoSFilter at 4 requests per
	// second (429 over it); the destination answers 503 to some PUTs.
	srcTarget, _ := url.Parse(rsrc.URL)
	dos := &faultproxy.DoSFilter{Next: faultproxy.NewReverseProxy(srcTarget), MaxRequestsPerSec: 4}
	srcDAV := httptest.NewServer(dos)
	t.Cleanup(srcDAV.Close)
	dstTarget, _ := url.Parse(rdst.URL)
	unavail := &faultproxy.HTTP{Next: faultproxy.NewReverseProxy(dstTarget), Seed: 7, Unavailable: 0.2, Methods: []string{http.MethodPut}}
	dstDAV := httptest.NewServer(unavail)
	t.Cleanup(dstDAV.Close)

	dir := t.TempDir()
	var list strings.Builder
	for u, pw := range users {
		a := corpus.Generate(u, corpus.Options{Seed: 11, Messages: 1, Events: 6, Contacts: 6})
		if err := src.Seed(ctx, u, a.Mail); err != nil {
			t.Fatal(err)
		}
		if err := testserver.SeedDAV(ctx, rsrc.CalendarHome(u), u, pw, a.Calendars, a.AddressBooks); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&list, u)
	}
	listFile := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	fx := carboniotest.DestinationFixture() // the accounts are provisioned
	fx.Domains = append(fx.Domains, domain)
	for u := range users {
		fx.Accounts = append(fx.Accounts, carboniotest.FixtureAccount{Name: u})
	}
	admin := carboniotest.New(carboniotest.Options{Admin: "admin@carbonio.local", Password: "pw", Fixture: fx})
	t.Cleanup(admin.Close)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, admin.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	master := migrate.Credential{Password: secret.New(src.MasterPassword)}
	const connsPerServer = 12 // 4 per account: room for its 2 folders, beyond the destination's cap of 3
	plan := &migrate.Plan{
		Name: "obs",
		Source: migrate.Endpoint{Kind: "imap",
			IMAP: migrate.IMAPEndpoint{Address: src.Addr, Security: "none", Admin: src.MasterUser, Credential: master},
			DAV:  migrate.DAVEndpoint{URL: srcDAV.URL + "/", Auth: "basic"}},
		Destination: migrate.Endpoint{
			Admin: migrate.AdminEndpoint{URL: admin.URL, User: "admin@carbonio.local", Credential: migrate.Credential{Password: secret.New("pw")}, CAFile: ca,
				UnverifiedSOAP: true},
			IMAP: migrate.IMAPEndpoint{Address: imapProxy.Addr(), Security: "none", Admin: dst.MasterUser, Credential: migrate.Credential{Password: secret.New(dst.MasterPassword)}},
			DAV:  migrate.DAVEndpoint{URL: dstDAV.URL + "/", Auth: "basic"}},
		Domains:     []string{domain},
		Accounts:    migrate.Selection{ListFile: listFile},
		Phases:      []migrate.Phase{migrate.PhaseMail, migrate.PhaseCalendars, migrate.PhaseContacts},
		Concurrency: migrate.Concurrency{ConcurrentAccounts: 3, FoldersPerAccount: 2, ConnectionsPerServer: connsPerServer},
		Mail:        migrate.MailOptions{WritersPerAccount: 1},
		Limits:      migrate.Limits{HTTPRate: 20},
		State:       filepath.Join(dir, "state.db"),
		Report:      filepath.Join(dir, "report"),
	}
	r := &migrate.Runner{Plan: plan, Hooks: migrate.Hooks{
		DAVCredentials: func(side, account string) (string, secret.Secret, bool) {
			pw, ok := users[account]
			return account, secret.New(pw), ok
		},
	}}
	counts := StoreCounts(plan.StatePath())
	m := NewMetrics(counts)
	live := NewLive(plan, m, counts)
	r.OnEvent = live.OnEvent
	srv, err := Listen(Options{Addr: "127.0.0.1:0"}, Handler(live, m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	srcIMAP, dstIMAP := src.Addr, imapProxy.Addr()
	srcDAVHost, dstDAVHost := strings.TrimPrefix(srcDAV.URL, "http://"), strings.TrimPrefix(dstDAV.URL, "http://")
	done := make(chan *migrate.Report, 1)
	go func() {
		rep, err := r.Run(live.Context(ctx))
		if err != nil {
			t.Errorf("run: %v", err)
		}
		done <- rep
	}()
	peak := map[string]float64{} // server -> most connections seen in use
	var scrapes int
	var rep *migrate.Report
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case rep = <-done:
			break wait
		case <-tick.C:
			mf := scrape(t, srv.URL(), "")
			scrapes++
			for _, s := range []string{srcIMAP, dstIMAP, srcDAVHost, dstDAVHost} {
				peak[s] = max(peak[s], value(mf, "zxmigrate_server_connections", map[string]string{"server": s}))
			}
		}
	}
	if rep == nil {
		t.Fatal("no report")
	}
	t.Logf("run: %+v; %d scrapes; peak connections in use %v", rep.Totals, scrapes, peak)
	t.Logf("faults: imap %v; dos %v; 503 %v", imapProxy.Stats(), dos.Stats(), unavail.Stats())
	if rep.Totals.Messages == 0 || rep.Totals.Events+rep.Totals.Contacts == 0 {
		t.Fatalf("nothing copied: %+v", rep.Totals)
	}
	mf := scrape(t, srv.URL(), "")
	get := func(name string, labels ...string) float64 {
		want := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			want[labels[i]] = labels[i+1]
		}
		return value(mf, name, want)
	}
	const dur = "zxmigrate_server_op_duration_seconds"
	msgs := float64(rep.Totals.Messages)
	objects := float64(rep.Totals.Events + rep.Totals.Contacts)
	if n := get(dur, "server", dstIMAP, "op", "APPEND"); n < msgs {
		t.Errorf("APPEND latency count at %s = %v, want >= %v messages copied", dstIMAP, n, msgs)
	}
	if n := get(dur, "server", srcIMAP, "op", "FETCH"); n < msgs {
		t.Errorf("FETCH latency count at %s = %v, want >= %v messages copied", srcIMAP, n, msgs)
	}
	if n := get(dur, "server", dstDAVHost, "op", "PUT"); n < objects {
		t.Errorf("PUT latency count at %s = %v, want >= %v objects copied", dstDAVHost, n, objects)
	}
	if n := get(dur, "server", srcDAVHost, "op", "REPORT") + get(dur, "server", srcDAVHost, "op", "GET"); n == 0 {
		t.Errorf("no REPORT or GET timed at the source DAV server %s", srcDAVHost)
	}
	if h := histogram(mf, dur, dstIMAP, "APPEND"); h == nil || h.GetSampleSum() <= 0 {
		t.Errorf("APPEND latency sum at %s: %v", dstIMAP, h)
	}
	for _, s := range []string{srcIMAP, dstIMAP, dstDAVHost} {
		if peak[s] < 1 {
			t.Errorf("connections in use at %s never rose during the run (peak %v)", s, peak[s])
		}
	}
	// Every connection is closed at the end.
	for _, m := range mf["zxmigrate_server_connections"].GetMetric() {
		if v := m.GetGauge().GetValue(); v != 0 {
			t.Errorf("zxmigrate_server_connections%v = %v after the run, want 0", labels(m), v)
		}
	}
	for _, s := range []string{srcIMAP, dstIMAP} {
		if b := get("zxmigrate_server_budget", "server", s); b != connsPerServer {
			t.Errorf("budget of %s = %v, want %d", s, b, connsPerServer)
		}
	}
	if b := get("zxmigrate_server_connections", "server", dstIMAP, "side", "destination") + get("zxmigrate_server_connections", "server", dstIMAP, "side", "imap"); mf["zxmigrate_server_connections"] == nil || b != 0 {
		t.Errorf("destination IMAP connections series: %v", b)
	}

	// The throttle answers the proxies sent, each counted once.
	const thr = "zxmigrate_server_throttle_answers_total"
	if busy := imapProxy.Stats().Busy; busy == 0 {
		t.Error("the IMAP connection cap never answered BYE: the test did not exercise it")
	} else if n := get(thr, "server", dstIMAP, "answer", "BYE"); n != float64(busy) {
		t.Errorf("BYE answers counted at %s = %v, the proxy sent %d", dstIMAP, n, busy)
	}
	if rej := dos.Stats().Rejected; rej == 0 {
		t.Error("the DoSFilter never answered 429: the test did not exercise it")
	} else if n := get(thr, "server", srcDAVHost, "answer", "429"); n != float64(rej) {
		t.Errorf("429 answers counted at %s = %v, the DoSFilter sent %d", srcDAVHost, n, rej)
	}
	if un := unavail.Stats().Unavailable; un == 0 {
		t.Error("no 503 was injected: the test did not exercise it")
	} else if n := get(thr, "server", dstDAVHost, "answer", "503"); n != float64(un) {
		t.Errorf("503 answers counted at %s = %v, the proxy sent %d", dstDAVHost, n, un)
	}
	// ... and retried.
	const rt = "zxmigrate_server_retries_total"
	if n := get(rt, "server", dstIMAP, "reason", "BYE"); n < 1 {
		t.Errorf("no retry after BYE counted at %s", dstIMAP)
	}
	if n := get(rt, "server", srcDAVHost, "reason", "429"); n < 1 {
		t.Errorf("no retry after 429 counted at %s", srcDAVHost)
	}
	if n := get(rt, "server", dstDAVHost, "reason", "503"); n < 1 {
		t.Errorf("no retry after 503 counted at %s", dstDAVHost)
	}

	// No label value names an account or holds a secret.
	secrets := []string{src.MasterPassword, dst.MasterPassword, "sentinel-pass-", "pw"}
	for name, f := range mf {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, "@") || strings.Contains(v, domain) || strings.Contains(v, "obs1") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
				for _, s := range secrets {
					if len(s) > 2 && strings.Contains(v, s) {
						t.Errorf("%s label %s=%q holds a secret", name, l.GetName(), v)
					}
				}
			}
		}
	}

	// The dashboard's server table says the same.
	code, body := get2(t, srv.URL()+"api/status")
	if code != http.StatusOK {
		t.Fatalf("/api/status: %d", code)
	}
	for _, s := range secrets {
		if len(s) > 2 && strings.Contains(body, s) {
			t.Errorf("/api/status holds the secret %q", s)
		}
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	rows := map[string]Load{}
	for _, l := range st.Load {
		rows[l.Server] = l
	}
	if l, ok := rows[dstIMAP]; !ok || l.Side != "destination" || l.Kind != "IMAP" || l.ConnectionsBudget != connsPerServer ||
		float64(l.Ops) < msgs || l.Throttled < 1 || l.Retries < 1 || l.P95 <= 0 || l.P50 > l.P95 || l.Connections != 0 {
		t.Errorf("destination IMAP row: %+v", l)
	}
	if l, ok := rows[dstDAVHost]; !ok || l.Kind != "DAV" || float64(l.Ops) < objects || l.Throttled < 1 || l.LastThrottle != "503" {
		t.Errorf("destination DAV row: %+v", l)
	}
	if l, ok := rows[srcDAVHost]; !ok || l.Side != "source" || l.Throttled < 1 || l.RateLimit <= 0 {
		t.Errorf("source DAV row: %+v", l)
	}
	t.Logf("server table: %s", loadSummary(st.Load))
}

func get2(t *testing.T, u string) (int, string) { return get(t, http.DefaultClient, u, "") }

func histogram(mf map[string]*dto.MetricFamily, name, server, op string) *dto.Histogram {
	for _, m := range mf[name].GetMetric() {
		l := labels(m)
		if l["server"] == server && l["op"] == op {
			return m.GetHistogram()
		}
	}
	return nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func loadSummary(ls []Load) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "\n  %s %s %s: conns %d/%d, ops %d (%d failed), retries %d, throttled %d (%s), p50 %.1f ms, p95 %.1f ms",
			l.Server, l.Side, l.Kind, l.Connections, l.ConnectionsBudget, l.Ops, l.Errors, l.Retries, l.Throttled, l.LastThrottle, l.P50*1000, l.P95*1000)
	}
	return b.String()
}

// TestServersTable feeds the observer by hand and reads the table: rows
// for the plan's servers, one for a server outside the plan, quantiles
// from the histogram, and the Prometheus series alongside.
func TestServersTable(t *testing.T) {
	plan := &migrate.Plan{
		Source:      migrate.Endpoint{IMAP: migrate.IMAPEndpoint{Address: "SRC.example.net:143"}, DAV: migrate.DAVEndpoint{URL: "https://dav.example.net/dav/"}},
		Destination: migrate.Endpoint{IMAP: migrate.IMAPEndpoint{Address: "dst.example.net:993"}},
		Concurrency: migrate.Concurrency{ConcurrentAccounts: 5, ConnectionsPerServer: 8},
	}
	m := NewMetrics(nil)
	live := NewLive(plan, m, nil)
	o := live.servers
	for i := range 100 {
		o.Op("dst.example.net:993", "APPEND", time.Duration(i+1)*time.Millisecond, nil) // 1..100 ms
	}
	o.Op("dav.example.net:443", "PUT", 3*time.Millisecond, &obs.StatusError{Code: 503})
	o.Throttle("dav.example.net:443", "503")
	o.Retry("dav.example.net:443", "503")
	o.Conn("dst.example.net:993", obs.SideDestination, 1)
	o.Conn("dst.example.net:993", obs.SideDestination, 1)
	o.Conn("dst.example.net:993", obs.SideDestination, -1)
	o.Conn("soap.example.net:7071", obs.SideHTTP, 1)
	st, err := live.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]Load{}
	var order []string
	for _, l := range st.Load {
		rows[l.Server] = l
		order = append(order, l.Server)
	}
	if want := "src.example.net:143 dav.example.net:443 dst.example.net:993 soap.example.net:7071"; strings.Join(order, " ") != want {
		t.Errorf("rows %q, want %q", order, want)
	}
	d := rows["dst.example.net:993"]
	if d.Connections != 1 || d.ConnectionsBudget != 8 || d.Ops != 100 || d.Side != "destination" || d.Kind != "IMAP" || d.Budget != 5 {
		t.Errorf("destination IMAP row %+v", d)
	}
	// The true p50 is 50.5 ms and p95 95.5 ms; bucket interpolation stays
	// within the buckets that hold them (32-64 ms, 64-128 ms).
	if d.P50 < 0.032 || d.P50 > 0.064 || d.P95 < 0.064 || d.P95 > 0.128 || d.Rate < 1 {
		t.Errorf("p50 %v p95 %v rate %v", d.P50, d.P95, d.Rate)
	}
	if v := rows["dav.example.net:443"]; v.Errors != 1 || v.Throttled != 1 || v.Retries != 1 || v.LastThrottle != "503" || v.Kind != "DAV" || v.RateLimit <= 0 {
		t.Errorf("DAV row %+v", v)
	}
	if s := rows["soap.example.net:7071"]; s.Kind != "other" || s.Side != "http" || s.Connections != 1 {
		t.Errorf("other row %+v", s)
	}
	if s := rows["src.example.net:143"]; s.ConnectionsBudget != 8 || s.Ops != 0 || s.P95 != 0 {
		t.Errorf("source IMAP row %+v", s)
	}
	// The same in Prometheus.
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	mf := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		mf[f.GetName()] = f
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"zxmigrate_server_op_duration_seconds", map[string]string{"server": "dst.example.net:993", "op": "APPEND"}, 100},
		{"zxmigrate_server_op_errors_total", map[string]string{"server": "dav.example.net:443", "op": "PUT"}, 1},
		{"zxmigrate_server_throttle_answers_total", map[string]string{"server": "dav.example.net:443", "answer": "503"}, 1},
		{"zxmigrate_server_retries_total", map[string]string{"server": "dav.example.net:443", "reason": "503"}, 1},
		{"zxmigrate_server_connections", map[string]string{"server": "dst.example.net:993", "side": "destination"}, 1},
		{"zxmigrate_server_budget", map[string]string{"server": "src.example.net:143"}, 8},
		{"zxmigrate_server_budget", map[string]string{"server": "dst.example.net:993"}, 8},
	} {
		if got := value(mf, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
