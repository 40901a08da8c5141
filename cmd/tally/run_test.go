package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/store"
	"tally/store/storetest"
)

var env = map[string]string{
	"TALLY_ADMIN_TOKEN": "e2e-admin-token",
	"ARCADE_API_KEY":    "e2e-arcade-key",
	"SPP_TOKEN":         "e2e-spp-token",
	"SCORES_KEY":        "e2e-scores-key",
	"GP_SECRET":         "e2e-gp-secret",
	"TS_SECRET":         "e2e-ts-secret",
	"TALLY_LISTEN":      "127.0.0.1:0",
}

func getenv(extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return env[k]
	}
}

// lineWatcher collects a process's log lines and reports the listen address.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "listening" {
			w.once.Do(func() { w.addr <- m["addr"].(string) })
		}
	}
	return len(p), nil
}

// TestServeEndToEnd starts the real binary's run() on port 0 with the example config,
// posts one documented event of each provider twice, reads the balance, and shuts down.
func TestServeEndToEnd(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		cfg, err := filepath.Abs("../../tally.example.yaml")
		if err != nil {
			t.Fatal(err)
		}
		genv := getenv(map[string]string{"TALLY_DATABASE_URL": storetest.URL(t, d)})
		base, stop, logs := startServe(t, cfg, genv)

		spp := `{"user-id":"sub1","session-id":"b48a8368-a369-49a4-b427-2d5891ef3763","country":"IN","count-of-ads-viewed":1,"your-estimated-revenue":"0.000012","session-duration":163,"property-id":"1234"}`
		score := `{"gameCode":"NyM_JGWcx","sessionId":"s1","gamePlayId":"p1","timestamp":1732269000123,"score":512,"leaderboardId":"lb1","subId":"sub1","country":"IN","duration":61000,"state":"over"}`
		gpPayload := base64.StdEncoding.EncodeToString([]byte(`{"event":"GivePlayerReward","player":{"id":1820283},"result":{"__typename":"PlayerReward","countAccepted":0,"countTotal":1,"rewardId":685},"time":"2024-04-26T11:34:23.415923998Z"}`))
		gpSum := sha256.Sum256([]byte(gpPayload + "_" + env["GP_SECRET"]))
		gp := gpPayload + "." + base64.StdEncoding.EncodeToString(gpSum[:])
		ts := `{"id":"wh_1234567890abcdef","type":"achievement.unlocked","created":"2025-06-09T10:30:00Z","data":{"participant_id":"pt_555666777","achievement_id":"first-win"}}`
		mac := hmac.New(sha256.New, []byte(env["TS_SECRET"]))
		mac.Write([]byte(ts))
		posts := []struct{ path, body, hk, hv string }{
			{"/v1/hooks/arcade/gamezop/spp", spp, "Authorization", "Bearer " + env["SPP_TOKEN"]},
			{"/v1/hooks/arcade/gamezop/scores", score, "api-key", env["SCORES_KEY"]},
			{"/v1/hooks/arcade/gamepush", gp, "", ""},
			{"/v1/hooks/arcade/trackscore", ts, "X-TrackScore-Signature", "sha256=" + hex.EncodeToString(mac.Sum(nil))},
		}
		var ids []string
		for _, p := range posts {
			for i, want := range []string{"accepted", "duplicate"} {
				req, _ := http.NewRequest("POST", base+p.path, strings.NewReader(p.body))
				if p.hk != "" {
					req.Header.Set(p.hk, p.hv)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var ans map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				if resp.StatusCode != 200 || ans["status"] != want {
					t.Fatalf("%s delivery %d: %d %v, want %s", p.path, i+1, resp.StatusCode, ans, want)
				}
				if i == 0 {
					ids = append(ids, ans["event_id"].(string))
				}
			}
		}
		// The 200 means recorded; the applier applies each event shortly after.
		for _, id := range ids {
			waitApplied(t, base, id)
		}
		for user, want := range map[string]string{"sub1": "50.672", "1820283": "100", "pt_555666777": "25"} {
			req, _ := http.NewRequest("GET", base+"/v1/properties/arcade/users/"+user+"/balance", nil)
			req.Header.Set("Authorization", "Bearer "+env["ARCADE_API_KEY"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var bal map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&bal)
			resp.Body.Close()
			if bal["pending"] != want {
				t.Fatalf("balance of %s = %v, want pending %s", user, bal, want)
			}
		}
		// serve refreshes the operator gauges on its own: the property's series appear.
		waitMetric(t, base, `tally_quarantined_events{property="arcade"}`)
		stop()
		for _, secret := range []string{env["SPP_TOKEN"], env["GP_SECRET"], env["TS_SECRET"], env["ARCADE_API_KEY"], env["TALLY_ADMIN_TOKEN"]} {
			if strings.Contains(logs.buf.String(), secret) {
				t.Fatalf("a secret appears in the logs")
			}
		}
		// The tests' admin token is short: serve warns of it as it starts.
		if !strings.Contains(logs.buf.String(), `"level":"WARN","msg":"config: weak credential: admin_token is 15 characters`) {
			t.Errorf("serve did not warn of a 15-character admin token:\n%s", logs.buf.String())
		}
	})
}

