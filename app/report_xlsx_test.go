package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// TestPayoutReportBOM: CSV keeps its bytes by default; bom=true puts the UTF-8
// byte-order mark before the very same bytes, and nothing else changes.
func TestPayoutReportBOM(t *testing.T) {
	e := newReportEnv(t, store.SQLite)
	goldenScenario(e)
	e.clock.Set(nov(7))
	e.ingest("arcade", achievementEvent("Émile🎮", "685"))
	plain := e.report("from=2026-11-01&to=2026-12-01")
	with := e.report("from=2026-11-01&to=2026-12-01&bom=true")
	off := e.report("from=2026-11-01&to=2026-12-01&bom=false")
	if plain.Code != 200 || with.Code != 200 || off.Code != 200 {
		t.Fatalf("status %d %d %d", plain.Code, with.Code, off.Code)
	}
	if !strings.HasPrefix(plain.Raw, "property,user,") || off.Raw != plain.Raw {
		t.Fatalf("without bom the CSV starts %q", plain.Raw[:min(20, len(plain.Raw))])
	}
	if with.Raw != "\xEF\xBB\xBF"+plain.Raw {
		t.Fatalf("with bom=true: %q…, want the BOM then the same bytes", with.Raw[:min(20, len(with.Raw))])
	}
	if !strings.Contains(with.Raw, "\narcade,Émile🎮,COIN,") || with.Header.Get("Content-Type") != plain.Header.Get("Content-Type") {
		t.Fatalf("non-ASCII id or content type changed:\n%s\n%v", with.Raw, with.Header)
	}
}

// hostileIDs are user ids a spreadsheet would turn into numbers, dates, formulas or, for
// _xHHHH_, the character HHHH.
var hostileIDs = []string{"00012345", "12345678901234567890", "1e5", "2026-12-01", evilUser, "-1", " padded ", "TRUE", "bob_x0041_", "_x0041__x0042_", "_x005F_x0041_", "u_x005F_x0041_x0042_"}

