package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/app"
	"tally/postbacks"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// An event kept because an earlier parser could not map it (its decoded form has no
// achievement) is decoded again from its raw body on replay and applied, once.
func TestReplayDecodesTheRawBodyAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		ctx := context.Background()
		raw := gamepushBody(gpJSON, gpSecret)
		stale := rewards.Event{Source: rewards.SourceGamePush, Kind: rewards.KindAchievement, Type: "GivePlayerReward",
			DedupeKey: "stale-decode", User: "1820283"} // no Achievement: what an older parser kept
		res, err := e.db.Record(ctx, []rewards.Inbound{{Property: "arcade", Event: stale, Raw: []byte(raw),
			Unmapped: "unmapped gamepush GivePlayerReward: result.rewardId: missing"}})
		if err != nil || res[0].Status != rewards.StatusRecorded {
			t.Fatalf("seed: %+v %v", res, err)
		}
		e.drain()
		if ev := e.event(res[0].EventID); ev.Body["status"] != "quarantined" || !strings.Contains(ev.Raw, "result.rewardId") {
			t.Fatalf("after apply: %s", ev.Raw)
		}
		for i, want := range []replayWant{{seen: 1, applied: 1}, {seen: 0, applied: 0}} {
			rep, err := e.app.Replay(ctx, rewards.StatusQuarantined, "", "ops", nil)
			if err != nil || rep.Seen != want.seen || rep.Applied != want.applied {
				t.Fatalf("replay %d: %+v %v, want %+v", i, rep, err, want)
			}
		}
		b := e.do("GET", "/v1/properties/arcade/users/1820283/balance", "", "Authorization", "Bearer "+apiKey)
		if b.Body["pending"] != "100" {
			t.Fatalf("balance after replay: %s", b.Raw)
		}
		if err := e.db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

type replayWant struct{ seen, applied int }

// An event's entries name the wallet they post to: with signed sub tokens the event's
// user is the token as sent, and nothing in the view said the credit went to alice.
func TestAdminEventEntriesNameTheirWallet(t *testing.T) {
	base := newEnv(t, store.SQLite)
	secret := []byte("the-real-secret-0123")
	sub, err := postbacks.SubTokens{Secrets: [][]byte{secret}}.Sign("alice", t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e := base.withProperty(func(p *appProperty) {
		p.SubTokens = &postbacks.SubTokens{Secrets: [][]byte{secret}, Required: true, MaxAge: time.Hour}
	})
	a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", strings.Replace(sppBody, `"user-id":"sub1"`, `"user-id":"`+sub+`"`, 1),
		"Authorization", "Bearer "+sppToken)
	ev := e.event(a.Body["event_id"])
	entries, _ := ev.Body["entries"].([]any)
	if ev.Body["user"] != sub || len(entries) != 1 || entries[0].(map[string]any)["user"] != "alice" {
		t.Fatalf("event view: %s", ev.Raw)
	}
	e.wantBalance("arcade", "alice", apiKey, "0", "0.672")
}

