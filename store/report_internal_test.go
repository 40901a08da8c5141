package store

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseDecimal(t *testing.T) {
	cases := []struct {
		in    string
		coef  int64
		scale int32
		ok    bool
	}{
		{"0", 0, 0, true}, {"7", 7, 0, true}, {"-7", -7, 0, true}, {"+7", 7, 0, true}, {"12.125", 12125, 3, true},
		{"-0.0001", -1, 4, true}, {"0.000000000000000001", 1, 18, true}, {"1.500", 1500, 3, true}, {"5.", 5, 0, true},
		{".5", 5, 1, true}, {"999999999999999999", 999999999999999999, 0, true},
		{"1000000000000000000", 0, 0, false}, {"1.234567890123456789", 0, 0, false}, {"1.23456789012345678", 123456789012345678, 17, true}, {"1e5", 0, 0, false},
		{"", 0, 0, false}, {"-", 0, 0, false}, {".", 0, 0, false}, {"1.2.3", 0, 0, false}, {"NaN", 0, 0, false},
	}
	for _, c := range cases {
		coef, scale, ok := parseDecimal([]byte(c.in))
		if ok != c.ok || ok && (coef != c.coef || scale != c.scale) {
			t.Errorf("parseDecimal(%q) = %d, %d, %v; want %d, %d, %v", c.in, coef, scale, ok, c.coef, c.scale, c.ok)
		}
	}
}

// exactSum adds amounts of every scale and size exactly: the same as decimal.Add, through
// int64 overflow, scales that do not fit one int64 together, and the decimal fallback.
func TestExactSumMatchesDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 2000; round++ {
		var s exactSum
		want := decimal.Zero
		for i := 0; i < 1+rng.IntN(40); i++ {
			var c int64
			switch rng.IntN(4) {
			case 0:
				c = rng.Int64N(1000)
			case 1:
				c = rng.Int64N(1e15)
			default:
				c = rng.Int64N(1e18)
			}
			if rng.IntN(2) == 0 {
				c = -c
			}
			e := int32(rng.IntN(19))
			if rng.IntN(20) == 0 {
				d := decimal.New(c, 20).Mul(decimal.New(c, -40)) // beyond int64
				s.addDecimal(d)
				want = want.Add(d)
				continue
			}
			s.add(c, e)
			want = want.Add(decimal.New(c, -e))
		}
		if got := s.value(); !got.Equal(want) {
			t.Fatalf("round %d: exactSum %s, decimal %s", round, got, want)
		}
	}
}
