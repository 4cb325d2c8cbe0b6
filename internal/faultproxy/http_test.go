package faultproxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// store is a tiny key-value HTTP server: PUT stores the body, GET returns it.
type store struct {
	mu   sync.Mutex
	data map[string]string
	puts int
}

func (s *store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		s.data[r.URL.Path] = string(b)
		s.puts++
		w.WriteHeader(http.StatusCreated)
	default:
		v, ok := s.data[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, v)
	}
}

func TestHTTPFaults(t *testing.T) {
	backend := &store{data: map[string]string{}}
	bs := httptest.NewServer(backend)
	defer bs.Close()
	u, _ := url.Parse(bs.URL)
	h := &HTTP{Next: NewReverseProxy(u), Seed: 3, Unavailable: 0.2, ResetBefore: 0.1, ResetAfter: 0.1, Methods: []string{http.MethodPut}}
	fs := httptest.NewServer(h)
	defer fs.Close()

	const n = 200
	outcomes := map[string]int{}
	for i := range n {
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/obj%d", fs.URL, i), strings.NewReader(fmt.Sprint("v", i)))
		resp, err := fs.Client().Do(req)
		switch {
		case err != nil:
			outcomes["error"]++
		default:
			outcomes[resp.Status]++
			resp.Body.Close()
		}
	}
	st := h.Stats()
	t.Logf("outcomes %v, stats %v", outcomes, st)
	if st.Requests != n || st.Faults() == 0 {
		t.Fatalf("stats %v: want %d requests and some faults", st, n)
	}
	if int64(outcomes["503 Service Unavailable"]) != st.Unavailable {
		t.Errorf("%d answers were 503, stats say %d", outcomes["503 Service Unavailable"], st.Unavailable)
	}
	if int64(outcomes["error"]) != st.ResetBefore+st.ResetAfter {
		t.Errorf("%d requests failed, stats say %d resets", outcomes["error"], st.ResetBefore+st.ResetAfter)
	}
	// Reset-after requests reached the backend: the lost-answer case.
	if want := int64(outcomes["201 Created"]) + st.ResetAfter; int64(backend.puts) != want {
		t.Errorf("backend stored %d PUTs, want %d (201s + reset-after)", backend.puts, want)
	}
	// GETs are not in Methods and always pass.
	resp, err := fs.Client().Get(fs.URL + "/nothing")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET through the fault handler: %v, %v", resp, err)
	}
	// Same seed, same fates.
	h2 := &HTTP{Seed: 3, Unavailable: 0.2, ResetBefore: 0.1, ResetAfter: 0.1}
	h2.Next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	fs2 := httptest.NewServer(h2)
	defer fs2.Close()
	for i := range n {
		// PUT, because net/http replays a GET on a reset reused connection.
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/%d", fs2.URL, i), strings.NewReader("x"))
		if resp, err := fs2.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if got := h2.Stats(); got != st {
		t.Errorf("same seed gave %v, first run %v", got, st)
	}
}

func TestDoSFilter(t *testing.T) {
	backend := &store{data: map[string]string{"/x": "ok"}}
	d := &DoSFilter{Next: backend}
	fs := httptest.NewServer(d)
	defer fs.Close()

	// A burst well over 30 requests within a second: the 31st and later
	// are refused with 429 and Jetty's header, and refused requests keep
	// the window full.
	codes := map[int]int{}
	var hdr string
	for range 60 {
		resp, err := fs.Client().Get(fs.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			hdr = resp.Header.Get("DoSFilter")
		}
		resp.Body.Close()
	}
	st := d.Stats()
	t.Logf("burst of 60: %v, %v", codes, st)
	if codes[http.StatusOK] > 30 || codes[http.StatusTooManyRequests] < 30 || st.Rejected != int64(codes[http.StatusTooManyRequests]) || st.Requests != 60 {
		t.Errorf("burst of 60: answers %v, stats %v: want at most 30 OK and the rest 429", codes, st)
	}
	if hdr != "unavailable" {
		t.Errorf("DoSFilter header %q, want unavailable", hdr)
	}
}

func TestRateTracker(t *testing.T) {
	tr := &rateTracker{times: make([]int64, 3)}
	for i, c := range []struct {
		now  int64
		want bool
	}{
		{1000, false}, {1100, false}, {1200, false},
		{1999, true},  // the 4th within 1 s of the 1st
		{2100, false}, // the one it replaces (1100) is 1000 ms old
		{2150, true},  // replaces 1200
		{3999, false}, // replaces 1999
	} {
		if got := tr.exceeded(c.now); got != c.want {
			t.Errorf("request %d at %d: exceeded %v, want %v", i, c.now, got, c.want)
		}
	}
	// A Status of 503 is used instead of 429.
	d := &DoSFilter{Next: http.NotFoundHandler(), MaxRequestsPerSec: 1, Status: http.StatusServiceUnavailable}
	rec := httptest.NewRecorder()
	for range 2 {
		rec = httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("second request within a second with a limit of 1: %d, want 503", rec.Code)
	}
}
