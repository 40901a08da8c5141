package app_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"tally/app"
	"tally/postbacks"
	"tally/store"
	"tally/store/storetest"
)

// The store the app is given provides the console's figures.
var _ app.ConsoleStore = (*store.DB)(nil)

// consoleClient is an HTTP client that keeps cookies and does not follow redirects, so tests
// see each answer the console gives.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleClient(t *testing.T, h http.Handler) *consoleClient {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type consolePage struct {
	Code   int
	Header http.Header
	Body   string
}

func (b *consoleClient) get(path string) consolePage {
	b.t.Helper()
	return b.send("GET", path, nil)
}

func (b *consoleClient) post(path string, form url.Values) consolePage {
	b.t.Helper()
	return b.send("POST", path, form)
}

func (b *consoleClient) send(method, path string, form url.Values) consolePage {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return consolePage{Code: res.StatusCode, Header: res.Header, Body: string(raw)}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token a page's forms carry.
func (p consolePage) csrf(t *testing.T) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token on the consolePage:\n%.2000s", p.Body)
	}
	return html.UnescapeString(m[1])
}

// login signs in with tok through the login form, and returns the overview.
func (b *consoleClient) login(tok string) consolePage {
	b.t.Helper()
	form := b.get("/console/login")
	res := b.post("/console/login", url.Values{"token": {tok}, "csrf": {form.csrf(b.t)}})
	if res.Code != http.StatusSeeOther || res.Header.Get("Location") != "/console" {
		b.t.Fatalf("sign-in: %d %v\n%.2000s", res.Code, res.Header, res.Body)
	}
	ov := b.get("/console")
	if ov.Code != http.StatusOK {
		b.t.Fatalf("overview after sign-in: %d\n%.2000s", ov.Code, ov.Body)
	}
	return ov
}

func sessionCookieOf(t *testing.T, res consolePage) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: res.Header}).Cookies() {
		if c.Name == "tally_console" {
			return c
		}
	}
	t.Fatalf("no session cookie set: %v", res.Header)
	return nil
}

// consoleRoutes lists the console's routes that need a session, from the route table,
// so a page added later is covered without editing this test.
func consoleRoutes(t *testing.T, h http.Handler) (pages, actions []string) {
	engine := h.(interface{ Routes() gin.RoutesInfo })
	for _, r := range engine.Routes() {
		if !strings.HasPrefix(r.Path, "/console") || r.Path == "/console/login" || strings.HasPrefix(r.Path, "/console/static/") {
			continue
		}
		p := strings.ReplaceAll(r.Path, ":id", "1")
		if r.Method == "GET" {
			pages = append(pages, p)
		} else {
			actions = append(actions, p)
		}
	}
	if len(pages) < 5 || len(actions) < 4 {
		t.Fatalf("console routes: pages %v, actions %v", pages, actions)
	}
	return pages, actions
}

// Without a session every page sends the browser to the sign-in form and every action
// is refused; a forged cookie is no session; a bad token does not sign in.
func TestConsoleRequiresASession(t *testing.T) {
	e := newEnv(t, store.SQLite)
	b := newConsoleClient(t, e.h)
	pages, actions := consoleRoutes(t, e.h)
	check := func(when string) {
		t.Helper()
		for _, p := range pages {
			if res := b.get(p); res.Code != http.StatusSeeOther || res.Header.Get("Location") != "/console/login" {
				t.Fatalf("%s: GET %s = %d %q, want 303 to /console/login", when, p, res.Code, res.Header.Get("Location"))
			}
		}
		for _, p := range actions {
			if res := b.post(p, url.Values{"property": {"arcade"}}); res.Code != http.StatusUnauthorized {
				t.Fatalf("%s: POST %s = %d, want 401", when, p, res.Code)
			}
		}
	}
	check("no cookie")

	// A bad token: 401 and no session.
	form := b.get("/console/login")
	if res := b.post("/console/login", url.Values{"token": {"nope"}, "csrf": {form.csrf(t)}}); res.Code != http.StatusUnauthorized ||
		strings.Contains(res.Header.Get("Set-Cookie"), "tally_console=") && !strings.Contains(res.Header.Get("Set-Cookie"), "tally_console_login") {
		t.Fatalf("bad token: %d %v", res.Code, res.Header)
	}
	check("after a refused sign-in")

	// A real session's cookie, altered: the name of another admin, or a later expiry.
	ok := newConsoleClient(t, e.h)
	ok.login(aliceTok)
	u, _ := url.Parse(ok.base + "/console")
	real := ok.c.Jar.Cookies(u)[0].Value
	parts := strings.Split(real, ".")
	forgeries := map[string]string{
		"another admin's name": "YWRtaW4." + strings.Join(parts[1:], "."), // base64url("admin")
		"a later expiry":       parts[0] + "." + parts[1] + "9." + parts[2] + "." + parts[3],
		"no signature":         strings.Join(parts[:3], ".") + ".",
		"garbage":              "x",
	}
	for name, v := range forgeries {
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "tally_console", Value: v, Path: "/console"}})
		check("forged cookie, " + name)
	}
}

