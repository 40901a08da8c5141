package app_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/app"
	"tally/postbacks"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

const (
	sppToken  = "spp-token-123"
	scoresKey = "scores-key-123"
	gpSecret  = "Be$T_Pr0jeCt"
	tsSecret  = "ts-secret-123"
	apiKey    = "arcade-key-123"
	otherKey  = "other-key-123"
	adminTok  = "admin-token-123"
	aliceTok  = "alice-token-123" // a named admin: "alice"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func arcade() app.Property {
	return app.Property{
		ID: "arcade", GamezopPropertyID: "1234", Currency: "COIN", Scale: 0, APIKeys: []string{apiKey},
		Sources: map[rewards.Source]postbacks.Credentials{
			rewards.SourceGamezopSPP:    {BearerToken: sppToken},
			rewards.SourceGamezopScores: {APIKey: scoresKey},
			rewards.SourceGamePush:      {Secret: gpSecret},
			rewards.SourceTrackScore:    {Secret: tsSecret},
		},
		Rules: rewards.Rules{Property: "arcade", Currency: "COIN", Scale: 0,
			Revenue: &rewards.RevenueRule{Version: "r1", UnitsPerUSD: dec("100000"), Share: dec("0.7"), Buffer: dec("0.2"),
				Hold: 24 * time.Hour, MinSessionSeconds: 10, Countries: map[string]decimal.Decimal{"*": dec("1")},
				PerSessionCap: dec("500"), PerUserPerDayCap: dec("10000")},
			Targets: []rewards.ScoreTarget{{ID: "snake-500", Version: "t1", Game: "NyM_JGWcx", MinScore: dec("500"),
				Direction: rewards.Higher, Reward: dec("50"), Per: rewards.PerOnce, States: []string{"over"}}},
			Achievements: []rewards.AchievementRule{
				{Source: rewards.SourceGamePush, ID: "685", Version: "a1", Reward: dec("100")},
				{Source: rewards.SourceTrackScore, ID: "first-win", Version: "a2", Reward: dec("25")},
			}},
	}
}

// other is a second property with only the SPP source, for 404 and cross-key tests.
func other() app.Property {
	return app.Property{ID: "other", Currency: "PTS", Scale: 2, APIKeys: []string{otherKey},
		Sources: map[rewards.Source]postbacks.Credentials{rewards.SourceGamezopSPP: {}},
		Rules:   rewards.Rules{Property: "other", Currency: "PTS", Scale: 2}}
}

type env struct {
	t     *testing.T
	db    *store.DB
	app   *app.App
	h     http.Handler
	clock *storetest.Clock // the store's clock; move it only while no request is in flight
}

func newEnv(t *testing.T, d store.Dialect) *env {
	t.Helper()
	clock := storetest.NewClock(t0)
	db := storetest.Open(t, d, clock.Now)
	a := app.New(db, app.Options{Properties: []app.Property{arcade(), other()}, AdminToken: adminTok, Admins: []app.Admin{{Name: "alice", Token: aliceTok}}, IngestWorkers: 2})
	t.Cleanup(a.Close)
	return &env{t: t, db: db, app: a, h: a.Handler(), clock: clock}
}

type appProperty = app.Property

// withProperty is the same database served by an app whose arcade config fn changed:
// what an operator gets after fixing the config and restarting.
func (e *env) withProperty(fn func(*appProperty)) *env {
	p := arcade()
	fn(&p)
	a := app.New(e.db, app.Options{Properties: []app.Property{p, other()}, AdminToken: adminTok, Admins: []app.Admin{{Name: "alice", Token: aliceTok}}, IngestWorkers: 2})
	e.t.Cleanup(a.Close)
	return &env{t: e.t, db: e.db, app: a, h: a.Handler(), clock: e.clock}
}

type answer struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (e *env) do(method, path string, body string, hdr ...string) answer {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1]) // a header named twice is sent twice
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	e.checkContract(req, rec) // every answer is one app/openapi.yaml allows
	a := answer{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &a.Body)
	if strings.HasPrefix(path, "/v1/hooks/") && a.Code == http.StatusOK {
		// What `tally serve`'s applier does shortly after: the effect of a postback is
		// visible to the next request of the test.
		e.drain()
	}
	return a
}

