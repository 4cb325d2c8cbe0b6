// Package pace keeps the HTTP requests of a whole run under the request
// rate a server allows each client, and backs off when the server says it
// is over.
//
// Zimbra and Carbonio put Jetty's DoSFilter in front of every servlet of a
// mailbox server: SOAP, REST, DAV and file upload share one filter, since
// they live in one servlet context served on every port
// (zextras/carbonio-mailbox store/src/main/java/com/zextras/mailbox/MailboxAPIs.java,
// addFilters). It allows zimbraHttpDosFilterMaxRequestsPerSec requests per
// second per client (default 30, Zimbra/zm-mailbox
// store/conf/attrs/zimbra-attrs.xml) and, with zimbraHttpDosFilterDelayMillis
// at its default -1, rejects the rest with 429 Too Many Requests (the
// DoSFilter's default tooManyCode, jetty/jetty.project
// jetty-servlets/src/main/java/org/eclipse/jetty/servlets/DoSFilter.java).
// Rejected requests count in the filter's window too, so a client that
// keeps sending at the limit keeps being rejected.
//
// A Pacer therefore paces by host name, whatever the scheme and port:
// every request to one server waits for its slot, requests are spaced
// evenly (no bursts), and the whole run shares one Pacer. A 429 or 503
// answer halves that host's rate (at most once per round of requests
// already sent) and a Retry-After holds the host's next requests back;
// the rate then grows back by Step requests per second every second up to
// the ceiling. A 429 is sent again by the Pacer itself, up to Retries
// times, when its body can be replayed: the server refused it before
// doing anything. Other answers go back to the caller unchanged.
//
// Use:
//
//	p := pace.New(0) // DefaultRate
//	hc := &http.Client{Transport: p.Wrap(http.DefaultTransport)}
package pace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/obs"
)

// Defaults for zero Pacer fields.
const (
	// DefaultRate is Zimbra's default zimbraHttpDosFilterMaxRequestsPerSec.
	DefaultRate = 30
	// DefaultHeadroom is the share of Rate the Pacer sends at most: the
	// DoSFilter rejects the request whose 30th predecessor arrived less
	// than a second earlier (timestamps in milliseconds), so requests
	// spaced exactly 1/30 s apart at the client arrive closer than that
	// whenever the network or the scheduler delays one of them.
	DefaultHeadroom = 0.95
	// DefaultStep is how many requests per second the rate grows back
	// each second after a slow-down.
	DefaultStep = 1.0
	// DefaultMinRate is the floor of the rate after slow-downs.
	DefaultMinRate = 1.0
	// DefaultRetries is how many times a 429 is sent again.
	DefaultRetries = 3
	// DefaultMaxPause caps one Retry-After.
	DefaultMaxPause = 2 * time.Minute

	// With pacing off, the first slow-down halves unpacedStart requests
	// per second, and the host is unpaced again once its rate grew back
	// to unpacedRecovered.
	unpacedStart     = 2 * DefaultRate
	unpacedRecovered = 4 * DefaultRate
)

// Pacer spaces the requests sent to each host. The fields are its options
// and must not change once requests flow; zero values mean the defaults.
// It is safe for concurrent use.
type Pacer struct {
	// Rate is the number of requests per second each host allows one
	// client (Zimbra's zimbraHttpDosFilterMaxRequestsPerSec); 0 means
	// DefaultRate, negative turns pacing off (Retry-After and slow-downs
	// still apply).
	Rate float64
	// Headroom is the share of Rate actually sent, in (0, 1]; 0 means
	// DefaultHeadroom.
	Headroom float64
	// Step is the growth of the rate, in requests per second per second,
	// after a slow-down; 0 means DefaultStep.
	Step float64
	// MinRate is the lowest rate slow-downs reach; 0 means DefaultMinRate.
	MinRate float64
	// Retries is how many times a request answered 429 is sent again when
	// its body can be replayed; 0 means DefaultRetries, negative none.
	Retries int
	// MaxPause caps the wait a Retry-After asks for; 0 means
	// DefaultMaxPause.
	MaxPause time.Duration

	mu    sync.Mutex
	hosts map[string]*host
}

