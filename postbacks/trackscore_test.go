package postbacks

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// tsBase is the documented TrackScore payload as key/raw-value pairs.
var tsBase = []string{
	"id", `"wh_1234567890abcdef"`,
	"type", `"score.updated"`,
	"created", `"2025-06-09T10:30:00Z"`,
	"data", `{"leaderboard_id":"lb_987654321","participant_id":"pt_555666777","old_score":850,"new_score":950,"rank_change":{"old_rank":5,"new_rank":3}}`,
	"meta", `{"webhook_url":"https://your-app.com/webhooks","delivery_attempt":1,"api_version":"1.0"}`,
}

func parseTS(body []byte) (rewards.Event, error) {
	return parseAuthed(rewards.SourceTrackScore, body)
}

func TestTrackScoreSignature(t *testing.T) {
	body, err := os.ReadFile("testdata/trackscore/sample.json")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "ts-secret"
	good := trackScoreSig(body, secret)
	// What the doc's Express example signs: JSON.stringify of the parsed body, which
	// drops the spacing of what was actually sent.
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(compact.Bytes(), body) {
		t.Fatal("sample is already compact; the re-serialisation case would prove nothing")
	}
	tests := []struct {
		name    string
		secret  string
		headers []string
		ok      bool
	}{
		{"lower hex", secret, []string{good}, true},
		{"upper hex digits", secret, []string{"sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256="))}, true},
		{"missing", secret, nil, false},
		{"empty", secret, []string{""}, false},
		{"wrong secret", secret, []string{trackScoreSig(body, "other")}, false},
		{"empty secret configured", "", []string{trackScoreSig(body, "")}, false},
		{"HMAC of re-serialised JSON (doc example)", secret, []string{trackScoreSig(compact.Bytes(), secret)}, false},
		{"HMAC of body with trailing newline", secret, []string{trackScoreSig(append(bytes.Clone(body), '\n'), secret)}, false},
		{"plain SHA-256, no HMAC", secret, []string{"sha256=" + hexSHA256(body)}, false},
		{"no prefix", secret, []string{strings.TrimPrefix(good, "sha256=")}, false},
		{"upper-case prefix", secret, []string{"SHA256=" + strings.TrimPrefix(good, "sha256=")}, false},
		{"other algorithm prefix", secret, []string{"sha1=" + strings.TrimPrefix(good, "sha256=")}, false},
		{"space after prefix", secret, []string{"sha256= " + strings.TrimPrefix(good, "sha256=")}, false},
		{"trailing space", secret, []string{good + " "}, false},
		{"truncated", secret, []string{good[:len(good)-2]}, false},
		{"flipped digit", secret, []string{flipLastHex(good)}, false},
		{"not hex", secret, []string{"sha256=" + strings.Repeat("z", 64)}, false},
		{"repeated header", secret, []string{good, good}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.headers {
				h.Add("x-trackscore-signature", v)
			}
			c := Credentials{BearerToken: "x", APIKey: "y", Secret: tt.secret}
			_, err := ParseTrackScore(h, body, c)
			if tt.ok && err != nil {
				t.Errorf("err = %v, want accepted", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("err = %v, want ErrUnauthorized", err)
			}
		})
	}
	t.Run("tampered body", func(t *testing.T) {
		h := http.Header{}
		h.Set("X-TrackScore-Signature", good)
		tampered := bytes.Replace(body, []byte("950"), []byte("951"), 1)
		if _, err := ParseTrackScore(h, tampered, Credentials{Secret: secret}); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("err = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("unsigned malformed body is 401, not 400", func(t *testing.T) {
		if _, err := ParseTrackScore(http.Header{}, []byte("{"), Credentials{Secret: secret}); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("err = %v, want ErrUnauthorized", err)
		}
	})
}

func hexSHA256(b []byte) string { return hex.EncodeToString(sha256Sum(string(b))) }

