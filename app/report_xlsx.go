package app

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"tally/rewards"
)

// The XLSX payout report (format=xlsx). Sheet "payouts" has the CSV's columns, a frozen
// header and a totals row; sheet "summary" the per-property summary of the JSON report.
//
// Cell types are what finance's spreadsheet must not guess: ids and other text are
// text cells (a spreadsheet never turns "00012345", a 20-digit id, "1e5" or
// "2026-12-01" into a number or a date, nor evaluates "=HYPERLINK(…)"; they are stored
// as typed, with no quote prefix as the CSV needs). Amounts are numeric cells when a
// float64 carries them exactly — at most 15 significant digits, which is what Excel
// keeps, so the number written is the number read back — formatted with the wallet's
// scale, or with as many decimals as the amount has when it has more (a pending
// credit at full precision must not be shown rounded). An amount of more significant
// digits is a text cell holding the exact decimal instead: a number a spreadsheet
// would silently change is worse than one it will not add up.
//
// excelize's StreamWriter keeps each sheet's XML in memory up to 16 MiB and moves it to
// a temporary file beyond that, so memory stays flat in the row count; the file is
// zipped straight into w at the end (never into one buffer as excelize's Write does).

// xlsxMaxRows is the rows a sheet holds (Excel's limit); a longer report continues on
// sheets "payouts (2)", "payouts (3)", … each with its header.
const xlsxMaxRows = excelize.TotalRows

// maxExactDigits is how many significant digits a numeric cell may have: what a float64
// holds exactly as decimal text, and what Excel shows and keeps.
const maxExactDigits = 15

type xlsxReport struct {
	a       *App
	f       *excelize.File
	sw      *excelize.StreamWriter
	sheets  int
	row     int // the last row written on the current sheet
	maxRows int
	header  int // styles
	text    int
	count   int
	numbers [19]int // by decimals shown, created when first needed
	vals    []any
	cells   []excelize.Cell
}

func (a *App) writePayoutXLSX(ctx context.Context, w *bufio.Writer, r PayoutRequest, totals *rewards.TotalsBuilder, count func(*rewards.PayoutRow)) error {
	x, err := newXLSXReport(a, xlsxMaxRows)
	if err != nil {
		return err
	}
	defer x.f.Close() // removes the temporary files
	if err := x.startSheet(); err != nil {
		return err
	}
	summary, err := a.reports().PayoutReport(ctx, r.Query, func(row rewards.PayoutRow) error {
		count(&row)
		return x.writeRow(&row)
	})
	if err != nil {
		return err
	}
	sum := totals.Totals()
	if err := x.writeTotals(r.Query.Property, &sum); err != nil {
		return err
	}
	if err := x.writeSummary(summary); err != nil {
		return err
	}
	return x.save(w)
}

func newXLSXReport(a *App, maxRows int) (*xlsxReport, error) {
	f := excelize.NewFile()
	x := &xlsxReport{a: a, f: f, maxRows: maxRows, vals: make([]any, len(payoutColumns)), cells: make([]excelize.Cell, len(payoutColumns))}
	var err error
	style := func(s *excelize.Style) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = f.NewStyle(s)
		return id
	}
	textFormat := 49 // "@": a cell edited later stays text
	x.header = style(&excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: textFormat})
	x.text = style(&excelize.Style{NumFmt: textFormat})
	x.count = style(&excelize.Style{NumFmt: 1}) // "0"
	if err != nil {
		f.Close()
		return nil, err
	}
	return x, nil
}

// numberStyle is the style of a numeric cell showing decimals decimals.
func (x *xlsxReport) numberStyle(decimals int) (int, error) {
	if x.numbers[decimals] == 0 {
		format := "0"
		if decimals > 0 {
			format += "." + strings.Repeat("0", decimals)
		}
		id, err := x.f.NewStyle(&excelize.Style{CustomNumFmt: &format})
		if err != nil {
			return 0, err
		}
		x.numbers[decimals] = id
	}
	return x.numbers[decimals], nil
}

// amountCell is the cell for d in a column shown with at least scale decimals.
func (x *xlsxReport) amountCell(d decimal.Decimal, scale int32) (excelize.Cell, error) {
	v, decimals, ok := xlsxNumber(d)
	if !ok {
		return excelize.Cell{StyleID: x.text, Value: amount(d)}, nil
	}
	style, err := x.numberStyle(max(decimals, int(min(max(scale, 0), 18))))
	return excelize.Cell{StyleID: style, Value: v}, err
}

