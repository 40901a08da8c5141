package postbacks

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// scoreBase is testdata/gamezop_scores/sample.json as key/raw-value pairs.
var scoreBase = []string{
	"gameCode", `"NyM_JGWcx"`,
	"sessionId", `"sess-1"`,
	"gamePlayId", `"play-1"`,
	"timestamp", `1718000000`,
	"score", `950`,
	"leaderboardId", `"default"`,
	"subId", `"123-554-111"`,
	"country", `"IN"`,
	"duration", `83500`,
	"state", `"over"`,
}

func parseScore(body []byte) (rewards.Event, error) {
	return parseAuthed(rewards.SourceGamezopScores, body)
}

func TestGamezopScoreFields(t *testing.T) {
	t2024 := time.Date(2024, 6, 10, 6, 13, 20, 0, time.UTC) // 1718000000
	tests := []struct {
		name    string
		body    []byte
		fields  []string // a *ValidationError naming these fields (400)
		missing []string // an *UnmappedError naming these fields (kept quarantined)
		check   func(*testing.T, rewards.Event)
	}{
		{name: "sample", body: with(scoreBase), check: func(t *testing.T, ev rewards.Event) {
			want := rewards.Event{
				Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, Type: "over",
				DedupeKey: `["sess-1","play-1","over","950","1718000000"]`, User: "123-554-111", OccurredAt: &t2024,
				Score: &rewards.Score{Game: "NyM_JGWcx", Value: decimal.NewFromInt(950), State: "over", PlayID: "play-1", Country: "IN", Duration: 83500},
			}
			assertEvent(t, ev, want)
		}},

		// timestamp: seconds below 1e11, milliseconds from 1e11.
		{name: "timestamp seconds", body: with(scoreBase, "timestamp", `1718000000`), check: wantOccurred(t2024)},
		{name: "timestamp milliseconds", body: with(scoreBase, "timestamp", `1718000000000`), check: wantOccurred(t2024)},
		{name: "timestamp milliseconds keep fraction", body: with(scoreBase, "timestamp", `1718000000123`), check: wantOccurred(t2024.Add(123 * time.Millisecond))},
		{name: "timestamp zero", body: with(scoreBase, "timestamp", `0`), check: wantOccurred(time.Unix(0, 0).UTC())},
		{name: "timestamp 1e11-1 is seconds", body: with(scoreBase, "timestamp", `99999999999`), check: wantOccurred(time.Unix(99999999999, 0).UTC())},
		{name: "timestamp 1e11 is milliseconds", body: with(scoreBase, "timestamp", `100000000000`), check: wantOccurred(time.Date(1973, 3, 3, 9, 46, 40, 0, time.UTC))},
		{name: "timestamp last millisecond of 9999", body: with(scoreBase, "timestamp", `253402300799999`), check: wantOccurred(time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC))},
		{name: "timestamp year 10000", body: with(scoreBase, "timestamp", `253402300800000`), fields: []string{"timestamp"}},
		{name: "timestamp negative", body: with(scoreBase, "timestamp", `-1`), fields: []string{"timestamp"}},
		// A fraction (JavaScript's Date.now()/1000) is kept to the microsecond, truncated.
		{name: "timestamp seconds with a fraction", body: with(scoreBase, "timestamp", `1718000000.5`), check: wantOccurred(t2024.Add(500 * time.Millisecond))},
		{name: "timestamp seconds with a long fraction", body: with(scoreBase, "timestamp", `"1718000000.1234569"`), check: wantOccurred(t2024.Add(123456 * time.Microsecond))},
		{name: "timestamp milliseconds with a fraction", body: with(scoreBase, "timestamp", `1718000000123.4567`), check: wantOccurred(t2024.Add(123456 * time.Microsecond))},
		{name: "timestamp exponent", body: with(scoreBase, "timestamp", `1.718e9`), check: wantOccurred(t2024)},
		{name: "timestamp last microsecond of 9999", body: with(scoreBase, "timestamp", `253402300799999.9999`), check: wantOccurred(time.Date(9999, 12, 31, 23, 59, 59, 999999e3, time.UTC))},
		{name: "timestamp string", body: with(scoreBase, "timestamp", `"1718000000"`), check: wantOccurred(time.Unix(1718000000, 0).UTC())},
		{name: "timestamp string not a number", body: with(scoreBase, "timestamp", `"2024-06-10"`), fields: []string{"timestamp"}},
		{name: "timestamp RFC 3339", body: with(scoreBase, "timestamp", `"2024-06-10T06:13:20Z"`), fields: []string{"timestamp"}},
		{name: "timestamp missing", body: with(scoreBase, "timestamp", "-"), fields: []string{"timestamp"}},

		// score: required non-negative decimal, ≤18 places.
		{name: "score zero", body: with(scoreBase, "score", `0`), check: wantScore("0")},
		{name: "score string", body: with(scoreBase, "score", `"950"`), check: wantScore("950")},
		{name: "score fraction", body: with(scoreBase, "score", `12.75`), check: wantScore("12.75")},
		{name: "score 18 places", body: with(scoreBase, "score", `1.000000000000000001`), check: wantScore("1.000000000000000001")},
		// Beyond the scores Tally ranks: the sender's value, not its error, so kept
		// (quarantined) rather than refused, under a key of its own.
		{name: "score 19 places", body: with(scoreBase, "score", `1.0000000000000000001`), missing: []string{"score"}},
		{name: "score 20 integer digits", body: with(scoreBase, "score", `99999999999999999999`), check: wantScore("99999999999999999999")},
		{name: "score 1e20", body: with(scoreBase, "score", `1e20`), missing: []string{"score"}},
		{name: "score negative", body: with(scoreBase, "score", `-1`), fields: []string{"score"}},
		{name: "score negative string", body: with(scoreBase, "score", `"-0.5"`), fields: []string{"score"}},
		{name: "score missing", body: with(scoreBase, "score", "-"), fields: []string{"score"}},
		{name: "score bool", body: with(scoreBase, "score", `false`), fields: []string{"score"}},

		// state.
		{name: "state loaded", body: with(scoreBase, "state", `"loaded"`, "score", `0`), check: wantState("loaded")},
		{name: "state start", body: with(scoreBase, "state", `"start"`), check: wantState("start")},
		{name: "state playing", body: with(scoreBase, "state", `"playing"`), check: wantState("playing")},
		{name: "state over", body: with(scoreBase, "state", `"over"`), check: wantState("over")},
		{name: "state levelup", body: with(scoreBase, "state", `"levelup"`), check: wantState("levelup")},
		{name: "state capitalised", body: with(scoreBase, "state", `"Over"`), fields: []string{"state"}},
		{name: "state unknown", body: with(scoreBase, "state", `"finished"`), fields: []string{"state"}},
		{name: "state padded", body: with(scoreBase, "state", `"over "`), fields: []string{"state"}},
		{name: "state empty", body: with(scoreBase, "state", `""`), fields: []string{"state"}},
		{name: "state missing", body: with(scoreBase, "state", "-"), fields: []string{"state"}},
		{name: "state number", body: with(scoreBase, "state", `3`), fields: []string{"state"}},

		// country: alpha-2 or ISO 3166-2, stored as upper-case alpha-2 (informational:
		// what is not understood is left out, see TestGamezopScoreOptionalFields).
		{name: "country alpha-2", body: with(scoreBase, "country", `"IN"`), check: wantScoreCountry("IN")},
		{name: "country lower case", body: with(scoreBase, "country", `"in"`), check: wantScoreCountry("IN")},
		{name: "country subdivision", body: with(scoreBase, "country", `"IN-MH"`), check: wantScoreCountry("IN")},
		{name: "country subdivision lower case", body: with(scoreBase, "country", `"us-ca"`), check: wantScoreCountry("US")},
		{name: "country subdivision 3 chars", body: with(scoreBase, "country", `"GB-ENG"`), check: wantScoreCountry("GB")},
		{name: "country subdivision digits", body: with(scoreBase, "country", `"FR-75"`), check: wantScoreCountry("FR")},
		{name: "country subdivision 1 char", body: with(scoreBase, "country", `"ES-M"`), check: wantScoreCountry("ES")},
		{name: "country empty", body: with(scoreBase, "country", `""`), check: wantScoreCountry("")},
		{name: "country missing", body: with(scoreBase, "country", "-"), check: wantScoreCountry("")},

		// duration: informational non-negative integer milliseconds.
		{name: "duration zero", body: with(scoreBase, "duration", `0`), check: wantScoreDuration(0)},
		{name: "duration missing", body: with(scoreBase, "duration", "-"), check: wantScoreDuration(0)},

		// subId is the user: 1–100 characters.
		{name: "subId 100", body: with(scoreBase, "subId", q(strings.Repeat("u", 100))), check: wantUser(strings.Repeat("u", 100))},
		{name: "subId 100 multibyte", body: with(scoreBase, "subId", q(strings.Repeat("ü", 100))), check: wantUser(strings.Repeat("ü", 100))},
		{name: "subId 101", body: with(scoreBase, "subId", q(strings.Repeat("u", 101))), fields: []string{"subId"}},
		{name: "subId missing", body: with(scoreBase, "subId", "-"), fields: []string{"subId"}},
		{name: "subId control", body: with(scoreBase, "subId", `"a\rb"`), fields: []string{"subId"}},

		// ids.
		{name: "gameCode missing", body: with(scoreBase, "gameCode", "-"), fields: []string{"gameCode"}},
		{name: "gameCode empty", body: with(scoreBase, "gameCode", `""`), fields: []string{"gameCode"}},
		{name: "sessionId missing", body: with(scoreBase, "sessionId", "-"), fields: []string{"sessionId"}},
		// The key's parts are each within their limits, yet together they may pass what
		// the inbox's index holds (rewards.MaxDedupeKey): a 400 naming the heaviest part,
		// where Postgres refused the insert and the sender got a 503 on every retry.
		{name: "key of ids at their limit", body: with(scoreBase, "sessionId", q(strings.Repeat("𠀀", 200)), "gamePlayId", q(strings.Repeat("𠀀", 200))), check: func(t *testing.T, ev rewards.Event) {
			if len(ev.DedupeKey) != 1633 {
				t.Errorf("DedupeKey of %d bytes", len(ev.DedupeKey))
			}
		}},
		{name: "key over the limit, escaped ids", body: with(scoreBase, "sessionId", q(strings.Repeat("<", 200)), "gamePlayId", q(strings.Repeat("<", 199)+"a")), fields: []string{"sessionId"}},
		{name: "key over the limit, a long score", body: with(scoreBase, "sessionId", q(strings.Repeat("𠀀", 200)), "gamePlayId", q(strings.Repeat("𠀀", 200)), "score", "1"+strings.Repeat("0", 250)+"e1000"), fields: []string{"score"}},
		{name: "key over the limit, a long timestamp", body: with(scoreBase, "sessionId", q(strings.Repeat("𠀀", 200)), "gamePlayId", q(strings.Repeat("𠀀", 200)), "timestamp", "1718000000."+strings.Repeat("1", 240)), check: func(t *testing.T, ev rewards.Event) {
			if len(ev.DedupeKey) > rewards.MaxDedupeKey {
				t.Errorf("DedupeKey of %d bytes", len(ev.DedupeKey))
			}
		}},
		// Without gamePlayId the play is the session: a redelivery with a new timestamp
		// (a new dedupe key) is still the same play, so `per: play` pays it once. Before,
		// the play was the dedupe key, and each redelivery paid again.
		{name: "gamePlayId missing", body: with(scoreBase, "gamePlayId", "-"), check: func(t *testing.T, ev rewards.Event) {
			if ev.Score.PlayID != "session:sess-1" || ev.DedupeKey != `["sess-1","","over","950","1718000000"]` {
				t.Errorf("PlayID %q, DedupeKey %s", ev.Score.PlayID, ev.DedupeKey)
			}
		}},
		{name: "gamePlayId missing, later timestamp", body: with(scoreBase, "gamePlayId", "-", "timestamp", `1718000001`), check: func(t *testing.T, ev rewards.Event) {
			if ev.Score.PlayID != "session:sess-1" || ev.DedupeKey != `["sess-1","","over","950","1718000001"]` {
				t.Errorf("PlayID %q, DedupeKey %s", ev.Score.PlayID, ev.DedupeKey)
			}
		}},
		{name: "gamePlayId empty", body: with(scoreBase, "gamePlayId", `""`), check: func(t *testing.T, ev rewards.Event) {
			if ev.Score.PlayID != "session:sess-1" {
				t.Errorf("PlayID %q", ev.Score.PlayID)
			}
		}},
		// Ids may come as integers (undocumented types; a 400 would lose every delivery of
		// that shape), read as their canonical decimal text: 77 and "77" are one id.
		{name: "ids as integers", body: with(scoreBase, "gameCode", `12`, "sessionId", `9912`, "gamePlayId", `77.0`, "subId", `42`),
			check: func(t *testing.T, ev rewards.Event) {
				if ev.Score.Game != "12" || ev.Score.PlayID != "77" || ev.User != "42" || ev.DedupeKey != `["9912","77","over","950","1718000000"]` {
					t.Errorf("game %q, play %q, user %q, dedupe key %s", ev.Score.Game, ev.Score.PlayID, ev.User, ev.DedupeKey)
				}
			}},
		{name: "gamePlayId fraction", body: with(scoreBase, "gamePlayId", `5.5`), fields: []string{"gamePlayId"}},
		{name: "gamePlayId boolean", body: with(scoreBase, "gamePlayId", `true`), fields: []string{"gamePlayId"}},
		{name: "leaderboardId number", body: with(scoreBase, "leaderboardId", `5`)},
		{name: "leaderboardId missing", body: with(scoreBase, "leaderboardId", "-")},

		{name: "every bad field reported", body: with(scoreBase, "gameCode", `{}`, "timestamp", `-1`, "score", `"x"`, "subId", `""`,
			"state", `"won"`, "gamePlayId", `[]`, "country", `"XYZ"`, "duration", `-1`),
			fields: []string{"gameCode", "gamePlayId", "timestamp", "score", "subId", "state"}},
		{name: "nested duplicate key", body: with(scoreBase, "extra", `{"a":1,"a":2}`), fields: []string{"body"}},
		{name: "top-level duplicate key", body: []byte(strings.Replace(string(with(scoreBase)), `{`, `{"score":0,`, 1)), fields: []string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := parseScore(tt.body)
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
			checkValid(t, rewards.SourceGamezopScores, ev)
			if ev.Type != ev.Score.State {
				t.Errorf("Type %q != State %q", ev.Type, ev.Score.State)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// TestGamezopScoreDedupeKey pins which updates are the same update.
func TestGamezopScoreDedupeKey(t *testing.T) {
	key := func(overrides ...string) string {
		t.Helper()
		ev, err := parseScore(with(scoreBase, overrides...))
		if err != nil {
			t.Fatal(err)
		}
		return ev.DedupeKey
	}
	base := key()
	same := map[string][]string{
		"score as string":     {"score", `"950"`},
		"score with zeros":    {"score", `950.000`},
		"score with exponent": {"score", `9.5e2`},
		"other user":          {"subId", `"someone"`},
		"other country":       {"country", `"US"`},
		"other duration":      {"duration", `1`},
		"other leaderboard":   {"leaderboardId", `"weekly"`},
		"other unknown field": {"extra", `1`},
		"other game":          {"gameCode", `"other"`},
	}
	for name, o := range same {
		if got := key(o...); got != base {
			t.Errorf("%s: key %s, want %s", name, got, base)
		}
	}
	different := map[string][]string{
		"session":         {"sessionId", `"sess-2"`},
		"play":            {"gamePlayId", `"play-2"`},
		"play absent":     {"gamePlayId", "-"},
		"state":           {"state", `"playing"`},
		"score":           {"score", `951`},
		"timestamp":       {"timestamp", `1718000001`},
		"timestamp as ms": {"timestamp", `1718000000000`},
	}
	for name, o := range different {
		if got := key(o...); got == base {
			t.Errorf("%s: key %s collides with the base", name, got)
		}
	}
	// A naive separator join would make these two tuples one key.
	a := key("sessionId", `"a|b"`, "gamePlayId", `"c"`)
	b := key("sessionId", `"a"`, "gamePlayId", `"b|c"`)
	c := key("sessionId", `"a\",\"b"`, "gamePlayId", `"c"`)
	d := key("sessionId", `"a"`, "gamePlayId", `"b\",\"c"`)
	if a == b || c == d {
		t.Errorf("ambiguous keys: %s %s %s %s", a, b, c, d)
	}
}

func TestGamezopScoreAuth(t *testing.T) {
	body := with(scoreBase)
	tests := []struct {
		name   string
		key    string
		header []string
		ok     bool
	}{
		{"correct", "scores-key", []string{"scores-key"}, true},
		{"missing", "scores-key", nil, false},
		{"empty", "scores-key", []string{""}, false},
		{"wrong", "scores-key", []string{"scores-kez"}, false},
		{"other case", "scores-key", []string{"SCORES-KEY"}, false},
		{"prefix", "scores-key", []string{"scores-ke"}, false},
		{"padded", "scores-key", []string{" scores-key"}, false},
		{"bearer form", "scores-key", []string{"Bearer scores-key"}, false},
		{"repeated", "scores-key", []string{"scores-key", "scores-key"}, false},
		{"no auth configured", "", nil, true},
		{"no auth configured, key sent", "", []string{"x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.header {
				h.Add("API-KEY", v) // header names are case-insensitive
			}
			c := Credentials{BearerToken: "unused", APIKey: tt.key, Secret: "unused"}
			_, err := ParseGamezopScore(h, body, c)
			if tt.ok && err != nil {
				t.Errorf("err = %v, want accepted", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("err = %v, want ErrUnauthorized", err)
			}
			_, err = ParseGamezopScore(h, []byte("not json"), c)
			if !tt.ok && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("malformed body: err = %v, want ErrUnauthorized before decoding", err)
			}
		})
	}
}

func wantOccurred(want time.Time) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.OccurredAt == nil || !ev.OccurredAt.Equal(want) {
			t.Errorf("OccurredAt = %v, want %v", ev.OccurredAt, want)
		}
	}
}

func wantScore(s string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if want := decimal.RequireFromString(s); !ev.Score.Value.Equal(want) {
			t.Errorf("Score.Value = %s, want %s", ev.Score.Value, want)
		}
	}
}

func wantState(s string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Score.State != s || ev.Type != s {
			t.Errorf("State %q, Type %q, want %q", ev.Score.State, ev.Type, s)
		}
	}
}

func wantScoreCountry(c string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Score.Country != c {
			t.Errorf("Country = %q, want %q", ev.Score.Country, c)
		}
	}
}

func wantScoreDuration(d int64) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Score.Duration != d {
			t.Errorf("Duration = %d, want %d", ev.Score.Duration, d)
		}
	}
}
