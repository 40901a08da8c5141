package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"tally/app"
	"tally/postbacks"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// cents is a property with a wallet scale of 2 and the arcade's revenue rule, with an
// unauthenticated SPP source and no Gamezop property id check.
func cents() app.Property {
	a := arcade()
	rev := *a.Rules.Revenue
	return app.Property{ID: "cents", Currency: "PTS", Scale: 2, APIKeys: []string{"cents-key-123"},
		Sources: map[rewards.Source]postbacks.Credentials{rewards.SourceGamezopSPP: {}},
		Rules:   rewards.Rules{Property: "cents", Currency: "PTS", Scale: 2, Revenue: &rev}}
}

// newEnvWith is newEnv with other properties; it also returns the database URL, for
// tests that act as another replica on the same database.
func newEnvWith(t *testing.T, d store.Dialect, props ...app.Property) (*env, string) {
	t.Helper()
	clock := storetest.NewClock(t0)
	u := storetest.URL(t, d)
	db := storetest.OpenURL(t, u, clock.Now)
	a := app.New(db, app.Options{Properties: props, AdminToken: adminTok, IngestWorkers: 2})
	t.Cleanup(a.Close)
	return &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}, u
}

// checkInvariants fails the test unless the ledger is consistent for every user.
func (e *env) checkInvariants() {
	e.t.Helper()
	if err := e.db.CheckInvariants(context.Background(), ""); err != nil {
		e.t.Fatalf("invariants: %v", err)
	}
}

func (e *env) balance(property, user, key string) answer {
	e.t.Helper()
	b := e.do("GET", "/v1/properties/"+property+"/users/"+user+"/balance", "", "Authorization", "Bearer "+key)
	if b.Code != 200 {
		e.t.Fatalf("balance of %s/%s: %d %s", property, user, b.Code, b.Raw)
	}
	return b
}

func (e *env) wantBalance(property, user, key, available, pending string) {
	e.t.Helper()
	b := e.balance(property, user, key)
	if b.Body["available"] != available || b.Body["pending"] != pending {
		e.t.Fatalf("balance of %s/%s: available %v pending %v, want %s and %s: %s", property, user,
			b.Body["available"], b.Body["pending"], available, pending, b.Raw)
	}
}

func (e *env) spp(property, session, token string) {
	e.t.Helper()
	body := strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", session, 1)
	var hdr []string
	if token != "" {
		hdr = []string{"Authorization", "Bearer " + token}
	}
	if a := e.do("POST", "/v1/hooks/"+property+"/gamezop/spp", body, hdr...); a.Code != 200 || a.Body["status"] != "accepted" || e.event(a.Body["event_id"]).Body["status"] != "applied" {
		e.t.Fatalf("SPP %s: %d %s", session, a.Code, a.Raw)
	}
}

func (e *env) settle(property string) []rewards.SettlementRun {
	e.t.Helper()
	runs, err := e.app.Settle(context.Background(), property, "")
	if err != nil {
		e.t.Fatalf("Settle(%q): %v", property, err)
	}
	return runs
}

func runOf(t *testing.T, runs []rewards.SettlementRun, property string) rewards.SettlementRun {
	t.Helper()
	for _, r := range runs {
		if r.Property == property {
			return r
		}
	}
	t.Fatalf("no run of %s in %+v", property, runs)
	return rewards.SettlementRun{}
}

func wantRun(t *testing.T, r rewards.SettlementRun, status string, users, entries int64, moved string) {
	t.Helper()
	if r.Status != status || r.Users != users || r.Entries != entries || !r.Amount.Equal(dec(moved)) || r.Error != "" {
		t.Fatalf("run of %s: %s, %d users, %d entries, %s moved, error %q; want %s, %d, %d, %s",
			r.Property, r.Status, r.Users, r.Entries, r.Amount, r.Error, status, users, entries, moved)
	}
}

