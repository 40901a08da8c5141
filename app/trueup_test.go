package app_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// trueUpSessions posts two SPP sessions of $0.000012 on 2026-11-22 (t0) for sub1 and
// sub2: each grosses 0.84, withholds 0.168 and credits 0.672. E = 0.000024 USD.
func (e *env) trueUpSessions() {
	e.t.Helper()
	for _, u := range []string{"sub1", "sub2"} {
		body := strings.Replace(strings.Replace(sppBody, `"user-id":"sub1"`, `"user-id":"`+u+`"`, 1),
			"b48a8368-a369-49a4-b427-2d5891ef3763", "session-"+u, 1)
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken); a.Code != 200 {
			e.t.Fatalf("spp: %d %s", a.Code, a.Raw)
		}
	}
}

func TestTrueUpOverHTTP(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		admin := []string{"Authorization", "Bearer " + aliceTok}
		e.trueUpSessions()
		e.clock.Set(t0.AddDate(0, 0, 2))

		// Booked revenue as CSV, then again as JSON: the same amount changes nothing.
		csvBody := "date,revenue_usd\n2026-11-22,0.0000216\n"
		a := e.do("POST", "/v1/admin/properties/arcade/booked-revenue", csvBody, append(admin, "Content-Type", "text/csv")...)
		if a.Code != 200 || a.Body["inserted"] != 1.0 {
			t.Fatalf("CSV import: %d %s", a.Code, a.Raw)
		}
		if a := e.do("POST", "/v1/admin/properties/arcade/booked-revenue?correction=yes", `[{"date":"2026-11-22","revenue_usd":"1"}]`, admin...); a.Code != 400 ||
			problemField(a) != "correction" {
			t.Fatalf("correction=yes: %d %s, want 400 on correction", a.Code, a.Raw)
		}
		a = e.do("POST", "/v1/admin/properties/arcade/booked-revenue", `[{"date":"2026-11-22","revenue_usd":0.0000216}]`, admin...)
		if a.Code != 200 || a.Body["unchanged"] != 1.0 {
			t.Fatalf("JSON import: %d %s", a.Code, a.Raw)
		}
		for _, bad := range []struct{ body, field string }{
			{`[{"date":"22/11/2026","revenue_usd":"1"}]`, "rows[0].date"},
			{`[{"date":"2026-11-22","revenue_usd":"-1"}]`, "rows[0].revenue_usd"},
			{`{"rows":[{"date":"2026-11-22","revenue_usd":"1"},{"date":"2026-11-22","revenue_usd":"2"}]}`, "rows[1].date"},
			{`{"correction":true}`, "rows"},
			{`[{"date":"2026-11-22","revenue_usd":"1"}][]`, "body"}, // trailing data after the array
		} {
			if a := e.do("POST", "/v1/admin/properties/arcade/booked-revenue", bad.body, admin...); a.Code != 400 || problemField(a) != bad.field {
				t.Errorf("import %s: %d %s, want 400 on %s", bad.body, a.Code, a.Raw, bad.field)
			}
		}

		// A day given with a time is not "required": it is there, and not a date.
		for q, msg := range map[string]string{
			"from=2026-11-22&to=2026-11-23T00:00:00Z": "must be a date YYYY-MM-DD",
			"from=2026-11-22":                         "is required",
		} {
			a := e.do("GET", "/v1/admin/properties/arcade/trueup?"+q, "", admin...)
			if a.Code != 400 || problemField(a) != "to" || !strings.Contains(a.Raw, msg) {
				t.Errorf("view ?%s: %d %s, want 400 on to saying %q", q, a.Code, a.Raw, msg)
			}
		}

		// The variance view: r = 0.9 on the day, recommended buffer 0.1.
		v := e.do("GET", "/v1/admin/properties/arcade/trueup?from=2026-11-22&to=2026-11-23", "", admin...)
		days, _ := v.Body["days"].([]any)
		if v.Code != 200 || len(days) != 2 || v.Body["recommended_buffer"] != "0.1" || v.Body["current_buffer"] != "0.2" {
			t.Fatalf("view: %d %s", v.Code, v.Raw)
		}
		d0 := days[0].(map[string]any)
		if d0["sessions"] != 2.0 || d0["estimated_usd"] != "0.000024" || d0["booked_usd"] != "0.0000216" || d0["ratio"] != "0.9" ||
			d0["withheld"] != "0.336" || d0["credited"] != "1.344" || d0["gross"] != "1.68" || d0["trued_up"] != false {
			t.Fatalf("day view: %v", d0)
		}
		if days[1].(map[string]any)["booked_usd"] != nil {
			t.Fatalf("a day without booked revenue: %v", days[1])
		}

		// The second day has no booked revenue: refused; the first alone is released.
		run := func(key, body string) answer {
			return e.do("POST", "/v1/admin/properties/arcade/trueups", body, append(admin, "Idempotency-Key", key)...)
		}
		// A day that has not ended (the clock is on 2026-11-24) is a 400 naming "to"; it
		// was a 400 naming nothing.
		if a := run("k-early", `{"from":"2026-11-22","to":"2026-11-24"}`); a.Code != 400 || problemField(a) != "to" {
			t.Fatalf("a true-up to today: %d %s, want 400 on to", a.Code, a.Raw)
		}
		if a := run("k0", `{"from":"2026-11-22","to":"2026-11-23"}`); a.Code != 409 || !strings.Contains(a.Raw, "not-booked") ||
			!strings.Contains(a.Raw, "2026-11-23 has no booked revenue yet") {
			t.Fatalf("unbooked day: %d %s", a.Code, a.Raw)
		}
		first := run("k1", `{"from":"2026-11-22","to":"2026-11-22"}`)
		if first.Code != 201 || first.Body["ratio"] != "0.9" || first.Body["released"] != "0.168" || first.Body["users"] != 2.0 ||
			first.Body["actor"] != "alice" {
			t.Fatalf("true-up: %d %s", first.Code, first.Raw)
		}
		if again := run("k1", `{"from":"2026-11-22","to":"2026-11-22"}`); again.Code != 201 || again.Header.Get("Idempotent-Replay") != "true" ||
			again.Raw != first.Raw {
			t.Fatalf("retry: %d %s", again.Code, again.Raw)
		}
		if a := run("k2", `{"from":"2026-11-22","to":"2026-11-22"}`); a.Code != 409 || !strings.Contains(a.Raw, "trued-up") {
			t.Fatalf("a day twice: %d %s", a.Code, a.Raw)
		}
		// Half of each buffer (0.084) is released to pending.
		e.wantBalance("arcade", "sub1", apiKey, "0", "0.756")
		tx := e.do("GET", "/v1/properties/arcade/users/sub1/transactions", "", "Authorization", "Bearer "+apiKey)
		top := tx.Body["data"].([]any)[0].(map[string]any)
		if top["kind"] != "buffer_release" || top["amount"] != "0.084" || top["ref"] != "trueup:"+first.Body["id"].(string) {
			t.Fatalf("release entry: %s", tx.Raw)
		}
		// A changed amount for the trued-up day: 409, unless it is a correction.
		if a := e.do("POST", "/v1/admin/properties/arcade/booked-revenue", `[{"date":"2026-11-22","revenue_usd":"0.00003"}]`, admin...); a.Code != 409 {
			t.Fatalf("changed trued-up day: %d %s", a.Code, a.Raw)
		}
		if a := e.do("POST", "/v1/admin/properties/arcade/booked-revenue", `{"correction":true,"rows":[{"date":"2026-11-22","revenue_usd":"0.00003"}]}`,
			admin...); a.Code != 200 || a.Body["corrected"] != 1.0 {
			t.Fatalf("correction: %d %s", a.Code, a.Raw)
		}
		v = e.do("GET", "/v1/admin/properties/arcade/trueup?from=2026-11-22&to=2026-11-22", "", admin...)
		if d0 := v.Body["days"].([]any)[0].(map[string]any); d0["released"] != "0.168" || d0["trued_up"] != true {
			t.Fatalf("view after: %s", v.Raw)
		}
		audit := e.do("GET", "/v1/admin/audit", "", admin...)
		if !strings.Contains(audit.Raw, `"action":"trueup"`) || !strings.Contains(audit.Raw, `"action":"booked_revenue"`) {
			t.Fatalf("audit: %s", audit.Raw)
		}
		e.checkInvariants()
	})
}

