package rewards

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// True-ups (issue 14). SPP revenue is an estimate; Gamezop's booked revenue for the same
// property and days comes later. A true-up compares them over a period of whole UTC days
// (of receipt) and releases to users the part of the withheld buffer that the booked
// revenue covers:
//
//	r = B / E                                       booked over estimated, the period's
//	f = clamp((min(r, 1) − (1 − buffer)) / buffer, 0, 1)    per session, with its buffer
//	release = trunc(f × withheld), at most per_session cap − credited
//
// r and f are the only divisions in Tally; each is truncated at Precision places. When
// r < 1 − buffer users were credited more than the booked share: the shortfall
// (1 − buffer − r) × gross (for a capped session, what it was credited beyond r × gross)
// is booked to @shortfall, and no user is debited.

// Entry kinds and accounts of true-ups.
const (
	EntryBufferRelease EntryKind = "buffer_release" // @buffer → the user's pending
	EntryShortfall     EntryKind = "shortfall"      // @shortfall ← @revenue, no user leg
	AccountShortfall             = "@shortfall"     // what users were credited beyond the booked share
)

// ErrNotBooked: a day of a true-up has no booked revenue yet.
var ErrNotBooked = errors.New("no booked revenue for a day of the period")

// NotBookedError is ErrNotBooked naming the day.
type NotBookedError struct{ Day string }

func (e NotBookedError) Error() string { return ErrNotBooked.Error() + ": " + e.Day }
func (e NotBookedError) Unwrap() error { return ErrNotBooked }

// ErrTruedUp: a day was trued up already; a true-up runs once per day of a property.
var ErrTruedUp = errors.New("day already trued up")

// ErrRuleUnknown: sessions of the period were credited before sessions kept their
// buffer, under a buffer other than the current rule's, so what they withheld cannot be
// released exactly.
var ErrRuleUnknown = errors.New("sessions credited under an unknown buffer")

// TrueUpSession is one SPP session as a true-up reads it. A session kept quarantined has
// only its Day and RevenueUSD: it is part of the estimate E (its revenue is in the
// booked B) but withheld and credited nothing.
type TrueUpSession struct {
	User       string
	Day        string          // UTC day of receipt, YYYY-MM-DD
	RevenueUSD decimal.Decimal // the estimate
	Gross      decimal.Decimal
	Withheld   decimal.Decimal
	Credited   decimal.Decimal
	Capped     decimal.Decimal // capped excess
	Buffer     decimal.Decimal // the buffer the session was credited under
	SessionCap decimal.Decimal // its per_session cap; zero means none
}

// Ratio is B / E truncated at Precision places; ok is false when E is zero (no estimate
// to compare with).
func Ratio(booked, estimated decimal.Decimal) (r decimal.Decimal, ok bool) {
	if !estimated.IsPositive() {
		return decimal.Zero, false
	}
	q, _ := booked.QuoRem(estimated, Precision)
	return q, true
}

// ReleaseFraction is f = clamp((min(r, 1) − (1 − buffer)) / buffer, 0, 1), the division
// truncated at Precision places. A buffer of zero releases nothing.
func ReleaseFraction(r, buffer decimal.Decimal) decimal.Decimal {
	if !buffer.IsPositive() {
		return decimal.Zero
	}
	one := decimal.NewFromInt(1)
	num := decimal.Min(r, one).Sub(one.Sub(buffer))
	if !num.IsPositive() {
		return decimal.Zero
	}
	f, _ := num.QuoRem(buffer, Precision)
	return decimal.Min(f, one)
}

// SessionRelease is what one session releases at ratio r: trunc(f × withheld), limited
// so that the session's credit plus its release stays within its per_session cap.
func SessionRelease(s TrueUpSession, r decimal.Decimal) decimal.Decimal {
	rel := Mul(ReleaseFraction(r, s.Buffer), s.Withheld)
	if s.SessionCap.IsPositive() {
		rel = decimal.Min(rel, decimal.Max(decimal.Zero, s.SessionCap.Sub(s.Credited)))
	}
	return rel
}

