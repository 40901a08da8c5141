package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A session cookie past its expiry is no session, although its signature is good: the
// console sends the browser to sign in again and refuses its actions.
func TestConsoleExpiredSession(t *testing.T) {
	a := New(nil, Options{Admins: []Admin{{Name: "alice", Token: "alice-token"}}})
	t.Cleanup(a.Close)
	h := a.routes()
	now := time.Now()
	for _, c := range []struct {
		name   string
		expiry time.Time
		get    int // an app without a store: a live session gets past auth and fails on the store
		post   int
	}{
		{"expired a second ago", now.Add(-time.Second), http.StatusSeeOther, http.StatusUnauthorized},
		{"live", now.Add(time.Hour), http.StatusInternalServerError, http.StatusForbidden}, // no CSRF token: 403
	} {
		v := signSession(session{admin: "alice", expiry: c.expiry, nonce: "n"}, "alice-token")
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
