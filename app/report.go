package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

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
}

// Payout report formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// PayoutRequest is a validated payout report request.
type PayoutRequest struct {
	Query  rewards.ReportQuery
	Format string // FormatCSV or FormatJSON
}

// ParsePayoutRequest validates a payout report's parameters as the HTTP query and the
// CLI flags give them: from and to are RFC 3339 times or YYYY-MM-DD dates (UTC
// midnight), from before to; property is "" (all) or a configured property; format is
// "" (csv), csv or json. Each problem is a ValidationError naming the parameter.
func (a *App) ParsePayoutRequest(from, to, property, format string) (PayoutRequest, error) {
	var r PayoutRequest
	var err error
	if r.Query.From, err = reportTime("from", from); err != nil {
		return r, err
	}
	if r.Query.To, err = reportTime("to", to); err != nil {
		return r, err
	}
	if !r.Query.From.Before(r.Query.To) {
		return r, invalid("to", "must be after from")
	}
	if property != "" {
		if _, err := a.property(property); err != nil {
			return r, invalid("property", "unknown property")
		}
	}
	r.Query.Property = property
	switch format {
	case "", FormatCSV:
		r.Format = FormatCSV
	case FormatJSON:
		r.Format = FormatJSON
	default:
		return r, invalid("format", "must be csv or json")
	}
	return r, nil
}

func reportTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, invalid(field, "is required: an RFC 3339 time or a YYYY-MM-DD date (UTC)")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Contains(s, " ") {
		// An unencoded "+01:00" in a query string arrives as " 01:00".
		t, err = time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "+", 1))
	}
	if err != nil {
		return time.Time{}, invalid(field, "must be an RFC 3339 time or a YYYY-MM-DD date (UTC)")
	}
	return t.UTC(), nil
}

// payoutColumns is the report's header, in the contract's order.
var payoutColumns = [...]string{"property", "user", "currency", "opening_available", "credited_revenue", "credited_targets",
	"credited_achievements", "adjustments", "settled", "redeemed", "closing_available", "closing_pending", "sessions",
	"estimated_revenue_usd"}

// progressEvery is how many rows pass between progress calls.
const progressEvery = 1024

