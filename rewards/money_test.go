package rewards

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// moneySamples are decimals of every shape the fast paths of Format, DecimalPlaces and
// CheckAmount choose between: zero, signs, trailing zeros, coefficients on both sides of
// 18 digits, exponents from -25 to +3, and the bounds of the ledger.
func moneySamples() []decimal.Decimal {
	d := decimal.RequireFromString
	out := []decimal.Decimal{
		decimal.Zero, decimal.New(0, -5), decimal.New(0, 3), d("1"), d("-1"), d("0.5"), d("-0.5"),
		d("1.500000000000000000"), d("-0.000000000000000001"), d("0.000000000000000001"),
		d("0.0000000000000000001"), d("999999999999999999"), d("-999999999999999999"),
		d("0.999999999999999999"), d("99999999999999999999"), d("100000000000000000000"),
		d("99999999999999999999.999999999999999999"), d("123456789012345678.9"),
		d("9223372036854775807"), d("-9223372036854775808"), d("100"), d("1e3"), d("-2.5e2"),
		d("10.10"), d("0.100"), d("7.345000000000000000"),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		digits := 1 + r.IntN(24)
		var sb strings.Builder
		for i := range digits {
			c := byte('0' + r.IntN(10))
			if i > 0 && r.IntN(3) == 0 {
				c = '0' // trailing and inner zeros are common in amounts
			}
			sb.WriteByte(c)
		}
		c, _ := new(big.Int).SetString(sb.String(), 10)
		if r.IntN(2) == 0 {
			c.Neg(c)
		}
		out = append(out, decimal.NewFromBigInt(c, int32(r.IntN(29)-25)))
	}
	return out
}

// Format writes exactly what decimal's String does, for every shape of amount.
func TestFormatIsString(t *testing.T) {
	for _, v := range moneySamples() {
		if got, want := Format(v), v.String(); got != want {
			t.Fatalf("Format(%s × 10^%d) = %q, want %q", v.Coefficient(), v.Exponent(), got, want)
		}
	}
}

// DecimalPlaces and CheckAmount answer what the plain string says: the places after
// the point, and whether the ledger's NUMERIC(38,18) holds the amount.
func TestDecimalPlacesAndCheckAmount(t *testing.T) {
	for _, v := range moneySamples() {
		s := v.String()
		places := int32(0)
		if i := strings.IndexByte(s, '.'); i >= 0 {
			places = int32(len(s) - i - 1)
		}
		if got := DecimalPlaces(v); got != places {
			t.Fatalf("DecimalPlaces(%s × 10^%d) = %d, want %d (%s)", v.Coefficient(), v.Exponent(), got, places, s)
		}
		intDigits := len(strings.TrimPrefix(strings.SplitN(s, ".", 2)[0], "-"))
		fits := places <= Precision && intDigits <= MaxIntegerDigits // |v| < 10^20
		err := CheckAmount(v)
		if fits != (err == nil) || (err != nil && !errors.Is(err, ErrAmount)) {
			t.Fatalf("CheckAmount(%s) = %v, want fits=%v", s, err, fits)
		}
	}
}
