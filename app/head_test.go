package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"tally/store"
)

// HEAD answers as GET does, without the body: load balancers and monitors probe with it,
// and it was a 405.
func TestHeadIsGetWithoutTheBody(t *testing.T) {
	e := newEnv(t, store.SQLite)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	for path, auth := range map[string]string{
		"/healthz": "",
		"/readyz":  "",
		"/v1/properties/arcade/users/sub1/balance": apiKey,
	} {
		req, err := http.NewRequest(http.MethodHead, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %d %q %q, want 200, no body, GET's headers", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	// A route that takes no GET takes no HEAD either.
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/v1/hooks/arcade/gamezop/spp", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD on a POST route: %d, want 405", res.StatusCode)
	}
}
