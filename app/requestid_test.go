package app_test

import (
	"regexp"
	"strings"
	"testing"

	"tally/store"
	"tally/store/storetest"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// A sane X-Request-Id is kept, anything else is replaced by a generated id; either way
// it is echoed in the answer.
func TestRequestIDHeader(t *testing.T) {
	e := newEnv(t, store.SQLite)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"uuid", "b48a8368-a369-49a4-b427-2d5891ef3763", true},
		{"trace-like", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"dots, colons and underscores", "lb.1:req_42", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"129 characters", strings.Repeat("a", 129), false},
		{"absent", "", false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"non-ASCII", "ü", false},
		{"slash", "a/b", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.sent != "" {
				hdr = []string{"X-Request-Id", tt.sent}
			}
			got := e.do("GET", "/healthz", "", hdr...).Header.Get("X-Request-Id")
			switch {
			case tt.kept && got != tt.sent:
				t.Errorf("X-Request-Id %q, want %q kept", got, tt.sent)
			case !tt.kept && (!generatedID.MatchString(got) || got == tt.sent || seen[got]):
				t.Errorf("X-Request-Id %q, want a new generated id", got)
			}
			seen[got] = true
		})
	}
}

// Every log line of a request carries its id, the handlers' error lines included, and
// the request line names the route template, never the path with the user id in it.
func TestRequestIDOnEveryLogLine(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e, logs := loggedEnv(t, storetest.Open(t, d, nil))
		b := e.do("GET", "/v1/properties/arcade/users/secret-user-7/balance", "", "Authorization", "Bearer "+apiKey, "X-Request-Id", "req-balance")
		if b.Code != 200 {
			t.Fatalf("balance: %d %s", b.Code, b.Raw)
		}
		_ = e.db.Close() // the next request fails in its handler, which logs the failure
		f := e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody, "Authorization", "Bearer "+sppToken, "X-Request-Id", "req-spp")
		if f.Code != 503 {
			t.Fatalf("SPP on a closed database: %d %s", f.Code, f.Raw)
		}
		if strings.Contains(logs.String(), "secret-user-7") {
			t.Fatalf("a log line holds the user id from the path:\n%s", logs)
		}
		byID := map[string][]string{}
		for _, l := range logs.lines(t) {
			switch l["msg"] {
			case "request", "request failed":
				id, _ := l["request_id"].(string)
				byID[id] = append(byID[id], l["msg"].(string))
				if l["msg"] == "request" && l["path"] != nil {
					t.Errorf("the request line logs the path: %v", l)
				}
			}
		}
		if got := strings.Join(byID["req-balance"], ","); got != "request" {
			t.Errorf("lines of req-balance: %q\n%s", got, logs)
		}
		if got := strings.Join(byID["req-spp"], ","); got != "request failed,request" {
			t.Errorf("lines of req-spp: %q\n%s", got, logs)
		}
		if len(byID) != 2 {
			t.Errorf("request lines without their id: %v\n%s", byID, logs)
		}
		if !strings.Contains(logs.String(), `"route":"/v1/properties/:property/users/:user/balance"`) {
			t.Errorf("the route template is not logged:\n%s", logs)
		}
	})
}
