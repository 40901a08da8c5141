package app

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// The operators' console at /console: server-rendered pages (html/template, which
// escapes every value for its context) embedded in the binary, no script at all. Each
// page calls the same use cases as the admin API; console_auth.go holds its sessions.

//go:embed console
var consoleFS embed.FS

// ConsoleStore is what the console and the operator gauges read beyond the other use
// cases' stores (store/console.go).
type ConsoleStore interface {
	EventCountsSince(ctx context.Context, since time.Time, fn func(property string, source rewards.Source, status string, n int64)) error
	OpenEventCounts(ctx context.Context, fn func(property string, backlog rewards.Backlog, quarantined int64)) error
	WalletTotals(ctx context.Context) ([]rewards.Balance, error)
	// WebhookBacklog reports, per property, the webhook deliveries pending to the given
	// (property, url) endpoints and the oldest.
	WebhookBacklog(ctx context.Context, endpoints [][2]string, fn func(property string, pending rewards.Backlog)) error
	// DisabledEndpoints counts, per property, the given (property, url) endpoints that are
	// disabled now.
	DisabledEndpoints(ctx context.Context, endpoints [][2]string) (map[string]int64, error)
	// ClockOffset is this process's clock minus the database server's (0 on SQLite).
	ClockOffset(ctx context.Context) (time.Duration, error)
	QuarantineReasons(ctx context.Context, property string, fn func(property, reason string, n int64)) error
	QuarantinedIDs(ctx context.Context, property, reason string, after int64, limit int) ([]int64, error)
	// Now is the store's clock, which stamps received_at: "today" and lags are read on it.
	Now() time.Time
	// EndConsoleSession records a signed-out session until its expiry;
	// ConsoleSessionEnded reports one.
	EndConsoleSession(ctx context.Context, nonce string, expiry time.Time) error
	ConsoleSessionEnded(ctx context.Context, nonce string) (bool, error)
}

// replayAllBatch caps the events one "replay all of a reason" replays, each in its own
// transaction, so the request ends well within the server's write timeout; the page
// offers the next batch. A variable for the tests.
var replayAllBatch = 200

const (
	// rawShown caps the raw body shown per event (a body is at most 64 KiB).
	rawShown = 8 << 10
	// consoleTimeout bounds the reads of one page.
	consoleTimeout = 10 * time.Second
	// consoleMaxBody bounds a console request's body.
	consoleMaxBody = 64 << 10
)

type console struct {
	app   *App
	pages map[string]*template.Template
}

// newConsole parses the embedded templates; they are part of the binary, so a parse
// error is a programming error caught by every test.
func (a *App) newConsole() *console {
	con := &console{app: a, pages: map[string]*template.Template{}}
	for _, name := range []string{"login", "error", "overview", "quarantine", "settlements", "users", "reports"} {
		con.pages[name] = template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/"+name+".html"))
	}
	return con
}

// page is what the layout renders.
type page struct {
	Title string
	Nav   string
	Actor string
	CSRF  string
	Flash []string
	Error string
	Data  any
}

// consoleHeaders are the headers every console answer carries: nothing of it may be
// cached, framed, or run as script (there is none), and nothing may be loaded from
// elsewhere.
func consoleHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	// The console's forms are a few short fields; the sign-in form is open to anyone.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, consoleMaxBody)
	c.Next()
}

