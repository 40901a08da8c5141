package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for bulk fixtures
	"github.com/shopspring/decimal"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// nov is a UTC midnight in November 2026 (nov(0) is October 31).
func nov(day int) time.Time { return time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC).AddDate(0, 0, day) }

const evilUser = `=HYPERLINK("http://evil.example/?q=1","click")`

type reportEnv struct {
	*env
	clock *storetest.Clock
}

func newReportEnv(t *testing.T, d store.Dialect) *reportEnv {
	t.Helper()
	clock := storetest.NewClock(nov(1))
	db := storetest.Open(t, d, clock.Now)
	o := other()
	o.Rules = otherRules()
	a := app.New(db, app.Options{Properties: []app.Property{arcade(), o}, AdminToken: adminTok, IngestWorkers: 1})
	t.Cleanup(a.Close)
	return &reportEnv{env: &env{t: t, db: db, app: a, h: a.Handler()}, clock: clock}
}

// otherRules gives the "other" property (PTS, 2 decimal places) arcade's rules.
func otherRules() rewards.Rules {
	r := arcade().Rules
	r.Property, r.Currency, r.Scale = "other", "PTS", 2
	return r
}

func (e *reportEnv) ingest(property string, evs ...rewards.Event) {
	e.t.Helper()
	batch := make([]rewards.Inbound, len(evs))
	for i, ev := range evs {
		if ev.Session != nil && property == "arcade" {
			s := *ev.Session
			s.PropertyID = arcade().GamezopPropertyID // what Gamezop sends for this property
			ev.Session = &s
		}
		batch[i] = rewards.Inbound{Property: property, Event: ev, Raw: []byte(`{}`)}
	}
	res, err := e.db.Record(context.Background(), batch)
	if err != nil {
		e.t.Fatal(err)
	}
	e.drain()
	for _, r := range res {
		k, _, err := e.db.Event(context.Background(), r.EventID)
		if err != nil || k.Status != rewards.StatusApplied || r.Duplicate {
			e.t.Fatalf("ingest: %+v %+v %v", r, k, err)
		}
	}
}

func (e *reportEnv) settle(property string, scale int32) {
	e.t.Helper()
	if _, err := e.db.Settle(context.Background(), property, scale, ""); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reportEnv) redeem(property, user, amount string) int64 {
	e.t.Helper()
	key := "r-" + user + amount
	r, _, err := e.db.Redeem(context.Background(), rewards.RedeemRequest{Property: property, User: user, Amount: dec(amount),
		IdempotencyKey: key, RequestHash: key})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.ID
}

