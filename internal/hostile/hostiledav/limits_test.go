package hostiledav

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/secret"
)

// heapPeak runs fn while sampling the live heap every millisecond and
// returns the highest sample minus the heap before fn.
func heapPeak(t *testing.T, fn func()) uint64 {
	t.Helper()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	base := read()
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	peak = max(peak, read())
	if peak < base {
		return 0
	}
	return peak - base
}

// limitErrors returns the *dav.LimitError found in err or the copy's
// per-item errors.
func limitError(err error, stats *dav.Stats) *dav.LimitError {
	var le *dav.LimitError
	if errors.As(err, &le) {
		return le
	}
	for _, ie := range itemErrors(stats) {
		if errors.As(ie.Err, &le) {
			return le
		}
	}
	return nil
}

// A PROPFIND answer with 1,000,000 nested elements: no crash (the decoder
// does not recurse per element), a clear error naming the URL and the
// bound.
func TestDeepXML(t *testing.T) {
	src := httptest.NewServer(DeepXML(1_000_000))
	t.Cleanup(src.Close)
	s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw")})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
	le := limitError(err, stats)
	if le == nil || le.What != "XML depth" || le.Limit != dav.DefaultMaxXMLDepth {
		t.Fatalf("copy: %v, want a *dav.LimitError on XML depth %d", err, dav.DefaultMaxXMLDepth)
	}
	if !strings.Contains(le.Error(), src.URL+"/cal/") || !strings.Contains(le.Error(), "MaxXMLDepth") {
		t.Errorf("error %q names neither the URL nor the limit", le)
	}
}

// go-webdav's own decoder (used by caldav.FindCalendars) recurses per
// element: the guard in front of it refuses the deep answer first.
func TestDeepXMLFindCalendars(t *testing.T) {
	src := httptest.NewServer(DeepXML(1_000_000))
	t.Cleanup(src.Close)
	_, err := caldav.FindCalendars(context.Background(), dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw")})
	var le *dav.LimitError
	if !errors.As(err, &le) || le.What != "XML depth" {
		t.Fatalf("FindCalendars: %v, want a *dav.LimitError on XML depth", err)
	}
}

// hugeCase is a limit and the heap growth allowed under it.
type hugeCase struct {
	limit int64 // 0: the default
	bound uint64
}

// hugeCases are the limits tried on huge answers: a small one, and the
// defaults (not under the race detector, whose shadow memory would
// multiply a 500 MiB resident set). The bounds are a few times the limit:
// the decoded answer (a multistatus decodes to about 3 times its bytes)
// and garbage not yet collected, never the size of the answer.
func hugeCases(defBound uint64) []hugeCase {
	cs := []hugeCase{{limit: 8 << 20, bound: 64 << 20}}
	if !raceEnabled {
		cs = append(cs, hugeCase{limit: 0, bound: defBound})
	}
	return cs
}

// A 500 MB multistatus listing: refused at Limits.MaxMultistatus, the heap
// growing by less than the bound (without the limit: 2 GB resident).
func TestHugeMultistatus(t *testing.T) {
	src := httptest.NewServer(HugeMultistatus(500 << 20))
	t.Cleanup(src.Close)
	for _, tc := range hugeCases(384 << 20) {
		s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw"),
			Limits: dav.Limits{MaxMultistatus: tc.limit}})
		if err != nil {
			t.Fatal(err)
		}
		dst := destination(t)
		var (
			stats *dav.Stats
			cerr  error
		)
		peak := heapPeak(t, func() { stats, cerr = (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), dst, s) })
		want := cmp.Or(tc.limit, dav.DefaultMaxMultistatus)
		le := limitError(cerr, stats)
		if le == nil || le.What != "multistatus" || le.Limit != want {
			t.Fatalf("copy: %v %+v, want a *dav.LimitError on the multistatus", cerr, itemErrors(stats))
		}
		if !strings.Contains(le.Error(), fmt.Sprintf("%d MiB", want>>20)) || !strings.Contains(le.Error(), "MaxMultistatus") || !strings.Contains(le.Error(), src.URL) {
			t.Errorf("error %q does not name the URL and the limit", le)
		}
		t.Logf("500 MB multistatus, limit %d MiB: heap peak +%d MiB", want>>20, peak>>20)
		if peak > tc.bound {
			t.Errorf("limit %d MiB: heap grew by %d MiB, want at most %d MiB", want>>20, peak>>20, tc.bound>>20)
		}
	}
}

