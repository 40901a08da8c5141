package store

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"
)

// decimalColumn scans a NUMERIC (or SQLite's TEXT) into a decimal. On the read pool a
// NUMERIC column arrives as pgx's own numeric (a big.Int and an exponent); a decimal's own
// sql.Scanner would have pgx print that as text and parse it back. Text columns (gorm's
// connections, and the pages that select their amounts as text) are read by
// parseNumeric, which takes most amounts without big.Int: cheaper than pgx's binary
// NUMERIC for a page of 100 rows.
type decimalColumn decimal.NullDecimal

// ScanNumeric is pgtype.NumericScanner.
func (c *decimalColumn) ScanNumeric(n pgtype.Numeric) error {
	switch {
	case !n.Valid:
		*c = decimalColumn{}
	case n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil:
		return fmt.Errorf("store: numeric %v is not a decimal", n)
	default:
		*c = decimalColumn{Decimal: decimal.NewFromBigInt(n.Int, n.Exp), Valid: true}
	}
	return nil
}

// Scan is sql.Scanner (gorm, and NULL columns of other types on the read pool).
func (c *decimalColumn) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return (*decimal.NullDecimal)(c).Scan(src)
	}
	d, err := parseNumeric(s)
	if err != nil {
		return fmt.Errorf("store: numeric %q: %w", s, err)
	}
	*c = decimalColumn{Decimal: d, Valid: true}
	return nil
}

// parseNumeric reads a NUMERIC's text ("-12.340000000000000000") as a decimal of the same
// value. Postgres prints NUMERIC(38,18) with all 18 places, which takes decimal's parser
// past its int64 fast path into big.Int's for every amount; without the trailing zeros of
// the fraction most amounts fit 18 digits, and are read here with no big.Int parsing.
// The decimal has the fewest places that hold the value (decimal compares and prints by
// value, so "1.50" and "1.5" are the same amount). Anything else is decimal's to parse.
func parseNumeric(s string) (decimal.Decimal, error) {
	body, neg := strings.CutPrefix(s, "-")
	whole, frac, dot := strings.Cut(body, ".")
	if whole == "" || (dot && frac == "") || !digitsOnly(whole) || !digitsOnly(frac) {
		return decimal.NewFromString(s)
	}
	whole, frac = strings.TrimLeft(whole, "0"), strings.TrimRight(frac, "0")
	if len(whole)+len(frac) > 18 {
		return decimal.NewFromString(s)
	}
	var c int64
	for _, part := range [2]string{whole, frac} {
		for i := 0; i < len(part); i++ {
			c = c*10 + int64(part[i]-'0')
		}
	}
	if neg {
		c = -c
	}
	return decimal.New(c, -int32(len(frac))), nil
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