func (e *reportEnv) reverse(redemption int64) {
	e.t.Helper()
	key := fmt.Sprintf("rev-%d", redemption)
	if _, _, err := e.db.Reverse(context.Background(), rewards.ReverseRequest{RedemptionID: redemption, Reason: "chargeback",
		Actor: "finance", IdempotencyKey: key, RequestHash: key}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reportEnv) adjust(property, user, amount string, bucket rewards.Bucket) {
	e.t.Helper()
	key := "a-" + user + amount
	if _, _, err := e.db.Adjust(context.Background(), rewards.AdjustRequest{Property: property, User: user, Amount: dec(amount),
		Bucket: bucket, Reason: "support ticket", IdempotencyKey: key, RequestHash: key, Actor: "finance"}); err != nil {
		e.t.Fatal(err)
	}
}

func sppEvent(user, id, revenue string, secs int64) rewards.Event {
	return rewards.Event{Source: rewards.SourceGamezopSPP, Kind: rewards.KindSession, Type: "spp", DedupeKey: id, User: user,
		Session: &rewards.Session{SessionID: id, Country: "IN", RevenueUSD: dec(revenue), DurationSeconds: secs}}
}

func scoreEvent(user, play, value string) rewards.Event {
	return rewards.Event{Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, Type: "over", DedupeKey: user + play, User: user,
		Score: &rewards.Score{Game: "NyM_JGWcx", Value: dec(value), State: "over", PlayID: play}}
}

func achievementEvent(user, id string) rewards.Event {
	return rewards.Event{Source: rewards.SourceGamePush, Kind: rewards.KindAchievement, Type: "UnlockPlayerAchievement",
		DedupeKey: user + "|" + id, User: user, Achievement: &rewards.Achievement{ID: id}}
}

// goldenScenario is November 2026 for two properties, with every kind of entry and
// events exactly on the period's bounds; two redemptions are reversed in November, one
// of them made in October. Amounts (0.7 share, 0.2 buffer, 100000 per USD):
// 0.001 USD → 56 credited; 0.000012 → 0.672; 0.0001 → 5.6.
func goldenScenario(e *reportEnv) {
	e.clock.Set(nov(-11).Add(10 * time.Hour)) // Oct 20
	e.ingest("arcade", sppEvent("u-old", "s-old", "0.001", 60), sppEvent("u-zero", "s-zero", "0.001", 60))
	e.clock.Set(nov(-9))
	e.settle("arcade", 0)
	e.clock.Set(nov(-8))
	zero := e.redeem("arcade", "u-zero", "56") // no balance left, until its reversal in November

	e.clock.Set(nov(1)) // from, inclusive
	e.ingest("arcade", sppEvent("u-a", "s-a", "0.000012", 163), scoreEvent("u-a", "p1", "500"),
		achievementEvent(evilUser, "685"), sppEvent("-1", "s-m", "0.0001", 60), sppEvent("u-short", "s-short", "0.25", 3))
	e.ingest("other", sppEvent("@me", "s-o", "0.000012", 163))
	e.clock.Set(nov(3))
	e.settle("arcade", 0) // u-a 50 (0.672 carried), -1 5 (0.6), the evil user 100
	e.settle("other", 2)  // @me 0.67 (0.002)
	e.clock.Set(nov(4))
	ua := e.redeem("arcade", "u-a", "20")
	e.redeem("other", "@me", "0.5")
	e.redeem("arcade", "u-a", "7")
	e.clock.Set(nov(5))
	e.adjust("arcade", "u-a", "5", rewards.Available)
	e.adjust("arcade", "-1", "-2", rewards.Available)
	e.adjust("arcade", "+1", "3", rewards.Pending)
	e.clock.Set(nov(6))
	e.reverse(ua)   // u-a: redeemed 27, reversed 20
	e.reverse(zero) // u-zero: an October redemption reversed in November
	e.clock.Set(nov(31).Add(-time.Microsecond))
	e.ingest("arcade", achievementEvent("u-late", "685"))
	e.clock.Set(nov(31)) // to, exclusive
	e.ingest("arcade", sppEvent("u-a", "s-a2", "0.001", 60), sppEvent("u-dec", "s-dec", "0.001", 60))
	e.clock.Set(nov(40))
}

func (e *reportEnv) report(query string) answer {
	e.t.Helper()
	return e.do("GET", "/v1/admin/reports/payouts?"+query, "", "Authorization", "Bearer "+adminTok)
}

// goldenFile compares got with testdata/name. With -update the SQLite run rewrites the file
// and the Postgres run is still compared with it: one file for both databases.
func goldenFile(t *testing.T, d store.Dialect, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden && d == store.SQLite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestPayoutReportGolden pins the CSV and JSON of the golden scenario byte for byte; the
// same files must come out of both databases.
func TestPayoutReportGolden(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newReportEnv(t, d)
		goldenScenario(e)

		c := e.report("from=2026-11-01&to=2026-12-01")
		if c.Code != 200 || !strings.HasPrefix(c.Header.Get("Content-Type"), "text/csv") ||
			c.Header.Get("Content-Disposition") != `attachment; filename="payouts-2026-11-01-2026-12-01.csv"` {
			t.Fatalf("csv: %d %v\n%s", c.Code, c.Header, c.Raw)
		}
		goldenFile(t, d, "payouts.golden.csv", []byte(c.Raw))
		if again := e.report("from=2026-11-01T00:00:00Z&to=2026-12-01&format=csv"); again.Raw != c.Raw {
			t.Fatalf("format=csv and an RFC 3339 from give another report:\n%s", again.Raw)
		}

		j := e.report("from=2026-11-01&to=2026-12-01&format=json")
		if j.Code != 200 || !strings.HasPrefix(j.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("json: %d %v\n%s", j.Code, j.Header, j.Raw)
		}
		goldenFile(t, d, "payouts.golden.json", []byte(j.Raw))

		o := e.report("from=2026-11-01&to=2026-12-01&property=other")
		if lines := strings.Split(strings.TrimSpace(o.Raw), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "other,'@me,PTS,") {
			t.Fatalf("report of other:\n%s", o.Raw)
		}
	})
}

