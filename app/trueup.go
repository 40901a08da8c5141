package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"tally/postbacks"
	"tally/rewards"
)

// True-ups (issue 14): booked revenue in, variance visible, the buffer released exactly
// once. The math is rewards.TrueUp; the store runs it in one transaction.

// TrueUpper keeps booked revenue and runs true-ups.
type TrueUpper interface {
	ImportBooked(ctx context.Context, in rewards.BookedImport) (rewards.BookedImported, error)
	TrueUpView(ctx context.Context, q rewards.TrueUpRequest) ([]rewards.TrueUpDay, error)
	BookedDays(ctx context.Context, property, from, to string) ([]rewards.TrueUpDay, error)
	TrueUp(ctx context.Context, req rewards.TrueUpRequest) (rewards.TrueUpRun, bool, error)
}

// ReportsSource is where booked revenue is pulled from (Gamezop's Ad Revenue Reports API).
type ReportsSource struct {
	URL         string
	BearerToken string
}

// maxBookedUSD bounds one day's booked revenue: far above any property's, far below
// what the ledger holds, so a typo in an import is caught.
var maxBookedUSD = decimal.New(1, 12)

// maxTrueUpDays bounds a period.
const maxTrueUpDays = 366

// ImportBooked records a property's booked revenue per day (rewards.BookedImport).
// Errors: *ValidationError naming the row, ErrUnknownProperty, rewards.ErrTruedUp for a
// changed amount of a day trued up (unless correction), or a storage error.
func (a *App) ImportBooked(ctx context.Context, property string, days []rewards.BookedDay, correction bool, actor string) (rewards.BookedImported, error) {
	p, err := a.property(property)
	if err != nil {
		return rewards.BookedImported{}, err
	}
	if actor == "" {
		return rewards.BookedImported{}, ErrUnauthorized
	}
	if len(days) == 0 {
		return rewards.BookedImported{}, invalid("rows", "at least one row {date, revenue_usd} is required")
	}
	seen := map[string]bool{}
	for i, d := range days {
		field := fmt.Sprintf("rows[%d]", i)
		if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
			return rewards.BookedImported{}, invalid(field+".date", "must be a date YYYY-MM-DD")
		}
		if seen[d.Day] {
			return rewards.BookedImported{}, invalid(field+".date", d.Day+" appears twice")
		}
		seen[d.Day] = true
		if d.RevenueUSD.IsNegative() || d.RevenueUSD.GreaterThan(maxBookedUSD) || rewards.DecimalPlaces(d.RevenueUSD) > rewards.Precision {
			return rewards.BookedImported{}, invalid(field+".revenue_usd", "must be a decimal from 0 to 10^12 with at most 18 decimal places")
		}
	}
	return a.store.ImportBooked(ctx, rewards.BookedImport{Property: p.ID, Days: days, Correction: correction, Actor: actor})
}

// ParseBooked reads booked revenue rows from a request body: JSON (an array of
// {date, revenue_usd}, or {"rows": [...], "correction": true}) or, with contentType
// text/csv, CSV with the header date,revenue_usd. Amounts are read from their literal
// text, as strings or JSON numbers.
func ParseBooked(body []byte, contentType string) (days []rewards.BookedDay, correction bool, err error) {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "text/csv") {
		days, err = parseBookedCSV(body)
		return days, false, err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		// A bare array is read as {"rows": [...]}, through the same strict reader.
		body = append(append([]byte(`{"rows":`), trimmed...), '}')
	}
	obj, err := readObjectBytes(body)
	if err != nil {
		return nil, false, err
	}
	if raw, ok := obj["correction"]; ok && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &correction); err != nil {
			return nil, false, invalid("correction", "must be true or false")
		}
	}
	if !obj.present("rows") {
		return nil, false, invalid("rows", "is required: an array of {date, revenue_usd}")
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(obj["rows"], &rows); err != nil {
		return nil, false, invalid("rows", "must be an array of {date, revenue_usd}")
	}
	for i, raw := range rows {
		row, err := readObjectBytes(raw)
		if err != nil {
			return nil, false, invalid(fmt.Sprintf("rows[%d]", i), "must be an object {date, revenue_usd}")
		}
		day, err := row.text("date")
		if err != nil || day == "" {
			return nil, false, invalid(fmt.Sprintf("rows[%d].date", i), "is required: YYYY-MM-DD")
		}
		amt, err := row.amount("revenue_usd", true)
		if err != nil {
			return nil, false, invalid(fmt.Sprintf("rows[%d].revenue_usd", i), "is required: a decimal string such as \"12.34\"")
		}
		days = append(days, rewards.BookedDay{Day: day, RevenueUSD: amt})
	}
	return days, correction, nil
}