// Signing in sets a session cookie a script cannot read and another site cannot send,
// Secure behind TLS, that expires; the console then acts as that admin, and only with
// the form's CSRF token.
func TestConsoleSessionAndCSRF(t *testing.T) {
	e := newEnv(t, store.SQLite)
	// 25 COIN that mature at once (hold 0s): something for "settle now" to settle.
	e.do("POST", "/v1/hooks/arcade/trackscore", tsBody, "X-TrackScore-Signature", trackscoreSig(tsBody, tsSecret))
	b := newConsoleClient(t, e.h)
	form := b.get("/console/login")
	if form.Code != 200 || !strings.Contains(form.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("login form: %d %v", form.Code, form.Header)
	}
	// The login form itself needs its CSRF token.
	if res := b.post("/console/login", url.Values{"token": {aliceTok}}); res.Code != http.StatusForbidden {
		t.Fatalf("sign-in without the form's token: %d, want 403", res.Code)
	}
	form = b.get("/console/login")
	res := b.post("/console/login", url.Values{"token": {aliceTok}, "csrf": {form.csrf(t)}})
	ck := sessionCookieOf(t, res)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.MaxAge <= 0 || ck.MaxAge > 24*3600 || ck.Path != "/console" {
		t.Fatalf("session cookie over plain HTTP: %+v", ck)
	}
	ov := b.get("/console")
	if ov.Code != 200 || !strings.Contains(ov.Body, `<b id="actor">alice</b>`) {
		t.Fatalf("overview: %d\n%.3000s", ov.Code, ov.Body)
	}
	if res := b.get("/console/"); res.Code != http.StatusSeeOther || res.Header.Get("Location") != "/console" {
		t.Fatalf("/console/: %d %q, want 303 to /console", res.Code, res.Header.Get("Location"))
	}

	// Behind a TLS-terminating proxy the cookie is Secure.
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"token": {adminTok}, "csrf": {"n"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.AddCookie(&http.Cookie{Name: "tally_console_login", Value: "n"})
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if ck := sessionCookieOf(t, consolePage{Header: rec.Header()}); !ck.Secure {
		t.Fatalf("session cookie behind TLS: %+v", ck)
	}

	// An action without the CSRF token, or with another session's, does nothing.
	other := newConsoleClient(t, e.h)
	otherToken := other.login(adminTok).csrf(t)
	for name, tok := range map[string]string{"none": "", "another session's": otherToken} {
		if res := b.post("/console/settlements", url.Values{"property": {"arcade"}, "csrf": {tok}}); res.Code != http.StatusForbidden {
			t.Fatalf("settle now with %s CSRF token: %d, want 403", name, res.Code)
		}
	}
	if runs := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+adminTok); len(runs.Body["data"].([]any)) != 0 {
		t.Fatalf("a refused action settled: %s", runs.Raw)
	}
	// With it, it runs, as alice.
	res = b.post("/console/settlements", url.Values{"property": {"arcade"}, "csrf": {ov.csrf(t)}})
	if res.Code != 200 || !strings.Contains(res.Body, "Settlement of arcade: completed, 1 entries, 25 moved to available for 1 users.") {
		t.Fatalf("settle now: %d\n%.3000s", res.Code, res.Body)
	}
	runs := e.do("GET", "/v1/admin/settlements", "", "Authorization", "Bearer "+adminTok)
	if len(runs.Body["data"].([]any)) != 1 {
		t.Fatalf("settle now did not run once: %s", runs.Raw)
	}
	// The audit log names alice and the run she started.
	audit := e.do("GET", "/v1/admin/audit", "", "Authorization", "Bearer "+adminTok)
	entries, _ := audit.Body["data"].([]any)
	if len(entries) != 1 {
		t.Fatalf("audit after settle now: %s", audit.Raw)
	}
	run := runs.Body["data"].([]any)[0].(map[string]any)
	if got := entries[0].(map[string]any); got["actor"] != "alice" || got["action"] != "settlement" || got["property"] != "arcade" ||
		got["target"] != "settlement:"+run["id"].(string) {
		t.Fatalf("audit entry of settle now: %v, run %v", got, run)
	}

	// Another replica with the same admins accepts the session (nothing is kept in one
	// process); one without alice does not.
	replica := newConsoleClient(t, app.New(e.db, app.Options{Properties: []app.Property{arcade()}, Admins: []app.Admin{{Name: "alice", Token: aliceTok}}}).Handler())
	u, _ := url.Parse(b.base + "/console")
	cookies := b.c.Jar.Cookies(u)
	ru, _ := url.Parse(replica.base + "/console")
	replica.c.Jar.SetCookies(ru, []*http.Cookie{{Name: "tally_console", Value: cookies[0].Value, Path: "/console"}})
	if res := replica.get("/console"); res.Code != 200 {
		t.Fatalf("the session on another replica: %d", res.Code)
	}
	revoked := newConsoleClient(t, app.New(e.db, app.Options{Properties: []app.Property{arcade()}, AdminToken: adminTok}).Handler())
	vu, _ := url.Parse(revoked.base + "/console")
	revoked.c.Jar.SetCookies(vu, []*http.Cookie{{Name: "tally_console", Value: cookies[0].Value, Path: "/console"}})
	if res := revoked.get("/console"); res.Code != http.StatusSeeOther {
		t.Fatalf("alice's session where alice is no admin: %d, want 303 to sign-in", res.Code)
	}

	// Signing out ends the session in this browser, and everywhere: the copy of its
	// cookie the other replica holds is refused too, for pages and for actions.
	if res := b.post("/console/logout", url.Values{"csrf": {ov.csrf(t)}}); res.Code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.Code)
	}
	if res := b.get("/console"); res.Code != http.StatusSeeOther {
		t.Fatalf("after signing out: %d, want 303 to sign-in", res.Code)
	}
	if res := replica.get("/console"); res.Code != http.StatusSeeOther {
		t.Fatalf("a copy of the signed-out session on another replica: %d, want 303 to sign-in", res.Code)
	}
	if res := replica.post("/console/settlements", url.Values{"csrf": {ov.csrf(t)}, "property": {"arcade"}}); res.Code != http.StatusUnauthorized {
		t.Fatalf("an action with a copy of the signed-out session: %d, want 401", res.Code)
	}
	// A new sign-in is a new session.
	b.login(aliceTok)
	if res := b.get("/console"); res.Code != 200 {
		t.Fatalf("signed in again: %d", res.Code)
	}
}

