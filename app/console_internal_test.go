package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// signOuts is a store that knows only the console's sign-outs; anything else it is
// asked panics (its Store is nil), which the app answers 500.
type signOuts struct {
	Store
	ended map[string]bool
}

func (s signOuts) ConsoleSessionEnded(_ context.Context, nonce string) (bool, error) {
	return s.ended[nonce], nil
}

// A session cookie past its expiry, or signed out, is no session, although its
// signature is good: the console sends the browser to sign in again and refuses its
// actions.
func TestConsoleExpiredSession(t *testing.T) {
	a := New(signOuts{ended: map[string]bool{"gone": true}}, Options{Admins: []Admin{{Name: "alice", Token: "alice-token"}}})
	t.Cleanup(a.Close)
	h := a.routes()
	now := time.Now()
	for _, c := range []struct {
		name   string
		expiry time.Time
		nonce  string
		get    int // a live session gets past auth and fails on the store, which has no pages
		post   int
	}{
		{"expired a second ago", now.Add(-time.Second), "n", http.StatusSeeOther, http.StatusUnauthorized},
		{"signed out", now.Add(time.Hour), "gone", http.StatusSeeOther, http.StatusUnauthorized},
		{"live", now.Add(time.Hour), "n", http.StatusInternalServerError, http.StatusForbidden}, // no CSRF token: 403
	} {
		v := signSession(session{admin: "alice", expiry: c.expiry, nonce: c.nonce}, "alice-token")
		for method, want := range map[string]int{"GET": c.get, "POST": c.post} {
			path := "/console"
			if method == "POST" {
				path = "/console/settlements"
			}
			req := httptest.NewRequest(method, path, nil)
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				t.Fatalf("%s: %s %s = %d, want %d", c.name, method, path, rec.Code, want)
			}
		}
	}
}
