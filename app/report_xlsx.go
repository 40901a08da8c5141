package app

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"github.com/klauspost/compress/flate"
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
	shown   []int8 // decimals shown, by cell of cells (see fill)
}

func (a *App) writePayoutXLSX(ctx context.Context, w *bufio.Writer, r PayoutRequest, totals *rewards.CurrencyTotalsBuilder, count func(*rewards.PayoutRow)) error {
	x, err := newXLSXReport(a, xlsxMaxRows)
	if err != nil {
		return err
	}
	defer x.f.Close() // removes the temporary files
	if err := x.startSheet(); err != nil {
		return err
	}
	rows := x.startRows(ctx)
	defer rows.finish(false) // stops the writer should the stream panic
	summary, err := a.reports().PayoutReport(ctx, r.Query, func(row rewards.PayoutRow) error {
		count(&row)
		return rows.add(&row)
	})
	if err := rows.finish(err == nil); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	sum := totals.Totals()
	if !sum.Mixed() {
		currency, property := "", r.Query.Property
		if len(sum.ByCurrency) == 1 {
			c, p := totalsGroupOf(sum.ByCurrency[0].Currency)
			currency = c
			if property == "" {
				property = p
			}
		}
		if err := x.writeTotals(property, currency, &sum.PayoutTotals); err != nil {
			return err
		}
	}
	// Rows in several currencies: a totals row per currency, never one across them.
	for _, c := range sum.ByCurrency {
		if !sum.Mixed() {
			break
		}
		currency, property := totalsGroupOf(c.Currency)
		if err := x.writeTotals(property, currency, &c.PayoutTotals); err != nil {
			return err
		}
	}
	if err := x.sw.Flush(); err != nil {
		return err
	}
	if err := x.writeSummary(summary); err != nil {
		return err
	}
	return x.save(w)
}

func newXLSXReport(a *App, maxRows int) (*xlsxReport, error) {
	f := excelize.NewFile()
	x := &xlsxReport{a: a, f: f, maxRows: maxRows, vals: make([]any, len(payoutColumns)),
		cells: make([]excelize.Cell, len(payoutColumns)), shown: make([]int8, len(payoutColumns))}
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
	c, shown := x.amountValue(d, scale)
	if shown < 0 {
		return c, nil
	}
	var err error
	c.StyleID, err = x.numberStyle(int(shown))
	return c, err
}

// amountValue is amountCell without the style of a number, which only the goroutine
// writing the sheet may create: shown is the decimals the number is shown with, or -1
// for a text cell (its style set).
func (x *xlsxReport) amountValue(d decimal.Decimal, scale int32) (c excelize.Cell, shown int8) {
	v, decimals, ok := xlsxNumber(d)
	if !ok {
		return excelize.Cell{StyleID: x.text, Value: amount(d)}, -1
	}
	return excelize.Cell{Value: v}, int8(max(decimals, int(min(max(scale, 0), 18))))
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
	header := make([]excelize.Cell, len(payoutColumns))
	for i, c := range payoutColumns {
		header[i] = excelize.Cell{StyleID: x.header, Value: c.name}
	}
	return x.setRow(header)
}

// setRow writes cells as the next row.
func (x *xlsxReport) setRow(cells []excelize.Cell) error {
	x.row++
	for i := range cells {
		x.vals[i] = &cells[i] // a pointer: boxing a Cell would allocate for every cell
	}
	return x.sw.SetRow("A"+strconv.Itoa(x.row), x.vals)
}