func parseBookedCSV(body []byte) ([]rewards.BookedDay, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\ufeff"))))
	r.FieldsPerRecord = 2
	head, err := r.Read()
	if err != nil || strings.TrimSpace(head[0]) != "date" || strings.TrimSpace(head[1]) != "revenue_usd" {
		return nil, invalid("body", "CSV must start with the header date,revenue_usd")
	}
	var out []rewards.BookedDay
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, invalid("body", fmt.Sprintf("CSV line %d: %v", line, err))
		}
		amt, ok := parseDecimal(strings.TrimSpace(rec[1]))
		if !ok {
			return nil, invalid(fmt.Sprintf("rows[%d].revenue_usd", len(out)), fmt.Sprintf("line %d: must be a decimal such as 12.34", line))
		}
		out = append(out, rewards.BookedDay{Day: strings.TrimSpace(rec[0]), RevenueUSD: amt})
	}
}

// nextLink returns the link of a Link header value whose rel names "next", or "".
func nextLink(values []string) string {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			for _, param := range strings.Split(link, ";")[1:] {
				name, val, _ := strings.Cut(strings.TrimSpace(param), "=")
				if !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return strings.TrimSpace(link)
					}
				}
			}
		}
	}
	return ""
}

// FetchBooked pulls the property's booked revenue for the days from..to from Gamezop's
// reports API and imports it. It returns what was imported and the days as fetched.
func (a *App) FetchBooked(ctx context.Context, property, from, to string, correction bool, actor string) (rewards.BookedImported, []rewards.BookedDay, error) {
	p, err := a.property(property)
	if err != nil {
		return rewards.BookedImported{}, nil, err
	}
	if p.Reports == nil {
		return rewards.BookedImported{}, nil, invalid("property", "has no gamezop_reports configured")
	}
	if _, err := trueUpPeriod(from, to); err != nil {
		return rewards.BookedImported{}, nil, err
	}
	// Today's revenue is not complete: a true-up run on it would release against a short
	// figure, and a day is trued up once (a correction lands in another period). The
	// days just before may still change too (the provider's doc says so): when a period
	// is final is finance's call.
	if today := a.store.Now().UTC().Format(time.DateOnly); to >= today {
		return rewards.BookedImported{}, nil, invalid("to", "must be a day before today ("+today+", UTC): the revenue of today and later is not complete")
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Reports.URL,
		bytes.NewReader(postbacks.GamezopReportsRequest(p.GamezopPropertyID, from, to)))
	if err != nil {
		return rewards.BookedImported{}, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Reports.BearerToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return rewards.BookedImported{}, nil, fmt.Errorf("gamezop reports: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return rewards.BookedImported{}, nil, fmt.Errorf("gamezop reports: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return rewards.BookedImported{}, nil, fmt.Errorf("gamezop reports answered %s: %.200s", resp.Status, body)
	}
	// A next page announced in a Link header (RFC 8288), as many APIs page: the body's own
	// markers are read by ParseGamezopReports; one answer is all Tally reads.
	if next := nextLink(resp.Header.Values("Link")); next != "" {
		return rewards.BookedImported{}, nil, fmt.Errorf("gamezop reports: the answer has more pages (Link: %.200s); Tally reads one answer and would book part of the period: import the days by hand", next)
	}
	days, err := postbacks.ParseGamezopReports(body, p.GamezopPropertyID, from, to)
	if err != nil {
		return rewards.BookedImported{}, nil, err
	}
	if len(days) == 0 {
		return rewards.BookedImported{}, nil, fmt.Errorf("gamezop reports: no rows for property-id %s in %s..%s", p.GamezopPropertyID, from, to)
	}
	// A day of the period the answer leaves out while a figure above 0 is on record:
	// Gamezop revised or dropped it (a day clawed back to nothing, which a report may
	// skip). Importing the rest kept the old figure, and a true-up released buffer
	// against revenue no longer reported; refused, finance decides (an import of 0 for
	// it, a correction if it is trued up).
	answered := map[string]bool{}
	for _, d := range days {
		answered[d.Day] = true
	}
	view, err := a.store.BookedDays(ctx, p.ID, from, to)
	if err != nil {
		return rewards.BookedImported{}, nil, err
	}
	var gone []string
	for _, d := range view {
		if d.HasBooked && !d.Booked.IsZero() && !answered[d.Day] {
			gone = append(gone, d.Day+" (on record: "+rewards.Format(d.Booked)+" USD)")
		}
	}
	if len(gone) > 0 {
		return rewards.BookedImported{}, nil, fmt.Errorf("gamezop reports: the answer has no row for %s: Gamezop may have revised or dropped it; nothing was imported. Import its figure by hand (0 if it is gone; with correction if it is trued up), then fetch again",
			strings.Join(gone, ", "))
	}
	got, err := a.ImportBooked(ctx, property, days, correction, actor)
	return got, days, err
}

// dateProblem says what is wrong with a true-up day given as v: missing, or not a date.
func dateProblem(v, what string) string {
	if v == "" {
		return "is required: a date YYYY-MM-DD (" + what + ")"
	}
	return "must be a date YYYY-MM-DD (" + what + "), such as 2026-11-30, without a time"
}

// trueUpPeriod checks inclusive days from..to and returns how many there are.
func trueUpPeriod(from, to string) (int, error) {
	f, err := time.Parse(time.DateOnly, from)
	if err != nil {
		return 0, invalid("from", dateProblem(from, "UTC day of receipt"))
	}
	t, err := time.Parse(time.DateOnly, to)
	if err != nil {
		return 0, invalid("to", dateProblem(to, "inclusive"))
	}
	n := int(t.Sub(f)/(24*time.Hour)) + 1
	switch {
	case n < 1:
		return 0, invalid("to", "must not be before from")
	case n > maxTrueUpDays:
		return 0, invalid("to", fmt.Sprintf("a period is at most %d days", maxTrueUpDays))
	}
	return n, nil
}

// TrueUpSummary is the variance view of a period: each day and the period's totals, and
// the buffer history recommends.
type TrueUpSummary struct {
	Property          string
	From, To          string
	Days              []TrueUpDayView
	Period            TrueUpDayView
	CurrentBuffer     decimal.Decimal
	RecommendedBuffer *decimal.Decimal // nil without a day with both booked and estimated revenue
	PeriodRatio       *decimal.Decimal // B / E over the days with booked revenue; nil without
}

// TrueUpDayView is one day (or the period): its figures, and the shortfall recorded by
// its true-up, or, not trued up yet, what a true-up of that day alone would book at its
// own ratio (each session under the buffer it was credited with).
type TrueUpDayView struct {
	rewards.TrueUpDay
}

// TrueUpReport is the variance view of from..to (inclusive UTC days of receipt).
func (a *App) TrueUpReport(ctx context.Context, property, from, to string) (TrueUpSummary, error) {
	p, err := a.property(property)
	if err != nil {
		return TrueUpSummary{}, err
	}
	if _, err := trueUpPeriod(from, to); err != nil {
		return TrueUpSummary{}, err
	}
	q := rewards.TrueUpRequest{Property: p.ID, GamezopPropertyID: p.GamezopPropertyID, From: from, To: to,
		DefaultBuffer: decimal.Zero, DefaultSessionCap: decimal.Zero}
	if rr := p.Rules.Revenue; rr != nil {
		q.DefaultBuffer, q.DefaultSessionCap = rr.Buffer, rr.PerSessionCap
	}
	days, err := a.store.TrueUpView(ctx, q)
	if err != nil {
		return TrueUpSummary{}, err
	}
	out := TrueUpSummary{Property: p.ID, From: from, To: to}
	if p.Rules.Revenue != nil {
		out.CurrentBuffer = p.Rules.Revenue.Buffer
	}
	per := &out.Period.TrueUpDay
	per.Day = from + ".." + to
	per.HasBooked = true // the booked revenue of the days that have it
	booked, estimatedBooked := decimal.Zero, decimal.Zero
	for _, d := range days {
		// A day not trued up has the shortfall a true-up of it alone would book (store).
		v := TrueUpDayView{TrueUpDay: d}
		out.Days = append(out.Days, v)
		per.Sessions += d.Sessions
		per.Estimated = per.Estimated.Add(d.Estimated)
		per.Gross = per.Gross.Add(d.Gross)
		per.Credited = per.Credited.Add(d.Credited)
		per.Withheld = per.Withheld.Add(d.Withheld)
		per.Capped = per.Capped.Add(d.Capped)
		per.Released = per.Released.Add(d.Released)
		per.Shortfall = per.Shortfall.Add(v.Shortfall)
		if d.HasBooked {
			booked = booked.Add(d.Booked)
			estimatedBooked = estimatedBooked.Add(d.Estimated)
		}
	}
	per.Booked = booked
	// The period's ratio is over the days with booked revenue only: B / E of those days.
	if r, ok := rewards.Ratio(booked, estimatedBooked); ok {
		out.PeriodRatio = &r
	}
	if rec, ok := rewards.RecommendedBuffer(days); ok {
		out.RecommendedBuffer = &rec
	}
	return out, nil
}

// TrueUpInput asks for a true-up of from..to.
type TrueUpInput struct {
	Property, From, To string
	IdempotencyKey     string
	Actor              string
}

// RunTrueUp releases the buffer of the days from..to once (see store.DB.TrueUp). Errors:
// *ValidationError, ErrUnknownProperty, rewards.ErrNotBooked, rewards.ErrTruedUp,
// rewards.ErrIdempotencyMismatch, rewards.ErrUnavailable (the applier has not caught up).
func (a *App) RunTrueUp(ctx context.Context, in TrueUpInput) (rewards.TrueUpRun, bool, error) {
	p, err := a.property(in.Property)
	if err != nil {
		return rewards.TrueUpRun{}, false, err
	}
	if in.Actor == "" {
		return rewards.TrueUpRun{}, false, ErrUnauthorized
	}
	if err := checkIdempotencyKey(in.IdempotencyKey); err != nil {
		return rewards.TrueUpRun{}, false, err
	}
	if _, err := trueUpPeriod(in.From, in.To); err != nil {
		return rewards.TrueUpRun{}, false, err
	}
	// Said here with the field: the store refuses it too, but its refusal reached the
	// caller as a 400 naming nothing.
	if today := a.store.Now().UTC().Format(time.DateOnly); in.To >= today {
		return rewards.TrueUpRun{}, false, invalid("to", "must be a day before today ("+today+", UTC): a day is trued up once it has ended")
	}
	req := rewards.TrueUpRequest{Property: p.ID, GamezopPropertyID: p.GamezopPropertyID, From: in.From, To: in.To, IdempotencyKey: in.IdempotencyKey, Actor: in.Actor,
		RequestHash: requestHash("trueup", in.From, in.To), DefaultBuffer: decimal.Zero, DefaultSessionCap: decimal.Zero}
	if rr := p.Rules.Revenue; rr != nil {
		req.DefaultBuffer, req.DefaultSessionCap = rr.Buffer, rr.PerSessionCap
	}
	return a.store.TrueUp(ctx, req)
}

// --- HTTP ---

// importBooked: POST /v1/admin/properties/:property/booked-revenue
func (a *App) importBooked(c *gin.Context) {
	body, err := readBody(c.Request)
	if err != nil {
		a.fail(c, err)
		return
	}
	days, correction, err := ParseBooked(body, c.ContentType())
	if err != nil {
		a.fail(c, err)
		return
	}
	switch q := c.Query("correction"); q {
	case "":
	case "true", "false":
		correction = q == "true"
	default: // 1, yes, TRUE read as false before, without a word
		a.fail(c, invalid("correction", "must be true or false"))
		return
	}
	got, err := a.ImportBooked(c.Request.Context(), c.Param("property"), days, correction, actor(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"inserted": got.Inserted, "replaced": got.Replaced, "unchanged": got.Unchanged, "corrected": got.Corrected})
}

type trueUpDayJSON struct {
	Date         string  `json:"date"`
	Sessions     int64   `json:"sessions"`
	EstimatedUSD string  `json:"estimated_usd"`
	BookedUSD    *string `json:"booked_usd"`
	Ratio        *string `json:"ratio"`
	Gross        string  `json:"gross"`
	Credited     string  `json:"credited"`
	Withheld     string  `json:"withheld"`
	CappedExcess string  `json:"capped_excess"`
	Released     string  `json:"released"`
	Shortfall    string  `json:"shortfall"`
	TruedUp      bool    `json:"trued_up"`
}

func toTrueUpDayJSON(d TrueUpDayView) trueUpDayJSON {
	out := trueUpDayJSON{Date: d.Day, Sessions: d.Sessions, EstimatedUSD: amount(d.Estimated), Gross: amount(d.Gross),
		Credited: amount(d.Credited), Withheld: amount(d.Withheld), CappedExcess: amount(d.Capped), Released: amount(d.Released),
		Shortfall: amount(d.Shortfall), TruedUp: d.TruedUp}
	if d.HasBooked {
		b := amount(d.Booked)
		out.BookedUSD = &b
		if r, ok := d.Ratio(); ok {
			s := amount(r)
			out.Ratio = &s
		}
	}
	return out
}

// trueUpView: GET /v1/admin/properties/:property/trueup?from=&to=
func (a *App) trueUpView(c *gin.Context) {
	s, err := a.TrueUpReport(c.Request.Context(), c.Param("property"), c.Query("from"), c.Query("to"))
	if err != nil {
		a.fail(c, err)
		return
	}
	days := make([]trueUpDayJSON, len(s.Days))
	for i, d := range s.Days {
		days[i] = toTrueUpDayJSON(d)
	}
	var rec *string
	if s.RecommendedBuffer != nil {
		x := amount(*s.RecommendedBuffer)
		rec = &x
	}
	period := toTrueUpDayJSON(s.Period)
	period.Ratio = nil
	if s.PeriodRatio != nil {
		r := amount(*s.PeriodRatio)
		period.Ratio = &r
	}
	period.TruedUp = false
	c.JSON(http.StatusOK, gin.H{"property": s.Property, "from": s.From, "to": s.To, "days": days, "period": period,
		"current_buffer": amount(s.CurrentBuffer), "recommended_buffer": rec})
}

type trueUpRunJSON struct {
	ID           string    `json:"id"`
	Property     string    `json:"property"`
	From         string    `json:"from"`
	To           string    `json:"to"`
	Actor        string    `json:"actor"`
	EstimatedUSD string    `json:"estimated_usd"`
	BookedUSD    string    `json:"booked_usd"`
	Ratio        string    `json:"ratio"`
	Released     string    `json:"released"`
	Shortfall    string    `json:"shortfall"`
	Users        int64     `json:"users"`
	Sessions     int64     `json:"sessions"`
	CreatedAt    time.Time `json:"created_at"`
}

// runTrueUp: POST /v1/admin/properties/:property/trueups {from, to}
func (a *App) runTrueUp(c *gin.Context) {
	body, err := readObject(c.Request)
	if err != nil {
		a.fail(c, err)
		return
	}
	key, err := idempotencyKey(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	in := TrueUpInput{Property: c.Param("property"), IdempotencyKey: key, Actor: actor(c)}
	if in.From, err = body.text("from"); err != nil {
		a.fail(c, err)
		return
	}
	if in.To, err = body.text("to"); err != nil {
		a.fail(c, err)
		return
	}
	r, replayed, err := a.RunTrueUp(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if replayed {
		c.Header("Idempotent-Replay", "true")
	}
	c.JSON(http.StatusCreated, trueUpRunJSON{ID: fmt.Sprint(r.ID), Property: r.Property, From: r.From, To: r.To, Actor: r.Actor,
		EstimatedUSD: amount(r.Estimated), BookedUSD: amount(r.Booked), Ratio: amount(r.Ratio), Released: amount(r.Released),
		Shortfall: amount(r.Shortfall), Users: r.Users, Sessions: r.Sessions, CreatedAt: r.CreatedAt.UTC()})
}
