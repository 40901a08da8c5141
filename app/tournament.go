package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// Tournaments (issue 12): the publisher's two read routes and the closer. The rules are
// rewards/tournament.go; the applier keeps the leaderboards (store/tournament.go).

// TournamentStore is what tournaments need from storage. Now is the store's clock, so
// the state of a window and whether it may close are judged by the one clock that also
// stamps receipts.
type TournamentStore interface {
	Leaderboard(ctx context.Context, q rewards.LeaderboardQuery) (rewards.Leaderboard, error)
	TournamentWindow(ctx context.Context, property, tournament string, start time.Time) (rewards.WindowRecord, error)
	// OpenTournamentWindows lists windows with scores, not closed, that ended before before.
	OpenTournamentWindows(ctx context.Context, before time.Time) ([]rewards.WindowRecord, error)
	// CloseTournamentWindow ranks and pays a window once; see store.DB.CloseTournamentWindow.
	CloseTournamentWindow(ctx context.Context, property string, t rewards.Tournament, w rewards.Window) (rewards.WindowClose, error)
	// CurrentTournamentWindow is the window of t a publisher means by "current" at now,
	// with its record: the schedule's current window (rewards.Tournament.Current), unless
	// a window that began earlier is still open or in its grace by the end it began with
	// (the schedule or duration changed since). ok is false when there is none.
	CurrentTournamentWindow(ctx context.Context, property string, t rewards.Tournament, now time.Time) (w rewards.Window,
		rec rewards.WindowRecord, ok bool, err error)
	// CurrentLeaderboard is Leaderboard of the current window at now, which it returns.
	CurrentLeaderboard(ctx context.Context, q rewards.LeaderboardQuery, now time.Time) (lb rewards.Leaderboard, w rewards.Window,
		ok bool, err error)
	// TournamentEventsWaiting reports whether scores of the property's game received in
	// window w still wait for the applier.
	TournamentEventsWaiting(ctx context.Context, property, game string, w rewards.Window) (bool, error)
	Now() time.Time
}

// TournamentCloseSpec is how often `tally serve` looks for windows to close: a window
// closes within a minute of end + grace (+ closeMargin).
const TournamentCloseSpec = "@every 1m"

// closeMargin is how long after end + grace the closer waits before it closes a window
// (rewards.TournamentCloseMargin).
const closeMargin = rewards.TournamentCloseMargin

// tournament returns the property's tournament id, or rewards.ErrNotFound.
func tournamentOf(p *Property, id string) (rewards.Tournament, error) {
	for _, t := range p.Rules.Tournaments {
		if t.ID == id {
			return t, nil
		}
	}
	return rewards.Tournament{}, fmt.Errorf("app: tournament %q: %w", id, rewards.ErrNotFound)
}