// drain applies every recorded event, as the applier does.
func (e *env) drain() {
	e.t.Helper()
	if _, err := e.app.Drain(context.Background()); err != nil {
		e.t.Fatalf("applier: %v", err)
	}
}

// event reads one inbox event through the admin API.
func (e *env) event(id any) answer {
	e.t.Helper()
	return e.do("GET", "/v1/admin/events/"+fmt.Sprint(id), "", "Authorization", "Bearer "+adminTok)
}

const sppBody = `{"user-id":"sub1","session-id":"b48a8368-a369-49a4-b427-2d5891ef3763","country":"IN","count-of-ads-viewed":1,"your-estimated-revenue":"0.000012","session-duration":163,"property-id":"1234"}`

const scoreBody = `{"gameCode":"NyM_JGWcx","sessionId":"s1","gamePlayId":"p1","timestamp":1732269000,"score":500,"leaderboardId":"lb","subId":"sub1","country":"IN","duration":61000,"state":"over"}`

const gpJSON = `{"event":"GivePlayerReward","player":{"id":1820283,"name":"","avatar":"","projectId":4,"credentials":"","platformType":"NONE","active":true,"removed":false,"test":false,"modifiedAt":"2024-04-26T11:34:23.415923998Z"},"result":{"__typename":"PlayerReward","countAccepted":0,"countTotal":1,"rewardId":685},"time":"2024-04-26T11:34:23.415923998Z"}`

const tsBody = `{"id":"wh_1","type":"achievement.unlocked","created":"2025-06-09T10:30:00Z","data":{"participant_id":"pt_5","achievement_id":"first-win"}}`

func gamepushBody(payload, secret string) string {
	b64 := base64.StdEncoding.EncodeToString([]byte(payload))
	sum := sha256.Sum256([]byte(b64 + "_" + secret))
	return b64 + "." + hex.EncodeToString(sum[:])
}

func trackscoreSig(body, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func problemField(a answer) string {
	errs, _ := a.Body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	f, _ := errs[0].(map[string]any)["field"].(string)
	return f
}

func TestReceiversAcceptOnceThenDuplicate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		gp := gamepushBody(gpJSON, gpSecret)
		cases := []struct {
			name, path, body string
			hdr              []string
		}{
			{"spp", "/v1/hooks/arcade/gamezop/spp", sppBody, []string{"Authorization", "Bearer " + sppToken}},
			{"scores", "/v1/hooks/arcade/gamezop/scores", scoreBody, []string{"api-key", scoresKey}},
			{"gamepush", "/v1/hooks/arcade/gamepush", gp, nil},
			{"trackscore", "/v1/hooks/arcade/trackscore", tsBody, []string{"X-TrackScore-Signature", trackscoreSig(tsBody, tsSecret)}},
		}
		for _, c := range cases {
			first := e.do("POST", c.path, c.body, c.hdr...)
			if first.Code != 200 || first.Body["status"] != "accepted" || first.Body["event_id"] == "" {
				t.Fatalf("%s first delivery: %d %s", c.name, first.Code, first.Raw)
			}
			if first.Header.Get("Idempotent-Replay") != "" {
				t.Fatalf("%s first delivery carries Idempotent-Replay", c.name)
			}
			again := e.do("POST", c.path, c.body, c.hdr...)
			if again.Code != 200 || again.Body["status"] != "duplicate" || again.Header.Get("Idempotent-Replay") != "true" ||
				again.Body["event_id"] != first.Body["event_id"] {
				t.Fatalf("%s redelivery: %d %v %s", c.name, again.Code, again.Header, again.Raw)
			}
		}
		// The credits a person computes from DESIGN.md: 0.672 revenue + 50 target for sub1,
		// 100 for GamePush player 1820283, 25 for TrackScore participant pt_5.
		for user, want := range map[string]string{"sub1": "50.672", "1820283": "100", "pt_5": "25"} {
			b := e.do("GET", "/v1/properties/arcade/users/"+user+"/balance", "", "Authorization", "Bearer "+apiKey)
			if b.Code != 200 || b.Body["pending"] != want || b.Body["available"] != "0" || b.Body["currency"] != "COIN" {
				t.Fatalf("balance of %s: %d %s, want pending %s", user, b.Code, b.Raw, want)
			}
		}
	})
}