// New returns a Pacer allowing rate requests per second per host (0 means
// DefaultRate, negative no pacing).
func New(rate float64) *Pacer { return &Pacer{Rate: rate} }

var defaultPacer = New(0)

// Default returns the process's shared Pacer at DefaultRate, for the
// default HTTP clients of packages whose callers give none: one client
// address, one pace per host, however many clients the process builds.
// A migration run builds its own Pacer from its plan instead.
func Default() *Pacer { return defaultPacer }

// host is the pacing state of one host. Guarded by Pacer.mu.
type host struct {
	next   time.Time // earliest start of the next request
	paused time.Time // Retry-After: nothing starts before it
	floor  float64   // rate right after the last slow-down
	since  time.Time // time of the last slow-down; zero: never
	gen    uint64    // slow-downs so far: the generation of new slots
	st     HostStats
}

// HostStats counts what a Pacer did for one host.
type HostStats struct {
	Host      string        // host name, lower case
	Requests  int64         // requests sent, retries included
	Throttled int64         // answers 429 or 503
	Retried   int64         // 429s sent again by the Pacer
	SlowDowns int64         // times the rate was halved
	Waited    time.Duration // time requests spent waiting for their slot
	Rate      float64       // current rate in requests per second; +Inf unpaced
}

// String describes the counters on one line.
func (s HostStats) String() string {
	return fmt.Sprintf("%s: requests=%d throttled=%d retried=%d slow-downs=%d waited=%v rate=%.1f/s",
		s.Host, s.Requests, s.Throttled, s.Retried, s.SlowDowns, s.Waited.Round(time.Millisecond), s.Rate)
}

// Stats returns the counters of every host seen, sorted by host.
func (p *Pacer) Stats() []HostStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock()
	out := make([]HostStats, 0, len(p.hosts))
	for _, h := range p.hosts {
		s := h.st
		s.Rate = p.rateLocked(h, now)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// Key returns the pacing key of a request URL's host: its host name in
// lower case, without port, because one DoSFilter serves every port of a
// mailbox server.
func Key(hostport string) string {
	h := hostport
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return strings.ToLower(h[1:i])
		}
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.ToLower(h)
}

func (p *Pacer) clock() time.Time { return time.Now() }

func (p *Pacer) ceiling() float64 {
	r := p.Rate
	if r == 0 {
		r = DefaultRate
	}
	if r < 0 {
		return math.Inf(1)
	}
	hr := p.Headroom
	if hr <= 0 || hr > 1 {
		hr = DefaultHeadroom
	}
	return r * hr
}

func (p *Pacer) step() float64 {
	if p.Step > 0 {
		return p.Step
	}
	return DefaultStep
}

func (p *Pacer) minRate() float64 {
	if p.MinRate > 0 {
		return p.MinRate
	}
	return DefaultMinRate
}

func (p *Pacer) retries() int {
	switch {
	case p.Retries < 0:
		return 0
	case p.Retries == 0:
		return DefaultRetries
	}
	return p.Retries
}

func (p *Pacer) maxPause() time.Duration {
	if p.MaxPause > 0 {
		return p.MaxPause
	}
	return DefaultMaxPause
}

// rateLocked is h's rate at now: the ceiling, or after a slow-down the
// floor grown by Step per second since, up to the ceiling.
func (p *Pacer) rateLocked(h *host, now time.Time) float64 {
	c := p.ceiling()
	if h.since.IsZero() {
		return c
	}
	r := h.floor + p.step()*now.Sub(h.since).Seconds()
	if math.IsInf(c, 1) && r >= unpacedRecovered {
		return c
	}
	return math.Min(r, c)
}

func (p *Pacer) hostLocked(key string) *host {
	if p.hosts == nil {
		p.hosts = map[string]*host{}
	}
	h := p.hosts[key]
	if h == nil {
		h = &host{st: HostStats{Host: key}}
		p.hosts[key] = h
	}
	return h
}

