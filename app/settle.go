package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// Settler runs settlement and lists the recorded runs.
type Settler interface {
	// Settle runs one settlement of property at the wallet scale, asked for by actor
	// ("" for the schedule); see store.DB.Settle. Another run holding the property's
	// lease is rewards.ErrSettlementRunning.
	Settle(ctx context.Context, property string, scale int32, actor string) (rewards.SettlementRun, error)
	// SettleBy is a scheduled Settle of the lots matured by by, the schedule's tick.
	SettleBy(ctx context.Context, property string, scale int32, by time.Time) (rewards.SettlementRun, error)
	// SettlementRuns lists recent runs of property ("": of every property), newest first.
	SettlementRuns(ctx context.Context, property string, limit int) ([]rewards.SettlementRun, error)
	// SettlementRunsBefore pages back: the runs with an id below before (0: any).
	SettlementRunsBefore(ctx context.Context, property string, before int64, limit int) ([]rewards.SettlementRun, error)
	// LastSettlementRuns is the newest run of each of properties that has one.
	LastSettlementRuns(ctx context.Context, properties []string) ([]rewards.SettlementRun, error)
}

// RunSkipped is the status Settle reports, without recording anything, for a property
// whose settlement lease another run (this replica's or another's) holds. It is not a
// failure: that run does the work.
const RunSkipped = "skipped"

// skippedReason goes with RunSkipped in SettlementRun.Error.
const skippedReason = "another run holds the lease"

// Settle runs one settlement of property, or of every configured property when property
// is "" (Options.SettleLanes of them at once), each at its wallet scale, and returns one
// run per property (in property id order). A property another run is settling is
// reported with status RunSkipped and is not an error. A failed property (or one whose
// run panicked) does not stop the others; the error joins every
// failure. An unknown property is ErrUnknownProperty. Cron (actor ""), `tally settle`
// (config.CLIActor), the console (its admin) and tests call it; a run asked for by an
// actor is in the audit log.
func (a *App) Settle(ctx context.Context, property, actor string) ([]rewards.SettlementRun, error) {
	return a.settle(ctx, property, actor, time.Time{})
}

// settle is Settle; a non-zero by (the schedule's, actor "") settles only the lots
// matured by it.
func (a *App) settle(ctx context.Context, property, actor string, by time.Time) ([]rewards.SettlementRun, error) {
	if property != "" {
		if _, err := a.property(property); err != nil {
			return nil, fmt.Errorf("settle %q: %w", property, err)
		}
	}
	ids := a.propertyIDsOr(property)
	// Up to settleLanes properties at once, each run on its own: one property stuck
	// behind a wallet lock (each held wallet is waited for, up to 10 s, three at most)
	// held every property after it in id order.
	runs := make([]rewards.SettlementRun, len(ids))
	errs := make([]error, len(ids))
	done := make([]bool, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(a.settleLanes, len(ids)) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					continue // handed out as the run was cancelled: not begun
				}
				runs[i], errs[i] = a.settleLane(ctx, a.props[ids[i]], actor, by)
				done[i] = true
			}
		})
	}
hand:
	for i := range ids {
		if ctx.Err() != nil {
			break // select would pick at random between a waiting lane and Done
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break hand
		}
	}
	close(next)
	wg.Wait()
	out := runs[:0]
	var failed []error
	var notBegun []string // the run was cancelled first
	for i, id := range ids {
		if !done[i] {
			notBegun = append(notBegun, id)
			continue
		}
		out = append(out, runs[i])
		if errs[i] != nil {
			failed = append(failed, fmt.Errorf("settle %s: %w", id, errs[i]))
		}
	}
	if len(notBegun) > 0 {
		failed = append(failed, fmt.Errorf("settle %s: not begun: %w", strings.Join(notBegun, ", "), ctx.Err()))
	}
	return out, errors.Join(failed...)
}

// settleLane is settleOne on a lane's goroutine: a panic there (a bug) fails that
// property's run, as it did on the scheduler's goroutine (which recovers), instead of
// ending the process.
func (a *App) settleLane(ctx context.Context, p *Property, actor string, by time.Time) (run rewards.SettlementRun, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("settlement panicked; recovered", "property", p.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("settlement of %s panicked: %v", p.ID, r)
			run = rewards.SettlementRun{Property: p.ID, Status: rewards.RunFailed, Error: err.Error()}
		}
	}()
	return a.settleOne(ctx, p, actor, by)
}

