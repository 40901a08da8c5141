package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tally/rewards"
)

// Metrics is the app's own Prometheus registry (no global state, so tests can build
// many apps).
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	ingest         *prometheus.CounterVec
	batchSize      prometheus.Histogram
	commitSeconds  prometheus.Histogram
	settlementRuns *prometheus.CounterVec
	settledAmount  *prometheus.CounterVec
	settledEntries *prometheus.CounterVec
	settlementSecs prometheus.Histogram
	applied        *prometheus.CounterVec
	applyLag       prometheus.Histogram
	applySeconds   prometheus.Histogram
	backlog        prometheus.Gauge
	oldestRecorded prometheus.Gauge
	webhooks       *prometheus.CounterVec // property, outcome
	disabled       *prometheus.CounterVec // property
	unparked       *prometheus.CounterVec // property
	skippedTicks   *prometheus.CounterVec // schedule
	lastSweep      prometheus.Gauge
	ops            opsGauges
}

// opsGauges are what an operator alerts on per property, refreshed by RunGauges on a
// timer rather than on each scrape: the wallet totals read every wallet row, which a
// scrape every few seconds from each of several Prometheus servers must not repeat.
type opsGauges struct {
	backlog     *prometheus.GaugeVec // property
	oldest      *prometheus.GaugeVec // property
	quarantined *prometheus.GaugeVec // property
	pending     *prometheus.GaugeVec // property, currency
	available   *prometheus.GaugeVec // property, currency
	redeemed    *prometheus.GaugeVec // property, currency
	hooks       *prometheus.GaugeVec // property: webhook deliveries pending
	hooksOldest *prometheus.GaugeVec // property
	// hooksDisabled counts the property's endpoints disabled now: their new deliveries
	// are failed unsent, so the pending gauges read 0 while a publisher gets nothing.
	hooksDisabled *prometheus.GaugeVec // property
	clockOffset   prometheus.Gauge
	refreshed     prometheus.Gauge
	// mu serialises refreshes; shown are the properties whose open-event series the last
	// one set, so that a property this process does not know (its events counted from
	// the database during a rolling deploy) loses its series once it has none open.
	mu    sync.Mutex
	shown map[string]bool
}

// BuildInfo identifies the running binary. cmd reads it from the build (version and
// commit stamped by `make build`, else the module's VCS settings); /metrics reports it
// as tally_build_info{version,commit,goversion} = 1.
type BuildInfo struct {
	Version   string
	Commit    string
	GoVersion string
}

// MetricsOption configures NewMetrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct {
	build BuildInfo
}

// WithBuildInfo sets the labels of tally_build_info.
func WithBuildInfo(b BuildInfo) MetricsOption {
	return func(c *metricsConfig) { c.build = b }
}

