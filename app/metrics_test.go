package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// /metrics says which build is running, from the build info the app is given.
func TestMetricsBuildInfo(t *testing.T) {
	db := storetest.Open(t, store.SQLite, nil)
	a := app.New(db, app.Options{Properties: []app.Property{arcade()}, AdminToken: adminTok,
		Build: app.BuildInfo{Version: "v9.8.7", Commit: "c0ffee", GoVersion: "go1.99.1"}})
	t.Cleanup(a.Close)
	e := &env{t: t, db: db, app: a, h: a.Handler()}
	m := e.do("GET", "/metrics", "")
	if want := `tally_build_info{commit="c0ffee",goversion="go1.99.1",version="v9.8.7"} 1`; !strings.Contains(m.Raw, want) {
		t.Fatalf("metrics lack %s:\n%s", want, m.Raw)
	}
}

// A Prometheus that asks for the protobuf format gets it, and the OpenAPI document says
// so (e.do checks every answer against it; it listed text only).
func TestMetricsProtobufIsInTheContract(t *testing.T) {
	e := newEnv(t, store.SQLite)
	m := e.do("GET", "/metrics", "", "Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	if m.Code != 200 || !strings.HasPrefix(m.Header.Get("Content-Type"), "application/vnd.google.protobuf") {
		t.Fatalf("%d %s", m.Code, m.Header.Get("Content-Type"))
	}
}

// After a known workload, /metrics — read with the Prometheus text parser — has the
// per-property series an operator alerts on, with the workload's values: ingest outcomes
// and settlement runs by property, the backlog and its age, the quarantine, and wallet
// totals as RefreshGauges (RunGauges' timer) last read them.
func TestMetricsAfterAKnownWorkload(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		e := newEnv(t, d)
		spp := "/v1/hooks/arcade/gamezop/spp"
		auth := []string{"Authorization", "Bearer " + sppToken}
		e.do("POST", spp, sppBody, auth...)                                                                                                                             // 0.672 pending (24 h hold)
		e.do("POST", spp, strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", "s-2", 1), auth...)                                                          // 0.672 more
		e.do("POST", spp, strings.NewReplacer(`"property-id":"1234"`, `"property-id":"9999"`, "b48a8368-a369-49a4-b427-2d5891ef3763", "s-3").Replace(sppBody), auth...) // quarantined
		e.do("POST", spp, sppBody)                                                                                                                                      // unauthorized
		e.do("POST", "/v1/hooks/arcade/trackscore", tsBody, "X-TrackScore-Signature", trackscoreSig(tsBody, tsSecret))                                                  // 25, hold 0
		if _, err := e.app.Settle(ctx, "arcade", ""); err != nil {
			t.Fatal(err)
		}
		// One event recorded and not applied yet, 90 s before the gauges are read.
		if _, err := e.db.Record(ctx, []rewards.Inbound{{Property: "arcade", Raw: []byte(`{}`), Event: rewards.Event{
			Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, Type: "over", DedupeKey: "k", User: "u",
			Score: &rewards.Score{Game: "g", Value: dec("1"), State: "over", PlayID: "p"}}}}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(90 * time.Second)
		if err := e.app.RefreshGauges(ctx); err != nil {
			t.Fatal(err)
		}

		value := scrape(t, e)
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"tally_ingest_events_total", []string{"property", "arcade", "source", "gamezop_spp", "result", "accepted"}, 3},
			{"tally_ingest_events_total", []string{"property", "arcade", "source", "gamezop_spp", "result", "unauthorized"}, 1},
			{"tally_ingest_events_total", []string{"property", "arcade", "source", "trackscore", "result", "accepted"}, 1},
			{"tally_settlement_runs_total", []string{"property", "arcade", "status", "completed"}, 1},
			// At 0 before any failure, so an alert on its increase sees the first one.
			{"tally_settlement_runs_total", []string{"property", "arcade", "status", "failed"}, 0},
			{"tally_settlement_runs_total", []string{"property", "other", "status", "failed"}, 0},
			{"tally_settled_amount_total", []string{"property", "arcade"}, 25},
			{"tally_quarantined_events", []string{"property", "arcade"}, 1},
			{"tally_quarantined_events", []string{"property", "other"}, 0},
			{"tally_backlog_events", []string{"property", "arcade"}, 1},
			{"tally_backlog_events", []string{"property", "other"}, 0},
			{"tally_backlog_oldest_seconds", []string{"property", "arcade"}, 90},
			{"tally_wallet_pending", []string{"property", "arcade", "currency", "COIN"}, 1.344},
			{"tally_wallet_available", []string{"property", "arcade", "currency", "COIN"}, 25},
			{"tally_wallet_redeemed", []string{"property", "arcade", "currency", "COIN"}, 0},
			{"tally_wallet_pending", []string{"property", "other", "currency", "PTS"}, 0},
			{"tally_build_info", nil, 1},
			// At 0 from the start, for an alert on their increase.
			{"tally_schedule_ticks_skipped_total", []string{"schedule", "settlement"}, 0},
			{"tally_schedule_ticks_skipped_total", []string{"schedule", "tournaments"}, 0},
		} {
			if got := value(c.name, c.labels...); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		if at := value("tally_gauges_refreshed_timestamp_seconds"); at <= 0 {
			t.Errorf("tally_gauges_refreshed_timestamp_seconds = %v: never refreshed", at)
		}
	})
}

