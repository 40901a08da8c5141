package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"tally/store"
	"tally/store/storetest"
)

func (e *env) adjust(property, user, key, body string) answer {
	e.t.Helper()
	hdr := []string{"Authorization", "Bearer " + adminTok}
	if key != "" {
		hdr = append(hdr, "Idempotency-Key", key)
	}
	return e.do("POST", "/v1/admin/properties/"+property+"/users/"+user+"/adjustments", body, hdr...)
}

func TestAdjustments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		credit := e.adjust("arcade", "u1", "a1", `{"amount":"10","reason":"goodwill for ticket 42","bucket":"available"}`)
		if credit.Code != 201 || credit.Header.Get("Idempotent-Replay") != "" {
			t.Fatalf("credit: %d %s", credit.Code, credit.Raw)
		}
		adj, b := sub(credit, "adjustment"), sub(credit, "balance")
		if adj["id"] == "" || adj["user"] != "u1" || adj["amount"] != "10" || adj["bucket"] != "available" ||
			adj["reason"] != "goodwill for ticket 42" || adj["actor"] != "admin" || adj["created_at"] == nil {
			t.Fatalf("adjustment %s", credit.Raw)
		}
		if b["available"] != "10" || b["pending"] != "0" || b["lifetime_earned"] != "10" || b["currency"] != "COIN" {
			t.Fatalf("balance after credit: %s", credit.Raw)
		}
		// Retried (bucket omitted means available; the amount spelled differently).
		again := e.adjust("arcade", "u1", "a1", `{"amount":10.00,"reason":"goodwill for ticket 42"}`)
		if again.Code != 201 || again.Header.Get("Idempotent-Replay") != "true" || again.Raw != credit.Raw {
			t.Fatalf("replay: %d %v\n%s\nwant\n%s", again.Code, again.Header, again.Raw, credit.Raw)
		}
		for _, body := range []string{`{"amount":"11","reason":"goodwill for ticket 42"}`, `{"amount":"10","reason":"another reason"}`} {
			if a := e.adjust("arcade", "u1", "a1", body); a.Code != 422 {
				t.Fatalf("key reused with %s: %d %s", body, a.Code, a.Raw)
			}
		}
		e.wantBalance("arcade", "u1", apiKey, "10", "0")

		debit := e.adjust("arcade", "u1", "a2", `{"amount":"-4","reason":"chargeback"}`)
		if debit.Code != 201 || sub(debit, "adjustment")["amount"] != "-4" || sub(debit, "balance")["available"] != "6" ||
			sub(debit, "balance")["lifetime_earned"] != "6" {
			t.Fatalf("debit: %d %s", debit.Code, debit.Raw)
		}
		if a := e.adjust("arcade", "u1", "a3", `{"amount":"-7","reason":"too much"}`); a.Code != 409 {
			t.Fatalf("debit below zero: %d %s", a.Code, a.Raw)
		}
		if a := e.adjust("arcade", "u1", "a3", `{"amount":"-6","reason":"all of it"}`); a.Code != 201 || sub(a, "balance")["available"] != "0" {
			t.Fatalf("debit to exactly zero: %d %s", a.Code, a.Raw)
		}
		if a := e.adjust("arcade", "ghost", "a4", `{"amount":"-1","reason":"nothing there"}`); a.Code != 409 {
			t.Fatalf("debit of an unknown user: %d %s", a.Code, a.Raw)
		}
		// Each of two credits fits the ledger, their sum does not: the second is a 400
		// naming the amount (not a 500 on Postgres, nor a balance SQLite alone would keep).
		most := `{"amount":"99999999999999999999","reason":"test of the largest balance"}`
		if a := e.adjust("arcade", "whale", "whale-1", most); a.Code != 201 {
			t.Fatalf("the largest credit: %d %s", a.Code, a.Raw)
		}
		if a := e.adjust("arcade", "whale", "whale-2", `{"amount":"1","reason":"one more"}`); a.Code != 400 || problemField(a) != "amount" {
			t.Fatalf("a credit past the ledger's largest balance: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "whale", apiKey, "99999999999999999999", "0")
		if a := e.adjust("arcade", "u1", "a5", `{"amount":"1","reason":"`+strings.Repeat("r", 500)+`"}`); a.Code != 201 {
			t.Fatalf("500-character reason: %d %s", a.Code, a.Raw)
		}

		cases := []struct{ name, key, body, field string }{
			{"pending bucket", "b1", `{"amount":"5","reason":"x","bucket":"pending"}`, "bucket"},
			{"unknown bucket", "b1", `{"amount":"5","reason":"x","bucket":"redeemed"}`, "bucket"},
			{"missing key", "", `{"amount":"5","reason":"x"}`, "Idempotency-Key"},
			{"zero", "b1", `{"amount":"0","reason":"x"}`, "amount"},
			{"fraction at scale 0", "b1", `{"amount":"-0.5","reason":"x"}`, "amount"},
			{"missing amount", "b1", `{"reason":"x"}`, "amount"},
			{"missing reason", "b1", `{"amount":"5"}`, "reason"},
			{"blank reason", "b1", `{"amount":"5","reason":"  "}`, "reason"},
			{"reason over 500", "b1", `{"amount":"5","reason":"` + strings.Repeat("r", 501) + `"}`, "reason"},
			{"reason with NUL", "b1", `{"amount":"5","reason":"a\u0000"}`, "reason"},
			{"trailing data", "b1", `{"amount":"5","reason":"x"}x`, "body"},
		}
		for _, c := range cases {
			a := e.adjust("arcade", "u1", c.key, c.body)
			if a.Code != 400 || problemField(a) != c.field {
				t.Fatalf("%s: %d field %q, want 400 naming %q: %s", c.name, a.Code, problemField(a), c.field, a.Raw)
			}
		}
		if a := e.adjust("arcade", "u1", "b1", `{"amount":"5","reason":"x","bucket":"pending"}`); !strings.Contains(a.Raw, "what can be paid out") {
			t.Fatalf("the refusal of pending does not say why: %s", a.Raw)
		}
		body := `{"amount":"5","reason":"x"}`
		for name, c := range map[string]struct {
			path string
			hdr  []string
			code int
		}{
			"no token":         {"/v1/admin/properties/arcade/users/u1/adjustments", []string{"Idempotency-Key", "z"}, 401},
			"publisher key":    {"/v1/admin/properties/arcade/users/u1/adjustments", []string{"Authorization", "Bearer " + apiKey, "Idempotency-Key", "z"}, 401},
			"unknown property": {"/v1/admin/properties/nope/users/u1/adjustments", []string{"Authorization", "Bearer " + adminTok, "Idempotency-Key", "z"}, 404},
		} {
			if a := e.do("POST", c.path, body, c.hdr...); a.Code != c.code {
				t.Fatalf("%s: %d, want %d: %s", name, a.Code, c.code, a.Raw)
			}
		}

		// Recorded in the ledger like any other entry.
		tx := e.do("GET", "/v1/properties/arcade/users/u1/transactions", "", "Authorization", "Bearer "+apiKey)
		data := tx.Body["data"].([]any)
		if len(data) != 4 {
			t.Fatalf("%d entries, want 4 adjustments: %s", len(data), tx.Raw)
		}
		for _, it := range data {
			if m := it.(map[string]any); m["kind"] != "adjustment" || m["bucket"] != "available" {
				t.Fatalf("entry %v", m)
			}
		}
		e.wantBalance("arcade", "u1", apiKey, "1", "0")
		e.checkInvariants()
	})
}