type reportJSON struct {
	From   string                       `json:"from"`
	To     string                       `json:"to"`
	Rows   []map[string]json.RawMessage `json:"rows"`
	Totals map[string]json.RawMessage   `json:"totals"`
	// ByCurrency is totals_by_currency, by currency.
	ByCurrency []map[string]json.RawMessage `json:"totals_by_currency"`
	Summary    []struct {
		Property        string                     `json:"property"`
		Currency        string                     `json:"currency"`
		Sessions        int64                      `json:"sessions"`
		Gross           string                     `json:"gross"`
		CreditedToUsers string                     `json:"credited_to_users"`
		Withheld        string                     `json:"withheld"`
		CappedExcess    string                     `json:"capped_excess"`
		Ledger          map[string]json.RawMessage `json:"ledger"`
	} `json:"summary"`
}

func jsonString(t *testing.T, m map[string]json.RawMessage, k string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(m[k], &s); err != nil {
		t.Fatalf("%s = %s: %v", k, m[k], err)
	}
	return s
}

func jsonDecimal(t *testing.T, m map[string]json.RawMessage, k string) decimal.Decimal {
	t.Helper()
	var s string
	if err := json.Unmarshal(m[k], &s); err != nil {
		t.Fatalf("%s = %s: %v", k, m[k], err)
	}
	return dec(s)
}

var amountColumns = []string{"opening_available", "credited_revenue", "credited_targets", "credited_achievements",
	"adjustments", "settled", "redeemed", "closing_available", "closing_pending", "reversed"}

