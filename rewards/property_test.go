package rewards

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// lot is one pending credit (or pending debit) waiting to mature, as the test tallies it.
type lot struct {
	amount    decimal.Decimal
	maturesAt time.Time
}

// simWallet is the production wallet plus independent tallies to check it against.
type simWallet struct {
	wallet             Wallet // changed only by Credit, Settle, Redeem, Reverse and Adjust
	unsettled          []lot
	redemptions        []decimal.Decimal // amounts of redemptions not reversed yet
	legSum             decimal.Decimal   // every user leg ever posted
	credited           decimal.Decimal   // revenue, target and achievement credits
	redeemed, adjusted decimal.Decimal
	dayRevenue         map[string]decimal.Decimal
}

type sim struct {
	t       *testing.T
	rng     *rand.Rand
	scale   int32
	unit    decimal.Decimal // 10^-scale
	now     time.Time
	rules   Rules
	wallets map[string]*simWallet
	system  map[string]decimal.Decimal
	paid    map[string]bool // (user, claim) pairs that paid: the claim table Credit reads
	history []Event
	nextKey int

	withheld, revenueCredited, targets, achievements decimal.Decimal
	// coverage counters: the test fails if the random run never exercised a path
	count map[string]int
}

// TestWalletProperties drives random events, settlements, redemptions and adjustments
// through the rules for several users and checks the ledger's invariants after every step.
func TestWalletProperties(t *testing.T) {
	for _, scale := range []int32{0, 2} {
		t.Run(fmt.Sprintf("scale %d", scale), func(t *testing.T) {
			s := &sim{
				t:       t,
				rng:     rand.New(rand.NewPCG(20250301, uint64(scale))),
				scale:   scale,
				unit:    decimal.New(1, -scale),
				now:     t0,
				wallets: map[string]*simWallet{},
				system:  map[string]decimal.Decimal{},
				paid:    map[string]bool{},
				count:   map[string]int{},
			}
			s.run(4000)
		})
	}
}

func (s *sim) run(n int) {
	t := s.t
	for i := range n {
		if i%700 == 0 {
			s.rules = s.randomRules(i / 700)
		}
		s.now = s.now.Add(time.Duration(s.rng.IntN(40)) * time.Minute)
		switch p := s.rng.IntN(100); {
		case p < 6:
			s.redeem()
		case p < 7:
			s.reverse()
		case p < 8:
			s.adjust()
		case p < 12:
			s.settleAll()
		case p < 20 && len(s.history) > 0:
			// The provider re-sends a score or achievement under a new dedupe key (a
			// later "over", a retried unlock): claims must keep it from paying twice.
			ev := s.history[s.rng.IntN(len(s.history))]
			ev.DedupeKey = s.key()
			s.apply(ev)
		default:
			ev := s.randomEvent()
			if ev.Kind == KindScore || ev.Kind == KindAchievement {
				s.history = append(s.history, ev)
			}
			s.apply(ev)
		}
		for user, w := range s.wallets {
			s.checkWallet(user, w)
		}
		if t.Failed() {
			t.Fatalf("stopped after step %d", i)
		}
	}

	// Everything matures; one last settlement leaves only the carries in pending.
	s.now = s.now.Add(60 * 24 * time.Hour)
	s.settleAll()
	total := decimal.Zero
	for user, w := range s.wallets {
		s.checkWallet(user, w)
		if !w.wallet.Pending.Equal(w.wallet.Carry) || len(w.unsettled) != 0 {
			t.Errorf("%s: pending %s, carry %s, %d unsettled after full settlement", user, w.wallet.Pending, w.wallet.Carry, len(w.unsettled))
		}
		if want := w.credited.Sub(w.redeemed).Add(w.adjusted); !w.legSum.Equal(want) {
			t.Errorf("%s: user legs %s, credited − redeemed + adjusted = %s", user, w.legSum, want)
		}
		total = total.Add(w.legSum)
	}
	for _, v := range s.system {
		total = total.Add(v)
	}
	if !total.IsZero() {
		t.Errorf("all legs of all accounts sum to %s, want 0", total)
	}

	var redeemed, adjusted decimal.Decimal
	for _, w := range s.wallets {
		redeemed = redeemed.Add(w.redeemed)
		adjusted = adjusted.Add(w.adjusted)
	}
	for _, c := range []struct {
		account   string
		got, want decimal.Decimal
	}{
		{AccountRevenue, s.system[AccountRevenue], s.revenueCredited.Add(s.withheld).Neg()},
		{AccountBuffer, s.system[AccountBuffer], s.withheld},
		{AccountTargets, s.system[AccountTargets], s.targets.Neg()},
		{AccountAchievements, s.system[AccountAchievements], s.achievements.Neg()},
		{AccountRedemptions, s.system[AccountRedemptions], redeemed},
		{AccountAdjustments, s.system[AccountAdjustments], adjusted.Neg()},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %s, want %s", c.account, c.got, c.want)
		}
	}

	for _, k := range []string{"revenue", "target", "achievement", "claim dropped", "settled", "carried", "redeemed", "reversed", "capped", "nothing",
		"adjusted available", "adjusted pending", "pending debit", "debit waits"} {
		if s.count[k] == 0 {
			t.Errorf("the random run never exercised %q: %v", k, s.count)
		}
	}
	t.Logf("scale %d: %v", s.scale, s.count)
}