// settleOne settles one property and records the run in the metrics and the log.
func (a *App) settleOne(ctx context.Context, p *Property, actor string, by time.Time) (rewards.SettlementRun, error) {
	start := time.Now()
	var run rewards.SettlementRun
	var err error
	if by.IsZero() {
		run, err = a.store.Settle(ctx, p.ID, p.Scale, actor)
	} else {
		run, err = a.store.SettleBy(ctx, p.ID, p.Scale, by)
	}
	elapsed := time.Since(start)
	switch {
	case errors.Is(err, rewards.ErrSettlementRunning) && run.ID == 0:
		run = rewards.SettlementRun{Property: p.ID, Status: RunSkipped, Error: skippedReason}
		err = nil
	case err != nil && run.ID == 0:
		// Not even started (the lease or the run row could not be written).
		run = rewards.SettlementRun{Property: p.ID, Status: rewards.RunFailed, Error: err.Error()}
	case err != nil && run.Status != rewards.RunFailed:
		run.Status, run.Error = rewards.RunFailed, err.Error()
	}
	a.metrics.settlementRuns.WithLabelValues(p.ID, run.Status).Inc()
	if run.Status != RunSkipped {
		// A float only for the metric; the ledger and the run record are exact.
		a.metrics.settledAmount.WithLabelValues(p.ID).Add(run.Amount.InexactFloat64())
		a.metrics.settledEntries.WithLabelValues(p.ID).Add(float64(run.Entries))
		a.metrics.settlementSecs.Observe(elapsed.Seconds())
	}
	attrs := []any{"property", p.ID, "run", run.ID, "status", run.Status, "users", run.Users, "entries", run.Entries,
		"amount", run.Amount.String(), "duration_ms", elapsed.Milliseconds()}
	if actor != "" {
		attrs = append(attrs, "actor", actor)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		a.log.Warn("settlement interrupted; committed batches stand and the next run settles the rest", append(attrs, "err", err)...)
	case err != nil:
		a.log.Error("settlement failed", append(attrs, "err", err)...)
	case run.Status == RunSkipped:
		a.log.Info("settlement skipped: "+skippedReason, "property", p.ID)
	case run.ID == 0:
		// A scheduled run that found nothing matured leaves no record (the store drops
		// it), and no line at Info: a thousand properties logged a thousand a minute.
		a.log.Debug("settlement: nothing matured", "property", p.ID, "duration_ms", elapsed.Milliseconds())
	default:
		a.log.Info("settlement", attrs...)
	}
	return run, err
}

type settlementJSON struct {
	ID         string     `json:"id"`
	Property   string     `json:"property"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"` // null while running
	Users      int64      `json:"users"`
	Entries    int64      `json:"entries"`
	Amount     string     `json:"amount"`
	Error      string     `json:"error"`
}

func toSettlementJSON(r rewards.SettlementRun) settlementJSON {
	out := settlementJSON{ID: strconv.FormatInt(r.ID, 10), Property: r.Property, Status: r.Status, StartedAt: r.StartedAt.UTC(),
		Users: r.Users, Entries: r.Entries, Amount: amount(r.Amount), Error: r.Error}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	return out
}

// listSettlements: GET /v1/admin/settlements?property=&limit=&cursor=
func (a *App) listSettlements(c *gin.Context) {
	var bad ValidationError
	limit, err := limitParam(c, 100, 1000)
	_ = bad.merge(err) // a *ValidationError or nil, as cursorParam's
	before, err := cursorParam(c)
	_ = bad.merge(err)
	property := c.Query("property")
	if property != "" {
		if _, err := a.property(property); err != nil {
			bad.check("property", "unknown property")
		}
	}
	if err := bad.orNil(); err != nil {
		a.fail(c, err)
		return
	}
	runs, err := a.store.SettlementRunsBefore(c.Request.Context(), property, before, limit+1)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListPage(runs, limit, func(r rewards.SettlementRun) int64 { return r.ID }, toSettlementJSON))
}