// TestPayoutReportXLSX reads the XLSX report back with excelize, on both databases: the
// sheets, the frozen header, ids as text cells exactly as held, amounts as numeric cells
// equal to the JSON report's with the wallet's scale as their format (more decimals
// when the amount has them), an amount a float64 cannot hold as exact text, the totals
// row and the summary sheet.
func TestPayoutReportXLSX(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newReportEnv(t, d)
		goldenScenario(e)
		e.clock.Set(nov(7))
		for _, u := range hostileIDs {
			if u != evilUser && u != "-1" { // the golden scenario has them already
				e.ingest("arcade", achievementEvent(u, "685"))
			}
		}
		// 19 significant digits: no float64 holds it.
		e.adjust("arcade", "00012345", "0.123456789012345678", rewards.Pending)

		x := e.report("from=2026-11-01&to=2026-12-01&format=xlsx")
		if x.Code != 200 || x.Header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" ||
			x.Header.Get("Content-Disposition") != `attachment; filename="payouts-2026-11-01-2026-12-01.xlsx"` {
			t.Fatalf("xlsx: %d %v", x.Code, x.Header)
		}
		f, err := excelize.OpenReader(bytes.NewReader([]byte(x.Raw)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got := f.GetSheetList(); len(got) != 2 || got[0] != "payouts" || got[1] != "summary" {
			t.Fatalf("sheets %v", got)
		}
		if p, err := f.GetPanes("payouts"); err != nil || !p.Freeze || p.YSplit != 1 {
			t.Fatalf("header not frozen: %+v %v", p, err)
		}

		var r reportJSON
		dc := json.NewDecoder(strings.NewReader(e.report("from=2026-11-01&to=2026-12-01&format=json").Raw))
		dc.UseNumber()
		if err := dc.Decode(&r); err != nil {
			t.Fatal(err)
		}
		rows, err := f.GetRows("payouts", excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		header := rows[0]
		if strings.Join(header, ",") != "property,user,currency,opening_available,credited_revenue,credited_targets,credited_achievements,"+
			"adjustments,settled,redeemed,closing_available,closing_pending,sessions,estimated_revenue_usd,reversed,credited_release,credited_prizes" {
			t.Fatalf("header %v", header)
		}
		// COIN and PTS: a totals row each, none across them.
		if len(r.ByCurrency) != 2 || len(rows) != len(r.Rows)+1+len(r.ByCurrency) {
			t.Fatalf("%d sheet rows for %d report rows (+ header and a totals row per currency of %d)", len(rows), len(r.Rows), len(r.ByCurrency))
		}
		ids := map[string]bool{}
		for i, want := range r.Rows {
			for j, col := range header {
				ref, _ := excelize.CoordinatesToCellName(j+1, i+2)
				typ, err := f.GetCellType("payouts", ref)
				if err != nil {
					t.Fatal(err)
				}
				got := cellValue(t, f, "payouts", ref)
				var v any
				_ = json.Unmarshal(want[col], &v)
				wantText := fmt.Sprint(v)
				switch {
				case j < 3: // text, exactly as held
					if typ != excelize.CellTypeInlineString || got != wantText {
						t.Errorf("%s (%s): type %v value %q, want the text %q", ref, col, typ, got, wantText)
					}
					if formula, _ := f.GetCellFormula("payouts", ref); formula != "" {
						t.Errorf("%s is a formula: %q", ref, formula)
					}
					if col == "user" {
						ids[got] = true
					}
				case col == "sessions":
					if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber || got != wantText {
						t.Errorf("%s sessions: type %v value %q, want the number %s", ref, typ, got, wantText)
					}
				default:
					exact := dec(wantText)
					if len(strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(exact.String()), "0")) > 15 {
						if typ != excelize.CellTypeInlineString || got != exact.String() {
							t.Errorf("%s %s = %s: type %v value %q, want the exact decimal as text", ref, col, exact, typ, got)
						}
						continue
					}
					if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
						t.Errorf("%s %s = %s: type %v, want a number", ref, col, exact, typ)
					}
					n, err := strconv.ParseFloat(got, 64)
					if err != nil || strconv.FormatFloat(n, 'f', -1, 64) != exact.String() {
						t.Errorf("%s %s: the number %q reads back as %v, want exactly %s", ref, col, got, n, exact)
					}
				}
			}
		}
		for _, u := range append(hostileIDs, "u-a") {
			if !ids[u] {
				t.Errorf("no user cell holds %q exactly; users: %v", u, ids)
			}
		}

		// Number formats: the wallet's scale, or the amount's own decimals when it has more.
		formats := map[string]string{}
		for i, want := range r.Rows {
			var user, prop string
			_ = json.Unmarshal(want["user"], &user)
			_ = json.Unmarshal(want["property"], &prop)
			for j, col := range header {
				ref, _ := excelize.CoordinatesToCellName(j+1, i+2)
				formats[prop+"/"+user+"/"+col] = numberFormat(t, f, "payouts", ref)
			}
		}
		for key, want := range map[string]string{
			"arcade/u-a/settled":          "0",     // COIN, scale 0
			"arcade/u-a/redeemed":         "0",     // 27
			"arcade/u-a/reversed":         "0",     // 20
			"arcade/u-a/credited_revenue": "0.000", // 0.672 COIN: never shown rounded
			"other/@me/settled":           "0.00",  // PTS, scale 2: 0.67
			"other/@me/redeemed":          "0.00",  // 0.5 shown 0.50
			"other/@me/closing_pending":   "0.000", // 0.002
			"arcade/u-a/sessions":         "0",
		} {
			if formats[key] != want {
				t.Errorf("%s: number format %q, want %q", key, formats[key], want)
			}
		}

		// The totals rows, one per currency, as the JSON's totals_by_currency.
		for k, bc := range r.ByCurrency {
			last := len(r.Rows) + 2 + k
			cellOf := func(col string) string {
				for j, c := range header {
					if c == col {
						ref, _ := excelize.CoordinatesToCellName(j+1, last)
						return cellValue(t, f, "payouts", ref)
					}
				}
				t.Fatalf("no column %s", col)
				return ""
			}
			if cellOf("property") != "total" || cellOf("user") != string(bc["rows"])+" rows" || cellOf("currency") != jsonString(t, bc, "currency") {
				t.Errorf("totals row: %v", rows[last-1])
			}
			for _, col := range append(amountColumns, "sessions", "estimated_revenue_usd") {
				var v any
				_ = json.Unmarshal(bc[col], &v)
				if got := cellOf(col); !dec(got).Equal(dec(fmt.Sprint(v))) {
					t.Errorf("totals %s %s: %s, JSON says %v", jsonString(t, bc, "currency"), col, got, v)
				}
			}
		}

		// The summary sheet: the JSON's summary, figure for figure.
		sum, err := f.GetRows("summary", excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum) != len(r.Summary)+1 {
			t.Fatalf("summary sheet has %d rows for %d properties", len(sum), len(r.Summary))
		}
		for i, s := range r.Summary {
			got := map[string]string{}
			for j, col := range sum[0] {
				if j < len(sum[i+1]) {
					got[col] = sum[i+1][j]
				}
			}
			if got["property"] != s.Property || got["currency"] != s.Currency || got["sessions"] != fmt.Sprint(s.Sessions) ||
				!dec(got["gross"]).Equal(dec(s.Gross)) || !dec(got["credited_to_users"]).Equal(dec(s.CreditedToUsers)) ||
				!dec(got["withheld"]).Equal(dec(s.Withheld)) || !dec(got["capped_excess"]).Equal(dec(s.CappedExcess)) {
				t.Errorf("summary %s: %v, JSON %+v", s.Property, got, s)
			}
			for _, col := range amountColumns {
				if !dec(got["ledger_"+col]).Equal(jsonDecimal(t, s.Ledger, col)) {
					t.Errorf("summary %s ledger_%s: %s, JSON %s", s.Property, col, got["ledger_"+col], s.Ledger[col])
				}
			}
		}
	})
}

