package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The finance workflow from the command line: import booked revenue from a CSV file (and
// fetch it from Gamezop's API), look at the variance, run the true-up once.
func TestTrueUpCommands(t *testing.T) {
	dir := t.TempDir()
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gz-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`[{"date":"2026-10-02","property-id":"1234","revenue":"0.25"}]`))
	}))
	defer fake.Close()
	src, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(src), "    currency: COIN\n",
		"    currency: COIN\n    gamezop_reports: { url: \""+fake.URL+"\", bearer_token: gz-token }\n", 1)
	cfgPath := filepath.Join(dir, "tally.yaml")
	csvPath := filepath.Join(dir, "booked.csv")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(csvPath, []byte("date,revenue_usd\n2026-10-01,1.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": "sqlite://" + filepath.Join(dir, "tally.db")})
	tally := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append(args, "--config", cfgPath), genv, &out, &out); err != nil {
			t.Fatalf("tally %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	migrate(t, cfgPath, genv)
	// A property not in the config is named (the error said only "unknown property").
	if err := run(context.Background(), []string{"trueup", "show", "--property", "nope", "--from", "2026-10-01", "--to", "2026-10-03", "--config", cfgPath},
		genv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown property "nope"`) {
		t.Fatalf("trueup show of an unknown property: %v", err)
	}
	if out := tally("trueup", "import", csvPath, "--property", "arcade"); !strings.Contains(out, "1 days: 1 new") {
		t.Fatalf("import: %s", out)
	}
	// The file between flags: the ones after it are read too (the same amount again).
	if out := tally("trueup", "import", "--property", "arcade", csvPath, "--correction"); !strings.Contains(out, "1 days: 0 new") {
		t.Fatalf("import with the file between flags: %s", out)
	}
	if out := tally("trueup", "fetch", "--property", "arcade", "--from", "2026-10-02", "--to", "2026-10-02"); !strings.Contains(out, "fetched 1 days: 1 new") {
		t.Fatalf("fetch: %s", out)
	}
	out := tally("trueup", "show", "--property", "arcade", "--from", "2026-10-01", "--to", "2026-10-03")
	for _, want := range []string{"2026-10-01", "1.5", "2026-10-02", "0.25", "recommended none"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
	first := tally("trueup", "run", "--property", "arcade", "--from", "2026-10-01", "--to", "2026-10-02", "--key", "oct")
	if !strings.Contains(first, "true-up 1 of 2026-10-01..2026-10-02") {
		t.Fatalf("run: %s", first)
	}
	if again := tally("trueup", "run", "--property", "arcade", "--from", "2026-10-01", "--to", "2026-10-02", "--key", "oct"); !strings.Contains(again, "already run under this key") {
		t.Fatalf("run again: %s", again)
	}
	// The period had no session, so the run compared nothing and its days stay open:
	// a session replayed into them later is released by the run that takes them then.
	if again := tally("trueup", "run", "--property", "arcade", "--from", "2026-10-02", "--to", "2026-10-02", "--key", "oct-2"); !strings.Contains(again, "true-up 2 of 2026-10-02..2026-10-02") {
		t.Fatalf("a day of a run with no estimate, again: %s", again)
	}
}
