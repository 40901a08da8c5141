package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"tally/rewards"
)

// ReportReader streams payout reports (DESIGN.md §3, Finance and ops). PayoutRows calls
// fn with each row in (property, user) order while it reads them; PayoutReport does the
// same and then returns the per-property summary read from the same snapshot.
type ReportReader interface {
	PayoutRows(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error
	PayoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) ([]rewards.PropertySummary, error)
	// PayoutRowsEstimate estimates the report's rows cheaply, for a progress bar.
	PayoutRowsEstimate(ctx context.Context, q rewards.ReportQuery) (int64, error)
}

// EstimatePayoutRows estimates how many rows the report r has, without reading it.
func (a *App) EstimatePayoutRows(ctx context.Context, r PayoutRequest) (int64, error) {
	return a.reports().PayoutRowsEstimate(ctx, r.Query)
}

// Payout report formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
	FormatXLSX = "xlsx"
)

// PayoutRequest is a validated payout report request.
type PayoutRequest struct {
	Query  rewards.ReportQuery
	Format string // FormatCSV, FormatJSON or FormatXLSX
	// BOM starts a CSV report with the UTF-8 byte-order mark, without which Excel reads
	// the file in the system's legacy code page and garbles every non-ASCII id.
	BOM bool
}

// ParsePayoutRequest validates a payout report's parameters as the HTTP query and the
// CLI flags give them: from and to are RFC 3339 times or YYYY-MM-DD dates (UTC
// midnight), no earlier than 1970, from before to; property is "" (all) or a configured
// property; format is "" (csv), csv, json or xlsx; bom is "", true or false (csv only).
// The error is a ValidationError naming every bad parameter.
func (a *App) ParsePayoutRequest(from, to, property, format, bom string) (PayoutRequest, error) {
	var r PayoutRequest
	v := &ValidationError{}
	fromOK, toOK := false, false
	r.Query.From, fromOK = reportTime(v, "from", from)
	r.Query.To, toOK = reportTime(v, "to", to)
	if fromOK && toOK && !r.Query.From.Before(r.Query.To) {
		v.add("to", "must be after from")
	}
	if property != "" {
		if _, err := a.property(property); err != nil {
			v.add("property", "unknown property")
		}
	}
	r.Query.Property = property
	switch format {
	case "", FormatCSV:
		r.Format = FormatCSV
	case FormatJSON, FormatXLSX:
		r.Format = format
	default:
		v.add("format", "must be csv, json or xlsx")
	}
	if bom != "" {
		var err error
		if r.BOM, err = strconv.ParseBool(bom); err != nil {
			v.add("bom", "must be true or false")
		} else if r.BOM && format != "" && format != FormatCSV {
			v.add("bom", "applies to format=csv only")
		}
	}
	if len(v.Errors) > 0 {
		return PayoutRequest{}, v
	}
	return r, nil
}

// earliestReportTime is the earliest bound a report takes: nothing is stamped before it,
// and the zero time is what the store reads as a bound not given.
var earliestReportTime = time.Unix(0, 0).UTC()

// latestReportTime is the latest bound a report takes: the store rounds a bound up to
// the microsecond, and past this one that is the year 10000, which SQLite, comparing
// times as text, puts before every year of four digits (the report came back empty).
var latestReportTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// reportTime parses a report bound, adding its problem to v if it is not one.
func reportTime(v *ValidationError, field, s string) (time.Time, bool) {
	if s == "" {
		v.add(field, "is required: an RFC 3339 time or a YYYY-MM-DD date (UTC)")
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, s)
	var parseErr *time.ParseError
	if errors.As(err, &parseErr) && strings.Contains(parseErr.Message, "out of range") {
		// Shaped like a date, but no day of the calendar (2026-02-30).
		v.add(field, "is not a date of the calendar ("+strings.TrimPrefix(parseErr.Message, ": ")+")")
		return time.Time{}, false
	}
	if err != nil {
		t, err = time.Parse(time.RFC3339Nano, s)
	}
	if err != nil && strings.Contains(s, " ") {
		// An unencoded "+01:00" in a query string arrives as " 01:00".
		t, err = time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "+", 1))
	}
	if err != nil {
		v.add(field, "must be an RFC 3339 time or a YYYY-MM-DD date (UTC)")
		return time.Time{}, false
	}
	if t.Before(earliestReportTime) {
		v.add(field, "must be 1970-01-01 or later (nothing is recorded before)")
		return time.Time{}, false
	}
	if t.After(latestReportTime) {
		v.add(field, "must be 9999-12-31T23:59:59.999999Z or earlier")
		return time.Time{}, false
	}
	return t.UTC(), true
}