func (s *sim) wallet(user string) *simWallet {
	w := s.wallets[user]
	if w == nil {
		w = &simWallet{wallet: NewWallet(), dayRevenue: map[string]decimal.Decimal{}}
		s.wallets[user] = w
	}
	return w
}

func (s *sim) apply(ev Event) {
	t := s.t
	w := s.wallet(ev.User)
	day := DayOf(s.now)
	before := w.dayRevenue[day]
	need := NeedsOf(ev, s.rules, s.now)
	st := State{Wallet: w.wallet, Day: DayState{RevenueCredited: before},
		Claimed: func(c string) bool { return s.paid[ev.User+"\x00"+c] }}
	res, err := Credit(ev, s.rules, st, s.now)
	if err != nil {
		t.Fatalf("Credit(%+v): %v", ev, err)
	}
	if len(res.Entries) == 0 {
		s.count["nothing"]++
		if res.Note == "" {
			t.Errorf("%s event earned nothing without a note", ev.Kind)
		}
	}
	if len(res.Entries) > 0 && !need.Wallet {
		t.Errorf("%s event paid but NeedsOf said it needs no wallet", ev.Kind)
	}
	if r := s.rules.Revenue; r != nil {
		if sr := res.Session; sr != nil {
			if sum := sr.Withheld.Add(sr.Credited).Add(sr.CappedExcess); !sum.Equal(sr.Gross) {
				t.Errorf("session parts %s != gross %s", sum, sr.Gross)
			}
			if r.PerSessionCap.IsPositive() && sr.Credited.GreaterThan(r.PerSessionCap) {
				t.Errorf("credited %s over per_session cap %s", sr.Credited, r.PerSessionCap)
			}
			if r.PerUserPerDayCap.IsPositive() && sr.Credited.IsPositive() && before.Add(sr.Credited).GreaterThan(r.PerUserPerDayCap) {
				t.Errorf("credited %s after %s over per_user_per_day cap %s", sr.Credited, before, r.PerUserPerDayCap)
			}
			if sr.CappedExcess.IsPositive() {
				s.count["capped"]++
			}
			s.withheld = s.withheld.Add(sr.Withheld)
			s.revenueCredited = s.revenueCredited.Add(sr.Credited)
			w.dayRevenue[day] = before.Add(sr.Credited)
		}
	}
	// A delivery whose every paying entry was claimed before is a dropped claim.
	if out, _ := Evaluate(ev, s.rules, st.Day, s.now); len(out.Entries) > len(res.Entries) {
		s.count["claim dropped"] += len(out.Entries) - len(res.Entries)
	}
	for _, e := range res.Entries {
		if e.Claim != "" {
			key := ev.User + "\x00" + e.Claim
			if s.paid[key] {
				t.Errorf("%s: claim %q paid twice", ev.User, e.Claim)
			}
			if !slices.Contains(need.Claims, e.Claim) {
				t.Errorf("%s: claim %q not in NeedsOf %v", ev.User, e.Claim, need.Claims)
			}
			s.paid[key] = true
		}
		c := e.UserDelta(Pending)
		w.credited = w.credited.Add(c)
		switch e.Kind {
		case EntryTarget:
			s.targets = s.targets.Add(c)
		case EntryAchievement:
			s.achievements = s.achievements.Add(c)
		}
		s.count[string(e.Kind)]++
		s.tally(w, e)
	}
	w.wallet = res.Wallet
}