// tally trueup fetch speaks Gamezop's documented request to a local fake of the reports
// API and imports what it answers.
func TestFetchBookedFromGamezop(t *testing.T) {
	var calls atomic.Int32
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req map[string]any
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Authorization") != "Bearer reports-token" ||
			r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &req) != nil ||
			req["start_date"] != "2026-11-21" || req["end_date"] != "2026-11-22" || req["property_id"] != "1234" {
			http.Error(w, "bad request: "+string(body), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":[{"date":"2026-11-21","property-id":"1234","revenue":0.5},`+
			`{"date":"2026-11-22","property-id":"1234","revenue":"0.0000216"},{"date":"2026-11-22","property-id":"999","revenue":7}]}`)
	}))
	defer fake.Close()
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		e := base.withProperty(func(p *appProperty) { p.Reports = &app.ReportsSource{URL: fake.URL, BearerToken: "reports-token"} })
		// Today's revenue is not complete: a period reaching today is refused, before any
		// call to Gamezop.
		var ve *app.ValidationError
		if _, _, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops"); !errors.As(err, &ve) ||
			ve.Errors[0].Field != "to" {
			t.Fatalf("fetch up to today: %v, want a 400 naming to", err)
		}
		e.clock.Set(t0.Add(24 * time.Hour))
		got, days, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops")
		if err != nil || len(days) != 2 || got.Inserted != 2 || days[1].RevenueUSD.String() != "0.0000216" {
			t.Fatalf("fetch: %+v %+v %v", got, days, err)
		}
		again, _, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops")
		if err != nil || again.Unchanged != 2 {
			t.Fatalf("fetch again: %+v %v", again, err)
		}
		e.clock.Set(t0)
		// A property without gamezop_reports cannot fetch.
		if _, _, err := base.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops"); err == nil {
			t.Fatal("fetched without gamezop_reports")
		}
	})
	if calls.Load() != 4 {
		t.Fatalf("%d calls to the fake reports API, want 4", calls.Load())
	}
}