// columnKind is what a report column holds, which decides how each format prints it.
type columnKind int8

const (
	textColumn   columnKind = iota // property, user, currency: escaped in CSV, text cells in XLSX
	amountColumn                   // a wallet column, rewards.AmountColumns
	countColumn                    // sessions
	usdColumn                      // estimated_revenue_usd
)

// payoutColumn is one report column: its name and where its value comes from. CSV,
// JSON, XLSX, the totals and the CLI's summary line all print from payoutColumns.
type payoutColumn struct {
	name   string
	kind   columnKind
	text   func(a *App, r *rewards.PayoutRow) string     // textColumn
	amount func(*rewards.PayoutAmounts) *decimal.Decimal // amountColumn
}

// sessionsAfter is the last wallet column of the contract's first fourteen columns,
// which end with sessions and estimated_revenue_usd; wallet columns added later
// (rewards.AmountColumns appends them) come after those two, as the contract appends.
const sessionsAfter = "closing_pending"

// payoutColumns are the report's columns in the contract's order.
var payoutColumns = func() []payoutColumn {
	cols := []payoutColumn{
		{name: "property", kind: textColumn, text: func(_ *App, r *rewards.PayoutRow) string { return r.Property }},
		{name: "user", kind: textColumn, text: func(_ *App, r *rewards.PayoutRow) string { return r.User }},
		{name: "currency", kind: textColumn, text: func(a *App, r *rewards.PayoutRow) string { return a.currency(r.Property) }},
	}
	for _, c := range rewards.AmountColumns() {
		cols = append(cols, payoutColumn{name: c.Name, kind: amountColumn, amount: c.Field})
		if c.Name == sessionsAfter {
			cols = append(cols, payoutColumn{name: "sessions", kind: countColumn}, payoutColumn{name: "estimated_revenue_usd", kind: usdColumn})
		}
	}
	return cols
}()

// decimalValue is the value of an amount or USD column of r.
func (c *payoutColumn) decimalValue(r *rewards.PayoutRow) decimal.Decimal {
	if c.kind == usdColumn {
		return r.EstimatedRevenueUSD
	}
	return *c.amount(&r.PayoutAmounts)
}

// totalsRow is the totals as a row without text, for the columns' accessors.
func totalsRow(t *rewards.PayoutTotals) rewards.PayoutRow {
	return rewards.PayoutRow{PayoutAmounts: t.PayoutAmounts, Sessions: t.Sessions, EstimatedRevenueUSD: t.EstimatedRevenueUSD}
}

// FormatPayoutTotals renders the totals' columns as name=value pairs in the report's
// order, for the summary line `tally export` ends with. Rows in several currencies have
// their amounts totalled per currency ("COIN: credited_revenue=… PTS: …"), never across.
func FormatPayoutTotals(t rewards.ReportTotals) string {
	if !t.Mixed() {
		return formatTotals(t.PayoutTotals)
	}
	parts := make([]string, len(t.ByCurrency))
	for i, c := range t.ByCurrency {
		label, property := totalsGroupOf(c.Currency)
		if property != "" {
			label = property + " (currency unknown)"
		}
		parts[i] = label + ": rows=" + strconv.FormatInt(c.Rows, 10) + " " + formatTotals(c.PayoutTotals)
	}
	return strings.Join(parts, "; ")
}

func formatTotals(t rewards.PayoutTotals) string {
	row := totalsRow(&t)
	var sb strings.Builder
	for i := range payoutColumns {
		c := &payoutColumns[i]
		switch c.kind {
		case textColumn:
			continue
		case countColumn:
			fmt.Fprintf(&sb, " %s=%d", c.name, row.Sessions)
		default:
			fmt.Fprintf(&sb, " %s=%s", c.name, amount(c.decimalValue(&row)))
		}
	}
	return strings.TrimPrefix(sb.String(), " ")
}

// progressEvery is how many rows pass between progress calls.
const progressEvery = 1024

// utf8BOM is the UTF-8 byte-order mark.
const utf8BOM = "\uFEFF"