// WritePayoutReport writes the payout report r to w as CSV or JSON while it reads it
// from the store: memory stays flat however many rows there are. progress, when not
// nil, is called every so many rows with the count so far. It returns the totals of
// the rows written. HTTP and `tally export` both call it, so they produce the same bytes.
//
// On an error nothing may have reached w yet (output is buffered in blocks) or part of
// the report may have; the caller tells which by watching w, and must not present what
// was written as a complete report.
func (a *App) WritePayoutReport(ctx context.Context, w io.Writer, r PayoutRequest, progress func(rows int64)) (rewards.PayoutTotals, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var totals rewards.PayoutTotals
	count := func(row rewards.PayoutRow) {
		totals.Add(row)
		if progress != nil && totals.Rows%progressEvery == 0 {
			progress(totals.Rows)
		}
	}
	var err error
	switch r.Format {
	case FormatJSON:
		err = a.writePayoutJSON(ctx, bw, r, &totals, count)
	default:
		err = a.writePayoutCSV(ctx, bw, r, count)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && !totals.Reconciles() {
		// Every row's identity holds unless the ledger has an available leg of a kind the
		// report has no column for; then the totals' fails too. Finance must hear of it.
		a.logFor(ctx).Error("payout report does not reconcile: closing available ≠ opening + settled − redeemed + adjustments",
			"from", r.Query.From, "to", r.Query.To, "property", r.Query.Property)
	}
	return totals, err
}

func (a *App) currency(property string) string {
	if p, ok := a.props[property]; ok {
		return p.Currency
	}
	return "" // a property no longer configured still has its ledger reported
}

func (a *App) writePayoutCSV(ctx context.Context, w *bufio.Writer, r PayoutRequest, count func(rewards.PayoutRow)) error {
	cw := csv.NewWriter(w) // shares w's buffer: it is larger than csv's own
	if err := cw.Write(payoutColumns[:]); err != nil {
		return err
	}
	var rec [len(payoutColumns)]string
	err := a.reports().PayoutRows(ctx, r.Query, func(row rewards.PayoutRow) error {
		rec[0], rec[1], rec[2] = csvText(row.Property), csvText(row.User), csvText(a.currency(row.Property))
		amounts := amountCells(row.PayoutAmounts)
		copy(rec[3:12], amounts[:])
		rec[12] = strconv.FormatInt(row.Sessions, 10)
		rec[13] = cell(row.EstimatedRevenueUSD)
		count(row)
		return cw.Write(rec[:])
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// csvText guards a CSV text cell against spreadsheet formula injection (OWASP): a cell
// that starts with =, +, -, @, a tab or a carriage return gets a leading single quote,
// which spreadsheets show as text and do not evaluate. Amounts are written by Tally and
// are never escaped, so "-5" stays a number.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func amountCells(p rewards.PayoutAmounts) [9]string {
	return [9]string{cell(p.OpeningAvailable), cell(p.CreditedRevenue), cell(p.CreditedTargets),
		cell(p.CreditedAchievements), cell(p.Adjustments), cell(p.Settled), cell(p.Redeemed),
		cell(p.ClosingAvailable), cell(p.ClosingPending)}
}

// cell renders an amount as amount does (decimal.String: exact, no trailing zeros),
// with shortcuts for the common cases: zero, which most report cells are, and a
// coefficient that fits an int64, which is formatted without big-integer arithmetic.
func cell(d decimal.Decimal) string {
	switch {
	case d.IsZero():
		return "0"
	case d.Exponent() > 0 || d.Exponent() < -18 || d.NumDigits() > 18:
		return amount(d)
	}
	var buf [24]byte
	c := d.CoefficientInt64()
	b := buf[:0]
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	digits := strconv.AppendInt(buf[len(b):len(b)], c, 10)
	scale := int(-d.Exponent())
	for scale > 0 && digits[len(digits)-1] == '0' { // trailing zeros of the fraction
		digits = digits[:len(digits)-1]
		scale--
	}
	var out [48]byte
	o := append(out[:0], b...)
	if scale == 0 {
		return string(append(o, digits...))
	}
	if len(digits) > scale {
		o = append(o, digits[:len(digits)-scale]...)
		o = append(o, '.')
		return string(append(o, digits[len(digits)-scale:]...))
	}
	o = append(o, "0."...)
	for i := len(digits); i < scale; i++ {
		o = append(o, '0')
	}
	return string(append(o, digits...))
}

type amountsJSON struct {
	OpeningAvailable     string `json:"opening_available"`
	CreditedRevenue      string `json:"credited_revenue"`
	CreditedTargets      string `json:"credited_targets"`
	CreditedAchievements string `json:"credited_achievements"`
	Adjustments          string `json:"adjustments"`
	Settled              string `json:"settled"`
	Redeemed             string `json:"redeemed"`
	ClosingAvailable     string `json:"closing_available"`
	ClosingPending       string `json:"closing_pending"`
}

func toAmountsJSON(p rewards.PayoutAmounts) amountsJSON {
	c := amountCells(p)
	return amountsJSON{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]}
}

// payoutRowJSON has the CSV's columns, in the same order.
type payoutRowJSON struct {
	Property string `json:"property"`
	User     string `json:"user"`
	Currency string `json:"currency"`
	amountsJSON
	Sessions            int64  `json:"sessions"`
	EstimatedRevenueUSD string `json:"estimated_revenue_usd"`
}

type payoutTotalsJSON struct {
	Rows int64 `json:"rows"`
	amountsJSON
	Sessions            int64  `json:"sessions"`
	EstimatedRevenueUSD string `json:"estimated_revenue_usd"`
}

type propertySummaryJSON struct {
	Property            string      `json:"property"`
	Currency            string      `json:"currency"`
	Sessions            int64       `json:"sessions"`
	EstimatedRevenueUSD string      `json:"estimated_revenue_usd"`
	Gross               string      `json:"gross"`
	CreditedToUsers     string      `json:"credited_to_users"`
	Withheld            string      `json:"withheld"`
	CappedExcess        string      `json:"capped_excess"`
	Ledger              amountsJSON `json:"ledger"`
}

// writePayoutJSON streams {"from","to","rows":[…],"totals":{…},"summary":[…]}: one row
// per line as it is read, then the totals accumulated meanwhile, then the summary.
func (a *App) writePayoutJSON(ctx context.Context, w *bufio.Writer, r PayoutRequest, totals *rewards.PayoutTotals, count func(rewards.PayoutRow)) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	encode := func(v any) ([]byte, error) {
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	}
	// Write errors stick in w (a bufio.Writer); the caller's Flush reports them.
	w.WriteString(`{"from":"` + r.Query.From.UTC().Format(time.RFC3339Nano) + `","to":"` + r.Query.To.UTC().Format(time.RFC3339Nano) + `","rows":[`)
	summary, err := a.reports().PayoutReport(ctx, r.Query, func(row rewards.PayoutRow) error {
		b, err := encode(payoutRowJSON{Property: row.Property, User: row.User, Currency: a.currency(row.Property),
			amountsJSON: toAmountsJSON(row.PayoutAmounts), Sessions: row.Sessions, EstimatedRevenueUSD: cell(row.EstimatedRevenueUSD)})
		if err != nil {
			return err
		}
		if totals.Rows > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('\n')
		count(row)
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if totals.Rows > 0 {
		w.WriteByte('\n')
	}
	w.WriteString(`],"totals":`)
	b, err := encode(payoutTotalsJSON{Rows: totals.Rows, amountsJSON: toAmountsJSON(totals.PayoutAmounts),
		Sessions: totals.Sessions, EstimatedRevenueUSD: amount(totals.EstimatedRevenueUSD)})
	if err != nil {
		return err
	}
	w.Write(b)
	sums := make([]propertySummaryJSON, len(summary))
	for i, s := range summary {
		sums[i] = propertySummaryJSON{Property: s.Property, Currency: a.currency(s.Property), Sessions: s.Sessions,
			EstimatedRevenueUSD: amount(s.EstimatedRevenueUSD), Gross: amount(s.Gross), CreditedToUsers: amount(s.CreditedToUsers),
			Withheld: amount(s.Withheld), CappedExcess: amount(s.CappedExcess), Ledger: toAmountsJSON(s.Ledger)}
	}
	w.WriteString(`,"summary":`)
	if b, err = encode(sums); err != nil {
		return err
	}
	w.Write(b)
	_, err = w.WriteString("}\n")
	return err
}

func (a *App) reports() ReportReader { return a.store }

// reportWriteTimeout bounds each stretch of progress of a report download; the server's
// WriteTimeout would otherwise cut off a long report however fast it is flowing.
const reportWriteTimeout = time.Minute

// payoutReport: GET /v1/admin/reports/payouts?from=&to=&property=&format=csv|json
//
// The report is streamed. An error before anything was sent is a problem+json answer;
// after the status and part of the body are out, the status cannot change, so the
// error is logged and the connection is closed without finishing the response: the
// client sees a broken transfer, never a short report that looks complete.
func (a *App) payoutReport(c *gin.Context) {
	r, err := a.ParsePayoutRequest(c.Query("from"), c.Query("to"), c.Query("property"), c.Query("format"))
	if err != nil {
		a.fail(c, err)
		return
	}
	h := c.Writer.Header()
	name := "payouts"
	if r.Query.Property != "" {
		name += "-" + r.Query.Property
	}
	name += "-" + fileStamp(r.Query.From) + "-" + fileStamp(r.Query.To) + "." + r.Format
	if r.Format == FormatJSON {
		h.Set("Content-Type", "application/json; charset=utf-8")
	} else {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(c.Writer)
	extend := func(int64) { _ = rc.SetWriteDeadline(time.Now().Add(reportWriteTimeout)) }
	extend(0)
	out := &sentCounter{w: c.Writer}
	_, err = a.WritePayoutReport(c.Request.Context(), out, r, extend)
	if err == nil {
		return
	}
	if out.n == 0 {
		h.Del("Content-Disposition")
		h.Del("Cache-Control")
		a.fail(c, err)
		return
	}
	if c.Request.Context().Err() != nil {
		a.logFor(c.Request.Context()).Warn("payout report abandoned by the client", "bytes_sent", out.n)
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
	w io.Writer
	n int64
}

func (s *sentCounter) Write(p []byte) (int, error) {
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
