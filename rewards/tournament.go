package rewards

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Tournaments (issue 12). A tournament ranks users by their best score on one game in a
// window of time and, once the window has closed, pays prizes by rank. This file is the
// domain's part: which window a score belongs to and whether it counts, the ranking,
// and the prize split. The store keeps the live leaderboard and closes windows; the
// config turns the YAML into a Tournament.

// AccountPrizes is the system account tournament prizes are paid from.
const AccountPrizes = "@prizes"

// Ties says how users with equal scores are ranked.
type Ties string

// Ties: split shares the prizes of the ranks the tied users occupy equally; first ranks
// the earliest score first (then the earlier event), so no two users share a rank.
const (
	TiesSplit Ties = "split"
	TiesFirst Ties = "first"
)

// Prize pays Amount to each rank from From to To, inclusive (1-based).
type Prize struct {
	From, To int
	Amount   decimal.Decimal
}

// Tournament is one configured tournament, validated by config.
type Tournament struct {
	ID      string
	Version string // changes whenever a field below changes
	Game    string // as score targets name it
	Sources []Source
	// Direction says which scores are better: higher or lower (times, strokes).
	Direction Direction
	// States are the Gamezop states that count (default over); other sources count every
	// score.
	States []string
	// Next, when set, is the start of the first window strictly after t (a cron spec in
	// UTC); each window lasts Duration. When nil the tournament has one window,
	// [Start, End). A function, not the spec, keeps this package free of the cron parser.
	Next     func(t time.Time) time.Time
	Duration time.Duration
	Start    time.Time
	End      time.Time
	// Grace is how long after a window's end scores made inside it are still accepted;
	// the window closes, and pays, at End + Grace.
	Grace    time.Duration
	Prizes   []Prize
	Ties     Ties
	MinPlays int64
	Hold     time.Duration
	// Scale is the property's wallet scale: tied users' shares of a prize are cut at it
	// (Awards), so a prize in whole coins is paid in whole coins.
	Scale int32
}

// Window is one period of a tournament: scores made in [Start, End) count, received
// before ClosesAt.
type Window struct {
	Start    time.Time
	End      time.Time
	ClosesAt time.Time
}

func (t Tournament) window(start, end time.Time) Window {
	return Window{Start: start.UTC(), End: end.UTC(), ClosesAt: end.Add(t.Grace).UTC()}
}

// WindowAt returns the window that contains at, if any. Config guarantees that windows
// do not overlap, so there is at most one.
func (t Tournament) WindowAt(at time.Time) (Window, bool) {
	if t.Next == nil {
		if at.Before(t.Start) || !at.Before(t.End) {
			return Window{}, false
		}
		return t.window(t.Start, t.End), true
	}
	// The window containing at starts in (at − Duration, at]: the first start after
	// at − Duration is that start if there is one.
	s := t.Next(at.Add(-t.Duration))
	if s.IsZero() || s.After(at) {
		return Window{}, false
	}
	return t.window(s, s.Add(t.Duration)), true
}

// Current is the window a publisher means by "current" at now: the one that has started
// and not yet closed (open, or in its grace period), else the next one to start; for a
// tournament of one window, that window at any time. ok is false when the schedule has
// no next window.
func (t Tournament) Current(now time.Time) (Window, bool) {
	if t.Next == nil {
		return t.window(t.Start, t.End), true // before, during and after it: the only one
	}
	// The earliest window that closes after now starts after now − Duration − Grace.
	s := t.Next(now.Add(-t.Duration - t.Grace))
	if s.IsZero() {
		return Window{}, false
	}
	return t.window(s, s.Add(t.Duration)), true
}

// WindowStarting returns the window that starts at start, if start is one of the
// tournament's window starts.
func (t Tournament) WindowStarting(start time.Time) (Window, bool) {
	if t.Next == nil {
		if !start.Equal(t.Start) {
			return Window{}, false
		}
		return t.window(t.Start, t.End), true
	}
	if s := t.Next(start.Add(-time.Second)); !s.Equal(start) {
		return Window{}, false
	}
	return t.window(start, start.Add(t.Duration)), true
}

// Recorded is w as the store recorded it. A window that has begun (it has a record)
// ends when it was begun to end, whatever the schedule says now: a duration changed
// mid-window applies from the next window on. A tournament of one window (start, end)
// has no next window for a change to wait for: an end moved later applies to its window
// while it is not closed (the operator extends the tournament); one moved earlier does
// not, since scores made after it may be ranked already. A closed window closes when its
// close took it to (end + the grace of that day).
func (t Tournament) Recorded(w Window, rec WindowRecord) Window {
	if !rec.Exists {
		return w
	}
	w.End = rec.End.UTC()
	if t.Next == nil && rec.ClosedAt.IsZero() && rec.Start.Equal(t.Start) && t.End.After(w.End) {
		w.End = t.End.UTC()
	}
	w.ClosesAt = w.End.Add(t.Grace)
	if !rec.ClosesAt.IsZero() {
		w.ClosesAt = rec.ClosesAt.UTC()
	}
	return w
}