// render executes a page into a buffer first, so a template error is a clean 500.
func (con *console) render(c *gin.Context, status int, name string, p page) {
	if p.Actor == "" {
		p.Actor = actor(c)
	}
	if p.CSRF == "" {
		p.CSRF = c.GetString(ctxCSRF)
	}
	var buf bytes.Buffer
	if err := con.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		con.app.logFor(c.Request.Context()).Error("console: render", "page", name, "err", err)
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// fail renders err as the API would classify it (problemFor), as a page.
func (con *console) fail(c *gin.Context, err error) {
	p, msg := con.failure(c, err)
	con.render(c, p.Status, "error", page{Title: p.Title, Data: msg})
}

// wellFormedQuery is App.wellFormedQuery for the console: its 400 is a page.
func (con *console) wellFormedQuery(c *gin.Context) {
	if err := checkQuery(c.Request.URL.RawQuery); err != nil {
		con.fail(c, err)
		c.Abort()
		return
	}
	c.Next()
}

// failure is err as the API would answer it (problemFor: a database's own text is never
// shown), and as one line for a page; a server-side failure is logged with the error.
func (con *console) failure(c *gin.Context, err error) (problem, string) {
	p := problemForRequest(c, err)
	if p.Status >= 500 {
		con.app.logFor(c.Request.Context()).Error("console", "route", c.FullPath(), "err", err)
	}
	msg := p.Title
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return p, msg
}

func (con *console) css(c *gin.Context) {
	b, err := consoleFS.ReadFile("console/static/console.css")
	if err != nil {
		con.fail(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, "text/css; charset=utf-8", b)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (a *App) propertyIDs() []string { return slices.Sorted(maps.Keys(a.props)) }

// propertyIDsOr is property alone, or every configured property's id for "".
func (a *App) propertyIDsOr(property string) []string {
	if property == "" {
		return a.propertyIDs()
	}
	return []string{property}
}

// Overview figures.

type sourceFigures struct {
	Source                                string
	Recorded, Applied, Quarantined, Total int64
}

type runView struct {
	ID, Property, Status, StartedAt, FinishedAt, Amount, Error string
	Users, Entries                                             int64
}

func toRunView(r rewards.SettlementRun) runView {
	return runView{ID: strconv.FormatInt(r.ID, 10), Property: r.Property, Status: r.Status, StartedAt: stamp(r.StartedAt),
		FinishedAt: stamp(r.FinishedAt), Amount: amount(r.Amount), Error: r.Error, Users: r.Users, Entries: r.Entries}
}

type propertyFigures struct {
	ID, Currency                 string
	Scale                        int32
	Backlog, Quarantined         int64
	Lag                          string
	Pending, Available, Redeemed string
	LastRun                      *runView
	Sources                      []sourceFigures
}

type overview struct {
	Since, At  string
	Properties []propertyFigures
}

// Overview gathers the console's first page: per configured property, today's events
// (UTC day on the store's clock) by source and status, the apply backlog and its age,
// the quarantine, wallet totals and the last settlement run.
func (a *App) Overview(ctx context.Context) (overview, error) {
	cs := a.store
	now := cs.Now().UTC()
	since := now.Truncate(24 * time.Hour)
	ov := overview{Since: stamp(since), At: stamp(now)}
	byID := map[string]*propertyFigures{}
	for _, id := range a.propertyIDs() {
		p := a.props[id]
		ov.Properties = append(ov.Properties, propertyFigures{ID: id, Currency: p.Currency, Scale: p.Scale, Lag: "0s",
			Pending: "0", Available: "0", Redeemed: "0"})
	}
	for i := range ov.Properties {
		byID[ov.Properties[i].ID] = &ov.Properties[i]
	}
	err := cs.EventCountsSince(ctx, since, func(property string, src rewards.Source, status string, n int64) {
		p := byID[property]
		if p == nil {
			return // a property no longer configured
		}
		i := slices.IndexFunc(p.Sources, func(s sourceFigures) bool { return s.Source == string(src) })
		if i < 0 {
			p.Sources = append(p.Sources, sourceFigures{Source: string(src)})
			i = len(p.Sources) - 1
		}
		s := &p.Sources[i]
		switch status {
		case rewards.StatusRecorded:
			s.Recorded += n
		case rewards.StatusApplied:
			s.Applied += n
		case rewards.StatusQuarantined:
			s.Quarantined += n
		}
		s.Total += n
	})
	if err != nil {
		return overview{}, err
	}
	err = cs.OpenEventCounts(ctx, func(property string, b rewards.Backlog, quarantined int64) {
		if p := byID[property]; p != nil {
			p.Backlog, p.Quarantined = b.Events, quarantined
			if !b.OldestRecord.IsZero() {
				p.Lag = max(0, now.Sub(b.OldestRecord)).Round(time.Millisecond).String()
			}
		}
	})
	if err != nil {
		return overview{}, err
	}
	totals, err := cs.WalletTotals(ctx)
	if err != nil {
		return overview{}, err
	}
	for _, t := range totals {
		if p := byID[t.Property]; p != nil {
			p.Pending, p.Available, p.Redeemed = amount(t.Pending), amount(t.Available), amount(t.Redeemed)
		}
	}
	// Each property's own last run: read from the newest runs of every property, a quiet
	// property's last run dropped out of sight once the others had run often enough.
	runs, err := a.store.LastSettlementRuns(ctx, slices.Collect(maps.Keys(byID)))
	if err != nil {
		return overview{}, err
	}
	for _, r := range runs {
		if p := byID[r.Property]; p != nil {
			v := toRunView(r)
			p.LastRun = &v
		}
	}
	return ov, nil
}

// overview: GET /console
func (con *console) overview(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), consoleTimeout)
	defer cancel()
	ov, err := con.app.Overview(ctx)
	if err != nil {
		con.fail(c, err)
		return
	}
	con.render(c, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: ov})
}

