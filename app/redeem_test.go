package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// credit puts amount into the user's available balance through the adjustments API.
func (e *env) credit(property, user, amount, key string) {
	e.t.Helper()
	a := e.do("POST", "/v1/admin/properties/"+property+"/users/"+user+"/adjustments",
		`{"amount":"`+amount+`","reason":"test funds"}`, "Authorization", "Bearer "+adminTok, "Idempotency-Key", key)
	if a.Code != 201 {
		e.t.Fatalf("credit %s to %s: %d %s", amount, user, a.Code, a.Raw)
	}
}

func (e *env) redeem(user, key, body string) answer {
	e.t.Helper()
	hdr := []string{"Authorization", "Bearer " + apiKey}
	if key != "" {
		hdr = append(hdr, "Idempotency-Key", key)
	}
	return e.do("POST", "/v1/properties/arcade/users/"+user+"/redemptions", body, hdr...)
}

func sub(a answer, obj string) map[string]any {
	m, _ := a.Body[obj].(map[string]any)
	return m
}

func TestRedemptions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "u1", "10", "fund-u1")

		first := e.redeem("u1", "k1", `{"amount":"3","reference":"order-1"}`)
		if first.Code != 201 || first.Header.Get("Idempotent-Replay") != "" {
			t.Fatalf("redeem: %d %v %s", first.Code, first.Header, first.Raw)
		}
		r, b := sub(first, "redemption"), sub(first, "balance")
		if r["id"] == "" || r["user"] != "u1" || r["amount"] != "3" || r["reference"] != "order-1" || r["created_at"] == nil {
			t.Fatalf("redemption %s", first.Raw)
		}
		if b["available"] != "7" || b["redeemed"] != "3" || b["pending"] != "0" || b["lifetime_earned"] != "10" ||
			b["currency"] != "COIN" || b["user"] != "u1" || b["property"] != "arcade" {
			t.Fatalf("balance after: %s", first.Raw)
		}

		// A retry, even spelled differently, is answered as the first time, and changes nothing.
		for _, body := range []string{`{"amount":"3","reference":"order-1"}`, `{"amount":3.0,"reference":"order-1","extra":true}`} {
			again := e.redeem("u1", "k1", body)
			if again.Code != 201 || again.Header.Get("Idempotent-Replay") != "true" || again.Raw != first.Raw {
				t.Fatalf("replay of %s: %d %v\n%s\nwant\n%s", body, again.Code, again.Header, again.Raw, first.Raw)
			}
		}
		e.wantBalance("arcade", "u1", apiKey, "7", "0")

		// The same key for another request.
		for _, body := range []string{`{"amount":"4","reference":"order-1"}`, `{"amount":"3","reference":"order-2"}`, `{"amount":"3"}`} {
			if a := e.redeem("u1", "k1", body); a.Code != 422 {
				t.Fatalf("key reused with %s: %d %s", body, a.Code, a.Raw)
			}
		}
		if a := e.redeem("u2", "k1", `{"amount":"3","reference":"order-1"}`); a.Code != 422 {
			t.Fatalf("key reused for another user: %d %s", a.Code, a.Raw)
		}

		// More than available is refused and leaves nothing behind: the key can be used
		// again once the request can be paid. Exactly available is paid.
		if a := e.redeem("u1", "k2", `{"amount":"8"}`); a.Code != 409 || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("overdraw: %d %s", a.Code, a.Raw)
		}
		if a := e.redeem("u1", "k2", `{"amount":"7"}`); a.Code != 201 || sub(a, "balance")["available"] != "0" || sub(a, "balance")["redeemed"] != "10" {
			t.Fatalf("redeem all: %d %s", a.Code, a.Raw)
		}
		if a := e.redeem("u1", "k3", `{"amount":"1"}`); a.Code != 409 {
			t.Fatalf("redeem from zero: %d %s", a.Code, a.Raw)
		}
		if a := e.redeem("ghost", "k4", `{"amount":"1"}`); a.Code != 409 {
			t.Fatalf("redeem for an unknown user: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "u1", apiKey, "0", "0")

		// The limits themselves are accepted (and then refused for want of funds).
		if a := e.redeem("u1", strings.Repeat("k", 200), `{"amount":"1","reference":"`+strings.Repeat("r", 200)+`"}`); a.Code != 409 {
			t.Fatalf("200-character key and reference: %d %s", a.Code, a.Raw)
		}

		cases := []struct {
			name, key, body, field string
		}{
			{"missing key", "", `{"amount":"1"}`, "Idempotency-Key"},
			{"blank key", "   ", `{"amount":"1"}`, "Idempotency-Key"},
			{"key over 200", strings.Repeat("k", 201), `{"amount":"1"}`, "Idempotency-Key"},
			{"zero", "b1", `{"amount":"0"}`, "amount"},
			{"negative", "b1", `{"amount":"-1"}`, "amount"},
			{"negative number", "b1", `{"amount":-1}`, "amount"},
			{"fraction at scale 0", "b1", `{"amount":"1.5"}`, "amount"},
			{"fraction number at scale 0", "b1", `{"amount":1.5}`, "amount"},
			{"huge float-looking number", "b1", `{"amount":1e400}`, "amount"},
			{"huge exponent", "b1", `{"amount":"1e999999999"}`, "amount"},
			{"tiny exponent", "b1", `{"amount":1e-9999}`, "amount"},
			{"not a number", "b1", `{"amount":"abc"}`, "amount"},
			{"plus sign", "b1", `{"amount":"+1"}`, "amount"},
			{"boolean", "b1", `{"amount":true}`, "amount"},
			{"missing amount", "b1", `{"reference":"x"}`, "amount"},
			{"null amount", "b1", `{"amount":null}`, "amount"},
			{"reference over 200", "b1", `{"amount":"1","reference":"` + strings.Repeat("r", 201) + `"}`, "reference"},
			{"reference with NUL", "b1", `{"amount":"1","reference":"a\u0000b"}`, "reference"},
			{"reference not a string", "b1", `{"amount":"1","reference":7}`, "reference"},
			{"empty body", "b1", ``, "body"},
			{"array", "b1", `[1]`, "body"},
			{"trailing data", "b1", `{"amount":"1"} {}`, "body"},
			{"duplicate amount", "b1", `{"amount":"1","amount":"1000"}`, "body"},
			{"invalid UTF-8", "b1", "{\"amount\":\"1\",\"reference\":\"\xff\"}", "body"},
		}
		for _, c := range cases {
			a := e.redeem("u1", c.key, c.body)
			if a.Code != 400 || problemField(a) != c.field {
				t.Fatalf("%s: %d field %q, want 400 naming %q: %s", c.name, a.Code, problemField(a), c.field, a.Raw)
			}
		}
		if a := e.redeem(strings.Repeat("u", 101), "b2", `{"amount":"1"}`); a.Code != 400 || problemField(a) != "user" {
			t.Fatalf("long user: %d %s", a.Code, a.Raw)
		}
		if a := e.do("POST", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"1"}`, "Idempotency-Key", "n1"); a.Code != 401 {
			t.Fatalf("no API key: %d", a.Code)
		}
		if a := e.do("POST", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"1"}`,
			"Authorization", "Bearer "+otherKey, "Idempotency-Key", "n1"); a.Code != 401 {
			t.Fatalf("another property's key: %d", a.Code)
		}
		if a := e.do("POST", "/v1/properties/nope/users/u1/redemptions", `{"amount":"1"}`,
			"Authorization", "Bearer "+apiKey, "Idempotency-Key", "n1"); a.Code != 404 {
			t.Fatalf("unknown property: %d", a.Code)
		}
		// A credential or key sent twice is refused, not read as one of its copies, which
		// a proxy in front may have read as the other.
		if a := e.do("POST", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"1"}`,
			"Authorization", "Bearer "+apiKey, "Idempotency-Key", "n2", "Idempotency-Key", "n3"); a.Code != 400 || problemField(a) != "Idempotency-Key" {
			t.Fatalf("two Idempotency-Keys: %d %s", a.Code, a.Raw)
		}
		if a := e.do("POST", "/v1/properties/arcade/users/u1/redemptions", `{"amount":"1"}`,
			"Authorization", "Bearer "+apiKey, "Authorization", "Bearer "+apiKey, "Idempotency-Key", "n2"); a.Code != 401 {
			t.Fatalf("two Authorization headers: %d %s", a.Code, a.Raw)
		}
		// A trailing slash is an unknown path: a 404 problem, not a redirect.
		if a := e.do("POST", "/v1/properties/arcade/users/u1/redemptions/", `{"amount":"1"}`,
			"Authorization", "Bearer "+apiKey, "Idempotency-Key", "n2"); a.Code != 404 || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("trailing slash: %d %v %s", a.Code, a.Header, a.Raw)
		}
		e.wantBalance("arcade", "u1", apiKey, "0", "0")

		// Scale 2: cents are fine, a tenth of a cent is not.
		e.credit("other", "u1", "1.5", "fund-other")
		hdr := []string{"Authorization", "Bearer " + otherKey, "Idempotency-Key", "o1"}
		if a := e.do("POST", "/v1/properties/other/users/u1/redemptions", `{"amount":"0.001"}`, hdr...); a.Code != 400 || problemField(a) != "amount" {
			t.Fatalf("0.001 at scale 2: %d %s", a.Code, a.Raw)
		}
		if a := e.do("POST", "/v1/properties/other/users/u1/redemptions", `{"amount":"1.25"}`, hdr...); a.Code != 201 || sub(a, "balance")["available"] != "0.25" {
			t.Fatalf("1.25 at scale 2: %d %s", a.Code, a.Raw)
		}

		// The ledger shows the redemption like any other entry.
		tx := e.do("GET", "/v1/properties/arcade/users/u1/transactions", "", "Authorization", "Bearer "+apiKey)
		if got := tx.Body["data"].([]any)[0].(map[string]any); got["kind"] != "redemption" || got["amount"] != "-7" || got["bucket"] != "available" {
			t.Fatalf("newest entry %v", got)
		}
		e.checkInvariants()
	})
}

// Many redemptions of one wallet at once never overdraw it, and one key redeemed many
// times at once pays once.
func TestConcurrentRedemptionsNeverOverdraw(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.credit("arcade", "rich", "10", "fund-rich")
		const n = 30
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				a := e.redeem("rich", fmt.Sprintf("c-%d", i), `{"amount":"1"}`)
				codes[i] = a.Code
				if a.Code != 201 && a.Code != 409 {
					t.Errorf("redemption %d: %d %s", i, a.Code, a.Raw)
				}
			}(i)
		}
		wg.Wait()
		paid := 0
		for _, c := range codes {
			if c == 201 {
				paid++
			}
		}
		if paid != 10 {
			t.Fatalf("%d of %d redemptions of 1 paid from 10", paid, n)
		}
		b := e.balance("arcade", "rich", apiKey)
		if b.Body["available"] != "0" || b.Body["redeemed"] != "10" {
			t.Fatalf("after the rush: %s", b.Raw)
		}

		e.credit("arcade", "rich", "5", "fund-rich-2")
		ids := make([]string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				a := e.redeem("rich", "same-key", `{"amount":"2"}`)
				if a.Code != 201 {
					t.Errorf("same key %d: %d %s", i, a.Code, a.Raw)
					return
				}
				ids[i], _ = sub(a, "redemption")["id"].(string)
			}(i)
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] || id == "" {
				t.Fatalf("one key paid as several redemptions: %v", ids)
			}
		}
		e.wantBalance("arcade", "rich", apiKey, "3", "0")
		e.checkInvariants()
	})
}

// deadlineStore notes every money write, and the balance read, that reaches the store
// without a deadline.
type deadlineStore struct {
	app.Store
	mu        sync.Mutex
	unbounded []string
}

func (s *deadlineStore) note(op string, ctx context.Context) {
	if _, ok := ctx.Deadline(); !ok {
		s.mu.Lock()
		s.unbounded = append(s.unbounded, op)
		s.mu.Unlock()
	}
}

func (s *deadlineStore) Redeem(ctx context.Context, r rewards.RedeemRequest) (rewards.Redemption, bool, error) {
	s.note("redeem", ctx)
	return s.Store.Redeem(ctx, r)
}

func (s *deadlineStore) Adjust(ctx context.Context, r rewards.AdjustRequest) (rewards.Adjustment, bool, error) {
	s.note("adjust", ctx)
	return s.Store.Adjust(ctx, r)
}

func (s *deadlineStore) Reverse(ctx context.Context, r rewards.ReverseRequest) (rewards.Reversal, bool, error) {
	s.note("reverse", ctx)
	return s.Store.Reverse(ctx, r)
}

func (s *deadlineStore) ImportBooked(ctx context.Context, in rewards.BookedImport) (rewards.BookedImported, error) {
	s.note("import booked", ctx)
	return s.Store.ImportBooked(ctx, in)
}

func (s *deadlineStore) TrueUpView(ctx context.Context, q rewards.TrueUpRequest) ([]rewards.TrueUpDay, error) {
	s.note("trueup view", ctx)
	return s.Store.TrueUpView(ctx, q)
}

func (s *deadlineStore) TrueUp(ctx context.Context, q rewards.TrueUpRequest) (rewards.TrueUpRun, bool, error) {
	s.note("trueup run", ctx)
	return s.Store.TrueUp(ctx, q)
}

func (s *deadlineStore) Balance(ctx context.Context, property, user string) (rewards.Balance, error) {
	s.note("balance", ctx)
	return s.Store.Balance(ctx, property, user)
}

// Redemptions, reversals, adjustments, balance reads, booked-revenue imports and
// true-ups reach the database with a deadline: with the database hung, a request held its pooled connection until the
// client gave up (the server's write timeout does not end a request's context).
func TestMoneyWritesHaveADeadline(t *testing.T) {
	e := newEnv(t, store.SQLite)
	st := &deadlineStore{Store: e.db}
	a := app.New(st, app.Options{Properties: []app.Property{arcade(), other()}, AdminToken: adminTok})
	t.Cleanup(a.Close)
	e.app, e.h = a, a.Handler()
	e.credit("arcade", "u1", "10", "fund")
	r := e.redeem("u1", "r1", `{"amount":"4"}`)
	if r.Code != 201 {
		t.Fatalf("redeem: %d %s", r.Code, r.Raw)
	}
	if rv := e.reverse(sub(r, "redemption")["id"], "rv1", `{"reason":"refund"}`, adminTok); rv.Code != 201 {
		t.Fatalf("reverse: %d %s", rv.Code, rv.Raw)
	}
	e.wantBalance("arcade", "u1", apiKey, "10", "0")
	admin := []string{"Authorization", "Bearer " + adminTok}
	if a := e.do("POST", "/v1/admin/properties/arcade/booked-revenue", `[{"date":"2026-11-22","revenue_usd":1}]`, admin...); a.Code != 200 {
		t.Fatalf("import: %d %s", a.Code, a.Raw)
	}
	if a := e.do("GET", "/v1/admin/properties/arcade/trueup?from=2026-11-22&to=2026-11-23", "", admin...); a.Code != 200 {
		t.Fatalf("trueup view: %d %s", a.Code, a.Raw)
	}
	e.do("POST", "/v1/admin/properties/arcade/trueups", `{"from":"2026-11-22","to":"2026-11-23"}`, append(admin, "Idempotency-Key", "t1")...)
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.unbounded) != 0 {
		t.Fatalf("reached the store without a deadline: %v", st.unbounded)
	}
}

// A retry of a redemption or adjustment that an earlier release accepted, and today's
// rules refuse (a rule tightened in between: here a reference or reason longer than
// today's limits), is answered as the first time, replayed. A 400 would tell the caller
// it never happened, though the user was paid. The same key with another request, and
// a new key with the refused request, are still refused, and write nothing.
func TestRetryOfAWriteTodaysRulesRefuseReplays(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		ctx := context.Background()
		e.credit("arcade", "u1", "10", "fund-u1")
		long := strings.Repeat("r", 201) // today's limit on a reference is 200 characters
		paid, _, err := e.db.Redeem(ctx, rewards.RedeemRequest{Property: "arcade", User: "u1", Amount: dec("3"), Reference: long,
			IdempotencyKey: "k-old", RequestHash: app.RequestHash("redemption", "u1", "3", long)})
		if err != nil {
			t.Fatal(err)
		}
		body := `{"amount":"3","reference":"` + long + `"}`
		again := e.redeem("u1", "k-old", body)
		if again.Code != 201 || again.Header.Get("Idempotent-Replay") != "true" || sub(again, "redemption")["id"] != fmt.Sprint(paid.ID) {
			t.Fatalf("retry of redemption %d: %d %v %s", paid.ID, again.Code, again.Header, again.Raw)
		}
		for _, c := range []struct{ key, body string }{{"k-old", `{"amount":"4","reference":"` + long + `"}`}, {"k-new", body}} {
			if a := e.redeem("u1", c.key, c.body); a.Code != 400 || problemField(a) != "reference" {
				t.Fatalf("key %s, body %.20s…: %d, want 400 naming reference: %s", c.key, c.body, a.Code, a.Raw)
			}
		}

		reason := strings.Repeat("why ", 126) // 504 characters, past today's 500
		made, _, err := e.db.Adjust(ctx, rewards.AdjustRequest{Property: "arcade", User: "u1", Amount: dec("5"), Bucket: rewards.Available,
			Reason: reason, IdempotencyKey: "a-old", Actor: "alice", RequestHash: app.RequestHash("adjustment", "u1", "5", "available", reason)})
		if err != nil {
			t.Fatal(err)
		}
		abody := `{"amount":"5","reason":"` + reason + `"}`
		if a := e.adjust("arcade", "u1", "a-old", abody); a.Code != 201 || a.Header.Get("Idempotent-Replay") != "true" ||
			sub(a, "adjustment")["id"] != fmt.Sprint(made.ID) {
			t.Fatalf("retry of adjustment %d: %d %v %s", made.ID, a.Code, a.Header, a.Raw)
		}
		if a := e.adjust("arcade", "u1", "a-new", abody); a.Code != 400 || problemField(a) != "reason" {
			t.Fatalf("new key, refused reason: %d, want 400 naming reason: %s", a.Code, a.Raw)
		}
		// A reversal of the redemption, made with a reason past today's limit.
		rev, _, err := e.db.Reverse(ctx, rewards.ReverseRequest{RedemptionID: paid.ID, Reason: reason, Actor: "alice",
			IdempotencyKey: "r-old", RequestHash: app.RequestHash("reversal", fmt.Sprint(paid.ID), reason)})
		if err != nil {
			t.Fatal(err)
		}
		if a := e.reverse(paid.ID, "r-old", abody, aliceTok); a.Code != 201 || a.Header.Get("Idempotent-Replay") != "true" ||
			sub(a, "reversal")["id"] != fmt.Sprint(rev.ID) {
			t.Fatalf("retry of reversal %d: %d %v %s", rev.ID, a.Code, a.Header, a.Raw)
		}
		// The lookup's own refusal (no such redemption) leaves the 400.
		if a := e.reverse(paid.ID+100, "r-other", abody, aliceTok); a.Code != 400 || problemField(a) != "reason" {
			t.Fatalf("unknown redemption, refused reason: %d, want 400 naming reason: %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "u1", apiKey, "15", "0") // 10 − 3 + 5 + 3, each once
	})
}

// A request for a user too long to be anyone's (kilobytes, past what an index entry
// holds) is refused with a 400, not looked up into a 503: the replay lookup's insert of
// the wallet, on Postgres, failed on the index entry's size, and the error was taken
// for the database being unavailable, so the client was told to retry forever (review
// helper 223).
func TestRefusedRequestOfAnUnindexableUserIs400(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		rnd := rand.New(rand.NewPCG(1, 2)) // incompressible: Postgres compresses a repeated one below the limit
		const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, 3000)
		for i := range b {
			b[i] = alnum[rnd.IntN(len(alnum))]
		}
		user := string(b)
		for name, a := range map[string]answer{
			"redemption": e.redeem(user, "k1", `{"amount":"3","reference":"r"}`),
			"adjustment": e.adjust("arcade", user, "a1", `{"amount":"3","reason":"r"}`),
		} {
			if a.Code != 400 {
				t.Errorf("%s for a user of 3,000 characters: %d %s, want 400", name, a.Code, a.Raw)
			}
		}
	})
}

// A request today's rules refuse, asked while the database is down, is a 503 with
// Retry-After, as a valid one is: whether its key holds a write could not be looked up,
// and a retry will know (review helper 218: the lookup's error went untranslated, a 500).
func TestRefusedWriteWithTheDatabaseDownIs503(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		_ = e.db.Close()
		long := strings.Repeat("r", 201)
		for name, a := range map[string]answer{
			"redemption": e.redeem("u1", "k1", `{"amount":"3","reference":"`+long+`"}`),
			"adjustment": e.adjust("arcade", "u1", "a1", `{"amount":"3","reason":"`+strings.Repeat("r", 501)+`"}`),
		} {
			if a.Code != 503 || a.Header.Get("Retry-After") == "" {
				t.Errorf("%s: %d %v %s, want 503 with Retry-After", name, a.Code, a.Header, a.Raw)
			}
		}
	})
}

// A retry that today's rules refuse, sent while the first request is still being
// written (its wallet locked, its row written, not committed: an older replica during
// a rolling deploy), waits for it and replays it, as an accepted retry does; answered
// at once it was a 400, and then the first committed and paid (review helper 218). So
// does the retry of a new user's first adjustment, whose wallet the first is creating:
// no row was there to wait for (review helper 219).
func TestRefusedRetryWaitsForTheWriteInFlight(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	clock := storetest.NewClock(t0)
	db := storetest.OpenURL(t, u, clock.Now)
	a := app.New(db, app.Options{Properties: []app.Property{arcade(), other()}, AdminToken: adminTok, IngestWorkers: 2})
	t.Cleanup(a.Close)
	e := &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}
	e.credit("arcade", "u1", "10", "fund-u1")
	long := strings.Repeat("r", 201)
	reason := strings.Repeat("why ", 126) // 504 characters, past today's 500

	first, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	for _, c := range []struct {
		name   string
		writes []string // the first request's, in flight
		args   []any
		retry  func() answer
	}{
		{"redemption", []string{`SELECT 1 FROM wallets WHERE property = 'arcade' AND user_id = 'u1' FOR UPDATE`,
			`INSERT INTO redemptions (property, user_id, amount, reference, idempotency_key, request_hash, available_after,
				pending_after, redeemed_after, lifetime_after, created_at) VALUES ('arcade', 'u1', 3, $1, 'k-late', $2, 7, 0, 3, 10, now())`},
			[]any{long, app.RequestHash("redemption", "u1", "3", long)},
			func() answer { return e.redeem("u1", "k-late", `{"amount":"3","reference":"`+long+`"}`) }},
		{"new user's adjustment", []string{`INSERT INTO wallets (property, user_id, created_at, updated_at) VALUES ('arcade', 'newbie', now(), now())`,
			`INSERT INTO adjustments (property, user_id, amount, bucket, reason, actor, idempotency_key, request_hash, available_after,
				pending_after, redeemed_after, lifetime_after, created_at) VALUES ('arcade', 'newbie', 5, 'available', $1, 'alice', 'a-late', $2,
				5, 0, 0, 5, now())`},
			[]any{reason, app.RequestHash("adjustment", "newbie", "5", "available", reason)},
			func() answer { return e.adjust("arcade", "newbie", "a-late", `{"amount":"5","reason":"`+reason+`"}`) }},
	} {
		tx, err := first.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.Exec(c.writes[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(c.writes[1], c.args...); err != nil {
			t.Fatal(err)
		}
		retry := make(chan answer, 1)
		go func() { retry <- c.retry() }()
		// The retry must wait on the wallet, not answer.
		for deadline := time.Now().Add(30 * time.Second); ; {
			select {
			case r := <-retry:
				t.Fatalf("%s: answered while the first was in flight: %d %s", c.name, r.Code, r.Raw)
			default:
			}
			var waiting int
			if err := first.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE '%wallets%'`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the retry neither answered nor waited for the wallet", c.name)
			}
			time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if r := <-retry; r.Code != 201 || r.Header.Get("Idempotent-Replay") != "true" {
			t.Fatalf("%s: retry after the first committed: %d %v %s, want 201 replayed", c.name, r.Code, r.Header, r.Raw)
		}
	}
	// A refused request of a user with no wallet leaves none behind.
	if r := e.adjust("arcade", "nobody", "a-none", `{"amount":"5","reason":"`+reason+`"}`); r.Code != 400 {
		t.Fatalf("refused adjustment of a new user: %d %s, want 400", r.Code, r.Raw)
	}
	var n int
	if err := first.QueryRowContext(ctx, `SELECT count(*) FROM wallets WHERE user_id = 'nobody'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d wallets of a refused request's user, %v", n, err)
	}
}