// Pending credits move to available once their hold has passed, rounded down to each
// property's scale, and the fraction stays in pending; each run is listed for finance.
func TestSettlementMovesMaturedCreditsRoundedDownToScale(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e, _ := newEnvWith(t, d, arcade(), cents())
		// arcade (scale 0): three sessions of 0.672 (24h hold) and a 50 target (no hold).
		for _, s := range []string{"s-1", "s-2", "s-3"} {
			e.spp("arcade", s, sppToken)
		}
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", scoreBody, "api-key", scoresKey); a.Code != 200 {
			t.Fatalf("score: %s", a.Raw)
		}
		// cents (scale 2): one session of 0.672.
		e.spp("cents", "c-1", "")
		e.wantBalance("arcade", "sub1", apiKey, "0", "52.016")

		// Only the target has matured.
		runs := e.settle("")
		if len(runs) != 2 {
			t.Fatalf("runs %+v, want one per property", runs)
		}
		wantRun(t, runOf(t, runs, "arcade"), rewards.RunCompleted, 1, 1, "50")
		wantRun(t, runOf(t, runs, "cents"), rewards.RunCompleted, 0, 0, "0")
		e.wantBalance("arcade", "sub1", apiKey, "50", "2.016")
		e.wantBalance("cents", "sub1", "cents-key-123", "0", "0.672")
		e.checkInvariants()

		// One microsecond before the hold ends nothing more matures; at the end it does.
		e.clock.Advance(24*time.Hour - time.Microsecond)
		wantRun(t, runOf(t, e.settle(""), "arcade"), rewards.RunCompleted, 0, 0, "0")
		e.wantBalance("arcade", "sub1", apiKey, "50", "2.016")
		e.clock.Advance(time.Microsecond)
		runs = e.settle("")
		wantRun(t, runOf(t, runs, "arcade"), rewards.RunCompleted, 1, 3, "2")
		wantRun(t, runOf(t, runs, "cents"), rewards.RunCompleted, 1, 1, "0.67")
		e.wantBalance("arcade", "sub1", apiKey, "52", "0.016")
		e.wantBalance("cents", "sub1", "cents-key-123", "0.67", "0.002")
		e.checkInvariants()

		// One property only; an unknown one is refused before anything runs.
		if runs := e.settle("cents"); len(runs) != 1 || runs[0].Property != "cents" {
			t.Fatalf("Settle(cents) = %+v", runs)
		}
		if _, err := e.app.Settle(context.Background(), "nope", ""); err == nil || !strings.Contains(err.Error(), "unknown property") {
			t.Fatalf("Settle(nope): %v", err)
		}

		// Finance sees every run, newest first; only with the admin token.
		if a := e.do("GET", "/v1/admin/settlements", ""); a.Code != 401 {
			t.Fatalf("settlements without a token: %d", a.Code)
		}
		if a := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+apiKey); a.Code != 401 {
			t.Fatalf("settlements with a publisher key: %d", a.Code)
		}
		if a := e.do("GET", "/v1/admin/settlements?limit=0", "", "Authorization", "Bearer "+adminTok); a.Code != 400 || problemField(a) != "limit" {
			t.Fatalf("limit=0: %d %s", a.Code, a.Raw)
		}
		a := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+adminTok)
		if a.Code != 200 {
			t.Fatalf("settlements: %d %s", a.Code, a.Raw)
		}
		data := a.Body["data"].([]any)
		// Only the runs that settled something are recorded (not the four that found
		// nothing matured).
		if len(data) != 3 {
			t.Fatalf("%d runs listed, want 3: %s", len(data), a.Raw)
		}
		newest := data[0].(map[string]any)
		if newest["property"] != "cents" || newest["status"] != "completed" || newest["amount"] != "0.67" || newest["finished_at"] == nil {
			t.Fatalf("newest run %v", newest)
		}
		var moved map[string]any
		for _, it := range data {
			if m := it.(map[string]any); m["property"] == "arcade" && m["amount"] == "2" {
				moved = m
			}
		}
		if moved == nil || moved["users"] != 1.0 || moved["entries"] != 3.0 || moved["error"] != "" || moved["id"] == "" ||
			moved["started_at"] != e.clock.Now().Format(time.RFC3339) {
			t.Fatalf("the run that moved 2 COIN: %v in %s", moved, a.Raw)
		}
		// Finance pages back through them (a month of runs is more than a page), one
		// property's or all; it saw only the newest 1,000 before.
		if a.Body["next_cursor"] != nil {
			t.Fatalf("one page of 3 has a next page: %s", a.Raw)
		}
		var paged []any
		for cursor := ""; ; {
			p := e.do("GET", "/v1/admin/settlements?limit=2"+cursor, "", "Authorization", "Bearer "+adminTok)
			paged = append(paged, p.Body["data"].([]any)...)
			next, _ := p.Body["next_cursor"].(string)
			if p.Code != 200 || next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		if fmt.Sprint(paged) != fmt.Sprint(data) {
			t.Fatalf("paged by 2: %v, want %v", paged, data)
		}
		if p := e.do("GET", "/v1/admin/settlements?property=cents", "", "Authorization", "Bearer "+adminTok); len(p.Body["data"].([]any)) != 1 {
			t.Fatalf("cents' runs: %s", p.Raw)
		}
		if p := e.do("GET", "/v1/admin/settlements?property=nope&cursor=x", "", "Authorization", "Bearer "+adminTok); p.Code != 400 ||
			fmt.Sprint(problemFields(p)) != "[cursor property]" {
			t.Fatalf("a bad property and cursor: %d %s", p.Code, p.Raw)
		}
		if a := e.do("GET", "/v1/admin/settlements?limit=2", "", "Authorization", "Bearer "+adminTok); len(a.Body["data"].([]any)) != 2 {
			t.Fatalf("limit=2: %s", a.Raw)
		}

		m := e.do("GET", "/metrics", "").Raw
		for _, want := range []string{
			`tally_settlement_runs_total{property="arcade",status="completed"} 3`,
			`tally_settled_amount_total{property="arcade"} 52`,
			`tally_settled_entries_total{property="arcade"} 4`,
			`tally_settled_amount_total{property="cents"} 0.67`,
			`tally_settlement_run_seconds_count 7`,
		} {
			if !strings.Contains(m, want) {
				t.Fatalf("metrics lack %s", want)
			}
		}
		e.checkInvariants()
	})
}

