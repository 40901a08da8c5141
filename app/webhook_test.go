package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// The Standard Webhooks test secret (24 bytes of key).
const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookTimeout stands in for the 10 s limit, so a receiver that hangs fails fast.
const hookTimeout = 300 * time.Millisecond

// received is one request the test's receiver got.
type received struct {
	header http.Header
	body   []byte
	path   string
}

// receiver is a real HTTP endpoint whose answers the test scripts: each request takes
// the next behaviour ("ok" once the script is used up).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []string
	// rule, when set, picks the behaviour from the body instead of the script.
	rule   func(body []byte) string
	got    []received
	arrive chan struct{} // one token per request, at arrival
	gate   chan struct{} // closed by a test to let "gate" requests answer
	done   chan struct{} // closed when the test ends, before the server closes
}

func newReceiver(t *testing.T, script ...string) *receiver {
	r := &receiver{t: t, script: script, arrive: make(chan struct{}, 100), gate: make(chan struct{}),
		done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/followed", func(w http.ResponseWriter, req *http.Request) {
		t.Errorf("a redirect was followed")
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/hook", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, path: req.URL.Path})
		next := "ok"
		switch {
		case r.rule != nil:
			next = r.rule(body)
		case len(r.script) > 0:
			next, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		select { // a test that waits for arrivals reads them; others need not
		case r.arrive <- struct{}{}:
		default:
		}
		switch next {
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "late": // answers after 2.5 s, past the 2 s that makes a send late
			time.Sleep(2500 * time.Millisecond)
			w.WriteHeader(http.StatusNoContent)
		case "slowish": // answers after 1.5 s, in time
			time.Sleep(1500 * time.Millisecond)
			w.WriteHeader(http.StatusNoContent)
		case "hang": // answers nothing until the sender gives up
			<-req.Context().Done()
		case "trickle": // answers 200 at once, then a body that never ends
			w.WriteHeader(http.StatusOK)
			for {
				_, _ = w.Write([]byte(" "))
				w.(http.Flusher).Flush()
				select {
				case <-req.Context().Done():
					return
				case <-r.done:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		case "gate": // answers once the test opens the gate
			<-r.gate
			w.WriteHeader(http.StatusNoContent)
		case "redirect":
			http.Redirect(w, req, "/followed", http.StatusFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.done) }) // runs first: a trickle ends, so the server can close
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// allEvents subscribes to everything.
var allEvents = rewards.WebhookEventTypes()

// newHookEnv is newEnv with arcade's webhook pointed at url, through the same wiring
// `tally serve` uses: the store's outbox learns the subscriptions, the app the endpoints.
func newHookEnv(t *testing.T, d store.Dialect, url string) *env {
	t.Helper()
	clock := storetest.NewClock(t0)
	return hookEnvOn(t, storetest.URL(t, d), clock, url)
}

func hookEnvOn(t *testing.T, dbURL string, clock *storetest.Clock, url string, previousSecrets ...string) *env {
	t.Helper()
	return hookEnvTimed(t, dbURL, clock, url, hookTimeout, previousSecrets...)
}

// hookEnvTimed is hookEnvOn with the webhook timeout given.
func hookEnvTimed(t *testing.T, dbURL string, clock *storetest.Clock, url string, timeout time.Duration, previousSecrets ...string) *env {
	t.Helper()
	ctx := context.Background()
	subs := func(property, eventType string) []string {
		if property == "arcade" {
			return []string{url}
		}
		return nil
	}
	db, err := store.Open(ctx, dbURL, store.Options{Now: clock.Now, Webhooks: subs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	p := arcade()
	p.Webhooks = []app.Webhook{{URL: url, Secret: whsec, PreviousSecrets: previousSecrets, Events: allEvents}}
	a := app.New(db, app.Options{Properties: []app.Property{p, other()}, AdminToken: adminTok, IngestWorkers: 2,
		WebhookTimeout: timeout})
	t.Cleanup(a.Close)
	return &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}
}

// openHookedStore opens a migrated SQLite store whose outbox writes deliveries to the
// endpoints subs names.
func openHookedStore(t *testing.T, clock *storetest.Clock, subs func(property, eventType string) []string) *store.DB {
	t.Helper()
	return storetest.OpenWith(t, storetest.URL(t, store.SQLite), store.Options{Now: clock.Now, Webhooks: subs})
}

// deliver runs one delivery pass, as the worker of `tally serve` does each second.
func (e *env) deliver() int {
	e.t.Helper()
	n, err := e.app.DeliverWebhooks(context.Background())
	if err != nil {
		e.t.Fatalf("DeliverWebhooks: %v", err)
	}
	return n
}

// verify checks a request the way a publisher's backend does, with the Standard
// Webhooks reference library, and returns its payload. The library's own timestamp
// check reads the wall clock, so the timestamp is compared with the test's clock here.
func verify(t *testing.T, r received, clock *storetest.Clock) map[string]any {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(whsec)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.VerifyIgnoringTimestamp(r.body, r.header); err != nil {
		t.Fatalf("signature does not verify: %v (headers %v)", err, r.header)
	}
	if ts := r.header.Get("webhook-timestamp"); ts != strconv.FormatInt(clock.Now().Unix(), 10) {
		t.Fatalf("webhook-timestamp %s, want the clock's %d", ts, clock.Now().Unix())
	}
	// Any change to the body breaks the signature.
	if err := wh.VerifyIgnoringTimestamp(append(r.body, ' '), r.header); err == nil {
		t.Fatal("a changed body verifies")
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func adjust(t *testing.T, e *env, user, amount, key string) {
	t.Helper()
	if _, _, err := e.db.Adjust(context.Background(), rewards.AdjustRequest{Actor: "alice", Property: "arcade", User: user,
		Amount: dec(amount), Reason: "goodwill", IdempotencyKey: key, RequestHash: key}); err != nil {
		t.Fatal(err)
	}
}

// A receiver that fails, hangs past the timeout, redirects and then recovers gets the
// same signed message on every attempt, spaced by the retry schedule, and the user's
// later events only after it (order per user).
func TestWebhookDeliveredSignedThroughFailures(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		rcv := newReceiver(t, "fail", "hang", "redirect")
		e := newHookEnv(t, d, rcv.url())
		ctx := context.Background()
		adjust(t, e, "sub1", "100", "k1") // balance.updated
		if _, _, err := e.db.Redeem(ctx, rewards.RedeemRequest{Property: "arcade", User: "sub1", Amount: dec("40"), Reference: "gift card",
			IdempotencyKey: "r1", RequestHash: "h"}); err != nil { // redemption.created, balance.updated
			t.Fatal(err)
		}

		// Attempt 1: 500. Only the first of the user's three is sent.
		if n := e.deliver(); n != 1 {
			t.Fatalf("first pass sent %d, want 1 (the user's later events wait)", n)
		}
		first := rcv.requests()[0]
		if p := verify(t, first, e.clock); p["type"] != "balance.updated" {
			t.Fatalf("first message %v", p)
		}
		if e.deliver() != 0 {
			t.Fatal("sent again before the retry is due")
		}
		// Attempt 2, 5 s ± 20 % later: the receiver hangs; the attempt times out.
		e.clock.Advance(6 * time.Second)
		if n := e.deliver(); n != 1 {
			t.Fatalf("retry pass sent %d", n)
		}
		// Attempt 3, 5 min ± 20 % later: a redirect, not followed, is a failure.
		e.clock.Advance(6 * time.Minute)
		e.deliver()
		// Attempt 4, 30 min ± 20 % later: 204.
		e.clock.Advance(4 * time.Minute)
		if e.deliver() != 0 {
			t.Fatal("the third retry came before 30 min - 20 %")
		}
		e.clock.Advance(33 * time.Minute)
		e.deliver()
		// The next two, one per pass, in order.
		e.deliver()
		e.deliver()

		got := rcv.requests()
		if len(got) != 6 {
			t.Fatalf("receiver got %d requests, want 4 attempts of the first message and 2 more", len(got))
		}
		for _, r := range got[:4] {
			if r.header.Get("webhook-id") != first.header.Get("webhook-id") || string(r.body) != string(first.body) {
				t.Fatalf("a retry is not the same message: %s %s", r.header.Get("webhook-id"), r.body)
			}
		}
		var types []string
		for _, r := range got[3:] {
			p := verify(t, r, e.clock)
			types = append(types, p["type"].(string))
		}
		if fmt.Sprint(types) != "[balance.updated redemption.created balance.updated]" {
			t.Fatalf("order %v", types)
		}
		red := verify(t, got[4], e.clock)["data"].(map[string]any)
		if red["amount"] != "40" || red["reference"] != "gift card" || red["balance"].(map[string]any)["available"] != "60" {
			t.Fatalf("redemption.created data %v", red)
		}

		ds, err := e.db.Deliveries(ctx, rewards.DeliveryFilter{Limit: 10})
		if err != nil || len(ds) != 3 {
			t.Fatalf("deliveries %v %v", ds, err)
		}
		firstD := ds[2]
		if firstD.Status != rewards.DeliveryDelivered || firstD.Attempts != 4 || firstD.LastStatus != 204 {
			t.Fatalf("first delivery %+v", firstD)
		}
		for _, dl := range ds {
			if dl.Status != rewards.DeliveryDelivered {
				t.Fatalf("not delivered: %+v", dl)
			}
		}
		if e.deliver() != 0 || len(rcv.requests()) != 6 {
			t.Fatal("delivered messages were sent again")
		}
	})
}

// The outcome of each failed attempt, as the deliveries list shows it.
func TestWebhookFailuresAreExplained(t *testing.T) {
	rcv := newReceiver(t, "hang", "redirect", "fail")
	e := newHookEnv(t, store.SQLite, rcv.url())
	adjust(t, e, "sub1", "1", "k1")
	last := func() rewards.Delivery {
		ds, err := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 1})
		if err != nil || len(ds) != 1 {
			t.Fatal(ds, err)
		}
		return ds[0]
	}
	e.deliver()
	if d := last(); d.Status != rewards.DeliveryPending || d.LastStatus != 0 || d.LastError == "" ||
		d.NextAttemptAt.Before(e.clock.Now().Add(4*time.Second)) || d.NextAttemptAt.After(e.clock.Now().Add(6*time.Second)) {
		t.Fatalf("after a timeout: %+v (retry due in 5 s ± 20 %%)", d)
	}
	e.clock.Advance(6 * time.Second)
	e.deliver()
	if d := last(); d.LastStatus != http.StatusFound || d.Status != rewards.DeliveryPending {
		t.Fatalf("after a redirect: %+v", d)
	}
	e.clock.Advance(6 * time.Minute)
	e.deliver()
	if d := last(); d.LastStatus != 500 || d.Attempts != 3 || d.NextAttemptAt.Before(e.clock.Now().Add(24*time.Minute)) {
		t.Fatalf("after a 500: %+v", d)
	}
}

// An endpoint whose answer is not UTF-8 (a Latin-1 reason phrase or Location) has its
// attempt recorded all the same, its text made valid: Postgres refused the text, the
// attempt was never recorded, and the delivery went out again every lease, never
// failing, holding back the user's later messages.
func TestWebhookAttemptWithANonUTF8AnswerIsRecorded(t *testing.T) {
	for name, answer := range map[string]string{
		"reason":   "HTTP/1.1 400 Requ\xeate invalide\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"location": "HTTP/1.1 302 Found\r\nLocation: /caf\xe9\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				_, _ = buf.WriteString(answer)
				_ = buf.Flush()
			}))
			t.Cleanup(srv.Close)
			e := newHookEnv(t, store.Postgres, srv.URL+"/hook")
			adjust(t, e, "sub1", "100", "k1")
			e.deliver()
			ds, err := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 1})
			if err != nil || len(ds) != 1 || ds[0].Attempts != 1 || !strings.Contains(ds[0].LastError, "\uFFFD") {
				t.Fatalf("after one attempt: %+v %v", ds, err)
			}
		})
	}
}