func TestReceiverErrors(t *testing.T) {
	e := newEnv(t, store.SQLite)
	spp := "/v1/hooks/arcade/gamezop/spp"
	auth := []string{"Authorization", "Bearer " + sppToken}
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		code   int
		field  string
	}{
		{"missing bearer", "POST", spp, sppBody, nil, 401, ""},
		{"wrong bearer", "POST", spp, sppBody, []string{"Authorization", "Bearer nope"}, 401, ""},
		{"unauthenticated junk is 401 not 400", "POST", spp, "junk", nil, 401, ""},
		{"bad revenue names the field", "POST", spp, strings.Replace(sppBody, `"0.000012"`, `"-1"`, 1), auth, 400, "your-estimated-revenue"},
		{"trailing bytes", "POST", spp, sppBody + "{}", auth, 400, "body"},
		{"duplicate key", "POST", spp, strings.Replace(sppBody, `{"user-id":"sub1"`, `{"user-id":"sub1","user-id":"sub2"`, 1), auth, 400, "body"},
		{"unknown property", "POST", "/v1/hooks/nope/gamezop/spp", sppBody, auth, 404, ""},
		{"source not configured", "POST", "/v1/hooks/other/gamepush", "x.y", nil, 404, ""},
		{"gamepush bad signature", "POST", "/v1/hooks/arcade/gamepush", gamepushBody(gpJSON, "wrong"), nil, 401, ""},
		{"trackscore signature over other bytes", "POST", "/v1/hooks/arcade/trackscore", tsBody + " ", []string{"X-TrackScore-Signature", trackscoreSig(tsBody, tsSecret)}, 401, ""},
		{"scores wrong api-key", "POST", "/v1/hooks/arcade/gamezop/scores", scoreBody, []string{"api-key", "nope"}, 401, ""},
		{"body over 64 KiB", "POST", spp, `{"user-id":"` + strings.Repeat("a", app.MaxBodyBytes) + `"}`, auth, 413, ""},
		{"GET on a receiver", "GET", spp, "", nil, 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.do(c.method, c.path, c.body, c.hdr...)
			if a.Code != c.code {
				t.Fatalf("status %d, want %d: %s", a.Code, c.code, a.Raw)
			}
			if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			if int(a.Body["status"].(float64)) != c.code || a.Body["title"] == "" || a.Body["type"] == "" {
				t.Fatalf("problem document incomplete: %s", a.Raw)
			}
			if c.field != "" && problemField(a) != c.field {
				t.Fatalf("problem names field %q, want %q: %s", problemField(a), c.field, a.Raw)
			}
		})
	}
	// Exactly 64 KiB is still read (and then judged on its content, not its size).
	exact := `{"user-id":"` + strings.Repeat("a", app.MaxBodyBytes-len(`{"user-id":""}`)) + `"}`
	if a := e.do("POST", spp, exact, auth...); a.Code != 400 {
		t.Fatalf("a 64 KiB body: %d, want 400 (invalid, not too large): %s", a.Code, a.Raw)
	}
}

func TestPropertyIDMismatchIsQuarantinedNotDropped(t *testing.T) {
	e := newEnv(t, store.SQLite)
	body := strings.Replace(sppBody, `"property-id":"1234"`, `"property-id":"9999"`, 1)
	a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
	if a.Code != 200 || a.Body["status"] != "accepted" {
		t.Fatalf("%d %s", a.Code, a.Raw)
	}
	if ev := e.event(a.Body["event_id"]); ev.Body["status"] != "quarantined" || !strings.Contains(ev.Raw, "does not match gamezop_property_id") {
		t.Fatalf("event: %s", ev.Raw)
	}
	b := e.do("GET", "/v1/properties/arcade/users/sub1/balance", "", "Authorization", "Bearer "+apiKey)
	if b.Body["pending"] != "0" {
		t.Fatalf("quarantined event credited: %s", b.Raw)
	}
}

