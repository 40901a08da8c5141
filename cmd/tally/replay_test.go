package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tally/rewards"
	"tally/store/storetest"
)

// The quarantine workflow an operator follows: an SPP for another Gamezop property-id is
// kept (not credited); the config is fixed; `tally replay` applies it exactly once.
func TestReplayAfterConfigFix(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "tally.db")
	src, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "tally.yaml")
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": dbURL})
	ctx := context.Background()

	// Receive through the real app wired by cmd, with the example config.
	if err := os.WriteFile(cfgPath, src, 0o600); err != nil {
		t.Fatal(err)
	}
	migrate(t, cfgPath, genv)
	_, _, a, done, err := openApp(ctx, cfgPath, genv, newLogger(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	postSPP(t, a.Handler(), "s-other", "5678")
	// The applier (of tally serve) applies it: quarantined, since the property-id differs.
	if n, err := a.Drain(ctx); n != 1 || err != nil {
		t.Fatalf("drain: %d %v", n, err)
	}
	done()

	// Replaying with the unchanged config keeps it quarantined.
	var out bytes.Buffer
	if err := run(ctx, []string{"replay", "--config", cfgPath}, genv, &out, &out); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "0 applied, 1 still quarantined") {
		t.Fatalf("replay before the fix:\n%s", out.String())
	}

	// Fix the config, replay twice: applied once, then nothing left.
	fixed := bytes.Replace(src, []byte(`gamezop_property_id: "1234"`), []byte(`gamezop_property_id: "5678"`), 1)
	if bytes.Equal(fixed, src) {
		t.Fatal("example config has no gamezop_property_id \"1234\" to change")
	}
	if err := os.WriteFile(cfgPath, fixed, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"replayed 1: 1 applied", "replayed 0: 0 applied"} {
		out.Reset()
		if err := run(ctx, []string{"replay", "--config", cfgPath}, genv, &out, &out); err != nil {
			t.Fatalf("replay %d: %v\n%s", i, err, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("replay %d printed:\n%s\nwant %q", i, out.String(), want)
		}
	}
	db := storetest.OpenURL(t, dbURL, nil)
	b, err := db.Balance(ctx, "arcade", "sub1")
	if err != nil || !b.Pending.Equal(b.LifetimeEarned) || b.Pending.String() != "0.672" {
		t.Fatalf("balance after replay: %+v %v", b, err)
	}
	// Each replay of the event is in the audit log as the command line's, with why it had
	// been quarantined (the event's row now holds the replay's outcome); the replay that
	// found nothing left is not.
	audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10})
	if err != nil || len(audit) != 2 || audit[0].Actor != "cli" || audit[0].Action != rewards.AuditReplay ||
		!strings.HasPrefix(audit[0].Detail, "applied (quarantined before: property-id ") || !strings.HasPrefix(audit[1].Detail, "quarantined: ") {
		t.Fatalf("audit after the replays: %+v %v", audit, err)
	}
}