// Retries run out after the schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h: seven
// attempts in about 18 hours), and the delivery is failed.
func TestWebhookRetriesRunOut(t *testing.T) {
	rcv := newReceiver(t, "fail", "fail", "fail", "fail", "fail", "fail", "fail", "fail")
	e := newHookEnv(t, store.SQLite, rcv.url())
	adjust(t, e, "sub1", "1", "k1")
	for range 10 {
		e.deliver()
		e.clock.Advance(13 * time.Hour) // beyond the longest wait, jitter included
	}
	if n := len(rcv.requests()); n != 7 {
		t.Fatalf("%d attempts, want 7", n)
	}
	ds, _ := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 1})
	if ds[0].Status != rewards.DeliveryFailed || ds[0].Attempts != 7 {
		t.Fatalf("%+v", ds[0])
	}
}

// A message first in its user's line that waits parked, its turn having come unseen
// (here: the one before it marked delivered behind the store's back), goes out at the
// worker's next sweep, not at its parked time an hour later, and /metrics counts it.
func TestWebhookWorkerSendsAParkedFirstMessage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		rcv := newReceiver(t)
		dbURL := storetest.URL(t, d)
		e := hookEnvOn(t, dbURL, storetest.NewClock(t0), rcv.url())
		adjust(t, e, "sub1", "1", "k1")
		adjust(t, e, "sub1", "2", "k2") // parked behind the first
		ds, err := e.db.Deliveries(ctx, rewards.DeliveryFilter{Limit: 10})
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries %v, %v; want two", ds, err)
		}
		if !ds[0].NextAttemptAt.After(e.clock.Now()) {
			t.Fatalf("the second message is due at %v: not parked", ds[0].NextAttemptAt)
		}
		execSQL(t, d, dbURL, fmt.Sprintf(`UPDATE webhook_deliveries SET status = 'delivered' WHERE id = %d`, ds[1].ID))
		app.SetUnparkEvery(e.app, 10*time.Millisecond)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { e.app.RunWebhooks(runCtx); close(done) }()
		defer func() { cancel(); <-done }()
		select {
		case <-rcv.arrive:
		case <-time.After(10 * time.Second):
			t.Fatal("the parked first message was not sent")
		}
		if got := rcv.requests(); len(got) != 1 || !strings.Contains(string(got[0].body), `"change":{"available":"2"`) {
			t.Fatalf("sent %d messages, the first %s; want the second adjustment's", len(got), got[0].body)
		}
		// The sweep counts it as its update returns, which may be a moment after the send.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			n := scrape(t, e)("tally_webhook_unparked_total", "property", "arcade")
			if n == 1 {
				break
			}
			if n > 1 || time.Now().After(deadline) {
				t.Fatalf("tally_webhook_unparked_total = %v, want 1", n)
			}
		}
	})
}