// The operator's view of the inbox: an event is recorded, then applied with its entries;
// a quarantined one is listed, replayed over HTTP exactly once however many replays race,
// and its balance changes once.
func TestAdminEvents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		admin := []string{"Authorization", "Bearer " + adminTok}
		ok := e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody, "Authorization", "Bearer "+sppToken)
		ev := e.event(ok.Body["event_id"])
		entries, _ := ev.Body["entries"].([]any)
		if ev.Code != 200 || ev.Body["status"] != "applied" || ev.Body["source"] != "gamezop_spp" || ev.Body["user"] != "sub1" ||
			ev.Body["dedupe_key"] != "b48a8368-a369-49a4-b427-2d5891ef3763" || ev.Body["applied_at"] == nil || len(entries) != 1 {
			t.Fatalf("applied event: %s", ev.Raw)
		}
		legs := entries[0].(map[string]any)["legs"].([]any)
		if len(legs) != 3 || legs[0].(map[string]any)["amount"] != "0.672" {
			t.Fatalf("legs: %s", ev.Raw)
		}

		// Addressed to another Gamezop property: quarantined, listed, not credited.
		other := strings.Replace(strings.Replace(sppBody, `"property-id":"1234"`, `"property-id":"9999"`, 1), "b48a8368", "c48a8368", 1)
		q := e.do("POST", "/v1/hooks/arcade/gamezop/spp", other, "Authorization", "Bearer "+sppToken)
		list := e.do("GET", "/v1/admin/events?status=quarantined&property=arcade&source=gamezop_spp", "", admin...)
		data, _ := list.Body["data"].([]any)
		if list.Code != 200 || len(data) != 1 || data[0].(map[string]any)["id"] != q.Body["event_id"] {
			t.Fatalf("quarantine list: %s", list.Raw)
		}
		// A property filter that cannot be a property id is a 400 naming it (Postgres
		// refused its bytes with a 500; SQLite matched nothing); a removed property's id
		// lists its events, none here.
		for _, bad := range []string{"%FF", "a%00b", "Arcade", strings.Repeat("a", 65)} {
			if a := e.do("GET", "/v1/admin/events?property="+bad, "", admin...); a.Code != 400 || !strings.Contains(a.Raw, `"field":"property"`) {
				t.Fatalf("property=%s: %d %s", bad, a.Code, a.Raw)
			}
		}
		if a := e.do("GET", "/v1/admin/events?property=gone", "", admin...); a.Code != 200 || !strings.Contains(a.Raw, `"data":[]`) {
			t.Fatalf("property=gone: %d %s", a.Code, a.Raw)
		}
		all := e.do("GET", "/v1/admin/events?limit=1", "", admin...)
		if data, _ := all.Body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != q.Body["event_id"] || all.Body["next_cursor"] == nil {
			t.Fatalf("newest first, paged: %s", all.Raw)
		}
		next := e.do("GET", "/v1/admin/events?limit=1&cursor="+all.Body["next_cursor"].(string), "", admin...)
		if data, _ := next.Body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != ok.Body["event_id"] || next.Body["next_cursor"] != nil {
			t.Fatalf("second page: %s", next.Raw)
		}

		// Replayed with a fixed property-id mapping, by four operators at once: once.
		e2 := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "9999" })
		var wg sync.WaitGroup
		replayed := make([]any, 4)
		for i := range replayed {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				a := e2.do("POST", "/v1/admin/events/"+q.Body["event_id"].(string)+"/replay", "", admin...)
				if a.Code != 200 {
					t.Errorf("replay: %d %s", a.Code, a.Raw)
				}
				replayed[i] = a.Body["replayed"]
			}(i)
		}
		wg.Wait()
		n := 0
		for _, r := range replayed {
			if r == true {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("replays that applied: %d of %v", n, replayed)
		}
		if ev := e2.event(q.Body["event_id"]); ev.Body["status"] != "applied" || len(ev.Body["entries"].([]any)) != 1 {
			t.Fatalf("after replay: %s", ev.Raw)
		}
		b := e2.do("GET", "/v1/properties/arcade/users/sub1/balance", "", "Authorization", "Bearer "+apiKey)
		if b.Body["pending"] != "1.344" {
			t.Fatalf("balance: %s", b.Raw)
		}
		// The audit log has the one replay that did something, under the admin's name.
		audit := e.do("GET", "/v1/admin/audit", "", admin...)
		rows, _ := audit.Body["data"].([]any)
		if len(rows) != 1 || rows[0].(map[string]any)["action"] != "replay" || rows[0].(map[string]any)["actor"] != "admin" ||
			rows[0].(map[string]any)["target"] != "event:"+q.Body["event_id"].(string) || rows[0].(map[string]any)["detail"] != `applied (quarantined before: property-id "9999" does not match gamezop_property_id 1234)` {
			t.Fatalf("audit after the replays: %s", audit.Raw)
		}

		for path, code := range map[string]int{"/v1/admin/events/999999": 404, "/v1/admin/events/abc": 400,
			"/v1/admin/events?status=lost": 400, "/v1/admin/events?source=x": 400} {
			if a := e.do("GET", path, "", admin...); a.Code != code || a.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s, want %d problem", path, a.Code, a.Raw, code)
			}
		}
		if a := e.do("GET", "/v1/admin/events", ""); a.Code != 401 {
			t.Errorf("without the admin token: %d", a.Code)
		}
	})
}