// windowFor is the window a score made at at belongs to: a begun window of t that
// contains it, with the end it began with, else the schedule's.
func (t Tournament) windowFor(at time.Time, begun []WindowRecord) (Window, bool) {
	for _, rec := range begun {
		if rec.Tournament == t.ID && rec.Exists && rec.ClosedAt.IsZero() && !at.Before(rec.Start) && at.Before(rec.End) {
			return t.Recorded(Window{Start: rec.Start.UTC()}, rec), true
		}
	}
	return t.WindowAt(at)
}

// Window states, as the publisher API reports them.
const (
	WindowUpcoming = "upcoming" // not started
	WindowOpen     = "open"     // scores made now count
	WindowGrace    = "grace"    // ended; late reports of scores made inside it still count
	WindowClosing  = "closing"  // grace is over; the closer pays it at its next run
	WindowClosed   = "closed"   // ranked and paid
	// WindowEnded: grace is over and no score counted in it, nor can any still
	// (none waits to be applied): there was nothing to rank or pay, and no close is
	// recorded.
	WindowEnded = "ended"
)

// StateAt is w's state at now, given whether the store has closed it.
func (w Window) StateAt(now time.Time, closed bool) string {
	switch {
	case closed:
		return WindowClosed
	case now.Before(w.Start):
		return WindowUpcoming
	case now.Before(w.End):
		return WindowOpen
	case now.Before(w.ClosesAt):
		return WindowGrace
	}
	return WindowClosing
}

// neverCount are the Gamezop states whose scores no tournament counts.
var neverCount = []string{"loaded", "start"}

// TournamentCloseMargin is how long after end + grace the closer waits before it closes
// a window. A receiver stamps an event's receipt before its group commit, which may take
// up to 5 s (ingest's deadline); the margin lets an event received just before end +
// grace be committed, and so be waited for, before the window is ranked. After it a
// window in which no score counted has ended with nothing to rank or pay, and a replayed
// score does not open it (store.applyTournaments).
const TournamentCloseMargin = 10 * time.Second

// TournamentScore is what one score event means to one tournament of its property.
type TournamentScore struct {
	Tournament string
	Window     Window
	Counts     bool
	Note       string // why it does not count; empty when it counts
	Value      decimal.Decimal
	Key        string    // ScoreKey of Value: byte order is rank order
	At         time.Time // when the score was made
	Play       string    // the play it belongs to: a play counts once toward min_plays
	// Late is a score received after its window (Window) closed: it does not count, and
	// its report belongs to that window all the same, so that a redelivery of it does
	// not count in a later one.
	Late bool
}

// TournamentScores says, for each tournament of r on the event's game, whether the score
// counts and in which window. The time a score was made is the provider's timestamp when
// it sends one, else the time of receipt; a timestamp later than receipt is taken as the
// receipt time (a score cannot be made after it arrived, and a provider's clock must not
// move a score into a window that has not started). A score received at or after its
// window's end + grace does not count: that window is closed, or closing.
//
// begun are the records of the property's windows that have begun and not closed: a
// window that has begun ends as it was begun (Recorded), so a score made inside one
// belongs to it even if today's schedule or duration would put it elsewhere or nowhere.
func TournamentScores(ev Event, r Rules, receivedAt time.Time, begun []WindowRecord) []TournamentScore {
	if ev.Kind != KindScore || ev.Score == nil || ev.User == "" || ev.Test {
		return nil
	}
	sc := ev.Score
	at := receivedAt.UTC()
	if ev.OccurredAt != nil && ev.OccurredAt.Before(at) {
		at = ev.OccurredAt.UTC()
	}
	play := sc.PlayID
	if play == "" {
		play = "event:" + ev.DedupeKey // sources without play ids: each report is a play
	}
	var out []TournamentScore
	for _, t := range r.Tournaments {
		if t.Game != sc.Game || (len(t.Sources) > 0 && !slices.Contains(t.Sources, ev.Source)) {
			continue
		}
		ts := TournamentScore{Tournament: t.ID, Value: sc.Value, At: at, Play: play}
		note := func(format string, args ...any) {
			ts.Note = fmt.Sprintf("tournament %s: ", t.ID) + fmt.Sprintf(format, args...)
			out = append(out, ts)
		}
		if ev.Source == SourceGamezopScores {
			states := t.States
			if len(states) == 0 {
				states = defaultStates
			}
			// loaded and start report the score a play begins with (0), which would top
			// every lower-is-better board: they never count, whatever the config says.
			if !slices.Contains(states, sc.State) || slices.Contains(neverCount, sc.State) {
				note("state %q not counted", sc.State)
				continue
			}
		}
		key, err := ScoreKey(sc.Value, t.Direction)
		if err != nil {
			note("%v", err)
			continue
		}
		w, ok := t.windowFor(at, begun)
		if !ok {
			note("score made at %s is in no window", at.Format(time.RFC3339))
			continue
		}
		ts.Window = w
		if !receivedAt.Before(w.ClosesAt) {
			ts.Late = true
			note("window %s closed at %s; score received late, not counted", w.Start.Format(time.RFC3339),
				w.ClosesAt.Format(time.RFC3339))
			continue
		}
		ts.Key, ts.Counts = key, true
		out = append(out, ts)
	}
	return out
}