// SessionShortfall is what the user was credited beyond the booked share r × gross:
// (1 − buffer − r) × gross truncated, when positive, for a session credited its whole
// net share. A session the caps held below it (capped excess) was credited less, so its
// shortfall is credited − trunc(r × gross), when positive, and never more than the
// formula's: a session capped at 500 of a gross of 1,000 at r = 0.6 got less than the
// booked 600 and has none.
func SessionShortfall(s TrueUpSession, r decimal.Decimal) decimal.Decimal {
	x := decimal.NewFromInt(1).Sub(s.Buffer).Sub(r)
	if !x.IsPositive() {
		return decimal.Zero
	}
	sf := decimal.Min(Mul(x, s.Gross), s.Credited)
	if s.Capped.IsPositive() {
		sf = decimal.Min(sf, decimal.Max(decimal.Zero, s.Credited.Sub(Mul(r, s.Gross))))
	}
	return sf
}

// TrueUpDay is one day's figures.
type TrueUpDay struct {
	Day       string
	Sessions  int64
	Estimated decimal.Decimal // E
	Booked    decimal.Decimal // B
	HasBooked bool
	Gross     decimal.Decimal // G
	Credited  decimal.Decimal // U
	Withheld  decimal.Decimal // W
	Capped    decimal.Decimal
	Released  decimal.Decimal // by this true-up (or, in a view, so far)
	Shortfall decimal.Decimal
	TruedUp   bool // in a view: a true-up has run for the day
}

// Ratio is the day's B / E.
func (d TrueUpDay) Ratio() (decimal.Decimal, bool) {
	if !d.HasBooked {
		return decimal.Zero, false
	}
	return Ratio(d.Booked, d.Estimated)
}

// TrueUpResult is what a true-up does: the ratio it used, the release per user (one
// entry each) and per day, and the shortfall.
type TrueUpResult struct {
	Ratio     decimal.Decimal
	Estimated decimal.Decimal
	Booked    decimal.Decimal
	Days      []TrueUpDay
	Releases  map[string]decimal.Decimal // user → released
	Released  decimal.Decimal
	Shortfall decimal.Decimal
	// CorrectionsCounted: the corrections passed in were part of B. They are not when the
	// period has no estimate (nothing to compare with): they wait for the next true-up.
	CorrectionsCounted bool
	// Carried is what the period could not absorb of a correction down (negative, or
	// zero): B would have gone below zero, so the period counted B = 0 and the rest is
	// carried to the next true-up as a correction of its own. Without it, the rest of a
	// large correction down was lost and later periods released too much.
	Carried decimal.Decimal
}

// TrueUp values the period's sessions against its booked revenue. days are the period's
// days in order, each with its booked revenue (a day without is ErrNotBooked: finance
// trues up only what Gamezop has booked); extra is booked revenue to add to the period's
// B (corrections of days trued up before, which the next true-up accounts for).
func TrueUp(days []TrueUpDay, sessions []TrueUpSession, extra decimal.Decimal) (TrueUpResult, error) {
	res := TrueUpResult{Releases: map[string]decimal.Decimal{}, Booked: extra, Carried: decimal.Zero}
	idx := map[string]int{}
	for i, d := range days {
		if !d.HasBooked {
			return TrueUpResult{}, NotBookedError{Day: d.Day}
		}
		if d.Booked.IsNegative() {
			return TrueUpResult{}, fmt.Errorf("%w: booked revenue of %s is negative", ErrInvalidRequest, d.Day)
		}
		idx[d.Day] = i
		d.Sessions, d.Estimated, d.Gross, d.Credited, d.Withheld, d.Capped, d.Released, d.Shortfall =
			0, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
		days[i] = d
		res.Booked = res.Booked.Add(d.Booked)
	}
	for _, s := range sessions {
		i, ok := idx[s.Day]
		if !ok {
			return TrueUpResult{}, fmt.Errorf("%w: session of %s outside the period", ErrInvalidRequest, s.Day)
		}
		d := &days[i]
		d.Sessions++
		d.Estimated = d.Estimated.Add(s.RevenueUSD)
		d.Gross = d.Gross.Add(s.Gross)
		d.Credited = d.Credited.Add(s.Credited)
		d.Withheld = d.Withheld.Add(s.Withheld)
		d.Capped = d.Capped.Add(s.Capped)
		res.Estimated = res.Estimated.Add(s.RevenueUSD)
	}
	// A correction down can leave the period's B below zero; no revenue is below none.
	r, ok := Ratio(decimal.Max(res.Booked, decimal.Zero), res.Estimated)
	if !ok {
		// No estimate in the period: nothing was withheld, nothing to release, and the
		// corrections wait for a period that has one.
		res.Booked = res.Booked.Sub(extra)
		res.Days = days
		return res, nil
	}
	res.Ratio, res.CorrectionsCounted = r, true
	if res.Booked.IsNegative() {
		res.Carried, res.Booked = res.Booked, decimal.Zero
	}
	for _, s := range sessions {
		d := &days[idx[s.Day]]
		if rel := SessionRelease(s, r); rel.IsPositive() {
			d.Released = d.Released.Add(rel)
			res.Releases[s.User] = res.Releases[s.User].Add(rel)
			res.Released = res.Released.Add(rel)
		}
		if sf := SessionShortfall(s, r); sf.IsPositive() {
			d.Shortfall = d.Shortfall.Add(sf)
			res.Shortfall = res.Shortfall.Add(sf)
		}
	}
	res.Days = days
	return res, nil
}

