package pace

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// server is an in-process RoundTripper that answers like a server behind
// Jetty's DoSFilter (a ring of the last limit arrival times per client;
// see internal/faultproxy.DoSFilter for the real-network version), and
// records what it received.
type server struct {
	mu      sync.Mutex
	limit   int
	ring    []time.Time
	next    int
	times   []time.Time
	bodies  []string
	status  func(n int) (int, http.Header) // answer of request n (0-based); nil: the filter
	rejects int
}

func (s *server) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	n := len(s.times)
	s.times = append(s.times, now)
	s.bodies = append(s.bodies, string(body))
	code, hdr := http.StatusOK, http.Header{}
	if s.status != nil {
		code, hdr = s.status(n)
	} else if s.limit > 0 {
		if s.ring == nil {
			s.ring = make([]time.Time, s.limit)
		}
		last := s.ring[s.next]
		s.ring[s.next] = now
		s.next = (s.next + 1) % s.limit
		if !last.IsZero() && now.Sub(last) < time.Second {
			code = http.StatusTooManyRequests
		}
	}
	if code == http.StatusTooManyRequests {
		s.rejects++
	}
	return &http.Response{StatusCode: code, Header: hdr, Body: io.NopCloser(strings.NewReader("x")), Request: req}, nil
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// maxInWindow is the largest number of times within any window of length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	best := 0
	for i := range ts {
		n := 0
		for j := i; j < len(ts) && ts[j].Sub(ts[i]) < w; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

func TestSpacingKeepsUnderTheFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{limit: 30}
		p := New(0)
		c := &http.Client{Transport: p.Wrap(srv)}
		start := time.Now()
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 25 {
					// Two ports of one host share the pace.
					port := []string{"8443", "7071"}[(w+i)%2]
					if code := get(t, c, "https://Mail.Example.com:"+port+"/x"); code != http.StatusOK {
						t.Errorf("request answered %d", code)
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		if srv.rejects != 0 {
			t.Errorf("%d requests rejected", srv.rejects)
		}
		// 200 requests at 30 × 0.95 per second: the first at once, then
		// 199 gaps of 1/28.5 s (synctest's clock is exact).
		rate := float64(DefaultRate * DefaultHeadroom)
		want := 199 * time.Duration(float64(time.Second)/rate)
		if took < want || took > want+time.Second/10 {
			t.Errorf("200 requests took %v, want %v", took, want)
		}
		if n := maxInWindow(srv.times, time.Second); n > 29 {
			t.Errorf("%d requests within one second", n)
		}
		st := p.Stats()
		if len(st) != 1 || st[0].Host != "mail.example.com" || st[0].Requests != 200 {
			t.Errorf("stats %v: want one host mail.example.com with 200 requests", st)
		}
	})
}

func TestHostsArePacedApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{}
		p := New(10)
		c := &http.Client{Transport: p.Wrap(srv)}
		start := time.Now()
		var wg sync.WaitGroup
		for _, h := range []string{"http://a.test/", "http://b.test/"} {
			wg.Go(func() {
				for range 10 {
					get(t, c, h)
				}
			})
		}
		wg.Wait()
		// 10 requests per host at 9.5/s each, both hosts at once.
		if took, want := time.Since(start), 9*gap(9.5); took != want {
			t.Errorf("took %v, want %v", took, want)
		}
	})
}

func TestUnpaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{}
		c := &http.Client{Transport: New(-1).Wrap(srv)}
		start := time.Now()
		for range 100 {
			get(t, c, "http://a.test/")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("unpaced requests waited %v", d)
		}
	})
}

func TestSlowDownAndRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Request 5 is refused once with 503: the rate halves, then
		// grows back by Step per second.
		srv := &server{status: func(n int) (int, http.Header) {
			if n == 5 {
				return http.StatusServiceUnavailable, http.Header{}
			}
			return http.StatusOK, http.Header{}
		}}
		p := &Pacer{Rate: 20, Headroom: 1, Step: 2}
		c := &http.Client{Transport: p.Wrap(srv)}
		for i := range 6 {
			code := get(t, c, "http://a.test/")
			if want := map[bool]int{true: 503, false: 200}[i == 5]; code != want {
				t.Fatalf("request %d answered %d, want %d", i, code, want)
			}
		}
		st := p.Stats()[0]
		if st.SlowDowns != 1 || st.Throttled != 1 || st.Retried != 0 {
			t.Fatalf("stats %v: want 1 slow-down, 1 throttled, no retry of a 503", st)
		}
		if st.Rate != 10 {
			t.Errorf("rate after the 503: %v, want 10", st.Rate)
		}
		time.Sleep(2 * time.Second)
		if r := p.Stats()[0].Rate; r != 14 {
			t.Errorf("rate 2 s later: %v, want 14", r)
		}
		time.Sleep(10 * time.Second)
		if r := p.Stats()[0].Rate; r != 20 {
			t.Errorf("rate 12 s later: %v, want the ceiling 20", r)
		}
	})
}

func TestOneSlowDownPerRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Requests that took their slots before the first 503 came back
		// are all refused: they were paced at the old rate, one halving
		// covers them.
		block := make(chan struct{})
		var mu sync.Mutex
		arrived := 0
		srv := &server{status: func(int) (int, http.Header) { return http.StatusServiceUnavailable, http.Header{} }}
		gate := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			arrived++
			mu.Unlock()
			<-block
			return srv.RoundTrip(r)
		})
		p := &Pacer{Rate: 100, Headroom: 1}
		c := &http.Client{Transport: p.Wrap(gate)}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() { get(t, c, "http://a.test/") })
		}
		synctest.Wait() // all ten took their slots; the first is sent
		close(block)
		wg.Wait()
		st := p.Stats()[0]
		if arrived != 10 || st.Throttled != 10 || st.SlowDowns != 1 || st.Rate < 50 || st.Rate > 51 {
			t.Errorf("arrived %d, stats %v: want 10 throttled, 1 slow-down, rate 50", arrived, st)
		}
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetryAfterAndReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{status: func(n int) (int, http.Header) {
			switch n {
			case 0:
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"3"}}
			case 1:
				return http.StatusTooManyRequests, http.Header{"Retry-After": {time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)}}
			}
			return http.StatusCreated, http.Header{}
		}}
		p := New(0)
		c := &http.Client{Transport: p.Wrap(srv)}
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPut, "http://a.test/obj", bytes.NewReader([]byte("BEGIN:VCALENDAR")))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("answer %d, want 201 after two refusals", resp.StatusCode)
		}
		if len(srv.bodies) != 3 || srv.bodies[0] != srv.bodies[2] || srv.bodies[2] != "BEGIN:VCALENDAR" {
			t.Errorf("bodies received %q: want the same body three times", srv.bodies)
		}
		// Retry-After: 3 held the second try 3 s; the HTTP-date (2 s) the third.
		if d := srv.times[1].Sub(start); d != 3*time.Second {
			t.Errorf("second try after %v, want 3s", d)
		}
		if d := srv.times[2].Sub(srv.times[1]); d != 2*time.Second {
			t.Errorf("third try %v after the second, want 2s", d)
		}
		if st := p.Stats()[0]; st.Retried != 2 || st.Throttled != 2 || st.SlowDowns != 2 {
			t.Errorf("stats %v: want 2 retried, 2 throttled, 2 slow-downs", st)
		}

		// A body that cannot be replayed is not sent again: the caller
		// gets the 429.
		srv2 := &server{status: func(int) (int, http.Header) { return http.StatusTooManyRequests, http.Header{} }}
		c2 := &http.Client{Transport: New(0).Wrap(srv2)}
		req2, _ := http.NewRequest(http.MethodPut, "http://a.test/obj", io.NopCloser(strings.NewReader("x")))
		resp2, err := c2.Do(req2)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusTooManyRequests || len(srv2.times) != 1 {
			t.Errorf("unreplayable body: answer %d after %d sends, want 429 after 1", resp2.StatusCode, len(srv2.times))
		}
		// Retries run out.
		srv3 := &server{status: func(int) (int, http.Header) { return http.StatusTooManyRequests, http.Header{} }}
		c3 := &http.Client{Transport: (&Pacer{Retries: 2}).Wrap(srv3)}
		if code := get(t, c3, "http://a.test/"); code != http.StatusTooManyRequests || len(srv3.times) != 3 {
			t.Errorf("answer %d after %d sends, want 429 after 3", code, len(srv3.times))
		}
	})
}

func TestRetryAfterCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{status: func(n int) (int, http.Header) {
			if n == 0 {
				return http.StatusServiceUnavailable, http.Header{"Retry-After": {"86400"}}
			}
			return http.StatusOK, http.Header{}
		}}
		p := &Pacer{MaxPause: 5 * time.Second}
		c := &http.Client{Transport: p.Wrap(srv)}
		get(t, c, "http://a.test/")
		start := time.Now()
		get(t, c, "http://a.test/")
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("next request waited %v, want the 5s cap", d)
		}
	})
}

func TestWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(1)
		if _, err := p.Wait(t.Context(), "a.test"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := p.Wait(ctx, "a.test"); err == nil {
			t.Error("Wait past the context's deadline returned nil")
		}
	})
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"Mail.Example.COM:8443": "mail.example.com",
		"mail.example.com":      "mail.example.com",
		"127.0.0.1:7071":        "127.0.0.1",
		"[::1]:443":             "::1",
		"[fe80::1]":             "fe80::1",
		"::1":                   "::1",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0":                             0,
		"120":                           2 * time.Minute,
		"Thu, 02 Jan 2025 03:04:15 GMT": 10 * time.Second,
		"Thu, 02 Jan 2025 03:00:00 GMT": 0,
	} {
		got, ok := retryAfter(in, now)
		if !ok || got != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon", "1.5"} {
		if _, ok := retryAfter(in, now); ok {
			t.Errorf("retryAfter(%q) accepted", in)
		}
	}
	if got, _ := retryAfter("99999999999", now); got != 24*time.Hour {
		t.Errorf("huge Retry-After = %v, want capped at 24h before MaxPause", got)
	}
}

// gap is the spacing of requests at rate r, as the Pacer computes it.
func gap(r float64) time.Duration { return time.Duration(float64(time.Second) / r) }
