package faultproxy

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync/atomic"
)

// HTTP is an http.Handler that forwards requests to Next and injects HTTP
// faults: 503 answers, and connection resets before the request reaches Next
// (the request is lost) or after Next handled it (the response is lost, the
// change happened). Request n draws its fate from a PCG seeded with (Seed, n),
// so a run reproduces when requests arrive in the same order. It is safe for
// concurrent use once serving.
type HTTP struct {
	// Next handles requests that get no fault, typically NewReverseProxy.
	Next http.Handler
	// Seed selects the sequence.
	Seed uint64
	// Unavailable is the fraction of requests answered 503 Service
	// Unavailable without reaching Next.
	Unavailable float64
	// ResetBefore is the fraction of requests whose connection is reset
	// before they reach Next.
	ResetBefore float64
	// ResetAfter is the fraction of requests whose connection is reset after
	// Next handled them, so the client never sees the answer.
	ResetAfter float64
	// Methods limits faults to these methods ("PUT", "REPORT"); empty means all.
	Methods []string

	off                                     atomic.Bool
	next                                    atomic.Int64
	requests, unavailable, resetsB, resetsA atomic.Int64
}

// HTTPStats counts what an HTTP fault handler did.
type HTTPStats struct {
	Requests    int64 // requests seen
	Unavailable int64 // answered 503
	ResetBefore int64 // reset before reaching Next
	ResetAfter  int64 // reset after Next handled them
}

// Faults is the number of faults injected.
func (s HTTPStats) Faults() int64 { return s.Unavailable + s.ResetBefore + s.ResetAfter }

// String lists the counters on one line, for test logs.
func (s HTTPStats) String() string {
	return fmt.Sprintf("requests=%d unavailable=%d reset-before=%d reset-after=%d",
		s.Requests, s.Unavailable, s.ResetBefore, s.ResetAfter)
}

// NewReverseProxy returns a reverse proxy to target that keeps the Host header
// of the target and passes errors on as 502.
func NewReverseProxy(target *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
	}
}

// SetEnabled turns fault injection on (the default) or off.
func (h *HTTP) SetEnabled(on bool) { h.off.Store(!on) }

// Stats returns a snapshot of the counters.
func (h *HTTP) Stats() HTTPStats {
	return HTTPStats{Requests: h.requests.Load(), Unavailable: h.unavailable.Load(),
		ResetBefore: h.resetsB.Load(), ResetAfter: h.resetsA.Load()}
}

// ServeHTTP implements http.Handler.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if h.off.Load() || (len(h.Methods) > 0 && !slices.Contains(h.Methods, r.Method)) {
		h.Next.ServeHTTP(w, r)
		return
	}
	rng := rand.New(rand.NewPCG(h.Seed, uint64(h.next.Add(1)-1)))
	x := rng.Float64()
	switch {
	case x < h.Unavailable:
		h.unavailable.Add(1)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "faultproxy: injected 503", http.StatusServiceUnavailable)
	case x < h.Unavailable+h.ResetBefore:
		h.resetsB.Add(1)
		hijackReset(w)
	case x < h.Unavailable+h.ResetBefore+h.ResetAfter:
		rec := httptest.NewRecorder()
		h.Next.ServeHTTP(rec, r)
		h.resetsA.Add(1)
		hijackReset(w)
	default:
		h.Next.ServeHTTP(w, r)
	}
}

// hijackReset aborts the request's connection with a TCP RST, or, when the
// connection cannot be hijacked (HTTP/2), makes the server abort the stream.
func hijackReset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		resetConn(nc.NetConn())
		_ = c.Close()
		return
	}
	resetConn(c)
}