// Hostile values — a user id that is markup, a raw body that closes the <pre> and opens
// a script — are shown as text on every page that shows them.
func TestConsoleEscapesWhatItShows(t *testing.T) {
	e := newEnv(t, store.SQLite)
	const evil = `<img src=x onerror=alert(1)>`
	body := strings.Replace(strings.Replace(sppBody, `"user-id":"sub1"`, `"user-id":"`+strings.ReplaceAll(evil, `"`, `\"`)+`"`, 1),
		`"property-id":"1234"`, `"property-id":"</pre><script>alert(2)</script>"`, 1)
	if a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken); a.Code != 200 {
		t.Fatalf("ingest: %d %s", a.Code, a.Raw)
	}
	b := newConsoleClient(t, e.h)
	b.login(adminTok)
	for _, path := range []string{"/console/quarantine", "/console/users?property=arcade&user=" + url.QueryEscape(evil)} {
		p := b.get(path)
		if p.Code != 200 {
			t.Fatalf("%s: %d\n%.2000s", path, p.Code, p.Body)
		}
		for _, raw := range []string{"<img", "<script", "</pre><script"} {
			if strings.Contains(p.Body, raw) {
				t.Fatalf("%s holds %q unescaped:\n%s", path, raw, p.Body)
			}
		}
		if !strings.Contains(p.Body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("%s does not show the user id as text:\n%s", path, p.Body)
		}
	}
}

