package app_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/store"
	"tally/store/storetest"
)

func (e *env) reverse(id any, key, body, token string) answer {
	e.t.Helper()
	hdr := []string{"Authorization", "Bearer " + token}
	if key != "" {
		hdr = append(hdr, "Idempotency-Key", key)
	}
	return e.do("POST", fmt.Sprintf("/v1/admin/redemptions/%v/reversal", id), body, hdr...)
}

func TestRedemptionReversal(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "u1", "10", "fund-u1")
		red := sub(e.redeem("u1", "k1", `{"amount":"4","reference":"order-1"}`), "redemption")
		id := red["id"]
		if red["reversal_id"] != nil || red["reversed_at"] != nil {
			t.Fatalf("a new redemption shows a reversal: %v", red)
		}

		// Validation first: a reason and a key are required, the id must be one.
		for _, c := range []struct {
			id    any
			key   string
			body  string
			code  int
			field string
		}{
			{id, "", `{"reason":"chargeback"}`, 400, "Idempotency-Key"},
			{id, "v0", `{}`, 400, "reason"},
			{id, "v0", `{"reason":"  "}`, 400, "reason"},
			// A reversal returns the whole redemption: a partial refund is refused, where
			// the member was ignored and all 4 returned (review helper 229).
			{id, "v0", `{"reason":"refund 2 of the 4","amount":"2"}`, 400, "amount"},
			{"x", "v0", `{"reason":"r"}`, 400, "id"},
			{"999999", "v0", `{"reason":"r"}`, 404, ""},
		} {
			a := e.reverse(c.id, c.key, c.body, adminTok)
			if a.Code != c.code || (c.field != "" && problemField(a) != c.field) {
				t.Errorf("reverse %v %q %s: %d %s", c.id, c.key, c.body, a.Code, a.Raw)
			}
		}
		if a := e.reverse(id, "v1", `{"reason":"r"}`, apiKey); a.Code != 401 {
			t.Fatalf("a publisher key reverses: %d %s", a.Code, a.Raw)
		}

		e.clock.Advance(time.Minute)
		first := e.reverse(id, "v1", `{"reason":"chargeback"}`, aliceTok)
		if first.Code != 201 || first.Header.Get("Idempotent-Replay") != "" {
			t.Fatalf("reverse: %d %s", first.Code, first.Raw)
		}
		rev, r, b := sub(first, "reversal"), sub(first, "redemption"), sub(first, "balance")
		if rev["redemption_id"] != id || rev["amount"] != "4" || rev["actor"] != "alice" || rev["reason"] != "chargeback" ||
			rev["user"] != "u1" || rev["property"] != "arcade" {
			t.Fatalf("reversal: %s", first.Raw)
		}
		if r["reversal_id"] != rev["id"] || r["reversed_at"] != t0.Add(time.Minute).Format(time.RFC3339) {
			t.Fatalf("redemption after reversal: %s", first.Raw)
		}
		if b["available"] != "10" || b["redeemed"] != "0" || b["lifetime_earned"] != "10" {
			t.Fatalf("balance after reversal: %s", first.Raw)
		}
		e.wantBalance("arcade", "u1", apiKey, "10", "0")

		// A retry is the same answer; another key finds it reversed; the key with
		// another body is refused.
		again := e.reverse(id, "v1", `{"reason":"chargeback"}`, aliceTok)
		if again.Code != 201 || again.Header.Get("Idempotent-Replay") != "true" || again.Raw != first.Raw {
			t.Fatalf("retry: %d %s\nwant %s", again.Code, again.Raw, first.Raw)
		}
		if a := e.reverse(id, "v2", `{"reason":"chargeback"}`, adminTok); a.Code != 409 ||
			!strings.Contains(a.Body["type"].(string), "already-reversed") {
			t.Fatalf("second reversal: %d %s", a.Code, a.Raw)
		}
		if a := e.reverse(id, "v1", `{"reason":"fraud"}`, aliceTok); a.Code != 422 {
			t.Fatalf("key reused: %d %s", a.Code, a.Raw)
		}
		// A retry that names an amount, of a reversal an earlier release made (it ignored
		// the member), gets that reversal's answer, not a 400 saying it never happened
		// (review helper 234); under another key it is refused.
		if a := e.reverse(id, "v1", `{"reason":"chargeback","amount":"2"}`, aliceTok); a.Code != 201 || a.Header.Get("Idempotent-Replay") != "true" || a.Raw != first.Raw {
			t.Fatalf("retry naming an amount: %d %s\nwant %s", a.Code, a.Raw, first.Raw)
		}
		if a := e.reverse(id, "v3", `{"reason":"chargeback","amount":"2"}`, aliceTok); a.Code != 400 || problemField(a) != "amount" {
			t.Fatalf("another key naming an amount: %d %s", a.Code, a.Raw)
		}

		// The publisher sees it reversed, and the ledger entry that returned it.
		got := e.do("GET", fmt.Sprintf("/v1/properties/arcade/redemptions/%v", id), "", "Authorization", "Bearer "+apiKey)
		if got.Code != 200 || got.Body["reversal_id"] != rev["id"] || got.Body["amount"] != "4" {
			t.Fatalf("get redemption: %d %s", got.Code, got.Raw)
		}
		tx := e.do("GET", "/v1/properties/arcade/users/u1/transactions", "", "Authorization", "Bearer "+apiKey)
		top := tx.Body["data"].([]any)[0].(map[string]any)
		if top["kind"] != "reversal" || top["amount"] != "4" || top["bucket"] != "available" || top["ref"] != "redemption:"+id.(string) {
			t.Fatalf("newest transaction: %s", tx.Raw)
		}
		e.checkInvariants()
	})
}

