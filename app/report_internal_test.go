package app

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"tally/rewards"
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
		"'quoted":     "''quoted",
		"'=1+2":       "''=1+2",
		"éclair":      "éclair",
		" =spaced":    " =spaced",
		"\n=newline":  "\n=newline",
		"ab\t=inside": "ab\t=inside",
		// Excel splits on ";" where it is the list separator: each ";" starts a cell.
		"p;=1+1;":        "p;'=1+1;",
		"=a;-b;c;@d":     "'=a;'-b;c;'@d",
		"a;\"=HYPERLINK": "a;'\"=HYPERLINK",
		"a;'b":           "a;''b",
		"a;b;":           "a;b;",
		"a; =b":          "a; =b",
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

// An amount is a numeric cell only when a float64 carries its decimal text exactly (15
// significant digits at most, as Excel keeps); the decimals it shows are its own.
func TestXLSXNumber(t *testing.T) {
	cases := []struct {
		in       string
		want     any // nil: a text cell
		decimals int
	}{
		{"0", 0, 0},
		{"56", int64(56), 0},
		{"-2", int64(-2), 0},
		{"0.672", 0.672, 3},
		{"-2.25", -2.25, 2},
		{"0.5", 0.5, 1},
		{"0.000000000000000001", 1e-18, 18},
		{"123456789012345", int64(123456789012345), 0},
		{"12345678901234.5", 12345678901234.5, 1},
		{"1000000000000000000", int64(1000000000000000000), 0},
		{"1234567890123456", nil, 0},
		{"1234567890123.456", nil, 0},
		{"0.123456789012345678", nil, 0},
		{"99999999999999999999.999999999999999999", nil, 0},
		{"100000000000000000000000", nil, 0},
	}
	for _, c := range cases {
		v, decimals, ok := xlsxNumber(decimal.RequireFromString(c.in))
		if c.want == nil {
			if ok {
				t.Errorf("%s: a number %v, want a text cell", c.in, v)
			}
			continue
		}
		if !ok || v != c.want || decimals != c.decimals {
			t.Errorf("%s: %v (%T) with %d decimals, ok %v; want %v (%T) with %d", c.in, v, v, decimals, ok, c.want, c.want, c.decimals)
		}
	}
}

// xlsxNumber's arithmetic shortcut gives the float64 that parsing the amount's exact
// text gives, for amounts of every scale and up to 15 significant digits.
func TestXLSXNumberMatchesParsedText(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		digits := 1 + rng.IntN(15)
		c := rng.Int64N(int64(pow10f[digits]))
		if rng.IntN(2) == 0 {
			c = -c
		}
		d := decimal.New(c, -int32(rng.IntN(19)))
		v, decimals, ok := xlsxNumber(d)
		s := cell(d)
		want, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil {
			t.Fatalf("%s: ok %v, parse error %v", s, ok, err)
		}
		var got float64
		switch v := v.(type) {
		case float64:
			got = v
		case int64:
			got = float64(v)
		case int:
			got = float64(v)
		}
		wantDecimals := 0
		if dot := strings.IndexByte(s, '.'); dot >= 0 {
			wantDecimals = len(s) - dot - 1
		}
		if got != want || decimals != wantDecimals {
			t.Fatalf("%s: %v with %d decimals, want %v with %d", s, v, decimals, want, wantDecimals)
		}
	}
}