// holdLease plays another replica that is settling property: it holds the property's
// settlement lease (the store names it "settle:<property>") until far in the future.
func holdLease(t *testing.T, d store.Dialect, u, property string) {
	t.Helper()
	driver, dsn := "pgx", u
	if d == store.SQLite {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(u, "sqlite://")+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var q string
	if d == store.SQLite {
		q = `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)`
	} else {
		q = `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)`
	}
	if _, err := db.Exec(q, "settle:"+property, "another-replica", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("hold lease: %v", err)
	}
}

// A property another replica is settling is reported as skipped, not failed, and the
// other properties settle. (A property with nothing matured is not asked for its lease:
// it reports a run that found nothing.)
func TestSettlementSkipsPropertyAnotherRunHolds(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e, u := newEnvWith(t, d, arcade(), cents())
		e.spp("arcade", "a-1", sppToken)
		e.spp("cents", "c-1", "")
		e.clock.Advance(25 * time.Hour)
		holdLease(t, d, u, "arcade")
		runs, err := e.app.Settle(context.Background(), "", "")
		if err != nil {
			t.Fatalf("Settle with a held lease: %v", err)
		}
		if r := runOf(t, runs, "arcade"); r.Status != app.RunSkipped || r.ID != 0 || r.Error != "another run holds the lease" {
			t.Fatalf("arcade run %+v, want skipped", r)
		}
		wantRun(t, runOf(t, runs, "cents"), rewards.RunCompleted, 1, 1, "0.67")
		if m := e.do("GET", "/metrics", "").Raw; !strings.Contains(m, `tally_settlement_runs_total{property="arcade",status="skipped"} 1`) {
			t.Fatal("metrics lack the skipped run")
		}
		a := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+adminTok)
		if data := a.Body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["property"] != "cents" {
			t.Fatalf("a skipped run is recorded: %s", a.Raw)
		}
		e.checkInvariants()
	})
}

