package rewards

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// credit is one positive pending leg waiting to mature.
type credit struct {
	amount    decimal.Decimal
	maturesAt time.Time
}

// simWallet is a user's wallet as the store keeps it (running balances updated by legs)
// plus independent tallies to check it against.
type simWallet struct {
	available, pending, carry decimal.Decimal
	unsettled                 []credit
	legSum                    decimal.Decimal // every user leg ever posted
	credited                  decimal.Decimal // revenue, target and achievement credits
	redeemed, adjusted        decimal.Decimal
	dayRevenue                map[string]decimal.Decimal
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
	claims  claimSet
	paid    map[string]bool // (user, claim) pairs that paid, kept apart from claims
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
				claims:  claimSet{},
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
		if !w.pending.Equal(w.carry) || len(w.unsettled) != 0 {
			t.Errorf("%s: pending %s, carry %s, %d unsettled after full settlement", user, w.pending, w.carry, len(w.unsettled))
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

	for _, k := range []string{"revenue", "target", "achievement", "claim dropped", "settled", "carried", "redeemed", "capped", "nothing"} {
		if s.count[k] == 0 {
			t.Errorf("the random run never exercised %q: %v", k, s.count)
		}
	}
	t.Logf("scale %d: %v", s.scale, s.count)
}

func (s *sim) wallet(user string) *simWallet {
	w := s.wallets[user]
	if w == nil {
		w = &simWallet{dayRevenue: map[string]decimal.Decimal{}}
		s.wallets[user] = w
	}
	return w
}

func (s *sim) apply(ev Event) {
	t := s.t
	w := s.wallet(ev.User)
	day := DayOf(s.now)
	before := w.dayRevenue[day]
	out, err := Evaluate(ev, s.rules, DayState{RevenueCredited: before}, s.now)
	if err != nil {
		t.Fatalf("Evaluate(%+v): %v", ev, err)
	}
	if len(out.Entries) == 0 {
		s.count["nothing"]++
		if out.Note == "" {
			t.Errorf("%s event earned nothing without a note", ev.Kind)
		}
	}
	if res := out.Session; res != nil {
		if sum := res.Withheld.Add(res.Credited).Add(res.CappedExcess); !sum.Equal(res.Gross) {
			t.Errorf("session parts %s != gross %s", sum, res.Gross)
		}
		rr := s.rules.Revenue
		if rr.PerSessionCap.IsPositive() && res.Credited.GreaterThan(rr.PerSessionCap) {
			t.Errorf("credited %s over per_session cap %s", res.Credited, rr.PerSessionCap)
		}
		if rr.PerUserPerDayCap.IsPositive() && res.Credited.IsPositive() && before.Add(res.Credited).GreaterThan(rr.PerUserPerDayCap) {
			t.Errorf("credited %s after %s over per_user_per_day cap %s", res.Credited, before, rr.PerUserPerDayCap)
		}
		if res.CappedExcess.IsPositive() {
			s.count["capped"]++
		}
		s.withheld = s.withheld.Add(res.Withheld)
		s.revenueCredited = s.revenueCredited.Add(res.Credited)
		w.dayRevenue[day] = before.Add(res.Credited)
	}
	kept := s.claims.apply(ev.User, out.Entries)
	s.count["claim dropped"] += len(out.Entries) - len(kept)
	for _, e := range kept {
		if e.Claim != "" {
			key := ev.User + "\x00" + e.Claim
			if s.paid[key] {
				t.Errorf("%s: claim %q paid twice", ev.User, e.Claim)
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
		s.post(w, e)
	}
}

// post applies an entry's legs the way the store does: user legs to running balances,
// system legs to totals.
func (s *sim) post(w *simWallet, e Entry) {
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
		w.legSum = w.legSum.Add(l.Amount)
		switch l.Bucket {
		case Pending:
			w.pending = w.pending.Add(l.Amount)
			if e.Kind != EntrySettlement {
				w.unsettled = append(w.unsettled, credit{l.Amount, e.MaturesAt})
			}
		case Available:
			w.available = w.available.Add(l.Amount)
		default:
			s.t.Errorf("leg with bucket %q", l.Bucket)
		}
	}
}

func (s *sim) settleAll() {
	for _, w := range s.wallets {
		matured := decimal.Zero
		left := w.unsettled[:0]
		for _, c := range w.unsettled {
			if c.maturesAt.After(s.now) {
				left = append(left, c)
				continue
			}
			matured = matured.Add(c.amount)
		}
		w.unsettled = left
		moved, carry := Settle(matured, w.carry, s.scale)
		if carry.IsNegative() || !carry.LessThan(s.unit) || !FitsScale(moved, s.scale) {
			s.t.Errorf("Settle(%s, %s) = %s, %s at scale %d", matured, w.carry, moved, carry, s.scale)
		}
		w.carry = carry
		if carry.IsPositive() {
			s.count["carried"]++
		}
		if moved.IsPositive() {
			s.count["settled"]++
			s.post(w, SettlementEntry(moved))
		}
	}
}

func (s *sim) redeem() {
	w := s.wallet(s.user())
	units := w.available.Shift(s.scale).IntPart() // available is always whole units
	if units <= 0 {
		return
	}
	amount := decimal.New(s.rng.Int64N(units)+1, -s.scale)
	if amount.GreaterThan(w.available) {
		s.t.Fatalf("test bug: redeeming %s of %s", amount, w.available)
	}
	s.count["redeemed"]++
	w.redeemed = w.redeemed.Add(amount)
	s.post(w, RedemptionEntry(amount))
}

func (s *sim) adjust() {
	w := s.wallet(s.user())
	amount := decimal.New(s.rng.Int64N(1000)+1, -s.scale)
	if s.rng.IntN(2) == 0 {
		units := w.available.Shift(s.scale).IntPart()
		if units <= 0 {
			return
		}
		amount = decimal.New(s.rng.Int64N(units)+1, -s.scale).Neg()
	}
	w.adjusted = w.adjusted.Add(amount)
	s.post(w, AdjustmentEntry(amount, Available))
}

func (s *sim) checkWallet(user string, w *simWallet) {
	t := s.t
	if w.available.IsNegative() {
		t.Errorf("%s: available %s is negative", user, w.available)
	}
	if !FitsScale(w.available, s.scale) {
		t.Errorf("%s: available %s has digits beyond scale %d", user, w.available, s.scale)
	}
	if sum := w.available.Add(w.pending); !w.legSum.Equal(sum) {
		t.Errorf("%s: user legs %s != available + pending %s", user, w.legSum, sum)
	}
	unsettled := decimal.Zero
	for _, c := range w.unsettled {
		unsettled = unsettled.Add(c.amount)
	}
	if got := w.pending.Sub(w.carry); !got.Equal(unsettled) {
		t.Errorf("%s: pending − carry = %s, unsettled credits %s", user, got, unsettled)
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