// Replaying from the console applies a quarantined event once, however often the form
// is sent, and says what happened; "replay all" takes every event of one reason.
func TestConsoleReplay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		var ids []string
		for _, s := range []string{"s-1", "s-2", "s-3"} {
			body := strings.NewReplacer(`"property-id":"1234"`, `"property-id":"9999"`, "b48a8368-a369-49a4-b427-2d5891ef3763", s).Replace(sppBody)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			ids = append(ids, a.Body["event_id"].(string))
		}
		fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "9999" })
		b := newConsoleClient(t, fixed.h)
		b.login(aliceTok)
		q := b.get("/console/quarantine?property=arcade")
		if !strings.Contains(q.Body, `does not match gamezop_property_id 1234`) || strings.Count(q.Body, `class="replay"`) != 3 {
			t.Fatalf("quarantine consolePage:\n%s", q.Body)
		}
		tok := q.csrf(t)
		first := b.post("/console/quarantine/"+ids[0]+"/replay", url.Values{"csrf": {tok}})
		if !strings.Contains(first.Body, "Event "+ids[0]+" applied") {
			t.Fatalf("first replay:\n%s", first.Body)
		}
		again := b.post("/console/quarantine/"+ids[0]+"/replay", url.Values{"csrf": {tok}})
		if !strings.Contains(again.Body, "was not quarantined any more") {
			t.Fatalf("second replay:\n%s", again.Body)
		}
		bal := e.do("GET", "/v1/properties/arcade/users/sub1/balance", "", "Authorization", "Bearer "+apiKey)
		if bal.Body["pending"] != "0.672" {
			t.Fatalf("after one replay sent twice: %s, want one credit of 0.672", bal.Raw)
		}
		reason := `property-id "9999" does not match gamezop_property_id 1234`
		all := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}})
		if !strings.Contains(all.Body, "Replayed 2 events of arcade") || !strings.Contains(all.Body, "2 applied, 0 still quarantined") ||
			!strings.Contains(all.Body, "Nothing is quarantined.") {
			t.Fatalf("replay all:\n%s", all.Body)
		}
		bal = e.do("GET", "/v1/properties/arcade/users/sub1/balance", "", "Authorization", "Bearer "+apiKey)
		if bal.Body["pending"] != "2.016" {
			t.Fatalf("after replaying all: %s, want 3 × 0.672", bal.Raw)
		}
		audit := e.do("GET", "/v1/admin/audit", "", "Authorization", "Bearer "+adminTok)
		if n := strings.Count(audit.Raw, `"actor":"alice"`); n != 3 {
			t.Fatalf("audit has %d replays by alice, want 3: %s", n, audit.Raw)
		}
	})
}