// Quarantine.

type reasonView struct {
	Property, Reason string
	Count            int64
}

type eventView struct {
	ID, Property, Source, User, Type, DedupeKey, Reason, ReceivedAt string
	Raw                                                             string
	RawSize                                                         int
	Truncated                                                       bool
}

type quarantineView struct {
	Properties []string
	Property   string
	Reasons    []reasonView
	Events     []eventView
	Older      int64 // the event id older quarantined events are below; 0 when there are none
	Batch      int
	Next       *nextBatch // after a "replay all" that left more of its reason
}

// nextBatch is the form that replays the next batch of a reason: the events after the
// last one the previous batch replayed, so events that stay quarantined are not tried
// again and again while later ones wait.
type nextBatch struct {
	Property, Reason string
	After            int64
}

// shownRaw is a raw body as text for a page, cut at rawShown bytes, with invalid UTF-8
// (a rune the cut split, too) shown as U+FFFD. html/template escapes the rest.
func shownRaw(raw []byte) (string, bool) {
	cut := len(raw) > rawShown
	if cut {
		raw = raw[:rawShown]
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD"), cut
}

func toEventView(k rewards.Kept) eventView {
	raw, cut := shownRaw(k.Raw)
	return eventView{ID: strconv.FormatInt(k.ID, 10), Property: k.Property, Source: string(k.Source), User: k.User, Type: k.Event.Type,
		DedupeKey: k.DedupeKey, Reason: k.Reason, ReceivedAt: stamp(k.ReceivedAt), Raw: raw, RawSize: k.RawSize, Truncated: cut}
}

// quarantine: GET /console/quarantine?property=
func (con *console) quarantine(c *gin.Context) { con.showQuarantine(c, http.StatusOK, nil, "", nil) }

func (con *console) showQuarantine(c *gin.Context, status int, flash []string, errMsg string, next *nextBatch) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), consoleTimeout)
	defer cancel()
	property := c.Query("property")
	if property == "" {
		property = c.PostForm("property")
	}
	if property != "" {
		if _, err := con.app.property(property); err != nil {
			con.fail(c, err)
			return
		}
	}
	cs := con.app.store
	v := quarantineView{Properties: con.app.propertyIDs(), Property: property, Batch: replayAllBatch, Next: next}
	if err := cs.QuarantineReasons(ctx, property, func(p, reason string, n int64) {
		v.Reasons = append(v.Reasons, reasonView{Property: p, Reason: reason, Count: n})
	}); err != nil {
		con.fail(c, err)
		return
	}
	before, err := consoleBefore(c)
	if err != nil {
		con.fail(c, err)
		return
	}
	kept, err := con.app.store.Events(ctx, rewards.EventFilter{Status: rewards.StatusQuarantined, Property: property, Before: before,
		Limit: consolePage + 1, RawUpTo: rawShown + 1}) // one byte past what is shown says it was cut
	if err != nil {
		con.fail(c, err)
		return
	}
	kept, v.Older = pageOf(kept, consolePage, func(k rewards.Kept) int64 { return k.ID })
	for _, k := range kept {
		v.Events = append(v.Events, toEventView(k))
	}
	con.render(c, status, "quarantine", page{Title: "Quarantine", Nav: "quarantine", Flash: flash, Error: errMsg, Data: v})
}

