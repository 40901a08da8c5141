package app

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// routes is the whole HTTP surface, on one screen.
//
// gin's mode is process-wide state, so building an engine leaves it alone: the tally
// binary sets release mode once in main, and tests keep the quiet test mode gin picks
// for itself.
func (a *App) routes() *gin.Engine {
	r := gin.New()
	// Route on the path as sent, so that a user id holding "/" (sent as %2F) stays one
	// segment, and unescape each segment once ourselves (unescapeParams): gin's own
	// UnescapePathValues uses QueryUnescape, which reads "+" as a space, so "a+b%2Fc"
	// would address the wallet of "a b/c".
	r.UseEscapedPath = true
	r.UnescapePathValues = false
	r.HandleMethodNotAllowed = true
	// A path with a slash too many or too few is a 404 problem like any unknown path,
	// not a redirect with an HTML body (a 307 that clients may not follow with the body).
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true
	r.Use(a.observe, unescapeParams, a.recoverPanics)
	r.NoRoute(func(c *gin.Context) { a.fail(c, rewards.ErrNotFound) })
	r.NoMethod(func(c *gin.Context) {
		c.Header("Content-Type", "application/problem+json")
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, problem{Type: "urn:tally:problem:method", Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: "this path does not take " + c.Request.Method + "; the Allow header lists the methods it takes"})
	})

	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	r.GET("/metrics", gin.WrapH(a.metrics.Handler()))
	r.GET("/openapi.json", a.openapi)

	hooks := r.Group("/v1/hooks/:property")
	hooks.POST("/gamezop/spp", a.receiveHook(rewards.SourceGamezopSPP))
	hooks.POST("/gamezop/scores", a.receiveHook(rewards.SourceGamezopScores))
	hooks.POST("/gamepush", a.receiveHook(rewards.SourceGamePush))
	hooks.POST("/trackscore", a.receiveHook(rewards.SourceTrackScore))

	// The routes that read a query string refuse one that does not parse, once the caller
	// is authenticated (the receivers and the ops routes read none, and a provider's odd
	// postback URL must not cost it its events).
	pub := r.Group("/v1/properties/:property", a.publisherAuth, a.wellFormedQuery, bounded)
	pub.GET("/users/:user/balance", a.getBalance)
	pub.GET("/users/:user/transactions", a.listTransactions)
	pub.POST("/users/:user/redemptions", a.redeem)
	pub.GET("/users/:user/redemptions", a.listRedemptions)
	pub.GET("/redemptions/:id", a.getRedemption)
	pub.GET("/balances", a.balanceFeed)
	pub.GET("/tournaments", a.listTournaments)
	pub.GET("/tournaments/:tournament/leaderboard", a.getLeaderboard)

	adm := r.Group("/v1/admin", a.adminAuth, a.wellFormedQuery)
	adm.GET("/reports/payouts", a.payoutReport)
	adm.GET("/settlements", bounded, a.listSettlements)
	adm.POST("/properties/:property/users/:user/adjustments", bounded, a.adjust)
	adm.POST("/redemptions/:id/reversal", bounded, a.reverseRedemption)
	adm.GET("/audit", bounded, a.listAudit)
	adm.POST("/properties/:property/booked-revenue", boundedFor(5*time.Minute), a.importBooked)
	adm.GET("/properties/:property/trueup", boundedFor(time.Minute), a.trueUpView)
	adm.POST("/properties/:property/trueups", boundedFor(5*time.Minute), a.runTrueUp)
	adm.GET("/events", bounded, a.listEvents)
	adm.GET("/events/:id", bounded, a.getEvent)
	adm.POST("/events/:id/replay", bounded, a.replayEvent)
	adm.GET("/webhooks/deliveries", bounded, a.listWebhookDeliveries)
	adm.POST("/webhooks/deliveries/:id/retry", bounded, a.retryWebhookDelivery)

	// The operators' console (console.go): HTML pages for people, not API operations, so
	// app/openapi.yaml leaves them out. Sessions and CSRF are in console_auth.go.
	con := a.newConsole()
	r.GET("/console/static/console.css", consoleHeaders, con.css)
	r.GET("/console/login", consoleHeaders, con.loginForm)
	r.POST("/console/login", consoleHeaders, con.login)
	ops := r.Group("/console", consoleHeaders, con.auth, con.wellFormedQuery)
	ops.GET("", con.overview)
	ops.GET("/quarantine", con.quarantine)
	ops.POST("/quarantine/:id/replay", con.replayOne)
	ops.POST("/quarantine/replay", con.replayReason)
	ops.GET("/settlements", con.settlements)
	ops.POST("/settlements", con.settleNow)
	ops.GET("/users", con.users)
	ops.GET("/reports", con.reports)
	ops.GET("/reports/payouts", con.reportDownload)
	ops.POST("/logout", con.logout)
	// The console's home typed with a trailing slash, the one redirect kept (the API's
	// paths with one are a 404 problem: RedirectTrailingSlash is off).
	ops.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/console") })

	return r
}