// The reports form downloads the admin API's payout report; a bad period is shown on
// the form.
func TestConsoleReportDownload(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody, "Authorization", "Bearer "+sppToken)
	b := newConsoleClient(t, e.h)
	b.login(adminTok)
	if f := b.get("/console/reports"); f.Code != 200 || !strings.Contains(f.Body, `value="2026-11-01"`) {
		t.Fatalf("reports form: %d\n%s", f.Code, f.Body)
	}
	csv := b.get("/console/reports/payouts?property=arcade&from=2026-11-01&to=2026-12-01&format=csv")
	if csv.Code != 200 || !strings.Contains(csv.Header.Get("Content-Disposition"), "payouts-arcade-2026-11-01-2026-12-01.csv") ||
		!strings.HasPrefix(csv.Body, "property,user,currency,") || !strings.Contains(csv.Body, "\narcade,sub1,COIN,") {
		t.Fatalf("CSV: %d %v\n%s", csv.Code, csv.Header, csv.Body)
	}
	api := e.do("GET", "/v1/admin/reports/payouts?property=arcade&from=2026-11-01&to=2026-12-01&format=csv", "", "Authorization", "Bearer "+adminTok)
	if api.Raw != csv.Body {
		t.Fatalf("the console's CSV differs from the API's:\n%s\n---\n%s", csv.Body, api.Raw)
	}
	if x := b.get("/console/reports/payouts?from=2026-11-01&to=2026-12-01&format=xlsx"); x.Code != 200 || !strings.HasPrefix(x.Body, "PK") {
		t.Fatalf("XLSX: %d %v", x.Code, x.Header)
	}
	if bad := b.get("/console/reports/payouts?from=2026-12-01&to=nope&format=csv"); bad.Code != 400 || !strings.Contains(bad.Body, `id="error"`) {
		t.Fatalf("bad period: %d\n%s", bad.Code, bad.Body)
	}
	// A refused request comes back with its choices set and every error listed: the form
	// came back set to every property and CSV, and fixing the dates downloaded another
	// report than the one asked for.
	bad := b.get("/console/reports/payouts?property=arcade&from=2026-12-05&to=2026-12-01&format=xlsx&bom=true")
	if bad.Code != 400 || !strings.Contains(bad.Body, `<option value="arcade" selected>`) || !strings.Contains(bad.Body, `<option value="xlsx" selected>`) ||
		!strings.Contains(bad.Body, `value="true" checked`) || !strings.Contains(bad.Body, "to (") || !strings.Contains(bad.Body, "bom (") {
		t.Fatalf("refused report request: %d\n%s", bad.Code, bad.Body)
	}
	// A report asked while the instance streams as many as it serves is the form again
	// with why (it was the API's problem document, raw JSON in the browser), its choices
	// kept; once one has finished, the download goes through.
	release := app.HoldReportStreams(e.app)
	busy := b.get("/console/reports/payouts?property=arcade&from=2026-11-01&to=2026-12-01&format=xlsx")
	release()
	if busy.Code != 503 || !strings.HasPrefix(busy.Header.Get("Content-Type"), "text/html") || busy.Header.Get("Retry-After") == "" ||
		!strings.Contains(busy.Body, "payout reports are being streamed") || !strings.Contains(busy.Body, `<option value="xlsx" selected>`) {
		t.Fatalf("a report while the instance streams its most: %d %v\n%s", busy.Code, busy.Header, busy.Body)
	}
	// A parameter given twice is shown on the form too, not answered with the API's
	// problem document.
	if bad := b.get("/console/reports/payouts?from=2026-11-01&from=2026-10-01&to=2026-12-01"); bad.Code != 400 || !strings.Contains(bad.Body, `id="error"`) ||
		bad.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("repeated from: %d %v\n%s", bad.Code, bad.Header, bad.Body)
	}
}

