package rewards

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func baseRevenue() *RevenueRule {
	return &RevenueRule{
		Version:           "r1",
		UnitsPerUSD:       d("100000"),
		Share:             d("0.7"),
		Buffer:            d("0.2"),
		Hold:              24 * time.Hour,
		MinSessionSeconds: 10,
		Countries:         map[string]decimal.Decimal{"*": d("1")},
	}
}

func sessionEvent(revenue, country string, seconds int64) Event {
	return Event{
		Source:    SourceGamezopSPP,
		Kind:      KindSession,
		DedupeKey: "s1",
		User:      "u1",
		Session: &Session{
			SessionID:       "s1",
			Country:         country,
			RevenueUSD:      d(revenue),
			DurationSeconds: seconds,
		},
	}
}

// wantLeg is a leg written as strings so tables stay readable.
type wantLeg struct {
	system string
	bucket Bucket
	amount string
}

func checkLegs(t *testing.T, e Entry, want []wantLeg) {
	t.Helper()
	if !e.Balanced() {
		t.Errorf("entry %s is not balanced: %v", e.Rule, e.Legs)
	}
	if len(e.Legs) != len(want) {
		t.Fatalf("legs = %v, want %v", e.Legs, want)
	}
	for i, w := range want {
		l := e.Legs[i]
		if l.System != w.system || l.Bucket != w.bucket || l.Amount.String() != w.amount {
			t.Errorf("leg %d = {%q %q %s}, want {%q %q %s}", i, l.System, l.Bucket, l.Amount, w.system, w.bucket, w.amount)
		}
	}
}

