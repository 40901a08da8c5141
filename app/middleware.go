package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

const ctxProperty = "tally.property"

// requestIDHeader carries a request's id in both directions: a caller's (or its proxy's)
// id is kept when it is sane, so one id follows the request across services.
const requestIDHeader = "X-Request-Id"

// requestIDPattern is what a caller's id may be: short, and only characters that cannot
// break a header, a log line or a grep.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID returns the caller's id when it is sane, else a new random one.
func requestID(sent string) string {
	if requestIDPattern.MatchString(sent) {
		return sent
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// requestIDKey is the request context's key for its request id.
type requestIDKey struct{}

// logFor returns the logger of the request ctx belongs to (it carries the request id),
// or the app's logger outside a request (CLI commands, cron). It is made when asked for:
// most requests log only observe's line, which names the id itself.
func (a *App) logFor(ctx context.Context) *slog.Logger {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return a.log.With("request_id", id)
	}
	return a.log
}

// observe gives the request its id (echoed in X-Request-Id), kept in the request
// context for logFor, then logs one line per request and records its metrics. It
// logs the route template, never the path (it holds user ids), headers, query strings
// or bodies, which may carry secrets.
func (a *App) observe(c *gin.Context) {
	start := time.Now()
	id := requestID(c.GetHeader(requestIDHeader))
	c.Header(requestIDHeader, id)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey{}, id))
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	a.metrics.requests.WithLabelValues(route, methodLabel(c.Request.Method), strconv.Itoa(status)).Inc()
	a.metrics.latency.WithLabelValues(route).Observe(elapsed.Seconds())
	a.log.Info("request", "request_id", id, "method", c.Request.Method, "route", route,
		"status", status, "duration_ms", float64(elapsed.Microseconds())/1000, "bytes", c.Writer.Size())
}

// unescapeParams decodes the path parameters of a route matched on the escaped path
// (see routes): each segment is percent-decoded exactly once, "+" staying "+". The
// escaped path is always validly encoded, so decoding cannot fail.
func unescapeParams(c *gin.Context) {
	for i, p := range c.Params {
		if v, err := url.PathUnescape(p.Value); err == nil {
			c.Params[i].Value = v
		}
	}
	c.Next()
}

// wellFormedQuery refuses a query string that does not parse, naming the parameter whose
// pair is malformed (a "%" not followed by two hex digits, or a ";"). gin's Query reads
// through url.Values, which drops such a pair without a word, so "cursor=5%" would read
// as no cursor at all: a list answered from its first page, a feed from its start.
func (a *App) wellFormedQuery(c *gin.Context) {
	if err := checkQuery(c.Request.URL.RawQuery); err != nil {
		a.fail(c, err)
		return
	}
	c.Next()
}

// checkQuery is nil when url.ParseQuery takes every pair of raw, else the 400 naming the
// first pair it would drop: by its key when the key decodes, else as "query".
func checkQuery(raw string) error {
	const form = `is not well-formed: write "%" as "%25" and ";" as "%3B"`
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		key, value, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(key)
		if err != nil || strings.Contains(key, ";") {
			return invalid("query", "a parameter's name "+form)
		}
		if !utf8.ValidString(name) || len(name) > 64 {
			name = "query" // not echoed: no parameter is named so
		}
		if _, err := url.QueryUnescape(value); err != nil || strings.Contains(value, ";") {
			return invalid(name, "the query parameter "+form)
		}
	}
	if _, err := url.ParseQuery(raw); err != nil { // a rule the loop above does not know
		return invalid("query", "the query string "+form)
	}
	return nil
}

// recoverPanics turns a handler panic into a 500 problem and a logged stack.
func (a *App) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			a.logFor(c.Request.Context()).Error("panic", "panic", r, "route", c.FullPath(), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				a.fail(c, errPanic)
			}
		}
	}()
	c.Next()
}

type panicError struct{}

func (panicError) Error() string { return "internal error" }

var errPanic error = panicError{}

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) (string, bool) {
	// Sent once: with two copies, a proxy and Tally could each check a different one.
	vs := r.Header.Values("Authorization")
	if len(vs) != 1 {
		return "", false
	}
	h := vs[0]
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return h[len(prefix):], true
}

// secretEqual compares in constant time; hashing first keeps the time independent of
// the lengths too. A secret of whitespace is none (the config refuses it; a header
// cannot carry it, a form field could).
func secretEqual(given, want string) bool {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && strings.TrimSpace(want) != ""
}

// publisherAuth admits a request carrying one of this property's API keys; another
// property's key is refused.
func (a *App) publisherAuth(c *gin.Context) {
	p, err := a.property(c.Param("property"))
	if err != nil {
		a.fail(c, err)
		return
	}
	tok, ok := bearer(c.Request)
	match := 0
	for _, k := range p.APIKeys {
		if secretEqual(tok, k) {
			match = 1
		}
	}
	if !ok || match == 0 {
		c.Header("WWW-Authenticate", `Bearer realm="tally"`)
		a.fail(c, ErrUnauthorized)
		return
	}
	c.Set(ctxProperty, p)
	c.Next()
}

// ctxActor holds the name of the admin a request authenticated as.
const ctxActor = "tally.actor"

// adminAuth admits finance and ops with a named admin token, and remembers the name as
// the request's actor. Every token is compared, so the time taken does not say which
// one (or whether one) matched.
func (a *App) adminAuth(c *gin.Context) {
	tok, ok := bearer(c.Request)
	actor := ""
	for _, ad := range a.admins {
		if secretEqual(tok, ad.Token) && actor == "" {
			actor = ad.Name
		}
	}
	if !ok || actor == "" {
		c.Header("WWW-Authenticate", `Bearer realm="tally-admin"`)
		a.fail(c, ErrUnauthorized)
		return
	}
	c.Set(ctxActor, actor)
	c.Next()
}

// actor is the admin name adminAuth admitted the request under.
func actor(c *gin.Context) string { return c.GetString(ctxActor) }

// methodLabel bounds the method label: any client can send any method, and each value
// would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// requestTimeout bounds the work of a publisher or admin request that is not a stream
// (payout reports have a bound of their own; true-ups and imports get longer ones,
// routes.go, with the write deadline moved past them): with the database hung, a
// request would otherwise hold a pooled connection until its client gave up, since the
// server's write timeout does not end the request's context. A write cut short answers
// 503, or "Outcome unknown" if its commit was sent; a retry with the same
// Idempotency-Key answers what was saved.
var requestTimeout = 10 * time.Second

// bounded gives the request's context the requestTimeout deadline.
func bounded(c *gin.Context) { boundedFor(requestTimeout)(c) }

// boundedFor gives the request's context a deadline d away, for routes whose work can
// legitimately take longer than requestTimeout (a true-up of a long period, an import
// waiting for one).
func boundedFor(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		if d+answerMargin > serverWriteTimeout {
			// The server would cut the answer at its write timeout, after the work had
			// committed: the caller would see a broken connection for a saved run.
			_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(d + answerMargin))
		}
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// answerMargin is the time a bounded request's answer has to be written after its
// deadline.
const answerMargin = 10 * time.Second