// "Replay all" of a reason goes on past the events that stay quarantined: its next batch
// starts after the last event the batch before replayed. Before, every batch took the
// oldest events of the reason again, so with a batch's worth of forgeries in front, an
// event the operator's fix would credit was never reached, however often the form was
// sent (and each send wrote a batch of audit entries).
func TestConsoleReplayAllReachesLaterEvents(t *testing.T) {
	defer app.SetReplayAllBatch(2)()
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		secret, stale := []byte("the-real-secret-0123"), []byte("a-stale-secret-0123")
		good, err := postbacks.SubTokens{Secrets: [][]byte{secret}}.Sign("alice", t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		bob, err := postbacks.SubTokens{Secrets: [][]byte{stale}}.Sign("bob", t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		e := base.withProperty(func(p *appProperty) {
			p.SubTokens = &postbacks.SubTokens{Secrets: [][]byte{secret}, Required: true, MaxAge: time.Hour}
		})
		var reason string
		for i, sub := range []string{"mallory" + strings.TrimPrefix(good, "alice"), "eve" + strings.TrimPrefix(good, "alice"),
			"trent" + strings.TrimPrefix(good, "alice"), bob} {
			body := strings.NewReplacer(`"user-id":"sub1"`, `"user-id":"`+sub+`"`,
				"b48a8368-a369-49a4-b427-2d5891ef3763", fmt.Sprintf("s-%d", i)).Replace(sppBody)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			ev := e.event(a.Body["event_id"])
			if ev.Body["status"] != "quarantined" || (reason != "" && ev.Body["reason"] != reason) {
				t.Fatalf("delivery %d: %s", i, ev.Raw)
			}
			reason = ev.Body["reason"].(string)
		}
		fixed := base.withProperty(func(p *appProperty) {
			p.SubTokens = &postbacks.SubTokens{Secrets: [][]byte{secret, stale}, Required: true, MaxAge: time.Hour}
		})
		b := newConsoleClient(t, fixed.h)
		b.login(adminTok)
		tok := b.get("/console/quarantine?property=arcade").csrf(t)
		first := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}})
		if first.Code != 200 || !strings.Contains(first.Body, "0 applied, 2 still quarantined") || !strings.Contains(first.Body, `name="after"`) {
			t.Fatalf("first batch: %d\n%s", first.Code, first.Body)
		}
		after := regexp.MustCompile(`name="after" value="(\d+)"`).FindStringSubmatch(first.Body)
		next := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}, "after": {after[1]}})
		if next.Code != 200 || !strings.Contains(next.Body, "Replayed 2 events") || !strings.Contains(next.Body, "1 applied, 1 still quarantined") ||
			strings.Contains(next.Body, `name="after"`) {
			t.Fatalf("next batch: %d\n%s", next.Code, next.Body)
		}
		fixed.wantBalance("arcade", "bob", apiKey, "0", "0.672")
		if bad := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}, "after": {"x"}}); bad.Code != 400 ||
			!strings.Contains(bad.Body, "after") {
			t.Fatalf("after x: %d\n%s", bad.Code, bad.Body)
		}
	})
}

// "Replay all" for a reason goes on past an event the database refuses, as `tally
// replay` does: before, the batch stopped at it, and "replay the next batch" started at
// it again, so no number of clicks reached the reason's later events.
func TestConsoleReplayAllGoesOnPastAnEventThatFails(t *testing.T) {
	defer app.SetReplayAllBatch(2)()
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e, dbURL := newEnvWith(t, d, arcade(), other())
		var ids []string
		for _, u := range []string{"u1", "u2", "u3", "u4"} {
			body := strings.NewReplacer(`"user-id":"sub1"`, `"user-id":"`+u+`"`, `"b48a8368-a369-49a4-b427-2d5891ef3763"`, `"s-`+u+`"`,
				`"property-id":"1234"`, `"property-id":"999"`).Replace(sppBody)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			if ev := e.event(a.Body["event_id"]); ev.Body["status"] != "quarantined" {
				t.Fatalf("%s: %s", u, ev.Raw)
			}
			ids = append(ids, a.Body["event_id"].(string))
		}
		reason := e.event(ids[0]).Body["reason"].(string)
		refuseLedgerRowsOf(t, d, dbURL, "u2")
		fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "999" })
		b := newConsoleClient(t, fixed.h)
		b.login(adminTok)
		tok := b.get("/console/quarantine?property=arcade").csrf(t)
		first := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}})
		if first.Code != 200 || !strings.Contains(first.Body, "1 applied") ||
			!strings.Contains(first.Body, "1 events could not be applied (the database refused their effects) and stay quarantined: "+ids[1]) {
			t.Fatalf("first batch: %d\n%s", first.Code, first.Body)
		}
		after := regexp.MustCompile(`name="after" value="(\d+)"`).FindStringSubmatch(first.Body)
		if after == nil || after[1] != ids[1] {
			t.Fatalf("the next batch starts after %v, want after event %s:\n%s", after, ids[1], first.Body)
		}
		next := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}, "after": {after[1]}})
		if next.Code != 200 || !strings.Contains(next.Body, "2 applied") {
			t.Fatalf("next batch: %d\n%s", next.Code, next.Body)
		}
		for i, want := range []string{"applied", "quarantined", "applied", "applied"} {
			if ev := fixed.event(ids[i]); ev.Body["status"] != want {
				t.Fatalf("event %s: %s, want %s", ids[i], ev.Raw, want)
			}
		}
		fixed.wantBalance("arcade", "u4", apiKey, "0", "0.672")
	})
}