// /metrics shows an operator that webhooks are stuck: attempts by outcome, and the
// deliveries pending with the age of the oldest (refreshed with the other gauges). There
// were no webhook metrics.
func TestWebhookMetrics(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		rcv := newReceiver(t, "fail")
		dbURL := storetest.URL(t, d)
		e := hookEnvOn(t, dbURL, storetest.NewClock(t0), rcv.url())
		// The counters the README's alerts read start at 0: a series born at 1 is no
		// increase to Prometheus, and the first disabled endpoint paged nobody.
		m := scrape(t, e)
		for _, c := range [][]string{
			{"tally_webhook_endpoints_disabled_total", "property", "arcade"},
			{"tally_webhook_attempts_total", "property", "arcade", "outcome", "failed"},
			{"tally_ingest_events_total", "property", "arcade", "source", "gamezop_spp", "result", "unauthorized"},
			{"tally_ingest_events_total", "property", "arcade", "source", "gamezop_spp", "result", "unavailable"},
		} {
			if got := m(c[0], c[1:]...); got != 0 {
				t.Errorf("%v = %v before anything happened, want 0", c, got)
			}
		}
		adjust(t, e, "sub1", "1", "k1")
		e.clock.Advance(90 * time.Second)
		if err := e.app.RefreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		m = scrape(t, e)
		if n, age := m("tally_webhook_pending_deliveries", "property", "arcade"), m("tally_webhook_oldest_pending_seconds", "property", "arcade"); n != 1 || age != 90 {
			t.Fatalf("pending %v, oldest %v s; want 1 and 90", n, age)
		}
		if m("tally_webhook_pending_deliveries", "property", "other") != 0 {
			t.Fatal("a property without deliveries has no zero series")
		}
		e.deliver() // fails
		e.clock.Advance(time.Minute)
		e.deliver() // 204
		if err := e.app.RefreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		m = scrape(t, e)
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"tally_webhook_attempts_total", []string{"property", "arcade", "outcome", "failed"}, 1},
			{"tally_webhook_attempts_total", []string{"property", "arcade", "outcome", "delivered"}, 1},
			{"tally_webhook_pending_deliveries", []string{"property", "arcade"}, 0},
			{"tally_webhook_oldest_pending_seconds", []string{"property", "arcade"}, 0},
			{"tally_webhook_endpoints_disabled", []string{"property", "arcade"}, 0},
		} {
			if got := m(c.name, c.labels...); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}

		// A disabled endpoint's new deliveries fail unsent, so nothing is pending: the
		// gauge of disabled endpoints is what shows it, for as long as it lasts (the
		// counter's increase paged for an hour, on the one replica that disabled it).
		execSQL(t, d, dbURL, `UPDATE webhook_endpoints SET disabled_at = last_success_at`)
		adjust(t, e, "sub1", "1", "k2")
		e.deliver()
		e.clock.Advance(24 * time.Hour)
		if err := e.app.RefreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		m = scrape(t, e)
		if got := m("tally_webhook_endpoints_disabled", "property", "arcade"); got != 1 || m("tally_webhook_pending_deliveries", "property", "arcade") != 0 {
			t.Fatalf("a disabled endpoint: tally_webhook_endpoints_disabled = %v, want 1", got)
		}
		if got := m("tally_webhook_endpoints_disabled", "property", "other"); got != 0 {
			t.Fatalf("other's disabled endpoints = %v, want 0", got)
		}
		ds, err := e.db.Deliveries(ctx, rewards.DeliveryFilter{Limit: 1})
		if err != nil || len(ds) != 1 || ds[0].Status != rewards.DeliveryFailed {
			t.Fatalf("the delivery to the disabled endpoint: %+v %v", ds, err)
		}
		if _, err := e.db.RetryDelivery(ctx, ds[0].ID, "ops"); err != nil {
			t.Fatal(err)
		}
		if err := e.app.RefreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		if got := scrape(t, e)("tally_webhook_endpoints_disabled", "property", "arcade"); got != 0 {
			t.Fatalf("after a retry enabled it: tally_webhook_endpoints_disabled = %v, want 0", got)
		}
	})
}