// An unknown --property is an error naming it, found before the database is opened.
func TestReplayUnknownProperty(t *testing.T) {
	dir := t.TempDir()
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": "sqlite://" + filepath.Join(dir, "data", "tally.db")})
	var out bytes.Buffer
	err := run(context.Background(), []string{"replay", "--config", "../../tally.example.yaml", "--property", "nope"}, genv, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("replay --property nope: %v\n%s", err, out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || out.Len() != 0 {
		t.Fatalf("replay went on: %v, printed %q", entries, out.String())
	}
	// So is a --status a replay does not take (it opened and migrated the database, then
	// printed "replayed 0").
	out.Reset()
	err = run(context.Background(), []string{"replay", "--config", "../../tally.example.yaml", "--status", "applied"}, genv, &out, &out)
	if !errors.Is(err, errUsage) || !strings.Contains(out.String(), "--status must be quarantined") {
		t.Fatalf("replay --status applied: %v, printed %q", err, out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("replay --status applied opened the database: %v", entries)
	}
	migrate(t, "../../tally.example.yaml", genv)
	if err := run(context.Background(), []string{"replay", "--config", "../../tally.example.yaml", "--property", "arcade"}, genv, &out, &out); err != nil {
		t.Fatalf("replay --property arcade: %v\n%s", err, out.String())
	}
}

// `tally replay --property P` applies P's recorded events only. It drained every
// property's, under the config of the machine it ran on, outside the property named.
func TestReplayOfOnePropertyAppliesOnlyItsEvents(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "tally.db")
	src, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(src) + otherProperty
	cfgPath := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": dbURL})
	ctx := context.Background()
	migrate(t, cfgPath, genv)
	_, _, a, done, err := openApp(ctx, cfgPath, genv, newLogger(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	postSPP(t, a.Handler(), "s-1", "1234") // recorded; no applier runs
	done()
	var out bytes.Buffer
	if err := run(ctx, []string{"replay", "--property", "other", "--config", cfgPath}, genv, &out, &out); err != nil ||
		!strings.Contains(out.String(), "applied 0 recorded events") {
		t.Fatalf("replay of other: %v\n%s", err, out.String())
	}
	db := storetest.OpenURL(t, dbURL, nil)
	if b, err := db.Balance(ctx, "arcade", "sub1"); err != nil || !b.Pending.IsZero() {
		t.Fatalf("replay --property other applied arcade's event: %+v %v", b, err)
	}
	out.Reset()
	if err := run(ctx, []string{"replay", "--property", "arcade", "--config", cfgPath}, genv, &out, &out); err != nil ||
		!strings.Contains(out.String(), "applied 1 recorded events") {
		t.Fatalf("replay of arcade: %v\n%s", err, out.String())
	}
}

// `tally replay` on a machine whose config lists fewer properties than the servers'
// (finance's, say) leaves the others' events as they are. It claimed them all, wrote
// "property … is not configured" over the reasons they were quarantined for, and
// quarantined their recorded events the same way.
func TestReplayLeavesPropertiesItsConfigLacksAlone(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "tally.db")
	src, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	both, only := filepath.Join(dir, "both.yaml"), filepath.Join(dir, "other.yaml")
	head, _, ok := strings.Cut(string(src), "properties:\n")
	if !ok {
		t.Fatal("the example config has no properties: line")
	}
	if err := os.WriteFile(both, append(src, otherProperty...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(only, []byte(head+"properties:\n"+otherProperty), 0o600); err != nil {
		t.Fatal(err)
	}
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": dbURL})
	ctx := context.Background()
	migrate(t, both, genv)
	_, _, a, done, err := openApp(ctx, both, genv, newLogger(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	kept := postSPP(t, a.Handler(), "s-other", "5678") // another Gamezop property-id: quarantined
	if n, err := a.Drain(ctx); n != 1 || err != nil {
		t.Fatalf("drain: %d %v", n, err)
	}
	recorded := postSPP(t, a.Handler(), "s-1", "1234") // no applier runs after it
	done()
	db := storetest.OpenURL(t, dbURL, nil)
	before, _, err := db.Event(ctx, kept)
	if err != nil || before.Status != rewards.StatusQuarantined || before.Reason == "" {
		t.Fatalf("before the replay: %+v %v", before, err)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"replay", "--config", only}, genv, &out, &out); err != nil ||
		!strings.Contains(out.String(), "replayed 0: 0 applied") || !strings.Contains(out.String(), "applied 0 recorded events") {
		t.Fatalf("replay under a config without arcade: %v\n%s", err, out.String())
	}
	if ev, _, err := db.Event(ctx, kept); err != nil || ev.Status != rewards.StatusQuarantined || ev.Reason != before.Reason {
		t.Fatalf("arcade's quarantined event after the replay: %+v %v (its reason was %q)", ev, err, before.Reason)
	}
	if ev, _, err := db.Event(ctx, recorded); err != nil || ev.Status != rewards.StatusRecorded {
		t.Fatalf("arcade's recorded event after the replay: %+v %v", ev, err)
	}
	// Under the servers' config the same command applies the recorded one.
	out.Reset()
	if err := run(ctx, []string{"replay", "--config", both}, genv, &out, &out); err != nil ||
		!strings.Contains(out.String(), "replayed 1: 0 applied, 1 still quarantined") || !strings.Contains(out.String(), "applied 1 recorded events") {
		t.Fatalf("replay under both: %v\n%s", err, out.String())
	}
}

// otherProperty is a second property, appended to the example config's properties.
const otherProperty = "  - id: other\n    currency: PTS\n    api_keys: [other-key-0123456789]\n" +
	"    sources: { gamepush: { secret: other-gamepush-secret } }\n"

// postSPP delivers a Gamezop SPP of sub1 to arcade through h and returns its event id;
// anything but "accepted" fails the test.
func postSPP(t *testing.T, h http.Handler, session, propertyID string) int64 {
	t.Helper()
	body := `{"user-id":"sub1","session-id":"` + session + `","country":"IN","count-of-ads-viewed":1,` +
		`"your-estimated-revenue":"0.000012","session-duration":163,"property-id":"` + propertyID + `"}`
	req := httptest.NewRequest("POST", "/v1/hooks/arcade/gamezop/spp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+env["SPP_TOKEN"])
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var ans struct {
		Status  string      `json:"status"`
		EventID json.Number `json:"event_id"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &ans)
	id, err := ans.EventID.Int64()
	if rec.Code != http.StatusOK || ans.Status != "accepted" || err != nil {
		t.Fatalf("delivery: %d %s", rec.Code, rec.Body)
	}
	return id
}
