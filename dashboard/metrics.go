package dashboard

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// Metric label values are bounded sets: phase names, outcomes, statuses.
// An account address never becomes a label value.

// Metrics holds the Prometheus series of a run on a private registry (never
// the global default one, so that an embedder's own metrics stay apart).
// Its Observe method is fed from the runner's events.
type Metrics struct {
	reg *prometheus.Registry

	items         *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	progressItems *prometheus.CounterVec
	progressBytes *prometheus.CounterVec
	problems      *prometheus.CounterVec
	phaseResults  *prometheus.CounterVec
	phaseDuration *prometheus.HistogramVec
	inPhase       *prometheus.GaugeVec
	runAccounts   prometheus.Gauge
	runStarted    prometheus.Gauge

	// Per server (host:port); nil in NewStoreMetrics.
	opDuration  *prometheus.HistogramVec
	opErrors    *prometheus.CounterVec
	retries     *prometheus.CounterVec
	throttled   *prometheus.CounterVec
	connections *prometheus.GaugeVec
	budget      *prometheus.GaugeVec
}

// NewMetrics builds the registry. counts, when not nil, is asked on every
// scrape for the number of accounts per state (from the shared state store,
// so that the figure stays right across runners and after one dies).
func NewMetrics(counts func(context.Context) (map[string]int, error)) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.items = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_items_total",
		Help: "Items of finished account phases, by phase and outcome: messages for the mail phase, calendar objects and vCards for calendars and contacts. Outcomes: copied, existing (already on the destination), skipped, failed, changed.",
	}, []string{"phase", "outcome"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_bytes_total",
		Help: "Bytes copied by finished account phases.",
	}, []string{"phase"})
	m.progressItems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_progress_items_total",
		Help: "Items copied or found present so far, including phases still running.",
	}, []string{"phase"})
	m.progressBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_progress_bytes_total",
		Help: "Bytes copied so far, including phases still running.",
	}, []string{"phase"})
	m.problems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_item_problems_total",
		Help: "Items reported skipped or failed as they happen, by phase and kind (skipped, failed).",
	}, []string{"phase", "kind"})
	m.phaseResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_phase_results_total",
		Help: "Finished phases (per account, or global), by phase and status.",
	}, []string{"phase", "status"})
	m.phaseDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "zxmigrate_phase_duration_seconds",
		Help:    "Duration of finished phases (per account, or global).",
		Buckets: prometheus.ExponentialBuckets(0.05, 4, 10), // 50 ms to about 3.6 h
	}, []string{"phase"})
	m.inPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zxmigrate_accounts_in_phase",
		Help: "Accounts this runner is working on now, by phase.",
	}, []string{"phase"})
	m.runAccounts = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "zxmigrate_run_accounts",
		Help: "Accounts selected by the current run of this runner.",
	})
	m.runStarted = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "zxmigrate_run_start_time_seconds",
		Help: "Start of the current run of this runner, in seconds since the Unix epoch.",
	})
	m.opDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "zxmigrate_server_op_duration_seconds",
		Help:    "Latency of operations per server (host:port) and operation: IMAP APPEND and FETCH, HTTP requests by method (PUT, GET, REPORT, PROPFIND...). An HTTP request is timed until its answer is read.",
		Buckets: latencyBuckets,
	}, []string{"server", "op"})
	m.opErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_server_op_errors_total",
		Help: "Operations that failed, per server and operation: IMAP NO, BAD, BYE or a broken connection; HTTP 429, 5xx or a transport error.",
	}, []string{"server", "op"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_server_retries_total",
		Help: "Work tried again, per server and reason (BYE, UNAVAILABLE, LIMIT, 429, 503, timeout, network...): dials after a BYE greeting, HTTP requests the pacer sends again, folder passes and DAV operations retried with backoff.",
	}, []string{"server", "reason"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zxmigrate_server_throttle_answers_total",
		Help: "Answers of a server saying it is over its limits, per server and answer: IMAP BYE, NO [UNAVAILABLE], [LIMIT] or [INUSE], HTTP 429 and 503.",
	}, []string{"server", "answer"})
	m.connections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zxmigrate_server_connections",
		Help: "Connections in use per server and side (source, destination; http when unknown): open IMAP connections, HTTP requests in flight. Each one holds a slot of the server's budget.",
	}, []string{"server", "side"})
	m.budget = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zxmigrate_server_budget",
		Help: "Connections a server may have at once: the budget all runners share when the state holds one, else this runner's own limit.",
	}, []string{"server"})
	build := buildInfo()
	m.reg.MustRegister(m.items, m.bytes, m.progressItems, m.progressBytes, m.problems, m.phaseResults,
		m.phaseDuration, m.inPhase, m.runAccounts, m.runStarted, build,
		m.opDuration, m.opErrors, m.retries, m.throttled, m.connections, m.budget,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if counts != nil {
		m.reg.MustRegister(&accountsCollector{counts: counts, desc: accountsDesc()})
	}
	return m
}