// A user's day total of revenue credited is a sum, not a balance: finance's debit can
// take the wallet back to 0 while the day's total stays, so a day may credit more than
// the ledger's limit in all while no balance passes it. On Postgres the day total's
// column held only the limit: the next session of the day was quarantined with "numeric
// field overflow" and every replay failed again (migration 00030), where SQLite applied it.
func TestDayTotalMayPassTheLedgerLimit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) {
			rr := *p.Rules.Revenue
			rr.UnitsPerUSD = dec("90000000000000000") // a 1,000 USD session is 9e19 units
			rr.Share, rr.Buffer = dec("1"), dec("0")
			rr.PerSessionCap, rr.PerUserPerDayCap = dec("0"), dec("0")
			rr.Hold = time.Minute
			p.Rules.Revenue = &rr
		})
		post := func(session string) answer {
			t.Helper()
			body := strings.Replace(strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", session, 1), `"0.000012"`, `"1000"`, 1)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			if a.Code != 200 {
				t.Fatalf("spp %s: %d %s", session, a.Code, a.Raw)
			}
			return e.event(a.Body["event_id"])
		}
		if ev := post("s1"); ev.Body["status"] != "applied" {
			t.Fatalf("first session: %s", ev.Raw)
		}
		e.clock.Set(t0.Add(2 * time.Minute))
		defer e.clock.Set(t0)
		if _, err := e.app.Settle(context.Background(), "arcade", ""); err != nil {
			t.Fatal(err)
		}
		if a := e.adjust("arcade", "sub1", "debit", `{"amount":"-90000000000000000000","reason":"fraud"}`); a.Code != 201 {
			t.Fatalf("debit: %d %s", a.Code, a.Raw)
		}
		if ev := post("s2"); ev.Body["status"] != "applied" {
			t.Fatalf("second session of the day, the wallet at 0: %s", ev.Raw)
		}
		e.wantBalance("arcade", "sub1", apiKey, "0", "90000000000000000000")
		e.checkInvariants()
	})
}
