package postbacks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
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
//     in USD as revenue (else partner_revenue_usd, the deprecated name), a JSON number or
//     a string, read from its literal text, never through a float;
//   - several rows of one date (other breakdowns) add up.

// GamezopReportsRequest is the body of a reports request for one property and period.
func GamezopReportsRequest(propertyID string, from, to string) []byte {
	b, _ := json.Marshal(map[string]any{
		"start_date": from, "end_date": to, "property_id": propertyID,
		"metrics": []string{"revenue"}, "breakdowns": []string{"date", "property-id"},
	})
	return b
}

// ParseGamezopReports reads the booked revenue of propertyID per day from a reports
// response, days in order.
func ParseGamezopReports(body []byte, propertyID string) ([]rewards.BookedDay, error) {
	trimmed := bytes.TrimLeft(body, jsonSpace)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		body = append(append([]byte(`{"report":`), trimmed...), '}')
	}
	root, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("gamezop reports: %w", err)
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
		rv, ok := firstOf(row, "revenue", "partner_revenue_usd")
		if !ok {
			return nil, fmt.Errorf("gamezop reports: row %d has no revenue", i)
		}
		amount, ok := parseNumber(scalarText(rv))
		if !ok || amount.IsNegative() || rewards.CheckAmount(amount) != nil {
			return nil, fmt.Errorf("gamezop reports: row %d: revenue %v is not a non-negative decimal", i, rv)
		}
		k := day.Format(time.DateOnly)
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
