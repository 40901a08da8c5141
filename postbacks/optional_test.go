package postbacks

import (
	"strings"
	"testing"

	"tally/rewards"
)

// Only what identity, dedupe or money needs is required (DESIGN §3). Every other field is
// recorded as sent (the raw body is kept) and never makes a 400, whether it is absent,
// null, empty or a value Tally does not understand: a 400 would lose the delivery and the
// sender would retry it forever. These tables pin both halves for every provider.

// oddValues are what a provider may send in a field nothing depends on.
var oddValues = map[string]string{
	"absent":       "-",
	"null":         `null`,
	"empty":        `""`,
	"object":       `{"a":1}`,
	"array":        `[1,2]`,
	"bool":         `true`,
	"negative":     `-1`,
	"fraction":     `1.5`,
	"words":        `"soon"`,
	"too long":     q(strings.Repeat("x", 300)),
	"control char": `"a\u0007b"`,
}

// notIDs are oddValues less those that are valid ids (-1 and "soon" are).
func notIDs() map[string]string {
	m := map[string]string{}
	for k, v := range oddValues {
		if k != "negative" && k != "words" {
			m[k] = v
		}
	}
	return m
}

// optionalCase is one informational field and what the event carries for it when the
// field is not understood; values default to oddValues.
type optionalCase struct {
	field  string
	check  func(*testing.T, rewards.Event)
	values map[string]string
}

func runOptional(t *testing.T, src rewards.Source, base []string, cases []optionalCase) {
	t.Helper()
	for _, c := range cases {
		values := c.values
		if values == nil {
			values = oddValues
		}
		for name, v := range values {
			t.Run(c.field+" "+name, func(t *testing.T) {
				ev, err := parseAuthed(src, with(base, c.field, v))
				if err != nil {
					t.Fatalf("%s = %s refused: %v", c.field, v, err)
				}
				checkValid(t, src, ev)
				c.check(t, ev)
			})
		}
	}
}

// runRequired pins which fields are required: each one absent is a 400 naming it.
func runRequired(t *testing.T, src rewards.Source, base []string, fields []string) {
	t.Helper()
	for _, f := range fields {
		t.Run(f+" absent", func(t *testing.T) {
			_, err := parseAuthed(src, with(base, f, "-"))
			wantFields(t, err, f)
		})
	}
}

func TestGamezopSPPOptionalFields(t *testing.T) {
	runOptional(t, rewards.SourceGamezopSPP, sppBase, []optionalCase{
		{"count-of-ads-viewed", wantAds(0), nil},
		// Carried as absent: with a gamezop_property_id configured the session is kept
		// quarantined, never credited on a guess.
		{"property-id", wantProperty(""), notIDs()},
	})
	runRequired(t, rewards.SourceGamezopSPP, sppBase,
		[]string{"user-id", "session-id", "your-estimated-revenue", "session-duration"})
}

func TestGamezopScoreOptionalFields(t *testing.T) {
	// The reported case: an empty leaderboard id is a score like any other.
	ev, err := parseScore(with(scoreBase, "leaderboardId", `""`))
	if err != nil || ev.Score == nil || ev.Score.Game != "NyM_JGWcx" || ev.User != "123-554-111" {
		t.Fatalf(`leaderboardId "": %+v, %v`, ev, err)
	}
	runOptional(t, rewards.SourceGamezopScores, scoreBase, []optionalCase{
		{"leaderboardId", func(*testing.T, rewards.Event) {}, nil},
		{"country", wantScoreCountry(""), nil},
		{"duration", wantScoreDuration(0), nil},
	})
	// gamePlayId is part of the dedupe key: it may be absent or empty, nothing else;
	// without it the play is the session.
	for name, v := range map[string]string{"absent": "-", "null": `null`, "empty": `""`} {
		ev, err := parseScore(with(scoreBase, "gamePlayId", v))
		if err != nil || ev.Score.PlayID != "session:sess-1" || ev.DedupeKey != `["sess-1","","over","950","1718000000"]` {
			t.Errorf("gamePlayId %s: %+v, %v", name, ev, err)
		}
	}
	runRequired(t, rewards.SourceGamezopScores, scoreBase,
		[]string{"gameCode", "sessionId", "timestamp", "score", "subId", "state"})
}