// TestPayoutReportJSONAddsUp decodes the JSON report and checks it against itself: each
// row's identity, the totals against the rows, the rows against the ledger's totals in
// the summary, and the summary's revenue split; and the CSV has the same rows.
func TestPayoutReportJSONAddsUp(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newReportEnv(t, d)
		goldenScenario(e)
		raw := e.report("from=2026-11-01&to=2026-12-01&format=json").Raw
		var r reportJSON
		dc := json.NewDecoder(strings.NewReader(raw))
		dc.UseNumber()
		if err := dc.Decode(&r); err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		if r.From != "2026-11-01T00:00:00Z" || r.To != "2026-12-01T00:00:00Z" || len(r.Rows) != 9 {
			t.Fatalf("from %s to %s, %d rows", r.From, r.To, len(r.Rows))
		}
		// Sums per currency: the report holds COIN (arcade) and PTS (other), which add up
		// to nothing together.
		sums := map[string]map[string]decimal.Decimal{}
		ledger := map[string]map[string]decimal.Decimal{}
		usd := decimal.Zero
		for _, row := range r.Rows {
			open, closing := jsonDecimal(t, row, "opening_available"), jsonDecimal(t, row, "closing_available")
			moved := jsonDecimal(t, row, "settled").Sub(jsonDecimal(t, row, "redeemed")).Add(jsonDecimal(t, row, "reversed")).
				Add(jsonDecimal(t, row, "adjustments"))
			if !closing.Equal(open.Add(moved)) {
				t.Errorf("row does not reconcile: %v", row)
			}
			cur := jsonString(t, row, "currency")
			if sums[cur] == nil {
				sums[cur] = map[string]decimal.Decimal{}
			}
			for _, c := range amountColumns {
				sums[cur][c] = sums[cur][c].Add(jsonDecimal(t, row, c))
			}
			usd = usd.Add(jsonDecimal(t, row, "estimated_revenue_usd"))
		}
		for _, s := range r.Summary {
			if ledger[s.Currency] == nil {
				ledger[s.Currency] = map[string]decimal.Decimal{}
			}
			for _, c := range amountColumns {
				ledger[s.Currency][c] = ledger[s.Currency][c].Add(jsonDecimal(t, s.Ledger, c))
			}
			if !dec(s.Gross).Equal(dec(s.CreditedToUsers).Add(dec(s.Withheld)).Add(dec(s.CappedExcess))) {
				t.Errorf("%s: gross %s ≠ credited %s + withheld %s + capped %s", s.Property, s.Gross, s.CreditedToUsers, s.Withheld, s.CappedExcess)
			}
		}
		if len(r.ByCurrency) != 2 || jsonString(t, r.ByCurrency[0], "currency") != "COIN" || jsonString(t, r.ByCurrency[1], "currency") != "PTS" {
			t.Fatalf("totals_by_currency: %v", r.ByCurrency)
		}
		rows := int64(0)
		for _, bc := range r.ByCurrency {
			cur := jsonString(t, bc, "currency")
			for _, c := range amountColumns {
				if !jsonDecimal(t, bc, c).Equal(sums[cur][c]) || !sums[cur][c].Equal(ledger[cur][c]) {
					t.Errorf("%s %s: totals %s, rows add up to %s, ledger %s", cur, c, jsonDecimal(t, bc, c), sums[cur][c], ledger[cur][c])
				}
			}
			n, _ := strconv.ParseInt(string(bc["rows"]), 10, 64)
			rows += n
		}
		if rows != 9 || !jsonDecimal(t, r.ByCurrency[0], "redeemed").Equal(dec("27")) || !jsonDecimal(t, r.ByCurrency[1], "redeemed").Equal(dec("0.5")) {
			t.Errorf("totals by currency: %v", r.ByCurrency)
		}
		// Across currencies only what adds up: rows, sessions and USD; the amounts are null.
		if string(r.Totals["rows"]) != "9" || string(r.Totals["sessions"]) != "4" || !jsonDecimal(t, r.Totals, "estimated_revenue_usd").Equal(usd) {
			t.Errorf("totals: %v", r.Totals)
		}
		for _, c := range amountColumns {
			if string(r.Totals[c]) != "null" {
				t.Errorf("totals across COIN and PTS: %s = %s, want null", c, r.Totals[c])
			}
		}
		// `tally export`'s summary line totals each currency on its own too.
		pr, err := e.app.ParsePayoutRequest("2026-11-01", "2026-12-01", "", "csv", "")
		if err != nil {
			t.Fatal(err)
		}
		sum, err := e.app.WritePayoutReport(context.Background(), io.Discard, pr, nil)
		if err != nil {
			t.Fatal(err)
		}
		line := app.FormatPayoutTotals(sum)
		coin, pts, ok := strings.Cut(line, "; ")
		if !ok || !strings.HasPrefix(coin, "COIN: rows=8 ") || !strings.Contains(coin, " redeemed=27 ") ||
			!strings.HasPrefix(pts, "PTS: rows=1 ") || !strings.Contains(pts, " redeemed=0.5 ") {
			t.Errorf("summary line: %s", line)
		}
		// A property no longer configured (its currency unknown) is totalled on its own,
		// named, never added to another: here "other", after its config was removed.
		gone := app.New(e.db, app.Options{Properties: []app.Property{arcade()}, AdminToken: adminTok, IngestWorkers: 1})
		defer gone.Close()
		ge := &env{t: t, db: e.db, app: gone, h: gone.Handler()} // do() checks the answer against openapi.yaml
		var without reportJSON
		if err := json.Unmarshal([]byte(ge.do("GET", "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01&format=json", "",
			"Authorization", "Bearer "+adminTok).Raw), &without); err != nil {
			t.Fatal(err)
		}
		if len(without.ByCurrency) != 2 || jsonString(t, without.ByCurrency[1], "currency") != "COIN" ||
			jsonString(t, without.ByCurrency[0], "currency") != "" || jsonString(t, without.ByCurrency[0], "property") != "other" ||
			string(without.ByCurrency[0]["redeemed"]) != `"0.5"` || string(without.Totals["redeemed"]) != "null" {
			t.Errorf("totals with a property no longer configured: %v, by currency %v", without.Totals, without.ByCurrency)
		}
		pr2, err := gone.ParsePayoutRequest("2026-11-01", "2026-12-01", "", "csv", "")
		if err != nil {
			t.Fatal(err)
		}
		sum2, err := gone.WritePayoutReport(context.Background(), io.Discard, pr2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if line := app.FormatPayoutTotals(sum2); !strings.HasPrefix(line, "other (currency unknown): rows=1 ") || !strings.Contains(line, "; COIN: rows=8 ") {
			t.Errorf("summary line with a property no longer configured: %s", line)
		}
		// One property's report is in one currency: its totals are the amounts'.
		var one reportJSON
		if err := json.Unmarshal([]byte(e.report("from=2026-11-01&to=2026-12-01&format=json&property=arcade").Raw), &one); err != nil {
			t.Fatal(err)
		}
		if !jsonDecimal(t, one.Totals, "redeemed").Equal(dec("27")) || len(one.ByCurrency) != 1 || string(one.ByCurrency[0]["redeemed"]) != `"27"` {
			t.Errorf("arcade's totals: %v by currency %v", one.Totals, one.ByCurrency)
		}

		// An empty period is still a whole document.
		empty := e.report("from=2020-01-01&to=2020-02-01&format=json").Raw
		var none reportJSON
		if err := json.Unmarshal([]byte(empty), &none); err != nil || len(none.Rows) != 0 || string(none.Totals["rows"]) != "0" ||
			len(none.Summary) != 0 {
			t.Fatalf("empty report: %v\n%s", err, empty)
		}

		// The CSV has the same rows, cell for cell (text cells escaped).
		recs, err := csv.NewReader(strings.NewReader(e.report("from=2026-11-01&to=2026-12-01").Raw)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(r.Rows)+1 {
			t.Fatalf("csv has %d records for %d json rows", len(recs), len(r.Rows))
		}
		for i, row := range r.Rows {
			for j, col := range recs[0] {
				var v any
				_ = json.Unmarshal(row[col], &v)
				want := fmt.Sprint(v)
				if j < 3 && strings.ContainsAny(want[:1], "=+-@") {
					want = "'" + want
				}
				if recs[i+1][j] != want {
					t.Errorf("row %d %s: csv %q, json %q", i, col, recs[i+1][j], want)
				}
			}
		}
	})
}

