package rewards

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

func TestReleaseMath(t *testing.T) {
	d := decimal.RequireFromString
	for _, c := range []struct {
		name              string
		r, buffer         string
		f                 string
		withheld, release string
		gross, shortfall  string
		credited, cap     string
	}{
		// Booked at or above the estimate releases the whole buffer, never more.
		{name: "r above 1", r: "1.3", buffer: "0.2", f: "1", withheld: "20", release: "20", gross: "100", shortfall: "0"},
		{name: "r exactly 1", r: "1", buffer: "0.2", f: "1", withheld: "20", release: "20", gross: "100", shortfall: "0"},
		// Between 1 − buffer and 1: the covered part of the buffer.
		{name: "r between", r: "0.9", buffer: "0.2", f: "0.5", withheld: "20", release: "10", gross: "100", shortfall: "0"},
		{name: "r exactly 1 − buffer", r: "0.8", buffer: "0.2", f: "0", withheld: "20", release: "0", gross: "100", shortfall: "0"},
		// Below: nothing released, the shortfall recorded.
		{name: "r below", r: "0.7", buffer: "0.2", f: "0", withheld: "20", release: "0", gross: "100", shortfall: "10"},
		{name: "buffer zero releases nothing", r: "1.5", buffer: "0", f: "0", withheld: "0", release: "0", gross: "100", shortfall: "0"},
		{name: "buffer zero, r below 1", r: "0.9", buffer: "0", f: "0", withheld: "0", release: "0", gross: "100", shortfall: "10"},
		// f truncates at 18 places: (0.95 − 0.7) / 0.3 = 0.8333…
		{name: "f truncated", r: "0.95", buffer: "0.3", f: "0.833333333333333333", withheld: "3", release: "2.499999999999999999",
			gross: "10", shortfall: "0"},
		// Tiny amounts at 18 places.
		{name: "one ledger unit withheld", r: "0.9", buffer: "0.2", f: "0.5", withheld: "0.000000000000000001", release: "0",
			gross: "0.000000000000000005", shortfall: "0"},
		{name: "two units withheld", r: "0.9", buffer: "0.2", f: "0.5", withheld: "0.000000000000000002", release: "0.000000000000000001",
			gross: "0.00000000000000001", shortfall: "0"},
		// The per-session cap bounds credit + release.
		{name: "cap leaves room for part", r: "1", buffer: "0.2", f: "1", withheld: "20", release: "5", gross: "100", shortfall: "0",
			credited: "75", cap: "80"},
		{name: "cap exactly reached", r: "1", buffer: "0.2", f: "1", withheld: "20", release: "0", gross: "100", shortfall: "0",
			credited: "80", cap: "80"},
		// A capped session's shortfall is what it was credited beyond r × gross: capped
		// at 500 of a net share of 800, it got less than the booked 600 at r = 0.6…
		{name: "capped below the booked share", r: "0.6", buffer: "0.2", f: "0", withheld: "200", release: "0", gross: "1000",
			shortfall: "0", credited: "500", cap: "500"},
		// … and 200 beyond the booked 300 at r = 0.3 (not the formula's 500).
		{name: "capped above the booked share", r: "0.3", buffer: "0.2", f: "0", withheld: "200", release: "0", gross: "1000",
			shortfall: "200", credited: "500", cap: "500"},
		// The same for a session held by the day's cap (no per-session cap).
		{name: "day-capped", r: "0.5", buffer: "0.2", f: "0", withheld: "20", release: "0", gross: "100", shortfall: "10",
			credited: "60"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if f := ReleaseFraction(d(c.r), d(c.buffer)); !f.Equal(d(c.f)) {
				t.Errorf("f = %s, want %s", f, c.f)
			}
			s := TrueUpSession{Buffer: d(c.buffer), Withheld: d(c.withheld), Gross: d(c.gross), SessionCap: decimal.Zero}
			s.Credited = s.Gross.Sub(s.Withheld)
			if c.credited != "" {
				s.Credited = d(c.credited)
			}
			if c.cap != "" {
				s.SessionCap = d(c.cap)
			}
			s.Capped = s.Gross.Sub(s.Withheld).Sub(s.Credited)
			if rel := SessionRelease(s, d(c.r)); !rel.Equal(d(c.release)) {
				t.Errorf("release = %s, want %s", rel, c.release)
			}
			if sf := SessionShortfall(s, d(c.r)); !sf.Equal(d(c.shortfall)) {
				t.Errorf("shortfall = %s, want %s", sf, c.shortfall)
			}
		})
	}
	if r, ok := Ratio(d("1"), d("3")); !ok || !r.Equal(d("0.333333333333333333")) {
		t.Errorf("Ratio(1, 3) = %s %v", r, ok)
	}
	if _, ok := Ratio(d("1"), decimal.Zero); ok {
		t.Error("Ratio over a zero estimate")
	}
}