// One quarantined event the database refuses even alone does not hold up the others
// of a replay: they are applied, it stays quarantined as it was, and the replay ends
// with an error naming it.
func TestReplayGoesOnPastAnEventThatFails(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e, dbURL := newEnvWith(t, d, arcade(), other())
		ctx := context.Background()
		var ids []int64
		for _, u := range []string{"u1", "u2", "u3"} {
			body := strings.NewReplacer(`"user-id":"sub1"`, `"user-id":"`+u+`"`, `"b48a8368-a369-49a4-b427-2d5891ef3763"`, `"s-`+u+`"`,
				`"property-id":"1234"`, `"property-id":"999"`).Replace(sppBody)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			if a.Code != 200 {
				t.Fatalf("ingest %s: %d %s", u, a.Code, a.Raw)
			}
			id, _ := strconv.ParseInt(a.Body["event_id"].(string), 10, 64)
			if ev := e.event(id); ev.Body["status"] != "quarantined" {
				t.Fatalf("%s: %s", u, ev.Raw)
			}
			ids = append(ids, id)
		}
		refuseLedgerRowsOf(t, d, dbURL, "u2")
		fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "999" })
		rep, err := fixed.app.Replay(ctx, rewards.StatusQuarantined, "", "ops", nil)
		if err == nil || !strings.Contains(err.Error(), strconv.FormatInt(ids[1], 10)) {
			t.Fatalf("replay: %+v, err %v; want an error naming event %d", rep, err, ids[1])
		}
		if rep.Applied != 2 || len(rep.Failed) != 1 || rep.Failed[0] != ids[1] {
			t.Fatalf("replay: %+v", rep)
		}
		for i, want := range []string{"applied", "quarantined", "applied"} {
			if ev := fixed.event(ids[i]); ev.Body["status"] != want {
				t.Fatalf("event %d: %s, want %s", ids[i], ev.Raw, want)
			}
		}
	})
}

// A replay through the API of an event whose effects the database refuses again is a
// 409 that says what the database said, and the event stays quarantined as it was. It
// was a 500 "internal error; nothing was saved", which told the operator nothing.
func TestReplayEventRefusedAgainIsAConflict(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e, dbURL := newEnvWith(t, d, arcade(), other())
		body := strings.Replace(sppBody, `"property-id":"1234"`, `"property-id":"999"`, 1)
		a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
		if a.Code != 200 {
			t.Fatalf("ingest: %d %s", a.Code, a.Raw)
		}
		id := a.Body["event_id"].(string)
		before := e.event(id)
		refuseLedgerRowsOf(t, d, dbURL, "sub1")
		fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "999" })
		r := fixed.do("POST", "/v1/admin/events/"+id+"/replay", "", "Authorization", "Bearer "+adminTok)
		if r.Code != 409 || r.Body["type"] != "urn:tally:problem:replay-failed" || !strings.Contains(r.Raw, "refused") {
			t.Fatalf("replay refused by the database: %d %s, want a 409 saying why", r.Code, r.Raw)
		}
		if after := fixed.event(id); after.Body["status"] != "quarantined" || after.Body["reason"] != before.Body["reason"] {
			t.Fatalf("event after the refused replay: %s, want it quarantined as before (%s)", after.Raw, before.Raw)
		}
	})
}

// refuseLedgerRowsOf makes the database refuse user's journal rows, as a bad row or a
// constraint would: the event's own fault (rewards.ErrRejected), whatever else is applied.
func refuseLedgerRowsOf(t *testing.T, d store.Dialect, dbURL, user string) {
	t.Helper()
	raiseOnLedgerRowsOf(t, d, dbURL, user, "check_violation")
}

