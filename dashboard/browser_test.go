package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// chromium returns the browser to test with: $ZXM_CHROMIUM, else the
// Debian package's /usr/bin/chromium (test.sh installs it). Without one the
// test skips, and fails when CI is set.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ZXM_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is missing (apt-get install chromium; test.sh does it)")
	}
	t.Skip("chromium is missing; install the Debian package chromium")
	return ""
}

// browser starts a headless Chromium with a private profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1700),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// js evaluates expr in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr until it is true.
func waitJS(t *testing.T, ctx context.Context, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if js[bool](t, ctx, expr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still false after %s: %s\npage: %s", timeout, expr,
				js[string](t, ctx, `document.getElementById("states").innerText + " | shown " + document.getElementById("shown").textContent + " | " + document.getElementById("conn").textContent`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// count reads a number the page shows (thousands separators allowed).
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	s := js[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q)||{textContent:"0"}).textContent`, sel))
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(s), ",", ""))
	if err != nil {
		return -1
	}
	return n
}

// artifactDir is where tests keep files for people: $ZXM_ARTIFACTS, else a
// temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("ZXM_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestDashboardInChromium loads the dashboard in headless Chromium during a
// demo run of 60 accounts, some of them seeded to fail: the counts rise,
// the table filters to the failed accounts and sorts by size, and a
// screenshot is kept.
func TestDashboardInChromium(t *testing.T) {
	ctx := browser(t)
	re := startEnv(t, 60, 10, Options{})
	// Verification adds time, not views. The mail phase is what takes
	// longest (about 17,000 messages): it runs only with ZXM_DASHBOARD_MAIL
	// set (as for the README's screenshot), so that the default test run
	// stays short.
	re.env.Plan.Phases = slices.DeleteFunc(slices.Clone(re.env.Plan.Phases), func(p migrate.Phase) bool {
		return p == migrate.PhaseVerify || (p == migrate.PhaseMail && os.Getenv("ZXM_DASHBOARD_MAIL") == "")
	})
	re.env.Plan.Concurrency.ConcurrentAccounts = 12
	if err := chromedp.Do(ctx, chromedp.Navigate(re.srv.URL())); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.getElementById("run").textContent.includes("waiting")`, 10*time.Second)

	t0 := time.Now()
	done := re.run(t)
	var items []int // distinct values of "Items copied" the page showed while the run went on
	var rep *migrate.Report
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case rep = <-done:
			break wait
		case <-tick.C:
			if n := count(t, ctx, "#items"); n > 0 && (len(items) == 0 || n != items[len(items)-1]) {
				items = append(items, n)
			}
		}
	}
	t.Logf("run of 60 accounts: %s; the page showed %d rising item counts: %v", time.Since(t0).Round(time.Millisecond), len(items), items)
	if rep == nil {
		t.Fatal("no report")
	}
	if len(items) < 2 || !slices.IsSorted(items) {
		t.Errorf("the page did not show the counts increase during the run: %v", items)
	}
	if rep.Totals.Failed == 0 || rep.Totals.Done == 0 {
		t.Fatalf("want done and failed accounts, got %+v", rep.Totals)
	}
	// The page catches up with the report.
	waitJS(t, ctx, fmt.Sprintf(`document.querySelector("#count-done b").textContent == "%d" && document.querySelector("#count-failed b").textContent == "%d" && document.getElementById("shown").textContent == "60"`,
		rep.Totals.Done, rep.Totals.Failed), 15*time.Second)
	if got, want := count(t, ctx, "#items"), int(rep.Totals.Messages+rep.Totals.Events+rep.Totals.Contacts+rep.Totals.Existing); got != want {
		t.Errorf("page shows %d items, report %d", got, want)
	}
	if !js[bool](t, ctx, `document.getElementById("problems").textContent.includes("seeded failure")`) {
		t.Error("the problems list does not show the seeded failures")
	}

	// Filter to failed.
	js[bool](t, ctx, `(() => { const s = document.getElementById("state-filter"); s.value = "failed"; s.dispatchEvent(new Event("change")); return true })()`)
	// The table refreshes at most every 2 s; the filter stays applied.
	waitJS(t, ctx, fmt.Sprintf(`document.getElementById("shown").textContent == "%d"`, rep.Totals.Failed), 10*time.Second)
	states := js[[]string](t, ctx, `[...document.querySelectorAll("#rows .row")].map(r => r.dataset.status)`)
	if len(states) != rep.Totals.Failed || count(t, ctx, "#shown") != rep.Totals.Failed {
		t.Errorf("filtered to failed: %d rows (%d shown), want %d", len(states), count(t, ctx, "#shown"), rep.Totals.Failed)
	}
	for _, s := range states {
		if s != "failed" {
			t.Errorf("a %q row under the failed filter", s)
		}
	}
	// Search.
	js[bool](t, ctx, `(() => { const s = document.getElementById("state-filter"); s.value = ""; s.dispatchEvent(new Event("change"));
		const q = document.getElementById("search"); q.value = "user07@"; q.dispatchEvent(new Event("input")); return true })()`)
	waitJS(t, ctx, `document.getElementById("shown").textContent == "1"`, 5*time.Second)
	js[bool](t, ctx, `(() => { const q = document.getElementById("search"); q.value = ""; q.dispatchEvent(new Event("input")); return true })()`)
	waitJS(t, ctx, `document.getElementById("shown").textContent == "60"`, 5*time.Second)

	// Sort by size: ascending, then descending.
	var sizes []int64
	for _, a := range rep.Accounts {
		sizes = append(sizes, a.Size)
	}
	slices.Sort(sizes)
	rowSizes := func() []int64 {
		var out []int64
		for _, s := range js[[]string](t, ctx, `[...document.querySelectorAll("#rows .row")].map(r => r.dataset.size)`) {
			n, _ := strconv.ParseInt(s, 10, 64)
			out = append(out, n)
		}
		return out
	}
	for _, asc := range []bool{true, false} {
		js[bool](t, ctx, `(() => { const b = document.querySelector('.thead button[data-sort="size"]'); b.click(); return true })()`)
		if got := js[bool](t, ctx, `document.querySelector('.thead button[data-sort="size"]').classList.contains("asc")`); got != asc {
			t.Fatalf("size header ascending = %v, want %v", got, asc)
		}
		got := rowSizes()
		if len(got) == 0 {
			t.Fatal("no rows rendered")
		}
		want := sizes[:len(got)]
		if !asc {
			want = slices.Clone(sizes)
			slices.Reverse(want)
			want = want[:len(got)]
		}
		if !slices.Equal(got, want) {
			t.Errorf("sorted by size (ascending %v): %v, want %v", asc, got, want)
		}
	}

	// The servers table: one row per server of the plan, each DAV server
	// with the requests the run sent it.
	servers := js[[]string](t, ctx, `[...document.querySelectorAll("#load tbody tr")].map(r => r.dataset.server || "")`)
	dav := urlHostPort(re.env.Plan.Destination.DAV.URL)
	if !slices.Contains(servers, dav) || !slices.Contains(servers, strings.ToLower(re.env.Plan.Source.IMAP.Address)) {
		t.Errorf("servers table rows %q lack the plan's servers (%s, %s)", servers, dav, re.env.Plan.Source.IMAP.Address)
	}
	ops := js[string](t, ctx, fmt.Sprintf(`(r => r ? r.cells[3].textContent : "")(document.querySelector('#load tr[data-server=%q]'))`, dav))
	if n, _ := strconv.Atoi(strings.ReplaceAll(strings.Fields(ops + " x")[0], ",", "")); n < 1 {
		t.Errorf("servers table: destination DAV operations %q, want some", ops)
	}
	if got := js[string](t, ctx, `document.querySelector("#load thead").textContent`); !strings.Contains(got, "Connections / budget") || !strings.Contains(got, "p50 / p95") {
		t.Errorf("servers table header: %q", got)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))

	// At 800 px the page fits without sideways scrolling and the chart
	// keeps its labelled axes.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 1700)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.documentElement.clientWidth == 800`, 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // a poll redraws the chart at the new width
	if w := js[int](t, ctx, `document.documentElement.scrollWidth`); w > 800 {
		t.Errorf("at 800 px the page is %d px wide", w)
	}
	if w := js[int](t, ctx, `document.getElementById("chart").clientWidth`); w < 600 {
		t.Errorf("at 800 px the chart is %d px wide", w)
	}
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(artifactDir(t), "dashboard-800.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot at 800 px: %s (%d bytes)", out, len(png))
}

