package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"tally/store"
	"tally/store/storetest"
)

// chromiumPath is the chromium on PATH (the one scripts/chromium.sh, which `make test`
// runs, looks for and installs when missing), else Debian's package's.
func chromiumPath() string {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return "/usr/bin/chromium"
}

// startChromium starts a headless Chromium with a fresh profile and returns a tab. The
// test fails, loudly and never skips, when the browser cannot start: the console's
// only end-to-end test must not vanish from a run because a package is missing.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in containers
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	}
	// Bounded, so a hung browser fails the test instead of the whole run's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	// Cleanups run last-in first-out: the browser exits before its profile is removed.
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancel() })
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("CHROMIUM DID NOT START (%s): %v\n"+
			"The console's browser test needs Debian's chromium: run `make browser` (apt-get install -y chromium).", chromiumPath(), err)
	}
	return tab
}

// screenshot saves the whole page as name.png in the test's artifact directory (kept
// under -outputdir with `go test -artifacts`, else removed after the test).
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100 is PNG; less is JPEG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// An operator in a real browser: signs in, reads the overview (the same figures the
// API gives), replays a quarantined event and sees the user's balance change, and sees
// a user id made of markup as text, with no element or script created from it.
func TestConsoleInABrowser(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		const evil = `<img src=x onerror=alert(1)>`
		spp := func(user, session, propertyID string) string {
			body := strings.NewReplacer(`"user-id":"sub1"`, `"user-id":"`+user+`"`, "b48a8368-a369-49a4-b427-2d5891ef3763", session,
				`"property-id":"1234"`, `"property-id":"`+propertyID+`"`).Replace(sppBody)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			if a.Code != 200 {
				t.Fatalf("ingest: %d %s", a.Code, a.Raw)
			}
			return a.Body["event_id"].(string)
		}
		spp("sub1", "s-1", "1234")                            // applied: 0.672 pending
		held := spp("sub2", "s-2", "9999")                    // quarantined: the property-id does not match
		spp(evil, "s-3", "9999")                              // quarantined, with a hostile user id
		e.do("POST", "/v1/hooks/arcade/gamezop/spp", sppBody) // unauthorized: not in the inbox

		// The operator fixes the config (the property-id is 9999 after all) and restarts.
		fixed := e.withProperty(func(p *appProperty) { p.GamezopPropertyID = "9999" })
		srv := httptest.NewServer(fixed.h)
		t.Cleanup(srv.Close)

		tab := startChromium(t)
		var dialogs atomic.Int32
		if err := chromedp.Listen(tab, func(ev any) {
			if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
				dialogs.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
		do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			if err := chromedp.Do(tab, steps...); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		// submit clicks a form's button and waits for the page it leads to.
		submit := func(what string, button chromedp.CSS) {
			t.Helper()
			res, err := chromedp.RunResponse(tab, chromedp.Click(button))
			if err != nil || res.Status != 200 {
				t.Fatalf("%s: %v %v", what, res, err)
			}
		}
		text := func(sel chromedp.CSS) string {
			t.Helper()
			s, err := chromedp.Run(tab, chromedp.Text(sel))
			if err != nil {
				t.Fatalf("text of %s: %v", sel, err)
			}
			return strings.TrimSpace(s)
		}
		count := func(sel string) int {
			t.Helper()
			n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll(`+strconvQuote(sel)+`).length`))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Sign in: /console sends the browser to the form.
		do("open the console", chromedp.Navigate(srv.URL+"/console"), chromedp.WaitVisible(chromedp.ID("token")))
		if loc, _ := chromedp.Run(tab, chromedp.Location()); loc != srv.URL+"/console/login" {
			t.Fatalf("unsigned /console went to %s, want the sign-in form", loc)
		}
		do("type the token", chromedp.SendKeys(chromedp.ID("token"), adminTok))
		submit("sign in", "#login")
		if who := text("#actor"); who != "admin" {
			t.Fatalf("signed in as %q", who)
		}
		screenshot(t, tab, "overview")

		// The overview's figures are the API's.
		admin := []string{"Authorization", "Bearer " + adminTok}
		quarantined := e.do("GET", "/v1/admin/events?status=quarantined&property=arcade", "", admin...)
		if got, want := text(`#property-arcade td[data-figure="quarantined"]`), fmt.Sprint(len(quarantined.Body["data"].([]any))); got != want || got != "2" {
			t.Fatalf("overview quarantined %q, API %s (want 2)", got, want)
		}
		all := e.do("GET", "/v1/admin/events?property=arcade&source=gamezop_spp", "", admin...)
		if got, want := text(`#property-arcade tr[data-source="gamezop_spp"] td[data-status="total"]`), fmt.Sprint(len(all.Body["data"].([]any))); got != want || got != "3" {
			t.Fatalf("overview SPP events today %q, API %s (want 3)", got, want)
		}
		ready := e.do("GET", "/readyz", "")
		if got, want := text(`#property-arcade td[data-figure="backlog"]`), fmt.Sprint(ready.Body["apply_backlog"]); got != want {
			t.Fatalf("overview backlog %q, /readyz %s", got, want)
		}
		sum := dec("0")
		for _, u := range []string{"sub1", "sub2", evil} {
			b := e.do("GET", "/v1/properties/arcade/users/"+url.PathEscape(u)+"/balance", "", "Authorization", "Bearer "+apiKey)
			sum = sum.Add(dec(b.Body["pending"].(string)))
		}
		if got := text(`#property-arcade td[data-figure="pending"]`); got != sum.String() || got != "0.672" {
			t.Fatalf("overview pending %q, sum of the API's balances %s", got, sum)
		}

		// The quarantine shows the hostile id as text, and no element came of it.
		do("quarantine", chromedp.Navigate(srv.URL+"/console/quarantine"),
			chromedp.WaitVisible(chromedp.CSS(`button.replay[data-event="`+held+`"]`)))
		users, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll("dd.user")].map(e => e.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		screenshot(t, tab, "quarantine")
		if !slices.Contains(users, evil) || count("img") != 0 {
			t.Fatalf("users shown %q, <img> elements %d; want %q as text and no image", users, count("img"), evil)
		}

		// sub2 has nothing before the replay, 0.672 pending after it.
		do("user lookup", chromedp.Navigate(srv.URL+"/console/users"), chromedp.WaitVisible(chromedp.ID("user")),
			chromedp.SendKeys(chromedp.ID("user"), "sub2"))
		submit("look up sub2", "#lookup")
		before := text(`#balance td[data-figure="pending"]`)

		do("quarantine again", chromedp.Navigate(srv.URL+"/console/quarantine"))
		submit("replay", chromedp.CSS(`button.replay[data-event="`+held+`"]`))
		if flash := text(".flash"); !strings.Contains(flash, "Event "+held+" applied") {
			t.Fatalf("after replay the page says %q", flash)
		}
		screenshot(t, tab, "replayed")

		do("user lookup again", chromedp.Navigate(srv.URL+"/console/users?property=arcade&user=sub2"), chromedp.WaitVisible(chromedp.ID("balance")))
		if after := text(`#balance td[data-figure="pending"]`); before != "0 COIN" || after != "0.672 COIN" {
			t.Fatalf("sub2's pending before the replay %q, after %q; want 0 COIN then 0.672 COIN", before, after)
		}

		// The hostile id typed into the lookup form is shown as text too.
		do("user lookup, hostile id", chromedp.Navigate(srv.URL+"/console/users"), chromedp.WaitVisible(chromedp.ID("user")),
			chromedp.SendKeys(chromedp.ID("user"), evil))
		submit("look up the hostile id", "#lookup")
		screenshot(t, tab, "hostile-user")
		if shown := text("#balance-user"); shown != evil || count("img") != 0 {
			t.Fatalf("lookup shows %q with %d <img> elements; want %q as text", shown, count("img"), evil)
		}
		if n := dialogs.Load(); n != 0 {
			t.Fatalf("%d JavaScript dialogs opened: markup from a user id ran", n)
		}
	})
}

// strconvQuote quotes s as a JavaScript string literal (JSON's is one).
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