// startServe runs `tally serve --config cfg` on the listen address the config gives (the
// tests' configs say :0) and returns its base URL, a stop that cancels it and waits for
// a clean exit, and its log. Waits are bounded so a hung serve fails the test.
func startServe(t *testing.T, cfg string, genv func(string) string) (base string, stop func(), logs *lineWatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &lineWatcher{addr: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, genv, io.Discard, logs) }()
	select {
	case a := <-logs.addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve exited early: %v\n%s", err, logs.buf.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not start:\n%s", logs.buf.String())
	}
	stop = func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve returned %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Fatal("serve did not stop after cancel")
		}
	}
	return base, stop, logs
}

// waitApplied polls the admin event endpoint until the event has left the inbox's
// recorded state (30 s at most), as an operator would.
func waitApplied(t *testing.T, base, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequest("GET", base+"/v1/admin/events/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+env["TALLY_ADMIN_TOKEN"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		switch {
		case ev["status"] == "applied":
			return
		case ev["status"] != "recorded":
			t.Fatalf("event %s: %d %v", id, resp.StatusCode, ev)
		case time.Now().After(deadline):
			t.Fatalf("event %s still recorded after 30 s", id)
		}
		<-tick.C
	}
}

func TestCheck(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", "../../tally.example.yaml"}, getenv(nil), &out, &errb); err != nil {
		t.Fatalf("check: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "snake-500") || strings.Contains(out.String(), env["GP_SECRET"]) {
		t.Fatalf("check output:\n%s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	src, _ := os.ReadFile("../../tally.example.yaml")
	_ = os.WriteFile(bad, bytes.Replace(src, []byte(`share: "0.7"`), []byte(`share: "1.5"`), 1), 0o600)
	err := run(context.Background(), []string{"check", "--config", bad}, getenv(nil), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "properties[0].revenue.share") {
		t.Fatalf("check of a bad config: %v", err)
	}
	err = run(context.Background(), []string{"check", "--config", "../../tally.example.yaml"}, getenv(map[string]string{"GP_SECRET": ""}), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "GP_SECRET") {
		t.Fatalf("check with an unset variable: %v", err)
	}
}

// A config error says "config <file>:" once, then the problems; an achievement for a
// source the property does not configure, or a reward finer than the scale, is refused
// naming its key.
func TestCheckErrors(t *testing.T) {
	src, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, old, new string) string {
		t.Helper()
		if !bytes.Contains(src, []byte(old)) {
			t.Fatalf("the example has no %q", old)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Replace(src, []byte(old), []byte(new), 1), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noTrackScore := write("no-trackscore.yaml", `trackscore:     { secret: "${TS_SECRET}" }`, ``)
	fine := write("fine.yaml", `scale: 0`, `scale: 2`)
	tooFine := write("too-fine.yaml", `reward: "50"`, `reward: "5.255"`)
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		file string
		env  map[string]string
		want string // the whole first line of the error
	}{
		{noTrackScore, nil, "config " + noTrackScore + ": properties[0].achievements[1].source: trackscore is not configured under properties[0].sources; add it there or remove this achievement"},
		{tooFine, nil, "config " + tooFine + `: properties[0].score_targets[0].reward: must have at most 0 decimal places (the property's scale), got "5.255"`},
		{fine, map[string]string{"GP_SECRET": "", "TS_SECRET": ""}, "config " + fine + ": 2 problems:"},
		{missing, nil, "config: open " + missing + ": no such file or directory"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"check", "--config", tc.file}, getenv(tc.env), &out, &errb)
		if err == nil {
			t.Errorf("%s: accepted", tc.file)
			continue
		}
		if first, _, _ := strings.Cut(err.Error(), "\n"); first != tc.want {
			t.Errorf("check %s:\n%v\nwant first line\n%s", tc.file, err, tc.want)
		}
		if n := strings.Count(err.Error(), "config ") + strings.Count(err.Error(), "config:"); n != 1 {
			t.Errorf("%q has the config prefix %d times", err, n)
		}
	}
	if err := run(context.Background(), []string{"check", "--config", fine}, getenv(nil), io.Discard, io.Discard); err != nil {
		t.Errorf("scale 2 with whole rewards: %v", err)
	}
}

// waitMetric polls /metrics until a line starts with series (30 s at most).
func waitMetric(t *testing.T, base, series string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, series+" ") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on /metrics after 30 s", series)
		}
		<-tick.C
	}
}