// scoreDigits: scores are non-negative, below 10^20, with at most 18 decimal places
// (what the ledger's NUMERIC(38,18) holds), so 38 fixed digits hold any of them.
const scoreIntDigits = MaxIntegerDigits

// ScoreKey encodes a score so that comparing keys byte by byte ranks scores best first:
// 38 fixed digits, each digit complemented (9 − d) when higher is better. Both databases
// then order a leaderboard by one text column, whatever the direction (SQLite keeps
// money as text, which would otherwise sort "9" after "10").
func ScoreKey(v decimal.Decimal, dir Direction) (string, error) {
	if v.IsNegative() || CheckAmount(v) != nil {
		return "", fmt.Errorf("score %s is outside [0, 10^%d) with at most %d decimal places", v, scoreIntDigits, Precision)
	}
	s := v.StringFixed(Precision)
	intPart, frac, _ := strings.Cut(s, ".")
	b := []byte(strings.Repeat("0", scoreIntDigits-len(intPart)) + intPart + frac)
	switch dir {
	case Higher:
		for i, c := range b {
			b[i] = '9' - (c - '0')
		}
	case Lower:
	default:
		return "", fmt.Errorf("%w: direction %q", ErrNotConfigured, dir)
	}
	return string(b), nil
}

// Rank buckets come in two levels: coarse buckets of one significant digit, each split
// into fine buckets of three.
const (
	CoarseDigits = 1
	FineDigits   = 3
)

// RankBucket groups score keys so a user's rank can be counted without reading every row
// ahead: the key cut after the score's first digits significant digits and padded with
// zeros. Buckets of one level are contiguous ranges in key order, a bucket's name is its
// lowest key, and each fine bucket lies inside one coarse bucket. So a user's rank is
// 1 + the users of the coarse buckets before the user's + those of the fine buckets
// before the user's inside it + the rows ahead in the user's fine bucket (keys from its
// name up to the user's): with scores spread over a few orders of magnitude, a few
// hundred rows read instead of every row ahead. Scores that agree in their first three
// significant digits share a fine bucket.
func RankBucket(key string, dir Direction, digits int) string {
	lead := byte('0') // leading zeros of a score; complemented into nines when higher is better
	if dir == Higher {
		lead = '9'
	}
	p := 0
	for p < len(key) && key[p] == lead {
		p++
	}
	cut := min(len(key), p+digits)
	return key[:cut] + strings.Repeat("0", len(key)-cut)
}

// Standing is one user's best score in a window.
type Standing struct {
	User       string
	Score      decimal.Decimal
	Key        string    // ScoreKey of Score
	AchievedAt time.Time // when the best score was made
	EventID    int64     // the inbox event that reported it: the last tie-breaker
	Plays      int64     // distinct plays that counted
}

// Before reports whether a is ahead of b on the leaderboard: the better score, then the
// earlier score, then the earlier event. Every leaderboard, live or final, is in this
// order; with ties: split, equal scores share a rank whatever their order.
func (a Standing) Before(b Standing) bool {
	if a.Key != b.Key {
		return a.Key < b.Key
	}
	if !a.AchievedAt.Equal(b.AchievedAt) {
		return a.AchievedAt.Before(b.AchievedAt)
	}
	if a.EventID != b.EventID {
		return a.EventID < b.EventID
	}
	return a.User < b.User
}

// Ranker numbers standings taken in leaderboard order. Its state is small, so a page of
// the leaderboard can resume it from a cursor.
type Ranker struct {
	Ties     Ties
	Position int64  // standings numbered so far
	Rank     int64  // rank of the last one
	LastKey  string // score key of the last one
}

