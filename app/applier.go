package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tally/postbacks"
	"tally/rewards"
)

// ApplyStore is what the applier needs: claim-and-apply in one transaction, a way to set
// aside an event that cannot be applied at all, and the size of the backlog.
type ApplyStore interface {
	Apply(ctx context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error)
	Quarantine(ctx context.Context, id int64, reason string) (property string, quarantined bool, err error)
	Backlog(ctx context.Context) (rewards.Backlog, error)
}

// Applier settings; see Options.
const (
	defaultApplyBatch = 1000
	// defaultApplyPoll is how often an idle applier looks for events recorded by another
	// replica (its own receivers wake it at once).
	defaultApplyPoll = 200 * time.Millisecond
	// applyTimeout bounds one batch transaction.
	applyTimeout = 30 * time.Second
	// backlogEvery is how often the backlog gauges are refreshed.
	backlogEvery = 2 * time.Second
)

// applier turns recorded events into ledger effects (DESIGN §2). Each pass claims the
// oldest recorded events, up to batch of them, and the store applies and marks them in one
// transaction; a full batch is followed at once by the next, so a backlog drains at the
// speed of large batches. It sleeps when the inbox is empty until a receiver commits
// (kick) or the poll interval passes.
type applier struct {
	app   *App
	store ApplyStore
	batch int
	poll  time.Duration
	kick  chan struct{}
	log   *slog.Logger
	// backlog is the last count of recorded events, for /readyz.
	backlog atomic.Pointer[rewards.Backlog]
	// After a failed pass the applier waits retryFirst, doubling up to retryMax. Events
	// recorded meanwhile (a receiver's commit: the database takes writes again) cut the
	// wait to retryRecorded from the failure.
	retryFirst, retryMax, retryRecorded time.Duration
	// kickedAfterFailure, for tests, is told how long a wake after a failed pass waits.
	kickedAfterFailure func(wait time.Duration)
}

func newApplier(a *App, st ApplyStore, batch int, poll time.Duration) *applier {
	if batch <= 0 {
		batch = defaultApplyBatch
	}
	if poll <= 0 {
		poll = defaultApplyPoll
	}
	return &applier{app: a, store: st, batch: batch, poll: poll, kick: make(chan struct{}, 1), log: a.log,
		retryFirst: 100 * time.Millisecond, retryMax: 10 * time.Second, retryRecorded: time.Second}
}

// wake tells the applier that events were recorded. It never blocks.
func (ap *applier) wake() {
	select {
	case ap.kick <- struct{}{}:
	default:
	}
}

