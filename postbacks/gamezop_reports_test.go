package postbacks

import (
	"strings"
	"testing"
)

func TestParseGamezopReports(t *testing.T) {
	for _, c := range []struct {
		name, body, want, err string
	}{
		{"array, numbers and strings", `[{"date":"2026-11-02","property-id":"1234","revenue":0.1},{"date":"2026-11-01","property-id":1234,"revenue":"12.000000000000000001"}]`,
			"2026-11-01=12.000000000000000001 2026-11-02=0.1", ""},
		{"wrapped, other properties skipped, rows of a day added", `{"data":[{"date":"2026-11-01","property_id":"1234","revenue":1.5},{"date":"2026-11-01","property_id":"1234","revenue":2.5},{"date":"2026-11-01","property_id":"9","revenue":100}]}`,
			"2026-11-01=4", ""},
		{"deprecated shape", `{"report":[{"date":"2026-11-01T00:00:00Z","partner_revenue_usd":0.3,"total_revenue_usd":0.5}]}`, "2026-11-01=0.3", ""},
		{"more than 18 decimal places", `[{"date":"2026-11-01","revenue":0.1000000000000000055511151231257827}]`, "", "not a non-negative decimal"},
		{"negative", `[{"date":"2026-11-01","revenue":-1}]`, "", "not a non-negative decimal"},
		{"no rows", `{"status":"ok"}`, "", "no array of rows"},
		{"bad date", `[{"date":"01/11/2026","revenue":1}]`, "", "not YYYY-MM-DD"},
		{"no revenue", `[{"date":"2026-11-01"}]`, "", "has no revenue"},
		{"duplicate key", `[{"date":"2026-11-01","revenue":1,"revenue":2}]`, "", "duplicate"},
		// The partner's share, named as such, wins over a revenue that may be gross.
		{"partner share over revenue", `[{"date":"2026-11-01","revenue":"10","partner_revenue_usd":"7"}]`, "2026-11-01=7", ""},
		// A share named but null is unknown: the revenue beside it may be the gross.
		{"partner share null", `[{"date":"2026-11-01","revenue":"10","partner_revenue_usd":null}]`, "", "partner_revenue_usd is null"},
		{"partner share null, total beside it", `{"report":[{"date":"2026-11-01","partner_revenue_usd":null,"total_revenue_usd":0.5}]}`, "", "partner_revenue_usd is null"},
		{"days outside the period left out", `[{"date":"2026-10-31","revenue":1},{"date":"2026-11-01","revenue":2},{"date":"2026-11-03","revenue":4}]`,
			"2026-11-01=2", ""},
		{"currency USD", `[{"date":"2026-11-01","revenue":1,"currency":"usd"}]`, "2026-11-01=1", ""},
		{"currency INR", `[{"date":"2026-11-01","revenue":812.4,"currency":"INR"}]`, "", "not USD"},
		{"has_more", `{"data":[{"date":"2026-11-01","revenue":1}],"has_more":true}`, "", "more pages (has_more)"},
		{"next_page", `{"data":[{"date":"2026-11-01","revenue":1}],"next_page":2,"total_pages":3}`, "", "more pages (next_page)"},
		{"total_pages above page", `{"data":[{"date":"2026-11-01","revenue":1}],"page":1,"total_pages":2}`, "", "more pages (total_pages)"},
		{"the last page", `{"data":[{"date":"2026-11-01","revenue":1}],"page":2,"total_pages":2,"next_page":null,"has_more":false}`, "2026-11-01=1", ""},
		{"pages from 0", `{"data":[{"date":"2026-11-01","revenue":1}],"page":0,"total_pages":1,"next_page":-1}`, "2026-11-01=1", ""},
		{"more pages in meta", `{"data":[{"date":"2026-11-01","revenue":1}],"meta":{"has_more":true}}`, "", "more pages (meta.has_more)"},
		// Other common spellings of a page that is not the last (the pagination is not
		// documented): each booked page 1 as the whole period.
		{"next_page_url", `{"data":[{"date":"2026-11-01","revenue":1}],"next_page_url":"https://api/x?page=2","current_page":1,"last_page":3,"total":250,"per_page":100}`,
			"", "more pages (next_page_url)"},
		{"last_page above current_page", `{"data":[{"date":"2026-11-01","revenue":1}],"current_page":1,"last_page":3}`, "", "more pages (last_page)"},
		{"links.next", `{"data":[{"date":"2026-11-01","revenue":1}],"links":{"next":"https://api/x?page=2"}}`, "", "more pages (links.next)"},
		{"offset short of total", `{"data":[{"date":"2026-11-01","revenue":1}],"meta":{"total":250,"limit":100,"offset":0}}`, "", "more pages (meta.total)"},
		{"pages above page", `{"data":[{"date":"2026-11-01","revenue":1}],"pagination":{"page":1,"pages":3}}`, "", "more pages (pagination.pages)"},
		{"next_token", `{"data":[{"date":"2026-11-01","revenue":1}],"next_token":"abc"}`, "", "more pages (next_token)"},
		{"has_next", `{"data":[{"date":"2026-11-01","revenue":1}],"has_next":true}`, "", "more pages (has_next)"},
		{"the last page, spelled otherwise", `{"data":[{"date":"2026-11-01","revenue":1}],"current_page":3,"last_page":3,"links":{"next":null},"has_next":false,
			"meta":{"total":250,"limit":100,"offset":200}}`, "2026-11-01=1", ""},
		{"a total without a limit is a sum", `{"data":[{"date":"2026-11-01","revenue":1}],"total":250}`, "2026-11-01=1", ""},
		{"currency of the answer", `{"currency":"INR","data":[{"date":"2026-11-01","revenue":1}]}`, "", "not USD"},
		// Spellings a review found booked a page, or rupees, as the period's dollars.
		{"has_more as a string", `{"data":[{"date":"2026-11-01","revenue":1}],"has_more":"true"}`, "", "more pages (has_more)"},
		{"has_more as a number", `{"data":[{"date":"2026-11-01","revenue":1}],"has_more":1}`, "", "more pages (has_more)"},
		{"links as a list", `{"data":[{"date":"2026-11-01","revenue":1}],"links":[{"rel":"self","href":"/p1"},{"rel":"next","href":"/p2"}]}`,
			"", `more pages (links[rel="next"])`},
		{"a cursor", `{"data":[{"date":"2026-11-01","revenue":1}],"cursor":"abc"}`, "", "more pages (cursor)"},
		{"currency in meta", `{"data":[{"date":"2026-11-01","revenue":1}],"meta":{"currency":"INR"}}`, "", "not USD"},
		{"page_info", `{"data":[{"date":"2026-11-01","revenue":1}],"page_info":{"has_next_page":true}}`, "", "more pages (page_info.has_next_page)"},
		{"pageInfo", `{"data":[{"date":"2026-11-01","revenue":1}],"pageInfo":{"hasNextPage":true}}`, "", "more pages (pageInfo.hasNextPage)"},
		{"HAL _links", `{"data":[{"date":"2026-11-01","revenue":1}],"_links":{"next":{"href":"/p2"}}}`, "", "more pages (_links.next)"},
		{"response_metadata", `{"data":[{"date":"2026-11-01","revenue":1}],"response_metadata":{"next_cursor":"x"}}`, "", "more pages (response_metadata.next_cursor)"},
		{"isLast false", `{"data":[{"date":"2026-11-01","revenue":1}],"isLast":false}`, "", "more pages (isLast=false)"},
		{"has_more_pages", `{"data":[{"date":"2026-11-01","revenue":1}],"has_more_pages":true}`, "", "more pages (has_more_pages)"},
		{"the last page, HAL and a currency object", `{"data":[{"date":"2026-11-01","revenue":1}],"_links":{"self":{"href":"/p1"},"next":{"href":null}},` +
			`"isLast":true,"currency":{"code":"USD"}}`, "2026-11-01=1", ""},
		{"a currency object not in USD", `{"data":[{"date":"2026-11-01","revenue":1}],"currency":{"code":"EUR"}}`, "", "not USD"},
		{"the last page, as strings and lists", `{"data":[{"date":"2026-11-01","revenue":1}],"has_more":"false","more":0,"cursor":"",` +
			`"links":[{"rel":"self","href":"/p1"}],"meta":{"currency":"USD"}}`, "2026-11-01=1", ""},
		// A date with a time of day would slide to the day before when cut to its date
		// (18:30 UTC is the next day's midnight in India): refused. Midnight in its own
		// offset is that date.
		{"UTC instant of another zone's midnight", `[{"date":"2026-11-01T18:30:00.000Z","revenue":7}]`, "", "has a time of day"},
		{"midnight in its offset", `[{"date":"2026-11-02T00:00:00+05:30","revenue":7},{"date":"2026-11-01 00:00:00","revenue":1}]`,
			"2026-11-01=1 2026-11-02=7", ""},
		{"date with junk after it", `[{"date":"2026-11-01 junk","revenue":1}]`, "", "not YYYY-MM-DD"},
		// A row naming no property beside rows that name one is likely a total across
		// them: added to ours it booked 25 for a day of 10.
		{"unnamed row beside named ones", `{"report":[{"date":"2026-11-01","property-id":"1234","revenue":"10"},` +
			`{"date":"2026-11-01","property-id":"9","revenue":"5"},{"date":"2026-11-01","revenue":"15"}]}`, "", "row 2 names no property-id while row 0 does"},
		{"unnamed row before named ones", `[{"date":"2026-11-01","revenue":"15"},{"date":"2026-11-01","property_id":"1234","revenue":"10"}]`,
			"", "row 0 names no property-id while row 1 does"},
	} {
		got, err := ParseGamezopReports([]byte(c.body), "1234", "2026-11-01", "2026-11-02")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
			}
			continue
		}
		var parts []string
		for _, d := range got {
			parts = append(parts, d.Day+"="+d.RevenueUSD.String())
		}
		if err != nil || strings.Join(parts, " ") != c.want {
			t.Errorf("%s: %v %v, want %s", c.name, parts, err, c.want)
		}
	}
}