func TestEvaluateSession(t *testing.T) {
	type want struct {
		gross, withheld, credited, excess, mult string
		reason                                  string // substring; "" means must be empty
		legs                                    []wantLeg
	}
	full := []wantLeg{
		{bucket: Pending, amount: "0.672"},
		{system: AccountBuffer, amount: "0.168"},
		{system: AccountRevenue, amount: "-0.84"},
	}
	tests := []struct {
		name     string
		rule     func(*RevenueRule)
		ev       Event
		credited string // DayState.RevenueCredited
		want     want
	}{
		{
			name: "hand-computed example",
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"0.84", "0.168", "0.672", "0", "1", "", full},
		},
		{
			name: "per_session cap reached exactly",
			rule: func(r *RevenueRule) { r.PerSessionCap = d("0.672") },
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"0.84", "0.168", "0.672", "0", "1", "", full},
		},
		{
			name: "per_session cap exceeded by the smallest unit",
			rule: func(r *RevenueRule) { r.PerSessionCap = d("0.671999999999999999") },
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"0.84", "0.168", "0.671999999999999999", "0.000000000000000001", "1", "per_session cap", []wantLeg{
				{bucket: Pending, amount: "0.671999999999999999"},
				{system: AccountBuffer, amount: "0.168"},
				{system: AccountRevenue, amount: "-0.839999999999999999"},
			}},
		},
		{
			name:     "per_user_per_day cap reached exactly",
			rule:     func(r *RevenueRule) { r.PerUserPerDayCap = d("10") },
			ev:       sessionEvent("0.000012", "IN", 163),
			credited: "9.328",
			want:     want{"0.84", "0.168", "0.672", "0", "1", "", full},
		},
		{
			name:     "per_user_per_day cap exceeded by the smallest unit",
			rule:     func(r *RevenueRule) { r.PerUserPerDayCap = d("10") },
			ev:       sessionEvent("0.000012", "IN", 163),
			credited: "9.328000000000000001",
			want: want{"0.84", "0.168", "0.671999999999999999", "0.000000000000000001", "1", "per_user_per_day cap", []wantLeg{
				{bucket: Pending, amount: "0.671999999999999999"},
				{system: AccountBuffer, amount: "0.168"},
				{system: AccountRevenue, amount: "-0.839999999999999999"},
			}},
		},
		{
			name:     "daily cap already used up still withholds",
			rule:     func(r *RevenueRule) { r.PerUserPerDayCap = d("10") },
			ev:       sessionEvent("0.000012", "IN", 163),
			credited: "10",
			want: want{"0.84", "0.168", "0", "0.672", "1", "per_user_per_day cap", []wantLeg{
				{system: AccountBuffer, amount: "0.168"},
				{system: AccountRevenue, amount: "-0.168"},
			}},
		},
		{
			name:     "daily cap overspent (cap lowered) credits nothing, not a debit",
			rule:     func(r *RevenueRule) { r.PerUserPerDayCap = d("10") },
			ev:       sessionEvent("0.000012", "IN", 163),
			credited: "11",
			want: want{"0.84", "0.168", "0", "0.672", "1", "per_user_per_day cap", []wantLeg{
				{system: AccountBuffer, amount: "0.168"},
				{system: AccountRevenue, amount: "-0.168"},
			}},
		},
		{
			name:     "both caps bind",
			rule:     func(r *RevenueRule) { r.PerSessionCap = d("0.5"); r.PerUserPerDayCap = d("10") },
			ev:       sessionEvent("0.000012", "IN", 163),
			credited: "9.6",
			want: want{"0.84", "0.168", "0.4", "0.272", "1", "per_session cap, per_user_per_day cap", []wantLeg{
				{bucket: Pending, amount: "0.4"},
				{system: AccountBuffer, amount: "0.168"},
				{system: AccountRevenue, amount: "-0.568"},
			}},
		},
		{
			name:     "daily cap counts only the given day state",
			rule:     func(r *RevenueRule) { r.PerUserPerDayCap = d("10") },
			ev:       sessionEvent("0.000012", "IN", 163),
			credited: "0",
			want:     want{"0.84", "0.168", "0.672", "0", "1", "", full},
		},
		{
			name: "exactly min_session_seconds earns",
			ev:   sessionEvent("0.000012", "IN", 10),
			want: want{"0.84", "0.168", "0.672", "0", "1", "", full},
		},
		{
			name: "one second below min_session_seconds earns nothing",
			ev:   sessionEvent("0.000012", "IN", 9),
			want: want{"0", "0", "0", "0", "0", "below min_session_seconds", nil},
		},
		{
			name: "listed country uses its multiplier",
			rule: func(r *RevenueRule) { r.Countries = map[string]decimal.Decimal{"IN": d("2"), "*": d("0.5")} },
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"1.68", "0.336", "1.344", "0", "2", "", []wantLeg{
				{bucket: Pending, amount: "1.344"},
				{system: AccountBuffer, amount: "0.336"},
				{system: AccountRevenue, amount: "-1.68"},
			}},
		},
		{
			name: "unlisted country falls back to *",
			rule: func(r *RevenueRule) { r.Countries = map[string]decimal.Decimal{"IN": d("2"), "*": d("0.5")} },
			ev:   sessionEvent("0.000012", "US", 163),
			want: want{"0.42", "0.084", "0.336", "0", "0.5", "", []wantLeg{
				{bucket: Pending, amount: "0.336"},
				{system: AccountBuffer, amount: "0.084"},
				{system: AccountRevenue, amount: "-0.42"},
			}},
		},
		{
			name: "unlisted country without * earns nothing",
			rule: func(r *RevenueRule) { r.Countries = map[string]decimal.Decimal{"IN": d("2")} },
			ev:   sessionEvent("0.000012", "US", 163),
			want: want{"0", "0", "0", "0", "0", "country US not listed", nil},
		},
		{
			name: "absent country uses *",
			rule: func(r *RevenueRule) { r.Countries = map[string]decimal.Decimal{"IN": d("2"), "*": d("0.5")} },
			ev:   sessionEvent("0.000012", "", 163),
			want: want{"0.42", "0.084", "0.336", "0", "0.5", "", []wantLeg{
				{bucket: Pending, amount: "0.336"},
				{system: AccountBuffer, amount: "0.084"},
				{system: AccountRevenue, amount: "-0.42"},
			}},
		},
		{
			name: "absent country without * earns nothing",
			rule: func(r *RevenueRule) { r.Countries = map[string]decimal.Decimal{"IN": d("2")} },
			ev:   sessionEvent("0.000012", "", 163),
			want: want{"0", "0", "0", "0", "0", `no country and no "*"`, nil},
		},
		{
			name: "buffer 0 withholds nothing and omits the buffer leg",
			rule: func(r *RevenueRule) { r.Buffer = d("0") },
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"0.84", "0", "0.84", "0", "1", "", []wantLeg{
				{bucket: Pending, amount: "0.84"},
				{system: AccountRevenue, amount: "-0.84"},
			}},
		},
		{
			name: "buffer 1 withholds everything",
			rule: func(r *RevenueRule) { r.Buffer = d("1") },
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"0.84", "0.84", "0", "0", "1", "buffer withholds everything", []wantLeg{
				{system: AccountBuffer, amount: "0.84"},
				{system: AccountRevenue, amount: "-0.84"},
			}},
		},
		{
			name: "share 0 earns nothing",
			rule: func(r *RevenueRule) { r.Share = d("0") },
			ev:   sessionEvent("0.000012", "IN", 163),
			want: want{"0", "0", "0", "0", "1", "zero gross", nil},
		},
		{
			name: "zero revenue earns nothing",
			ev:   sessionEvent("0", "IN", 163),
			want: want{"0", "0", "0", "0", "1", "zero revenue", nil},
		},
		{
			name: "a gross below 1e-18 truncates to zero",
			rule: func(r *RevenueRule) { r.UnitsPerUSD = d("1") },
			ev:   sessionEvent("0.000000000000000001", "IN", 163),
			want: want{"0", "0", "0", "0", "1", "zero gross", nil},
		},
		{
			// DESIGN §3: gross = revenue × share × multiplier × units_per_usd, one
			// computed amount truncated once. 3e-18 × 0.7 × 100000 = 2.1e-13 exactly;
			// truncating after each product would give 2e-13.
			name: "the gross is one product, truncated once",
			ev:   sessionEvent("0.000000000000000003", "IN", 163),
			want: want{"0.00000000000021", "0.000000000000042", "0.000000000000168", "0", "1", "", []wantLeg{
				{bucket: Pending, amount: "0.000000000000168"},
				{system: AccountBuffer, amount: "0.000000000000042"},
				{system: AccountRevenue, amount: "-0.00000000000021"},
			}},
		},
		{
			// By hand: 0.123456789012345678 × 0.7 × 1.5 × 100000 = 12962.96284629629619
			// (stepwise truncation would give 12962.9628462962961); buffer 0.2 of it is
			// 2592.592569259259238; the user gets the rest.
			name: "a long revenue with a multiplier, computable by hand",
			rule: func(r *RevenueRule) { r.Countries = map[string]decimal.Decimal{"*": d("1.5")} },
			ev:   sessionEvent("0.123456789012345678", "IN", 163),
			want: want{"12962.96284629629619", "2592.592569259259238", "10370.370277037036952", "0", "1.5", "", []wantLeg{
				{bucket: Pending, amount: "10370.370277037036952"},
				{system: AccountBuffer, amount: "2592.592569259259238"},
				{system: AccountRevenue, amount: "-12962.96284629629619"},
			}},
		},
		{
			// gross 1e-18 × buffer 0.5 = 5e-19 truncates to 0; the user keeps the unit.
			name: "withheld truncates and the user part is the difference",
			rule: func(r *RevenueRule) { r.Share = d("1"); r.UnitsPerUSD = d("1"); r.Buffer = d("0.5") },
			ev:   sessionEvent("0.000000000000000001", "IN", 163),
			want: want{"0.000000000000000001", "0", "0.000000000000000001", "0", "1", "", []wantLeg{
				{bucket: Pending, amount: "0.000000000000000001"},
				{system: AccountRevenue, amount: "-0.000000000000000001"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := baseRevenue()
			if tt.rule != nil {
				tt.rule(rr)
			}
			day := DayState{}
			if tt.credited != "" {
				day.RevenueCredited = d(tt.credited)
			}
			out, err := Evaluate(tt.ev, Rules{Property: "arcade", Revenue: rr}, day, t0)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			res := out.Session
			if res == nil {
				t.Fatal("no SessionResult")
			}
			for _, c := range []struct {
				name      string
				got, want string
			}{
				{"gross", res.Gross.String(), tt.want.gross},
				{"withheld", res.Withheld.String(), tt.want.withheld},
				{"credited", res.Credited.String(), tt.want.credited},
				{"capped excess", res.CappedExcess.String(), tt.want.excess},
				{"multiplier", res.Multiplier.String(), tt.want.mult},
			} {
				if c.got != c.want {
					t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
				}
			}
			if sum := res.Withheld.Add(res.Credited).Add(res.CappedExcess); !sum.Equal(res.Gross) {
				t.Errorf("withheld+credited+excess = %s, gross %s", sum, res.Gross)
			}
			if tt.want.reason == "" && res.Reason != "" {
				t.Errorf("reason = %q, want none", res.Reason)
			}
			if !strings.Contains(res.Reason, tt.want.reason) {
				t.Errorf("reason = %q, want it to contain %q", res.Reason, tt.want.reason)
			}
			if res.Credited.IsZero() && out.Note == "" {
				t.Errorf("nothing credited but no note")
			}
			if !res.Credited.IsZero() && out.Note != "" {
				t.Errorf("credited %s but note %q", res.Credited, out.Note)
			}
			if tt.want.legs == nil {
				if len(out.Entries) != 0 {
					t.Fatalf("entries = %+v, want none", out.Entries)
				}
				return
			}
			if len(out.Entries) != 1 {
				t.Fatalf("entries = %d, want 1", len(out.Entries))
			}
			e := out.Entries[0]
			checkLegs(t, e, tt.want.legs)
			if e.Kind != EntryRevenue || e.Rule != "revenue" || e.RuleVersion != "r1" || e.Claim != "" {
				t.Errorf("entry header = %q %q %q %q", e.Kind, e.Rule, e.RuleVersion, e.Claim)
			}
			if !e.MaturesAt.Equal(t0.Add(24 * time.Hour)) {
				t.Errorf("MaturesAt = %v, want %v", e.MaturesAt, t0.Add(24*time.Hour))
			}
			if !e.UserDelta(Pending).Equal(res.Credited) {
				t.Errorf("pending delta %s != credited %s", e.UserDelta(Pending), res.Credited)
			}
		})
	}
}