// tally records an entry's legs independently of the wallet: user legs to the user's
// sum and lots, system legs to the system totals.
func (s *sim) tally(w *simWallet, e Entry) {
	if !e.Balanced() {
		s.t.Errorf("unbalanced %s entry: %v", e.Kind, e.Legs)
	}
	for _, l := range e.Legs {
		if err := CheckAmount(l.Amount); err != nil {
			s.t.Errorf("leg %s: %v", l.Amount, err)
		}
		if l.System != "" {
			s.system[l.System] = s.system[l.System].Add(l.Amount)
			continue
		}
		if l.Bucket != Pending && l.Bucket != Available {
			s.t.Errorf("leg with bucket %q", l.Bucket)
		}
		w.legSum = w.legSum.Add(l.Amount)
	}
	if lotAmount := e.Lot(); !lotAmount.IsZero() {
		w.unsettled = append(w.unsettled, lot{lotAmount, e.LotMatures(s.now)})
	}
}

func (s *sim) settleAll() {
	for _, w := range s.wallets {
		matured := decimal.Zero
		var left []lot
		for _, c := range w.unsettled {
			if c.maturesAt.After(s.now) {
				left = append(left, c)
				continue
			}
			matured = matured.Add(c.amount)
		}
		before := w.wallet
		after, e, ok := w.wallet.Settle(matured, s.scale)
		if !ok {
			// A pending debit larger than what has matured waits, with the lots, for
			// enough credits to mature (the store leaves them unsettled).
			if !matured.Add(before.Carry).IsNegative() {
				s.t.Errorf("Settle(%s) of %+v refused, though it covers the pending debits", matured, before)
			}
			s.count["debit waits"]++
			continue
		}
		w.unsettled = left
		moved := after.Available.Sub(before.Available)
		if c := after.Carry; c.IsNegative() || !c.LessThan(s.unit) || !FitsScale(moved, s.scale) {
			s.t.Errorf("Settle(%s) with carry %s: moved %s, carry %s at scale %d", matured, before.Carry, moved, c, s.scale)
		}
		if !moved.Add(after.Carry).Equal(matured.Add(before.Carry)) {
			s.t.Errorf("Settle(%s) with carry %s: moved %s + carry %s != matured + carry", matured, before.Carry, moved, after.Carry)
		}
		if after.Carry.IsPositive() {
			s.count["carried"]++
		}
		if e != nil {
			s.count["settled"]++
			s.tally(w, *e)
		} else if moved.IsPositive() {
			s.t.Errorf("Settle moved %s without an entry", moved)
		}
		w.wallet = after
	}
}

func (s *sim) redeem() {
	w := s.wallet(s.user())
	// Asking for one unit more than available is refused and changes nothing.
	if _, _, err := w.wallet.Redeem(w.wallet.Available.Add(s.unit)); !errors.Is(err, ErrInsufficientFunds) {
		s.t.Errorf("redeeming more than available %s: err %v", w.wallet.Available, err)
	}
	units := w.wallet.Available.Shift(s.scale).IntPart() // available is always whole units
	if units <= 0 {
		return
	}
	amount := decimal.New(s.rng.Int64N(units)+1, -s.scale)
	after, e, err := w.wallet.Redeem(amount)
	if err != nil {
		s.t.Fatalf("redeem %s of %s: %v", amount, w.wallet.Available, err)
	}
	s.count["redeemed"]++
	w.redeemed = w.redeemed.Add(amount)
	w.redemptions = append(w.redemptions, amount)
	s.tally(w, e)
	w.wallet = after
}

