package rewards

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// ErrNotConfigured is returned by Evaluate when the property's rules cannot judge the
// event: a session arrives for a property with no revenue rule, or a rule is unusable
// (an unknown direction, a negative reward). The caller keeps the event as quarantined so
// it can be replayed once the config is fixed; nothing is credited meanwhile.
var ErrNotConfigured = errors.New("rules not configured")

// ErrInvalidEvent is returned by Evaluate for an event the decoders should never have
// produced: a kind without its payload, no user, a negative amount. It is a bug upstream,
// not something a rule can decide.
var ErrInvalidEvent = errors.New("invalid event")

// DayState is what the user was already credited from revenue (the user part, not the
// withheld part) on the UTC day of receipt of the event being evaluated. The caller reads
// it in the same transaction that writes the outcome, and adds each credited amount
// before evaluating the user's next session of that day in the same batch.
type DayState struct {
	RevenueCredited decimal.Decimal
}

// SessionResult is how one SPP session was valued, kept on the session's record.
// Gross = Withheld + Credited + CappedExcess exactly.
type SessionResult struct {
	Gross        decimal.Decimal // revenue × share × multiplier × units_per_usd
	Withheld     decimal.Decimal // gross × buffer, credited to @buffer
	Credited     decimal.Decimal // what the user's pending received
	CappedExcess decimal.Decimal // net share the caps kept from the user; credited to no one
	Multiplier   decimal.Decimal // the country multiplier applied (zero when none applied)
	// Buffer and SessionCap are the rule's, kept so a later true-up releases the buffer
	// the session was credited under, within its cap (zero: no cap).
	Buffer     decimal.Decimal
	SessionCap decimal.Decimal
	// Reason says why the session earned nothing or was capped; empty otherwise.
	Reason string
}

// Outcome is what one event is worth under the rules. Entries may carry claims that are
// taken already; Credit drops those.
type Outcome struct {
	Entries []Entry
	Session *SessionResult // set for sessions that reached valuation
	Note    string         // why nothing was earned, for the inbox record
}

// Reasons a session earns less than its full share. They are stored on the session
// record and shown to operators; they are not matched on by code.
const (
	reasonShort        = "below min_session_seconds"
	reasonZeroRevenue  = "zero revenue"
	reasonZeroGross    = "zero gross"
	reasonAllWithheld  = "buffer withholds everything"
	reasonSessionCap   = "per_session cap"
	reasonDayCap       = "per_user_per_day cap"
	reasonNoCountryAny = `no country and no "*" multiplier`
)

// Evaluate values one event under one property's rules (those of the process that applies
// it, README "Rules at apply time"), at the time it was received.
// receivedAt, not the provider's OccurredAt, places the event in its UTC day and starts
// its hold, because the provider can move its own timestamps and we cannot.
//
// Evaluate never checks claims: an entry that may pay only once carries a Claim, and
// Credit drops it when the claim is taken already. A session for a property without a
// revenue rule is ErrNotConfigured.
func Evaluate(ev Event, r Rules, day DayState, receivedAt time.Time) (Outcome, error) {
	var (
		out Outcome
		err error
	)
	if ev.Test {
		return Outcome{Note: fmt.Sprintf("%s test event %q earns nothing", ev.Source, ev.Type)}, nil
	}
	switch ev.Kind {
	case KindSession:
		out, err = evaluateSession(ev, r, day, receivedAt)
	case KindScore:
		out, err = evaluateScore(ev, r, receivedAt)
	case KindAchievement:
		out, err = evaluateAchievement(ev, r, receivedAt)
	case KindOther:
		return Outcome{Note: fmt.Sprintf("%s event %q earns nothing", ev.Source, ev.Type)}, nil
	default:
		return Outcome{}, fmt.Errorf("%w: unknown kind %q", ErrInvalidEvent, ev.Kind)
	}
	if err != nil {
		return Outcome{}, err
	}
	// Postgres would silently round an amount beyond NUMERIC(38,18), or refuse one with
	// too many integer digits; refuse it here so a wrong rule fails loudly and alike on
	// every database instead of booking a different number. The session's record is
	// checked too: its gross can exceed the bound while its capped legs do not.
	for _, e := range out.Entries {
		for _, l := range e.Legs {
			if err := CheckAmount(l.Amount); err != nil {
				return Outcome{}, fmt.Errorf("rule %s: %w", e.Rule, err)
			}
		}
	}
	if s := out.Session; s != nil {
		for _, a := range []struct {
			name   string
			amount decimal.Decimal
		}{{"gross", s.Gross}, {"withheld", s.Withheld}, {"credited", s.Credited}, {"capped excess", s.CappedExcess}} {
			if err := CheckAmount(a.amount); err != nil {
				return Outcome{}, fmt.Errorf("revenue rule: session's %s %s: %w", a.name, a.amount, err)
			}
		}
	}
	return out, nil
}