// Deliveries waiting for an endpoint no longer configured (a URL moved) are not counted:
// they wait for it to be configured again, and the oldest's age held the alert on it
// firing for good, every message since delivered.
func TestWebhookMetricsLeaveOutEndpointsNoLongerConfigured(t *testing.T) {
	rcv := newReceiver(t)
	clock := storetest.NewClock(t0)
	dbURL := storetest.URL(t, store.SQLite)
	e := hookEnvOn(t, dbURL, clock, rcv.url())
	adjust(t, e, "sub1", "5", "k1") // for the old URL, never sent
	_ = e.db.Close()
	moved := hookEnvOn(t, dbURL, clock, rcv.url()+"?v=2")
	adjust(t, moved, "sub1", "5", "k2")
	clock.Advance(24 * time.Hour)
	moved.deliver()
	if err := moved.app.RefreshGauges(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, moved)
	if n, age := m("tally_webhook_pending_deliveries", "property", "arcade"), m("tally_webhook_oldest_pending_seconds", "property", "arcade"); n != 0 || age != 0 {
		t.Fatalf("pending %v, oldest %v s; want 0 and 0 (the old URL's delivery waits uncounted)", n, age)
	}
}

// A change committed just before the process died is sent after the restart, once; and
// so is one a worker had claimed and not sent when it died (its lease lapses).
func TestWebhookSentAfterCrash(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		rcv := newReceiver(t)
		dbURL := storetest.URL(t, d)
		clock := storetest.NewClock(t0)
		before := hookEnvOn(t, dbURL, clock, rcv.url())
		adjust(t, before, "sub1", "5", "k1")
		adjust(t, before, "sub2", "7", "k2")
		// The dying worker claimed sub2's delivery and never sent it.
		claimed, err := before.db.ClaimDeliveries(ctx, "dead-worker", 1, 70*time.Second)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim %v %v", claimed, err)
		}
		_ = before.db.Close()

		after := hookEnvOn(t, dbURL, clock, rcv.url())
		after.deliver()
		got := rcv.requests()
		if len(got) != 1 {
			t.Fatalf("after restart: %d sent, want the one no worker held", len(got))
		}
		users := map[string]bool{}
		users[verify(t, got[0], clock)["data"].(map[string]any)["user"].(string)] = true
		clock.Advance(71 * time.Second) // the dead worker's lease lapses
		after.deliver()
		after.deliver()
		got = rcv.requests()
		if len(got) != 2 || got[0].header.Get("webhook-id") == got[1].header.Get("webhook-id") {
			t.Fatalf("sent %d, want each change once", len(got))
		}
		users[verify(t, got[1], clock)["data"].(map[string]any)["user"].(string)] = true
		if !users["sub1"] || !users["sub2"] {
			t.Fatalf("users announced: %v", users)
		}
	})
}

// An endpoint removed from the config leaves its deliveries pending, without a request.
func TestWebhookEndpointNoLongerConfigured(t *testing.T) {
	rcv := newReceiver(t)
	clock := storetest.NewClock(t0)
	dbURL := storetest.URL(t, store.SQLite)
	e := hookEnvOn(t, dbURL, clock, rcv.url())
	adjust(t, e, "sub1", "5", "k1")
	_ = e.db.Close()
	// A replica whose config lacks the endpoint (an older config during a rolling deploy,
	// or the URL removed) leaves its deliveries alone: pending, listed, unsent.
	moved := hookEnvOn(t, dbURL, clock, rcv.srv.URL+"/new-hook")
	moved.deliver()
	if len(rcv.requests()) != 0 {
		t.Fatal("sent to an endpoint no longer configured")
	}
	ds, _ := moved.db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 1})
	if ds[0].Status != rewards.DeliveryPending || ds[0].Attempts != 0 {
		t.Fatalf("%+v", ds[0])
	}
	// A replica that has it sends it.
	_ = moved.db.Close()
	again := hookEnvOn(t, dbURL, clock, rcv.url())
	again.deliver()
	if len(rcv.requests()) != 1 {
		t.Fatalf("%d requests once the endpoint is configured again", len(rcv.requests()))
	}
}