// A batch that skipped an event the database refused, then stopped at an outage, still
// names the skipped one: the next batch starts after it.
func TestConsoleReplayAllStoppedNamesTheEventsItSkipped(t *testing.T) {
	defer app.SetReplayAllBatch(10)()
	e, dbURL := newEnvWith(t, store.Postgres, arcade(), other())
	var ids []string
	for _, u := range []string{"u1", "u2", "u3"} {
		body := strings.NewReplacer(`"user-id":"sub1"`, `"user-id":"`+u+`"`, `"b48a8368-a369-49a4-b427-2d5891ef3763"`, `"s-`+u+`"`,
			`"property-id":"1234"`, `"property-id":"999"`).Replace(sppBody)
		ids = append(ids, e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken).Body["event_id"].(string))
	}
	reason := e.event(ids[0]).Body["reason"].(string)
	refuseLedgerRowsOf(t, store.Postgres, dbURL, "u2")
	raiseOnLedgerRowsOf(t, store.Postgres, dbURL, "u3", "XX000") // internal_error: the store takes it for an outage
	fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "999" })
	b := newConsoleClient(t, fixed.h)
	b.login(adminTok)
	tok := b.get("/console/quarantine?property=arcade").csrf(t)
	res := b.post("/console/quarantine/replay", url.Values{"csrf": {tok}, "property": {"arcade"}, "reason": {reason}})
	if res.Code != 503 || !strings.Contains(res.Body, "Replay stopped at event "+ids[2]) ||
		!strings.Contains(res.Body, "Before it, 1 events could not be applied and stay quarantined: "+ids[1]) {
		t.Fatalf("%d\n%s", res.Code, res.Body)
	}
}

// The overview shows each property's own last settlement, however often the others have
// run since. Before, it looked for it among the newest 200 runs of every property, and a
// quiet property showed "none yet".
func TestConsoleOverviewShowsEachPropertysLastRun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.spp("arcade", "s-1", sppToken)
		e.clock.Set(t0.Add(25 * time.Hour))
		arcadeRun := runOf(t, e.settle("arcade"), "arcade")
		var otherRun int64
		for range 201 { // by hand, each run is recorded though it finds nothing
			runs, err := e.app.Settle(context.Background(), "other", "ops")
			if err != nil || len(runs) != 1 || runs[0].ID == 0 {
				t.Fatalf("settling other: %+v %v", runs, err)
			}
			otherRun = runs[0].ID
		}
		b := newConsoleClient(t, e.h)
		ov := b.login(adminTok)
		re := regexp.MustCompile(`data-figure="last-settlement">#(\d+) `)
		got := re.FindAllStringSubmatch(ov.Body, -1)
		if len(got) != 2 || got[0][1] != fmt.Sprint(arcadeRun.ID) || got[1][1] != fmt.Sprint(otherRun) {
			t.Fatalf("last settlements %q, want arcade's run %d and other's %d:\n%.3000s", got, arcadeRun.ID, otherRun, ov.Body)
		}
	})
}