// replayOutcome describes one replayed event for the page.
func replayOutcome(k rewards.Kept, posted []rewards.Posted, replayed bool) string {
	switch {
	case !replayed:
		return fmt.Sprintf("Event %d was not quarantined any more (status %s); nothing was done.", k.ID, k.Status)
	case k.Status == rewards.StatusApplied:
		return fmt.Sprintf("Event %d applied for user %s (ledger entries: %d).", k.ID, k.User, len(posted))
	default:
		return fmt.Sprintf("Event %d is still quarantined: %s", k.ID, k.Reason)
	}
}

// replayOne: POST /console/quarantine/:id/replay. ReplayEvent applies the event at most
// once however often the form is sent; the page says what this request did.
func (con *console) replayOne(c *gin.Context) {
	id, err := eventIDParam(c.Param("id"))
	if err != nil {
		con.fail(c, err)
		return
	}
	k, posted, replayed, err := con.app.ReplayEvent(c.Request.Context(), id, actor(c))
	if err != nil {
		con.fail(c, err)
		return
	}
	con.showQuarantine(c, http.StatusOK, []string{replayOutcome(k, posted, replayed)}, "", nil)
}

// replayReason: POST /console/quarantine/replay (property, reason, after): the oldest
// replayAllBatch quarantined events of property with exactly that reason and an id above
// after (0 when absent), each through ReplayEvent. When more remain, the page offers the
// next batch, after the last id of this one.
func (con *console) replayReason(c *gin.Context) {
	property, reason := c.PostForm("property"), c.PostForm("reason")
	if _, err := con.app.property(property); err != nil {
		con.fail(c, err)
		return
	}
	var after int64
	if s := c.PostForm("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			con.fail(c, invalid("after", "must be an event id"))
			return
		}
		after = n
	}
	cs := con.app.store
	ctx := c.Request.Context()
	ids, err := cs.QuarantinedIDs(ctx, property, reason, after, replayAllBatch+1)
	if err != nil {
		con.fail(c, err)
		return
	}
	more := len(ids) > replayAllBatch
	ids = ids[:min(len(ids), replayAllBatch)]
	applied, still, skipped := 0, 0, 0
	var failed []int64
	for _, id := range ids {
		k, _, replayed, err := con.app.ReplayEvent(ctx, id, actor(c))
		if err != nil && ctx.Err() == nil && eventsFault(err) {
			// The database refuses this event's effects, whatever the others do: it
			// stays quarantined, and must not hold up the rest of the reason's events
			// (every batch, and every "next batch", would stop at it again).
			con.app.logFor(ctx).Error("console replay: event failed on its own; it stays quarantined", "event_id", id, "err", err)
			failed = append(failed, id)
			continue
		}
		if err != nil {
			p, msg := con.failure(c, err)
			stopped := fmt.Sprintf("Replay stopped at event %d: %s (%d applied, %d still quarantined before it).", id, msg, applied, still)
			if len(failed) > 0 {
				stopped += fmt.Sprintf(" Before it, %d events could not be applied and stay quarantined: %s.", len(failed), joinIDs(failed))
			}
			con.showQuarantine(c, p.Status, nil, stopped, &nextBatch{Property: property, Reason: reason, After: id - 1})
			return
		}
		switch {
		case !replayed:
			skipped++
		case k.Status == rewards.StatusApplied:
			applied++
		default:
			still++
		}
	}
	lines := []string{fmt.Sprintf("Replayed %d events of %s with reason %q: %d applied, %d still quarantined, %d already replayed elsewhere.",
		len(ids), property, reason, applied, still, skipped)}
	var errMsg string
	if len(failed) > 0 {
		errMsg = fmt.Sprintf("%d events could not be applied (the database refused their effects) and stay quarantined: %s. The log has why.",
			len(failed), joinIDs(failed))
	}
	var next *nextBatch
	if more {
		lines = append(lines, fmt.Sprintf("More events have this reason after event %d.", ids[len(ids)-1]))
		next = &nextBatch{Property: property, Reason: reason, After: ids[len(ids)-1]}
	}
	con.showQuarantine(c, http.StatusOK, lines, errMsg, next)
}

