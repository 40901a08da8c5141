// Package app holds Tally's use cases (ingest, balances, settlement, redemptions,
// reports), shared by the HTTP handlers, the cron scheduler and the CLI, plus the gin
// routes, middleware and server lifecycle. It knows the store only through the small
// interfaces it declares.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"tally/postbacks"
	"tally/rewards"
)

// Property is one publisher property as the app needs it; cmd builds it from config.
type Property struct {
	ID                string
	GamezopPropertyID string // when set, an SPP whose property-id differs is quarantined
	Currency          string
	Scale             int32
	APIKeys           []string
	Sources           map[rewards.Source]postbacks.Credentials // absent: the route answers 404
	Rules             rewards.Rules
	Webhooks          []Webhook // outbound webhooks (webhook.go)
	// SubTokens, when set, verifies the user ids that are a game URL's sub (SPP user-id,
	// scores subId) as signed tokens when the event is applied.
	SubTokens *postbacks.SubTokens
	// Reports, when set, is where booked revenue is pulled from for true-ups.
	Reports *ReportsSource
}

// BalanceReader reads wallets.
type BalanceReader interface {
	Balance(ctx context.Context, property, user string) (rewards.Balance, error)
	Transactions(ctx context.Context, property, user string, limit int, before int64) ([]rewards.Txn, error)
}

// Readier reports whether storage is reachable and migrated, and whether its read
// replica (read_url) answers; ReadReplica is nil without one.
type Readier interface {
	Ready(ctx context.Context) error
	ReadReplica(ctx context.Context) error
}

// Store is everything the app needs from storage.
type Store interface {
	Recorder
	ApplyStore
	EventReader
	BalanceReader
	ReportReader
	Settler
	Redeemer
	Reverser
	AuditReader
	TrueUpper
	ConsoleStore
	TournamentStore
	Adjuster
	FeedReader
	Readier
	WebhookStore
}

// Admin is one named admin credential.
type Admin struct {
	Name  string
	Token string
}

// defaultAdmin names the single AdminToken.
const defaultAdmin = "admin"

// Options configure New.
type Options struct {
	Properties []Property
	// Admins are the named admin credentials; AdminToken, when set, is one more, named
	// "admin". The name is recorded as the actor of adjustments, reversals and replays.
	Admins     []Admin
	AdminToken string
	Logger     *slog.Logger
	// IngestWorkers is how many group-commit transactions may run at once (1 suits
	// SQLite, whose writers serialize anyway); IngestBatch caps events per transaction.
	IngestWorkers int
	IngestBatch   int
	// SettleLanes is how many properties a settlement of every property settles at once
	// (default 1: SQLite's writers serialize anyway).
	SettleLanes int
	// ApplyBatch caps events per apply transaction (default 1000); ApplyPoll is how often
	// an idle applier looks for events another replica recorded (default 200ms).
	ApplyBatch int
	ApplyPoll  time.Duration
	Build      BuildInfo // reported on /metrics as tally_build_info
	// WebhookTimeout bounds one webhook attempt (default 10s); tests shorten it.
	WebhookTimeout time.Duration
	// ReadmitActor, when set, is the actor RunApplier's readmission records in the audit
	// log (see Readmit); empty turns readmission off.
	ReadmitActor string
}

// App is the wired application.
type App struct {
	store    Store
	props    map[string]*Property
	admins   []Admin
	log      *slog.Logger
	metrics  *Metrics
	ingest   *batcher
	applier  *applier
	webhooks *webhooker
	replica  replicaCheck // /readyz's view of the read replica
	// streams holds a slot per payout report being streamed (maxReportStreams).
	streams chan struct{}
	readmit string // Options.ReadmitActor
	// settleLanes is Options.SettleLanes, at least 1.
	settleLanes int
	// readmitting is set while a RunApplier of the process runs its readmitter.
	readmitting atomic.Bool
}

