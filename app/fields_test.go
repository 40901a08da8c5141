package app_test

import (
	"reflect"
	"slices"
	"testing"

	"tally/store"
	"tally/store/storetest"
)

// problemFields lists the fields a 400 names, sorted.
func problemFields(a answer) []string {
	var fields []string
	errs, _ := a.Body["errors"].([]any)
	for _, e := range errs {
		f, _ := e.(map[string]any)["field"].(string)
		fields = append(fields, f)
	}
	slices.Sort(fields)
	return fields
}

// A client fixing a refused write learns every bad field from one 400, whether the field
// did not decode or decoded to a value the route refuses; nothing is saved.
func TestMoneyWritesNameEveryBadField(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "u1", "10", "fund-u1")
		id := sub(e.redeem("u1", "k1", `{"amount":"4"}`), "redemption")["id"]
		admin := "/v1/admin/properties/arcade/users/u1/adjustments"
		reversal := "/v1/admin/redemptions/" + id.(string) + "/reversal"
		for _, c := range []struct {
			name, path, body string
			hdr              []string
			want             []string
		}{
			{"redemption, decoding", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"abc","reference":5}`,
				[]string{"Authorization", "Bearer " + apiKey}, []string{"Idempotency-Key", "amount", "reference"}},
			{"redemption, values", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"0","reference":"a\u0001b"}`,
				[]string{"Authorization", "Bearer " + apiKey}, []string{"Idempotency-Key", "amount", "reference"}},
			{"redemption, mixed", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"1.5","reference":false}`,
				[]string{"Authorization", "Bearer " + apiKey, "Idempotency-Key", "r1"}, []string{"reference", "amount"}},
			{"adjustment, decoding", admin, `{"amount":[1],"reason":7,"bucket":true}`,
				[]string{"Authorization", "Bearer " + adminTok}, []string{"Idempotency-Key", "amount", "reason", "bucket"}},
			{"adjustment, values", admin, `{"amount":"0","reason":" ","bucket":"pending"}`,
				[]string{"Authorization", "Bearer " + adminTok, "Idempotency-Key", "a1"}, []string{"amount", "reason", "bucket"}},
			{"adjustment, mixed", admin, `{"amount":"0.5","bucket":"x","reason":{}}`,
				[]string{"Authorization", "Bearer " + adminTok, "Idempotency-Key", "a1"}, []string{"reason", "amount", "bucket"}},
			// An id the receivers refuse, with no wallet: named with the others.
			{"adjustment of a new wallet of a refused id", "/v1/admin/properties/arcade/users/a%EF%BF%BD/adjustments", `{"amount":"5","reason":7}`,
				[]string{"Authorization", "Bearer " + adminTok, "Idempotency-Key", "a2"}, []string{"reason", "user"}},
			{"reversal, decoding", reversal, `{"reason":1}`,
				[]string{"Authorization", "Bearer " + adminTok}, []string{"Idempotency-Key", "reason"}},
			{"reversal, values", reversal, `{"reason":""}`,
				[]string{"Authorization", "Bearer " + adminTok}, []string{"Idempotency-Key", "reason"}},
		} {
			slices.Sort(c.want)
			a := e.do("POST", c.path, c.body, c.hdr...)
			if got := problemFields(a); a.Code != 400 || !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %d, fields %q, want 400 naming %q\n%s", c.name, a.Code, got, c.want, a.Raw)
			}
		}
		e.wantBalance("arcade", "u1", apiKey, "6", "0")
	})
}