// Next returns the rank of s, the standing after the last one given.
func (r *Ranker) Next(s Standing) int64 {
	r.Position++
	if r.Ties == TiesFirst || r.Position == 1 || s.Key != r.LastKey {
		r.Rank = r.Position
	}
	r.LastKey = s.Key
	return r.Rank
}

// Ranked is a standing with its rank.
type Ranked struct {
	Standing
	Rank int64
}

// Rank orders standings and ranks them: users with fewer than minPlays plays are left
// out; with ties split, equal scores share the rank of the first of them and the next
// score takes the rank after all of them (1, 2, 2, 4).
func Rank(in []Standing, ties Ties, minPlays int64) []Ranked {
	rows := make([]Standing, 0, len(in))
	for _, s := range in {
		if s.Plays >= minPlays {
			rows = append(rows, s)
		}
	}
	slices.SortFunc(rows, func(a, b Standing) int {
		switch {
		case a.Before(b):
			return -1
		case b.Before(a):
			return 1
		}
		return 0
	})
	out := make([]Ranked, len(rows))
	r := Ranker{Ties: ties}
	for i, s := range rows {
		out[i] = Ranked{Standing: s, Rank: r.Next(s)}
	}
	return out
}

// PrizeOf is what the table pays rank n (zero when no range covers it).
func PrizeOf(prizes []Prize, n int64) decimal.Decimal {
	for _, p := range prizes {
		if int64(p.From) <= n && n <= int64(p.To) {
			return p.Amount
		}
	}
	return decimal.Zero
}

// Award is one user's prize.
type Award struct {
	User   string
	Rank   int64
	Amount decimal.Decimal
}

// Awards computes the prizes of a ranked window, for wallets of scale decimal places. A
// rank's prize goes to the user at that rank. Users tied at rank r under ties: split
// occupy ranks r … r+k−1: the prizes of those ranks are added and divided equally, each
// share cut at the wallet's scale, and what the cut leaves (fewer than k units of
// 10^-scale) goes one unit each to the tied users in byte order of their ids, so the
// shares add up exactly to the prizes and 100 coins among three are 34, 33 and 33, not
// thirds whose fractions wait in pending. Users without a prize are left out; prizes of
// ranks nobody reached are not paid.
func Awards(ranked []Ranked, prizes []Prize, scale int32) []Award {
	scale = min(max(scale, 0), Precision)
	unit := decimal.New(1, -scale)
	var out []Award
	for i := 0; i < len(ranked); {
		j := i + 1
		for j < len(ranked) && ranked[j].Rank == ranked[i].Rank {
			j++
		}
		group := ranked[i:j]
		pool := decimal.Zero
		for n := int64(0); n < int64(len(group)); n++ {
			pool = pool.Add(PrizeOf(prizes, group[0].Rank+n))
		}
		i = j
		if !pool.IsPositive() {
			continue
		}
		users := make([]string, len(group))
		for k, g := range group {
			users[k] = g.User
		}
		slices.Sort(users)
		share, rest := pool.QuoRem(decimal.NewFromInt(int64(len(group))), scale)
		frac := rest.Mod(unit) // of a prize finer than the scale, which config refuses
		units := rest.Sub(frac).Div(unit).IntPart()
		for k, u := range users {
			amount := share
			if int64(k) < units {
				amount = amount.Add(unit)
			}
			if k == 0 {
				amount = amount.Add(frac)
			}
			if amount.IsPositive() {
				out = append(out, Award{User: u, Rank: group[0].Rank, Amount: amount})
			}
		}
	}
	return out
}

// PrizeClaim makes a window's prize payable once per user: the claims table's key backs
// up the store's closed-window check.
func PrizeClaim(tournament string, w Window) string {
	return "tournament:" + tournament + ":" + w.Start.UTC().Format(time.RFC3339)
}

// PrizeRef names where a prize comes from: tournament, window and rank.
func PrizeRef(tournament string, w Window, rank int64) string {
	return fmt.Sprintf("tournament:%s/%s/rank:%d", tournament, w.Start.UTC().Format(time.RFC3339), rank)
}

// PrizeEntry credits a prize to the user's pending from @prizes; it matures after the
// tournament's hold from the close.
func (t Tournament) PrizeEntry(w Window, a Award, closedAt time.Time) Entry {
	return Entry{
		Kind:        EntryPrize,
		Rule:        "tournament:" + t.ID,
		RuleVersion: t.Version,
		Claim:       PrizeClaim(t.ID, w),
		MaturesAt:   closedAt.Add(t.Hold).UTC(),
		Legs: []Leg{
			{Bucket: Pending, Amount: a.Amount},
			{System: AccountPrizes, Amount: a.Amount.Neg()},
		},
	}
}