// NewMetrics registers every collector. Without WithBuildInfo, tally_build_info has
// empty labels.
func NewMetrics(opts ...MetricsOption) *Metrics {
	var cfg metricsConfig
	for _, o := range opts {
		o(&cfg)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tally_build_info", Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": cfg.build.Version, "commit": cfg.build.Commit, "goversion": cfg.build.GoVersion},
	})
	build.Set(1)
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_http_requests_total", Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tally_http_request_duration_seconds", Help: "HTTP request latency by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ingest_events_total", Help: "Provider deliveries by property, source and outcome (accepted, duplicate, invalid, unauthorized, unavailable, not_found, too_large, incomplete, error).",
		}, []string{"property", "source", "result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tally_ingest_batch_events", Help: "Events per group-commit transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tally_ingest_commit_seconds", Help: "Duration of group-commit transactions.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		settlementRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_settlement_runs_total", Help: "Settlement runs by property and status.",
		}, []string{"property", "status"}),
		settledAmount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_settled_amount_total", Help: "Wallet units moved from pending to available (approximate as a float; the ledger is exact).",
		}, []string{"property"}),
		settledEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_settled_entries_total", Help: "Matured pending credits settled.",
		}, []string{"property"}),
		settlementSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tally_settlement_run_seconds", Help: "Duration of settlement runs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_applied_events_total", Help: "Recorded events the applier (or a replay) applied or quarantined, by property and status.",
		}, []string{"property", "status"}),
		applyLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tally_apply_lag_seconds", Help: "Time from an event's receipt to its effects being committed.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tally_apply_batch_seconds", Help: "Duration of apply transactions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_apply_backlog_events", Help: "Events recorded and not yet applied (refreshed every few seconds).",
		}),
		oldestRecorded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_apply_oldest_recorded_seconds", Help: "Age of the oldest event not yet applied; 0 when none.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_webhook_attempts_total", Help: "Webhook delivery attempts by this process, by property and outcome (delivered: a 2xx in time; failed: anything else, retried on the schedule).",
		}, []string{"property", "outcome"}),
		disabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_webhook_endpoints_disabled_total", Help: "Webhook endpoints this process disabled after 5 days without a success, by property.",
		}, []string{"property"}),
		unparked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_webhook_unparked_total", Help: "Webhook deliveries this process found first in their user's line at an endpoint yet waiting parked behind a delivery no longer pending, and made due (their turn came unseen); expected to stay 0.",
		}, []string{"property"}),
		skippedTicks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_schedule_ticks_skipped_total", Help: "Ticks of a schedule (settlement, tournaments) skipped because its previous run was still going.",
		}, []string{"schedule"}), // not "job": Prometheus sets job itself and would rename this one exported_job
		lastSweep: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_settlement_sweep_timestamp_seconds", Help: "When this process's last scheduled settlement of every property ended (Unix time; the schedule's start until then). Alert when it falls behind the schedule.",
		}),
	}
	for _, schedule := range []string{"settlement", "tournaments"} {
		m.skippedTicks.WithLabelValues(schedule) // 0 from the start, for rate() and increase()
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m.ops = opsGauges{
		backlog:       gauge("tally_backlog_events", "Events recorded and not yet applied, by property (refreshed by RunGauges).", "property"),
		oldest:        gauge("tally_backlog_oldest_seconds", "Age of the property's oldest event not yet applied; 0 when none: the apply lag as it stands.", "property"),
		quarantined:   gauge("tally_quarantined_events", "Events kept quarantined for replay, by property.", "property"),
		pending:       gauge("tally_wallet_pending", "Sum of the property's wallets' pending balances, in wallet units (a float for the metric; the ledger is exact).", "property", "currency"),
		available:     gauge("tally_wallet_available", "Sum of the property's wallets' available balances, in wallet units (a float for the metric).", "property", "currency"),
		redeemed:      gauge("tally_wallet_redeemed", "Sum of what the property's users have redeemed, in wallet units (a float for the metric).", "property", "currency"),
		hooks:         gauge("tally_webhook_pending_deliveries", "Webhook deliveries not yet delivered (nor failed for good), by property.", "property"),
		hooksOldest:   gauge("tally_webhook_oldest_pending_seconds", "Age of the property's oldest webhook delivery not yet delivered; 0 when none.", "property"),
		hooksDisabled: gauge("tally_webhook_endpoints_disabled", "The property's configured webhook endpoints disabled now (after 5 days without a success); their new deliveries fail unsent until a success or a retry enables them.", "property"),
		clockOffset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tally_clock_offset_seconds",
			Help: "This process's clock minus the database server's (Postgres; 0 on SQLite), at the last refresh. Each process matures credits and takes leases on its own clock."}),
		refreshed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tally_gauges_refreshed_timestamp_seconds",
			Help: "When the per-property gauges were last refreshed (Unix time); alert when it falls behind."}),
	}
	m.reg.MustRegister(build, m.requests, m.latency, m.ingest, m.batchSize, m.commitSeconds,
		m.settlementRuns, m.settledAmount, m.settledEntries, m.settlementSecs,
		m.applied, m.applyLag, m.applySeconds, m.backlog, m.oldestRecorded, m.webhooks, m.disabled, m.unparked, m.skippedTicks, m.lastSweep,
		m.ops.backlog, m.ops.oldest, m.ops.quarantined, m.ops.pending, m.ops.available, m.ops.redeemed,
		m.ops.hooks, m.ops.hooksOldest, m.ops.hooksDisabled, m.ops.clockOffset, m.ops.refreshed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry exposes the registry (tests read counters from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// oldestSeconds is the age at now of b's oldest item, for a metric or /readyz: 0 when
// there is none, and never negative (a clock stepped back).
func oldestSeconds(b rewards.Backlog, now time.Time) float64 {
	if b.OldestRecord.IsZero() {
		return 0
	}
	return max(0, now.Sub(b.OldestRecord).Seconds())
}

// GaugesEvery is how often RunGauges refreshes the per-property gauges.
const GaugesEvery = 15 * time.Second

// gaugesTimeout bounds one refresh.
const gaugesTimeout = 10 * time.Second

// RunGauges refreshes the per-property gauges (backlog, its age, quarantine, wallet
// totals) now and then every `every` (GaugesEvery when 0) until ctx ends. Every
// `tally serve` runs one; each replica reports the same database-wide figures, so
// alerts aggregate them with max, not sum. A failed refresh is logged and retried at the
// next tick; tally_gauges_refreshed_timestamp_seconds stops advancing meanwhile.
func (a *App) RunGauges(ctx context.Context, every time.Duration) {
	defer func() {
		// Background work must not take the process down (STYLE §11); the gauges just
		// stop moving, which tally_gauges_refreshed_timestamp_seconds shows.
		if r := recover(); r != nil {
			a.log.Error("gauges: panic; no more refreshes", "panic", r)
		}
	}()
	if every <= 0 {
		every = GaugesEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := a.RefreshGauges(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("gauges: refresh failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// RefreshGauges reads the per-property figures once and sets the gauges. Every
// configured property is reported, with zeros when it has nothing open; a property
// only the database knows (no longer configured) is reported too, since its events
// still wait.
func (a *App) RefreshGauges(ctx context.Context) error {
	cs := a.store
	ctx, cancel := context.WithTimeout(ctx, gaugesTimeout)
	defer cancel()
	type open struct {
		backlog     rewards.Backlog
		quarantined int64
	}
	opens := map[string]open{}
	for id := range a.props {
		opens[id] = open{}
	}
	if err := cs.OpenEventCounts(ctx, func(property string, b rewards.Backlog, q int64) {
		opens[property] = open{b, q}
	}); err != nil {
		return err
	}
	totals, err := cs.WalletTotals(ctx)
	if err != nil {
		return err
	}
	hooks := map[string]rewards.Backlog{}
	for id := range a.props {
		hooks[id] = rewards.Backlog{}
	}
	if err := cs.WebhookBacklog(ctx, a.webhooks.claimable, func(property string, b rewards.Backlog) { hooks[property] = b }); err != nil {
		return err
	}
	disabled, err := cs.DisabledEndpoints(ctx, a.webhooks.claimable)
	if err != nil {
		return err
	}
	offset, err := cs.ClockOffset(ctx)
	if err != nil {
		return err
	}
	now := cs.Now()
	g := &a.metrics.ops
	g.mu.Lock()
	defer g.mu.Unlock()
	for property := range g.shown {
		if _, ok := opens[property]; !ok {
			// Not configured here, and nothing open any more: a series left at its last
			// value kept an alert on the backlog's age firing until a restart.
			g.backlog.DeleteLabelValues(property)
			g.quarantined.DeleteLabelValues(property)
			g.oldest.DeleteLabelValues(property)
		}
	}
	g.shown = make(map[string]bool, len(opens))
	for property, o := range opens {
		g.shown[property] = true
		g.backlog.WithLabelValues(property).Set(float64(o.backlog.Events))
		g.quarantined.WithLabelValues(property).Set(float64(o.quarantined))
		g.oldest.WithLabelValues(property).Set(oldestSeconds(o.backlog, now))
	}
	g.hooks.Reset() // a property no longer listed loses its series
	g.hooksOldest.Reset()
	g.hooksDisabled.Reset()
	for property, b := range hooks {
		g.hooks.WithLabelValues(property).Set(float64(b.Events))
		g.hooksOldest.WithLabelValues(property).Set(oldestSeconds(b, now))
		g.hooksDisabled.WithLabelValues(property).Set(float64(disabled[property]))
	}
	g.clockOffset.Set(offset.Seconds())
	have := map[string]bool{}
	for _, t := range totals {
		cur := a.currency(t.Property)
		have[t.Property] = true
		// Floats only for the metric: the ledger and the API are exact.
		g.pending.WithLabelValues(t.Property, cur).Set(t.Pending.InexactFloat64())
		g.available.WithLabelValues(t.Property, cur).Set(t.Available.InexactFloat64())
		g.redeemed.WithLabelValues(t.Property, cur).Set(t.Redeemed.InexactFloat64())
	}
	for id, p := range a.props {
		if !have[id] { // no wallet yet: zero, so an alert on the series has one to read
			g.pending.WithLabelValues(id, p.Currency).Set(0)
			g.available.WithLabelValues(id, p.Currency).Set(0)
			g.redeemed.WithLabelValues(id, p.Currency).Set(0)
		}
	}
	g.refreshed.Set(float64(time.Now().Unix()))
	return nil
}
