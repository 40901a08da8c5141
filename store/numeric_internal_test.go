package store

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// parseNumeric reads every text Postgres or SQLite hands back for an amount as the same
// value decimal's own parser reads, and refuses what that parser refuses.
func TestParseNumeric(t *testing.T) {
	texts := []string{
		"0", "-0", "0.000000000000000000", "1", "-1", "12.340000000000000000", "-12.340000000000000000",
		"0.000000000000000001", "-0.000000000000000001", "99999999999999999999.999999999999999999",
		"-99999999999999999999.999999999999999999", "999999999999999999", "9999999999999999999",
		"123456789.123456789000000000", "0012.5", "1.5", "100", "100.000000000000000000",
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var sb strings.Builder
		for range 1 + r.IntN(38) {
			sb.WriteByte(byte('0' + r.IntN(10)))
		}
		c, _ := new(big.Int).SetString(sb.String(), 10)
		if r.IntN(2) == 0 {
			c.Neg(c)
		}
		d := decimal.NewFromBigInt(c, -int32(r.IntN(19)))
		texts = append(texts, d.StringFixed(18), d.String()) // NUMERIC(38,18)'s text, and SQLite's TEXT
	}
	for _, s := range texts {
		got, err := parseNumeric(s)
		if err != nil {
			t.Fatalf("parseNumeric(%q): %v", s, err)
		}
		if want := decimal.RequireFromString(s); !got.Equal(want) {
			t.Fatalf("parseNumeric(%q) = %s, want %s", s, got, want)
		}
	}
	for _, s := range []string{"", "-", ".", "1.", "1.2.3", "1,5", "abc", "1e", "- 1", "--1"} {
		_, err := parseNumeric(s)
		_, want := decimal.NewFromString(s)
		if (err == nil) != (want == nil) {
			t.Errorf("parseNumeric(%q): error %v, decimal's parser: %v", s, err, want)
		}
	}
}