func TestEvaluateSessionErrors(t *testing.T) {
	ev := sessionEvent("0.000012", "IN", 163)
	if _, err := Evaluate(ev, Rules{Property: "arcade"}, DayState{}, t0); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no revenue rule: err = %v, want ErrNotConfigured", err)
	}

	bad := baseRevenue()
	bad.Share = d("1.5")
	if _, err := Evaluate(ev, Rules{Revenue: bad}, DayState{}, t0); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("share 1.5: err = %v, want ErrNotConfigured", err)
	}

	noSession := ev
	noSession.Session = nil
	if _, err := Evaluate(noSession, Rules{Revenue: baseRevenue()}, DayState{}, t0); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("nil session: err = %v, want ErrInvalidEvent", err)
	}
	noUser := sessionEvent("0.000012", "IN", 163)
	noUser.User = ""
	if _, err := Evaluate(noUser, Rules{Revenue: baseRevenue()}, DayState{}, t0); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("no user: err = %v, want ErrInvalidEvent", err)
	}
	if _, err := Evaluate(sessionEvent("-1", "IN", 163), Rules{Revenue: baseRevenue()}, DayState{}, t0); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("negative revenue: err = %v, want ErrInvalidEvent", err)
	}

	// 1000 USD at 10^18 units per USD is 10^21 units: more than NUMERIC(38,18) holds.
	huge := baseRevenue()
	huge.Share, huge.Buffer, huge.UnitsPerUSD = d("1"), d("0"), d("1000000000000000000")
	if _, err := Evaluate(sessionEvent("1000", "IN", 163), Rules{Revenue: huge}, DayState{}, t0); !errors.Is(err, ErrAmount) {
		t.Errorf("huge credit: err = %v, want ErrAmount", err)
	}
	// The same with a per-session cap: the legs (500 to the user) fit, the session's gross
	// of 10^21 does not, and Postgres would refuse to store it where SQLite keeps it.
	huge.PerSessionCap = d("500")
	if _, err := Evaluate(sessionEvent("1000", "IN", 163), Rules{Revenue: huge}, DayState{}, t0); !errors.Is(err, ErrAmount) {
		t.Errorf("huge capped session: err = %v, want ErrAmount", err)
	}
}