// WritePayoutReport writes the payout report r to w as CSV, JSON or XLSX while it reads
// it from the store: memory stays flat however many rows there are. progress, when not
// nil, is called every so many rows with the count so far. It returns the totals of
// the rows written. HTTP and `tally export` both call it, so they produce the same bytes.
//
// On an error nothing may have reached w yet (output is buffered in blocks; an XLSX
// file is only written once its rows are all read) or part of the report may have; the
// caller tells which by watching w, and must not present what was written as a
// complete report.
func (a *App) WritePayoutReport(ctx context.Context, w io.Writer, r PayoutRequest, progress func(rows int64)) (rewards.ReportTotals, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var totals rewards.CurrencyTotalsBuilder
	count := func(row *rewards.PayoutRow) {
		totals.Add(a.totalsGroup(row.Property), row)
		if progress != nil && totals.Rows()%progressEvery == 0 {
			progress(totals.Rows())
		}
	}
	var err error
	switch r.Format {
	case FormatJSON:
		err = a.writePayoutJSON(ctx, bw, r, &totals, count)
	case FormatXLSX:
		err = a.writePayoutXLSX(ctx, bw, r, &totals, count)
	default:
		if r.BOM {
			bw.WriteString(utf8BOM)
		}
		err = a.writePayoutCSV(ctx, bw, r, count)
	}
	if err == nil {
		err = bw.Flush()
	}
	sum := totals.Totals()
	if err == nil && !sum.Reconciles() {
		// Every row's identity holds unless the ledger has an available leg of a kind the
		// report has no column for; then the totals' fails too. Finance must hear of it.
		a.logFor(ctx).Error("payout report does not reconcile: closing available ≠ opening + settled − redeemed + reversed + adjustments",
			"from", r.Query.From, "to", r.Query.To, "property", r.Query.Property)
	}
	return sum, err
}

func (a *App) currency(property string) string {
	if p, ok := a.props[property]; ok {
		return p.Currency
	}
	return "" // a property no longer configured still has its ledger reported
}

// totalsGroup is the group a row of property is totalled in: its currency, or, for a
// property no longer configured (its currency unknown), the property alone, so that two
// such properties are never added together. totalsGroupOf reads it back.
func (a *App) totalsGroup(property string) string {
	if c := a.currency(property); c != "" {
		return c
	}
	return unknownCurrency + property
}

// unknownCurrency starts the totals group of a property whose currency is unknown; no
// currency code starts with it.
const unknownCurrency = "\x00"

// totalsGroupOf returns the currency of a totals group, or the property of a group whose
// currency is unknown.
func totalsGroupOf(group string) (currency, property string) {
	if p, ok := strings.CutPrefix(group, unknownCurrency); ok {
		return "", p
	}
	return group, ""
}

// currencyScale is the widest scale of the configured properties in currency: the
// decimals a total in it is shown with.
func (a *App) currencyScale(currency string) int32 {
	var scale int32
	for _, p := range a.props {
		if p.Currency == currency {
			scale = max(scale, p.Scale)
		}
	}
	return scale
}

// scale is the property's wallet scale (0 for a property no longer configured).
func (a *App) scale(property string) int32 {
	if p, ok := a.props[property]; ok {
		return p.Scale
	}
	return 0
}