// A daily schedule whose tick passed while no process ran it (a deploy at 02:00) is
// caught up as the schedule starts: the lots matured by that tick settle then, not a day
// later, and those that matured after it wait for the next tick, as they would have.
func TestScheduledSettlementCatchesUpAMissedTick(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.clock.Set(time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC))
		e.spp("arcade", "s-1", sppToken) // matures at 01:00 on the 22nd
		e.clock.Set(time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC))
		e.spp("arcade", "s-2", sppToken) // matures at 03:00 on the 22nd
		e.clock.Set(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		// arcade's scale is 0: the 0.672 settled is carried in pending, and the balance
		// shows the lot left by when it matures next.
		next := func() any { return e.balance("arcade", "sub1", apiKey).Body["next_available_at"] }
		if n := next(); n != "2026-11-22T01:00:00Z" {
			t.Fatalf("next_available_at before: %v", n)
		}
		stop, err := e.app.StartSettlement(context.Background(), "0 2 * * *")
		if err != nil {
			t.Fatal(err)
		}
		stop() // waits for the run the schedule starts with
		a := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+adminTok)
		if !regexp.MustCompile(`"property":"arcade","status":"completed",[^}]*"users":1,"entries":1,`).MatchString(a.Raw) || next() != "2026-11-22T03:00:00Z" {
			t.Fatalf("the catch-up run: %s; next_available_at %v, want the 03:00 lot left", a.Raw, next())
		}
		e.checkInvariants()
	})
}

// A scheduled sweep says when it ended in tally_settlement_sweep_timestamp_seconds, so
// an alert sees a sweep that never ends (a stuck property holds every later tick, each
// skipped with only a log line), failed runs or not.
func TestSettlementSweepStampsItsEnd(t *testing.T) {
	e := newEnv(t, store.SQLite)
	if got := scrape(t, e)("tally_settlement_sweep_timestamp_seconds"); got != 0 {
		t.Fatalf("before any sweep: %v", got)
	}
	before := float64(time.Now().UnixNano()) / 1e9
	if err := app.SettleJob(context.Background(), e.app, "@every 1m"); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, e)("tally_settlement_sweep_timestamp_seconds"); got < before {
		t.Fatalf("after a sweep: %v, want at least %v", got, before)
	}
}

// The schedule settles on its own: a publisher watches pending turn into available.
func TestScheduledSettlement(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", scoreBody, "api-key", scoresKey); a.Code != 200 {
			t.Fatalf("score: %s", a.Raw)
		}
		e.spp("arcade", "s-1", sppToken) // 0.672, held for 24h: stays pending
		if _, err := e.app.StartSettlement(context.Background(), "every second"); err == nil {
			t.Fatal("a bad schedule was accepted")
		}
		stop, err := e.app.StartSettlement(context.Background(), "@every 1s")
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.balance("arcade", "sub1", apiKey).Body["available"] != "50" {
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("not settled on schedule: %s", e.balance("arcade", "sub1", apiKey).Raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		e.wantBalance("arcade", "sub1", apiKey, "50", "0.672")
		a := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+adminTok)
		if !regexp.MustCompile(`"property":"arcade","status":"completed"`).MatchString(a.Raw) {
			t.Fatalf("scheduled runs not listed: %s", a.Raw)
		}
		e.checkInvariants()
	})
}

