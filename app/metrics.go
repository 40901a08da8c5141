package app

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
			Name: "tally_ingest_events_total", Help: "Provider deliveries by property, source and outcome (accepted, duplicate, invalid, unauthorized, unavailable, not_found, too_large, error).",
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
	}
	m.reg.MustRegister(build, m.requests, m.latency, m.ingest, m.batchSize, m.commitSeconds,
		m.settlementRuns, m.settledAmount, m.settledEntries, m.settlementSecs,
		m.applied, m.applyLag, m.applySeconds, m.backlog, m.oldestRecorded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry exposes the registry (tests read counters from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