// An answer that announces its next page in a Link header, not in its body, is refused
// and imports nothing: its rows are part of the period, and the days they leave out
// would be booked later, or never, from another answer. Before, it was imported as the
// whole period.
func TestFetchBookedRefusesAnAnswerWithANextLink(t *testing.T) {
	var link atomic.Value
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if l := link.Load().(string); l != "" {
			w.Header().Add("Link", l)
		}
		_, _ = io.WriteString(w, `{"data":[{"date":"2026-11-21","property-id":"1234","revenue":"0.5"}]}`)
	}))
	defer fake.Close()
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) { p.Reports = &app.ReportsSource{URL: fake.URL, BearerToken: "reports-token"} })
		e.clock.Set(t0.Add(24 * time.Hour))
		defer e.clock.Set(t0)
		for _, l := range []string{
			`<https://reports.example/v1?page=2>; rel="next"`,
			`<https://reports.example/v1?page=1>; rel=prev, <https://reports.example/v1?page=3&ids=1,2>; REL="last next"`,
		} {
			link.Store(l)
			_, _, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops")
			if err == nil || !strings.Contains(err.Error(), "more pages") {
				t.Fatalf("Link %s: %v, want the answer refused for its next page", l, err)
			}
		}
		view, err := e.app.TrueUpReport(t.Context(), "arcade", "2026-11-21", "2026-11-22")
		if err != nil {
			t.Fatal(err)
		}
		if b := view.Days[0].Booked; !b.IsZero() {
			t.Fatalf("2026-11-21 booked at %s after refused fetches, want nothing imported", b)
		}
		// A Link that names no next page (the first, a previous one) is no reason to refuse.
		link.Store(`<https://reports.example/v1?page=1>; rel="first prev"`)
		if got, _, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-21", false, "ops"); err != nil || got.Inserted != 1 {
			t.Fatalf("fetch with a Link to the first page: %+v %v", got, err)
		}
	})
}

// A fetch whose answer leaves out a day that has a booked figure on record (Gamezop
// revised it away: a day clawed back to nothing, which a report may skip) is refused and
// imports nothing (a day on record as 0 agrees with no row). Before, the other days were imported, the old figure stayed, and a
// true-up released buffer against revenue no longer reported.
func TestFetchBookedRefusesAnAnswerWithoutADayOnRecord(t *testing.T) {
	var revised atomic.Bool
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if revised.Load() {
			_, _ = io.WriteString(w, `{"data":[{"date":"2026-11-21","property-id":"1234","revenue":"0.6"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":[{"date":"2026-11-21","property-id":"1234","revenue":"0.5"},{"date":"2026-11-22","property-id":"1234","revenue":"0.000024"}]}`)
	}))
	defer fake.Close()
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		revised.Store(false)
		e := newEnv(t, d).withProperty(func(p *appProperty) { p.Reports = &app.ReportsSource{URL: fake.URL, BearerToken: "reports-token"} })
		e.clock.Set(t0.Add(24 * time.Hour))
		if got, _, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops"); err != nil || got.Inserted != 2 {
			t.Fatalf("first fetch: %+v, %v", got, err)
		}
		revised.Store(true)
		_, _, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops")
		if err == nil || !strings.Contains(err.Error(), "no row for 2026-11-22 (on record: 0.000024 USD)") {
			t.Fatalf("fetch of an answer without a day on record: %v, want it refused naming the day", err)
		}
		view, err := e.app.TrueUpReport(t.Context(), "arcade", "2026-11-21", "2026-11-22")
		if err != nil {
			t.Fatal(err)
		}
		if b := view.Days[0].Booked; !b.Equal(decimal.RequireFromString("0.5")) {
			t.Fatalf("2026-11-21 booked at %s after the refused fetch, want 0.5 (nothing imported)", b)
		}
		// Once finance records the day as gone, the fetch goes through.
		if _, err := e.app.ImportBooked(t.Context(), "arcade", []rewards.BookedDay{{Day: "2026-11-22", RevenueUSD: decimal.Zero}}, false, "ops"); err != nil {
			t.Fatal(err)
		}
		if got, days, err := e.app.FetchBooked(t.Context(), "arcade", "2026-11-21", "2026-11-22", false, "ops"); err != nil || got.Replaced != 1 || len(days) != 1 {
			t.Fatalf("the fetch once the day is recorded as 0: %+v %+v %v, want 2026-11-21 replaced", got, days, err)
		}
		e.clock.Set(t0)
	})
}