// fill sets cells from row, text columns from text, and shown to the decimals each
// number is shown with (-1 for the other cells); styleNumbers then gives the numbers
// their style. fill touches nothing of x's but its style ids, so it can run beside
// the goroutine writing the sheet.
func (x *xlsxReport) fill(cells []excelize.Cell, shown []int8, row *rewards.PayoutRow, scale int32, text func(c *payoutColumn) string) {
	for i := range payoutColumns {
		c := &payoutColumns[i]
		shown[i] = -1
		switch c.kind {
		case textColumn:
			cells[i] = excelize.Cell{StyleID: x.text, Value: text(c)}
		case countColumn:
			cells[i] = excelize.Cell{StyleID: x.count, Value: row.Sessions}
		case usdColumn:
			cells[i], shown[i] = x.amountValue(row.EstimatedRevenueUSD, 0)
		default:
			cells[i], shown[i] = x.amountValue(*c.amount(&row.PayoutAmounts), scale)
		}
	}
}

// styleNumbers sets the style of each number of cells from shown (see fill).
func (x *xlsxReport) styleNumbers(cells []excelize.Cell, shown []int8) error {
	for i, d := range shown {
		if d >= 0 {
			var err error
			if cells[i].StyleID, err = x.numberStyle(int(d)); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillRow is fill for a row of the report.
func (x *xlsxReport) fillRow(cells []excelize.Cell, shown []int8, row *rewards.PayoutRow) {
	x.fill(cells, shown, row, x.a.scale(row.Property), func(c *payoutColumn) string { return c.text(x.a, row) })
}

// writeCells writes a row filled by fill, on a new sheet when this one is full.
func (x *xlsxReport) writeCells(cells []excelize.Cell, shown []int8) error {
	if x.row >= x.maxRows-1 { // keep a row for the totals on the last sheet
		if err := x.startSheet(); err != nil {
			return err
		}
	}
	if err := x.styleNumbers(cells, shown); err != nil {
		return err
	}
	return x.setRow(cells)
}

// writeTotals writes a totals row: "total" under property, the rows counted under
// user, and the currency and scale of the one property reported, if only one was, or
// the currency of the rows it totals (one row per currency when they are in several).
// It goes on a new sheet when this one is full; the caller flushes the sheet after the
// last one.
func (x *xlsxReport) writeTotals(property, currency string, t *rewards.PayoutTotals) error {
	if x.row >= x.maxRows {
		if err := x.startSheet(); err != nil {
			return err
		}
	}
	row := totalsRow(t)
	row.Property = property
	scale := x.a.currencyScale(currency)
	rows := strconv.FormatInt(t.Rows, 10) + " rows"
	switch {
	case property != "" && x.a.currency(property) == "":
		rows += " of " + property // no longer configured: its currency is unknown
		scale = 0
	case property != "":
		currency, scale = x.a.currency(property), x.a.scale(property)
	}
	x.fill(x.cells, x.shown, &row, scale, func(c *payoutColumn) string {
		switch c.name {
		case "property":
			return "total"
		case "user":
			return rows
		case "currency":
			return currency
		}
		return ""
	})
	if err := x.styleNumbers(x.cells, x.shown); err != nil {
		return err
	}
	for i := range x.cells {
		if x.cells[i].StyleID == x.text && x.cells[i].Value == "" {
			x.cells[i].Value = nil // no empty text cells
		}
	}
	return x.setRow(x.cells)
}

// The rows are written to the sheet on a goroutine of their own while the caller's
// goroutine reads the database stream and makes each row's cells (fill): excelize's
// SetRow is most of an export's CPU, and the database and fill no longer wait for it,
// nor it for them (on two cores the export benchmark went from about 90,000 to 120,000
// rows/s). Rows go over in xlsxBatches batches of xlsxBatchRows, made once and reused,
// so memory stays flat. They are few and small: what is queued is what the sheet
// goroutine may still allocate for while the caller is stopped (as
// TestPayoutReportMemoryFlat stops it to measure the heap); four batches of 128 or 256
// rows were no faster, and made that measure wander by over 2 MiB under -race on a
// busy machine. Until finish has returned only that goroutine calls into excelize,
// which is why fill leaves the numbers' styles to it.
const (
	xlsxBatchRows = 64
	xlsxBatches   = 3
)

// xlsxBatch is rows filled by fill, len(payoutColumns) cells each.
type xlsxBatch struct {
	cells []excelize.Cell
	shown []int8
}

// xlsxRows hands the rows the caller reads to the goroutine writing the sheet.
type xlsxRows struct {
	ctx    context.Context
	x      *xlsxReport
	batch  *xlsxBatch      // being filled
	full   chan *xlsxBatch // to the writer
	free   chan *xlsxBatch // written, for reuse
	stop   chan struct{}   // closed by finish when the rows are not all there
	failed chan struct{}   // closed by the writer when it fails (err set)
	done   chan struct{}   // closed when the writer has returned
	err    error           // the writer's
	ended  bool            // finish has run
}

// startRows starts the goroutine writing the rows to the sheet; finish must follow.
func (x *xlsxReport) startRows(ctx context.Context) *xlsxRows {
	r := &xlsxRows{ctx: ctx, x: x, full: make(chan *xlsxBatch, xlsxBatches), free: make(chan *xlsxBatch, xlsxBatches),
		stop: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{})}
	n := len(payoutColumns) * xlsxBatchRows
	for range xlsxBatches {
		r.free <- &xlsxBatch{cells: make([]excelize.Cell, 0, n), shown: make([]int8, 0, n)}
	}
	go r.write()
	return r
}

func (r *xlsxRows) write() {
	defer close(r.done)
	defer func() {
		if p := recover(); p != nil { // as on the request's goroutine: an error, not a crash
			r.err = fmt.Errorf("xlsx: writing the rows: panic: %v", p)
			close(r.failed)
		}
	}()
	n := len(payoutColumns)
	for b := range r.full {
		select {
		case <-r.stop:
			return
		default:
		}
		for i := 0; i < len(b.shown); i += n {
			if err := r.x.writeCells(b.cells[i:i+n], b.shown[i:i+n]); err != nil {
				r.err = err
				close(r.failed)
				return
			}
		}
		r.free <- b // never blocks: free holds every batch
	}
}

// add fills row's cells into the batch, and hands the batch over when it is full.
func (r *xlsxRows) add(row *rewards.PayoutRow) error {
	b := r.batch
	if b == nil {
		select {
		case b = <-r.free:
		case <-r.failed:
			return r.err
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
		b.cells, b.shown = b.cells[:0], b.shown[:0]
		r.batch = b
	}
	i, n := len(b.shown), len(payoutColumns)
	b.cells, b.shown = b.cells[:i+n], b.shown[:i+n]
	r.x.fillRow(b.cells[i:], b.shown[i:], row)
	if len(b.shown) < cap(b.shown) {
		return nil
	}
	return r.send()
}

func (r *xlsxRows) send() error {
	select {
	case r.full <- r.batch:
		r.batch = nil
		return nil
	case <-r.failed:
		return r.err
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// finish hands over the last rows when all are there (complete), else drops what is
// not written yet, and returns once the writer has: with its error, if it failed.
// Once it has run, it does nothing.
func (r *xlsxRows) finish(complete bool) error {
	if r.ended {
		return r.err
	}
	r.ended = true
	var err error
	if complete && r.batch != nil && len(r.batch.shown) > 0 {
		err = r.send()
	}
	if !complete || err != nil {
		close(r.stop)
	}
	close(r.full)
	<-r.done
	if r.err != nil {
		return r.err
	}
	return err
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
// fastest level: the sheet XML is repetitive and still shrinks about tenfold. It is
// klauspost's deflate, on every core (parallelDeflate): zipping 100,000 rows took
// 183 ms with the standard library's, 121 ms with klauspost's, 71 ms on two cores (and
// the file is 4 % smaller).
func (x *xlsxReport) save(w io.Writer) error {
	chunks := make(chan *deflateChunk, deflateInFlight())
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return &parallelDeflate{out: out, chunks: chunks}, nil
		})
		return zw
	})
	return x.f.Write(io.Discard)
}

// deflateChunkSize is how much of an entry one goroutine compresses at a time.
const deflateChunkSize = 1 << 20

// deflateInFlight is how many chunks may be filled or compressing at once: one a core
// and one being filled. It bounds the memory the zipping takes.
func deflateInFlight() int { return runtime.GOMAXPROCS(0) + 1 }

// parallelDeflate compresses a zip entry on several cores, as pgzip does a gzip
// stream: what is written is cut into chunks, each compressed on its own goroutine by
// a deflater of its own and ended with a sync flush (non-final blocks ending on a byte
// boundary, with no reference into another chunk), so the chunks' outputs written one
// after the other in order make one deflate stream; the last chunk, compressed on
// Close, ends it with the final block. zip.Writer takes the CRC and the sizes from what
// passes through. A chunk starts with no dictionary, which costs the sheet XML about
// 0.1 % of its compressed size. An entry smaller than a chunk is compressed on Close,
// on the calling goroutine.
type parallelDeflate struct {
	out    io.Writer
	chunks chan *deflateChunk // the save's free chunks, for the next entry to reuse
	cur    *deflateChunk      // being filled
	queue  []*deflateChunk    // compressing, in order
	err    error              // out's first error
}

type deflateChunk struct {
	in   []byte
	out  bytes.Buffer
	fw   *flate.Writer
	done chan struct{} // receives once the chunk is compressed
	err  error         // a panic while compressing it, read after done
}

// compress deflates c.in into c.out, ending with the final block if last.
func (c *deflateChunk) compress(last bool) {
	c.out.Reset()
	if c.fw == nil {
		c.fw, _ = flate.NewWriter(&c.out, flate.BestSpeed) // fails only for a bad level
	} else {
		c.fw.Reset(&c.out)
	}
	c.fw.Write(c.in) // into a bytes.Buffer: cannot fail
	if last {
		c.fw.Close()
	} else {
		c.fw.Flush()
	}
}

func (d *parallelDeflate) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && d.err == nil {
		if d.cur == nil {
			d.cur = d.chunk()
		}
		c := d.cur
		k := copy(c.in[len(c.in):cap(c.in)], p)
		c.in, p = c.in[:len(c.in)+k], p[k:]
		if len(c.in) == cap(c.in) {
			d.queue, d.cur = append(d.queue, c), nil
			go func() {
				defer func() {
					if p := recover(); p != nil { // an error for the export, not a crash
						c.err = fmt.Errorf("xlsx: compressing: panic: %v", p)
					}
					c.done <- struct{}{}
				}()
				c.compress(false)
			}()
		}
	}
	if d.err != nil {
		return 0, d.err
	}
	return n, nil
}

// chunk returns an empty chunk: a free one, or the oldest in flight once it is
// written out when as many as allowed are.
func (d *parallelDeflate) chunk() *deflateChunk {
	var c *deflateChunk
	if len(d.queue) >= cap(d.chunks)-1 {
		c = d.queue[0]
		d.queue = d.queue[1:]
		d.writeOut(c)
	} else {
		select {
		case c = <-d.chunks:
		default:
			c = &deflateChunk{in: make([]byte, 0, deflateChunkSize), done: make(chan struct{}, 1)}
		}
	}
	c.in = c.in[:0]
	return c
}

// writeOut waits for c to be compressed and writes it to out.
func (d *parallelDeflate) writeOut(c *deflateChunk) {
	<-c.done
	if d.err == nil {
		d.err = c.err
	}
	if d.err == nil {
		_, d.err = d.out.Write(c.out.Bytes())
	}
	c.err = nil
}

// Close compresses the last chunk (on the calling goroutine), writes out every chunk
// in order and hands them back for the next entry.
func (d *parallelDeflate) Close() error {
	last := d.cur
	if last == nil {
		last = d.chunk()
	}
	last.compress(true)
	last.done <- struct{}{}
	for _, c := range append(d.queue, last) {
		d.writeOut(c)
		select {
		case d.chunks <- c:
		default:
		}
	}
	d.queue, d.cur = nil, nil
	return d.err
}