// DayOf is the UTC calendar day of t, as used by per_user_per_day caps and per: day claims.
func DayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func evaluateSession(ev Event, r Rules, day DayState, receivedAt time.Time) (Outcome, error) {
	s := ev.Session
	if s == nil {
		return Outcome{}, fmt.Errorf("%w: session event without session", ErrInvalidEvent)
	}
	if ev.User == "" {
		return Outcome{}, fmt.Errorf("%w: session %q has no user", ErrInvalidEvent, s.SessionID)
	}
	if s.RevenueUSD.IsNegative() {
		return Outcome{}, fmt.Errorf("%w: session %q has negative revenue", ErrInvalidEvent, s.SessionID)
	}
	rr := r.Revenue
	if rr == nil {
		return Outcome{}, fmt.Errorf("%w: property %q has no revenue rule", ErrNotConfigured, r.Property)
	}
	if err := checkRevenueRule(rr); err != nil {
		return Outcome{}, fmt.Errorf("%w: property %q revenue: %s", ErrNotConfigured, r.Property, err)
	}

	nothing := func(reason string) Outcome {
		return Outcome{Session: &SessionResult{Reason: reason, Buffer: rr.Buffer, SessionCap: rr.PerSessionCap}, Note: reason}
	}
	// Exactly min_session_seconds earns: the setting names the shortest session that counts.
	if s.DurationSeconds < rr.MinSessionSeconds {
		return nothing(reasonShort), nil
	}
	mult, ok := rr.Countries[s.Country]
	if s.Country == "" || !ok {
		mult, ok = rr.Countries["*"]
	}
	if !ok {
		if s.Country == "" {
			return nothing(reasonNoCountryAny), nil
		}
		return nothing(fmt.Sprintf("country %s not listed", s.Country)), nil
	}

	res := &SessionResult{Multiplier: mult, Buffer: rr.Buffer, SessionCap: rr.PerSessionCap}
	// One computed amount, truncated once (DESIGN §3): truncating each partial product
	// would shave digits that the later factors scale up, and finance could not
	// reproduce the figure by hand.
	res.Gross = Trunc(s.RevenueUSD.Mul(rr.Share).Mul(mult).Mul(rr.UnitsPerUSD))
	res.Withheld = Mul(res.Gross, rr.Buffer)
	net := res.Gross.Sub(res.Withheld)

	user := net
	var reasons []string
	if rr.PerSessionCap.IsPositive() && user.GreaterThan(rr.PerSessionCap) {
		user = rr.PerSessionCap
		reasons = append(reasons, reasonSessionCap)
	}
	if rr.PerUserPerDayCap.IsPositive() {
		left := decimal.Max(decimal.Zero, rr.PerUserPerDayCap.Sub(day.RevenueCredited))
		if user.GreaterThan(left) {
			user = left
			reasons = append(reasons, reasonDayCap)
		}
	}
	res.Credited = user
	res.CappedExcess = net.Sub(user)
	switch {
	case s.RevenueUSD.IsZero():
		reasons = append(reasons, reasonZeroRevenue)
	case res.Gross.IsZero():
		reasons = append(reasons, reasonZeroGross)
	case net.IsZero():
		reasons = append(reasons, reasonAllWithheld)
	}
	res.Reason = strings.Join(reasons, ", ")

	out := Outcome{Session: res}
	if user.IsZero() {
		out.Note = res.Reason
	}
	if user.IsZero() && res.Withheld.IsZero() {
		return out, nil
	}
	e := Entry{
		Kind:        EntryRevenue,
		Rule:        "revenue",
		RuleVersion: rr.Version,
		MaturesAt:   receivedAt.Add(rr.Hold).UTC(),
	}
	if !user.IsZero() {
		e.Legs = append(e.Legs, Leg{Bucket: Pending, Amount: user})
	}
	if !res.Withheld.IsZero() {
		e.Legs = append(e.Legs, Leg{System: AccountBuffer, Amount: res.Withheld})
	}
	e.Legs = append(e.Legs, Leg{System: AccountRevenue, Amount: user.Add(res.Withheld).Neg()})
	out.Entries = []Entry{e}
	return out, nil
}