// joinIDs lists event ids for a message, "3, 7, 12".
func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ", ")
}

// consoleBefore reads a page's "before" parameter (an id; "" for the newest page).
func consoleBefore(c *gin.Context) (int64, error) {
	return optionalID(c, "before", "must be an id: a positive integer")
}

// pageOf cuts rows, read newest first with one more than a page of n, to the page, and
// returns the id its older rows are below (0 when there are none).
func pageOf[T any](rows []T, n int, id func(T) int64) ([]T, int64) {
	if len(rows) <= n {
		return rows, 0
	}
	return rows[:n], id(rows[n-1])
}

// consolePage is how many rows a console list shows; a page that has more links to them.
const consolePage = 100

// Settlements.

type settlementsView struct {
	Properties []string
	Property   string // "" for every property
	Runs       []runView
	Older      int64 // the id older runs are below; 0 when there are none
}

// settlements: GET /console/settlements
func (con *console) settlements(c *gin.Context) { con.showSettlements(c, http.StatusOK, nil, "") }

func (con *console) showSettlements(c *gin.Context, status int, flash []string, errMsg string) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), consoleTimeout)
	defer cancel()
	v := settlementsView{Properties: con.app.propertyIDs(), Property: c.Query("property")}
	if v.Property != "" {
		if _, err := con.app.property(v.Property); err != nil {
			con.fail(c, err)
			return
		}
	}
	before, err := consoleBefore(c)
	if err != nil {
		con.fail(c, err)
		return
	}
	runs, err := con.app.store.SettlementRunsBefore(ctx, v.Property, before, consolePage+1)
	if err != nil {
		con.fail(c, err)
		return
	}
	runs, v.Older = pageOf(runs, consolePage, func(r rewards.SettlementRun) int64 { return r.ID })
	for _, r := range runs {
		v.Runs = append(v.Runs, toRunView(r))
	}
	con.render(c, status, "settlements", page{Title: "Settlements", Nav: "settlements", Flash: flash, Error: errMsg, Data: v})
}

// settleNow: POST /console/settlements (property).
func (con *console) settleNow(c *gin.Context) {
	property := c.PostForm("property")
	if _, err := con.app.property(property); err != nil {
		con.fail(c, err)
		return
	}
	con.app.logFor(c.Request.Context()).Info("console: settle now", "actor", actor(c), "property", property)
	runs, err := con.app.Settle(c.Request.Context(), property, actor(c))
	var flash []string
	for _, r := range runs {
		flash = append(flash, fmt.Sprintf("Settlement of %s: %s, %d entries, %s moved to available for %d users.", r.Property, r.Status, r.Entries, amount(r.Amount), r.Users))
	}
	status, errMsg := http.StatusOK, ""
	if err != nil {
		var p problem
		p, errMsg = con.failure(c, err)
		status = p.Status
	}
	con.showSettlements(c, status, flash, errMsg)
}

// User lookup.

type balanceView struct {
	User, Currency, Available, Pending, Redeemed, LifetimeEarned, UpdatedAt string
}

type txnView struct {
	ID, Kind, Rule, Bucket, Amount, CreatedAt, Ref string
}

type usersView struct {
	Properties []string
	Property   string
	User       string
	Balance    *balanceView
	Txns       []txnView
	Older      int64 // the leg id older transactions are below; 0 when there are none
	Paged      bool  // the transactions shown are older ones (before=)
}

