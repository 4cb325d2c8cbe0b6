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
