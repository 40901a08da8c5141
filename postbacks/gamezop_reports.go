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
//     never through a float; a partner_revenue_usd that is null is refused, not replaced
//     by the revenue beside it, which may be the gross;
//   - several rows of one date (other breakdowns) add up; rows of days outside the
//     requested period are left out.
//
// What would book a wrong figure is refused rather than guessed: a currency other than
// USD (currency or currency_code, in a row, at the top or in meta, pagination, paging or
// summary), and an answer that says it has more pages (has_more true, "true" or 1, an
// is_last false, a next page, URL, cursor or token, total_pages above its page, a links
// list with rel "next", at the top or in meta, pagination, paging, links, _links,
// page_info or response_metadata; FetchBooked also reads a Link header's rel="next"):
// Tally reads one answer, and summing part of a period's rows would book part of its
// revenue.

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
	for _, m := range append([]map[string]any{root}, nested(root, "meta", "pagination", "paging", "summary")...) {
		if cur, ok := firstOf(m, "currency", "currency_code", "currencyCode"); ok && !strings.EqualFold(currencyOf(cur), "USD") {
			return nil, fmt.Errorf("gamezop reports: revenue in %q, not USD", currencyOf(cur))
		}
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
	// A row that names no property is taken as the requested property's (the request
	// filters by it) only when no row names one: beside rows of named properties it is
	// likely a total across them, and added to ours it booked their revenue as ours.
	labelled := -1
	for i, r := range rows {
		if row, ok := r.(map[string]any); ok {
			if _, ok := firstOf(row, "property-id", "property_id", "propertyId"); ok {
				labelled = i
				break
			}
		}
	}
	byDay := map[string]decimal.Decimal{}
	for i, r := range rows {
		row, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("gamezop reports: row %d is not an object", i)
		}
		pid, named := firstOf(row, "property-id", "property_id", "propertyId")
		if !named && labelled >= 0 {
			return nil, fmt.Errorf("gamezop reports: row %d names no property-id while row %d does: it may be a total across properties, refused rather than added to property-id %s", i, labelled, propertyID)
		}
		if named && scalarText(pid) != propertyID {
			continue
		}
		ds, _ := row["date"].(string)
		k, err := reportDay(ds)
		if err != nil {
			return nil, fmt.Errorf("gamezop reports: row %d: %w", i, err)
		}
		if k < from || k > to {
			continue
		}
		if cur, ok := firstOf(row, "currency", "currency_code", "currencyCode"); ok && !strings.EqualFold(currencyOf(cur), "USD") {
			return nil, fmt.Errorf("gamezop reports: row %d: revenue in %q, not USD", i, currencyOf(cur))
		}
		// A partner share the row names but leaves null is not known yet: the row's
		// revenue beside it may be the gross (the deprecated API's rows carried both), and
		// booking it would release buffer the publisher has not earned.
		if v, named := row["partner_revenue_usd"]; named && v == nil {
			return nil, fmt.Errorf("gamezop reports: row %d: partner_revenue_usd is null (the publisher's share is not known yet)", i)
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

// reportDay is the day a row's date names: YYYY-MM-DD, or a time at midnight in its own
// offset (the deprecated API's "2026-11-01T00:00:00Z"), whose date it is. A time of day
// other than midnight (a UTC instant of another zone's midnight, say) is refused: cut to
// its first ten characters it named the day before, and a period's rows slid by a day.
func reportDay(ds string) (string, error) {
	if len(ds) == len(time.DateOnly) {
		if _, err := time.Parse(time.DateOnly, ds); err != nil {
			return "", fmt.Errorf("date %q is not YYYY-MM-DD", ds)
		}
		return ds, nil
	}
	var t time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err = time.Parse(layout, ds); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("date %q is not YYYY-MM-DD", ds)
	}
	if h, m, sec := t.Clock(); h != 0 || m != 0 || sec != 0 || t.Nanosecond() != 0 {
		return "", fmt.Errorf("date %q has a time of day, so its day is ambiguous; Tally takes the API's dates", ds)
	}
	return ds[:len(time.DateOnly)], nil
}

// morePages says which field of a reports answer, or of its meta, pagination, paging or
// links object, announces another page, or "". The answer's pagination is not documented,
// so the usual spellings are read: a true has_more/has_next, a next page, URL, cursor or
// token, a page count above the current page, or an offset and limit short of a total.
// A page taken for the whole answer would book part of the period without a word.
func morePages(root map[string]any) string {
	for _, k := range []string{"meta", "pagination", "paging", "links", "_links", "page_info", "pageInfo", "response_metadata"} {
		for _, m := range nested(root, k) {
			if more := morePages(m); more != "" {
				return k + "." + more
			}
		}
	}
	// A list of links, as JSON:API or HAL write them: [{"rel": "next", "href": …}].
	if links, ok := root["links"].([]any); ok {
		for _, l := range links {
			if m, ok := l.(map[string]any); ok && strings.EqualFold(scalarText(m["rel"]), "next") {
				return `links[rel="next"]`
			}
		}
	}
	for _, k := range []string{"is_last", "isLast", "is_last_page", "isLastPage"} {
		if b, ok := root[k].(bool); ok && !b {
			return k + "=false"
		}
	}
	for _, k := range []string{"has_more", "hasMore", "has_next", "hasNext", "has_next_page", "hasNextPage", "has_more_pages", "hasMorePages", "more"} {
		switch x := root[k].(type) {
		case bool:
			if x {
				return k
			}
		case string: // "true", "yes", "1": anything but false, no or 0 is taken for more
			if x = strings.ToLower(strings.TrimSpace(x)); x != "" && x != "false" && x != "no" && x != "0" {
				return k
			}
		case json.Number:
			if n, ok := parseNumber(x.String()); !ok || !n.IsZero() {
				return k
			}
		}
	}
	for _, k := range []string{"next_page", "nextPage", "next", "next_cursor", "nextCursor", "next_page_url", "nextPageUrl",
		"next_url", "nextUrl", "next_link", "nextLink", "next_href", "nextHref", "cursor",
		"next_page_token", "nextPageToken", "next_token", "nextToken", "continuation_token", "continuationToken"} {
		more := false
		switch x := root[k].(type) {
		case bool:
			more = x
		case string:
			more = x != "" && x != "0"
		case json.Number:
			n, err := x.Int64()
			more = err != nil || n > 0 // a page number; 0 or below: none
		case map[string]any: // a link object: {"href": …}, an empty or null one is none
			if href, ok := firstOf(x, "href", "url"); ok {
				more = scalarText(href) != ""
			} else {
				_, hasHref := x["href"]
				_, hasURL := x["url"]
				more = len(x) > 0 && !hasHref && !hasURL
			}
		}
		if more {
			return k
		}
	}
	number := func(keys ...string) (decimal.Decimal, bool) {
		v, ok := firstOf(root, keys...)
		if !ok {
			return decimal.Decimal{}, false
		}
		return parseNumber(scalarText(v))
	}
	page, ok := number("page", "current_page", "currentPage", "page_number", "pageNumber")
	if !ok || page.IsZero() {
		page = decimal.NewFromInt(1) // pages counted from 0: page 0 is the first
	}
	for _, k := range []string{"total_pages", "totalPages", "last_page", "lastPage", "page_count", "pageCount", "pages"} {
		if n, ok := number(k); ok && n.GreaterThan(page) {
			return k
		}
	}
	// Offset paging: only with a limit beside the total, which alone may be a sum.
	if limit, ok := number("limit", "per_page", "perPage", "page_size", "pageSize"); ok && limit.IsPositive() {
		total, okT := number("total", "total_count", "totalCount", "total_rows", "totalRows", "count")
		offset, _ := number("offset", "skip")
		if okT && offset.Add(limit).LessThan(total) {
			return "total"
		}
	}
	return ""
}

// currencyOf is a currency field's code: "USD", or {"code": "USD"}.
func currencyOf(v any) string {
	if m, ok := v.(map[string]any); ok {
		if c, ok := firstOf(m, "code", "iso", "currency"); ok {
			return scalarText(c)
		}
	}
	return scalarText(v)
}

// nested is the objects under m's keys that are objects.
func nested(m map[string]any, keys ...string) []map[string]any {
	var out []map[string]any
	for _, k := range keys {
		if o, ok := m[k].(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
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
