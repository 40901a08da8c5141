package app_test

import (
	"testing"

	"tally/store"
)

// A user id with a Unicode format character (bidi control, zero-width character, BOM)
// is refused by every API that takes one, with a 400 naming the user, as the receivers
// refuse it.
func TestAPIsRefuseFormatCharactersInUserIDs(t *testing.T) {
	e := newEnv(t, store.SQLite)
	pub := []string{"Authorization", "Bearer " + apiKey}
	for _, user := range []string{"abc%E2%80%AEdef", "a%E2%80%8Bb", "%EF%BB%BFsub1", "a%C2%ADb", "a%C2%85b"} {
		for _, c := range []struct {
			method, path, body string
			hdr                []string
		}{
			{"GET", "/v1/properties/arcade/users/" + user + "/balance", "", pub},
			{"GET", "/v1/properties/arcade/users/" + user + "/transactions", "", pub},
			{"POST", "/v1/properties/arcade/users/" + user + "/redemptions", `{"amount":"1"}`, append([]string{"Idempotency-Key", "k-" + user}, pub...)},
			{"POST", "/v1/admin/properties/arcade/users/" + user + "/adjustments", `{"amount":"1","reason":"test"}`,
				[]string{"Authorization", "Bearer " + adminTok, "Idempotency-Key", "k-" + user}},
		} {
			a := e.do(c.method, c.path, c.body, c.hdr...)
			if a.Code != 400 || problemField(a) != "user" {
				t.Errorf("%s %s: %d %s, want 400 naming user", c.method, c.path, a.Code, a.Raw)
			}
		}
	}
}