func cellValue(t *testing.T, f *excelize.File, sheet, ref string) string {
	t.Helper()
	v, err := f.GetCellValue(sheet, ref, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// numberFormat is the custom number format of a cell ("" for none).
func numberFormat(t *testing.T, f *excelize.File, sheet, ref string) string {
	t.Helper()
	id, err := f.GetCellStyle(sheet, ref)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomNumFmt != nil {
		return *st.CustomNumFmt
	}
	if st.NumFmt == 1 {
		return "0"
	}
	return fmt.Sprintf("builtin %d", st.NumFmt)
}

// syntheticReports streams n rows made up on the spot, with amounts of every shape.
type syntheticReports struct {
	app.Store
	rows    int
	onRow   func(i int)
	summary []rewards.PropertySummary
}

func (s syntheticReports) PayoutRows(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	amounts := []decimal.Decimal{decimal.Zero, dec("56"), dec("0.672"), dec("-2"), dec("0.123456789012345678")}
	for i := 0; i < s.rows; i++ {
		r := rewards.PayoutRow{Property: "arcade", User: fmt.Sprintf("user-%08d-%016x", i, uint64(i)*0x9E3779B97F4A7C15), Sessions: int64(i % 3),
			EstimatedRevenueUSD: dec("0.000012")}
		r.CreditedRevenue, r.ClosingPending, r.Settled = amounts[i%5], amounts[(i+1)%5], amounts[(i+2)%5]
		if s.onRow != nil {
			s.onRow(i)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s syntheticReports) PayoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) ([]rewards.PropertySummary, error) {
	return s.summary, s.PayoutRows(ctx, q, fn)
}

// TestPayoutReportMemoryFlat: the live heap while writing a report of 100,000 rows is
// no larger than while writing one of 25,000, in every format (a writer that kept its
// rows, or an XLSX built in memory, would hold about four times as much).
func TestPayoutReportMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 250,000 rows")
	}
	db := storetest.Open(t, store.SQLite, nil)
	for _, format := range []string{"csv", "json", "xlsx"} {
		growth := map[int]uint64{}
		for _, n := range []int{25000, 100000} {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base, peak := ms.HeapAlloc, ms.HeapAlloc
			sample := func(i int) {
				if i%2500 == 0 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}
			a := app.New(syntheticReports{Store: db, rows: n, onRow: sample}, app.Options{Properties: []app.Property{arcade()}})
			r, err := a.ParsePayoutRequest("2026-11-01", "2026-12-01", "", format, "")
			if err != nil {
				t.Fatal(err)
			}
			out := countingDiscard{onWrite: func() { sample(0) }} // the XLSX is zipped out at the end
			totals, err := a.WritePayoutReport(context.Background(), &out, r, nil)
			a.Close()
			if err != nil || totals.Rows != int64(n) || out.n == 0 {
				t.Fatalf("%s, %d rows: %v, %d rows, %d bytes", format, n, err, totals.Rows, out.n)
			}
			growth[n] = peak - base
		}
		t.Logf("%s: live heap grew by %d KiB for 25,000 rows, %d KiB for 100,000", format, growth[25000]>>10, growth[100000]>>10)
		if growth[100000] > growth[25000]+2<<20 {
			t.Errorf("%s: live heap grew by %d KiB for 100,000 rows against %d KiB for 25,000: memory grows with the rows",
				format, growth[100000]>>10, growth[25000]>>10)
		}
	}
}

// countingDiscard counts what it is given and keeps none of it.
type countingDiscard struct {
	n       int64
	onWrite func()
}

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.onWrite()
	return len(p), nil
}