// Micro-revenue adds up exactly: no unit appears or vanishes however many sessions there are.
func TestMicroRevenueSumsExactly(t *testing.T) {
	const n = 100000
	rules := Rules{Revenue: baseRevenue()}
	ev := sessionEvent("0.000012", "IN", 163)
	one, err := Evaluate(ev, rules, DayState{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	single := one.Session.Credited
	sumUser, sumWithheld, sumRevenue := decimal.Zero, decimal.Zero, decimal.Zero
	for i := 0; i < n; i++ {
		out, err := Evaluate(ev, rules, DayState{}, t0)
		if err != nil {
			t.Fatal(err)
		}
		e := out.Entries[0]
		for _, l := range e.Legs {
			switch l.System {
			case "":
				sumUser = sumUser.Add(l.Amount)
			case AccountBuffer:
				sumWithheld = sumWithheld.Add(l.Amount)
			case AccountRevenue:
				sumRevenue = sumRevenue.Add(l.Amount)
			}
		}
	}
	if want := single.Mul(decimal.NewFromInt(n)); !sumUser.Equal(want) || sumUser.String() != "67200" {
		t.Errorf("sum of user credits = %s, want %s (67200)", sumUser, want)
	}
	if sumWithheld.String() != "16800" || sumRevenue.String() != "-84000" {
		t.Errorf("withheld %s, revenue %s; want 16800, -84000", sumWithheld, sumRevenue)
	}
	w := NewWallet()
	w.Pending, w.LifetimeEarned = sumUser, sumUser
	after, _, ok := w.Settle(sumUser, 0)
	if !ok || after.Available.String() != "67200" || !after.Carry.IsZero() || !after.Pending.IsZero() {
		t.Errorf("Settle = %+v, %v; want 67200 available, no carry", after, ok)
	}
}

func scoreEvent(src Source, game, value, state, play string) Event {
	return Event{
		Source:    src,
		Kind:      KindScore,
		DedupeKey: "k-" + game + "-" + value + "-" + state + "-" + play,
		User:      "u1",
		Score:     &Score{Game: game, Value: d(value), State: state, PlayID: play},
	}
}

func TestEvaluateScore(t *testing.T) {
	targets := []ScoreTarget{
		{ID: "hi", Version: "v1", Game: "g", MinScore: d("500"), Direction: Higher, Reward: d("50"), Per: PerOnce, Hold: time.Hour},
		{ID: "lo", Version: "v1", Game: "race", MinScore: d("60"), Direction: Lower, Reward: d("10"), Per: PerDay},
		{ID: "play", Version: "v2", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("1.5"), Per: PerPlay, States: []string{"over", "levelup"}},
		{ID: "zero", Version: "v1", Game: "z", MinScore: d("0"), Direction: Higher, Reward: d("0"), Per: PerOnce},
	}
	rules := Rules{Targets: targets}
	tests := []struct {
		name   string
		ev     Event
		claims []string // claims of the entries, in order; nil = no entries
		note   string   // substring of the note when no entries
	}{
		{"higher: equal to min pays", scoreEvent(SourceGamezopScores, "g", "500", "over", "p1"), []string{"target:hi", "target:play:play:p1"}, ""},
		{"higher: one below min", scoreEvent(SourceGamezopScores, "g", "499.999999999999999999", "over", "p1"), []string{"target:play:play:p1"}, ""},
		{"higher: above min", scoreEvent(SourceGamezopScores, "g", "501", "over", "p1"), []string{"target:hi", "target:play:play:p1"}, ""},
		{"lower: equal to min pays", scoreEvent(SourceGamezopScores, "race", "60", "over", "p1"), []string{"target:lo:day:2025-03-01"}, ""},
		{"lower: one above min", scoreEvent(SourceGamezopScores, "race", "60.000000000000000001", "over", "p1"), nil, "does not reach"},
		{"lower: below min pays", scoreEvent(SourceGamezopScores, "race", "59", "over", "p1"), []string{"target:lo:day:2025-03-01"}, ""},
		{"lower: loaded score 0 does not count by default", scoreEvent(SourceGamezopScores, "race", "0", "loaded", "p1"), nil, `state "loaded" not counted`},
		{"lower: start score 0 does not count by default", scoreEvent(SourceGamezopScores, "race", "0", "start", "p1"), nil, `state "start" not counted`},
		{"higher: playing does not count by default", scoreEvent(SourceGamezopScores, "g", "900", "playing", "p1"), nil, `not counted`},
		{"listed states: levelup counts where listed", scoreEvent(SourceGamezopScores, "g", "900", "levelup", "p1"), []string{"target:play:play:p1"}, ""},
		{"other sources ignore states", scoreEvent(SourceTrackScore, "g", "500", "", ""), []string{"target:hi", "target:play:play:k-g-500--"}, ""},
		{"gamepush ignores states", scoreEvent(SourceGamePush, "race", "1", "", ""), []string{"target:lo:day:2025-03-01"}, ""},
		{"no target for the game", scoreEvent(SourceGamezopScores, "other", "9999", "over", "p1"), nil, `no score target for game "other"`},
		{"zero reward pays nothing", scoreEvent(SourceGamezopScores, "z", "5", "over", "p1"), nil, "zero reward"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Evaluate(tt.ev, rules, DayState{}, t0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range out.Entries {
				got = append(got, e.Claim)
				if e.Kind != EntryTarget || !strings.HasPrefix(e.Claim, e.Rule) || !strings.HasPrefix(e.Rule, "target:") {
					t.Errorf("entry header %q %q %q", e.Kind, e.Rule, e.Claim)
				}
				if !e.Balanced() || !e.UserDelta(Pending).IsPositive() || !e.UserDelta(Available).IsZero() {
					t.Errorf("legs %v", e.Legs)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.claims, ",") {
				t.Errorf("claims = %v, want %v", got, tt.claims)
			}
			if tt.claims == nil && !strings.Contains(out.Note, tt.note) {
				t.Errorf("note = %q, want it to contain %q", out.Note, tt.note)
			}
			if tt.claims != nil && out.Note != "" {
				t.Errorf("note = %q on a paying score", out.Note)
			}
		})
	}

	// Amounts, version and maturity of one entry.
	out, err := Evaluate(scoreEvent(SourceGamezopScores, "g", "500", "over", "p1"), rules, DayState{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	hi := out.Entries[0]
	checkLegs(t, hi, []wantLeg{{bucket: Pending, amount: "50"}, {system: AccountTargets, amount: "-50"}})
	if hi.RuleVersion != "v1" || !hi.MaturesAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("version %q, matures %v", hi.RuleVersion, hi.MaturesAt)
	}
	checkLegs(t, out.Entries[1], []wantLeg{{bucket: Pending, amount: "1.5"}, {system: AccountTargets, amount: "-1.5"}})

	// The day of a per: day claim is the UTC day, whatever zone the caller's clock uses.
	ist := time.FixedZone("IST", 5*3600+1800)
	out, err = Evaluate(scoreEvent(SourceGamezopScores, "race", "1", "over", "p1"), rules, DayState{}, time.Date(2025, 3, 2, 1, 0, 0, 0, ist))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Entries) != 1 || out.Entries[0].Claim != "target:lo:day:2025-03-01" {
		t.Errorf("IST receipt: entries %+v, want claim target:lo:day:2025-03-01", out.Entries)
	}

	// A broken rule is not silently skipped.
	broken := Rules{Targets: []ScoreTarget{{ID: "x", Game: "g", MinScore: d("1"), Direction: "sideways", Reward: d("1"), Per: PerOnce}}}
	if _, err := Evaluate(scoreEvent(SourceTrackScore, "g", "5", "", ""), broken, DayState{}, t0); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unknown direction: err = %v, want ErrNotConfigured", err)
	}
	broken.Targets[0].Direction, broken.Targets[0].Per = Higher, "week"
	if _, err := Evaluate(scoreEvent(SourceTrackScore, "g", "5", "", ""), broken, DayState{}, t0); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unknown per: err = %v, want ErrNotConfigured", err)
	}
}

func TestDayOf(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 3, 1, 23, 59, 59, 999999999, time.UTC), "2025-03-01"},
		{time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC), "2025-03-02"},
		{time.Date(2025, 3, 2, 1, 0, 0, 0, ist), "2025-03-01"}, // 19:30 UTC the day before
	}
	for _, tt := range tests {
		if got := DayOf(tt.t); got != tt.want {
			t.Errorf("DayOf(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

// claimSet simulates the store's claim table for one property.
type claimSet map[string]bool

// credit runs Credit for ev's user against the claims taken so far and takes the claims
// of what it pays, as the store does in the same transaction.
func (c claimSet) credit(t *testing.T, ev Event, r Rules, at time.Time) []Entry {
	t.Helper()
	res, err := Credit(ev, r, State{Wallet: NewWallet(), Claimed: func(claim string) bool { return c[ev.User+"\x00"+claim] }}, at)
	if err != nil {
		t.Fatalf("Credit: %v", err)
	}
	for _, e := range res.Entries {
		if e.Claim != "" {
			c[ev.User+"\x00"+e.Claim] = true
			for _, also := range e.AlsoClaims {
				c[ev.User+"\x00"+also] = true
			}
		}
	}
	for _, s := range res.Seen {
		if !c[ev.User+"\x00"+s.PaidBy] {
			t.Fatalf("claim %s seen against %s, which no payment holds", s.Claim, s.PaidBy)
		}
		c[ev.User+"\x00"+s.Claim] = true
	}
	return res.Entries
}

// A report a `per: day` target turned away, its day paid by another play, is not paid on
// the next day when it comes again with a new timestamp (a new event) after midnight: it
// takes a claim of the report against the day's payment (review helper 232). A new play
// on the next day is paid.
func TestPerDayPlayTurnedAwayIsNotPaidOnTheNextDay(t *testing.T) {
	rules := Rules{Targets: []ScoreTarget{{ID: "daily", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("2"), Per: PerDay}}}
	day1 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	late := time.Date(2025, 3, 1, 23, 59, 50, 0, time.UTC)
	day2 := time.Date(2025, 3, 2, 0, 0, 10, 0, time.UTC)
	claims := claimSet{}
	paid := func(play string, at time.Time) int {
		ev := scoreEvent(SourceGamezopScores, "g", "150", "over", play)
		ev.User = "u1"
		return len(claims.credit(t, ev, rules, at))
	}
	if n := paid("p0", day1); n != 1 {
		t.Fatalf("p0 on day 1: %d entries, want 1", n)
	}
	ev := scoreEvent(SourceGamezopScores, "g", "150", "over", "p2")
	ev.User = "u1"
	res, err := Credit(ev, rules, State{Wallet: NewWallet(), Claimed: func(c string) bool { return claims["u1\x00"+c] }}, late)
	if err != nil {
		t.Fatal(err)
	}
	if want := []SeenClaim{{Claim: `target:daily:report:["p2","over","150","0"]`, PaidBy: "target:daily:day:2025-03-01"}}; len(res.Entries) != 0 || !slices.Equal(res.Seen, want) {
		t.Fatalf("p2 late on day 1: entries %v, seen %v, want none and %v", res.Entries, res.Seen, want)
	}
	if n := paid("p2", late); n != 0 {
		t.Fatalf("p2 late on day 1: %d entries, want 0", n)
	}
	if n := paid("p2", day2); n != 0 {
		t.Fatalf("p2 redelivered on day 2: %d entries, want 0", n)
	}
	// Turned away for its report, not its day: nothing more to take.
	again, err := Credit(ev, rules, State{Wallet: NewWallet(), Claimed: func(c string) bool { return claims["u1\x00"+c] }}, day2)
	if err != nil || len(again.Seen) != 0 {
		t.Fatalf("p2 again on day 2: seen %v, err %v, want none", again.Seen, err)
	}
	if n := paid("p3", day2); n != 1 {
		t.Fatalf("p3 on day 2: %d entries, want 1", n)
	}
	// The report takes the claim, not its play: a play still going at midnight, turned
	// away while "playing" on day 1, is paid when its next report comes on day 2 (review
	// helper 233), and a redelivery is stopped in whatever state the target counts
	// (review helper 237: with states [levelup] it paid the next day).
	playing := Rules{Targets: []ScoreTarget{{ID: "daily", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("2"), Per: PerDay,
		States: []string{"playing", "over"}}}}
	levelup := Rules{Targets: []ScoreTarget{{ID: "daily", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("2"), Per: PerDay,
		States: []string{"levelup"}}}}
	type step struct {
		state, play, score string
		at                 time.Time
		want               int // entries paid
	}
	for _, c := range []struct {
		rules Rules
		steps []step
	}{
		{playing, []step{{"over", "q0", "150", day1, 1}, {"playing", "q2", "150", late, 0}, {"playing", "q2", "150", day2, 0},
			{"over", "q2", "150", day2.Add(2 * time.Minute), 1}}},
		{levelup, []step{{"levelup", "q0", "150", day1, 1}, {"levelup", "q2", "150", late, 0}, {"levelup", "q2", "150", day2, 0},
			{"levelup", "q2", "180", day2.Add(5 * time.Minute), 1}}},
	} {
		cs := claimSet{}
		for _, st := range c.steps {
			ev := scoreEvent(SourceGamezopScores, "g", st.score, st.state, st.play)
			ev.User = "u1"
			if n := len(cs.credit(t, ev, c.rules, st.at)); n != st.want {
				t.Fatalf("states %v: %s %s %s at %v: %d entries, want %d", c.rules.Targets[0].States, st.play, st.state, st.score, st.at, n, st.want)
			}
		}
	}
	// Only Gamezop redelivers a report as a new event: TrackScore's play is its event and
	// GamePush's its signed payload (as its receiver names it), which a redelivery
	// repeats whole, so nothing is taken for them (a claim no one would read).
	for _, src := range []Source{SourceTrackScore, SourceGamePush} {
		cs := claimSet{}
		for i, want := range []int{1, 0} {
			play := ""
			if src == SourceGamePush {
				play = fmt.Sprintf("%064x", i) // the payload's hash
			}
			ev := scoreEvent(src, "g", "150", "", play)
			ev.User, ev.DedupeKey = "u1", fmt.Sprintf("wh_%d", i)
			res, err := Credit(ev, rules, State{Wallet: NewWallet(), Claimed: func(c string) bool { return cs["u1\x00"+c] }}, day1)
			if err != nil || len(res.Entries) != want || len(res.Seen) != 0 {
				t.Fatalf("%s event %d: entries %v, seen %v, err %v", src, i, res.Entries, res.Seen, err)
			}
			cs.credit(t, ev, rules, day1)
		}
	}
	// Under the other pers nothing is taken without a payment.
	for _, per := range []Per{PerOnce, PerPlay} {
		r := Rules{Targets: []ScoreTarget{{ID: "t", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("2"), Per: per}}}
		cs := claimSet{}
		ev := scoreEvent(SourceGamezopScores, "g", "150", "over", "p0")
		ev.User = "u1"
		cs.credit(t, ev, r, day1)
		res, err := Credit(ev, r, State{Wallet: NewWallet(), Claimed: func(c string) bool { return cs["u1\x00"+c] }}, day1)
		if err != nil || len(res.Entries) != 0 || len(res.Seen) != 0 {
			t.Fatalf("per %s, the same play again: entries %v, seen %v, err %v", per, res.Entries, res.Seen, err)
		}
	}
}

// Out-of-order and duplicate score events pay once per (user, target, period).
func TestScoreClaimsPayOncePerPeriod(t *testing.T) {
	rules := Rules{Targets: []ScoreTarget{
		{ID: "once", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("5"), Per: PerOnce},
		{ID: "daily", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("2"), Per: PerDay},
		{ID: "each", Game: "g", MinScore: d("100"), Direction: Higher, Reward: d("1"), Per: PerPlay},
	}}
	day1 := time.Date(2025, 3, 1, 23, 59, 59, 0, time.UTC)
	day2 := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	type delivery struct {
		user  string
		value string
		play  string
		at    time.Time
	}
	// u1: plays p3 (day 2) arrives before p1, p2 (day 1); p2 redelivered twice, p1 again
	// with a later "over" from the same play. u2 scores once, below target, then above.
	deliveries := []delivery{
		{"u1", "150", "p3", day2},
		{"u1", "120", "p1", day1},
		{"u1", "300", "p2", day1},
		{"u1", "300", "p2", day1},
		{"u1", "300", "p2", day2},
		{"u1", "180", "p1", day1},
		{"u2", "99", "q1", day1},
		{"u2", "100", "q2", day1},
		{"u2", "100", "q2", day1},
	}
	claims := claimSet{}
	paid := map[string]decimal.Decimal{} // user → total
	count := map[string]int{}            // user/rule → entries
	for _, dl := range deliveries {
		ev := scoreEvent(SourceGamezopScores, "g", dl.value, "over", dl.play)
		ev.User = dl.user
		for _, e := range claims.credit(t, ev, rules, dl.at) {
			paid[dl.user] = paid[dl.user].Add(e.UserDelta(Pending))
			count[dl.user+"/"+e.Rule]++
		}
	}
	want := map[string]int{
		"u1/target:once": 1, "u1/target:daily": 2, "u1/target:each": 3,
		"u2/target:once": 1, "u2/target:daily": 1, "u2/target:each": 1,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s paid %d times, want %d", k, count[k], n)
		}
	}
	if len(count) != len(want) {
		t.Errorf("paid rules = %v, want %v", count, want)
	}
	// u1: 5 + 2×2 + 3×1 = 12; u2: 5 + 2 + 1 = 8.
	if paid["u1"].String() != "12" || paid["u2"].String() != "8" {
		t.Errorf("paid u1 %s, u2 %s; want 12, 8", paid["u1"], paid["u2"])
	}
}

func TestEvaluateAchievement(t *testing.T) {
	rules := Rules{Achievements: []AchievementRule{
		{Source: SourceGamePush, ID: "685", Version: "a1", Reward: d("100"), Hold: 2 * time.Hour},
		{Source: SourceTrackScore, ID: "first-win", Version: "a1", Reward: d("25")},
		{Source: SourceTrackScore, ID: "nothing", Reward: d("0")},
	}}
	ach := func(src Source, id string) Event {
		return Event{Source: src, Kind: KindAchievement, DedupeKey: "d-" + id, User: "u1", Achievement: &Achievement{ID: id}}
	}
	out, err := Evaluate(ach(SourceGamePush, "685"), rules, DayState{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Entries) != 1 {
		t.Fatalf("entries = %d, want 1", len(out.Entries))
	}
	e := out.Entries[0]
	checkLegs(t, e, []wantLeg{{bucket: Pending, amount: "100"}, {system: AccountAchievements, amount: "-100"}})
	if e.Kind != EntryAchievement || e.Rule != "achievement:gamepush:685" || e.Claim != "achievement:gamepush:685" ||
		e.RuleVersion != "a1" || !e.MaturesAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("entry header %+v", e)
	}

	// The same id from another source matches nothing.
	for _, ev := range []Event{ach(SourceTrackScore, "685"), ach(SourceGamePush, "first-win")} {
		out, err := Evaluate(ev, rules, DayState{}, t0)
		if err != nil || len(out.Entries) != 0 || !strings.Contains(out.Note, "no achievement rule") {
			t.Errorf("%s %s: entries %d, note %q, err %v", ev.Source, ev.Achievement.ID, len(out.Entries), out.Note, err)
		}
	}
	// An id holding an event's name does not share the claim of the rule naming that
	// event for the rest of the id.
	odd := Rules{Achievements: []AchievementRule{{Source: SourceGamePush, ID: "GivePlayerReward:685", Reward: d("1")},
		{Source: SourceGamePush, Event: "GivePlayerReward", ID: "685", Reward: d("1")}}}
	oddEv, named := ach(SourceGamePush, "GivePlayerReward:685"), ach(SourceGamePush, "685")
	oddEv.Type, named.Type = "GivePlayerReward", "GivePlayerReward"
	a, errA := Evaluate(oddEv, odd, DayState{}, t0)
	b, errB := Evaluate(named, odd, DayState{}, t0)
	if errA != nil || errB != nil || len(a.Entries) != 1 || len(b.Entries) != 1 || a.Entries[0].Claim == b.Entries[0].Claim ||
		slices.Contains(a.Entries[0].ClaimedAs, b.Entries[0].Claim) || slices.Contains(b.Entries[0].ClaimedAs, a.Entries[0].Claim) {
		t.Errorf("an id holding an event's name shares a claim: %+v / %+v (%v %v)", a.Entries, b.Entries, errA, errB)
	}
	// A rule that names its event matches that event only, under a claim of its own.
	typed := Rules{Achievements: []AchievementRule{{Source: SourceGamePush, Event: "GivePlayerReward", ID: "685", Reward: d("7")}}}
	for typ, want := range map[string]string{"GivePlayerReward": "achievement-event:gamepush:GivePlayerReward:685", "UnlockPlayerAchievement": ""} {
		ev := ach(SourceGamePush, "685")
		ev.Type = typ
		out, err := Evaluate(ev, typed, DayState{}, t0)
		switch {
		case err != nil:
			t.Fatal(err)
		case want == "" && len(out.Entries) != 0:
			t.Errorf("%s paid the GivePlayerReward rule: %+v", typ, out.Entries)
		case want != "" && (len(out.Entries) != 1 || out.Entries[0].Claim != want):
			t.Errorf("%s: entries %+v, want one with claim %s", typ, out.Entries, want)
		}
	}
	out, err = Evaluate(ach(SourceTrackScore, "nothing"), rules, DayState{}, t0)
	if err != nil || len(out.Entries) != 0 || !strings.Contains(out.Note, "zero reward") {
		t.Errorf("zero reward: entries %d, note %q, err %v", len(out.Entries), out.Note, err)
	}

	// Unlocked twice (two deliveries with different dedupe keys): pays once.
	claims := claimSet{}
	total := 0
	for range 3 {
		total += len(claims.credit(t, ach(SourceTrackScore, "first-win"), rules, t0))
	}
	if total != 1 {
		t.Errorf("achievement paid %d times, want 1", total)
	}
}

func TestEvaluateOther(t *testing.T) {
	out, err := Evaluate(Event{Source: SourceTrackScore, Kind: KindOther, Type: "participant.joined"}, Rules{}, DayState{}, t0)
	if err != nil || len(out.Entries) != 0 || out.Session != nil || !strings.Contains(out.Note, "participant.joined") {
		t.Errorf("other: %+v, %v", out, err)
	}
	if _, err := Evaluate(Event{Kind: "bogus"}, Rules{}, DayState{}, t0); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("unknown kind: err = %v, want ErrInvalidEvent", err)
	}
	if _, err := Evaluate(Event{Kind: KindScore, User: "u"}, Rules{}, DayState{}, t0); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("score without score: err = %v, want ErrInvalidEvent", err)
	}
}