// reverse returns one of the user's redemptions to available.
func (s *sim) reverse() {
	w := s.wallet(s.user())
	// More than was ever redeemed cannot come back, and changes nothing.
	if _, _, err := w.wallet.Reverse(w.wallet.Redeemed.Add(s.unit)); !errors.Is(err, ErrInvalidRequest) {
		s.t.Errorf("reversing more than redeemed %s: err %v", w.wallet.Redeemed, err)
	}
	if len(w.redemptions) == 0 {
		return
	}
	i := s.rng.IntN(len(w.redemptions))
	amount := w.redemptions[i]
	w.redemptions = slices.Delete(w.redemptions, i, i+1)
	after, e, err := w.wallet.Reverse(amount)
	if err != nil {
		s.t.Fatalf("reverse %s of redeemed %s: %v", amount, w.wallet.Redeemed, err)
	}
	s.count["reversed"]++
	w.redeemed = w.redeemed.Sub(amount)
	s.tally(w, e)
	w.wallet = after
}

// adjust credits or debits one of the user's buckets. A pending debit may take any
// part of pending, the carry included: it has matured at once, so settlement nets it
// against the credits it offsets, or waits for them.
func (s *sim) adjust() {
	w := s.wallet(s.user())
	bucket, balance := Available, w.wallet.Available
	if s.rng.IntN(2) == 0 {
		bucket, balance = Pending, w.wallet.Pending
	}
	// More than the bucket holds is refused and changes nothing.
	if _, _, err := w.wallet.Adjust(balance.Add(s.unit).Neg(), bucket); !errors.As(err, new(*InsufficientFundsError)) {
		s.t.Errorf("debiting %s of %s %s: err %v", balance.Add(s.unit), bucket, balance, err)
	}
	amount := decimal.New(s.rng.Int64N(1000)+1, -s.scale)
	if s.rng.IntN(2) == 0 {
		// A debit of up to the whole bucket; pending is debited in its own precision.
		places := s.scale
		if bucket == Pending {
			places = 18
		}
		units := balance.Shift(places).IntPart()
		if units <= 0 {
			return
		}
		amount = decimal.New(s.rng.Int64N(units)+1, -places).Neg()
	}
	after, e, err := w.wallet.Adjust(amount, bucket)
	if err != nil {
		s.t.Fatalf("adjust %s of %s %s: %v", amount, bucket, balance, err)
	}
	s.count["adjusted "+string(bucket)]++
	if bucket == Pending && amount.IsNegative() {
		s.count["pending debit"]++
	}
	w.adjusted = w.adjusted.Add(amount)
	s.tally(w, e)
	w.wallet = after
}

func (s *sim) checkWallet(user string, sw *simWallet) {
	t := s.t
	w := sw.wallet
	if w.Available.IsNegative() || w.Pending.IsNegative() || w.Carry.IsNegative() {
		t.Errorf("%s: a negative bucket: %+v", user, w)
	}
	if !FitsScale(w.Available, s.scale) {
		t.Errorf("%s: available %s has digits beyond scale %d", user, w.Available, s.scale)
	}
	if sum := w.Available.Add(w.Pending); !sw.legSum.Equal(sum) {
		t.Errorf("%s: user legs %s != available + pending %s", user, sw.legSum, sum)
	}
	if sum := w.Available.Add(w.Pending); !sum.Equal(w.LifetimeEarned.Sub(w.Redeemed)) {
		t.Errorf("%s: available + pending %s != lifetime %s − redeemed %s", user, sum, w.LifetimeEarned, w.Redeemed)
	}
	if !w.Redeemed.Equal(sw.redeemed) {
		t.Errorf("%s: wallet redeemed %s, tallied %s", user, w.Redeemed, sw.redeemed)
	}
	unsettled := decimal.Zero
	for _, c := range sw.unsettled {
		unsettled = unsettled.Add(c.amount)
	}
	if got := w.Pending.Sub(w.Carry); !got.Equal(unsettled) {
		t.Errorf("%s: pending − carry = %s, unsettled lots %s", user, got, unsettled)
	}
}

var simUsers = []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"}

func (s *sim) user() string { return simUsers[s.rng.IntN(len(simUsers))] }

func (s *sim) key() string {
	s.nextKey++
	return fmt.Sprintf("k%d", s.nextKey)
}

// frac is a random decimal in [0, max × 10^-places].
func (s *sim) frac(max int64, places int32) decimal.Decimal {
	return decimal.New(s.rng.Int64N(max+1), -places)
}

