package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tournamentConfig is a property that runs a tournament from config alone: one window
// around now, so scores sent now count.
func tournamentConfig(t *testing.T, now time.Time) string {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`listen: "127.0.0.1:0"
database: { url: "sqlite://%s" }
admin_token: %q
properties:
  - id: arcade
    currency: COIN
    api_keys: [cup-publisher-key]
    sources:
      gamezop_scores: { api_key: "" }
    tournaments:
      - id: cup
        game: NyM_JGWcx
        start: %q
        end: %q
        grace: 5m
        prizes:
          - { ranks: "1", amount: "10" }
          - { ranks: "2-3", amount: "5" }
`, filepath.Join(dir, "tally.db"), env["TALLY_ADMIN_TOKEN"], now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	path := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

// `tally check` explains the tournament; `tally serve` keeps its live leaderboard from
// the scores it receives, with nothing configured but the YAML.
func TestTournamentFromConfigAlone(t *testing.T) {
	now := time.Now().UTC()
	cfg := tournamentConfig(t, now)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", cfg}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tournament cup [version ") || !strings.Contains(out.String(), "ranks 2 to 3: 5 COIN each") {
		t.Fatalf("tally check:\n%s", out.String())
	}

	base, stop, _ := startServe(t, cfg, noEnv)
	var ids []string
	for i, s := range []struct {
		user  string
		score int
	}{{"ann", 300}, {"bob", 700}, {"cat", 500}} {
		body := fmt.Sprintf(`{"gameCode":"NyM_JGWcx","sessionId":"s%d","gamePlayId":"p%d","timestamp":%d,"score":%d,"subId":"%s","state":"over"}`,
			i, i, now.Unix(), s.score, s.user)
		resp, err := http.Post(base+"/v1/hooks/arcade/gamezop/scores", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var ans map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("score: %d %v", resp.StatusCode, ans)
		}
		ids = append(ids, ans["event_id"].(string))
	}
	for _, id := range ids {
		waitApplied(t, base, id)
	}
	req, _ := http.NewRequest("GET", base+"/v1/properties/arcade/tournaments/cup/leaderboard?user=cat", nil)
	req.Header.Set("Authorization", "Bearer cup-publisher-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lb struct {
		Window struct{ State string }
		Data   []struct {
			Rank  int
			User  string
			Score string
		}
		UserRow struct{ Rank int } `json:"user_row"`
	}
	err = json.NewDecoder(resp.Body).Decode(&lb)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("leaderboard: %d %v", resp.StatusCode, err)
	}
	got := fmt.Sprintf("%s %v %d", lb.Window.State, lb.Data, lb.UserRow.Rank)
	if got != "open [{1 bob 700} {2 cat 500} {3 ann 300}] 2" {
		t.Fatalf("leaderboard %s", got)
	}
	stop()
}
