package app_test

import (
	"strings"
	"testing"

	"tally/store"
	"tally/store/storetest"
)

// Error bodies carry sentences, not Go error text; a 409 for insufficient funds says
// what is available and what was requested, as decimal strings.
func TestProblemBodies(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "sub1", "10", "fund")
		noLeak := func(a answer) {
			t.Helper()
			detail, _ := a.Body["detail"].(string)
			for _, leak := range []string{"store:", "postbacks:", `"sub1"`, "redeem 100"} {
				if detail == "" || strings.Contains(detail, leak) {
					t.Errorf("detail %q (leaks %q?): %s", detail, leak, a.Raw)
				}
			}
		}

		r := e.redeem("sub1", "r1", `{"amount":"100"}`)
		if r.Code != 409 || r.Body["available"] != "10" || r.Body["requested"] != "100" {
			t.Fatalf("redeem 100 of 10: %d %s", r.Code, r.Raw)
		}
		noLeak(r)
		a := e.adjust("arcade", "sub1", "d1", `{"amount":"-15","reason":"chargeback"}`)
		if a.Code != 409 || a.Body["available"] != "10" || a.Body["requested"] != "15" {
			t.Fatalf("debit 15 of 10: %d %s", a.Code, a.Raw)
		}
		noLeak(a)

		v := e.do("POST", "/v1/hooks/arcade/gamezop/spp", strings.Replace(sppBody, `"user-id":"sub1",`, "", 1), "Authorization", "Bearer "+sppToken)
		if v.Code != 400 || v.Body["detail"] != "Invalid field: user-id (required)." || problemField(v) != "user-id" {
			t.Fatalf("SPP without user-id: %d %s", v.Code, v.Raw)
		}
		noLeak(v)
		if m := e.redeem("sub1", "r1", `{"amount":"5"}`); m.Code == 201 {
			if m = e.redeem("sub1", "r1", `{"amount":"6"}`); m.Code != 422 {
				t.Fatalf("key reuse: %d %s", m.Code, m.Raw)
			}
			noLeak(m)
		} else {
			t.Fatalf("redeem 5: %d %s", m.Code, m.Raw)
		}
	})
}