// finishXLSX writes x's (empty) summary, saves the workbook and opens it again, closed
// with the test.
func finishXLSX(t *testing.T, x *xlsxReport) *excelize.File {
	t.Helper()
	if err := x.writeSummary(nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := x.save(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// A report longer than a sheet continues on further sheets, each with its header; the
// totals row ends the last one and the summary comes after.
func TestXLSXContinuesOnNewSheets(t *testing.T) {
	a := &App{props: map[string]*Property{"arcade": {ID: "arcade", Currency: "COIN"}}}
	x, err := newXLSXReport(a, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer x.f.Close()
	if err := x.startSheet(); err != nil {
		t.Fatal(err)
	}
	var totals rewards.PayoutTotals
	rows := x.startRows(context.Background()) // the export's path: the sheet written on its own goroutine
	for i := range 5 {
		row := rewards.PayoutRow{Property: "arcade", User: fmt.Sprintf("u%d", i), Sessions: 1}
		totals.Add(row)
		if err := rows.add(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.finish(true); err != nil {
		t.Fatal(err)
	}
	if err := x.writeTotals("", "", &totals); err != nil {
		t.Fatal(err)
	}
	if err := x.sw.Flush(); err != nil {
		t.Fatal(err)
	}
	f := finishXLSX(t, x)
	want := map[string][]string{"payouts": {"user", "u0", "u1"}, "payouts (2)": {"user", "u2", "u3"},
		"payouts (3)": {"user", "u4", "5 rows"}, "summary": {"currency"}}
	if got := f.GetSheetList(); !slices.Equal(got, []string{"payouts", "payouts (2)", "payouts (3)", "summary"}) {
		t.Fatalf("sheets %v", got)
	}
	for sheet, users := range want {
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r[1])
		}
		if !slices.Equal(got, users) {
			t.Errorf("%s: column B %v, want %v", sheet, got, users)
		}
	}
}

// Totals rows per currency, on a sheet with room for one of them: the second goes on a
// new sheet, with its header, and the workbook reads back whole.
func TestXLSXTotalsPerCurrencyContinueOnANewSheet(t *testing.T) {
	a := &App{props: map[string]*Property{"arcade": {ID: "arcade", Currency: "COIN"}, "other": {ID: "other", Currency: "PTS", Scale: 2}}}
	x, err := newXLSXReport(a, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer x.f.Close()
	if err := x.startSheet(); err != nil {
		t.Fatal(err)
	}
	var totals rewards.CurrencyTotalsBuilder
	rows := x.startRows(context.Background())
	for i, p := range []string{"arcade", "arcade", "other", "other"} {
		row := rewards.PayoutRow{Property: p, User: fmt.Sprintf("u%d", i), Sessions: 1}
		totals.Add(a.currency(p), &row)
		if err := rows.add(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.finish(true); err != nil {
		t.Fatal(err)
	}
	sum := totals.Totals()
	for _, c := range sum.ByCurrency {
		if err := x.writeTotals("", c.Currency, &c.PayoutTotals); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.sw.Flush(); err != nil {
		t.Fatal(err)
	}
	f := finishXLSX(t, x)
	want := map[string][]string{"payouts": {"user|currency", "u0|COIN", "u1|COIN"}, "payouts (2)": {"user|currency", "u2|PTS", "u3|PTS", "2 rows|COIN"},
		"payouts (3)": {"user|currency", "2 rows|PTS"}}
	for sheet, lines := range want {
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r[1]+"|"+r[2])
		}
		if !slices.Equal(got, lines) {
			t.Errorf("%s: columns B and C %v, want %v", sheet, got, lines)
		}
	}
}

// appendCSVField writes a field exactly as encoding/csv does, so the CSV's bytes do not
// change with the faster writer.
func TestAppendCSVFieldMatchesEncodingCSV(t *testing.T) {
	fields := []string{"", "a", "a,b", `say "hi"`, "line\nbreak", "cr\rx", "crlf\r\nx", " lead", "\tlead", "trail ", `\.`, `\.x`,
		"'=1+2", "éclair", "\u00a0nbsp", "\u2003emspace", `"`, `""`, ",", "emoji🎮", "a\"b,c\nd"}
	for _, f := range fields {
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		_ = w.Write([]string{f, f})
		w.Flush()
		got := append(appendCSVField(nil, f), ',')
		got = append(appendCSVField(got, f), '\n')
		if string(got) != want.String() {
			t.Errorf("%q: %q, encoding/csv writes %q", f, got, want.String())
		}
	}
}

// The XLSX's zip entries, deflated in chunks on several goroutines, read back as what
// was written: an entry of several chunks written in pieces that straddle the chunks'
// ends, one of exactly a chunk, a small one and an empty one, in one archive whose
// chunks are reused from entry to entry.
func TestParallelDeflateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3*deflateChunkSize+12345)
	for i := range big {
		if i%8 == 0 {
			big[i] = byte(rng.IntN(256)) // some of it does not compress
		} else {
			big[i] = "<c r=\"A1\" s=\"3\"><v>0</v></c>"[i%28]
		}
	}
	entries := []struct {
		name  string
		data  []byte
		piece int
	}{
		{"big", big, 7919},
		{"one-chunk", big[:deflateChunkSize], deflateChunkSize},
		{"small", []byte("<sheet/>"), 3},
		{"empty", nil, 1},
	}
	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	chunks := make(chan *deflateChunk, deflateInFlight())
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return &parallelDeflate{out: out, chunks: chunks}, nil
	})
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		for p := e.data; len(p) > 0; {
			n := min(e.piece, len(p))
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive.Bytes()), int64(archive.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(entries) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(entries))
	}
	for i, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc) // checks the CRC too
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if f.Name != entries[i].name || !bytes.Equal(got, entries[i].data) {
			t.Fatalf("entry %d: %s, %d bytes, want %s, %d bytes as written", i, f.Name, len(got), entries[i].name, len(entries[i].data))
		}
	}
	if written := len(big) + deflateChunkSize; archive.Len() > written/2 {
		t.Fatalf("archive of %d bytes for %d written: not compressed", archive.Len(), written)
	}
}

// A totals row of a property no longer configured names it (its currency is unknown);
// a currency's totals row names the currency.
func TestXLSXTotalsRowsName(t *testing.T) {
	a := &App{props: map[string]*Property{"other": {ID: "other", Currency: "PTS", Scale: 2}}}
	x, err := newXLSXReport(a, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer x.f.Close()
	if err := x.startSheet(); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		group string
		rows  int64
	}{{"PTS", 1}, {a.totalsGroup("gone"), 2}} {
		currency, property := totalsGroupOf(g.group)
		tt := rewards.PayoutTotals{Rows: g.rows}
		if err := x.writeTotals(property, currency, &tt); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.sw.Flush(); err != nil {
		t.Fatal(err)
	}
	f := finishXLSX(t, x)
	rows, err := f.GetRows("payouts")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[0]+"|"+r[1]+"|"+r[2])
	}
	if want := []string{"total|1 rows|PTS", "total|2 rows of gone|"}; !slices.Equal(got, want) {
		t.Fatalf("totals rows %q, want %q", got, want)
	}
}