// xlsxNumber returns d as a value excelize writes as a number, and the decimals d has;
// ok is false when d has more significant digits than a float64 carries exactly.
func xlsxNumber(d decimal.Decimal) (v any, decimals int, ok bool) {
	if d.IsZero() {
		return 0, 0, true
	}
	// The common case, a fraction of at most 15 significant digits, without formatting
	// and parsing text: the coefficient and the power of ten are both exact in a float64,
	// and IEEE division rounds their quotient to the nearest float64, which is what
	// ParseFloat makes of the decimal's text; 15 digits come back from it unchanged.
	if e := d.Exponent(); e < 0 && e >= -rewards.Precision && d.NumDigits() <= 18 {
		c, scale := d.CoefficientInt64(), int(-e)
		for scale > 0 && c%10 == 0 {
			c /= 10
			scale--
		}
		if scale > 0 && c > -1e15 && c < 1e15 {
			return float64(c) / pow10f[scale], scale, true
		}
	}
	s := cell(d) // exact, no trailing zeros
	digits, dot := 0, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dot = i
		case c >= '1' && c <= '9', c == '0' && digits > 0:
			digits++
		}
	}
	if dot < 0 {
		// An integer: its trailing zeros are exact in a float64 as long as the significant
		// digits are few (10^22 is the largest exact power of ten).
		trimmed := strings.TrimRight(strings.TrimPrefix(s, "-"), "0")
		if len(trimmed) > maxExactDigits || len(s) > 22 {
			return nil, 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, 0, false
		}
		return n, 0, true
	}
	// The number formats go up to the ledger's 18 places; anything finer is a text cell.
	if digits > maxExactDigits || len(s)-dot-1 > rewards.Precision {
		return nil, 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || strconv.FormatFloat(f, 'f', -1, 64) != s {
		return nil, 0, false // cannot happen with 15 digits; never write what does not round-trip
	}
	return f, len(s) - dot - 1, true
}

// pow10f are the powers of ten a float64 holds exactly, up to the ledger's precision.
var pow10f = func() (p [rewards.Precision + 1]float64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// startSheet opens the next sheet of rows and writes its frozen header.
func (x *xlsxReport) startSheet() error {
	x.sheets++
	name := "payouts"
	if x.sheets == 1 {
		if err := x.f.SetSheetName("Sheet1", name); err != nil {
			return err
		}
	} else {
		if err := x.sw.Flush(); err != nil {
			return err
		}
		name = fmt.Sprintf("payouts (%d)", x.sheets)
		if _, err := x.f.NewSheet(name); err != nil {
			return err
		}
	}
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		return err
	}
	x.sw, x.row = sw, 0
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	// One width per run of columns of a kind: excelize looks through the column
	// definitions for every cell it writes.
	for i := 0; i < len(payoutColumns); {
		j, width := i+1, 16.0
		if payoutColumns[i].kind == textColumn {
			width = 24
		}
		for j < len(payoutColumns) && (payoutColumns[j].kind == textColumn) == (payoutColumns[i].kind == textColumn) {
			j++
		}
		if err := sw.SetColWidth(i+1, j, width); err != nil {
			return err
		}
		i = j
	}
	for i, c := range payoutColumns {
		x.cells[i] = excelize.Cell{StyleID: x.header, Value: c.name}
	}
	return x.setRow()
}

// setRow writes x.cells as the next row.
func (x *xlsxReport) setRow() error {
	x.row++
	for i := range x.cells {
		x.vals[i] = &x.cells[i] // a pointer: boxing a Cell would allocate for every cell
	}
	return x.sw.SetRow("A"+strconv.Itoa(x.row), x.vals)
}