// TestPayoutReportEscapesFormulas: text cells that a spreadsheet would evaluate start
// with a quote in the CSV; amounts, even negative, are left alone; JSON is not escaped.
func TestPayoutReportEscapesFormulas(t *testing.T) {
	e := newReportEnv(t, store.SQLite)
	goldenScenario(e)
	recs, err := csv.NewReader(strings.NewReader(e.report("from=2026-11-01&to=2026-12-01").Raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	users := map[string][]string{}
	for _, r := range recs[1:] {
		users[r[1]] = r
	}
	for _, u := range []string{"'" + evilUser, "'-1", "'+1", "'@me", "u-a"} {
		if users[u] == nil {
			t.Errorf("no row for user cell %q; users: %v", u, userCells(users))
		}
	}
	if adj := users["'-1"][7]; adj != "-2" {
		t.Errorf("a negative amount is %q, want -2 unescaped", adj)
	}
	j := e.report("from=2026-11-01&to=2026-12-01&format=json").Raw
	if !strings.Contains(j, `"user":"=HYPERLINK(\"http://evil.example/?q=1\",\"click\")"`) || !strings.Contains(j, `"user":"-1"`) {
		t.Errorf("JSON user ids are not the raw ids:\n%s", j)
	}
}

func userCells(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// An instance streams two payout reports at once: each holds a database connection for as
// long as its client reads, and eight stalled downloads took the whole SQLite pool, so
// every receiver and redemption answered 503 while /readyz said ready. A report asked
// beyond the limit is a 503 with Retry-After; once a slot is free, it streams.
func TestPayoutReportsStreamTwoAtOnce(t *testing.T) {
	e := newReportEnv(t, store.SQLite)
	release := app.HoldReportStreams(e.app)
	busy := e.do("GET", "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01", "", "Authorization", "Bearer "+adminTok)
	release()
	if busy.Code != 503 || busy.Header.Get("Retry-After") == "" || !strings.Contains(busy.Raw, "2 payout reports are being streamed") {
		t.Fatalf("a report while two stream: %d %v %s", busy.Code, busy.Header, busy.Raw)
	}
	if ok := e.do("GET", "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01", "", "Authorization", "Bearer "+adminTok); ok.Code != 200 {
		t.Fatalf("a report once they have finished: %d %s", ok.Code, ok.Raw)
	}
}

func TestPayoutReportBadRequests(t *testing.T) {
	e := newReportEnv(t, store.SQLite)
	cases := []struct{ query, field string }{
		{"to=2026-12-01", "from"},
		{"from=2026-11-01", "to"},
		{"from=yesterday&to=2026-12-01", "from"},
		{"from=2026-11-01&to=2026-13-01", "to"},
		{"from=2026-12-01&to=2026-12-01", "to"},
		{"from=2026-12-01&to=2026-11-01", "to"},
		{"from=2026-11-01&to=2026-12-01&property=nope", "property"},
		{"from=2026-11-01&to=2026-12-01&format=xml", "format"},
		{"from=2026-11-01&to=2026-12-01&bom=maybe", "bom"},
		{"from=2026-11-01&to=2026-12-01&format=json&bom=true", "bom"},
		// "since the beginning": the store reads the zero time as no bound, and answered
		// a 400 naming nothing.
		{"from=0001-01-01&to=2026-12-01", "from"},
		{"from=1969-12-31T23:59:59Z&to=2026-12-01", "from"},
		// Rounded up to the microsecond it is the year 10000, before every recorded time
		// as SQLite compares them: the report was empty, with a 200.
		{"from=2026-11-01&to=9999-12-31T23:59:59.9999995Z", "to"},
		{"from=2026-11-01&to=9999-12-31T23:59:59-01:00", "to"},
		// One value each: the first of two was taken silently.
		{"from=2026-10-01&from=2026-12-01&to=2026-11-01", "from"},
		{"from=2026-10-01&to=2026-11-01&format=json&format=csv", "format"},
	}
	for _, c := range cases {
		a := e.report(c.query)
		if a.Code != 400 || problemField(a) != c.field || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/problem+json") ||
			a.Header.Get("Content-Disposition") != "" {
			t.Errorf("%s: %d %s %v, want 400 naming %s", c.query, a.Code, a.Raw, a.Header, c.field)
		}
	}
	// A date-shaped day the calendar does not have is called that, not "must be a date".
	if a := e.report("from=2026-02-30&to=2026-03-01"); a.Code != 400 || problemField(a) != "from" ||
		!strings.Contains(a.Raw, "is not a date of the calendar (day out of range)") {
		t.Errorf("from=2026-02-30: %d %s", a.Code, a.Raw)
	}
	// Every bad parameter is named, not only the first.
	a := e.report("from=x&to=y&format=pdf&bom=maybe&property=nope")
	var p struct{ Errors []struct{ Field string } }
	if err := json.Unmarshal([]byte(a.Raw), &p); err != nil || a.Code != 400 {
		t.Fatalf("%d %s", a.Code, a.Raw)
	}
	var fields []string
	for _, f := range p.Errors {
		fields = append(fields, f.Field)
	}
	if strings.Join(fields, ",") != "from,to,property,format,bom" {
		t.Errorf("fields named %v, want from, to, property, format and bom: %s", fields, a.Raw)
	}
	if a := e.report("from=1970-01-01&to=2026-12-01&format=json"); a.Code != 200 {
		t.Errorf("from 1970-01-01: %d %s", a.Code, a.Raw)
	}
	if a := e.do("GET", "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01", ""); a.Code != 401 {
		t.Errorf("without the admin token: %d", a.Code)
	}
	if a := e.do("GET", "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01", "", "Authorization", "Bearer "+apiKey); a.Code != 401 {
		t.Errorf("with a publisher key: %d", a.Code)
	}
	// An offset's "+" sent unencoded arrives as a space and is still understood.
	if a := e.report("from=2026-11-01T05:30:00+05:30&to=2026-12-01&format=json"); a.Code != 200 ||
		!strings.HasPrefix(a.Raw, `{"from":"2026-11-01T00:00:00Z"`) {
		t.Errorf("offset time: %d %s", a.Code, a.Raw)
	}
}

// failingReports streams rows made up on the spot, then fails.
type failingReports struct {
	app.Store
	rows int
}

var errMidStream = errors.New("connection to the database lost")

func (f failingReports) PayoutRows(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	for i := 0; i < f.rows; i++ {
		if err := fn(rewards.PayoutRow{Property: "arcade", User: fmt.Sprintf("user-%06d", i)}); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %w", rewards.ErrUnavailable, errMidStream)
}

func (f failingReports) PayoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) ([]rewards.PropertySummary, error) {
	return nil, f.PayoutRows(ctx, q, fn)
}

// TestPayoutReportFailure: a failure before anything is sent is a problem answer; one
// after the body has started cuts the connection, so the client cannot take the part it
// got for the whole report.
func TestPayoutReportFailure(t *testing.T) {
	db := storetest.Open(t, store.SQLite, nil)
	for _, format := range []string{"csv", "json", "xlsx"} {
		for _, rows := range []int{3, 50000} {
			a := app.New(failingReports{Store: db, rows: rows}, app.Options{Properties: []app.Property{arcade()}, AdminToken: adminTok})
			srv := httptest.NewServer(a.Handler())
			req, _ := http.NewRequest("GET", srv.URL+"/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01&format="+format, nil)
			req.Header.Set("Authorization", "Bearer "+adminTok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case rows == 3 || format == "xlsx": // still in the buffer (an XLSX is written whole at the end): a problem
				if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") ||
					resp.Header.Get("Content-Disposition") != "" || resp.Header.Get("Cache-Control") != "no-store" || readErr != nil {
					t.Errorf("%s early failure: %d %v %v %s", format, resp.StatusCode, resp.Header, readErr, body)
				}
			default:
				if resp.StatusCode != 200 || readErr == nil {
					t.Errorf("%s failure after %d bytes: status %d, read error %v: the client got a clean end of body", format, len(body), resp.StatusCode, readErr)
				}
			}
			srv.Close()
			a.Close()
		}
	}
}

// TestWritePayoutReportProgress: the writer reports progress and returns the totals.
func TestWritePayoutReportProgress(t *testing.T) {
	db := storetest.Open(t, store.SQLite, nil)
	a := app.New(failingReports{Store: db, rows: 3000}, app.Options{Properties: []app.Property{arcade()}})
	defer a.Close()
	r, err := a.ParsePayoutRequest("2026-11-01", "2026-12-01", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	var calls []int64
	totals, err := a.WritePayoutReport(context.Background(), io.Discard, r, func(n int64) { calls = append(calls, n) })
	if !errors.Is(err, errMidStream) || totals.Rows != 3000 {
		t.Fatalf("err %v, rows %d", err, totals.Rows)
	}
	if len(calls) != 2 || calls[0] != 1024 || calls[1] != 2048 {
		t.Fatalf("progress calls %v", calls)
	}
}

// BenchmarkPayoutExport measures the export end to end (store, rendering, buffered
// output; for XLSX the zipping too) on Postgres, in rows per second. It runs at the GC
// target `tally serve` and `tally export` set (400 %, unless GOGC is set), as the
// export runs in production.
func BenchmarkPayoutExport(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	const users = 100000
	u := storetest.URL(b, store.Postgres)
	db := storetest.OpenURL(b, u, nil)
	populatePayouts(b, u, users)
	a := app.New(db, app.Options{Properties: []app.Property{arcade()}})
	defer a.Close()
	for _, format := range []string{"csv", "json", "xlsx"} {
		b.Run(format, func(b *testing.B) {
			r, err := a.ParsePayoutRequest("2026-11-01", "2026-12-01", "", format, "")
			if err != nil {
				b.Fatal(err)
			}
			var rows int64
			for b.Loop() {
				totals, err := a.WritePayoutReport(context.Background(), io.Discard, r, nil)
				if err != nil {
					b.Fatal(err)
				}
				if totals.Rows != users {
					b.Fatalf("%d rows, want %d", totals.Rows, users)
				}
				rows += totals.Rows
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// populatePayouts gives n users of arcade a credit in November 2026 and, every third, a
// settlement in October and a session in November, with set-based SQL.
func populatePayouts(b *testing.B, url string, n int) {
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer sqlDB.Close()
	series := fmt.Sprintf(`WITH n(i) AS (SELECT generate_series(1, %d)) `, n)
	for _, q := range []string{
		series + `INSERT INTO journal (property, user_id, kind, rule, created_at)
			SELECT 'arcade', 'user-' || lpad(i::text, 7, '0'), 'revenue', 'bulk', '2026-11-02T10:00:00Z' FROM n`,
		series + `INSERT INTO journal (property, user_id, kind, rule, created_at)
			SELECT 'arcade', 'user-' || lpad(i::text, 7, '0'), 'settlement', 'bulk', '2026-10-15T10:00:00Z' FROM n WHERE i % 3 = 0`,
		`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			SELECT id, property, user_id, '', 'pending', kind, (id || '.125')::numeric, created_at FROM journal WHERE kind = 'revenue'
			UNION ALL SELECT id, property, user_id, '@revenue', '', kind, -(id || '.125')::numeric, created_at FROM journal WHERE kind = 'revenue'
			UNION ALL SELECT id, property, user_id, '', 'pending', kind, -7, created_at FROM journal WHERE kind = 'settlement'
			UNION ALL SELECT id, property, user_id, '', 'available', kind, 7, created_at FROM journal WHERE kind = 'settlement'`,
		series + `INSERT INTO inbox (property, source, dedupe_key, user_id, kind, raw_body, event, received_at, status)
			SELECT 'arcade', 'gamezop_spp', 'bulk-' || i, 'user-' || lpad(i::text, 7, '0'), 'session', '', '{}', '2026-11-02T10:00:00Z', 'applied'
			FROM n WHERE i % 3 = 0`,
		`INSERT INTO sessions (inbox_id, property, user_id, session_id, duration_seconds, revenue_usd, gross, withheld, credited, capped_excess, received_at)
			SELECT id, property, user_id, dedupe_key, 60, 0.0001, 7, 1.4, 5.6, 0, received_at FROM inbox`,
		// What autovacuum does soon after such a load (migration 00011): the visibility map
		// lets the report's stream read entries_user alone.
		`VACUUM ANALYZE`,
	} {
		if _, err := sqlDB.Exec(q); err != nil {
			b.Fatalf("populate: %v\n%s", err, q)
		}
	}
}
