package faultproxy

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ZimbraMaxRequestsPerSec is Zimbra's default zimbraHttpDosFilterMaxRequestsPerSec
// (Zimbra/zm-mailbox store/conf/attrs/zimbra-attrs.xml).
const ZimbraMaxRequestsPerSec = 30

// DoSFilter is an http.Handler that rejects requests over a rate per
// client IP address, as Jetty's DoSFilter does in front of every servlet of
// a Zimbra or Carbonio mailbox server
// (zextras/carbonio-mailbox store/src/main/java/com/zextras/mailbox/MailboxAPIs.java:
// delayMs from zimbraHttpDosFilterDelayMillis, default -1 = reject;
// maxRequestsPerSec from zimbraHttpDosFilterMaxRequestsPerSec, default 30;
// remotePort false, so clients are told apart by IP address).
//
// Each client keeps the arrival times (milliseconds) of its last
// MaxRequestsPerSec requests in a ring; a request is rejected when the
// time it replaces in the ring is less than a second old, and rejected
// requests take their place in the ring too (jetty/jetty.project
// jetty-servlets/src/main/java/org/eclipse/jetty/servlets/DoSFilter.java,
// RateTracker.isRateExceeded). A rejection is answered with Status
// (Jetty's default tooManyCode is 429) and the header "DoSFilter:
// unavailable", without Retry-After, as Jetty does.
//
// Zimbra also tracks an authenticated user by its auth token rather than by
// address and exempts loopback and zimbraHttpThrottleSafeIPs; this handler
// tracks addresses only and exempts nothing, so that tests on 127.0.0.1
// meet it. It is safe for concurrent use.
type DoSFilter struct {
	// Next handles the requests under the limit.
	Next http.Handler
	// MaxRequestsPerSec is the limit per client; 0 means
	// ZimbraMaxRequestsPerSec.
	MaxRequestsPerSec int
	// Status answers rejected requests; 0 means 429 Too Many Requests
	// (503 is Jetty's other usual choice).
	Status int

	mu       sync.Mutex
	trackers map[string]*rateTracker

	requests, rejected atomic.Int64
}

// DoSStats counts what a DoSFilter did.
type DoSStats struct {
	Requests int64 // requests seen, rejected ones included
	Rejected int64 // requests answered with Status
}

// String lists the counters on one line, for test logs.
func (s DoSStats) String() string {
	return fmt.Sprintf("requests=%d rejected=%d", s.Requests, s.Rejected)
}

// Stats returns a snapshot of the counters.
func (d *DoSFilter) Stats() DoSStats {
	return DoSStats{Requests: d.requests.Load(), Rejected: d.rejected.Load()}
}

// rateTracker is Jetty's RateTracker: the arrival times of the last n
// requests of one client.
type rateTracker struct {
	times []int64 // milliseconds; 0 = free slot
	next  int
}

// exceeded records a request arriving at now (milliseconds) and reports
// whether it makes more than len(times) requests within one second.
func (t *rateTracker) exceeded(now int64) bool {
	last := t.times[t.next]
	t.times[t.next] = now
	t.next = (t.next + 1) % len(t.times)
	return last != 0 && now-last < 1000
}

// ServeHTTP implements http.Handler.
func (d *DoSFilter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.requests.Add(1)
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	if d.over(ip, time.Now().UnixMilli()) {
		d.rejected.Add(1)
		status := d.Status
		if status == 0 {
			status = http.StatusTooManyRequests
		}
		w.Header().Set("DoSFilter", "unavailable")
		http.Error(w, http.StatusText(status), status)
		return
	}
	d.Next.ServeHTTP(w, r)
}

func (d *DoSFilter) over(ip string, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.trackers == nil {
		d.trackers = map[string]*rateTracker{}
	}
	t := d.trackers[ip]
	if t == nil {
		n := d.MaxRequestsPerSec
		if n <= 0 {
			n = ZimbraMaxRequestsPerSec
		}
		t = &rateTracker{times: make([]int64, n)}
		d.trackers[ip] = t
	}
	return t.exceeded(now)
}
