package app

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestCSVText(t *testing.T) {
	cases := map[string]string{
		"":            "",
		"alice":       "alice",
		"=1+2":        "'=1+2",
		"+44 20":      "'+44 20",
		"-1":          "'-1",
		"@SUM(A1)":    "'@SUM(A1)",
		"\tx":         "'\tx",
		"\rx":         "'\rx",
		"a=b":         "a=b",
		"'quoted":     "'quoted",
		"éclair":      "éclair",
		" =spaced":    " =spaced",
		"\n=newline":  "\n=newline",
		"ab\t=inside": "ab\t=inside",
	}
	for in, want := range cases {
		if got := csvText(in); got != want {
			t.Errorf("csvText(%q) = %q, want %q", in, got, want)
		}
	}
}

// cell must render exactly as decimal.String does.
func TestCellMatchesDecimalString(t *testing.T) {
	for _, s := range []string{"0", "-0", "0.000", "1", "-1", "10", "100.00", "12.5", "-12.50", "0.672", "0.000000000000000001",
		"-0.000000000000000001", "999999999999999999", "123456789012345678.9", "99999999999999999999.999999999999999999",
		"0.1000", "5.6", "0.0001", "1E+3", "-2", "18446744073709551616", "9223372036854775807", "-9223372036854775808",
		"0.9223372036854775807"} {
		d := decimal.RequireFromString(s)
		if got, want := cell(d), d.String(); got != want {
			t.Errorf("cell(%s) = %q, want %q", s, got, want)
		}
	}
	for _, d := range []decimal.Decimal{decimal.New(1200, -2), decimal.New(-5, 0), decimal.New(7, -18), decimal.New(-123, -20), decimal.New(3, 2), {}} {
		if got, want := cell(d), d.String(); got != want {
			t.Errorf("cell(%v) = %q, want %q", d, got, want)
		}
	}
}