// A signed GamePush event whose reward id is not where Tally looks is kept quarantined
// (200, recorded once), never refused: nothing authenticated is dropped.
func TestUnmappedSignedEventIsQuarantined(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		body := gamepushBody(strings.Replace(gpJSON, `"rewardId":685`, `"rewardKey":"x"`, 1), gpSecret)
		a := e.do("POST", "/v1/hooks/arcade/gamepush", body)
		if a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("%d %s", a.Code, a.Raw)
		}
		if ev := e.event(a.Body["event_id"]); ev.Body["status"] != "quarantined" || !strings.Contains(ev.Body["reason"].(string), "result.rewardId") {
			t.Fatalf("event: %s", ev.Raw)
		}
		again := e.do("POST", "/v1/hooks/arcade/gamepush", body)
		if again.Body["status"] != "duplicate" || again.Body["event_id"] != a.Body["event_id"] {
			t.Fatalf("redelivery: %s", again.Raw)
		}
		kept, err := e.db.Events(context.Background(), rewards.EventFilter{Status: rewards.StatusQuarantined, Property: "arcade"})
		if err != nil || len(kept) != 1 || kept[0].Event.Type != "GivePlayerReward" {
			t.Fatalf("kept = %+v, %v", kept, err)
		}
	})
}

// A signed score beyond the scores Tally ranks (an idle game's 1e+21) is recorded and
// kept quarantined with the field named, not refused with a 400 after which the sender
// drops it; the largest score in range pays its target.
func TestSignedScoreOutOfRangeIsQuarantined(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		score := func(id, user, value string) string {
			t.Helper()
			body := `{"id":"` + id + `","type":"score.updated","data":{"participant_id":"` + user +
				`","leaderboard_id":"NyM_JGWcx","new_score":` + value + `}}`
			a := e.do("POST", "/v1/hooks/arcade/trackscore", body, "X-TrackScore-Signature", trackscoreSig(body, tsSecret))
			if a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("score %s: %d %s", value, a.Code, a.Raw)
			}
			return a.Body["event_id"].(string)
		}
		big := score("wh_big", "idler", "1e+21")
		ev := e.event(big)
		if reason, _ := ev.Body["reason"].(string); ev.Body["status"] != "quarantined" || !strings.Contains(reason, "data.new_score: 1e+21 is beyond") {
			t.Fatalf("event: %s", ev.Raw)
		}
		e.wantBalance("arcade", "idler", apiKey, "0", "0")
		if r := e.do("POST", "/v1/admin/events/"+big+"/replay", "", "Authorization", "Bearer "+adminTok); r.Code != 200 {
			t.Fatalf("replay: %d %s", r.Code, r.Raw)
		}
		if ev := e.event(big); ev.Body["status"] != "quarantined" {
			t.Fatalf("replayed: %s", ev.Raw)
		}
		e.wantBalance("arcade", "idler", apiKey, "0", "0")
		if ev := e.event(score("wh_max", "maxer", "99999999999999999999")); ev.Body["status"] != "applied" {
			t.Fatalf("a 20-digit score: %s", ev.Raw)
		}
		if b := e.balance("arcade", "maxer", apiKey); b.Body["available"] == "0" && b.Body["pending"] == "0" {
			t.Fatalf("a 20-digit score did not pay its target: %s", b.Raw)
		}
	})
}

// A body that stops short, here a sender that stalls past the server's read timeout, is a
// 408 the sender retries, not a 400 that would lose the event; nothing is recorded.
func TestStalledBodyIs408AndSavesNothing(t *testing.T) {
	e := newEnv(t, store.SQLite)
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := sppBody[:len(sppBody)/2]
	fmt.Fprintf(conn, "POST /v1/hooks/arcade/gamezop/spp HTTP/1.1\r\nHost: tally\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", sppToken, len(sppBody), half)
	// The rest never comes: the server's read deadline passes and it answers.
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p map[string]any
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusRequestTimeout || p["type"] != "urn:tally:problem:incomplete-body" ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("stalled body: %d %v, want a 408 incomplete-body problem", res.StatusCode, p)
	}
	if kept, err := e.db.Events(context.Background(), rewards.EventFilter{}); err != nil || len(kept) != 0 {
		t.Fatalf("the inbox holds %d events (%v) after a stalled body, want none", len(kept), err)
	}
}

func TestUnavailableDatabaseIs503(t *testing.T) {
	e := newEnv(t, store.SQLite)
	_ = e.db.Close()
	a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody, "Authorization", "Bearer "+sppToken)
	if a.Code != 503 || a.Header.Get("Retry-After") == "" {
		t.Fatalf("closed database: %d %v %s, want 503 with Retry-After", a.Code, a.Header, a.Raw)
	}
	if r := e.do("GET", "/readyz", ""); r.Code != 503 {
		t.Fatalf("readyz with a closed database: %d", r.Code)
	}
}

func TestPublisherAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		auth := []string{"Authorization", "Bearer " + apiKey}
		// Unknown user: zero balance, not 404.
		b := e.do("GET", "/v1/properties/arcade/users/ghost/balance", "", auth...)
		if b.Code != 200 || b.Body["available"] != "0" || b.Body["pending"] != "0" || b.Body["updated_at"] != nil {
			t.Fatalf("unknown user: %d %s", b.Code, b.Raw)
		}
		for name, c := range map[string]struct {
			path string
			hdr  []string
			code int
		}{
			"no key":             {"/v1/properties/arcade/users/u/balance", nil, 401},
			"wrong key":          {"/v1/properties/arcade/users/u/balance", []string{"Authorization", "Bearer nope"}, 401},
			"other property key": {"/v1/properties/arcade/users/u/balance", []string{"Authorization", "Bearer " + otherKey}, 401},
			"admin token":        {"/v1/properties/arcade/users/u/balance", []string{"Authorization", "Bearer " + adminTok}, 401},
			"unknown property":   {"/v1/properties/nope/users/u/balance", auth, 404},
			"bad limit":          {"/v1/properties/arcade/users/u/transactions?limit=0", auth, 400},
			"bad cursor":         {"/v1/properties/arcade/users/u/transactions?cursor=abc", auth, 400},
			// One spelling per number, as the OpenAPI patterns say: ParseInt took these.
			"limit with a sign":   {"/v1/properties/arcade/users/u/transactions?limit=+5", auth, 400},
			"cursor with a zero":  {"/v1/properties/arcade/users/u/transactions?cursor=07", auth, 400},
			"redemption with a 0": {"/v1/properties/arcade/redemptions/004", auth, 400},
			"user too long":       {"/v1/properties/arcade/users/" + strings.Repeat("x", 101) + "/balance", auth, 400},
		} {
			if a := e.do("GET", c.path, "", c.hdr...); a.Code != c.code {
				t.Fatalf("%s: %d, want %d: %s", name, a.Code, c.code, a.Raw)
			}
		}
		// 7 sessions for one user, paged 3 at a time, newest first, no gaps or repeats.
		for i := 0; i < 7; i++ {
			body := strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", "sess-"+string(rune('a'+i)), 1)
			if a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken); a.Code != 200 {
				t.Fatalf("ingest %d: %s", i, a.Raw)
			}
		}
		var ids []string
		cursor := ""
		for page := 0; ; page++ {
			path := "/v1/properties/arcade/users/sub1/transactions?limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			a := e.do("GET", path, "", auth...)
			if a.Code != 200 {
				t.Fatalf("page %d: %s", page, a.Raw)
			}
			for _, it := range a.Body["data"].([]any) {
				m := it.(map[string]any)
				if m["amount"] != "0.672" || m["kind"] != "revenue" || m["bucket"] != "pending" {
					t.Fatalf("entry %v", m)
				}
				ids = append(ids, m["id"].(string))
			}
			next, _ := a.Body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(ids) != 7 {
			t.Fatalf("paged %d entries, want 7: %v", len(ids), ids)
		}
		for i := 1; i < len(ids); i++ {
			if dec(ids[i]).GreaterThanOrEqual(dec(ids[i-1])) {
				t.Fatalf("not newest first: %v", ids)
			}
		}
	})
}

func TestOpsEndpoints(t *testing.T) {
	e := newEnv(t, store.SQLite)
	if a := e.do("GET", "/healthz", ""); a.Code != 200 {
		t.Fatalf("healthz %d", a.Code)
	}
	if a := e.do("GET", "/readyz", ""); a.Code != 200 {
		t.Fatalf("readyz %d %s", a.Code, a.Raw)
	}
	e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody, "Authorization", "Bearer "+sppToken)
	e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody)
	m := e.do("GET", "/metrics", "")
	for _, want := range []string{
		`tally_ingest_events_total{property="arcade",result="accepted",source="gamezop_spp"} 1`,
		`tally_ingest_events_total{property="arcade",result="unauthorized",source="gamezop_spp"} 1`,
		`tally_http_requests_total{method="POST",route="/v1/hooks/:property/gamezop/spp",status="200"} 1`,
		`tally_http_request_duration_seconds_bucket{route="/v1/hooks/:property/gamezop/spp"`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	_ = context.Background()
}