// writePayoutCSV writes the CSV report: RFC 4180 as encoding/csv writes it (fields
// quoted only when they need it, LF line ends), each record appended into one reused
// buffer (appendCSVField), which measured about twice as fast as csv.Writer's calls per
// field and a string per amount.
func (a *App) writePayoutCSV(ctx context.Context, w *bufio.Writer, r PayoutRequest, count func(*rewards.PayoutRow)) error {
	var b []byte
	for i, c := range payoutColumns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, c.name)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return err
	}
	return a.reports().PayoutRows(ctx, r.Query, func(row rewards.PayoutRow) error {
		b = b[:0]
		for i := range payoutColumns {
			c := &payoutColumns[i]
			if i > 0 {
				b = append(b, ',')
			}
			switch c.kind {
			case textColumn:
				b = appendCSVField(b, csvText(c.text(a, &row)))
			case countColumn:
				b = strconv.AppendInt(b, row.Sessions, 10)
			default:
				b = appendCell(b, c.decimalValue(&row)) // digits, '-' and '.': never quoted
			}
		}
		count(&row)
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// appendCSVField appends s as encoding/csv's Writer writes a field (comma, no CRLF):
// quoted, with quotes doubled, when it holds a comma, a quote, CR or LF, starts with
// white space, or is `\.`; as is otherwise.
func appendCSVField(b []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\n' || c == '\r' || c == '"' || c == ',' {
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// csvText guards a CSV text cell against spreadsheet formula injection (OWASP): a cell
// that starts with =, +, -, @, a tab or a carriage return gets a leading single quote,
// which spreadsheets show as text and do not evaluate. A cell that starts with a single
// quote gets one too, so that the escape can be undone (drop one leading quote): else the
// users "=1+1" and "'=1+1" would both read "'=1+1". Amounts are written by Tally and are
// never escaped, so "-5" stays a number.
//
// Excel where the list separator is ";" (much of Europe) splits a CSV file on ";", so
// each ";" in a cell starts a cell there: a ";" whose next character other than '"' is
// one of those gets a single quote after it too (undone by dropping the quote after
// each ";'"). Else the user "p;=1+1" was the cell "=1+1" in such an Excel.
func csvText(s string) string {
	if s == "" {
		return s
	}
	escaped := csvFormulaStart(s)
	n := strings.Count(s, ";")
	if !escaped && n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+n+1)
	if escaped {
		b = append(b, '\'')
	}
	for i := 0; i < len(s); i++ {
		b = append(b, s[i])
		if s[i] == ';' && csvFormulaStart(strings.TrimLeft(s[i+1:], `"`)) {
			b = append(b, '\'')
		}
	}
	return string(b)
}

// csvFormulaStart reports whether a cell reading s would need csvText's quote.
func csvFormulaStart(s string) bool {
	return s != "" && strings.ContainsRune("=+-@\t\r'", rune(s[0]))
}

// cell renders an amount as amount does (decimal.String: exact, no trailing zeros),
// with shortcuts for the common cases: zero, which most report cells are, and a
// coefficient that fits an int64, which is formatted without big-integer arithmetic.
func cell(d decimal.Decimal) string {
	if d.IsZero() {
		return "0"
	}
	var buf [48]byte
	return string(appendCell(buf[:0], d))
}

// appendCell appends cell(d) to b, without allocating in the common cases.
func appendCell(b []byte, d decimal.Decimal) []byte {
	switch {
	case d.IsZero():
		return append(b, '0')
	case d.Exponent() > 0 || d.Exponent() < -18 || d.NumDigits() > 18:
		return append(b, amount(d)...)
	}
	c := d.CoefficientInt64()
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	var buf [24]byte
	digits := strconv.AppendUint(buf[:0], uint64(c), 10)
	scale := int(-d.Exponent())
	for scale > 0 && digits[len(digits)-1] == '0' { // trailing zeros of the fraction
		digits = digits[:len(digits)-1]
		scale--
	}
	if scale == 0 {
		return append(b, digits...)
	}
	if len(digits) > scale {
		b = append(b, digits[:len(digits)-scale]...)
		b = append(b, '.')
		return append(b, digits[len(digits)-scale:]...)
	}
	b = append(b, "0."...)
	for i := len(digits); i < scale; i++ {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// appendJSONColumns appends the columns of row as comma-separated JSON members, text
// columns only when withText, wallet amounts as null when nullAmounts; comma says
// whether the first member needs one too.
func (a *App) appendJSONColumns(b []byte, row *rewards.PayoutRow, withText, nullAmounts, comma bool) []byte {
	for i := range payoutColumns {
		c := &payoutColumns[i]
		if c.kind == textColumn && !withText {
			continue
		}
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = append(b, '"')
		b = append(b, c.name...)
		b = append(b, '"', ':')
		switch c.kind {
		case textColumn:
			b = appendJSONText(b, c.text(a, row), false) // as an Encoder without HTML escaping
		case countColumn:
			b = strconv.AppendInt(b, row.Sessions, 10)
		case amountColumn:
			if nullAmounts {
				b = append(b, "null"...)
				continue
			}
			fallthrough
		default:
			b = append(b, '"')
			b = appendCell(b, c.decimalValue(row))
			b = append(b, '"')
		}
	}
	return b
}

// appendJSONTotals appends totals as a JSON object: for a group's (grouped), its
// currency, and the property when the currency is unknown; then the rows and the CSV's
// columns without the text ones. Amounts of rows in several currencies (mixed) do not
// add up to anything and are null.
func (a *App) appendJSONTotals(b []byte, group string, t rewards.PayoutTotals, mixed, grouped bool) []byte {
	b = append(b, '{')
	if grouped {
		currency, property := totalsGroupOf(group)
		b = append(appendJSONText(append(b, `"currency":`...), currency, false), ',')
		if property != "" {
			b = append(appendJSONText(append(b, `"property":`...), property, false), ',')
		}
	}
	b = strconv.AppendInt(append(b, `"rows":`...), t.Rows, 10)
	row := totalsRow(&t)
	return append(a.appendJSONColumns(b, &row, false, mixed, true), '}')
}

// ledgerJSON is the summary's ledger totals: the wallet columns, in the report's order.
type ledgerJSON rewards.PayoutAmounts

func (l ledgerJSON) MarshalJSON() ([]byte, error) {
	p := rewards.PayoutAmounts(l)
	b := []byte{'{'}
	for i := range payoutColumns {
		c := &payoutColumns[i]
		if c.kind != amountColumn {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, c.name...)
		b = append(b, '"', ':', '"')
		b = append(b, amount(*c.amount(&p))...)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

type propertySummaryJSON struct {
	Property            string     `json:"property"`
	Currency            string     `json:"currency"`
	Sessions            int64      `json:"sessions"`
	EstimatedRevenueUSD string     `json:"estimated_revenue_usd"`
	Gross               string     `json:"gross"`
	CreditedToUsers     string     `json:"credited_to_users"`
	Withheld            string     `json:"withheld"`
	CappedExcess        string     `json:"capped_excess"`
	BookedUSD           string     `json:"booked_revenue_usd"`
	Released            string     `json:"released"`
	Shortfall           string     `json:"shortfall"`
	Ledger              ledgerJSON `json:"ledger"`
}

// writePayoutJSON streams {"from","to","rows":[…],"totals":{…},"summary":[…]}: one row
// per line as it is read, then the totals accumulated meanwhile, then the summary. Rows
// and totals have the CSV's columns, in the same order (totals without the text ones,
// after "rows").
func (a *App) writePayoutJSON(ctx context.Context, w *bufio.Writer, r PayoutRequest, totals *rewards.CurrencyTotalsBuilder, count func(*rewards.PayoutRow)) error {
	// Write errors stick in w (a bufio.Writer); the caller's Flush reports them.
	w.WriteString(`{"from":"` + r.Query.From.UTC().Format(time.RFC3339Nano) + `","to":"` + r.Query.To.UTC().Format(time.RFC3339Nano) + `","rows":[`)
	var buf []byte
	summary, err := a.reports().PayoutReport(ctx, r.Query, func(row rewards.PayoutRow) error {
		buf = buf[:0]
		if totals.Rows() > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		buf = append(a.appendJSONColumns(append(buf, '{'), &row, true, false, false), '}')
		count(&row)
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	if totals.Rows() > 0 {
		w.WriteByte('\n')
	}
	sum := totals.Totals()
	w.WriteString(`],"totals":`)
	w.Write(a.appendJSONTotals(buf[:0], "", sum.PayoutTotals, sum.Mixed(), false))
	w.WriteString(`,"totals_by_currency":[`)
	for i, c := range sum.ByCurrency {
		if i > 0 {
			w.WriteByte(',')
		}
		w.Write(a.appendJSONTotals(buf[:0], c.Currency, c.PayoutTotals, false, true))
	}
	w.WriteString(`]`)
	sums := make([]propertySummaryJSON, len(summary))
	for i, s := range summary {
		sums[i] = propertySummaryJSON{Property: s.Property, Currency: a.currency(s.Property), Sessions: s.Sessions,
			EstimatedRevenueUSD: amount(s.EstimatedRevenueUSD), Gross: amount(s.Gross), CreditedToUsers: amount(s.CreditedToUsers),
			Withheld: amount(s.Withheld), CappedExcess: amount(s.CappedExcess), BookedUSD: amount(s.BookedUSD),
			Released: amount(s.Released), Shortfall: amount(s.Shortfall), Ledger: ledgerJSON(s.Ledger)}
	}
	w.WriteString(`,"summary":`)
	var sb bytes.Buffer
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sums); err != nil {
		return err
	}
	w.Write(bytes.TrimSuffix(sb.Bytes(), []byte("\n")))
	_, err = w.WriteString("}\n")
	return err
}

func (a *App) reports() ReportReader { return a.store }

// maxReportStreams is how many payout reports one process streams at once. Each holds a
// database connection (its snapshot) for as long as its client takes to read it, so
// stalled downloads (a slow link, a browser holding a download) would otherwise take the
// pool from the receivers and redemptions: eight did on SQLite, whose pool is eight.
const maxReportStreams = 2

// errReportsBusy is a report asked while maxReportStreams are streaming.
var errReportsBusy = errors.New("payout reports: as many are streaming as one process serves at once")

// reportWriteTimeout bounds each stretch of progress of a report download; the server's
// WriteTimeout would otherwise cut off a long report however fast it is flowing.
const reportWriteTimeout = time.Minute

// repeatedReportParam refuses a payout report parameter given more than once: which
// of two values counts is not for the server to guess.
func repeatedReportParam(c *gin.Context) error {
	q := c.Request.URL.Query()
	for _, name := range []string{"from", "to", "property", "format", "bom"} {
		if len(q[name]) > 1 {
			return invalid(name, "is given more than once")
		}
	}
	return nil
}

// payoutReport: GET /v1/admin/reports/payouts?from=&to=&property=&format=csv|json|xlsx&bom=true
//
// The report is streamed. An error before anything was sent is a problem+json answer;
// after the status and part of the body are out, the status cannot change, so the
// error is logged and the connection is closed without finishing the response: the
// client sees a broken transfer, never a short report that looks complete.
func (a *App) payoutReport(c *gin.Context) { a.streamPayoutReport(c, a.fail) }

// streamPayoutReport is payoutReport answering a refusal, before anything was sent,
// with fail: a problem document for the API, the form again for the console.
func (a *App) streamPayoutReport(c *gin.Context, fail func(*gin.Context, error)) {
	if err := repeatedReportParam(c); err != nil {
		fail(c, err)
		return
	}
	r, err := a.ParsePayoutRequest(c.Query("from"), c.Query("to"), c.Query("property"), c.Query("format"), c.Query("bom"))
	if err != nil {
		fail(c, err)
		return
	}
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		c.Header("Cache-Control", "no-store")
		fail(c, errReportsBusy)
		return
	}
	h := c.Writer.Header()
	name := "payouts"
	if r.Query.Property != "" {
		name += "-" + r.Query.Property
	}
	name += "-" + fileStamp(r.Query.From) + "-" + fileStamp(r.Query.To) + "." + r.Format
	switch r.Format {
	case FormatJSON:
		h.Set("Content-Type", "application/json; charset=utf-8")
	case FormatXLSX:
		h.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	default:
		h.Set("Content-Type", "text/csv; charset=utf-8")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(c.Writer)
	extend := func(int64) { _ = rc.SetWriteDeadline(time.Now().Add(reportWriteTimeout)) }
	extend(0)
	// Every write gets its own reportWriteTimeout: an XLSX is zipped out only after the
	// last row is read, and a summary is read before its bytes go out, so a deadline
	// moved only as rows are read would cut a long download short on a slow link.
	out := &sentCounter{w: c.Writer, beforeWrite: func() { extend(0) }}
	_, err = a.WritePayoutReport(c.Request.Context(), out, r, extend)
	if err == nil {
		return
	}
	if out.n == 0 {
		h.Del("Content-Disposition")
		h.Set("Cache-Control", "no-store") // a problem is not to be kept either (the console's pages say no-store too)
		fail(c, err)
		return
	}
	if c.Request.Context().Err() != nil {
		// Or a write that waited reportWriteTimeout: a client reading slower than the
		// kernel's send buffer drains in that time is cut too.
		a.logFor(c.Request.Context()).Warn("payout report abandoned by the client, or its write waited a minute", "bytes_sent", out.n)
	} else {
		a.logFor(c.Request.Context()).Error("payout report failed after the response started; closing the connection", "bytes_sent", out.n, "err", err)
	}
	c.Abort()
	abortConnection(c.Writer)
}

// fileStamp renders a report bound for a file name: the date at midnight, else the
// time to the second, with no characters file systems refuse.
func fileStamp(t time.Time) string {
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format("20060102T150405Z")
}

// sentCounter counts the bytes handed to the response.
type sentCounter struct {
	w           io.Writer
	n           int64
	beforeWrite func() // when set, runs before each write
}

func (s *sentCounter) Write(p []byte) (int, error) {
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// abortConnection closes the client connection under a started response, so an HTTP/1.1
// chunked body ends without its last chunk. gin refuses to hijack once the body has
// started, so this goes to the net/http writer beneath it.
func abortConnection(w http.ResponseWriter) {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return // not hijackable (HTTP/2, a test recorder): the body simply stops here
	}
	_ = conn.Close()
}