// tally_clock_offset_seconds is this process's clock against Postgres's: a replica whose
// clock runs an hour ahead matures credits an hour early, and nothing showed it.
func TestMetricsClockOffset(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.Postgres)
	e.clock.Set(time.Now().Add(time.Hour))
	if err := e.app.RefreshGauges(ctx); err != nil {
		t.Fatal(err)
	}
	// The clock is set, not ticking: the offset shrinks by the time the refresh took.
	if got := scrape(t, e)("tally_clock_offset_seconds"); got < 3540 || got > 3600 {
		t.Fatalf("tally_clock_offset_seconds = %v, want about 3600", got)
	}
}

// No series carries a label Prometheus sets on every scraped series itself (job,
// instance): it would store it as exported_job, and an alert on {job="settlement"} would
// match nothing (tally_schedule_ticks_skipped_total's label was job).
func TestMetricsUseNoTargetLabel(t *testing.T) {
	fams, err := app.NewMetrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if n := l.GetName(); n == "job" || n == "instance" {
					t.Errorf("%s has a %s label", f.GetName(), n)
				}
			}
		}
	}
}

// RunGauges refreshes at once, then on its timer, and returns when its context ends.
func TestRunGaugesStopsWithItsContext(t *testing.T) {
	e := newEnv(t, store.SQLite)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.app.RunGauges(ctx, time.Hour); close(done) }()
	cancel()
	<-done
}

// Any client can send any method; the request counter does not make a series of each.
func TestMetricsMethodLabelIsBounded(t *testing.T) {
	e := newEnv(t, store.SQLite)
	for _, m := range []string{"FOO1", "FOO2", "GET"} {
		e.do(m, "/healthz", "")
	}
	raw := e.do("GET", "/metrics", "").Raw
	if strings.Contains(raw, `method="FOO1"`) || strings.Contains(raw, `method="FOO2"`) || !strings.Contains(raw, `method="other"`) {
		t.Fatalf("request methods as labels:\n%s", raw)
	}
}

// A property this process does not know (a rolling deploy adds it) shows in the backlog
// gauges while its events wait, counted from the database, and loses its series once
// another replica applied them: they stayed at their last value, and an alert on the
// backlog's age kept firing until a restart.
func TestGaugesOfAnUnconfiguredPropertyGoAway(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.SQLite) // arcade and other, not fresh
	fresh := other()
	fresh.ID, fresh.Rules.Property = "fresh", "fresh"
	knows := app.New(e.db, app.Options{Properties: []app.Property{arcade(), other(), fresh}, AdminToken: adminTok})
	t.Cleanup(knows.Close)
	if _, err := e.db.Record(ctx, []rewards.Inbound{{Property: "fresh", Raw: []byte(`{}`), Event: rewards.Event{
		Source: rewards.SourceGamezopSPP, Kind: rewards.KindOther, Type: "x", DedupeKey: "k1", User: "u"}}}); err != nil {
		t.Fatal(err)
	}
	series := func() string {
		t.Helper()
		if err := e.app.RefreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for l := range strings.SplitSeq(e.do("GET", "/metrics", "").Raw, "\n") {
			if strings.Contains(l, `property="fresh"`) && strings.HasPrefix(l, "tally_backlog_events") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	if got := series(); got != `tally_backlog_events{property="fresh"} 1` {
		t.Fatalf("before the apply: %q", got)
	}
	if _, err := knows.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := series(); got != "" {
		t.Fatalf("after another replica applied fresh's event: %q, want no series", got)
	}
}

// scrape reads /metrics with the Prometheus text parser and returns a lookup of one
// series' value: the first of name whose labels include the given name/value pairs (a
// histogram's value is its sample count).
func scrape(t *testing.T, e *env) func(name string, labels ...string) float64 {
	t.Helper()
	m := e.do("GET", "/metrics", "")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(m.Raw))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("/metrics has no %s", name)
		}
	next:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue()
			case s.Gauge != nil:
				return s.GetGauge().GetValue()
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("%s has no series %v", name, labels)
		return 0
	}
}
