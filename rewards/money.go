package rewards

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// Precision is the number of decimal places every computed amount keeps. Rule math only
// multiplies, and each computed amount (a gross, a withheld part) is truncated toward zero
// at this precision once (Trunc), so a computation never invents a unit and never needs a
// rounding mode beyond truncation; parts split from it are derived by subtraction.
const Precision = 18

// MaxIntegerDigits bounds stored amounts: Postgres holds money as NUMERIC(38,18), which
// leaves 20 digits before the point. Anything larger is refused before it is stored.
const MaxIntegerDigits = 20

var maxAmount = decimal.New(1, MaxIntegerDigits) // 10^20, exclusive

// MaxSessionRevenueUSD caps one session's estimated revenue (DESIGN §3): the receiver
// refuses more, and the config refuses a revenue rule that could not value a session of
// this much within the ledger's range. Gamezop's estimates are fractions of a cent;
// anything near this is a bug or an attack, and refusing it keeps one postback from
// minting a fortune.
var MaxSessionRevenueUSD = decimal.NewFromInt(1000)

// FitsLedger reports whether d is below the ledger's bound of 10^20 in magnitude.
func FitsLedger(d decimal.Decimal) bool { return d.Abs().LessThan(maxAmount) }

// ErrAmount reports an amount that cannot be represented exactly in the ledger.
var ErrAmount = errors.New("amount out of range")

// Trunc truncates d toward zero at Precision decimal places. It is the only rounding
// applied to computed amounts.
func Trunc(d decimal.Decimal) decimal.Decimal { return d.Truncate(Precision) }

// Mul multiplies two amounts into a computed amount, truncated once.
func Mul(a, b decimal.Decimal) decimal.Decimal { return Trunc(a.Mul(b)) }

// FloorToScale rounds a non-negative amount down to scale decimal places (wallet units);
// used when pending moves to available. The part cut off stays in pending.
func FloorToScale(d decimal.Decimal, scale int32) decimal.Decimal { return d.RoundFloor(scale) }

// CheckAmount reports whether d fits the ledger: at most Precision decimal places and
// at most MaxIntegerDigits integer digits (|d| < 10^20).
func CheckAmount(d decimal.Decimal) error {
	// The common case without formatting or big.Int arithmetic: a coefficient of at most
	// 20 digits and no more than Precision places fits both bounds (|d| < 10^digits ×
	// 10^exp ≤ 10^20).
	if e := d.Exponent(); e <= 0 && e >= -Precision && d.NumDigits() <= MaxIntegerDigits {
		return nil
	}
	if DecimalPlaces(d) > Precision {
		return fmt.Errorf("%w: more than %d decimal places", ErrAmount, Precision)
	}
	if !FitsLedger(d) {
		return fmt.Errorf("%w: more than %d integer digits", ErrAmount, MaxIntegerDigits)
	}
	return nil
}

// DecimalPlaces is the number of significant digits after the point ("1.50" has 1).
func DecimalPlaces(d decimal.Decimal) int32 {
	if d.IsZero() || d.Exponent() >= 0 {
		return 0
	}
	if c, places, ok := small(d); ok {
		for places > 0 && c%10 == 0 {
			c /= 10
			places--
		}
		return int32(places)
	}
	// Normalise away trailing zeros: the exponent of the shortest form.
	s := d.String()
	dot := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return 0
	}
	return int32(len(s) - dot - 1)
}

// small returns |d|'s coefficient and its number of decimal places (-exponent) when the
// coefficient has at most 18 digits, so it fits a uint64 with room, and the exponent is
// between -18 and 0: every amount a wallet holds in practice.
func small(d decimal.Decimal) (coefficient uint64, places int, ok bool) {
	e := d.Exponent()
	if e > 0 || e < -18 || d.NumDigits() > 18 {
		return 0, 0, false
	}
	c := d.CoefficientInt64() // defined: at most 18 digits
	if c < 0 {
		c = -c
	}
	return uint64(c), int(-e), true
}

var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// Format is d.String() under decimal's default settings (trailing zeros trimmed, no
// scientific notation; nothing here changes them), the shortest plain form ("-0.5", "12", "0"), without big.Int's
// formatting for the amounts small covers; it is what the ledger writes and the API
// answers, once per amount, so its cost adds up over a settlement or a busy balance feed.
func Format(d decimal.Decimal) string {
	c, places, ok := small(d)
	if !ok {
		return d.String()
	}
	for places > 0 && c%10 == 0 {
		c /= 10
		places--
	}
	var buf [40]byte
	b := buf[:0]
	if d.Sign() < 0 {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, c/pow10[places], 10)
	if places > 0 {
		b = append(b, '.')
		frac := c % pow10[places]
		for p := places - 1; p > 0 && frac < pow10[p]; p-- {
			b = append(b, '0') // the fraction's leading zeros
		}
		b = strconv.AppendUint(b, frac, 10)
	}
	return string(b)
}

// FitsScale reports whether d has no digits beyond scale decimal places.
func FitsScale(d decimal.Decimal, scale int32) bool { return DecimalPlaces(d) <= scale }
