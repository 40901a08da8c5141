package app_test

import (
	"fmt"
	"net/http"
	"strings"
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
		"/v1/properties/arcade/tournaments?x=%":                                    "x",
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
	// Authentication comes first: a caller without credentials is told so, whatever its
	// query; a signed-out operator is sent to sign in, and a signed-in one gets a page.
	if a := e.do("GET", "/v1/properties/arcade/users/u1/transactions?cursor=5%", ""); a.Code != 401 {
		t.Errorf("no key, malformed query: %d %s, want 401", a.Code, a.Raw)
	}
	b := newConsoleClient(t, e.h)
	if res := b.get("/console/users?q=50%"); res.Code != http.StatusSeeOther || res.Header.Get("Location") != "/console/login" {
		t.Errorf("console signed out, malformed query: %d %q, want 303 to sign in", res.Code, res.Header.Get("Location"))
	}
	b.login(adminTok)
	if res := b.get("/console/users?q=50%"); res.Code != 400 || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("console signed in, malformed query: %d %s, want a 400 page", res.Code, res.Header.Get("Content-Type"))
	}
	// The receivers and the ops routes read no query: a provider's postback URL with a
	// stray "%" or ";" in it must not cost it its events.
	for i, q := range []string{"?campaign=50%off", "?tag=a;b"} {
		body := strings.Replace(sppBody, "b48a8368", fmt.Sprint("q", i), 1)
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/spp"+q, body, "Authorization", "Bearer "+sppToken); a.Code != 200 {
			t.Errorf("SPP at a URL with %s: %d %s", q, a.Code, a.Raw)
		}
	}
	if a := e.do("GET", "/healthz?x=%", ""); a.Code != 200 {
		t.Errorf("/healthz?x=%%: %d %s", a.Code, a.Raw)
	}
	// Well-formed escapes still read as before.
	if a := e.do("GET", "/v1/properties/arcade/users/u1/transactions?limit=%31&cursor="+next, "", auth...); a.Code != 200 {
		t.Errorf("escaped limit: %d %s", a.Code, a.Raw)
	}
}