// The worker `tally serve` runs delivers on its own and stops when its context ends.
func TestWebhookWorkerRunsAndStops(t *testing.T) {
	rcv := newReceiver(t)
	e := newHookEnv(t, store.SQLite, rcv.url())
	adjust(t, e, "sub1", "5", "k1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.app.RunWebhooks(ctx); close(done) }()
	select {
	case <-rcv.arrive:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker sent nothing")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}
}

// A worker stopping (a deploy) lets the sends in flight finish and records them, and
// gives back what it claimed and had not sent, so the next process sends it at once and
// nothing twice. Before, the sends were cut off unrecorded and everything the pass had
// claimed stayed leased to the stopped process: nothing of those users went out until
// the lease lapsed (about 3 minutes), and then the cut-off messages went again.
func TestWebhookStoppingWorkerGivesBackWhatItDidNotSend(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		rcv := newReceiver(t)
		rcv.rule = func([]byte) string { return "gate" }
		dbURL := storetest.URL(t, d)
		clock := storetest.NewClock(t0)
		e := hookEnvOn(t, dbURL, clock, rcv.url())
		for i := range 20 {
			adjust(t, e, fmt.Sprintf("u%02d", i), "5", fmt.Sprint("k", i))
		}
		pending, err := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Status: rewards.DeliveryPending, Limit: 100})
		if err != nil || len(pending) != 20 {
			t.Fatalf("pending: %d, %v", len(pending), err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		passed := make(chan int)
		go func() { n, _ := e.app.DeliverWebhooks(ctx); passed <- n }()
		<-rcv.arrive // a send is in flight
		cancel()
		close(rcv.gate)
		sent := <-passed
		if got := len(rcv.requests()); sent != got || sent == 0 || sent == 20 {
			t.Fatalf("the stopped pass reports %d sent, the endpoint got %d; want the ones in flight, not all 20", sent, got)
		}
		delivered, _ := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Status: rewards.DeliveryDelivered, Limit: 100})
		if len(delivered) != sent {
			t.Fatalf("%d recorded delivered, %d sent", len(delivered), sent)
		}
		// The next process, at the same moment: the rest is its to send, each once.
		_ = e.db.Close()
		next := hookEnvOn(t, dbURL, clock, rcv.url())
		for next.deliver() > 0 {
		}
		ids := map[string]int{}
		for _, r := range rcv.requests() {
			ids[r.header.Get("webhook-id")]++
		}
		if len(ids) != 20 || len(rcv.requests()) != 20 {
			t.Fatalf("%d requests for %d messages, want each of the 20 once", len(rcv.requests()), len(ids))
		}
	})
}

// Delivered deliveries are removed 30 days after delivery, oldest first; a failed one
// (for an operator to retry) and a recent one stay. The worker does it when it starts.
func TestDeliveredWebhooksAgeOut(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		rcv := newReceiver(t)
		rcv.rule = func(body []byte) string {
			if strings.Contains(string(body), `"user":"sub3"`) {
				return "fail"
			}
			return "ok"
		}
		e := newHookEnv(t, d, rcv.url())
		ctx := context.Background()
		adjust(t, e, "sub1", "1", "k1")
		adjust(t, e, "sub3", "1", "k3")
		for range 10 { // sub1's is delivered now; sub3's fails until its retries run out
			e.deliver()
			e.clock.Advance(13 * time.Hour)
		}
		e.clock.Set(t0.Add(app.WebhookRetention + time.Hour))
		adjust(t, e, "sub2", "1", "k2")
		e.deliver()
		users := func() map[string]string {
			ds, err := e.db.Deliveries(ctx, rewards.DeliveryFilter{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, dl := range ds {
				out[dl.User] = dl.Status
			}
			return out
		}
		if got := users(); len(got) != 3 || got["sub1"] != rewards.DeliveryDelivered || got["sub3"] != rewards.DeliveryFailed {
			t.Fatalf("before: %v", got)
		}

		// The worker prunes as it starts (here with nothing left to send).
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { e.app.RunWebhooks(runCtx); close(done) }()
		poll := time.NewTicker(5 * time.Millisecond)
		defer poll.Stop()
		deadline := time.After(10 * time.Second)
		for users()["sub1"] != "" {
			select {
			case <-deadline:
				t.Fatal("the worker did not remove the delivery delivered 30 days ago")
			case <-poll.C:
			}
		}
		cancel()
		<-done
		if got := users(); len(got) != 2 || got["sub2"] != rewards.DeliveryDelivered || got["sub3"] != rewards.DeliveryFailed {
			t.Fatalf("after: %v, want sub2's (recent) and sub3's (failed) kept", got)
		}
		if n, err := e.app.PruneWebhookDeliveries(ctx); n != 0 || err != nil {
			t.Fatalf("a second prune removed %d (%v)", n, err)
		}
	})
}

// During a rotation each message is signed with the secret and every previous one, so a
// receiver checking either key accepts it (Standard Webhooks' list of signatures).
func TestWebhookSignedWithPreviousSecrets(t *testing.T) {
	const previous = "whsec_cHJldmlvdXMta2V5LW9mLTMyLWJ5dGVzLWxvbmchIQ=="
	rcv := newReceiver(t)
	clock := storetest.NewClock(t0)
	e := hookEnvOn(t, storetest.URL(t, store.SQLite), clock, rcv.url(), previous)
	adjust(t, e, "sub1", "5", "k1")
	e.deliver()
	r := rcv.requests()[0]
	if sigs := strings.Fields(r.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("webhook-signature %q, want two signatures", r.header.Get("webhook-signature"))
	}
	for secret, want := range map[string]bool{whsec: true, previous: true, "whsec_b3RoZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmchISEhIQ==": false} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.VerifyIgnoringTimestamp(r.body, r.header); (err == nil) != want {
			t.Errorf("verified with %s: %v, want ok %v", secret, err, want)
		}
	}
}