// A mid-period rule change: each session releases under the buffer it was credited with.
func TestTrueUpPerSessionBuffer(t *testing.T) {
	d := decimal.RequireFromString
	days := []TrueUpDay{{Day: "2026-11-01", Booked: d("0.9"), HasBooked: true}, {Day: "2026-11-02", Booked: d("0.9"), HasBooked: true}}
	sessions := []TrueUpSession{
		{User: "a", Day: "2026-11-01", RevenueUSD: d("1"), Gross: d("100"), Withheld: d("20"), Credited: d("80"), Buffer: d("0.2")},
		{User: "b", Day: "2026-11-02", RevenueUSD: d("1"), Gross: d("100"), Withheld: d("40"), Credited: d("60"), Buffer: d("0.4")},
		{User: "a", Day: "2026-11-02", RevenueUSD: d("0"), Gross: d("0"), Withheld: d("0"), Credited: d("0"), Buffer: d("0.4")},
	}
	res, err := TrueUp(days, sessions, decimal.Zero)
	if err != nil {
		t.Fatal(err)
	}
	// r = 1.8 / 2 = 0.9; f(0.2) = 0.5, f(0.4) = 0.75.
	if !res.Ratio.Equal(d("0.9")) || !res.Releases["a"].Equal(d("10")) || !res.Releases["b"].Equal(d("30")) ||
		!res.Released.Equal(d("40")) || !res.Shortfall.IsZero() {
		t.Fatalf("result %+v", res)
	}
	if res.Days[0].Sessions != 1 || !res.Days[1].Released.Equal(d("30")) || res.Days[1].Sessions != 2 || !res.Days[1].Estimated.Equal(d("1")) {
		t.Fatalf("days %+v", res.Days)
	}
	// A correction booked after an earlier true-up counts in this period's B.
	if res, _ = TrueUp(days, sessions, d("0.2")); !res.Ratio.Equal(d("1")) || !res.Released.Equal(d("60")) {
		t.Fatalf("with a correction of 0.2: %+v", res)
	}
	days[1].HasBooked = false
	if _, err := TrueUp(days, sessions, decimal.Zero); !errors.Is(err, ErrNotBooked) {
		t.Fatalf("a day without booked revenue: %v", err)
	}
}

// released + still withheld == withheld, to the last digit, for any ratio, buffer and cap.
func TestReleaseNeverExceedsWithheld(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2026))
	for range 20000 {
		buffer := decimal.New(rng.Int64N(101), -2)
		gross := decimal.New(rng.Int64N(1_000_000_000), -int32(rng.IntN(19)))
		withheld := Mul(gross, buffer)
		credited := gross.Sub(withheld)
		s := TrueUpSession{Gross: gross, Withheld: withheld, Credited: credited, Buffer: buffer, SessionCap: decimal.Zero}
		if rng.IntN(4) == 0 {
			s.SessionCap = credited.Add(decimal.New(rng.Int64N(1000), -int32(rng.IntN(19))))
		}
		r := decimal.New(rng.Int64N(2_000_000), -6)
		rel := SessionRelease(s, r)
		kept := withheld.Sub(rel)
		if rel.IsNegative() || kept.IsNegative() || !rel.Add(kept).Equal(withheld) || CheckAmount(rel) != nil {
			t.Fatalf("session %+v at r=%s: released %s, kept %s", s, r, rel, kept)
		}
		if s.SessionCap.IsPositive() && credited.Add(rel).GreaterThan(s.SessionCap) {
			t.Fatalf("release %s takes credit %s past cap %s", rel, credited, s.SessionCap)
		}
		if r.GreaterThanOrEqual(decimal.NewFromInt(1)) && !s.SessionCap.IsPositive() && !rel.Equal(withheld) {
			t.Fatalf("r=%s ≥ 1 released %s of %s", r, rel, withheld)
		}
	}
}

