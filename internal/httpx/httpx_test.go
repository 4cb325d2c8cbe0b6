package httpx

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A redirect inside the origin is followed, with the credential attached
// to the new hop; the caller's request never carries it.
func TestSameOriginRedirectKeepsCredential(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusTemporaryRedirect)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer ts.Close()
	scope, err := NewScope(ts.URL, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c := Authorize(NewClient(Options{}), scope, func(r *http.Request) error { r.SetBasicAuth("u", "p"); return nil })
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/a", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Errorf("status %d %q, want 200 ok", resp.StatusCode, b)
	}
	if req.Header.Get("Authorization") != "" {
		t.Errorf("the caller's request was given the credential")
	}
}

// A request whose URL is outside the scope is refused with an
// *OriginError, by the header-setting wrapper too.
func TestRefuseOutsideScope(t *testing.T) {
	scope, _ := NewScope("https://dav.example.com/", nil, false)
	called := false
	for _, hc := range []Doer{NewClient(Options{}), doerFunc(func(*http.Request) (*http.Response, error) { called = true; return nil, errors.New("sent") })} {
		c := Authorize(hc, scope, func(r *http.Request) error { r.SetBasicAuth("u", "p"); return nil })
		req, _ := http.NewRequest(http.MethodGet, "https://dav.example.com:8443/x", nil)
		_, err := c.Do(req)
		var oe *OriginError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "https://dav.example.com:8443/x") {
			t.Errorf("%T: %v, want an *OriginError naming the URL", hc, err)
		}
	}
	if called {
		t.Errorf("the wrapped client was called")
	}
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// Options.Wrap sees every request (a pacer slots in there).
func TestWrap(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	n := 0
	c := NewClient(Options{IdleTimeout: time.Second, Wrap: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { n++; return rt.RoundTrip(r) })
	}})
	for range 3 {
		resp, err := c.Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n != 3 {
		t.Errorf("wrapper saw %d requests, want 3", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