// The README's Python verifier accepts a message Tally sent and refuses it changed.
func TestReadmeWebhookVerifySnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- webhook-verify:python -->\n```python\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no webhook-verify:python snippet")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not found: the README's verifier is untested here")
	}
	rcv := newReceiver(t)
	e := newHookEnv(t, store.SQLite, rcv.url())
	adjust(t, e, "sub1", "12.5", "k1")
	e.deliver()
	r := rcv.requests()[0]
	driver := "\nimport sys\nh = {'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]}\n" +
		"print(verify(sys.argv[1], h, sys.stdin.buffer.read()))\n"
	for body, want := range map[string]string{string(r.body): "True", strings.Replace(string(r.body), "12.5", "99.5", 1): "False"} {
		cmd := exec.Command(python, "-c", string(m[1])+driver, whsec, r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"),
			r.header.Get("webhook-signature"))
		cmd.Stdin = strings.NewReader(body)
		var stderr strings.Builder
		cmd.Stderr = &stderr // the answer is stdout: a shell shim's locale warning goes to stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python: %v\n%s%s", err, out, stderr.String())
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("verify(%s) = %s, want %s (stderr: %s)", body, got, want, stderr.String())
		}
	}
}

// Two replicas on one Postgres deliver side by side: every message arrives exactly once
// (the receiver never fails here), and each user's messages in order.
func TestWebhookReplicasDoNotDoubleSend(t *testing.T) {
	rcv := newReceiver(t)
	dbURL := storetest.URL(t, store.Postgres)
	clock := storetest.NewClock(t0)
	a := hookEnvOn(t, dbURL, clock, rcv.url())
	b := hookEnvOn(t, dbURL, clock, rcv.url())
	const users, each = 40, 3
	for u := range users {
		for k := range each {
			adjust(t, a, fmt.Sprintf("u%d", u), strconv.Itoa(k+1), fmt.Sprintf("k%d-%d", u, k))
		}
	}
	var wg sync.WaitGroup
	for _, e := range []*env{a, b} {
		wg.Go(func() {
			for {
				n, err := e.app.DeliverWebhooks(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					// Nothing due for this replica: the other may still hold the last ones.
					ds, err := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Status: rewards.DeliveryPending, Limit: 1})
					if err != nil || len(ds) == 0 {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got := rcv.requests()
	if len(got) != users*each {
		t.Fatalf("received %d messages, want %d", len(got), users*each)
	}
	seen := map[string]bool{}
	last := map[string]string{} // user → lifetime_earned of the last message
	for _, r := range got {
		id := r.header.Get("webhook-id")
		if seen[id] {
			t.Fatalf("%s received twice", id)
		}
		seen[id] = true
		data := verify(t, r, clock)["data"].(map[string]any)
		user, earned := data["user"].(string), data["balance"].(map[string]any)["lifetime_earned"].(string)
		if prev, ok := last[user]; ok && !dec(earned).GreaterThan(dec(prev)) {
			t.Fatalf("%s: lifetime_earned %s arrived after %s: out of order", user, earned, prev)
		}
		last[user] = earned
	}
}

// An endpoint that hangs delays only its own deliveries: another publisher's endpoint
// gets its webhook at once from the worker `tally serve` runs. Before, one pass claimed
// the oldest deliveries of every endpoint and waited for all its sends, so twenty hanging
// deliveries ahead of it held the other publisher's until they timed out.
func TestWebhookEndpointThatHangsDelaysOnlyItself(t *testing.T) {
	ctx := context.Background()
	hanging := newReceiver(t)
	hanging.rule = func([]byte) string { return "hang" }
	healthy := newReceiver(t)
	clock := storetest.NewClock(t0)
	subs := func(property, eventType string) []string {
		switch property {
		case "arcade":
			return []string{hanging.url()}
		case "other":
			return []string{healthy.url()}
		}
		return nil
	}
	db := openHookedStore(t, clock, subs)
	arcadeP, otherP := arcade(), other()
	arcadeP.Webhooks = []app.Webhook{{URL: hanging.url(), Secret: whsec, Events: allEvents}}
	otherP.Webhooks = []app.Webhook{{URL: healthy.url(), Secret: whsec, Events: allEvents}}
	a := app.New(db, app.Options{Properties: []app.Property{arcadeP, otherP}, AdminToken: adminTok, IngestWorkers: 2,
		WebhookTimeout: time.Minute})
	t.Cleanup(a.Close)
	for i := range 20 {
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "alice", Property: "arcade", User: fmt.Sprintf("u%d", i),
			Amount: dec("1"), Reason: "goodwill", IdempotencyKey: fmt.Sprint(i), RequestHash: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "alice", Property: "other", User: "bob",
		Amount: dec("1"), Reason: "goodwill", IdempotencyKey: "b", RequestHash: "b"}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.RunWebhooks(runCtx); close(done) }()
	defer func() {
		hanging.srv.CloseClientConnections() // the worker waits for its sends in flight
		cancel()
		<-done
	}()
	select {
	case <-healthy.arrive:
	case <-time.After(20 * time.Second): // well within the hanging endpoint's one-minute timeout
		t.Fatal("the healthy endpoint got nothing while the other hung")
	}
}

// Any number of endpoints that hang leave a healthy endpoint's deliveries moving. A
// process runs four passes at once; with five publishers' endpoints hanging, the first
// four held every slot until their sends timed out (here a minute; 10 s in production,
// per eight deliveries of a pass), and every other publisher's webhooks waited. A pass
// whose send has no answer within 2 s now gives its slot back, and the endpoint's
// next passes run in slots of their own.
func TestWebhookEndpointsThatHangTakeNoHealthySlot(t *testing.T) {
	const hangs = 5 // more than a process's four slots
	c := startCrowd(t, hangs, "hang", 20)
	// Wait until four hanging endpoints have a request in flight: each holds a slot.
	first := make(chan int, hangs)
	for i, r := range c.busy {
		go func() {
			select {
			case <-r.arrive:
				first <- i
			case <-r.done:
			}
		}()
	}
	for range 4 {
		select {
		case <-first:
		case <-time.After(20 * time.Second):
			t.Fatal("the hanging endpoints were not sent to")
		}
	}
	// Well within the hanging endpoints' one-minute timeout.
	c.changeArrives(t, 20*time.Second, "the healthy endpoint got nothing while five others hung")
}

// crowd is a worker of `tally serve` delivering to busy endpoints, each of its own
// property b0, b1, …, and to the healthy endpoint of "other".
type crowd struct {
	busy    []*receiver
	healthy *receiver
	credit  func(property, user, key string)
	changes int // made by changeArrives
}

// busySentTo waits until every busy endpoint has had a request, failing after within.
func (c *crowd) busySentTo(t *testing.T, within time.Duration) {
	t.Helper()
	for _, r := range c.busy {
		select {
		case <-r.arrive:
		case <-time.After(within):
			t.Fatal("the busy endpoints were not all sent to")
		}
	}
}

// changeArrives credits a user of the healthy endpoint's property and fails with why
// unless the endpoint has the change within.
func (c *crowd) changeArrives(t *testing.T, within time.Duration, why string) {
	t.Helper()
	c.changes++
	c.credit("other", "bob", fmt.Sprint("change-", c.changes))
	select {
	case <-c.healthy.arrive:
	case <-time.After(within):
		t.Fatal(why)
	}
}

// startCrowd starts RunWebhooks (one-minute timeout) over n endpoints that all answer
// with behaviour, each with users credited and so a delivery queued per user, and the
// healthy endpoint, with nothing queued. The worker stops when the test ends.
func startCrowd(t *testing.T, n int, behaviour string, users int) *crowd {
	t.Helper()
	ctx := context.Background()
	c := &crowd{busy: make([]*receiver, n), healthy: newReceiver(t)}
	var props []app.Property
	urls := map[string]string{}
	for i := range n {
		r := newReceiver(t)
		r.rule = func([]byte) string { return behaviour }
		c.busy[i] = r
		p := other()
		p.ID, p.APIKeys = fmt.Sprintf("b%d", i), []string{fmt.Sprintf("key-b%d", i)}
		p.Rules.Property = p.ID
		p.Webhooks = []app.Webhook{{URL: r.url(), Secret: whsec, Events: allEvents}}
		props, urls[p.ID] = append(props, p), r.url()
	}
	otherP := other()
	otherP.Webhooks = []app.Webhook{{URL: c.healthy.url(), Secret: whsec, Events: allEvents}}
	props, urls["other"] = append(props, otherP), c.healthy.url()
	db := openHookedStore(t, storetest.NewClock(t0), func(property, eventType string) []string {
		if u, ok := urls[property]; ok {
			return []string{u}
		}
		return nil
	})
	a := app.New(db, app.Options{Properties: props, AdminToken: adminTok, IngestWorkers: 2, WebhookTimeout: time.Minute})
	t.Cleanup(a.Close)
	c.credit = func(property, user, key string) {
		t.Helper()
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "alice", Property: property, User: user,
			Amount: dec("1"), Reason: "goodwill", IdempotencyKey: key, RequestHash: key}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		for u := range users {
			c.credit(fmt.Sprintf("b%d", i), fmt.Sprintf("u%d", u), fmt.Sprint(u))
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.RunWebhooks(runCtx); close(done) }()
	t.Cleanup(func() { // before the receivers close (cleanups run last first)
		for _, r := range c.busy {
			r.srv.CloseClientConnections() // the worker waits for its sends in flight
		}
		cancel()
		<-done
	})
	return c
}

// An endpoint is moved to the slow slots once two passes in a row have each had a late
// send (an answer after 2 s, or none), not for one (a pause, a refused connection
// during its deploy): one moved it, and its next pass waited behind every hanging
// endpoint's (review helper 198: 15 s with eight of them, 25 s with sixteen, for an
// endpoint that answered at once again). An endpoint that always answers late is moved
// too: in the healthy slots, sixteen of them kept a healthy endpoint waiting 8 s a pass
// (review helper 199).
func TestWebhookEndpointGoesToTheSlowSlotsAfterTwoLatePasses(t *testing.T) {
	ctx := context.Background()
	rcv := newReceiver(t, "late", "ok", "hang", "ok", "late", "hang")
	clock := storetest.NewClock(t0)
	db := openHookedStore(t, clock, func(property, eventType string) []string { return []string{rcv.url()} })
	p := arcade()
	p.Webhooks = []app.Webhook{{URL: rcv.url(), Secret: whsec, Events: allEvents}}
	logs := &lockedBuffer{}
	a := app.New(db, app.Options{Properties: []app.Property{p}, AdminToken: adminTok, IngestWorkers: 2,
		WebhookTimeout: 3 * time.Second, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	t.Cleanup(a.Close)
	e := &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.RunWebhooks(runCtx); close(done) }()
	defer func() {
		rcv.srv.CloseClientConnections()
		cancel()
		<-done
	}()
	slowLanes := func() bool {
		return strings.Contains(logs.String(), "slow lanes")
	}
	// passed waits until the receiver has had n requests and the last was recorded.
	passed := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ds, err := db.Deliveries(ctx, rewards.DeliveryFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			attempts := 0
			for _, d := range ds {
				attempts += d.Attempts
			}
			if len(rcv.requests()) == n && attempts == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d requests and %d attempts recorded, want %d", len(rcv.requests()), attempts, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	adjust(t, e, "u1", "1", "k1") // answered late
	passed(1)
	adjust(t, e, "u2", "1", "k2") // answered at once
	passed(2)
	adjust(t, e, "u3", "1", "k3") // no answer
	passed(3)
	adjust(t, e, "u4", "1", "k4") // answered at once
	passed(4)
	if slowLanes() {
		t.Fatalf("a late answer and one unanswered send, each followed by a pass in time, moved the endpoint to the slow lanes:\n%s", logs.String())
	}
	adjust(t, e, "u5", "1", "k5") // late, then no answer: two passes in a row
	passed(5)
	adjust(t, e, "u6", "1", "k6")
	passed(6)
	if !slowLanes() {
		t.Fatalf("an endpoint late two passes in a row is not in the slow lanes:\n%s", logs.String())
	}
}

// A pass holds a healthy slot for 2 s at most, however long its sends keep coming:
// endpoints that answer in time but slowly, with a queue each, held every slot for a
// whole pass (thirteen rounds of eight sends), and a healthy endpoint waited that long
// (review helper 199: 7.5 s behind four endpoints answering in 1.5 s).
func TestWebhookPassGivesItsSlotUpInTime(t *testing.T) {
	c := startCrowd(t, 4, "slowish", 100) // as many as a process's slots
	c.busySentTo(t, 20*time.Second)       // every slot holds a pass of a hundred slow deliveries
	// A pass of a hundred takes thirteen rounds of 1.5 s.
	c.changeArrives(t, 12*time.Second, "the healthy endpoint waited for whole passes of endpoints answering slowly")
}

// A pass over an endpoint that does not answer stops at its first stalled send: it
// sends no more and gives the rest back, due at once (not leased until the lease runs
// out), so the next pass sends them. It sent all 100 of a pass, eight at a time, a
// timeout each round.
func TestWebhookPassStopsAtAnEndpointThatDoesNotAnswer(t *testing.T) {
	rcv := newReceiver(t)
	var mu sync.Mutex
	answering := false
	rcv.rule = func([]byte) string {
		mu.Lock()
		defer mu.Unlock()
		if answering {
			return "ok"
		}
		return "hang"
	}
	e := newHookEnv(t, store.SQLite, rcv.url())
	for u := range 20 {
		adjust(t, e, fmt.Sprintf("u%d", u), "1", fmt.Sprint(u))
	}
	if n := e.deliver(); n != 8 {
		t.Fatalf("a pass over an endpoint that hangs sent %d deliveries, want the 8 in flight when the first timed out", n)
	}
	if got := len(rcv.requests()); got != 8 {
		t.Fatalf("the endpoint got %d requests, want 8", got)
	}
	mu.Lock()
	answering = true
	mu.Unlock()
	// The other twelve are due now, not leased: the next pass sends them.
	if n := e.deliver(); n != 12 {
		t.Fatalf("the next pass sent %d, want the 12 given back", n)
	}
	ds, err := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	delivered, failed := 0, 0
	for _, d := range ds {
		switch {
		case d.Status == rewards.DeliveryDelivered && d.Attempts == 1:
			delivered++
		case d.Status == rewards.DeliveryPending && d.Attempts == 1:
			failed++
		default:
			t.Errorf("delivery %d: %s after %d attempts", d.ID, d.Status, d.Attempts)
		}
	}
	if delivered != 12 || failed != 8 {
		t.Fatalf("%d delivered at the first attempt and %d pending after one failure, want 12 and 8", delivered, failed)
	}
}

// An endpoint that answers 2xx at once and then trickles its body is delivered once its
// status has come: the body is read for a second at most. It was read until the whole
// timeout ran out, on every message, holding a lane each time.
func TestWebhookAnswerTrickledAfterItsStatusIsNotWaitedFor(t *testing.T) {
	rcv := newReceiver(t, "trickle")
	clock := storetest.NewClock(t0)
	e := hookEnvTimed(t, storetest.URL(t, store.SQLite), clock, rcv.url(), 10*time.Minute)
	adjust(t, e, "sub1", "1", "k1")
	sent := make(chan int, 1)
	go func() {
		n, err := e.app.DeliverWebhooks(context.Background())
		if err != nil {
			t.Errorf("DeliverWebhooks: %v", err)
		}
		sent <- n
	}()
	select {
	case <-sent:
	case <-time.After(30 * time.Second): // well within the ten-minute timeout
		t.Fatal("the pass still reads the trickled answer")
	}
	ds, err := e.db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 1})
	if err != nil || len(ds) != 1 {
		t.Fatal(ds, err)
	}
	if d := ds[0]; d.Status != rewards.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != http.StatusOK {
		t.Fatalf("after a 200 with a trickled body: %+v", d)
	}
}

// countingStore counts the webhook worker's claims and its asks for due endpoints.
type countingStore struct {
	*store.DB
	mu          sync.Mutex
	claims, ask int
}

func (s *countingStore) ClaimDeliveriesFor(ctx context.Context, holder string, limit int, lease time.Duration, endpoints [][2]string) ([]rewards.Delivery, error) {
	s.mu.Lock()
	s.claims++
	s.mu.Unlock()
	return s.DB.ClaimDeliveriesFor(ctx, holder, limit, lease, endpoints)
}

func (s *countingStore) DueEndpoints(ctx context.Context, endpoints [][2]string) ([][2]string, error) {
	s.mu.Lock()
	s.ask++
	s.mu.Unlock()
	return s.DB.DueEndpoints(ctx, endpoints)
}

func (s *countingStore) counts() (claims, asks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims, s.ask
}

// An idle worker asks the database once a poll which endpoints have work, and claims
// for none of them: each endpoint's lane ran a claim, a write transaction, every second,
// so a thousand idle endpoints kept the database at a thousand transactions a second.
// A change is still sent at the next poll.
func TestIdleWebhookWorkerClaimsNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		rcv := newReceiver(t)
		clock := storetest.NewClock(t0)
		urls := []string{rcv.url(), rcv.url() + "?b", rcv.url() + "?c"}
		subs := func(property, eventType string) []string {
			if property == "arcade" {
				return urls[:1]
			}
			return nil
		}
		db, err := store.Open(ctx, storetest.URL(t, d), store.Options{Now: clock.Now, Webhooks: subs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if err := db.Migrate(ctx, nil); err != nil {
			t.Fatal(err)
		}
		st := &countingStore{DB: db}
		p := arcade()
		for _, u := range urls {
			p.Webhooks = append(p.Webhooks, app.Webhook{URL: u, Secret: whsec, Events: allEvents})
		}
		a := app.New(st, app.Options{Properties: []app.Property{p, other()}, AdminToken: adminTok, IngestWorkers: 2,
			WebhookTimeout: hookTimeout})
		t.Cleanup(a.Close)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { a.RunWebhooks(runCtx); close(done) }()
		defer func() { cancel(); <-done }()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling a condition, with a deadline
			claims, asks := st.counts()
			if claims > 0 {
				t.Fatalf("an idle worker claimed %d times (%d asks)", claims, asks)
			}
			if asks >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the worker asked %d times in 20 s", asks)
			}
		}
		e := &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}
		adjust(t, e, "sub1", "1", "k1")
		select {
		case <-rcv.arrive:
		case <-time.After(20 * time.Second):
			t.Fatal("the change was not sent")
		}
		if got := rcv.requests(); len(got) != 1 || got[0].path != "/hook" {
			t.Fatalf("sent %d", len(got))
		}
	})
}

// A change for an endpoint with nothing queued goes out once a slot comes free, however
// many endpoints are working through queues: in one queue it waited behind every one of
// their turns, 2 s each over four slots (review helper 200: 6 s behind sixteen; 12 s
// behind the twenty-four here).
func TestWebhookFirstPassWaitsForNoQueueOfTurns(t *testing.T) {
	c := startCrowd(t, 24, "slowish", 100) // six times the slots, each with a hundred to send
	c.busySentTo(t, 40*time.Second)
	// 24 / 4 turns of 2 s in one queue: 12 s. The changes after the first go out as
	// fast: a pass after one that sent all it claimed is a short one (review helper 203:
	// it waited behind the endpoints with queues).
	for range 3 {
		c.changeArrives(t, 7*time.Second, "the change waited behind the turns of the endpoints working through queues")
	}
}