// checkRevenueRule repeats the few checks config makes that, if skipped, would book a
// wrong sign or more than the revenue.
func checkRevenueRule(rr *RevenueRule) error {
	one := decimal.NewFromInt(1)
	switch {
	case rr.UnitsPerUSD.IsNegative():
		return errors.New("units_per_usd is negative")
	case rr.Share.IsNegative() || rr.Share.GreaterThan(one):
		return errors.New("share is outside [0,1]")
	case rr.Buffer.IsNegative() || rr.Buffer.GreaterThan(one):
		return errors.New("buffer is outside [0,1]")
	case rr.PerSessionCap.IsNegative():
		return errors.New("per_session cap is negative")
	case rr.PerUserPerDayCap.IsNegative():
		return errors.New("per_user_per_day cap is negative")
	}
	for c, m := range rr.Countries {
		if m.IsNegative() {
			return fmt.Errorf("multiplier of %q is negative", c)
		}
	}
	return nil
}

// defaultStates are the Gamezop states a target counts when it lists none. "over" is the
// final score of a play; "loaded" and "start" always carry score 0, which would satisfy
// every `lower` target, and "playing" would pay on a running score the user may not keep.
var defaultStates = []string{"over"}

func evaluateScore(ev Event, r Rules, receivedAt time.Time) (Outcome, error) {
	sc := ev.Score
	if sc == nil {
		return Outcome{}, fmt.Errorf("%w: score event without score", ErrInvalidEvent)
	}
	if ev.User == "" {
		return Outcome{}, fmt.Errorf("%w: score has no user", ErrInvalidEvent)
	}
	var (
		out    Outcome
		notes  []string
		anyFor bool
	)
	for _, t := range r.Targets {
		if t.Game != sc.Game {
			continue
		}
		anyFor = true
		if ev.Source == SourceGamezopScores {
			states := t.States
			if len(states) == 0 {
				states = defaultStates
			}
			if !slices.Contains(states, sc.State) {
				notes = append(notes, fmt.Sprintf("target %s: state %q not counted", t.ID, sc.State))
				continue
			}
		}
		var qualifies bool
		switch t.Direction {
		case Higher:
			qualifies = sc.Value.GreaterThanOrEqual(t.MinScore)
		case Lower:
			qualifies = sc.Value.LessThanOrEqual(t.MinScore)
		default:
			return Outcome{}, fmt.Errorf("%w: target %q has direction %q", ErrNotConfigured, t.ID, t.Direction)
		}
		if t.Reward.IsNegative() {
			return Outcome{}, fmt.Errorf("%w: target %q has a negative reward", ErrNotConfigured, t.ID)
		}
		claim, paidAs, also, seen, err := targetClaims(t, ev, receivedAt)
		if err != nil {
			return Outcome{}, err
		}
		if !qualifies {
			notes = append(notes, fmt.Sprintf("target %s: score %s does not reach %s (%s)", t.ID, sc.Value, t.MinScore, t.Direction))
			continue
		}
		if t.Reward.IsZero() {
			notes = append(notes, fmt.Sprintf("target %s: zero reward", t.ID))
			continue
		}
		rule := "target:" + t.ID
		out.Entries = append(out.Entries, Entry{
			Kind:        EntryTarget,
			Rule:        rule,
			RuleVersion: t.Version,
			Claim:       claim,
			ClaimedAs:   paidAs,
			AlsoClaims:  also,
			SeenClaims:  seen,
			MaturesAt:   receivedAt.Add(t.Hold).UTC(),
			Legs: []Leg{
				{Bucket: Pending, Amount: t.Reward},
				{System: AccountTargets, Amount: t.Reward.Neg()},
			},
		})
	}
	switch {
	case !anyFor:
		out.Note = fmt.Sprintf("no score target for game %q", sc.Game)
	case len(out.Entries) == 0:
		out.Note = strings.Join(notes, "; ")
	}
	return out, nil
}

