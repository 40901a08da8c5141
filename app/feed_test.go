package app_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"tally/store"
	"tally/store/storetest"
)

// feedClient is a publisher mirroring balances through the feed.
type feedClient struct {
	e      *env
	cursor string
	seen   map[string]int            // user → times the feed returned them
	last   map[string]map[string]any // user → latest balance read
}

// page reads one page and returns its rows.
func (f *feedClient) page(limit int) []map[string]any {
	f.e.t.Helper()
	path := fmt.Sprintf("/v1/properties/arcade/balances?limit=%d", limit)
	if f.cursor != "" {
		path += "&since=" + url.QueryEscape(f.cursor)
	}
	a := f.e.do("GET", path, "", "Authorization", "Bearer "+apiKey)
	next, _ := a.Body["next_cursor"].(string)
	if a.Code != 200 || next == "" {
		f.e.t.Fatalf("feed page: %d %s", a.Code, a.Raw)
	}
	var rows []map[string]any
	for _, it := range a.Body["data"].([]any) {
		m := it.(map[string]any)
		user := m["user"].(string)
		f.seen[user]++
		f.last[user] = m
		rows = append(rows, m)
	}
	f.cursor = next
	return rows
}

// until pages until it has read n rows. On Postgres a change enters the feed once every
// transaction that began writing before it has ended, and the test server is shared with
// other tests, so rows may take a moment to appear; they never appear out of order.
func (f *feedClient) until(limit, n int) []map[string]any {
	f.e.t.Helper()
	var rows []map[string]any
	for deadline := time.Now().Add(20 * time.Second); len(rows) < n; {
		page := f.page(limit)
		rows = append(rows, page...)
		if len(page) < limit {
			if time.Now().After(deadline) {
				f.e.t.Fatalf("feed returned %d rows, want %d", len(rows), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return rows
}

func TestBalanceFeed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		const users = 7
		for i := 0; i < users; i++ {
			e.credit("arcade", fmt.Sprintf("u%d", i), fmt.Sprint(10+i), fmt.Sprintf("fund-%d", i))
		}
		e.credit("other", "elsewhere", "1", "fund-other") // another property's wallet is not in this feed

		f := &feedClient{e: e, seen: map[string]int{}, last: map[string]map[string]any{}}
		rows := f.until(3, users)
		if len(rows) != users || len(f.seen) != users {
			t.Fatalf("paged %d rows over %d users, want each of %d users once: %v", len(rows), len(f.seen), users, f.seen)
		}
		for i := 0; i < users; i++ {
			u := fmt.Sprintf("u%d", i)
			b := f.last[u]
			if f.seen[u] != 1 || b["available"] != fmt.Sprint(10+i) || b["currency"] != "COIN" || b["property"] != "arcade" || b["updated_at"] == nil {
				t.Fatalf("%s: seen %d times, balance %v", u, f.seen[u], b)
			}
		}
		// Nothing changed: an empty page and the same cursor.
		before := f.cursor
		if rows := f.page(3); len(rows) != 0 || f.cursor != before {
			t.Fatalf("idle feed: %v, cursor %q → %q", rows, before, f.cursor)
		}

		// A change after the cursor brings that wallet back, with its new balance, alone.
		if a := e.redeem("u3", "r-u3", `{"amount":"4"}`); a.Code != 201 {
			t.Fatalf("redeem: %s", a.Raw)
		}
		rows = f.until(3, 1)
		if len(rows) != 1 || rows[0]["user"] != "u3" || rows[0]["available"] != "9" || rows[0]["redeemed"] != "4" {
			t.Fatalf("after one change the feed returned %v", rows)
		}
		// A first pass from the beginning sees everyone once, the changed wallet last.
		all := &feedClient{e: e, seen: map[string]int{}, last: map[string]map[string]any{}}
		rows = all.until(100, users)
		if len(rows) != users || rows[len(rows)-1]["user"] != "u3" {
			t.Fatalf("a fresh pass: %v", rows)
		}

		for _, c := range []struct{ query, field string }{
			{"since=garbage", "since"},
			{"since=v1.1.2.3", "since"},
			{"since=v1.-1.0", "since"},
			{"limit=0", "limit"},
			{"limit=1001", "limit"},
			{"limit=x", "limit"},
		} {
			a := e.do("GET", "/v1/properties/arcade/balances?"+c.query, "", "Authorization", "Bearer "+apiKey)
			if a.Code != 400 || problemField(a) != c.field {
				t.Fatalf("%s: %d %s, want 400 naming %s", c.query, a.Code, a.Raw, c.field)
			}
		}
		if a := e.do("GET", "/v1/properties/arcade/balances?limit=1000", "", "Authorization", "Bearer "+apiKey); a.Code != 200 {
			t.Fatalf("limit=1000: %d %s", a.Code, a.Raw)
		}
		if a := e.do("GET", "/v1/properties/arcade/balances", "", "Authorization", "Bearer "+otherKey); a.Code != 401 {
			t.Fatalf("another property's key: %d", a.Code)
		}
		e.checkInvariants()
	})
}
