package postbacks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// Gamezop's Ad Revenue Reports API (../shared/providers/gamezop-ad-revenue.md) gives the
// booked revenue per property and day. Its current response is not documented in full;
// Tally assumes, and tolerates:
//
//   - rows are an array, either the whole body or the first array member of the body's
//     object among report, data, rows and results (the deprecated API answered
//     {"report": [...]});
//   - each row has date (YYYY-MM-DD, or a time whose first 10 characters are one),
//     property-id or property_id (string or number; a row without one is taken as the
//     requested property's, since the request filters by it), and the publisher's revenue
//     in USD as partner_revenue_usd (the deprecated name, which says it is the partner's
//     share) or else revenue, a JSON number or a string, read from its literal text,
//     never through a float;
//   - several rows of one date (other breakdowns) add up; rows of days outside the
//     requested period are left out.
//
// What would book a wrong figure is refused rather than guessed: a row whose currency
// (currency or currency_code) is not USD, and an answer that says it has more pages
// (has_more, next_page, next, next_cursor, or total_pages above its page): Tally reads
// one answer, and summing part of a period's rows would book part of its revenue.

// GamezopReportsRequest is the body of a reports request for one property and period.
func GamezopReportsRequest(propertyID string, from, to string) []byte {
	b, _ := json.Marshal(map[string]any{
		"start_date": from, "end_date": to, "property_id": propertyID,
		"metrics": []string{"revenue"}, "breakdowns": []string{"date", "property-id"},
	})
	return b
}

// ParseGamezopReports reads the booked revenue of propertyID per day of from..to
// (inclusive, YYYY-MM-DD) from a reports response, days in order.
func ParseGamezopReports(body []byte, propertyID, from, to string) ([]rewards.BookedDay, error) {
	trimmed := bytes.TrimLeft(body, jsonSpace)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		body = append(append([]byte(`{"report":`), trimmed...), '}')
	}
	root, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("gamezop reports: %w", err)
	}
	if more := morePages(root); more != "" {
		return nil, fmt.Errorf("gamezop reports: the answer has more pages (%s); Tally reads one answer and would book part of the period: import the days by hand", more)
	}
	var rows []any
	for _, k := range []string{"report", "data", "rows", "results"} {
		if v, ok := root[k].([]any); ok {
			rows = v
			break
		}
	}
	if rows == nil {
		return nil, fmt.Errorf("gamezop reports: no array of rows (report, data, rows or results) in the answer")
	}
	byDay := map[string]decimal.Decimal{}
	for i, r := range rows {
		row, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("gamezop reports: row %d is not an object", i)
		}
		if pid, ok := firstOf(row, "property-id", "property_id", "propertyId"); ok && scalarText(pid) != propertyID {
			continue
		}
		ds, _ := row["date"].(string)
		if len(ds) < 10 {
			return nil, fmt.Errorf("gamezop reports: row %d: date %v is not YYYY-MM-DD", i, row["date"])
		}
		day, err := time.Parse(time.DateOnly, ds[:10])
		if err != nil {
			return nil, fmt.Errorf("gamezop reports: row %d: date %q is not YYYY-MM-DD", i, ds)
		}
		k := day.Format(time.DateOnly)
		if k < from || k > to {
			continue
		}
		if cur, ok := firstOf(row, "currency", "currency_code"); ok && !strings.EqualFold(scalarText(cur), "USD") {
			return nil, fmt.Errorf("gamezop reports: row %d: revenue in %v, not USD", i, cur)
		}
		rv, ok := firstOf(row, "partner_revenue_usd", "revenue")
		if !ok {
			return nil, fmt.Errorf("gamezop reports: row %d has no revenue", i)
		}
		amount, ok := parseNumber(scalarText(rv))
		if !ok || amount.IsNegative() || rewards.CheckAmount(amount) != nil {
			return nil, fmt.Errorf("gamezop reports: row %d: revenue %v is not a non-negative decimal", i, rv)
		}
		byDay[k] = byDay[k].Add(amount)
	}
	out := make([]rewards.BookedDay, 0, len(byDay))
	for d, v := range byDay {
		out = append(out, rewards.BookedDay{Day: d, RevenueUSD: v})
	}
	slices.SortFunc(out, func(a, b rewards.BookedDay) int {
		if a.Day < b.Day {
			return -1
		}
		if a.Day > b.Day {
			return 1
		}
		return 0
	})
	return out, nil
}

// morePages says which field of a reports answer announces another page, or "".
func morePages(root map[string]any) string {
	for _, k := range []string{"has_more", "hasMore"} {
		if b, ok := root[k].(bool); ok && b {
			return k
		}
	}
	for _, k := range []string{"next_page", "nextPage", "next", "next_cursor", "nextCursor"} {
		more := false
		switch x := root[k].(type) {
		case bool:
			more = x
		case string:
			more = x != "" && x != "0"
		case json.Number:
			more = x.String() != "0"
		case map[string]any:
			more = len(x) > 0
		}
		if more {
			return k
		}
	}
	total, ok := firstOf(root, "total_pages", "totalPages")
	if !ok {
		return ""
	}
	n, okN := parseNumber(scalarText(total))
	page := decimal.NewFromInt(1)
	if p, ok := firstOf(root, "page", "current_page", "currentPage"); ok {
		if pn, okP := parseNumber(scalarText(p)); okP {
			page = pn
		}
	}
	if okN && n.GreaterThan(page) {
		return "total_pages"
	}
	return ""
}

func firstOf(m map[string]any, keys ...string) (any, bool) {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

// scalarText is a string or number's literal text ("" for anything else).
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}