// NewStoreMetrics builds a registry for a state store alone (`migrate
// status --serve`): build info and the accounts per state, without the
// series of a runner in this process.
func NewStoreMetrics(counts func(context.Context) (map[string]int, error)) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(buildInfo(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&accountsCollector{counts: counts, desc: accountsDesc()})
	return m
}

func accountsDesc() *prometheus.Desc {
	return prometheus.NewDesc("zxmigrate_accounts", "Accounts per state in the state store (all runners sharing it).", []string{"state"}, nil)
}

func buildInfo() prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "zxmigrate_build_info",
		Help:        "Always 1; the labels name the build.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

func (m *Metrics) op(server, op string, d time.Duration, err error) {
	if m == nil || m.opDuration == nil {
		return
	}
	m.opDuration.WithLabelValues(server, op).Observe(d.Seconds())
	if err != nil {
		m.opErrors.WithLabelValues(server, op).Inc()
	}
}

func (m *Metrics) retry(server, reason string) {
	if m == nil || m.retries == nil {
		return
	}
	m.retries.WithLabelValues(server, reason).Inc()
}

func (m *Metrics) throttle(server, answer string) {
	if m == nil || m.throttled == nil {
		return
	}
	m.throttled.WithLabelValues(server, answer).Inc()
}

// SetServerConnections sets the connections in use to server (host:port)
// from side (source, destination). It is how a connection budget, in
// process or kept in a shared store, shows its slots in use. It is safe
// for concurrent use and does nothing on a nil Metrics.
func (m *Metrics) SetServerConnections(server, side string, n int) {
	if m == nil || m.connections == nil {
		return
	}
	m.connections.WithLabelValues(server, side).Set(float64(n))
}

// SetServerBudget sets how many connections server (host:port) may have
// at once. It is safe for concurrent use and does nothing on a nil
// Metrics.
func (m *Metrics) SetServerBudget(server string, n int) {
	if m == nil || m.budget == nil {
		return
	}
	m.budget.WithLabelValues(server).Set(float64(n))
}

// Registry returns the private registry, for promhttp or tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe updates the series from one runner event. It is safe for
// concurrent use. Progress deltas are given by the caller, which tracks the
// cumulative counts per account and phase.
func (m *Metrics) observe(ev migrate.Event, dItems, dBytes int64) {
	switch e := ev.(type) {
	case migrate.RunStarted:
		m.runAccounts.Set(float64(len(e.Accounts)))
		m.runStarted.Set(float64(e.Time.UnixNano()) / 1e9)
		for _, ph := range e.Phases {
			if ph.IsAccountPhase() {
				m.inPhase.WithLabelValues(string(ph)).Set(0)
			}
		}
	case migrate.PhaseStarted:
		if e.Account != "" {
			m.inPhase.WithLabelValues(string(e.Phase)).Inc()
		}
	case migrate.Progress:
		if e.Phase == migrate.PhaseVerify || e.Account == "" {
			return // verification reads, global phases copy no messages or objects
		}
		m.progressItems.WithLabelValues(string(e.Phase)).Add(float64(dItems))
		m.progressBytes.WithLabelValues(string(e.Phase)).Add(float64(dBytes))
	case migrate.ItemProblem:
		kind := "failed"
		if e.Skipped {
			kind = "skipped"
		}
		m.problems.WithLabelValues(string(e.Phase), kind).Inc()
	case migrate.PhaseFinished:
		res := e.Result
		ph := string(res.Phase)
		if e.Account != "" {
			m.inPhase.WithLabelValues(ph).Dec()
			if res.Phase != migrate.PhaseVerify {
				for _, o := range []struct {
					name string
					n    int64
				}{{"copied", res.Copied}, {"existing", res.Existing}, {"skipped", res.Skipped}, {"failed", res.Failed}, {"changed", res.Changed}} {
					m.items.WithLabelValues(ph, o.name).Add(float64(o.n))
				}
				m.bytes.WithLabelValues(ph).Add(float64(res.Bytes))
				// What progress events did not report before the result.
				m.progressItems.WithLabelValues(ph).Add(float64(dItems))
				m.progressBytes.WithLabelValues(ph).Add(float64(dBytes))
			}
		}
		m.phaseResults.WithLabelValues(ph, string(res.Status)).Inc()
		if !res.Started.IsZero() && !res.Finished.IsZero() {
			m.phaseDuration.WithLabelValues(ph).Observe(res.Finished.Sub(res.Started).Seconds())
		}
	}
}

// accountsCollector asks the state store on each scrape.
type accountsCollector struct {
	counts func(context.Context) (map[string]int, error)
	desc   *prometheus.Desc
}

func (c *accountsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *accountsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	if counts == nil {
		return // no state store yet
	}
	for _, st := range allStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[string(st)]), string(st))
	}
}

// allStates lists the account states the store knows, so that every series
// exists from the first scrape (at 0).
var allStates = []migrate.Status{migrate.StatusPending, migrate.StatusRunning, migrate.StatusDone,
	migrate.StatusPartial, migrate.StatusFailed, migrate.StatusNotRun, migrate.StatusInterrupted}

// buildVersion is the main module's version, "(devel)" for a local build.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
