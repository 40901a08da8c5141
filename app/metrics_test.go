package app_test

import (
	"strings"
	"testing"

	"tally/app"
	"tally/store"
	"tally/store/storetest"
)

// /metrics says which build is running, from the build info the app is given.
func TestMetricsBuildInfo(t *testing.T) {
	db := storetest.Open(t, store.SQLite, nil)
	a := app.New(db, app.Options{Properties: []app.Property{arcade()}, AdminToken: adminTok,
		Build: app.BuildInfo{Version: "v9.8.7", Commit: "c0ffee", GoVersion: "go1.99.1"}})
	t.Cleanup(a.Close)
	e := &env{t: t, db: db, app: a, h: a.Handler()}
	m := e.do("GET", "/metrics", "")
	if want := `tally_build_info{commit="c0ffee",goversion="go1.99.1",version="v9.8.7"} 1`; !strings.Contains(m.Raw, want) {
		t.Fatalf("metrics lack %s:\n%s", want, m.Raw)
	}
}
