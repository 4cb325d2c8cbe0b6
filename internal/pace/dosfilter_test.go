package pace_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// behindDoSFilter puts a Zimbra-default DoSFilter (30 requests per second
// per client IP, excess refused with 429) in front of the server at rawURL
// and returns the filter and the URL to use instead.
func behindDoSFilter(t *testing.T, rawURL string) (*faultproxy.DoSFilter, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	d := &faultproxy.DoSFilter{Next: faultproxy.NewReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})}
	ts := httptest.NewServer(d)
	t.Cleanup(ts.Close)
	return d, ts.URL + u.Path
}

// TestCalDAVCopyThroughDoSFilter copies 1,000 calendar objects from
// Radicale to a DAV server, both behind a Jetty DoSFilter as Zimbra
// configures it, through one default Pacer: no object may fail and at most
// 1% of the requests may be refused. It takes at least 35 s by design
// (1,000 PUTs at 28.5 per second).
//
// The destination is go-webdav's in-memory server over loopback HTTP: it
// takes hundreds of PUTs per second, so the filter's 30 per second binds.
// Radicale and Xandikos as destinations never reach 30 PUTs per second on
// a 2-core machine (Xandikos took 132 s for these 1,000), so behind them
// the filter would never refuse anything, paced or not.
func TestCalDAVCopyThroughDoSFilter(t *testing.T) {
	const n = 1000
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	rad := testserver.StartRadicale(t, map[string]string{"user1": "pass1"})
	objs := make([]corpus.Object, n)
	for i := range objs {
		objs[i] = corpus.Object{UID: fmt.Sprintf("gen-%04d@zxmigrate.test", i), Name: fmt.Sprintf("gen-%04d.ics", i), Data: davtest.GenEvent(i)}
	}
	if err := rad.SeedFS("user1", []corpus.Collection{{Name: "work", DisplayName: "Work", Components: []string{"VEVENT"}, Objects: objs}}, nil); err != nil {
		t.Fatal(err)
	}
	mem := memdav.New()
	mem.AddUser("user1", "pass1")
	memSrv := httptest.NewServer(mem)
	t.Cleanup(memSrv.Close)

	srcFilter, srcURL := behindDoSFilter(t, rad.CalendarHome("user1"))
	dstFilter, dstURL := behindDoSFilter(t, memSrv.URL+memdav.CalendarHome("user1"))

	// The filter bites: an unpaced burst against it is refused.
	burst := &http.Client{Timeout: 30 * time.Second}
	refused := 0
	for range 45 {
		req, _ := http.NewRequestWithContext(ctx, "OPTIONS", dstURL, nil)
		resp, err := burst.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("45 unpaced requests within a second: none refused by the DoSFilter (%v)", dstFilter.Stats())
	}
	burstStats := dstFilter.Stats()
	time.Sleep(1100 * time.Millisecond) // let the filter's window empty

	p := pace.New(0)
	hc := &http.Client{Transport: p.Wrap(nil), Timeout: time.Minute}
	pw := secret.New("pass1")
	src, err := caldav.NewDAV(dav.Endpoint{URL: srcURL, User: "user1", Password: pw, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := caldav.NewDAV(dav.Endpoint{URL: dstURL, User: "user1", Password: pw, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(ctx, dst, src)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	tot := st.Totals()
	ds := dstFilter.Stats()
	requests := srcFilter.Stats().Requests + ds.Requests - burstStats.Requests
	rejected := srcFilter.Stats().Rejected + ds.Rejected - burstStats.Rejected
	t.Logf("copied %d of %d objects in %v: created %d, failed %d, skipped %d; DoSFilter: %d requests, %d refused (%.2f%%); pacer: %v; burst before: %d of 45 refused",
		tot.Created, tot.Objects, took.Round(time.Millisecond), tot.Created, tot.Failed, tot.Skipped,
		requests, rejected, 100*float64(rejected)/float64(max(requests, 1)), p.Stats(), refused)
	if tot.Objects != n || tot.Created != n || tot.Failed != 0 || tot.Skipped != 0 {
		t.Errorf("copy: %d objects listed, %d created, %d failed, %d skipped; want %d created and none failed", tot.Objects, tot.Created, tot.Failed, tot.Skipped, n)
	}
	if requests < n {
		t.Errorf("the filters saw %d requests, fewer than the %d PUTs", requests, n)
	}
	if ps := p.Stats(); len(ps) != 1 || ps[0].Waited == 0 {
		t.Errorf("pacer stats %v: want one host whose requests waited", ps)
	}
	if rejected*100 > requests {
		t.Errorf("%d of %d requests refused: more than 1%%", rejected, requests)
	}
	v, err := (&dav.Copier{Rules: caldav.Rules{}}).Verify(ctx, dst, src)
	if err != nil || !v.OK() {
		t.Errorf("Verify after the copy: ok=%v err=%v", v != nil && v.OK(), err)
	}
}
