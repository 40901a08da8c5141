package rewards

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// InsufficientFundsError is ErrInsufficientFunds with the figures the caller needs to
// explain it: what the bucket holds and what was asked of it. errors.Is(err,
// ErrInsufficientFunds) matches it.
type InsufficientFundsError struct {
	Bucket    Bucket
	Available decimal.Decimal // what the bucket holds
	Requested decimal.Decimal // what the debit asked for (positive)
}

func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("%s: %s requested, %s %s", ErrInsufficientFunds, e.Requested, e.Available, e.Bucket)
}

// Is makes errors.Is(err, ErrInsufficientFunds) true.
func (e *InsufficientFundsError) Is(target error) bool { return target == ErrInsufficientFunds }