// BufferReleaseEntry credits released to the user's pending from @buffer; it matures at
// the next settlement (booked revenue is final, so it is held for no time).
func BufferReleaseEntry(released decimal.Decimal, at time.Time) Entry {
	return Entry{
		Kind:      EntryBufferRelease,
		Rule:      "trueup",
		MaturesAt: at.UTC(),
		Legs: []Leg{
			{Bucket: Pending, Amount: released},
			{System: AccountBuffer, Amount: released.Neg()},
		},
	}
}

// ShortfallEntry books the period's shortfall to @shortfall against @revenue: the
// credits the users received beyond the booked share, recorded, never debited from them.
func ShortfallEntry(shortfall decimal.Decimal) Entry {
	return Entry{
		Kind: EntryShortfall,
		Rule: "trueup",
		Legs: []Leg{
			{System: AccountShortfall, Amount: shortfall},
			{System: AccountRevenue, Amount: shortfall.Neg()},
		},
	}
}

// RecommendedBuffer is the smallest buffer that would have kept users' credits within the
// booked share on at least 95 % of the days with booked revenue and an estimate: 1 − r₅,
// r₅ the 5th-percentile daily ratio taken as the (⌊0.05·n⌋ + 1)-th smallest, since at
// most ⌊0.05·n⌋ days may fall short; floored at 0 and rounded up to 0.01. ok is false
// when no day has both.
func RecommendedBuffer(days []TrueUpDay) (decimal.Decimal, bool) {
	var ratios []decimal.Decimal
	for _, d := range days {
		if r, ok := d.Ratio(); ok {
			ratios = append(ratios, r)
		}
	}
	if len(ratios) == 0 {
		return decimal.Zero, false
	}
	slices.SortFunc(ratios, func(a, b decimal.Decimal) int { return a.Cmp(b) })
	rank := 5*len(ratios)/100 + 1 // ⌊0.05·n⌋ + 1
	b := decimal.NewFromInt(1).Sub(ratios[rank-1])
	if b.IsNegative() {
		b = decimal.Zero
	}
	return b.RoundCeil(2), true
}

// BookedDay is one day's booked revenue of a property.
type BookedDay struct {
	Day        string // YYYY-MM-DD
	RevenueUSD decimal.Decimal
}

// BookedImport is a set of booked days to record. A day already trued up whose amount
// changes is refused (ErrTruedUp) unless Correction is set: then the change is recorded
// as a correction, and the next true-up of the property counts it.
type BookedImport struct {
	Property   string
	Days       []BookedDay
	Correction bool
	Actor      string
}

// BookedImported counts what an import did.
type BookedImported struct {
	Inserted, Replaced, Unchanged, Corrected int
}

// TrueUpRequest asks to true up the whole UTC days From..To (inclusive) of a property.
type TrueUpRequest struct {
	Property string
	// GamezopPropertyID is the property's Gamezop property id: SPPs kept quarantined
	// because theirs names another are not in the estimate. "" counts them all.
	GamezopPropertyID string
	From, To          string // YYYY-MM-DD, inclusive
	IdempotencyKey    string
	RequestHash       string
	Actor             string
	// DefaultBuffer and DefaultSessionCap stand in for sessions recorded before sessions
	// kept their rule's buffer and cap: the property's current revenue rule.
	DefaultBuffer     decimal.Decimal
	DefaultSessionCap decimal.Decimal
}

// TrueUpRun is a committed true-up.
type TrueUpRun struct {
	ID        int64
	Property  string
	From, To  string
	Actor     string
	Estimated decimal.Decimal
	Booked    decimal.Decimal // including corrections of earlier days it accounted for
	Ratio     decimal.Decimal
	Released  decimal.Decimal
	Shortfall decimal.Decimal
	Users     int64
	Sessions  int64
	CreatedAt time.Time
}