// TestDashboardHolds50000Rows loads a table of 50,000 accounts: the page
// renders only the visible rows, and filtering, sorting and scrolling to
// the end stay prompt.
func TestDashboardHolds50000Rows(t *testing.T) {
	ctx := browser(t)
	const n = 50000
	src := &fixed{st: Status{Source: "store", Total: n, AccountsVersion: 1, Accounts: map[string]int{"done": n - n/7, "failed": n / 7}}}
	for i := range n {
		st := "done"
		if i%7 == 0 {
			st = "failed"
		}
		src.rows = append(src.rows, []any{fmt.Sprintf("user%05d@example.com", i), st, "", int64(i*7919%n) * 1000, float64(i % 600), 100, 1000, 0})
	}
	s, err := Listen(Options{}, Handler(src, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL())); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.getElementById("shown").textContent == "50,000"`, 20*time.Second)
	if r := js[int](t, ctx, `document.querySelectorAll("#rows .row").length`); r > 200 {
		t.Errorf("%d rows in the DOM for 50,000 accounts: not virtualised", r)
	}
	// Time the work the page does synchronously on each action.
	ms := js[float64](t, ctx, `(() => { const t0 = performance.now(); const s = document.getElementById("state-filter");
		s.value = "failed"; s.dispatchEvent(new Event("change")); s.value = ""; s.dispatchEvent(new Event("change"));
		document.querySelector('.thead button[data-sort="seconds"]').click();
		const v = document.getElementById("viewport"); v.scrollTop = v.scrollHeight; v.dispatchEvent(new Event("scroll"));
		return performance.now() - t0 })()`)
	t.Logf("filter twice, sort and scroll over 50,000 rows: %.0f ms", ms)
	// A generous bound for a loaded 2-core machine; a frozen page takes far longer.
	if ms > 5000 {
		t.Errorf("the page froze for %.0f ms", ms)
	}
	waitJS(t, ctx, `[...document.querySelectorAll("#rows .row")].length > 0 && [...document.querySelectorAll("#rows .row")].length < 200`, 5*time.Second)
	// After the scroll, the last rows of the sorted table are the ones rendered.
	last := js[string](t, ctx, `(() => { const r = document.querySelectorAll("#rows .row"); return r[r.length-1].firstChild.textContent })()`)
	if !strings.HasPrefix(last, "user") {
		t.Errorf("last rendered row %q", last)
	}
	if sec := js[string](t, ctx, `(() => { const r = document.querySelectorAll("#rows .row"); return r[r.length-1].children[4].textContent })()`); sec != "0s" {
		t.Errorf("sorted by duration descending, the last row shows %q, want 0s", sec)
	}
}
