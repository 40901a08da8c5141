package rewards

import (
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// Wallet is one user's balances. Post is the only code that changes them; every change
// (a credit from the rules, a settlement, a redemption, an adjustment) is an Entry posted
// through it, so the wallet and the ledger cannot disagree:
//
//	available + pending == lifetime_earned − redeemed, and
//	pending − carry      == the sum of the lots not yet settled.
type Wallet struct {
	Available      decimal.Decimal
	Pending        decimal.Decimal
	Carry          decimal.Decimal // the fraction of a wallet unit settlement left in pending
	Redeemed       decimal.Decimal
	LifetimeEarned decimal.Decimal
}

// NewWallet is the empty wallet of a user Tally has never credited.
func NewWallet() Wallet {
	return Wallet{Available: decimal.Zero, Pending: decimal.Zero, Carry: decimal.Zero, Redeemed: decimal.Zero,
		LifetimeEarned: decimal.Zero}
}

// Post returns the wallet after entry e. The entry must balance and every leg must fit
// the ledger; a bucket that would go below zero is *InsufficientFundsError and the
// wallet is returned unchanged.
func (w Wallet) Post(e Entry) (Wallet, error) {
	if !e.Balanced() {
		return w, fmt.Errorf("%w: unbalanced %s entry", ErrInvalidEvent, e.Kind)
	}
	for _, l := range e.Legs {
		if err := CheckAmount(l.Amount); err != nil {
			return w, fmt.Errorf("%s leg: %w", e.Kind, err)
		}
	}
	dPending, dAvailable := e.UserDelta(Pending), e.UserDelta(Available)
	next := w
	next.Pending = w.Pending.Add(dPending)
	next.Available = w.Available.Add(dAvailable)
	switch {
	case e.Kind.Credits() && dPending.IsPositive():
		next.LifetimeEarned = w.LifetimeEarned.Add(dPending)
	case e.Kind == EntryAdjustment:
		// Adjustments count, signed, so available + pending == lifetime_earned − redeemed.
		next.LifetimeEarned = w.LifetimeEarned.Add(dPending).Add(dAvailable)
	case e.Kind == EntryRedemption || e.Kind == EntryReversal:
		// A reversal undoes a redemption: redeemed is what was paid out and not returned.
		next.Redeemed = w.Redeemed.Sub(dAvailable)
	}
	if next.Redeemed.IsNegative() {
		return w, fmt.Errorf("%w: %s of %s exceeds redeemed %s", ErrInvalidRequest, e.Kind, dAvailable, w.Redeemed)
	}
	if next.Available.IsNegative() {
		return w, &InsufficientFundsError{Bucket: Available, Available: w.Available, Requested: dAvailable.Neg()}
	}
	if next.Pending.IsNegative() {
		return w, &InsufficientFundsError{Bucket: Pending, Available: w.Pending, Requested: dPending.Neg()}
	}
	// Every balance must fit the ledger's columns, not only every leg: entries that each
	// fit can add up past them (the database would refuse the wallet, or SQLite, which
	// keeps text, would hold what Postgres cannot).
	for _, b := range []struct {
		name string
		v    decimal.Decimal
	}{{"available", next.Available}, {"pending", next.Pending}, {"redeemed", next.Redeemed}, {"lifetime_earned", next.LifetimeEarned}} {
		if err := CheckAmount(b.v); err != nil {
			return w, fmt.Errorf("%w: %s would be %s: %w", ErrInvalidRequest, b.name, b.v, err)
		}
	}
	return next, nil
}

// Credits reports the kinds that credit pending from a rule.
func (k EntryKind) Credits() bool {
	return k == EntryRevenue || k == EntryTarget || k == EntryAchievement || k == EntryBufferRelease ||
		k == EntryPrize
}

// Lot is the part of the entry that waits in pending for settlement: a credit from a
// rule, or a pending adjustment (negative for a debit, so settlement nets it). Zero for
// every other entry.
func (e Entry) Lot() decimal.Decimal {
	d := e.UserDelta(Pending)
	if (e.Kind.Credits() && d.IsPositive()) || (e.Kind == EntryAdjustment && !d.IsZero()) {
		return d
	}
	return decimal.Zero
}

// LotMatures is when the entry's lot may settle: its MaturesAt, or now for a lot without
// one. A pending debit has always matured, so settlement nets it against the next
// credits instead of leaving it behind while it moves the credits it offsets.
func (e Entry) LotMatures(now time.Time) time.Time {
	switch {
	case e.Kind == EntryAdjustment && e.Lot().IsNegative():
		return time.Unix(0, 0).UTC()
	case e.MaturesAt.IsZero():
		return now
	}
	return e.MaturesAt
}

// Settle moves matured (the sum of the wallet's matured lots not settled before) plus the
// carry from pending to available, rounded down to the wallet scale; what is cut off
// becomes the new carry, so moved + carry == matured + old carry exactly and
// 0 <= carry < 10^-scale: rounding delays a fraction of a unit, it never creates or loses
// one. It returns the wallet after, the settlement entry (nil when less than a unit has
// accumulated), and ok=false when nothing may settle: a pending debit larger than what
// has matured so far, whose lots stay unsettled until enough credits mature to cover it.
func (w Wallet) Settle(matured decimal.Decimal, scale int32) (after Wallet, entry *Entry, ok bool) {
	total := matured.Add(w.Carry)
	if total.IsNegative() {
		return w, nil, false
	}
	moved := FloorToScale(total, scale)
	after = w
	if moved.IsPositive() {
		e := SettlementEntry(moved)
		var err error
		if after, err = w.Post(e); err != nil {
			// Pending holds the matured lots and the carry, so it covers moved; a wallet
			// that does not is corrupt, and settling it would hide that.
			return w, nil, false
		}
		entry = &e
	}
	after.Carry = total.Sub(moved)
	return after, entry, true
}

// Redeem pays amount (positive) out of available to @redemptions.
func (w Wallet) Redeem(amount decimal.Decimal) (Wallet, Entry, error) {
	if !amount.IsPositive() {
		return w, Entry{}, fmt.Errorf("%w: redemption of %s", ErrInvalidRequest, amount)
	}
	e := RedemptionEntry(amount)
	after, err := w.Post(e)
	return after, e, err
}

// Reverse returns amount (positive), paid out by an earlier redemption, to available.
// It cannot return more than the wallet has redeemed; which redemption it undoes, and
// that it is undone at most once, is the caller's record.
func (w Wallet) Reverse(amount decimal.Decimal) (Wallet, Entry, error) {
	if !amount.IsPositive() {
		return w, Entry{}, fmt.Errorf("%w: reversal of %s", ErrInvalidRequest, amount)
	}
	e := ReversalEntry(amount)
	after, err := w.Post(e)
	return after, e, err
}

// Adjust credits (amount > 0) or debits (amount < 0) one bucket, balanced by
// @adjustments.
func (w Wallet) Adjust(amount decimal.Decimal, bucket Bucket) (Wallet, Entry, error) {
	if amount.IsZero() || (bucket != Available && bucket != Pending) {
		return w, Entry{}, fmt.Errorf("%w: adjustment of %s to %q", ErrInvalidRequest, amount, bucket)
	}
	e := AdjustmentEntry(amount, bucket)
	after, err := w.Post(e)
	return after, e, err
}

// State is what crediting one event reads about its user: the wallet, what revenue
// already credited on the event's UTC day of receipt, and which claims are taken.
type State struct {
	Wallet  Wallet
	Day     DayState
	Claimed func(claim string) bool // nil: no claim is taken
}

// Credited is what one event did to its user's wallet.
type Credited struct {
	Wallet  Wallet  // the wallet after the entries
	Entries []Entry // what pays: entries whose claim was taken already are dropped
	// Seen are the claims dropped entries take all the same (Entry.SeenClaims), each
	// to be recorded against the payment that holds the claim that dropped it.
	Seen    []SeenClaim
	Session *SessionResult
	Note    string // why nothing was earned, for the inbox record
}

// SeenClaim is a claim taken without a payment of its own: Claim is recorded against
// the payment (journal entry) that holds PaidBy.
type SeenClaim struct{ Claim, PaidBy string }

// Needs is what crediting an event may read and write, known before any state is loaded:
// whether it can touch the user's wallet, and the claims its entries would take.
type Needs struct {
	Wallet bool
	Claims []string
}

// NeedsOf tells the caller which wallet to lock and which claims to load before calling
// Credit. A session needs the wallet whenever the property has revenue rules (its day
// cap is read from it); other events only when they would pay something.
func NeedsOf(ev Event, r Rules, receivedAt time.Time) Needs {
	if ev.User == "" {
		return Needs{}
	}
	switch ev.Kind {
	case KindSession:
		return Needs{Wallet: r.Revenue != nil}
	case KindScore, KindAchievement:
		out, err := Evaluate(ev, r, DayState{RevenueCredited: decimal.Zero}, receivedAt)
		if err != nil || len(out.Entries) == 0 {
			return Needs{}
		}
		n := Needs{Wallet: true}
		for _, e := range out.Entries {
			if e.Claim != "" {
				n.Claims = append(n.Claims, e.Claim)
			}
			n.Claims = append(n.Claims, e.ClaimedAs...)
			n.Claims = append(n.Claims, e.AlsoClaims...)
			n.Claims = append(n.Claims, e.SeenClaims...)
		}
		return n
	}
	return Needs{}
}

// Credit values ev under r (Evaluate) against the user's state and posts what pays to
// the wallet: an entry whose claim (or one of its other names, ClaimedAs) is taken
// already, or taken by an earlier entry of the same event, is dropped. The caller writes the returned entries and wallet, records
// each entry's claim, and adds Session.Credited to the day's revenue, in one
// transaction, under the wallet's lock. An error leaves nothing to write: the event is
// kept quarantined with it.
func Credit(ev Event, r Rules, st State, receivedAt time.Time) (Credited, error) {
	out, err := Evaluate(ev, r, st.Day, receivedAt)
	if err != nil {
		return Credited{}, err
	}
	res := Credited{Wallet: st.Wallet, Session: out.Session, Note: out.Note}
	seen := map[string]bool{}
	var dropped []string
	taken := func(c string) bool { return seen[c] || (st.Claimed != nil && st.Claimed(c)) }
	for _, e := range out.Entries {
		if e.Claim != "" {
			if taken(e.Claim) || slices.ContainsFunc(e.ClaimedAs, taken) {
				dropped = append(dropped, e.Rule)
				if taken(e.Claim) {
					for _, c := range e.SeenClaims {
						if !taken(c) {
							res.Seen = append(res.Seen, SeenClaim{Claim: c, PaidBy: e.Claim})
							seen[c] = true
						}
					}
				}
				continue
			}
			seen[e.Claim] = true
			free := e.AlsoClaims[:0:0]
			for _, c := range e.AlsoClaims {
				if !taken(c) {
					free = append(free, c)
					seen[c] = true
				}
			}
			e.AlsoClaims = free
		}
		if res.Wallet, err = res.Wallet.Post(e); err != nil {
			return Credited{}, fmt.Errorf("rule %s: %w", e.Rule, err)
		}
		res.Entries = append(res.Entries, e)
	}
	if len(res.Entries) == 0 && len(dropped) > 0 {
		res.Note = fmt.Sprintf("already paid: %v", dropped)
	}
	return res, nil
}