func (a *App) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// replicaCheck asks the read replica for /readyz at most every replicaCheckEvery, one
// probe at a time, within replicaCheckTimeout: a replica gone silent (no reset, a dead
// host) must not make the probe itself time out, which would take every instance out of
// the load balancer with it. Probes meanwhile read the last answer.
type replicaCheck struct {
	mu sync.Mutex // held by the probe asking
	at atomic.Pointer[replicaAnswer]
}

type replicaAnswer struct {
	at  time.Time
	err error
}

const (
	replicaCheckEvery   = 2 * time.Second
	replicaCheckTimeout = 300 * time.Millisecond
)

func (r *replicaCheck) check(ctx context.Context, ask func(context.Context) error) error {
	last := r.at.Load()
	if last != nil && time.Since(last.at) < replicaCheckEvery {
		return last.err
	}
	if !r.mu.TryLock() {
		if last != nil {
			return last.err
		}
		return nil // the first answer is on its way
	}
	defer r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, replicaCheckTimeout)
	defer cancel()
	err := ask(ctx)
	r.at.Store(&replicaAnswer{at: time.Now(), err: err})
	return err
}

// readyz is unauthenticated, so its answer names only the condition; the cause (which
// carries the database's user, name and host) goes to the log.
func (a *App) readyz(c *gin.Context) {
	b, err := a.Ready(c.Request.Context())
	if err != nil {
		// Ready fails in three ways: the database does not answer (ErrUnavailable), it
		// was migrated past this binary, or migrations are pending.
		detail := "migrations pending"
		switch {
		case errors.Is(err, rewards.ErrUnavailable):
			detail = "database unreachable"
		case errors.Is(err, rewards.ErrSchemaNewer):
			detail = "database schema is newer than this binary"
		}
		a.logFor(c.Request.Context()).Warn("not ready", "detail", detail, "err", err)
		c.Header("Content-Type", "application/problem+json")
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, problem{Type: "urn:tally:problem:not-ready", Title: "Not ready", Status: http.StatusServiceUnavailable, Detail: detail})
		return
	}
	body := gin.H{"status": "ready", "apply_backlog": b.Events, "oldest_recorded_seconds": oldestSeconds(b, time.Now())}
	// A read replica that does not answer fails the publisher's reads it serves, not
	// the instance: receivers, redemptions and the admin API run on the primary, and
	// every instance shares the replica, so leaving the load balancer would help none.
	if err := a.replica.check(c.Request.Context(), a.store.ReadReplica); err != nil {
		a.logFor(c.Request.Context()).Warn("read replica unreachable; balance, transactions, feed and tournament reads fail", "err", err)
		body["read_replica"] = "unreachable"
	}
	c.JSON(http.StatusOK, body)
}