// Only serve reads from the replica: with it down, the commands that work on the
// primary still run (they all failed pinging it).
func TestCommandsRunWithTheReplicaDown(t *testing.T) {
	cfg, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u := storetest.URL(t, store.Postgres)
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": u,
		"TALLY_DATABASE_READ_URL": "postgres://postgres@127.0.0.1:1/replica?sslmode=disable&connect_timeout=5"})
	from, to := time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	for _, args := range [][]string{{"migrate"}, {"settle"}, {"export", "payouts", "--from", from, "--to", to}, {"replay"}} {
		var out bytes.Buffer
		if err := run(context.Background(), append(args, "--config", cfg), genv, &out, &out); err != nil {
			t.Errorf("%v with the replica down: %v\n%s", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", cfg}, genv, &out, &out); err != nil ||
		strings.Contains(out.String(), "not checked") {
		t.Errorf("check with the replica down: %v\n%s", err, out.String())
	}
}

// TestServeAcceptsPreviousProviderCredentials: during a rotation, `tally serve` takes a
// postback carrying the provider's previous token, api key or signing secret from the
// config, and refuses one it never listed.
func TestServeAcceptsPreviousProviderCredentials(t *testing.T) {
	example, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(example)
	for old, rotated := range map[string]string{
		`bearer_token: "${SPP_TOKEN}" }`: `bearer_token: "${SPP_TOKEN}", previous_bearer_tokens: ["old-spp"] }`,
		`api_key: "${SCORES_KEY}" }`:     `api_key: "${SCORES_KEY}", previous_api_keys: ["old-scores"] }`,
		`secret: "${TS_SECRET}" }`:       `secret: "${TS_SECRET}", previous_secrets: ["old-ts"] }`,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("the example no longer has %s", old)
		}
		text = strings.Replace(text, old, rotated, 1)
	}
	cfg := filepath.Join(t.TempDir(), "tally.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop, _ := startServe(t, cfg, getenv(map[string]string{"TALLY_DATABASE_URL": storetest.URL(t, store.SQLite)}))
	defer stop()

	ts := `{"id":"wh_rotated","type":"achievement.unlocked","created":"2025-06-09T10:30:00Z","data":{"participant_id":"pt_1","achievement_id":"first-win"}}`
	tsSig := func(secret string) string {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts))
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	for _, p := range []struct {
		path, body, header, old, never string
	}{
		{"/v1/hooks/arcade/gamezop/spp",
			`{"user-id":"sub1","session-id":"9d0b3a4e-7c55-4f0e-9a43-1f7c5e2d8b61","country":"IN","count-of-ads-viewed":1,"your-estimated-revenue":"0.000012","session-duration":163,"property-id":"1234"}`,
			"Authorization", "Bearer old-spp", "Bearer older-spp"},
		{"/v1/hooks/arcade/gamezop/scores",
			`{"gameCode":"NyM_JGWcx","sessionId":"s9","gamePlayId":"p9","timestamp":1732269000123,"score":12,"leaderboardId":"lb1","subId":"sub1","country":"IN","duration":61000,"state":"over"}`,
			"api-key", "old-scores", "older-scores"},
		{"/v1/hooks/arcade/trackscore", ts, "X-TrackScore-Signature", tsSig("old-ts"), tsSig("older-ts")},
	} {
		for _, c := range []struct {
			value string
			want  int
		}{{p.never, 401}, {p.old, 200}} {
			req, _ := http.NewRequest("POST", base+p.path, strings.NewReader(p.body))
			req.Header.Set(p.header, c.value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s with %s: %d, want %d", p.path, c.value, resp.StatusCode, c.want)
			}
		}
	}
}

// serve on a port already in use stops before any work starts: it began the settlement
// schedule (and its run at start), the appliers and the webhook worker, then failed to
// listen and cut them short, logging a failed settlement run blamed on storage (review
// helper 210).
func TestServeOnAPortInUseStartsNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": storetest.URL(t, store.SQLite), "TALLY_LISTEN": taken.Addr().String()})
	var logs bytes.Buffer
	err = run(context.Background(), []string{"serve", "--config", cfg}, genv, io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a port in use: %v", err)
	}
	for _, started := range []string{"settlement scheduled", "settlement interrupted"} {
		if strings.Contains(logs.String(), started) {
			t.Errorf("serve logged %q before it failed to listen:\n%s", started, logs.String())
		}
	}
}