func TestReversalOnceUnderConcurrentRetries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "u1", "10", "fund-u1")
		id := sub(e.redeem("u1", "k1", `{"amount":"10"}`), "redemption")["id"]
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		ids := map[any]bool{}
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := "same"
				if i%3 == 0 {
					key = fmt.Sprint("rival-", i)
				}
				a := e.reverse(id, key, `{"reason":"chargeback"}`, adminTok)
				mu.Lock()
				defer mu.Unlock()
				codes[a.Code]++
				if a.Code == 201 {
					ids[sub(a, "reversal")["id"]] = true
				}
			}()
		}
		wg.Wait()
		if len(ids) != 1 || codes[201]+codes[409] != 12 {
			t.Fatalf("answers %v, reversal ids %v", codes, ids)
		}
		e.wantBalance("arcade", "u1", apiKey, "10", "0")
		e.checkInvariants()
	})
}

func TestListRedemptionsAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "u%2F1", "10", "fund-u1")
		e.credit("arcade", "u2", "10", "fund-u2")
		var want []string
		for i := range 3 {
			a := e.redeem("u%2F1", fmt.Sprint("k", i), fmt.Sprintf(`{"amount":"%d"}`, i+1))
			want = append([]string{sub(a, "redemption")["id"].(string)}, want...)
		}
		e.redeem("u2", "other", `{"amount":"1"}`)
		var got []string
		cursor := ""
		for range 5 {
			path := "/v1/properties/arcade/users/u%2F1/redemptions?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			a := e.do("GET", path, "", "Authorization", "Bearer "+apiKey)
			if a.Code != 200 {
				t.Fatalf("list: %d %s", a.Code, a.Raw)
			}
			for _, r := range a.Body["data"].([]any) {
				m := r.(map[string]any)
				if m["user"] != "u/1" {
					t.Fatalf("listed another user's redemption: %s", a.Raw)
				}
				got = append(got, m["id"].(string))
			}
			next, _ := a.Body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("listed %v, want newest first %v", got, want)
		}
		// Another property's key sees none of them; a bad cursor is a 400.
		if a := e.do("GET", "/v1/properties/other/redemptions/"+want[0], "", "Authorization", "Bearer "+otherKey); a.Code != 404 {
			t.Fatalf("other property reads the redemption: %d %s", a.Code, a.Raw)
		}
		if a := e.do("GET", "/v1/properties/arcade/users/u2/redemptions?cursor=x", "", "Authorization", "Bearer "+apiKey); a.Code != 400 ||
			problemField(a) != "cursor" {
			t.Fatalf("bad cursor: %d %s", a.Code, a.Raw)
		}
	})
}

// Who did it: each admin action names the admin whose token made it.
func TestAuditNamesTheActor(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		adj := e.do("POST", "/v1/admin/properties/arcade/users/u1/adjustments", `{"amount":"5","reason":"goodwill"}`,
			"Authorization", "Bearer "+aliceTok, "Idempotency-Key", "a1")
		if adj.Code != 201 || sub(adj, "adjustment")["actor"] != "alice" {
			t.Fatalf("adjust as alice: %d %s", adj.Code, adj.Raw)
		}
		id := sub(e.redeem("u1", "k1", `{"amount":"2"}`), "redemption")["id"]
		if a := e.reverse(id, "v1", `{"reason":"chargeback"}`, adminTok); a.Code != 201 {
			t.Fatalf("reverse: %d %s", a.Code, a.Raw)
		}
		a := e.do("GET", "/v1/admin/audit", "", "Authorization", "Bearer "+aliceTok)
		if a.Code != 200 {
			t.Fatalf("audit: %d %s", a.Code, a.Raw)
		}
		rows := a.Body["data"].([]any)
		if len(rows) != 2 {
			t.Fatalf("audit rows: %s", a.Raw)
		}
		rev, ad := rows[0].(map[string]any), rows[1].(map[string]any)
		if rev["actor"] != "admin" || rev["action"] != "reversal" || rev["target"] != "redemption:"+id.(string) || rev["reason"] != "chargeback" {
			t.Errorf("reversal row: %v", rev)
		}
		if ad["actor"] != "alice" || ad["action"] != "adjustment" || ad["target"] != "user:u1" || ad["reason"] != "goodwill" ||
			ad["property"] != "arcade" {
			t.Errorf("adjustment row: %v", ad)
		}
		if a := e.do("GET", "/v1/admin/audit?limit=1", "", "Authorization", "Bearer "+adminTok); a.Body["next_cursor"] == nil {
			t.Errorf("one of two rows without a next cursor: %s", a.Raw)
		}
		if a := e.do("GET", "/v1/admin/audit", "", "Authorization", "Bearer "+apiKey); a.Code != 401 {
			t.Errorf("a publisher key reads the audit: %d", a.Code)
		}
	})
}