// New wires the app. Call Close after the HTTP server has drained.
func New(st Store, opt Options) *App {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	props := make(map[string]*Property, len(opt.Properties))
	m := NewMetrics(WithBuildInfo(opt.Build))
	for i := range opt.Properties {
		p := opt.Properties[i]
		props[p.ID] = &p
		// Every run status starts at 0, so increase(...{status="failed"}[1h]) sees the
		// first failure: a series born at 1 is no increase to Prometheus.
		for _, st := range []string{rewards.RunCompleted, rewards.RunFailed} {
			m.settlementRuns.WithLabelValues(p.ID, st)
		}
		// So for what the README's alerts read: ingest failures by source, webhook
		// attempts and disabled endpoints.
		for src := range p.Sources {
			for _, r := range []string{"accepted", "unauthorized", "unavailable", "error"} {
				m.ingest.WithLabelValues(p.ID, string(src), r)
			}
		}
		if len(p.Webhooks) > 0 {
			m.webhooks.WithLabelValues(p.ID, "delivered")
			m.webhooks.WithLabelValues(p.ID, "failed")
			m.disabled.WithLabelValues(p.ID)
			m.unparked.WithLabelValues(p.ID)
		}
	}
	admins := slices.Clone(opt.Admins)
	if opt.AdminToken != "" {
		admins = append(admins, Admin{Name: defaultAdmin, Token: opt.AdminToken})
	}
	a := &App{store: st, props: props, admins: admins, log: log, metrics: m, readmit: opt.ReadmitActor,
		streams: make(chan struct{}, maxReportStreams), settleLanes: max(1, opt.SettleLanes)}
	a.ingest = newBatcher(st, opt.IngestWorkers, opt.IngestBatch, log, m)
	a.applier = newApplier(a, st, opt.ApplyBatch, opt.ApplyPoll)
	a.ingest.wake = a.applier.wake
	a.webhooks = newWebhooker(st, opt.Properties, opt.WebhookTimeout, log, m)
	return a
}

// Close stops the ingest workers after finishing what they hold.
func (a *App) Close() { a.ingest.stop() }

// Metrics exposes the app's Prometheus registry.
func (a *App) Metrics() *Metrics { return a.metrics }

// Handler is the HTTP surface (see routes.go).
func (a *App) Handler() http.Handler { return router{a.routes()} }

// router is the gin engine, routing each request on its path as sent (routeAsSent).
type router struct{ *gin.Engine }

func (r router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	routeAsSent(req)
	if req.Method == http.MethodHead {
		// HEAD is GET without the body (RFC 9110 §9.3.2), which every general-purpose
		// server supports: load balancers and monitors probe with it. net/http drops the
		// body itself, since the response belongs to the HEAD request.
		get := req.Clone(req.Context())
		get.Method = http.MethodGet
		req = get
	}
	r.Engine.ServeHTTP(w, req)
}

// routeAsSent makes the path gin routes on (URL.EscapedPath) the request line's own. Go
// keeps that path only when it is validly encoded: one with a raw byte a path may not
// hold ("ü", "|") besides a "%2F" was routed as Go re-encodes the decoded path, where
// the "%2F" is a "/", so "ü%2Fx" was two segments and its wallet answered 404. Here the
// request line's path, with such bytes percent-encoded and its escapes kept, stands in.
func routeAsSent(req *http.Request) {
	raw, _, _ := strings.Cut(req.RequestURI, "?")
	if !strings.HasPrefix(raw, "/") || raw == req.URL.EscapedPath() {
		return
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; pathByte(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if p, err := url.PathUnescape(b.String()); err == nil && p == req.URL.Path {
		req.URL.RawPath = b.String()
	}
}

// pathByte says whether c may stand unescaped in a URL path (RFC 3986's unreserved and
// sub-delims, ':', '@', '/', and '%' of an escape).
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/%", c) >= 0
}

// property returns the configured property or ErrUnknownProperty.
func (a *App) property(id string) (*Property, error) {
	p, ok := a.props[id]
	if !ok {
		return nil, ErrUnknownProperty
	}
	return p, nil
}

// Ready checks storage for /readyz and reports the applier's backlog as last counted.
// A backlog does not make the service unready: the inbox is the buffer, and receivers
// keep recording while the applier catches up.
func (a *App) Ready(ctx context.Context) (rewards.Backlog, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := a.store.Ready(ctx); err != nil {
		return rewards.Backlog{}, err
	}
	if b := a.applier.backlog.Load(); b != nil {
		return *b, nil
	}
	return a.store.Backlog(ctx)
}