func TestCreditDropsTakenClaims(t *testing.T) {
	rules := Rules{Targets: []ScoreTarget{
		{ID: "a", Game: "g", MinScore: d("1"), Direction: Higher, Reward: d("5"), Per: PerOnce},
		{ID: "b", Game: "g", MinScore: d("1"), Direction: Higher, Reward: d("2"), Per: PerOnce},
	}}
	ev := scoreEvent(SourceTrackScore, "g", "10", "", "")
	start := NewWallet()
	start.Pending, start.LifetimeEarned = d("1"), d("1")

	res, err := Credit(ev, rules, State{Wallet: start, Claimed: func(c string) bool { return c == "target:b" }}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].Rule != "target:a" {
		t.Fatalf("entries %v, want only target:a", res.Entries)
	}
	if !res.Wallet.Pending.Equal(d("6")) || !res.Wallet.LifetimeEarned.Equal(d("6")) || !start.Pending.Equal(d("1")) {
		t.Errorf("wallet after %+v (before %+v): want pending 6, lifetime 6, the input untouched", res.Wallet, start)
	}

	// Every claim taken: nothing pays, the wallet is as it was, and the note says why.
	res, err = Credit(ev, rules, State{Wallet: start, Claimed: func(string) bool { return true }}, t0)
	if err != nil || len(res.Entries) != 0 || !res.Wallet.Pending.Equal(d("1")) || !strings.Contains(res.Note, "already paid") {
		t.Errorf("all claimed: %+v, %v", res, err)
	}
}

func TestAllSourcesCannotBeChanged(t *testing.T) {
	s := AllSources()
	s[0] = "forged"
	if AllSources()[0] != SourceGamezopSPP || Source("forged").Valid() {
		t.Fatalf("the source list changed: %v", AllSources())
	}
}