// users: GET /console/users?property=&user=
func (con *console) users(c *gin.Context) {
	ids := con.app.propertyIDs()
	v := usersView{Properties: ids, Property: c.Query("property"), User: c.Query("user")}
	p := page{Title: "User lookup", Nav: "users", Data: &v}
	if v.User == "" {
		con.render(c, http.StatusOK, "users", p)
		return
	}
	prop, err := con.app.property(v.Property)
	if err != nil {
		con.fail(c, err)
		return
	}
	if msg := checkUserID(v.User); msg != "" {
		p.Error = "User id: " + msg
		con.render(c, http.StatusBadRequest, "users", p)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), consoleTimeout)
	defer cancel()
	b, err := con.app.store.Balance(ctx, prop.ID, v.User)
	if err != nil {
		con.fail(c, err)
		return
	}
	v.Balance = &balanceView{User: v.User, Currency: prop.Currency, Available: amount(b.Available), Pending: amount(b.Pending),
		Redeemed: amount(b.Redeemed), LifetimeEarned: amount(b.LifetimeEarned), UpdatedAt: stamp(b.UpdatedAt)}
	before, err := consoleBefore(c)
	if err != nil {
		con.fail(c, err)
		return
	}
	const txnPage = 50
	txns, err := con.app.store.Transactions(ctx, prop.ID, v.User, txnPage+1, before)
	if err != nil {
		con.fail(c, err)
		return
	}
	txns, v.Older = pageOf(txns, txnPage, func(t rewards.Txn) int64 { return t.ID })
	v.Paged = before != 0
	for _, t := range txns {
		v.Txns = append(v.Txns, txnView{ID: strconv.FormatInt(t.ID, 10), Kind: t.Kind, Rule: t.Rule, Bucket: t.Bucket,
			Amount: amount(t.Amount), CreatedAt: stamp(t.CreatedAt), Ref: t.Ref})
	}
	con.render(c, http.StatusOK, "users", p)
}

// Reports.

type reportsView struct {
	Properties []string
	From, To   string
	// The choices of a request the form sends back, refused, so none is lost.
	Property, Format string
	BOM              bool
}

// reports: GET /console/reports — the form, set to the month so far.
func (con *console) reports(c *gin.Context) {
	now := con.app.store.Now().UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	v := reportsView{Properties: con.app.propertyIDs(), From: from.Format(time.DateOnly), To: now.Truncate(24*time.Hour).AddDate(0, 0, 1).Format(time.DateOnly)}
	con.render(c, http.StatusOK, "reports", page{Title: "Reports", Nav: "reports", Data: v})
}

// reportDownload: GET /console/reports/payouts — the admin API's payout report, with
// the same parameters; a bad one is shown on the form instead of a problem document.
func (con *console) reportDownload(c *gin.Context) {
	err := repeatedReportParam(c)
	if err == nil {
		_, err = con.app.ParsePayoutRequest(c.Query("from"), c.Query("to"), c.Query("property"), c.Query("format"), c.Query("bom"))
	}
	if err != nil {
		con.reportRefused(c, err)
		return
	}
	con.app.streamPayoutReport(c, con.reportRefused)
}

// reportRefused shows the reports form again, its choices kept, with why the report was
// refused: every bad field, or the API's answer (all reports streaming, storage).
func (con *console) reportRefused(c *gin.Context, err error) {
	v := reportsView{Properties: con.app.propertyIDs(), From: c.Query("from"), To: c.Query("to"),
		Property: c.Query("property"), Format: c.Query("format"), BOM: c.Query("bom") == "true"}
	p, msg := con.failure(c, err) // a 400 lists every bad field, as the API's problem does
	if p.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	// A report that failed before its first byte had set its own headers: gin would keep
	// its Content-Type for the page.
	h := c.Writer.Header()
	h.Del("Content-Type")
	h.Del("Content-Disposition")
	h.Set("Cache-Control", "no-store")
	con.render(c, p.Status, "reports", page{Title: "Reports", Nav: "reports", Error: msg, Data: v})
}