// A 300 MB .ics REST export: refused at Limits.MaxExport, the heap growing
// by less than the bound (without the limit: 4.9 GB resident).
func TestHugeExport(t *testing.T) {
	src := httptest.NewServer(HugeExport(300 << 20))
	t.Cleanup(src.Close)
	for _, tc := range hugeCases(384 << 20) {
		s, err := caldav.NewZimbraREST(dav.Endpoint{URL: src.URL, User: "admin", Password: secret.New("pw"), Account: "alice@example.com",
			Limits: dav.Limits{MaxExport: tc.limit}})
		if err != nil {
			t.Fatal(err)
		}
		dst := destination(t)
		var (
			stats *dav.Stats
			cerr  error
		)
		peak := heapPeak(t, func() { stats, cerr = (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), dst, s) })
		want := cmp.Or(tc.limit, dav.DefaultMaxExport)
		le := limitError(cerr, stats)
		if le == nil || le.What != "export" || le.Limit != want || !strings.Contains(le.Error(), "MaxExport") {
			t.Fatalf("copy: %v %+v, want a *dav.LimitError on the export", cerr, itemErrors(stats))
		}
		t.Logf("300 MB export, limit %d MiB: heap peak +%d MiB", want>>20, peak>>20)
		if peak > tc.bound {
			t.Errorf("limit %d MiB: heap grew by %d MiB, want at most %d MiB", want>>20, peak>>20, tc.bound>>20)
		}
	}
}

// A server that never answers, and one that sends the start of an answer
// and then nothing: with a 300 ms idle timeout the copy ends by itself,
// after its retries, within stallBound, and reports the idle timeout.
func TestStalls(t *testing.T) {
	const stallBound = 60 * time.Second
	for _, tc := range []struct {
		name string
		h    func(release <-chan struct{}) http.Handler
	}{
		{"silent", Silent},
		{"stalling", Stalling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			h := &Counting{H: tc.h(release)}
			src := httptest.NewServer(h)
			t.Cleanup(src.Close)
			t.Cleanup(func() { close(release) }) // runs before src.Close
			s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw"),
				IdleTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			dst := destination(t)
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), dst, s)
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(stallBound):
				t.Fatalf("copy still running after %s", stallBound)
			}
			t.Logf("copy ended after %s: %v", time.Since(start).Round(time.Millisecond), err)
			var ie *httpx.IdleError
			if !errors.As(err, &ie) || ie.Idle != 300*time.Millisecond {
				t.Fatalf("copy: %v, want an *httpx.IdleError of 300ms", err)
			}
			if h.N() < 2 {
				t.Errorf("the server got %d request(s), want the hung attempt retried", h.N())
			}
		})
	}
}

// A transfer slower than the idle timeout in total, but never idle that
// long, is not cut.
func TestTrickleNotCut(t *testing.T) {
	const idle = 300 * time.Millisecond
	src := httptest.NewServer(Trickle(20 * time.Millisecond))
	t.Cleanup(src.Close)
	s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw"),
		HTTPClient: httpx.NewClient(httpx.Options{IdleTimeout: idle})})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stats, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got := stats.Totals(); got.Created != 1 || got.Failed != 0 {
		t.Fatalf("created %d failed %d (%+v), want the trickled event copied", got.Created, got.Failed, itemErrors(stats))
	}
	// The answers took several idle timeouts to arrive; otherwise this
	// test proves nothing.
	if took < 3*idle {
		t.Fatalf("copy took %s, less than 3 idle timeouts: the fake did not trickle", took)
	}
	t.Logf("trickled copy took %s with a %s idle timeout", took.Round(time.Millisecond), idle)
}