func (s *sim) randomRules(version int) Rules {
	v := fmt.Sprintf("v%d", version)
	rr := &RevenueRule{
		Version:           v,
		UnitsPerUSD:       []decimal.Decimal{d("1"), d("100"), d("1000"), d("100000")}[s.rng.IntN(4)],
		Share:             s.frac(1000, 3),
		Buffer:            s.frac(100, 2),
		Hold:              time.Duration(s.rng.IntN(48)) * time.Hour,
		MinSessionSeconds: s.rng.Int64N(30),
		Countries:         map[string]decimal.Decimal{"IN": s.frac(300, 2), "US": s.frac(300, 2)},
	}
	if s.rng.IntN(3) > 0 {
		rr.Countries["*"] = s.frac(200, 2)
	}
	if s.rng.IntN(2) == 0 {
		rr.PerSessionCap = s.frac(50, 1)
	}
	if s.rng.IntN(2) == 0 {
		rr.PerUserPerDayCap = s.frac(300, 1)
	}
	r := Rules{Property: "arcade", Currency: "COIN", Scale: s.scale, Revenue: rr}
	directions := []Direction{Higher, Lower}
	pers := []Per{PerOnce, PerDay, PerPlay}
	stateSets := [][]string{nil, {"over"}, {"over", "levelup"}, {"playing", "over"}}
	for i := range 5 {
		r.Targets = append(r.Targets, ScoreTarget{
			ID:        fmt.Sprintf("t%d", i), // stable across versions, as in a real config
			Version:   v,
			Game:      []string{"g1", "g2"}[s.rng.IntN(2)],
			MinScore:  s.frac(1500, 0),
			Direction: directions[s.rng.IntN(2)],
			Reward:    s.frac(10000, 3),
			Per:       pers[s.rng.IntN(3)],
			States:    stateSets[s.rng.IntN(len(stateSets))],
			Hold:      time.Duration(s.rng.IntN(24)) * time.Hour,
		})
	}
	r.Achievements = []AchievementRule{
		{Source: SourceGamePush, ID: "a1", Version: v, Reward: s.frac(100000, 3), Hold: time.Duration(s.rng.IntN(5)) * time.Hour},
		{Source: SourceGamePush, ID: "a2", Version: v, Reward: s.frac(100, 0)},
		{Source: SourceTrackScore, ID: "w1", Version: v, Reward: s.frac(5000, 2)},
	}
	return r
}

var gamezopStates = []string{"loaded", "start", "playing", "over", "levelup"}

func (s *sim) randomEvent() Event {
	ev := Event{User: s.user(), DedupeKey: s.key()}
	switch p := s.rng.IntN(100); {
	case p < 55:
		ev.Source, ev.Kind = SourceGamezopSPP, KindSession
		// Up to 1000 USD, usually tiny, with up to 18 decimal places.
		revenue := decimal.New(s.rng.Int64N(1_000_000_000), -int32(6+s.rng.IntN(13)))
		ev.Session = &Session{
			SessionID:       ev.DedupeKey,
			Country:         []string{"IN", "US", "BR", ""}[s.rng.IntN(4)],
			RevenueUSD:      revenue,
			DurationSeconds: s.rng.Int64N(120),
		}
	case p < 85:
		ev.Source = []Source{SourceGamezopScores, SourceTrackScore, SourceGamePush}[s.rng.IntN(3)]
		ev.Kind = KindScore
		sc := &Score{
			Game:  []string{"g1", "g2", "g3"}[s.rng.IntN(3)],
			Value: decimal.New(s.rng.Int64N(2000), -int32(s.rng.IntN(3))),
		}
		if ev.Source == SourceGamezopScores {
			sc.State = gamezopStates[s.rng.IntN(len(gamezopStates))]
			sc.PlayID = fmt.Sprintf("p%d", s.rng.IntN(60))
			if sc.State == "loaded" || sc.State == "start" {
				sc.Value = decimal.Zero
			}
		}
		ev.Score = sc
	case p < 95:
		ev.Source = []Source{SourceGamePush, SourceTrackScore}[s.rng.IntN(2)]
		ev.Kind = KindAchievement
		ev.Achievement = &Achievement{ID: []string{"a1", "a2", "w1", "zz"}[s.rng.IntN(4)]}
	default:
		ev.Source, ev.Kind, ev.Type = SourceTrackScore, KindOther, "participant.joined"
	}
	return ev
}