// An admin token of whitespace (the config refuses it) is no token: the sign-in form,
// whose field is not trimmed as a header is, does not take it.
func TestConsoleRefusesAWhitespaceToken(t *testing.T) {
	e := newEnv(t, store.SQLite)
	h := app.New(e.db, app.Options{Properties: []app.Property{arcade()}, AdminToken: "   "}).Handler()
	b := newConsoleClient(t, h)
	form := b.get("/console/login")
	if res := b.post("/console/login", url.Values{"token": {"   "}, "csrf": {form.csrf(t)}}); res.Code == http.StatusSeeOther {
		t.Fatalf("signed in with a token of spaces: %d %s", res.Code, res.Header.Get("Location"))
	}
}

// The console's lists (quarantined events, a user's transactions, settlement runs) show
// a page and link to the older rows: they showed the newest 100 (50 transactions) and
// nothing said there were more, so a quiet property's runs, or a user's older credits,
// could not be reached. Replaying one event keeps the property the list was showing.
func TestConsoleListsLinkToOlderRows(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		ctx := context.Background()
		var first string
		for i := range 101 {
			body := strings.NewReplacer(`"property-id":"1234"`, `"property-id":"9999"`, "b48a8368-a369-49a4-b427-2d5891ef3763", fmt.Sprintf("s-%d", i)).Replace(sppBody)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			if a.Code != 200 {
				t.Fatalf("spp: %d %s", a.Code, a.Raw)
			}
			if i == 0 {
				first = a.Body["event_id"].(string)
			}
		}
		for i := range 51 {
			if a := e.adjust("arcade", "u1", fmt.Sprintf("k%d", i), `{"amount":"1","reason":"goodwill"}`); a.Code != 201 {
				t.Fatalf("adjust: %d %s", a.Code, a.Raw)
			}
		}
		for range 101 {
			if _, err := e.app.Settle(ctx, "arcade", "ops"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.app.Settle(ctx, "other", "ops"); err != nil {
			t.Fatal(err)
		}
		b := newConsoleClient(t, e.h)
		b.login(aliceTok)
		older := regexp.MustCompile(`id="older" href="([^"]+)"`)
		follow := func(p consolePage, what string) consolePage {
			t.Helper()
			m := older.FindStringSubmatch(p.Body)
			if m == nil {
				t.Fatalf("%s: no link to older rows:\n%s", what, p.Body)
			}
			return b.get(html.UnescapeString(m[1]))
		}
		for _, c := range []struct {
			path, row string
			page      int
		}{
			{"/console/quarantine?property=arcade", `class="replay"`, 100},
			{"/console/users?property=arcade&user=u1", "<tr><td>", 50},
			{"/console/settlements?property=arcade", "<tr><td>", 100},
		} {
			p := b.get(c.path)
			if p.Code != 200 || strings.Count(p.Body, c.row) != c.page {
				t.Fatalf("%s: %d, %d rows, want %d:\n%s", c.path, p.Code, strings.Count(p.Body, c.row), c.page, p.Body)
			}
			rest := follow(p, c.path)
			if rest.Code != 200 || strings.Count(rest.Body, c.row) != 1 || older.MatchString(rest.Body) {
				t.Fatalf("%s, older: %d, %d rows, want the last one and no further link:\n%s", c.path, rest.Code, strings.Count(rest.Body, c.row), rest.Body)
			}
			if bad := b.get(c.path + "&before=abc"); bad.Code != 400 {
				t.Fatalf("%s&before=abc: %d, want 400", c.path, bad.Code)
			}
		}
		if s := b.get("/console/settlements?property=other"); strings.Count(s.Body, "<tr><td>") != 1 {
			t.Fatalf("other's runs:\n%s", s.Body)
		}
		q := b.get("/console/quarantine?property=arcade")
		r := b.post("/console/quarantine/"+first+"/replay", url.Values{"csrf": {q.csrf(t)}, "property": {"arcade"}})
		if !strings.Contains(r.Body, `<option value="arcade" selected>`) {
			t.Fatalf("the page after replaying one event of arcade's list:\n%s", r.Body)
		}
		q = b.get("/console/quarantine?property=arcade")
		if !strings.Contains(q.Body, `name="property" value="arcade"`) {
			t.Fatalf("the replay form does not carry the list's property:\n%s", q.Body)
		}
	})
}
