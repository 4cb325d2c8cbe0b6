package dashboard

import (
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/migrate"
)

// latencyBuckets are the upper bounds, in seconds, of the operation
// latency histograms: 1 ms to about 65 s.
var latencyBuckets = func() []float64 {
	b := make([]float64, 17)
	for i := range b {
		b[i] = 0.001 * math.Pow(2, float64(i))
	}
	return b
}()

// rateWindow is the span, in seconds, over which the dashboard gives
// operations per second.
const rateWindow = 10

// serverStat is what the observer learned about one server.
type serverStat struct {
	conns                             map[string]int // in use now, by side
	budget                            int
	ops, errs, retries, throttled     int64
	hist                              []int64 // per latencyBuckets, then +Inf
	perSec                            [rateWindow]int64
	stamp                             [rateWindow]int64 // Unix second of each perSec slot
	lastRetryReason, lastThrottleWord string
}

// servers aggregates the reports of a run's observer per server, for the
// dashboard's table, and passes them on to the Prometheus series. It
// implements obs.Observer and is safe for concurrent use.
type servers struct {
	metrics *Metrics // may be nil

	mu sync.Mutex
	m  map[string]*serverStat
}

func newServers(m *Metrics) *servers { return &servers{metrics: m, m: map[string]*serverStat{}} }

func (s *servers) statLocked(server string) *serverStat {
	st := s.m[server]
	if st == nil {
		st = &serverStat{conns: map[string]int{}, hist: make([]int64, len(latencyBuckets)+1)}
		s.m[server] = st
	}
	return st
}

// Op implements obs.Observer.
func (s *servers) Op(server, op string, d time.Duration, err error) {
	server = strings.ToLower(server)
	if server == "" {
		return
	}
	s.metrics.op(server, op, d, err)
	now := time.Now().Unix()
	sec := d.Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statLocked(server)
	st.ops++
	if err != nil {
		st.errs++
	}
	i := sort.SearchFloat64s(latencyBuckets, sec)
	st.hist[i]++
	slot := now % rateWindow
	if st.stamp[slot] != now {
		st.stamp[slot], st.perSec[slot] = now, 0
	}
	st.perSec[slot]++
}

// Retry implements obs.Observer.
func (s *servers) Retry(server, reason string) {
	server = strings.ToLower(server)
	if server == "" {
		return
	}
	s.metrics.retry(server, reason)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statLocked(server)
	st.retries++
	st.lastRetryReason = reason
}

// Throttle implements obs.Observer.
func (s *servers) Throttle(server, answer string) {
	server = strings.ToLower(server)
	if server == "" {
		return
	}
	s.metrics.throttle(server, answer)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statLocked(server)
	st.throttled++
	st.lastThrottleWord = answer
}

// Conn implements obs.Observer.
func (s *servers) Conn(server, side string, delta int) {
	server = strings.ToLower(server)
	if server == "" {
		return
	}
	s.mu.Lock()
	st := s.statLocked(server)
	st.conns[side] += delta
	n := st.conns[side]
	s.mu.Unlock()
	s.metrics.SetServerConnections(server, side, n)
}

// Budget implements obs.Observer.
func (s *servers) Budget(server string, n int) {
	server = strings.ToLower(server)
	if server == "" {
		return
	}
	s.mu.Lock()
	s.statLocked(server).budget = n
	s.mu.Unlock()
	s.metrics.SetServerBudget(server, n)
}

// quantile estimates the q-quantile of a histogram as Prometheus'
// histogram_quantile does: linear within the bucket that holds it.
func quantile(q float64, hist []int64) float64 {
	var total int64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum int64
	for i, n := range hist {
		if float64(cum+n) >= rank && n > 0 {
			if i == len(latencyBuckets) {
				return latencyBuckets[len(latencyBuckets)-1] // beyond the last bound
			}
			lo := 0.0
			if i > 0 {
				lo = latencyBuckets[i-1]
			}
			return lo + (latencyBuckets[i]-lo)*(rank-float64(cum))/float64(n)
		}
		cum += n
	}
	return latencyBuckets[len(latencyBuckets)-1]
}

