package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"

	"tally/store"
)

// contractFor loads the served document (see loadContract) or stops the test.
func contractFor(t *testing.T, e *env) *contract {
	t.Helper()
	c, err := loadContract(e.h)
	if err != nil {
		t.Fatalf("app/openapi.yaml: %v", err)
	}
	return c
}

// ginParam is a gin path parameter (:name or *name); OpenAPI writes {name}.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// Every route of the gin engine is documented, and every documented operation is routed.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t, store.SQLite)
	c := contractFor(t, e)
	engine, ok := e.h.(interface{ Routes() gin.RoutesInfo })
	if !ok {
		t.Fatalf("Handler() is a %T, without the gin route table this test reads", e.h)
	}
	routed := map[string]bool{}
	for _, r := range engine.Routes() {
		if strings.HasPrefix(r.Path, "/console") {
			continue // the operators' console: HTML pages for people, not API operations
		}
		routed[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var undocumented, unrouted []string
	for r := range routed {
		if !documented[r] {
			undocumented = append(undocumented, r)
		}
	}
	for d := range documented {
		if !routed[d] {
			unrouted = append(unrouted, d)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unrouted)
	for _, r := range undocumented {
		t.Errorf("%s is routed (app/routes.go) but not documented in app/openapi.yaml", r)
	}
	for _, d := range unrouted {
		t.Errorf("%s is documented in app/openapi.yaml but not routed (app/routes.go)", d)
	}
}

// GET /openapi.json serves app/openapi.yaml as JSON, member for member, and it is an
// OpenAPI 3.1 document (loadContract validates it).
func TestOpenAPIDocumentIsServed(t *testing.T) {
	e := newEnv(t, store.SQLite)
	a := e.do("GET", "/openapi.json", "")
	if a.Code != 200 || a.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %q", a.Code, a.Header.Get("Content-Type"))
	}
	src, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML, served any
	if err := yaml.Unmarshal(src, &fromYAML); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(a.Raw), &served); err != nil {
		t.Fatalf("served document is not JSON: %v", err)
	}
	// Compare as JSON values: YAML's integers and JSON's numbers differ only in Go type.
	var want any
	if err := json.Unmarshal(mustMarshal(t, fromYAML), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(served, want) {
		t.Fatalf("the served document differs from app/openapi.yaml")
	}
	if c := contractFor(t, e); c.doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi: %q, want 3.1.0", c.doc.OpenAPI)
	}
	// The members keep the order they are written in.
	if i, j := strings.Index(a.Raw, `"/healthz"`), strings.Index(a.Raw, `"/v1/admin/audit"`); i < 0 || j < 0 || i > j {
		t.Fatalf("paths are not in the order of app/openapi.yaml")
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every error answer the document describes is a problem (RFC 9457) of the shared
// Problem schema, every answer carries X-Request-Id, every 503 but readiness's says when
// to retry, and every operation has what a client generator needs.
func TestOpenAPIErrorsAreProblems(t *testing.T) {
	e := newEnv(t, store.SQLite)
	c := contractFor(t, e)
	problemRef := "#/components/schemas/Problem"
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if len(op.Responses.Map()) == 0 {
				t.Errorf("%s %s documents no responses", method, path)
			}
			if op.OperationID == "" || len(op.Tags) == 0 {
				t.Errorf("%s %s needs an operationId (generated clients name their methods after it) and a tag", method, path)
			}
			for code, r := range op.Responses.Map() {
				where := fmt.Sprintf("%s %s %s", method, path, code)
				if code == "default" {
					t.Errorf("%s: list each status; a default answer lets undocumented statuses through", where)
					continue
				}
				resp := r.Value
				if h := resp.Headers["X-Request-Id"]; h == nil || !h.Value.Required {
					t.Errorf("%s: X-Request-Id is not a required header", where)
				}
				if code >= "400" {
					mt := resp.Content.Get("application/problem+json")
					if len(resp.Content) != 1 || mt == nil || mt.Schema == nil || mt.Schema.Ref != problemRef {
						t.Errorf("%s: an error answer must be only application/problem+json of %s", where, problemRef)
					}
				}
				if code == "503" && path != "/readyz" {
					if h := resp.Headers["Retry-After"]; h == nil || !h.Value.Required {
						t.Errorf("%s: a 503 must carry Retry-After", where)
					}
				}
			}
		}
	}
}