// A settlement of every property is not held by one property stuck behind a wallet lock
// (a session idle in a transaction): the others settle meanwhile. Properties settled one
// after another, so every property after it in id order waited (up to a batch timeout
// per held wallet), and the schedule's next ticks with them.
func TestSettlementOfEveryPropertyIsNotHeldByOneStuck(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	u := storetest.URL(t, store.Postgres)
	db := storetest.OpenURL(t, u, clock.Now)
	a := app.New(db, app.Options{Properties: []app.Property{arcade(), cents()}, AdminToken: adminTok, IngestWorkers: 2, SettleLanes: 2})
	t.Cleanup(a.Close)
	e := &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}
	e.spp("arcade", "s-1", sppToken)
	e.spp("cents", "c-1", "")
	e.clock.Advance(25 * time.Hour)

	holder, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.Exec(`SELECT 1 FROM wallets WHERE property = 'arcade' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		runs []rewards.SettlementRun
		err  error
	}
	settled := make(chan result, 1)
	go func() {
		runs, err := a.Settle(ctx, "", "")
		settled <- result{runs, err}
	}()
	for deadline := time.Now().Add(30 * time.Second); e.balance("cents", "sub1", "cents-key-123").Body["available"] != "0.67"; {
		if time.Now().After(deadline) {
			t.Fatal("cents did not settle while arcade's wallet was held")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	if err := tx.Commit(); err != nil { // arcade's wallet is free again
		t.Fatal(err)
	}
	r := <-settled
	if r.err != nil || len(r.runs) != 2 || r.runs[0].Property != "arcade" || r.runs[1].Property != "cents" {
		t.Fatalf("Settle: %+v %v, want arcade's run and then cents'", r.runs, r.err)
	}
	wantRun(t, r.runs[0], rewards.RunCompleted, 1, 1, "0")
	wantRun(t, r.runs[1], rewards.RunCompleted, 1, 1, "0.67")
	e.checkInvariants()
}

// cancellingStore cancels the settlement of every property as its first property
// begins, and counts the properties begun.
type cancellingStore struct {
	*store.DB
	cancel func()
	begun  int
}

func (s *cancellingStore) Settle(ctx context.Context, property string, scale int32, actor string) (rewards.SettlementRun, error) {
	s.begun++
	s.cancel()
	return s.DB.Settle(ctx, property, scale, actor)
}

// A settlement of every property cancelled mid-way begins no other property: handed to
// a lane after the cancel, each was begun anyway and reported as a failed run.
func TestSettlementCancelledBeginsNoMoreProperties(t *testing.T) {
	e, _ := newEnvWith(t, store.SQLite)
	st := &cancellingStore{DB: e.db}
	a := app.New(st, app.Options{Properties: []app.Property{arcade(), cents(), other()}, AdminToken: adminTok, SettleLanes: 1})
	t.Cleanup(a.Close)
	for range 30 { // the hand-out's select picked at random between a lane and the cancel
		ctx, cancel := context.WithCancel(context.Background())
		st.cancel, st.begun = cancel, 0
		runs, err := a.Settle(ctx, "", "ops")
		if st.begun != 1 || len(runs) != 1 || runs[0].Property != "arcade" {
			t.Fatalf("%d properties begun after the cancel, runs %+v, err %v", st.begun-1, runs, err)
		}
		if err == nil || !strings.Contains(err.Error(), "settle cents, other: not begun") {
			t.Fatalf("err %v, want the properties not begun named", err)
		}
	}
}

// panickingStore's settlement of arcade panics (a bug).
type panickingStore struct{ *store.DB }

func (s panickingStore) Settle(ctx context.Context, property string, scale int32, actor string) (rewards.SettlementRun, error) {
	if property == "arcade" {
		panic("a bug")
	}
	return s.DB.Settle(ctx, property, scale, actor)
}

// A property whose settlement panics fails its own run; the others settle and the
// process goes on. On a lane's goroutine the panic ended the process (the scheduler's
// goroutine, where settlements ran before, recovers).
func TestSettlementPanicFailsOnlyItsProperty(t *testing.T) {
	e, _ := newEnvWith(t, store.SQLite)
	a := app.New(panickingStore{e.db}, app.Options{Properties: []app.Property{arcade(), cents()}, AdminToken: adminTok, SettleLanes: 2})
	t.Cleanup(a.Close)
	runs, err := a.Settle(context.Background(), "", "ops")
	if err == nil || !strings.Contains(err.Error(), "settlement of arcade panicked: a bug") || len(runs) != 2 {
		t.Fatalf("Settle: %+v %v", runs, err)
	}
	if runs[0].Status != rewards.RunFailed || runs[1].Property != "cents" || runs[1].Status != rewards.RunCompleted {
		t.Fatalf("runs %+v, want arcade failed and cents completed", runs)
	}
}