// fill completes a Load row from what was observed of its server.
func (s *servers) fill(l *Load, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[l.Server]
	if st == nil {
		return
	}
	s.fillLocked(l, st, now)
}

func (s *servers) fillLocked(l *Load, st *serverStat, now time.Time) {
	for _, n := range st.conns {
		l.Connections += n
	}
	if st.budget > 0 {
		l.ConnectionsBudget = st.budget
	}
	l.Ops, l.Errors, l.Retries, l.Throttled = st.ops, st.errs, st.retries, st.throttled
	l.LastThrottle = st.lastThrottleWord
	sec := now.Unix()
	var recent int64
	for i := range rateWindow {
		if st.stamp[i] > sec-rateWindow && st.stamp[i] <= sec {
			recent += st.perSec[i]
		}
	}
	l.Rate = float64(recent) / rateWindow
	if st.ops > 0 {
		l.P50, l.P95 = quantile(0.5, st.hist), quantile(0.95, st.hist)
	}
}

// planLoad lists the servers of the plan, then any other server the run
// reached (an admin API), with the accounts working on each against the
// budget of accounts at once, and what the observer saw: connections in
// use against the connection budget, operations per second, retries,
// throttle answers and latency. IMAP serves the mail and verify phases,
// DAV calendars, contacts and verify. srv may be nil (a state store
// alone): the rows then hold the plan's budgets only.
func planLoad(p *migrate.Plan, active map[migrate.Phase]int, srv *servers) []Load {
	now := time.Now()
	var out []Load
	seen := map[string]int{} // server -> index in out
	if p != nil {
		budget := p.Concurrency.ConcurrentAccounts
		if budget <= 0 {
			budget = migrate.DefaultConcurrentAccounts
		}
		conns := p.Concurrency.Connections()
		rate := p.Limits.HTTPRate
		switch {
		case rate == 0:
			rate = pace.DefaultRate * pace.DefaultHeadroom
		case rate < 0:
			rate = 0
		default:
			rate *= pace.DefaultHeadroom
		}
		imap := active[migrate.PhaseMail] + active[migrate.PhaseVerify]
		dav := active[migrate.PhaseCalendars] + active[migrate.PhaseContacts] + active[migrate.PhaseVerify]
		add := func(l Load) {
			if i, ok := seen[l.Server]; ok { // one server on both sides
				if !strings.Contains(out[i].Side, l.Side) {
					out[i].Side += "+" + l.Side
				}
				return
			}
			seen[l.Server] = len(out)
			out = append(out, l)
		}
		for _, s := range []struct {
			side string
			ep   migrate.Endpoint
		}{{"source", p.Source}, {"destination", p.Destination}} {
			if s.ep.IMAP.Address != "" {
				add(Load{Server: strings.ToLower(s.ep.IMAP.Address), Side: s.side, Kind: "IMAP", Active: imap, Budget: budget, ConnectionsBudget: conns})
			}
			if h := urlHostPort(s.ep.DAV.URL); h != "" {
				add(Load{Server: h, Side: s.side, Kind: "DAV", Active: dav, Budget: budget, RateLimit: rate})
			}
		}
		for _, s := range []struct {
			side string
			u    string
		}{{"source", p.Source.Admin.URL}, {"destination", p.Destination.Admin.URL}} {
			if h := urlHostPort(s.u); h != "" {
				add(Load{Server: h, Side: s.side, Kind: "admin", RateLimit: rate})
			}
		}
	}
	if srv == nil {
		return out
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i := range out {
		if st := srv.m[out[i].Server]; st != nil {
			srv.fillLocked(&out[i], st, now)
		}
	}
	var extra []string
	for name := range srv.m {
		if _, ok := seen[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		st := srv.m[name]
		l := Load{Server: name, Kind: "other"}
		var sides []string
		for side := range st.conns {
			sides = append(sides, side)
		}
		sort.Strings(sides)
		l.Side = strings.Join(sides, "+")
		srv.fillLocked(&l, st, now)
		out = append(out, l)
	}
	return out
}

// urlHostPort returns the host:port of u (port made explicit), never its
// user information or path.
func urlHostPort(u string) string {
	if u == "" {
		return ""
	}
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return obs.HostPort(pu)
}
