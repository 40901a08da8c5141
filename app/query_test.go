package app_test

import (
	"testing"

	"tally/store"
)

// A query pair url.Values would drop (a stray "%", a bad escape, a ";") is a 400 naming
// its parameter. Dropped, a cursor read as none: the transactions list answered its first
// page again (a client paging on next_cursor looped) and the feed its very start.
func TestMalformedQueryParameterIsA400NamingIt(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.credit("arcade", "u1", "1", "ka")
	e.credit("arcade", "u1", "1", "kb")
	auth := []string{"Authorization", "Bearer " + apiKey}
	first := e.do("GET", "/v1/properties/arcade/users/u1/transactions?limit=1", "", auth...)
	next, _ := first.Body["next_cursor"].(string)
	if first.Code != 200 || next == "" {
		t.Fatalf("first page: %d %s", first.Code, first.Raw)
	}
	for path, field := range map[string]string{
		"/v1/properties/arcade/users/u1/transactions?limit=1&cursor=" + next + "%": "cursor",
		"/v1/properties/arcade/users/u1/transactions?limit=1&cursor=%zz" + next:    "cursor",
		"/v1/properties/arcade/balances?limit=10&since=v1.99999.1;x":               "since",
		"/v1/properties/arcade/balances?limit=5000%":                               "limit",
		"/v1/properties/arcade/users/u1/transactions?cur%sor=" + next:              "query",
		"/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01%&format=json":     "to",
	} {
		hdr := auth
		if field == "to" {
			hdr = []string{"Authorization", "Bearer " + adminTok}
		}
		a := e.do("GET", path, "", hdr...)
		errs, _ := a.Body["errors"].([]any)
		if a.Code != 400 || len(errs) != 1 || errs[0].(map[string]any)["field"] != field {
			t.Errorf("%s: %d %s, want 400 naming %s", path, a.Code, a.Raw, field)
		}
	}
	// Well-formed escapes still read as before.
	if a := e.do("GET", "/v1/properties/arcade/users/u1/transactions?limit=%31&cursor="+next, "", auth...); a.Code != 200 {
		t.Errorf("escaped limit: %d %s", a.Code, a.Raw)
	}
}