// raiseOnLedgerRowsOf makes the database fail user's journal rows with errcode (a
// Postgres condition name or SQLSTATE); SQLite can only refuse them (RAISE(ABORT)).
func raiseOnLedgerRowsOf(t *testing.T, d store.Dialect, dbURL, user, errcode string) {
	t.Helper()
	fn := "raise_on_" + user
	if d == store.SQLite {
		execSQL(t, d, dbURL, `CREATE TRIGGER `+fn+` BEFORE INSERT ON journal WHEN NEW.user_id = '`+user+`' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
		return
	}
	execSQL(t, d, dbURL, `CREATE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '`+errcode+`'; END $$`,
		`CREATE TRIGGER `+fn+` BEFORE INSERT ON journal FOR EACH ROW WHEN (NEW.user_id = '`+user+`') EXECUTE FUNCTION `+fn+`()`)
}

// execSQL runs stmts on the database at dbURL over a connection of its own, as an
// operator's client or another process would.
func execSQL(t *testing.T, d store.Dialect, dbURL string, stmts ...string) {
	t.Helper()
	driver, dsn := "pgx", dbURL
	if d == store.SQLite {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(dbURL, "sqlite://")+"?_pragma=busy_timeout(10000)"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range stmts {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// cutAfterApply ends the request's context as its replay commits, as a request deadline
// running out while the replay waited for a lock would.
type cutAfterApply struct {
	*store.DB
	cut context.CancelFunc
}

func (s *cutAfterApply) Apply(ctx context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	got, err := s.DB.Apply(ctx, c, decide)
	if c.Status == rewards.StatusQuarantined && s.cut != nil {
		s.cut()
	}
	return got, err
}

// A replay that committed as the request's time ran out answers what it did: replayed,
// with the event as it is now. It answered 503 "nothing was saved", and the operator who
// retried as told got replayed: false and never learned the replay had been theirs.
func TestReplayCommittedAsTheRequestEndsSaysReplayed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		foreign := strings.Replace(strings.Replace(sppBody, `"property-id":"1234"`, `"property-id":"9999"`, 1), "b48a8368", "c48a8368", 1)
		q := e.do("POST", "/v1/hooks/arcade/gamezop/spp", foreign, "Authorization", "Bearer "+sppToken)
		e.drain()
		id, _ := strconv.ParseInt(q.Body["event_id"].(string), 10, 64)

		p := arcade()
		p.GamezopPropertyID = "9999"
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &cutAfterApply{DB: e.db, cut: cancel}
		a := app.New(s, app.Options{Properties: []app.Property{p, other()}, AdminToken: adminTok, IngestWorkers: 1})
		t.Cleanup(a.Close)
		k, posted, replayed, err := a.ReplayEvent(ctx, id, "alice")
		if err != nil || !replayed || k.Status != rewards.StatusApplied || len(posted) != 1 {
			t.Fatalf("replay: %v, replayed %v, status %q, %d entries", err, replayed, k.Status, len(posted))
		}
	})
}

// readmitEnv is a new replica (arcade and other, readmitting) and an old one (other
// only) on one Postgres; record posts SPPs to the new one without applying them.
type readmitEnv struct {
	*env
	url    string
	oldApp *app.App
}

func newReadmitEnv(t *testing.T) readmitEnv {
	t.Helper()
	u := storetest.URL(t, store.Postgres)
	newDB, oldDB := storetest.OpenURL(t, u, nil), storetest.OpenURL(t, u, nil)
	newApp := app.New(newDB, app.Options{Properties: []app.Property{arcade(), other()}, AdminToken: adminTok, IngestWorkers: 1,
		ReadmitActor: "applier"})
	t.Cleanup(newApp.Close)
	oldApp := app.New(oldDB, app.Options{Properties: []app.Property{other()}, AdminToken: adminTok, IngestWorkers: 1})
	t.Cleanup(oldApp.Close)
	return readmitEnv{env: &env{t: t, db: newDB, app: newApp, h: newApp.Handler()}, url: u, oldApp: oldApp}
}

// sppFor is sppBody for user, with its own session and the given Gamezop property-id.
func sppFor(user, propertyID string) string {
	return strings.NewReplacer(`"user-id":"sub1"`, `"user-id":"`+user+`"`, `"b48a8368-a369-49a4-b427-2d5891ef3763"`, `"s-`+user+`"`,
		`"property-id":"1234"`, `"property-id":"`+propertyID+`"`).Replace(sppBody)
}

// record posts body to arcade's SPP receiver of the new replica, which records it
// without applying it (e.do would drain it), and returns the event's id.
func (r readmitEnv) record(body string) string {
	r.t.Helper()
	req := httptest.NewRequest("POST", "/v1/hooks/arcade/gamezop/spp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sppToken)
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var a struct {
		EventID string `json:"event_id"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &a) != nil {
		r.t.Fatalf("postback: %d %s", rec.Code, rec.Body)
	}
	return a.EventID
}

// keptByTheOld lets the old replica's applier claim what was recorded: it keeps it as
// "property arcade is not configured".
func (r readmitEnv) keptByTheOld() {
	r.t.Helper()
	if _, err := r.oldApp.Drain(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// auditOf counts the audit entries of event id.
func (r readmitEnv) auditOf(id string) int {
	r.t.Helper()
	a := r.do("GET", "/v1/admin/audit?limit=1000", "", "Authorization", "Bearer "+adminTok)
	return strings.Count(a.Raw, `"target":"event:`+id+`"`)
}

// During a rolling deploy that adds a property, a replica still on the old config claims
// the new property's events (recorded by the new replicas) and keeps them as "not
// configured"; a replica that knows the property readmits them, once, in the audit log
// as the applier's. Other quarantined events are left for an operator.
func TestReadmitEventsAnOlderConfigKept(t *testing.T) {
	ctx := context.Background()
	r := newReadmitEnv(t)
	paid, kept := r.record(sppFor("sub1", "1234")), r.record(sppFor("sub2", "999"))
	r.keptByTheOld()
	n, err := r.app.Readmit(ctx)
	if err != nil || n != 2 {
		t.Fatalf("readmitted %d, %v; want both events (one applied, one kept for its property-id)", n, err)
	}
	r.wantBalance("arcade", "sub1", apiKey, "0", "0.672")
	if ev := r.event(paid); ev.Body["status"] != "applied" {
		t.Fatalf("event %s: %s", paid, ev.Raw)
	}
	if ev := r.event(kept); ev.Body["status"] != "quarantined" || !strings.Contains(ev.Body["reason"].(string), "property-id") {
		t.Fatalf("event %s: %s", kept, ev.Raw)
	}
	// Kept again for another reason, it is an operator's now: no second readmission.
	if n, err := r.app.Readmit(ctx); err != nil || n != 0 {
		t.Fatalf("a second readmission: %d, %v", n, err)
	}
	if r.auditOf(paid) != 1 || r.auditOf(kept) != 1 {
		t.Fatalf("audit entries: %d and %d, want one each", r.auditOf(paid), r.auditOf(kept))
	}
	audit := r.do("GET", "/v1/admin/audit?limit=10", "", "Authorization", "Bearer "+adminTok)
	if !strings.Contains(audit.Raw, `"actor":"applier"`) {
		t.Fatalf("audit: %s", audit.Raw)
	}
}

// Two readmitters at once (two replicas, or the two appliers of one serve) readmit each
// event once: the second read the event as "not configured" before the first kept it
// again for another reason, and replayed it a second time.
func TestReadmitOnceByTwoReadmitters(t *testing.T) {
	ctx := context.Background()
	r := newReadmitEnv(t)
	sibling := app.New(storetest.OpenURL(t, r.url, nil), app.Options{Properties: []app.Property{arcade(), other()},
		AdminToken: adminTok, IngestWorkers: 1, ReadmitActor: "applier"})
	t.Cleanup(sibling.Close)
	var ids []string
	for i := range 20 {
		ids = append(ids, r.record(sppFor(fmt.Sprintf("u%d", i), "999"))) // kept again on readmission (property-id)
	}
	r.keptByTheOld()
	var wg sync.WaitGroup
	for _, a := range []*app.App{r.app, sibling} {
		wg.Go(func() {
			if _, err := a.Readmit(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if n := r.auditOf(id); n != 1 {
			t.Fatalf("event %s readmitted %d times", id, n)
		}
	}
}

// An event that fails on its own (the database refuses its rows) stays as it was and
// does not hold up the others' readmission; it stopped them all, every minute.
func TestReadmitGoesOnPastAnEventThatFails(t *testing.T) {
	ctx := context.Background()
	r := newReadmitEnv(t)
	ids := []string{r.record(sppFor("u1", "1234")), r.record(sppFor("u2", "1234")), r.record(sppFor("u3", "1234"))}
	r.keptByTheOld()
	refuseLedgerRowsOf(t, store.Postgres, r.url, "u2")
	if n, err := r.app.Readmit(ctx); n != 2 || err == nil {
		t.Fatalf("readmitted %d, %v; want u1's and u3's, and an error naming u2's", n, err)
	}
	for i, want := range []string{"applied", "quarantined", "applied"} {
		if ev := r.event(ids[i]); ev.Body["status"] != want {
			t.Errorf("u%d's event: %s, want %s", i+1, ev.Raw, want)
		}
	}
}

// Readmission goes on when the RunApplier that ran it ends and another runs: it was
// started once per process, on the first RunApplier's context, and ended with it.
func TestReadmitSurvivesAnApplierRestart(t *testing.T) {
	r := newReadmitEnv(t)
	applied := func(id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for r.event(id).Body["status"] != "applied" {
			if time.Now().After(deadline) {
				t.Fatalf("event %s not readmitted: %s", id, r.event(id).Raw)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
		}
	}
	for i := range 2 { // an applier, stopped; then another
		id := r.record(sppFor(fmt.Sprintf("u%d", i), "1234"))
		r.keptByTheOld()
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.app.RunApplier(ctx); close(done) }()
		applied(id)
		stop()
		<-done
	}
}

// An event an older version recorded under a user id the current rule refuses is kept
// quarantined, not credited, when it is replayed (or applied from a backlog after an
// upgrade): the current parser refuses its body, so the event decoded at receipt
// stood, and it opened a wallet the receivers and adjustments refuse, whose payout sheet
// row may read as another user's.
func TestReplayKeepsAUserIDTheRuleNowRefuses(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		ctx := context.Background()
		for _, user := range []string{"bob\uFFFD", "bob_xD800_", "_x0041_x0042_"} {
			good := sppFor("bobX", "999") // property-id 999: kept for the config to be fixed
			ev, err := postbacks.Decode(rewards.SourceGamezopSPP, []byte(good))
			if err != nil {
				t.Fatal(err)
			}
			ev.DedupeKey += user
			raw := strings.Replace(good, "bobX", user, 1)
			ev.User = user // what an older version recorded
			if _, err := postbacks.Decode(rewards.SourceGamezopSPP, []byte(raw)); err == nil {
				t.Fatalf("the current parser accepts %q", user)
			}
			if _, err := e.db.Record(ctx, []rewards.Inbound{{Property: "arcade", Event: ev, Raw: []byte(raw)}}); err != nil {
				t.Fatal(err)
			}
		}
		e.drain() // quarantined: the property-id
		fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "999" })
		rep, err := fixed.app.Replay(ctx, rewards.StatusQuarantined, "", "ops", nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Applied != 0 {
			t.Fatalf("replay %+v: it credited users the rule refuses", rep)
		}
		for _, user := range []string{"bob\uFFFD", "bob_xD800_", "_x0041_x0042_"} {
			if b, err := e.db.Balance(ctx, "arcade", user); err != nil || !b.Pending.IsZero() {
				t.Fatalf("%q: %+v, %v; want nothing credited", user, b, err)
			}
		}
		evs, err := e.db.Events(ctx, rewards.EventFilter{Status: rewards.StatusQuarantined})
		if err != nil || len(evs) != 3 {
			t.Fatalf("%d kept events, %v; want 3", len(evs), err)
		}
		for _, k := range evs {
			// A sub holding "_x" was caught before, as a sub taken whole; U+FFFD was not.
			if k.User == "bob\uFFFD" && !strings.Contains(k.Reason, "user id \"bob\uFFFD\" must not contain U+FFFD") {
				t.Errorf("%q kept with reason %q", k.User, k.Reason)
			}
		}
	})
}