func TestRecommendedBuffer(t *testing.T) {
	d := decimal.RequireFromString
	var days []TrueUpDay
	// 40 days: three bad days (ratios 0.6, 0.7, 0.8) and the rest at 0.95 or better. Two
	// of 40 days (5 %) may fall short, so the 3rd smallest ratio decides: 0.8, so 0.2.
	for i := range 40 {
		b := "0.95"
		switch i {
		case 3:
			b = "0.6"
		case 17:
			b = "0.7"
		case 20:
			b = "1.2"
		case 30:
			b = "0.8"
		}
		days = append(days, TrueUpDay{Day: "d", Estimated: d("1"), Booked: d(b), HasBooked: true})
	}
	days = append(days, TrueUpDay{Day: "no estimate", Booked: d("5"), HasBooked: true}, TrueUpDay{Day: "not booked", Estimated: d("1")})
	if b, ok := RecommendedBuffer(days); !ok || !b.Equal(d("0.2")) {
		t.Fatalf("recommended %s %v, want 0.2", b, ok)
	}
	// 20 days, one at 0.5: that one day is the 5 % allowed to fall short.
	var twenty []TrueUpDay
	for i := range 20 {
		b := "0.9"
		if i == 7 {
			b = "0.5"
		}
		twenty = append(twenty, TrueUpDay{Estimated: d("1"), Booked: d(b), HasBooked: true})
	}
	if b, _ := RecommendedBuffer(twenty); !b.Equal(d("0.1")) {
		t.Fatalf("20 days with one at 0.5: %s, want 0.1", b)
	}
	// Rounded up to 0.01, floored at 0.
	if b, _ := RecommendedBuffer([]TrueUpDay{{Estimated: d("3"), Booked: d("2"), HasBooked: true}}); !b.Equal(d("0.34")) {
		t.Fatalf("1 − 0.666… = %s, want 0.34", b)
	}
	if b, _ := RecommendedBuffer([]TrueUpDay{{Estimated: d("1"), Booked: d("2"), HasBooked: true}}); !b.IsZero() {
		t.Fatalf("r = 2: %s, want 0", b)
	}
	if _, ok := RecommendedBuffer(nil); ok {
		t.Fatal("a recommendation from no days")
	}
}

// A correction down larger than the period's booked revenue counts as no revenue, the
// rest is carried to the next true-up, and a shortfall never exceeds what the user was
// credited.
func TestTrueUpNegativeBooked(t *testing.T) {
	d := decimal.RequireFromString
	days := []TrueUpDay{{Day: "2026-11-01", Booked: d("0.0005"), HasBooked: true}}
	sessions := []TrueUpSession{{User: "a", Day: "2026-11-01", RevenueUSD: d("0.001"), Gross: d("70"), Withheld: d("14"),
		Credited: d("56"), Buffer: d("0.2")}}
	res, err := TrueUp(days, sessions, d("-0.002"))
	if err != nil || !res.Ratio.IsZero() || !res.Released.IsZero() || !res.Shortfall.Equal(d("56")) || !res.Booked.IsZero() ||
		!res.Carried.Equal(d("-0.0015")) {
		t.Fatalf("result %+v %v", res, err)
	}
}
