package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"tally/postbacks"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// A user who edits the game URL credits nobody: with sub tokens required, an SPP or a
// score whose sub is a forged token is kept quarantined (the provider is authentic) and
// credits no one; a valid token credits the user inside it, not the token; an event
// kept because the secret was wrong is credited once when replayed after the fix.
func TestSignedSubTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		secret := []byte("the-real-secret-0123")
		signer := postbacks.SubTokens{Secrets: [][]byte{secret}}
		good, err := signer.Sign("alice", t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		forged := "mallory" + strings.TrimPrefix(good, "alice")
		wrongSecret, _ := postbacks.SubTokens{Secrets: [][]byte{[]byte("a-stale-secret-0123")}}.Sign("bob", t0.Add(24*time.Hour))

		e := base.withProperty(func(p *appProperty) {
			p.SubTokens = &postbacks.SubTokens{Secrets: [][]byte{secret}, Required: true, MaxAge: time.Hour}
		})
		spp := func(user, session string) answer {
			body := strings.Replace(strings.Replace(sppBody, `"user-id":"sub1"`, `"user-id":"`+user+`"`, 1),
				"b48a8368-a369-49a4-b427-2d5891ef3763", session, 1)
			a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
			if a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("delivery for %s: %d %s", user, a.Code, a.Raw)
			}
			return a
		}
		ok := spp(good, "s-good")
		if ev := e.event(ok.Body["event_id"]); ev.Body["status"] != "applied" {
			t.Fatalf("valid token: %s", ev.Raw)
		}
		e.wantBalance("arcade", "alice", apiKey, "0", "0.672")
		// The token itself is no wallet.
		if b := e.balance("arcade", strings.ReplaceAll(good, ".", "%2E"), apiKey); b.Body["lifetime_earned"] != "0" {
			t.Fatalf("the token got a wallet: %s", b.Raw)
		}

		for _, c := range []struct{ sub, reason string }{
			{forged, "signature does not verify"},
			{"mallory", "a signed token is required"},
			{wrongSecret, "signature does not verify"},
		} {
			a := spp(c.sub, "s-"+c.sub[:4]+"-"+c.reason[:5])
			ev := e.event(a.Body["event_id"])
			if ev.Body["status"] != "quarantined" || !strings.Contains(ev.Body["reason"].(string), c.reason) {
				t.Fatalf("sub %q: %s", c.sub, ev.Raw)
			}
		}
		score := strings.Replace(scoreBody, `"subId":"sub1"`, `"subId":"`+forged+`"`, 1)
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", score, "api-key", scoresKey); a.Code != 200 ||
			e.event(a.Body["event_id"]).Body["status"] != "quarantined" {
			t.Fatalf("forged score: %d %s", a.Code, a.Raw)
		}
		for _, u := range []string{"mallory", "bob"} {
			e.wantBalance("arcade", u, apiKey, "0", "0")
		}

		// The operator adds the stale secret (rotation) and replays: bob's session is
		// credited once; the forgeries stay kept.
		fixed := base.withProperty(func(p *appProperty) {
			p.SubTokens = &postbacks.SubTokens{Secrets: [][]byte{secret, []byte("a-stale-secret-0123")}, Required: true, MaxAge: time.Hour}
		})
		for range 2 {
			a := fixed.do("GET", "/v1/admin/events?status=quarantined", "", "Authorization", "Bearer "+adminTok)
			for _, ev := range a.Body["data"].([]any) {
				fixed.do("POST", "/v1/admin/events/"+ev.(map[string]any)["id"].(string)+"/replay", "", "Authorization", "Bearer "+adminTok)
			}
		}
		fixed.wantBalance("arcade", "bob", apiKey, "0", "0.672")
		fixed.wantBalance("arcade", "mallory", apiKey, "0", "0")
		left := fixed.do("GET", "/v1/admin/events?status=quarantined", "", "Authorization", "Bearer "+adminTok)
		if n := len(left.Body["data"].([]any)); n != 3 {
			t.Fatalf("%d still quarantined, want the 3 forgeries: %s", n, left.Raw)
		}
		fixed.checkInvariants()
	})
}

// A valid token whose signature happens to spell an XLSX escape (_xDb1C_; one token in
// twenty million) credits its user: the receivers held the whole sub to the user id
// rule and refused it with a 400, and Gamezop drops a postback answered 400. Without
// sub tokens the whole sub is the wallet, and such a sub is still refused.
func TestSubTokenWhoseSignatureSpellsAnEscape(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		secret := []byte("the-real-secret-0123")
		// Found by trying users in turn: its signature holds "_xDb1C_".
		tok, err := postbacks.SubTokens{Secrets: [][]byte{secret}}.Sign("player-11990902", t0.Add(24*time.Hour))
		if err != nil || !strings.Contains(tok, "_xDb1C_") {
			t.Fatalf("token %q, %v; want one whose signature holds _xDb1C_", tok, err)
		}
		body := strings.Replace(sppBody, `"user-id":"sub1"`, `"user-id":"`+tok+`"`, 1)
		plain := base.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
		if plain.Code != 400 || problemField(plain) != "user-id" {
			t.Fatalf("without sub tokens: %d %s, want 400 naming user-id", plain.Code, plain.Raw)
		}
		e := base.withProperty(func(p *appProperty) {
			p.SubTokens = &postbacks.SubTokens{Secrets: [][]byte{secret}, Required: true, MaxAge: time.Hour}
		})
		a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", body, "Authorization", "Bearer "+sppToken)
		if a.Code != 200 {
			t.Fatalf("with sub tokens: %d %s", a.Code, a.Raw)
		}
		if ev := e.event(a.Body["event_id"]); ev.Body["status"] != "applied" {
			t.Fatalf("the event: %s", ev.Raw)
		}
		e.wantBalance("arcade", "player-11990902", apiKey, "0", "0.672")
		score := strings.Replace(scoreBody, `"subId":"sub1"`, `"subId":"`+tok+`"`, 1)
		if s := e.do("POST", "/v1/hooks/arcade/gamezop/scores", score, "api-key", scoresKey); s.Code != 200 {
			t.Fatalf("score with the token: %d %s", s.Code, s.Raw)
		}
		// Received with sub tokens, applied after they were removed: the whole sub is
		// no wallet; it is kept.
		late := strings.Replace(body, "b48a8368-a369-49a4-b427-2d5891ef3763", "s-late", 1)
		r, err := e.app.Receive(context.Background(), "arcade", rewards.SourceGamezopSPP, http.Header{"Authorization": {"Bearer " + sppToken}},
			[]byte(late))
		if err != nil {
			t.Fatal(err)
		}
		base.drain()
		if ev := base.event(r.EventID); ev.Body["status"] != "quarantined" ||
			!strings.Contains(ev.Body["reason"].(string), "taken whole as the user id without sub_tokens") {
			t.Fatalf("applied without sub tokens: %s", ev.Raw)
		}
		// The first session and the score's target (snake-500); not the kept session.
		base.wantBalance("arcade", "player-11990902", apiKey, "0", "50.672")
	})
}