// The validator env.do runs catches what it is there to catch. Each case is an answer
// the document must refuse; kin-openapi's behaviour on each is pinned here, so an
// upgrade that stops catching one fails this test instead of letting drift through.
func TestContractCatchesDrift(t *testing.T) {
	e := newEnv(t, store.SQLite)
	c := contractFor(t, e)
	const balance = `{"property":"arcade","user":"a/b","currency":"COIN","scale":0,"available":"12.5","pending":"0",` +
		`"redeemed":"0","lifetime_earned":"12.5","updated_at":"2026-11-22T10:00:00Z","next_available_at":null}`
	jsonHdr := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"r1"}}
	problemHdr := http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"r1"}}
	with := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	pub := "/v1/properties/arcade/users/a%2Fb/balance" // an escaped "/" stays in its segment
	report := "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01"
	csvHdr := with(with(jsonHdr, "Content-Type", "text/csv; charset=utf-8"), "Content-Disposition",
		`attachment; filename="payouts-2026-11-01-2026-12-01.csv"`)
	csvHdr.Set("Cache-Control", "no-store")
	const csvHeader = "property,user,currency,opening_available,credited_revenue,credited_targets,credited_achievements," +
		"adjustments,settled,redeemed,closing_available,closing_pending,sessions,estimated_revenue_usd,reversed,credited_release,credited_prizes\n"
	cases := []struct {
		name         string
		method, path string
		status       int
		hdr          http.Header
		body         string
		ok           bool
	}{
		{"a balance as documented", "GET", pub, 200, jsonHdr, balance, true},
		{"a balance with a pending credit maturing", "GET", pub, 200, jsonHdr,
			strings.Replace(balance, `"next_available_at":null`, `"next_available_at":"2026-11-23T10:00:00Z"`, 1), true},
		{"a member missing", "GET", pub, 200, jsonHdr, strings.Replace(balance, `,"next_available_at":null`, ``, 1), false},
		{"a member not documented", "GET", pub, 200, jsonHdr, strings.Replace(balance, `}`, `,"bonus":"1"}`, 1), false},
		{"an amount with an exponent", "GET", pub, 200, jsonHdr, strings.Replace(balance, `"12.5"`, `"1.25e1"`, 1), false},
		{"an amount with trailing zeros", "GET", pub, 200, jsonHdr, strings.Replace(balance, `"12.5"`, `"12.50"`, 1), false},
		{"an amount as a number", "GET", pub, 200, jsonHdr, strings.Replace(balance, `"12.5"`, `12.5`, 1), false},
		{"null where a string is required", "GET", pub, 200, jsonHdr, strings.Replace(balance, `"COIN"`, `null`, 1), false},
		{"a time that is not RFC 3339", "GET", pub, 200, jsonHdr, strings.Replace(balance, `"2026-11-22T10:00:00Z"`, `"22/11/2026"`, 1), false},
		{"no X-Request-Id", "GET", pub, 200, with(jsonHdr, "X-Request-Id", ""), balance, false},
		{"another content type", "GET", pub, 200, with(jsonHdr, "Content-Type", "text/plain"), balance, false},
		{"an undocumented status", "GET", pub, 418, problemHdr, `{"type":"urn:tally:problem:internal","title":"X","status":418}`, false},
		{"an undocumented problem type", "GET", pub, 404, problemHdr, `{"type":"urn:tally:problem:gone","title":"Gone","status":404}`, false},
		{"a documented error", "GET", pub, 404, problemHdr, `{"type":"urn:tally:problem:not-found","title":"Not found","status":404,"detail":"unknown property"}`, true},
		{"an error as application/json", "GET", pub, 404, with(problemHdr, "Content-Type", "application/json"),
			`{"type":"urn:tally:problem:not-found","title":"Not found","status":404}`, false},
		{"a problem whose status is not the answer's", "GET", pub, 404, problemHdr, `{"type":"urn:tally:problem:not-found","title":"Not found","status":400}`, false},
		{"a problem member not documented", "GET", pub, 404, problemHdr,
			`{"type":"urn:tally:problem:not-found","title":"Not found","status":404,"trace":"x"}`, false},
		{"a 401 without WWW-Authenticate", "GET", pub, 401, problemHdr,
			`{"type":"urn:tally:problem:unauthorized","title":"Unauthorized","status":401}`, false},
		{"a 503 without Retry-After", "POST", "/v1/hooks/arcade/gamepush", 503, problemHdr,
			`{"type":"urn:tally:problem:unavailable","title":"Service unavailable","status":503}`, false},
		{"a 503 with Retry-After", "POST", "/v1/hooks/arcade/gamepush", 503, with(problemHdr, "Retry-After", "5"),
			`{"type":"urn:tally:problem:unavailable","title":"Service unavailable","status":503}`, true},
		{"a replay header that is not true", "POST", "/v1/hooks/arcade/gamepush", 200, with(jsonHdr, "Idempotent-Replay", "yes"),
			`{"status":"duplicate","event_id":"7"}`, false},
		{"a nullable cursor, null", "GET", "/v1/properties/arcade/users/u/transactions", 200, jsonHdr, `{"data":[],"next_cursor":null}`, true},
		{"a cursor that is not a string", "GET", "/v1/properties/arcade/users/u/transactions", 200, jsonHdr, `{"data":[],"next_cursor":7}`, false},
		{"a CSV report", "GET", report, 200, csvHdr, csvHeader + "arcade,u1,COIN,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n", true},
		{"a CSV report with a byte-order mark", "GET", report, 200, csvHdr, "\uFEFF" + csvHeader, true},
		{"a CSV report with other columns", "GET", report, 200, csvHdr, "user,property\n", false},
		{"a CSV report without its last column", "GET", report, 200, csvHdr, strings.Replace(csvHeader, ",credited_prizes", "", 1), false},
		{"a report without Content-Disposition", "GET", report, 200, with(csvHdr, "Content-Disposition", ""), csvHeader, false},
		{"a route not documented answered with a problem", "GET", "/nope", 404, problemHdr,
			`{"type":"urn:tally:problem:not-found","title":"Not found","status":404,"detail":"not found"}`, true},
		{"a route not documented answered with JSON", "GET", "/nope", 404, with(problemHdr, "Content-Type", "application/json"),
			`{"type":"urn:tally:problem:not-found","title":"Not found","status":404}`, false},
		{"a method not documented answered 200", "GET", "/v1/hooks/arcade/gamepush", 200, jsonHdr, `{}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			err := c.check(req, tc.status, tc.hdr, []byte(tc.body))
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Errorf("accepted")
			}
		})
	}
	// The user segment holding %2F was routed to the balance operation, not refused as a
	// route the document does not have.
	route, params, err := c.router.FindRoute(httptest.NewRequest("GET", pub, nil))
	if err != nil || route.Operation.OperationID != "getBalance" || params["user"] != "a%2Fb" {
		t.Fatalf("%s routed to %v %v, %v", pub, route, params, err)
	}
}

// A schema's type list is [T, "null"], or the schema names the Go type generated clients
// hold it in (x-go-type): oapi-codegen, which the README tells clients to run, refuses
// any other list and generated nothing for the whole document.
func TestOpenAPITypeListsGenerate(t *testing.T) {
	src, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if types, ok := v["type"].([]any); ok && v["x-go-type"] == nil &&
				(len(types) != 2 || types[1] != "null" || types[0] == "null") {
				t.Errorf("%s: type %v: oapi-codegen refuses it; give x-go-type, or write [T, \"null\"]", path, types)
			}
			for k, x := range v {
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s/%d", path, i), x)
			}
		}
	}
	walk("", doc)
}