// RunApplier applies recorded events until ctx ends. Every `tally serve` runs one; any
// number may run against one Postgres (the store's claims keep them apart). A failing
// pass is retried with a growing pause, never given up.
func (a *App) RunApplier(ctx context.Context) {
	ap := a.applier
	// The backlog gauges on their own clock: refreshed between passes, they froze while a
	// pass was stuck (on the very event they should show growing older, for minutes).
	// Readmission too runs beside the passes.
	var side sync.WaitGroup
	defer side.Wait()
	side.Go(func() {
		tick := time.NewTicker(backlogEvery)
		defer tick.Stop()
		for {
			ap.refreshBacklog(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	// One readmitter per process, whatever the number of RunAppliers (serve runs two on
	// Postgres), run by whichever has one going; when its RunApplier ends, another that
	// still runs starts one at its next pass.
	readmitter := func() {
		if a.readmit != "" && a.readmitting.CompareAndSwap(false, true) {
			side.Go(func() {
				defer a.readmitting.Store(false)
				a.runReadmit(ctx)
			})
		}
	}
	pause := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var failedAt time.Time
	for {
		readmitter()
		n, err := ap.pass(ctx, rewards.Claim{Status: rewards.StatusRecorded, Limit: ap.batch})
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && n > 0:
			// Part of the batch failed and the rest applied: the database answers, so
			// the next pass comes as soon as for a short batch, not after a growing pause.
			pause, failedAt = ap.poll, time.Now()
			ap.log.Error("applier: events of a pass failed and stay recorded; the rest applied", "applied", n, "err", err)
		case err != nil:
			pause = min(max(2*pause, ap.retryFirst), ap.retryMax)
			failedAt = time.Now()
			ap.log.Error("applier: pass failed; retrying", "err", err, "retry_in", pause.String())
		case n >= ap.batch:
			pause = 0
			continue // more is waiting
		default:
			pause = ap.poll
		}
		timer.Reset(pause)
		select {
		case <-ctx.Done():
			return
		case <-ap.kick:
			// After a failure the pause is waited out, but a commit of the receivers says
			// the database is back: after an outage the backlog waited up to 10 s more
			// while it grew. A pass a second keeps a database that fails only the
			// applier's batches from being hammered.
			if err != nil {
				wait := time.Until(failedAt.Add(min(pause, ap.retryRecorded)))
				if ap.kickedAfterFailure != nil {
					ap.kickedAfterFailure(wait)
				}
				if wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
			}
			// Since Go 1.23 a stopped or reset timer delivers no stale tick, so there is
			// nothing to drain.
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Drain applies recorded events until none is left, and returns how many it applied.
// Tests and `tally replay` call it; `tally serve` runs RunApplier instead. A pass that
// failed in part is followed by another while it applied something, so an event left
// recorded (see pass) does not stop the drain of the others; the error is returned at
// the end.
func (a *App) Drain(ctx context.Context) (int, error) { return a.DrainProperty(ctx, "") }

// DrainConfigured is DrainProperty of property, or for "" of each property this
// config has in turn, as Replay takes them: the events of a property it lacks are left
// to the processes whose config has it (`tally replay` on a machine with a shorter
// config quarantined them as "not configured").
func (a *App) DrainConfigured(ctx context.Context, property string) (int, error) {
	total := 0
	for _, p := range a.propertyIDsOr(property) {
		n, err := a.DrainProperty(ctx, p)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// DrainProperty is Drain of one property's events ("" every property's).
func (a *App) DrainProperty(ctx context.Context, property string) (int, error) {
	total := 0
	var failed error
	for {
		n, err := a.applier.pass(ctx, rewards.Claim{Status: rewards.StatusRecorded, Property: property, Limit: a.applier.batch})
		total += n
		if err != nil {
			failed = err
		}
		if n == 0 || ctx.Err() != nil {
			if err == nil {
				failed = nil // the last pass found nothing left that fails
			}
			return total, failed
		}
	}
}

// pass applies one claim. If the batch fails as a whole it is split and each half
// applied on its own, so one event the database refuses cannot hold up the others; an
// event that still fails alone is quarantined with the error, to be replayed once the
// cause is fixed. A failure that is not the event's (a timeout, a lost connection, or
// an error the event causes that Tally does not take for its fault) leaves the event
// recorded: the other half is still tried, so one such event does not hold up the
// inbox behind it, and the pass returns the error with what it applied. A database that
// fails everything (down, or too slow for any batch) fails each part: the pass gives up
// after a few failed attempts rather than try every part of the batch.
func (ap *applier) pass(ctx context.Context, c rewards.Claim) (int, error) {
	budget := passFailures(c.Limit)
	return ap.split(ctx, c, &budget)
}

// passFailures is how many failed attempts a pass of a batch of n may make: enough to
// isolate a failing event or two by halving, few enough that a database that fails
// everything is not tried once per event.
func passFailures(n int) int { return 2*bits.Len(uint(max(n, 1))) + 2 }

func (ap *applier) split(ctx context.Context, c rewards.Claim, budget *int) (int, error) {
	got, claimed, err := ap.apply(ctx, c)
	claimed = uniqueIDs(claimed) // a transaction the store retried decided its events again
	switch {
	case err == nil:
		return len(got), nil
	case len(claimed) == 0 || ctx.Err() != nil:
		return 0, err // the claim itself failed: nothing to split
	}
	if !eventsFault(err) {
		*budget-- // the database answered no (an event it refused costs nothing of it)
	}
	if len(claimed) == 1 {
		if *budget <= 0 {
			return 0, err
		}
		return ap.alone(ctx, c, claimed[0], err, budget)
	}
	ap.log.Warn("applier: batch failed; applying it in halves", "events", len(claimed), "err", err)
	n, half := 0, len(claimed)/2
	var first error
	for _, ids := range [][]int64{claimed[:half], claimed[half:]} {
		if *budget <= 0 || ctx.Err() != nil {
			if first == nil {
				first = err
			}
			break
		}
		sub := c
		sub.IDs, sub.Limit, sub.AfterID = ids, len(ids), 0
		m, err := ap.split(ctx, sub, budget)
		n += m
		if err != nil && first == nil {
			first = err
		}
	}
	return n, first
}

// alone retries one event that failed in a batch of one. If it fails again, the event is
// what fails: a recorded one is quarantined with the error (a replay leaves its event
// quarantined as it was).
func (ap *applier) alone(ctx context.Context, c rewards.Claim, id int64, first error, budget *int) (int, error) {
	c.IDs, c.Limit, c.AfterID = []int64{id}, 1, 0
	got, _, err := ap.apply(ctx, c)
	if err == nil {
		return len(got), nil
	}
	if !eventsFault(err) {
		*budget--
	}
	// Only a failure the event causes (the database refused its data, or the rules
	// panicked) quarantines it. A timeout, a lock wait or a lost connection is the
	// database's: the event stays recorded, to be tried again by the next pass.
	if c.Status != rewards.StatusRecorded || ctx.Err() != nil || !eventsFault(err) {
		return 0, fmt.Errorf("event %d: %w", id, err)
	}
	property, quarantined, qerr := ap.store.Quarantine(ctx, id, "apply failed: "+err.Error())
	if qerr != nil {
		return 0, errors.Join(first, qerr)
	}
	if !quarantined {
		return 0, nil // no longer recorded: another applier has taken it since
	}
	ap.log.Error("applier: event quarantined: applying it failed on its own", "event_id", id, "property", property, "err", err)
	ap.app.metrics.applied.WithLabelValues(property, rewards.StatusQuarantined).Inc()
	return 1, nil
}

// errApplierPanic marks a panic in the rules: the event's fault, not the database's.
var errApplierPanic = errors.New("applier panic")

func eventsFault(err error) bool {
	return errors.Is(err, rewards.ErrRejected) || errors.Is(err, errApplierPanic)
}

// uniqueIDs drops repeated ids, keeping the first of each in order.
func uniqueIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// apply runs one claim in the store, bounded by applyTimeout, and reports which events
// it claimed (also when it failed: the batch to split). A panic in the rules becomes an
// error; the transaction has rolled back.
func (ap *applier) apply(ctx context.Context, c rewards.Claim) (got []rewards.Applied, claimed []int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	decide := func(k rewards.Kept) rewards.Decision {
		claimed = append(claimed, k.ID)
		return ap.app.decide(k)
	}
	defer func() {
		if r := recover(); r != nil {
			ap.log.Error("applier panic", "panic", r, "stack", string(debug.Stack()))
			got, err = nil, fmt.Errorf("%w: %v", errApplierPanic, r)
		}
	}()
	start := time.Now()
	got, err = ap.store.Apply(ctx, c, decide)
	if err != nil {
		return nil, claimed, err
	}
	m := ap.app.metrics
	m.applySeconds.Observe(time.Since(start).Seconds())
	for _, g := range got {
		m.applied.WithLabelValues(g.Property, g.Status).Inc()
		if c.Status == rewards.StatusRecorded {
			m.applyLag.Observe(g.AppliedAt.Sub(g.ReceivedAt).Seconds())
		}
	}
	return got, claimed, nil
}

func (ap *applier) refreshBacklog(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := ap.store.Backlog(ctx)
	if err != nil {
		// The last count stands, and its oldest event grows older meanwhile.
		last := ap.backlog.Load()
		if last == nil {
			return
		}
		b = *last
	} else {
		ap.backlog.Store(&b)
	}
	ap.app.metrics.backlog.Set(float64(b.Events))
	ap.app.metrics.oldestRecorded.Set(oldestSeconds(b, time.Now()))
}

// decide is the one place that says what becomes of a claimed event: applied under its
// property's current rules, or kept quarantined with the reason. It runs for the
// applier and for replays alike. A replayed event's raw body, authenticated on receipt,
// is decoded again by the current parsers, so an event kept because its payload shape
// was not understood is applied once the parser understands it.
func (a *App) decide(k rewards.Kept) rewards.Decision {
	ev, unmapped := k.Event, ""
	if k.Status == rewards.StatusRecorded {
		unmapped = k.Reason // set on receipt for a payload shape the parser did not know
	} else if len(k.Raw) > 0 {
		fresh, err := postbacks.Decode(k.Source, k.Raw)
		var um *postbacks.UnmappedError
		switch {
		case err == nil:
			ev = fresh
		case errors.As(err, &um):
			ev, unmapped = um.Event, um.Error()
		}
		// A body the current parser refuses keeps the event decoded at receipt.
	}
	p, ok := a.props[k.Property]
	switch {
	case !ok:
		return rewards.Decision{Event: ev, Quarantine: notConfigured(k.Property)}
	case unmapped != "":
		return rewards.Decision{Event: ev, Quarantine: unmapped}
	case ev.Session != nil && p.GamezopPropertyID != "" && ev.Session.PropertyID != p.GamezopPropertyID:
		// Authenticated but addressed to another Gamezop property: most likely our config
		// is out of date, so keep it for replay rather than refuse it.
		return rewards.Decision{Event: ev, Quarantine: "property-id " + quoteOrMissing(ev.Session.PropertyID) +
			" does not match gamezop_property_id " + p.GamezopPropertyID}
	case p.SubTokens != nil && subIsUser(k.Source) && ev.User != "":
		// The provider is authentic, the user may not be: the sub came from a URL the end
		// user can edit. A sub that does not verify is kept, never credited, and can be
		// replayed once the secret is fixed.
		user, err := p.SubTokens.User(ev.User, k.ReceivedAt)
		if err != nil {
			return rewards.Decision{Event: ev, Quarantine: err.Error()}
		}
		ev.User = user
	case p.SubTokens == nil && subIsUser(k.Source):
		// A token-shaped sub received while the property had sub tokens, applied after
		// they were removed: the whole sub would be the wallet, an id the receivers
		// refuse (Receive). Kept until the config says what it is.
		if msg := wholeSubProblem(ev.User); msg != "" {
			return rewards.Decision{Event: ev, Quarantine: "the sub, taken whole as the user id without sub_tokens, " + msg}
		}
	}
	// An event an older version recorded under a user id the current rule refuses (the
	// current parser refuses its body, so the event decoded at receipt stands) is kept,
	// not credited: it would open or pay a wallet the receivers and adjustments refuse,
	// whose payout sheet row may read as another user's.
	if ev.User != "" {
		if msg := postbacks.CheckNewUserID(ev.User); msg != "" {
			return rewards.Decision{Event: ev, Quarantine: fmt.Sprintf("user id %q %s; an existing wallet of it can be credited by an adjustment",
				ev.User, msg)}
		}
	}
	return rewards.Decision{Event: ev, Rules: &p.Rules}
}

// subIsUser reports the sources whose user id is the sub of a game URL.
func subIsUser(s rewards.Source) bool {
	return s == rewards.SourceGamezopSPP || s == rewards.SourceGamezopScores
}

// wholeSubProblem is what the user id rule says of a sub taken whole as the user id (a
// property without sub tokens). The parser held a token-shaped sub to the rule only up
// to its signature (postbacks' subIdent), so only an escape ("_x…") can be refused here
// that it did not refuse.
func wholeSubProblem(sub string) string {
	if !strings.Contains(sub, "_x") {
		return ""
	}
	return postbacks.CheckNewUserID(sub)
}

// subField is the field that carries src's sub.
func subField(src rewards.Source) string {
	if src == rewards.SourceGamezopScores {
		return "subId"
	}
	return "user-id"
}

func quoteOrMissing(s string) string {
	if s == "" {
		return "(missing)"
	}
	return `"` + s + `"`
}

// notConfigured is the reason an event of a property this process does not know is kept.
func notConfigured(property string) string { return "property " + property + " is not configured" }

// readmitEvery is how often a serving process looks for events to readmit.
const readmitEvery = time.Minute

// runReadmit readmits (Readmit) as the applier starts and every readmitEvery after.
func (a *App) runReadmit(ctx context.Context) {
	tick := time.NewTicker(readmitEvery)
	defer tick.Stop()
	for {
		n, err := a.Readmit(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.log.Warn("applier: readmitting events kept as of an unconfigured property failed; next try in a minute", "readmitted", n, "err", err)
		case n > 0:
			a.log.Info("applier: readmitted events a replica without their property had kept", "readmitted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Readmit replays the events of this process's properties that a process without the
// property kept quarantined as "not configured", and returns how many it applied (or
// kept again, with a new reason). During a rolling deploy that adds a property, the
// replicas still on the old config claim its events too (they are recorded by the new
// ones, and every applier claims every property's events) and keep them; the replicas
// on the new config readmit them within a minute, instead of an operator's replay. The
// claim takes only events still kept with that reason, so each is readmitted once
// whatever the replicas (one kept again for another reason is left to an operator); an
// event that fails on its own stays as it was and does not hold up the others. Each
// replay is in the audit log as the ReadmitActor's.
func (a *App) Readmit(ctx context.Context) (int, error) {
	if a.readmit == "" {
		return 0, nil
	}
	n := 0
	var errs []error
	for _, p := range a.propertyIDs() {
		rep, err := a.replayAll(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Property: p, Reason: notConfigured(p),
			Actor: a.readmit}, nil)
		n += rep.Applied + rep.Quarantined
		if err == nil {
			err = rep.failedErr()
		}
		if err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			errs = append(errs, fmt.Errorf("readmit %s: %w", p, err))
		}
	}
	return n, errors.Join(errs...)
}
