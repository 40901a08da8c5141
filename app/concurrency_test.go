package app_test

import (
	"sync"
	"testing"

	"tally/store"
	"tally/store/storetest"
)

// Many parallel deliveries of one event: one inbox row, one "accepted", one credit.
func TestParallelRedeliveriesAcceptOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		const n = 32
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				answers[i] = e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody, "Authorization", "Bearer "+sppToken)
			}(i)
		}
		wg.Wait()
		accepted, ids := 0, map[any]bool{}
		for _, a := range answers {
			if a.Code != 200 {
				t.Fatalf("delivery answered %d: %s", a.Code, a.Raw)
			}
			if a.Body["status"] == "accepted" {
				accepted++
			}
			ids[a.Body["event_id"]] = true
		}
		if accepted != 1 || len(ids) != 1 {
			t.Fatalf("%d accepted, %d distinct event ids; want 1 and 1", accepted, len(ids))
		}
		b := e.do("GET", "/v1/properties/arcade/users/sub1/balance", "", "Authorization", "Bearer "+apiKey)
		if b.Body["pending"] != "0.672" {
			t.Fatalf("balance after %d deliveries: %s", n, b.Raw)
		}
	})
}