// CloseTournaments closes every window whose end + grace (+ closeMargin) has passed, of every property,
// and returns what each attempt did. Any number of replicas may run it at once: the
// store closes a window once. A window of a tournament no longer configured stays open
// (logged) until its config is back. Errors of one window do not stop the others.
func (a *App) CloseTournaments(ctx context.Context) ([]rewards.WindowClose, error) {
	ts := a.store
	now := ts.Now()
	open, err := ts.OpenTournamentWindows(ctx, now.Add(-closeMargin))
	if err != nil {
		return nil, err
	}
	var out []rewards.WindowClose
	var errs []error
	for _, r := range open {
		p, ok := a.props[r.Property]
		var t rewards.Tournament
		if ok {
			t, err = tournamentOf(p, r.Tournament)
		}
		if !ok || err != nil {
			a.log.Warn("tournament window left open: its tournament is not configured", "property", r.Property,
				"tournament", r.Tournament, "window", r.Start)
			continue
		}
		// A window ends as it was begun, whatever the schedule or the duration says now.
		w := t.Recorded(rewards.Window{Start: r.Start}, r)
		if now.Before(w.ClosesAt.Add(closeMargin)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		res, err := ts.CloseTournamentWindow(ctx, r.Property, t, w)
		if err != nil {
			errs = append(errs, fmt.Errorf("close %s %s %s: %w", r.Property, r.Tournament, r.Start.Format(time.RFC3339), err))
			continue
		}
		if res.Outcome == rewards.CloseDone {
			a.log.Info("tournament window closed", "property", r.Property, "tournament", t.ID, "window", w.Start,
				"ranked", res.Ranked, "prizes", len(res.Awards), "paid", res.Paid.String())
			if res.Quarantined > 0 {
				a.log.Warn("tournament window closed without quarantined scores of its game", "property", r.Property,
					"tournament", t.ID, "window", w.Start, "quarantined", res.Quarantined)
			}
		}
		out = append(out, res)
	}
	return out, errors.Join(errs...)
}

// StartTournamentCloser runs CloseTournaments on spec until the returned stop, like the
// settlement schedule: runs never overlap, a panic is logged and the schedule carries on,
// stop waits for a run in progress.
func (a *App) StartTournamentCloser(ctx context.Context, spec string) (stop func(), err error) {
	trig, err := cronTrigger(spec, a.log)
	if err != nil {
		return nil, err
	}
	return a.startTournamentCloser(ctx, trig), nil
}

func (a *App) startTournamentCloser(ctx context.Context, trig trigger) func() {
	return schedule(ctx, trig, a.log.With("job", "tournaments"), a.metrics.skippedTicks.WithLabelValues("tournaments").Inc, func(ctx context.Context) {
		if _, err := a.CloseTournaments(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("closing tournament windows failed; the next run retries", "err", err)
		}
	})
}

type prizeJSON struct {
	Ranks  string `json:"ranks"`
	Amount string `json:"amount"`
}

type windowJSON struct {
	// Game is the game the window ranks: the one it began with (a changed game counts
	// from the next window), else the configured one.
	Game     string    `json:"game"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ClosesAt time.Time `json:"closes_at"`
	State    string    `json:"state"`
	// Ranked and Paid are set once the window has closed.
	ClosedAt *time.Time `json:"closed_at,omitempty"`
	Ranked   *int64     `json:"ranked,omitempty"`
	Paid     *string    `json:"paid,omitempty"`
}

type tournamentJSON struct {
	ID            string      `json:"id"`
	Game          string      `json:"game"`
	Direction     string      `json:"direction"`
	Ties          string      `json:"ties"`
	MinPlays      int64       `json:"min_plays"`
	Grace         string      `json:"grace"`
	Prizes        []prizeJSON `json:"prizes"`
	CurrentWindow *windowJSON `json:"current_window"`
}

// toWindowJSON shows w as its record has it (rewards.Tournament.Recorded: a window that
// has begun ends when it was begun to end, a closed one closed when it did).
func (a *App) toWindowJSON(ctx context.Context, property string, t rewards.Tournament, w rewards.Window, rec rewards.WindowRecord,
	now time.Time) (*windowJSON, error) {
	w = t.Recorded(w, rec)
	out := &windowJSON{Game: t.Game, Start: w.Start, End: w.End, ClosesAt: w.ClosesAt, State: w.StateAt(now, !rec.ClosedAt.IsZero())}
	if rec.Game != "" {
		out.Game = rec.Game
	}
	if !rec.ClosedAt.IsZero() {
		at, paid := rec.ClosedAt, amount(rec.Paid)
		out.ClosedAt, out.Ranked, out.Paid = &at, &rec.Ranked, &paid
	}
	// A window in which no score counted has no row, and the closer never closes it: it
	// is not "closed". Once its grace (and the closer's margin for receipts being
	// committed) is over and no event received before then waits for the applier, no
	// score can count in it any more: it ended with nothing to rank or pay. Until then a
	// score may still make it a row, which the closer then ranks: it is closing.
	if out.State == rewards.WindowClosing && !rec.Exists && !now.Before(w.ClosesAt.Add(closeMargin)) {
		waiting, err := a.store.TournamentEventsWaiting(ctx, property, t.Game, w)
		if err != nil {
			return nil, err
		}
		if !waiting {
			out.State = rewards.WindowEnded
		}
	}
	return out, nil
}

// listTournaments: GET /v1/properties/:property/tournaments
func (a *App) listTournaments(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	ts := a.store
	ctx := c.Request.Context()
	now := ts.Now()
	out := struct {
		Data []tournamentJSON `json:"data"`
	}{Data: make([]tournamentJSON, 0, len(p.Rules.Tournaments))}
	for _, t := range p.Rules.Tournaments {
		tj := tournamentJSON{ID: t.ID, Game: t.Game, Direction: string(t.Direction), Ties: string(t.Ties), MinPlays: t.MinPlays,
			Grace: t.Grace.String(), Prizes: make([]prizeJSON, 0, len(t.Prizes))}
		for _, pr := range t.Prizes {
			ranks := strconv.Itoa(pr.From)
			if pr.To != pr.From {
				ranks += "-" + strconv.Itoa(pr.To)
			}
			tj.Prizes = append(tj.Prizes, prizeJSON{Ranks: ranks, Amount: amount(pr.Amount)})
		}
		w, rec, ok, err := ts.CurrentTournamentWindow(ctx, p.ID, t, now)
		if err != nil {
			a.fail(c, err)
			return
		}
		if ok {
			if tj.CurrentWindow, err = a.toWindowJSON(ctx, p.ID, t, w, rec, now); err != nil {
				a.fail(c, err)
				return
			}
		}
		out.Data = append(out.Data, tj)
	}
	c.JSON(http.StatusOK, out)
}

// standingJSON is one row of a leaderboard. AchievedAt is formatted as a time.Time
// renders in JSON (RFC 3339, nanoseconds as needed), by the handler: a page of 50 spent
// more on time.Time's MarshalJSON, and on checking what it returned, than on the rest
// of its rows.
type standingJSON struct {
	Rank       *int64  `json:"rank"` // null: not ranked (fewer plays than min_plays)
	User       string  `json:"user"`
	Score      string  `json:"score"`
	AchievedAt string  `json:"achieved_at"`
	Plays      int64   `json:"plays"`
	Prize      *string `json:"prize,omitempty"` // closed windows: what the user was paid
}

func toStandingJSON(r rewards.LeaderboardRow) standingJSON {
	out := standingJSON{User: r.User, Score: amount(r.Score), AchievedAt: r.AchievedAt.UTC().Format(time.RFC3339Nano), Plays: r.Plays}
	if r.Rank > 0 {
		rank := r.Rank
		out.Rank = &rank
	}
	if r.Prize != nil {
		s := amount(*r.Prize)
		out.Prize = &s
	}
	return out
}

// leaderboardJSON is GET …/leaderboard's answer, its fields in name order.
type leaderboardJSON struct {
	Data       []standingJSON `json:"data"`
	NextCursor *string        `json:"next_cursor"` // null on the last page
	Tournament string         `json:"tournament"`
	// UserRow is there only when user= was asked for: null when that user has no score.
	UserRow **standingJSON `json:"user_row,omitempty"`
	Window  *windowJSON    `json:"window"`
}

// getLeaderboard: GET /v1/properties/:property/tournaments/:tournament/leaderboard
// ?window=current|<start>&limit=&cursor=&user=
func (a *App) getLeaderboard(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	t, err := tournamentOf(p, c.Param("tournament"))
	if err != nil {
		a.fail(c, err)
		return
	}
	ts := a.store
	ctx := c.Request.Context()
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		a.fail(c, err)
		return
	}
	now := ts.Now()
	q := rewards.LeaderboardQuery{Property: p.ID, Tournament: t, Limit: limit, Cursor: c.Query("cursor"), User: c.Query("user")}
	window := c.DefaultQuery("window", "current")
	if window != "current" {
		// A window of the schedule, or one that has a record whatever the schedule says
		// now (it began, or closed, under another schedule).
		start, err := time.Parse(time.RFC3339, window)
		ok := err == nil
		if ok {
			q.Window, ok = t.WindowStarting(start.UTC())
		}
		if !ok && err == nil {
			rec, err := ts.TournamentWindow(ctx, p.ID, t.ID, start.UTC())
			if err != nil {
				a.fail(c, err)
				return
			}
			q.Window, ok = t.Recorded(rewards.Window{Start: start.UTC()}, rec), rec.Exists
		}
		if !ok {
			a.fail(c, invalid("window", "must be current, the start of one of the tournament's windows, or the start of a past window (RFC 3339)"))
			return
		}
	}
	if q.User != "" {
		if msg := checkUserID(q.User); msg != "" {
			a.fail(c, invalid("user", msg))
			return
		}
	}
	var lb rewards.Leaderboard
	if window == "current" {
		// The current window is chosen and its page read in one call: one round trip.
		var ok bool
		lb, q.Window, ok, err = ts.CurrentLeaderboard(ctx, q, now)
		if err == nil && !ok {
			err = fmt.Errorf("app: tournament %q has no current window: %w", t.ID, rewards.ErrNotFound)
		}
	} else {
		lb, err = ts.Leaderboard(ctx, q)
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	out := leaderboardJSON{Data: make([]standingJSON, len(lb.Rows)), Tournament: t.ID}
	if out.Window, err = a.toWindowJSON(ctx, p.ID, t, q.Window, lb.Record, now); err != nil {
		a.fail(c, err)
		return
	}
	for i, r := range lb.Rows {
		out.Data[i] = toStandingJSON(r)
	}
	if lb.NextCursor != "" {
		out.NextCursor = &lb.NextCursor
	}
	if q.User != "" {
		var row *standingJSON
		if lb.UserRow != nil {
			r := toStandingJSON(*lb.UserRow)
			row = &r
		}
		out.UserRow = &row
	}
	c.JSON(http.StatusOK, out)
}
