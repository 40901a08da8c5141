package rewards

import (
	"errors"
	"fmt"

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
// fewer than MaxIntegerDigits integer digits.
func CheckAmount(d decimal.Decimal) error {
	if DecimalPlaces(d) > Precision {
		return fmt.Errorf("%w: more than %d decimal places", ErrAmount, Precision)
	}
	if d.Abs().GreaterThanOrEqual(maxAmount) {
		return fmt.Errorf("%w: more than %d integer digits", ErrAmount, MaxIntegerDigits)
	}
	return nil
}

// DecimalPlaces is the number of significant digits after the point ("1.50" has 1).
func DecimalPlaces(d decimal.Decimal) int32 {
	if d.IsZero() {
		return 0
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

// FitsScale reports whether d has no digits beyond scale decimal places.
func FitsScale(d decimal.Decimal, scale int32) bool { return DecimalPlaces(d) <= scale }