// fill sets x.cells from row; text columns from text when it is not nil.
func (x *xlsxReport) fill(row *rewards.PayoutRow, scale int32, text func(c *payoutColumn) string) error {
	for i := range payoutColumns {
		c := &payoutColumns[i]
		var err error
		switch c.kind {
		case textColumn:
			x.cells[i] = excelize.Cell{StyleID: x.text, Value: text(c)}
		case countColumn:
			x.cells[i] = excelize.Cell{StyleID: x.count, Value: row.Sessions}
		case usdColumn:
			x.cells[i], err = x.amountCell(row.EstimatedRevenueUSD, 0)
		default:
			x.cells[i], err = x.amountCell(*c.amount(&row.PayoutAmounts), scale)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (x *xlsxReport) writeRow(row *rewards.PayoutRow) error {
	if x.row >= x.maxRows-1 { // keep a row for the totals on the last sheet
		if err := x.startSheet(); err != nil {
			return err
		}
	}
	if err := x.fill(row, x.a.scale(row.Property), func(c *payoutColumn) string { return c.text(x.a, row) }); err != nil {
		return err
	}
	return x.setRow()
}

// writeTotals writes the totals row: "total" under property, the rows counted under
// user, and the currency and scale of the one property reported, if only one was.
func (x *xlsxReport) writeTotals(property string, t *rewards.PayoutTotals) error {
	row := totalsRow(t)
	row.Property = property
	err := x.fill(&row, x.a.scale(property), func(c *payoutColumn) string {
		switch c.name {
		case "property":
			return "total"
		case "user":
			return strconv.FormatInt(t.Rows, 10) + " rows"
		case "currency":
			if property != "" {
				return x.a.currency(property)
			}
		}
		return ""
	})
	if err != nil {
		return err
	}
	for i := range x.cells {
		if x.cells[i].StyleID == x.text && x.cells[i].Value == "" {
			x.cells[i].Value = nil // no empty text cells
		}
	}
	if err := x.setRow(); err != nil {
		return err
	}
	return x.sw.Flush()
}

// summaryColumns are the summary sheet's header: the JSON summary's members, its ledger
// totals flattened after them.
func summaryColumns() []string {
	cols := []string{"property", "currency", "sessions", "estimated_revenue_usd", "gross", "credited_to_users", "withheld", "capped_excess"}
	for _, c := range payoutColumns {
		if c.kind == amountColumn {
			cols = append(cols, "ledger_"+c.name)
		}
	}
	// Appended after the ledger totals, as report columns are: the true-ups' figures.
	return append(cols, "booked_revenue_usd", "released", "shortfall")
}

func (x *xlsxReport) writeSummary(summary []rewards.PropertySummary) error {
	const name = "summary"
	if _, err := x.f.NewSheet(name); err != nil {
		return err
	}
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		return err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	cols := summaryColumns()
	if err := sw.SetColWidth(1, len(cols), 18); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	for i, c := range cols {
		vals[i] = excelize.Cell{StyleID: x.header, Value: c}
	}
	if err := sw.SetRow("A1", vals); err != nil {
		return err
	}
	for i, s := range summary {
		scale := x.a.scale(s.Property)
		vals = vals[:0]
		vals = append(vals, excelize.Cell{StyleID: x.text, Value: s.Property}, excelize.Cell{StyleID: x.text, Value: x.a.currency(s.Property)},
			excelize.Cell{StyleID: x.count, Value: s.Sessions})
		amounts := []struct {
			d     decimal.Decimal
			scale int32
		}{{s.EstimatedRevenueUSD, 0}, {s.Gross, scale}, {s.CreditedToUsers, scale}, {s.Withheld, scale}, {s.CappedExcess, scale}}
		for _, c := range payoutColumns {
			if c.kind == amountColumn {
				amounts = append(amounts, struct {
					d     decimal.Decimal
					scale int32
				}{*c.amount(&s.Ledger), scale})
			}
		}
		amounts = append(amounts, struct {
			d     decimal.Decimal
			scale int32
		}{s.BookedUSD, 0}, struct {
			d     decimal.Decimal
			scale int32
		}{s.Released, scale}, struct {
			d     decimal.Decimal
			scale int32
		}{s.Shortfall, scale})
		for _, am := range amounts {
			cl, err := x.amountCell(am.d, am.scale)
			if err != nil {
				return err
			}
			vals = append(vals, cl)
		}
		if err := sw.SetRow("A"+strconv.Itoa(i+2), vals); err != nil {
			return err
		}
	}
	return sw.Flush()
}

// save zips the workbook straight into w. excelize's own Write first builds the whole
// file in one in-memory buffer, which would grow with the row count; its ZipWriter hook
// lets the archive go to w instead (excelize's buffer stays empty). Deflate at its
// fastest level: the sheet XML is repetitive and still shrinks about tenfold.
func (x *xlsxReport) save(w io.Writer) error {
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.BestSpeed)
		})
		return zw
	})
	return x.f.Write(io.Discard)
}