// targetClaims names the period a target pays in (claim): the store takes the claim
// with the entry, so one (user, target, period) pays once whatever order events arrive
// in. A payment also takes, where free, what the period would be under the other
// `per`s (also): the target itself, the day and the play. So a target whose `per`
// changes pays no period twice: switched to `once`, it does not pay a user paid per day
// or per play before; switched to `day`, not again on a day it paid once or per play.
//
// A `per: day` target pays a play on one day only (paidAs: a taken play claim stops the
// payment). Gamezop redelivers a report with a new timestamp, so a new event, and one
// sent at 23:59:50 and redelivered at 00:00:10 paid the play on both days. A report its
// day turns away, paid already by another play, takes a claim of its own all the same
// (seen), against that payment, which stops its redeliveries (paidAs): one redelivered
// after midnight paid the next day (review helper 232). The report's claim, not the
// play's: a play still going at midnight ("playing" at 23:59:50, "over" at 00:02) sends
// another report, paid on the next day (review helper 233), in whatever states the target
// counts (review helper 237). A report is its play, state, score and duration, as a
// tournament knows it. Only Gamezop's: it alone redelivers a report as a new event; the
// others' plays are their events (TrackScore) or signed payloads (GamePush), which a
// redelivery repeats whole, and a claim of theirs would be a row no one reads (review
// helper 238).
func targetClaims(t ScoreTarget, ev Event, receivedAt time.Time) (claim string, paidAs, also, seen []string, err error) {
	play := ev.Score.PlayID
	if play == "" {
		// Sources without play ids: each score event is its own play.
		play = ev.DedupeKey
	}
	base := "target:" + t.ID
	once, day, perPlay := base, base+":day:"+DayOf(receivedAt), base+":play:"+play
	switch t.Per {
	case PerOnce:
		return once, nil, []string{day, perPlay}, nil, nil
	case PerDay:
		paidAs = []string{perPlay}
		if ev.Source == SourceGamezopScores {
			report, err := json.Marshal([]string{play, ev.Score.State, ev.Score.Value.String(), strconv.FormatInt(ev.Score.Duration, 10)})
			if err != nil { // strings: cannot fail
				return "", nil, nil, nil, err
			}
			paidAs = append(paidAs, base+":report:"+string(report))
			seen = []string{paidAs[1]}
		}
		return day, paidAs, []string{once, perPlay}, seen, nil
	case PerPlay:
		return perPlay, nil, []string{once, day}, nil, nil
	default:
		return "", nil, nil, nil, fmt.Errorf("%w: target %q has per %q", ErrNotConfigured, t.ID, t.Per)
	}
}

// AchievementEvents are the event types of source that carry an achievement id, which an
// achievement rule may name.
func AchievementEvents(source Source) []string {
	switch source {
	case SourceGamePush:
		return []string{"UnlockPlayerAchievement", "GivePlayerReward"}
	case SourceTrackScore:
		return []string{"achievement.unlocked", "milestone.reached"}
	}
	return nil
}

// eventAchievementClaim names the claim of a rule that names its event. Its prefix is
// not "achievement:", so it can never be the claim of a rule without an event whose id
// happens to hold the event's name ("GivePlayerReward:685").
func eventAchievementClaim(source Source, event, id string) string {
	return "achievement-event:" + string(source) + ":" + event + ":" + id
}

func evaluateAchievement(ev Event, r Rules, receivedAt time.Time) (Outcome, error) {
	a := ev.Achievement
	if a == nil {
		return Outcome{}, fmt.Errorf("%w: achievement event without achievement", ErrInvalidEvent)
	}
	if ev.User == "" {
		return Outcome{}, fmt.Errorf("%w: achievement has no user", ErrInvalidEvent)
	}
	var (
		out     Outcome
		matched bool
	)
	for _, ar := range r.Achievements {
		if ar.Source != ev.Source || ar.ID != a.ID || (ar.Event != "" && ar.Event != ev.Type) {
			continue
		}
		matched = true
		if ar.Reward.IsNegative() {
			return Outcome{}, fmt.Errorf("%w: achievement %s:%s has a negative reward", ErrNotConfigured, ar.Source, ar.ID)
		}
		if ar.Reward.IsZero() {
			continue
		}
		// The rule's name is its claim: paid once per user. A rule that names its event
		// has a name of its own, so GamePush's achievement 685 and reward 685, each with
		// its rule, are two claims. A user paid before the rule named its event, under
		// the claim of the id alone, is not paid again by it; nor, the other way, by a
		// rule that stopped naming it (ClaimedAs).
		rule := "achievement:" + string(ar.Source) + ":" + ar.ID
		var claimedAs []string
		if ar.Event != "" {
			claimedAs = []string{rule}
			rule = eventAchievementClaim(ar.Source, ar.Event, ar.ID)
		} else {
			for _, e := range AchievementEvents(ar.Source) {
				claimedAs = append(claimedAs, eventAchievementClaim(ar.Source, e, ar.ID))
			}
		}
		out.Entries = append(out.Entries, Entry{
			Kind:        EntryAchievement,
			Rule:        rule,
			RuleVersion: ar.Version,
			Claim:       rule,
			ClaimedAs:   claimedAs,
			MaturesAt:   receivedAt.Add(ar.Hold).UTC(),
			Legs: []Leg{
				{Bucket: Pending, Amount: ar.Reward},
				{System: AccountAchievements, Amount: ar.Reward.Neg()},
			},
		})
	}
	switch {
	case !matched:
		out.Note = fmt.Sprintf("no achievement rule for %s %q", ev.Source, a.ID)
	case len(out.Entries) == 0:
		out.Note = fmt.Sprintf("achievement %s %q has zero reward", ev.Source, a.ID)
	}
	return out, nil
}
