package app_test

import (
	"strings"
	"testing"
	"time"

	"tally/store"
	"tally/store/storetest"
)

// The deliveries API: newest first with a cursor, filtered by status, explained, and a
// retry by hand that sends a failed delivery again.
func TestWebhookDeliveriesAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		rcv := newReceiver(t)
		failU1 := true
		rcv.rule = func(body []byte) string {
			if failU1 && strings.Contains(string(body), `"user":"u1"`) {
				return "fail"
			}
			return "ok"
		}
		e := newHookEnv(t, d, rcv.url())
		adm := []string{"Authorization", "Bearer " + adminTok}
		for i, user := range []string{"u1", "u2", "u3"} {
			adjust(t, e, user, "2.5", "k"+string(rune('1'+i)))
		}
		// u1's delivery fails through its whole schedule; u2's and u3's are delivered.
		e.deliver()
		for range 7 {
			e.clock.Advance(13 * time.Hour) // past the longest wait, jitter included
			e.deliver()
		}

		page := e.do("GET", "/v1/admin/webhooks/deliveries?limit=2", "", adm...)
		data, _ := page.Body["data"].([]any)
		if page.Code != 200 || len(data) != 2 || page.Body["next_cursor"] == nil {
			t.Fatalf("first page: %d %s", page.Code, page.Raw)
		}
		newest := data[0].(map[string]any)
		if newest["user"] != "u3" || newest["status"] != "delivered" || newest["url"] != rcv.url() || newest["type"] != "balance.updated" ||
			newest["payload"].(map[string]any)["data"].(map[string]any)["balance"].(map[string]any)["available"] != "2.5" {
			t.Fatalf("newest delivery: %v", newest)
		}
		next := e.do("GET", "/v1/admin/webhooks/deliveries?limit=2&cursor="+page.Body["next_cursor"].(string), "", adm...)
		rest, _ := next.Body["data"].([]any)
		if next.Code != 200 || len(rest) != 1 || next.Body["next_cursor"] != nil {
			t.Fatalf("second page: %s", next.Raw)
		}
		failed := rest[0].(map[string]any)
		if failed["user"] != "u1" || failed["status"] != "failed" || failed["attempts"] != float64(7) || failed["last_status"] != float64(500) ||
			failed["next_attempt_at"] != nil || failed["last_error"] == "" {
			t.Fatalf("failed delivery: %v", failed)
		}
		only := e.do("GET", "/v1/admin/webhooks/deliveries?status=failed", "", adm...)
		if list, _ := only.Body["data"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != failed["id"] {
			t.Fatalf("status=failed: %s", only.Raw)
		}

		// Retried by hand once the endpoint is fixed: pending, due now, sent once more and
		// delivered.
		rcv.mu.Lock()
		failU1 = false
		rcv.mu.Unlock()
		id := failed["id"].(string)
		r := e.do("POST", "/v1/admin/webhooks/deliveries/"+id+"/retry", "", adm...)
		if r.Code != 200 || r.Body["status"] != "pending" || r.Body["next_attempt_at"] == nil {
			t.Fatalf("retry: %d %s", r.Code, r.Raw)
		}
		sent := len(rcv.requests())
		if e.deliver() != 1 || len(rcv.requests()) != sent+1 {
			t.Fatal("the retried delivery was not sent")
		}
		if got := e.do("GET", "/v1/admin/webhooks/deliveries?status=failed", "", adm...); len(got.Body["data"].([]any)) != 0 {
			t.Fatalf("still failed after a successful retry: %s", got.Raw)
		}

		for _, c := range []struct {
			method, path string
			hdr          []string
			code         int
		}{
			{"GET", "/v1/admin/webhooks/deliveries?status=lost", adm, 400},
			{"GET", "/v1/admin/webhooks/deliveries?limit=0", adm, 400},
			{"GET", "/v1/admin/webhooks/deliveries?cursor=x", adm, 400},
			{"GET", "/v1/admin/webhooks/deliveries", []string{"Authorization", "Bearer " + apiKey}, 401},
			{"POST", "/v1/admin/webhooks/deliveries/999999/retry", adm, 404},
			{"POST", "/v1/admin/webhooks/deliveries/abc/retry", adm, 400},
			{"POST", "/v1/admin/webhooks/deliveries/1/retry", nil, 401},
		} {
			if a := e.do(c.method, c.path, "", c.hdr...); a.Code != c.code {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, a.Code, c.code, a.Raw)
			}
		}
	})
}