func TestTrackScoreFields(t *testing.T) {
	data := func(d string) []string { return []string{"data", d} }
	tests := []struct {
		name    string
		body    []byte
		fields  []string // a *ValidationError naming these fields (400)
		missing []string // an *UnmappedError naming these fields (kept quarantined)
		check   func(*testing.T, rewards.Event)
	}{
		{name: "sample", body: with(tsBase), check: func(t *testing.T, ev rewards.Event) {
			created := time.Date(2025, 6, 9, 10, 30, 0, 0, time.UTC)
			assertEvent(t, ev, rewards.Event{
				Source: rewards.SourceTrackScore, Kind: rewards.KindScore, Type: "score.updated",
				DedupeKey: "wh_1234567890abcdef", User: "pt_555666777", OccurredAt: &created,
				Score: &rewards.Score{Game: "lb_987654321", Value: decimal.RequireFromString("950")},
			})
		}},
		{name: "score zero", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":0}`)...), check: wantScore("0")},
		{name: "score string", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":"12.5"}`)...), check: wantScore("12.5")},
		{name: "score 18 places", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":0.000000000000000001}`)...), check: wantScore("0.000000000000000001")},
		// A score beyond what Tally ranks is the sender's value, not its error: kept
		// (quarantined), not refused, since TrackScore drops a refused delivery.
		{name: "score 19 places", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":0.0000000000000000001}`)...), missing: []string{"data.new_score"}},
		{name: "score 20 integer digits", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":99999999999999999999}`)...), check: wantScore("99999999999999999999")},
		{name: "score 1e+21", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":1e+21}`)...), missing: []string{"data.new_score"}},
		{name: "score 1e+21 as a string", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":"1e+21"}`)...), missing: []string{"data.new_score"}},
		{name: "score not a number", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":"lots"}`)...), fields: []string{"data.new_score"}},
		{name: "score negative", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":-1}`)...), fields: []string{"data.new_score"}},
		{name: "score missing", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","old_score":1}`)...), fields: []string{"data.new_score"}},
		{name: "score leaderboard number", body: with(tsBase, data(`{"leaderboard_id":77,"participant_id":"p","new_score":1}`)...), check: func(t *testing.T, ev rewards.Event) {
			if ev.Score.Game != "77" {
				t.Errorf("Game = %q", ev.Score.Game)
			}
		}},
		{name: "score leaderboard missing", body: with(tsBase, data(`{"participant_id":"p","new_score":1}`)...), fields: []string{"data.leaderboard_id"}},
		{name: "score participant missing", body: with(tsBase, data(`{"leaderboard_id":"lb","new_score":1}`)...), fields: []string{"data.participant_id"}},
		{name: "score participant 100", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"`+strings.Repeat("p", 100)+`","new_score":1}`)...), check: wantUser(strings.Repeat("p", 100))},
		{name: "score participant 101", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"`+strings.Repeat("p", 101)+`","new_score":1}`)...), fields: []string{"data.participant_id"}},
		{name: "score participant 100 multibyte", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"`+strings.Repeat("ж", 100)+`","new_score":1}`)...), check: wantUser(strings.Repeat("ж", 100))},
		{name: "score participant NUL", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p\u0000","new_score":1}`)...), fields: []string{"body"}},
		{name: "score participant line separator is not a control", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p\u2028","new_score":1}`)...), check: wantUser("p\u2028")},
		{name: "score participant C1 control", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p\u009b","new_score":1}`)...), fields: []string{"data.participant_id"}},
		{name: "score without data", body: with(tsBase, "data", "-"), fields: []string{"data"}},
		{name: "score data not object", body: with(tsBase, "data", `"x"`), fields: []string{"data"}},
		{name: "score every bad field", body: with(tsBase, data(`{"leaderboard_id":[],"participant_id":"","new_score":"-1"}`)...),
			fields: []string{"data.participant_id", "data.leaderboard_id", "data.new_score"}},

		{name: "achievement achievement_id", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":"p","achievement_id":"first-win","id":"x"}`), check: wantAchievement("first-win")},
		{name: "achievement nested id", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":"p","id":"ua_1","achievement":{"id":"first-win"}}`), check: wantAchievement("first-win")},
		// A bare data.id is likely the unlock's own record: read as the achievement it
		// marked the event applied, earning nothing, where a miss keeps it replayable.
		{name: "achievement bare id", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":"p","id":"first-win"}`), missing: []string{"data.achievement_id"}},
		{name: "achievement numeric id", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":"p","achievement_id":5}`), check: wantAchievement("5")},
		{name: "achievement no id", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":"p"}`), missing: []string{"data.achievement_id"}},
		// The doc shows no achievement or milestone payload, so where their user is, is a
		// guess: a signed one without it is kept (quarantined), not refused with a 400
		// (after which TrackScore drops it). A score's participant is documented.
		{name: "achievement no participant", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"achievement_id":"a"}`), missing: []string{"data.participant_id"}},
		{name: "milestone without data", body: with(tsBase, "type", `"milestone.reached"`, "data", "-"), missing: []string{"data"}},
		{name: "achievement participant not an id", body: with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":[],"achievement_id":"a"}`), fields: []string{"data.participant_id"}},
		{name: "milestone milestone_id", body: with(tsBase, "type", `"milestone.reached"`, "data", `{"participant_id":"p","milestone_id":"m-1","id":"x"}`), check: wantAchievement("m-1")},
		{name: "milestone nested id", body: with(tsBase, "type", `"milestone.reached"`, "data", `{"participant_id":"p","milestone":{"id":"m-2"}}`), check: wantAchievement("m-2")},
		{name: "milestone bare id", body: with(tsBase, "type", `"milestone.reached"`, "data", `{"participant_id":"p","id":"m-2"}`), missing: []string{"data.milestone_id"}},
		{name: "milestone no id", body: with(tsBase, "type", `"milestone.reached"`, "data", `{"participant_id":"p","achievement_id":"a"}`), missing: []string{"data.milestone_id"}},

		{name: "leaderboard.created is other", body: with(tsBase, "type", `"leaderboard.created"`, "data", `{"leaderboard_id":"lb"}`), check: func(t *testing.T, ev rewards.Event) {
			if ev.Kind != rewards.KindOther || ev.User != "" || ev.Type != "leaderboard.created" {
				t.Errorf("event = %+v", ev)
			}
		}},
		{name: "participant.added keeps the user", body: with(tsBase, "type", `"participant.added"`, "data", `{"participant_id":"p-9"}`), check: wantUser("p-9")},
		{name: "other without data", body: with(tsBase, "type", `"competition.ended"`, "data", "-")},
		{name: "type is case-sensitive", body: with(tsBase, "type", `"Score.Updated"`), check: func(t *testing.T, ev rewards.Event) {
			if ev.Kind != rewards.KindOther {
				t.Errorf("Kind = %q", ev.Kind)
			}
		}},

		{name: "id missing", body: with(tsBase, "id", "-"), fields: []string{"id"}},
		{name: "id empty", body: with(tsBase, "id", `""`), fields: []string{"id"}},
		{name: "id integer", body: with(tsBase, "id", `1`), check: func(t *testing.T, ev rewards.Event) {
			if ev.DedupeKey != "1" {
				t.Errorf("dedupe key %q", ev.DedupeKey)
			}
		}},
		{name: "id object", body: with(tsBase, "id", `{}`), fields: []string{"id"}},
		{name: "id 200", body: with(tsBase, "id", q(strings.Repeat("w", 200))), check: func(t *testing.T, ev rewards.Event) {
			if ev.DedupeKey != strings.Repeat("w", 200) {
				t.Errorf("DedupeKey = %q", ev.DedupeKey)
			}
		}},
		{name: "id 201", body: with(tsBase, "id", q(strings.Repeat("w", 201))), fields: []string{"id"}},
		{name: "type missing", body: with(tsBase, "type", "-"), fields: []string{"type"}},
		{name: "created absent", body: with(tsBase, "created", "-"), check: func(t *testing.T, ev rewards.Event) {
			if ev.OccurredAt != nil {
				t.Errorf("OccurredAt = %v", ev.OccurredAt)
			}
		}},
		{name: "created fractional offset", body: with(tsBase, "created", `"2025-06-09T12:30:00.5+02:00"`), check: wantOccurred(time.Date(2025, 6, 9, 10, 30, 0, 5e8, time.UTC))},
		{name: "duplicate nested key", body: with(tsBase, data(`{"leaderboard_id":"lb","participant_id":"p","new_score":1,"new_score":1000}`)...), fields: []string{"body"}},
		{name: "duplicate top-level key", body: []byte(strings.Replace(string(with(tsBase)), `{`, `{"type":"other",`, 1)), fields: []string{"body"}},
		{name: "trailing bytes", body: append(with(tsBase), "\n{}"...), fields: []string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := parseTS(tt.body)
			if tt.fields != nil {
				wantFields(t, err, tt.fields...)
				return
			}
			if tt.missing != nil {
				wantUnmapped(t, err, tt.missing...)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkValid(t, rewards.SourceTrackScore, ev)
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func wantAchievement(id string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Kind != rewards.KindAchievement || ev.Achievement == nil || ev.Achievement.ID != id {
			t.Errorf("event %+v achievement %+v, want %q", ev, ev.Achievement, id)
		}
	}
}