func TestGamePushOptionalFields(t *testing.T) {
	runOptional(t, rewards.SourceGamePush, gpBase, []optionalCase{
		{"time", func(t *testing.T, ev rewards.Event) {
			if ev.OccurredAt != nil {
				t.Errorf("OccurredAt = %v", ev.OccurredAt)
			}
		}, nil},
	})
	// An event that earns nothing needs no player; one it cannot read is left out.
	sync := with(gpBase, "event", `"SyncPlayer"`)
	for name, v := range notIDs() {
		t.Run("SyncPlayer player "+name, func(t *testing.T) {
			ev, err := parseGP(with(gpBase, "event", `"SyncPlayer"`, "player", v))
			if err != nil || ev.Kind != rewards.KindOther || ev.User != "" {
				t.Fatalf("%+v, %v", ev, err)
			}
			checkValid(t, rewards.SourceGamePush, ev)
		})
		t.Run("SyncPlayer player.id "+name, func(t *testing.T) {
			player := `{}`
			if v != "-" {
				player = `{"id":` + v + `}`
			}
			ev, err := parseGP(with(gpBase, "event", `"SyncPlayer"`, "player", player))
			if err != nil || ev.Kind != rewards.KindOther || ev.User != "" {
				t.Fatalf("%+v, %v", ev, err)
			}
			checkValid(t, rewards.SourceGamePush, ev)
		})
	}
	if ev, err := parseGP(sync); err != nil || ev.User != "1820283" {
		t.Fatalf("SyncPlayer keeps a readable player: %+v, %v", ev, err)
	}
	runRequired(t, rewards.SourceGamePush, gpBase, []string{"event", "player"})
}

func TestTrackScoreOptionalFields(t *testing.T) {
	runOptional(t, rewards.SourceTrackScore, tsBase, []optionalCase{
		{"created", func(t *testing.T, ev rewards.Event) {
			if ev.OccurredAt != nil {
				t.Errorf("OccurredAt = %v", ev.OccurredAt)
			}
		}, nil},
		{"meta", func(*testing.T, rewards.Event) {}, nil},
	})
	// A type that earns nothing needs no data and no participant.
	for name, v := range notIDs() {
		t.Run("participant.updated data "+name, func(t *testing.T) {
			ev, err := parseTS(with(tsBase, "type", `"participant.updated"`, "data", v))
			if err != nil || ev.Kind != rewards.KindOther || ev.User != "" {
				t.Fatalf("%+v, %v", ev, err)
			}
			checkValid(t, rewards.SourceTrackScore, ev)
		})
		t.Run("participant.updated participant_id "+name, func(t *testing.T) {
			d := `{}`
			if v != "-" {
				d = `{"participant_id":` + v + `}`
			}
			ev, err := parseTS(with(tsBase, "type", `"participant.updated"`, "data", d))
			if err != nil || ev.Kind != rewards.KindOther || ev.User != "" {
				t.Fatalf("%+v, %v", ev, err)
			}
		})
	}
	// In a score, old_score and rank_change are informational too.
	for name, v := range oddValues {
		d := `{"leaderboard_id":"lb","participant_id":"p","new_score":1,"old_score":` + v + `,"rank_change":` + v + `}`
		if v == "-" {
			d = `{"leaderboard_id":"lb","participant_id":"p","new_score":1}`
		}
		if _, err := parseTS(with(tsBase, "data", d)); err != nil {
			t.Errorf("old_score/rank_change %s: %v", name, err)
		}
	}
	runRequired(t, rewards.SourceTrackScore, tsBase, []string{"id", "type", "data"})
}