// Slot is a request's turn, as Wait gives it; Observe uses it to tell
// requests paced before a slow-down from those paced after.
type Slot struct {
	gen uint64
}

// reserve takes the next slot of host key and returns when it starts.
func (p *Pacer) reserve(key string) (start time.Time, s Slot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock()
	h := p.hostLocked(key)
	start = now
	if h.paused.After(start) {
		start = h.paused
	}
	r := p.rateLocked(h, start)
	if !math.IsInf(r, 1) {
		if h.next.After(start) {
			start = h.next
		}
		h.next = start.Add(time.Duration(float64(time.Second) / r))
	}
	h.st.Requests++
	h.st.Waited += start.Sub(now)
	return start, Slot{gen: h.gen}
}

// Wait blocks until the next request to hostport may start, or ctx ends.
// It returns the request's slot, for Observe. Wrap calls it for every
// request; code that sends HTTP requests another way calls Wait and
// Observe itself.
func (p *Pacer) Wait(ctx context.Context, hostport string) (Slot, error) {
	start, s := p.reserve(Key(hostport))
	d := start.Sub(p.clock())
	if d <= 0 {
		return s, ctx.Err()
	}
	return s, p.doSleep(ctx, d)
}

func (p *Pacer) doSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Observe tells the Pacer how the server answered a request to hostport
// that had slot s (as Wait returned): a 429 or 503 slows the
// host down and a Retry-After holds its next requests back. Requests that
// took their slots before the last slow-down were paced at the old rate:
// their refusals do not slow the host down again.
func (p *Pacer) Observe(hostport string, s Slot, resp *http.Response) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock()
	h := p.hostLocked(Key(hostport))
	h.st.Throttled++
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
		d = min(d, p.maxPause())
		if until := now.Add(d); until.After(h.paused) {
			h.paused = until
		}
	}
	if s.gen < h.gen {
		return // paced at the old rate: that slow-down covers it
	}
	cur := p.rateLocked(h, now)
	if math.IsInf(cur, 1) {
		cur = unpacedStart
	}
	h.floor = math.Max(cur/2, p.minRate())
	h.since = now
	h.gen++
	h.st.SlowDowns++
	// Requests already given later slots keep them; new ones follow the
	// new spacing from now on.
	if h.next.After(now.Add(time.Duration(float64(time.Second) / h.floor))) {
		h.next = now.Add(time.Duration(float64(time.Second) / h.floor))
	}
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 10.2.3).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Wrap returns a RoundTripper that paces every request through p and then
// sends it with base (nil means http.DefaultTransport).
func (p *Pacer) Wrap(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{p: p, base: base}
}

type transport struct {
	p    *Pacer
	base http.RoundTripper
}

// errNoReplay marks a request whose body cannot be sent again.
var errNoReplay = errors.New("pace: body not replayable")

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	r := req
	for attempt := 0; ; attempt++ {
		slot, err := t.p.Wait(ctx, r.URL.Host)
		if err != nil {
			if r.Body != nil {
				_ = r.Body.Close()
			}
			return nil, err
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		t.p.Observe(r.URL.Host, slot, resp)
		if resp.StatusCode != http.StatusTooManyRequests || attempt >= t.p.retries() {
			return resp, nil
		}
		next, err := replay(req)
		if err != nil {
			return resp, nil
		}
		// The server refused before doing anything: drop the answer and
		// send again once the pacer allows.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		t.p.mu.Lock()
		t.p.hostLocked(Key(r.URL.Host)).st.Retried++
		t.p.mu.Unlock()
		obs.From(ctx).Retry(obs.HostPort(r.URL), "429")
		r = next
	}
}

// replay returns a copy of req with a fresh body, or errNoReplay.
func replay(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return r, nil
	}
	if req.GetBody == nil {
		return nil, errNoReplay
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, errNoReplay
	}
	r.Body = b
	return r, nil
}
