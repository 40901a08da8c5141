package config

import (
	"slices"
	"strings"
	"testing"

	"tally/rewards"
)

// secondProperty is appended to the example for the cases that need two properties.
const secondProperty = `
  - id: puzzle
    currency: GEM
    api_keys: ["${PUZZLE_KEY}"]
`

// TestLoadRefuses edits the example file one way at a time and checks that Load refuses
// it with a problem at the expected key path. Every case must change the file.
func TestLoadRefuses(t *testing.T) {
	example := readExample(t)
	tests := []struct {
		name     string
		old, new string // old == "" appends new
		want     string // a problem line: "path: message" (prefix match on the message)
	}{
		{"share above 1", `share: "0.7"`, `share: "1.5"`, `properties[0].revenue.share: must be between 0 and 1, got "1.5"`},
		{"share above 1 as YAML number", `share: "0.7"`, `share: 1.5`, `properties[0].revenue.share: must be between 0 and 1, got "1.5"`},
		{"share negative", `share: "0.7"`, `share: "-0.1"`, `properties[0].revenue.share: must be between 0 and 1`},
		{"share missing", `share: "0.7"`, ``, `properties[0].revenue.share: is required`},
		{"buffer above 1", `buffer: "0.2"`, `buffer: "1.0001"`, `properties[0].revenue.buffer: must be between 0 and 1, got "1.0001"`},
		{"buffer negative", `buffer: "0.2"`, `buffer: -0.2`, `properties[0].revenue.buffer: must be between 0 and 1, got "-0.2"`},
		{"buffer not a number", `buffer: "0.2"`, `buffer: "20%"`, `properties[0].revenue.buffer: must be a decimal number, got "20%"`},
		{"units_per_usd zero", `units_per_usd: "100000"`, `units_per_usd: "0"`, `properties[0].revenue.units_per_usd: must be greater than 0, got "0"`},
		// A rule that cannot value a session the receiver takes (1000 USD) within the
		// ledger's 10^20: the applier quarantined every such session, replay after replay.
		{"units_per_usd past the ledger", `units_per_usd: "100000"`, `units_per_usd: "1000000000000000000"`,
			`properties[0].revenue.units_per_usd: with share 0.7, the multiplier 1 of countries["*"] and "1000000000000000000" units per USD a session of 1000 USD (the most an SPP may carry) would gross 700000000000000000000 units, more than the ledger holds (below 10^20)`},
		{"country multiplier past the ledger", `countries: { "*": "1" }`, `countries: { "*": "1", "US": "10000000000000" }`,
			`properties[0].revenue.units_per_usd: with share 0.7, the multiplier 10000000000000 of countries["US"] and "100000" units per USD a session of 1000 USD`},
		{"negative hold", `hold: 24h`, `hold: -1h`, `properties[0].revenue.hold: must not be negative, got "-1h"`},
		{"hold in days", `hold: 24h`, `hold: 1d`, `properties[0].revenue.hold: must be a duration such as "24h" or "0s", got "1d"`},
		{"negative min_session_seconds", `min_session_seconds: 10`, `min_session_seconds: -1`, `properties[0].revenue.min_session_seconds: must not be negative, got -1`},
		{"fractional min_session_seconds", `min_session_seconds: 10`, `min_session_seconds: 1.5`, `properties[0].revenue.min_session_seconds: must be an integer, got "1.5"`},
		{"countries left without a value", `countries: { "*": "1" }`, `countries:`, `properties[0].revenue.countries: has no value: remove the key to take its default, or write {} for an empty mapping`},
		{"secret left without a value", `gamezop_spp:    { bearer_token: "${SPP_TOKEN}" }`, `gamezop_spp: { bearer_token: }`, `properties[0].sources.gamezop_spp.bearer_token: has no value: give the secret, or write "" to accept requests without it`},
		// Written without its credential, a source would accept anyone's postbacks: no
		// auth must be written as "" (before, {} turned the check off unasked).
		{"spp without its token", `gamezop_spp:    { bearer_token: "${SPP_TOKEN}" }`, `gamezop_spp: {}`, `properties[0].sources.gamezop_spp.bearer_token: is required: give the secret, or write bearer_token: "" to accept requests without auth`},
		{"spp left without a value", `gamezop_spp:    { bearer_token: "${SPP_TOKEN}" }`, `gamezop_spp:`, `properties[0].sources.gamezop_spp: has no value: remove the key to leave the source out, or give its bearer_token`},
		{"schedule that never fires", `schedule: "@every 1m"`, `schedule: "0 0 30 2 *"`, `settlement.schedule: must be a cron spec`},
		{"bad country", `countries: { "*": "1" }`, `countries: { "*": "1", "usa": "2" }`, `properties[0].revenue.countries["usa"]: a country must be "*" or an upper-case ISO 3166-1 alpha-2 code`},
		// Shaped like a code but not one: no SPP carries it, so its multiplier never
		// applies and those users earn the "*" one (or nothing) without a word.
		{"UK for GB", `countries: { "*": "1" }`, `countries: { "*": "1", "UK": "0.5" }`, `properties[0].revenue.countries["UK"]: "UK" is not an ISO 3166-1 alpha-2 code, which SPPs carry: use "GB"`},
		{"unassigned country", `countries: { "*": "1" }`, `countries: { "*": "1", "XX": "0" }`, `properties[0].revenue.countries["XX"]: "XX" is not an assigned ISO 3166-1 alpha-2 code`},
		{"sqlite url with a query", `url: "sqlite://data/tally.db"`, `url: "sqlite://data/tally.db?mode=ro"`, `database.url: a sqlite:// URL takes no query`},
		{"negative multiplier", `countries: { "*": "1" }`, `countries: { "US": "-1" }`, `properties[0].revenue.countries["US"]: must not be negative, got "-1"`},
		{"negative cap", `per_session: "500"`, `per_session: "-5"`, `properties[0].revenue.caps.per_session: must not be negative, got "-5"`},
		{"cap finer than scale", `per_user_per_day: "10000"`, `per_user_per_day: "0.5"`, `properties[0].revenue.caps.per_user_per_day: must have at most 0 decimal places (the property's scale), got "0.5"`},
		{"unknown per", `per: once`, `per: week`, `properties[0].score_targets[0].per: must be once, day or play, got "week"`},
		{"unknown direction", `direction: higher`, `direction: up`, `properties[0].score_targets[0].direction: must be higher or lower, got "up"`},
		{"target without game", `game: NyM_JGWcx`, ``, `properties[0].score_targets[0].game: is required`},
		{"target id with the claim separator", `id: snake-500`, `id: "snake:500"`, `properties[0].score_targets[0].id: must match`},
		{"target without id", "- id: snake-500\n        game:", "- game:", `properties[0].score_targets[0].id: is required`},
		{"duplicate target id", `    achievements:`, "      - { id: snake-500, game: g, min_score: \"1\", reward: \"1\" }\n    achievements:", `properties[0].score_targets[1].id: "snake-500" is already the id of score_targets[0]`},
		{"negative min_score", `min_score: "500"`, `min_score: "-500"`, `properties[0].score_targets[0].min_score: must not be negative, got "-500"`},
		{"negative reward", `reward: "50"`, `reward: "-50"`, `properties[0].score_targets[0].reward: must not be negative, got "-50"`},
		{"reward too precise", `reward: "50"`, `reward: "0.0000000000000000001"`, `properties[0].score_targets[0].reward: must have at most 18 decimal places, got "0.0000000000000000001"`},
		{"reward too large", `reward: "50"`, `reward: "100000000000000000000"`, `properties[0].score_targets[0].reward: must be less than 10^20, got "100000000000000000000"`},
		{"reward large exponent", `reward: "50"`, `reward: 1e99`, `properties[0].score_targets[0].reward: must be less than 10^20`},
		{"reward tiny exponent", `reward: "50"`, `reward: 1e-99`, `properties[0].score_targets[0].reward: must be less than 10^20 with at most 18 decimal places`},
		{"reward huge exponent", `reward: "50"`, `reward: 1e999999999`, `properties[0].score_targets[0].reward: must be a decimal number`},
		{"unknown state", `states: [over]`, `states: [over, ended]`, `properties[0].score_targets[0].states[1]: must be one of loaded, start, playing, over, levelup, got "ended"`},
		{"start on a lower target", "direction: higher        # higher | lower (lower-is-better games, e.g. times)\n        reward: \"50\"\n        per: once                # once | day | play\n        states: [over]",
			"direction: lower\n        reward: \"50\"\n        per: once\n        states: [over, start]",
			`properties[0].score_targets[0].states[1]: "start" always reports score 0, which meets every direction: lower target`},
		{"playing on a lower target", "direction: higher        # higher | lower (lower-is-better games, e.g. times)\n        reward: \"50\"\n        per: once                # once | day | play\n        states: [over]",
			"direction: lower\n        reward: \"50\"\n        per: once\n        states: [over, playing]",
			`properties[0].score_targets[0].states[1]: "playing" reports a play's score so far`},
		{"empty states", `states: [over]`, `states: []`, `properties[0].score_targets[0].states: must list at least one state`},
		{"achievement from gamezop", `source: gamepush, event: GivePlayerReward, id: "685"`, `source: gamezop_spp, id: "685"`, `properties[0].achievements[0].source: must be gamepush or trackscore, got "gamezop_spp"`},
		{"achievement without id", `id: "first-win", `, ``, `properties[0].achievements[1].id: is required`},
		// Ids no receiver accepts: no event can carry them, so the rule would never pay.
		{"achievement id with a control character", `id: "first-win"`, `id: "first\twin"`, `properties[0].achievements[1].id: must not contain control characters (no event can carry`},
		{"achievement id with U+FFFD", `id: "first-win"`, `id: "first\uFFFDwin"`, `properties[0].achievements[1].id: must not contain U+FFFD`},
		{"target game with a zero-width space", `game: NyM_JGWcx`, `game: "NyM\u200BJGWcx"`, `properties[0].score_targets[0].game: must not contain invisible format characters (found U+200B)`},
		{"duplicate achievement", `source: trackscore, id: "first-win"`, `source: gamepush, event: GivePlayerReward, id: "685"`, `properties[0].achievements[1]: gamepush achievement "685" is already configured at achievements[0]`},
		{"achievement event of another source", `source: gamepush, event: GivePlayerReward, id: "685"`, `source: gamepush, event: milestone.reached, id: "685"`,
			`properties[0].achievements[0].event: must be one of UnlockPlayerAchievement, GivePlayerReward for gamepush, got "milestone.reached"`},
		{"one id with and without an event", `source: trackscore, id: "first-win"`, `source: gamepush, id: "685"`,
			`properties[0].achievements[1]: gamepush achievement "685" is already configured at achievements[0]`},
		{"one id twice for one event", `source: gamepush, event: GivePlayerReward, id: "685", reward: "100", hold: 0s }`,
			"source: gamepush, event: GivePlayerReward, id: \"685\", reward: \"100\", hold: 0s }\n      - { source: gamepush, event: GivePlayerReward, id: \"685\", reward: \"1\" }",
			`properties[0].achievements[1]: gamepush achievement "685" is already configured at achievements[0]`},
		{"negative achievement reward", `reward: "100"`, `reward: "-1"`, `properties[0].achievements[0].reward: must not be negative, got "-1"`},
		{"target reward finer than scale", `reward: "50"`, `reward: "50.5"`, `properties[0].score_targets[0].reward: must have at most 0 decimal places (the property's scale), got "50.5"`},
		{"read_url on sqlite", `url: "sqlite://data/tally.db" }`, `url: "sqlite://data/tally.db", read_url: "postgres://replica/db" }`, `database.read_url: needs database.url on Postgres`},
		{"read_url not postgres", `url: "sqlite://data/tally.db" }`, `url: "postgres://primary/db", read_url: "sqlite://r.db" }`, `database.read_url: must be a postgres:// URL`},
		{"read_url without host", `url: "sqlite://data/tally.db" }`, `url: "postgres://primary/db", read_url: "postgres://" }`, `database.read_url: postgres:// needs a path or host after the scheme`},
		{"achievement reward finer than scale", `reward: "100"`, `reward: "0.000000000000000001"`, `properties[0].achievements[0].reward: must have at most 0 decimal places (the property's scale), got "0.000000000000000001"`},
		{"achievement from a source not configured", `      trackscore:     { secret: "${TS_SECRET}" }         # required` + "\n", ``,
			`properties[0].achievements[1].source: trackscore is not configured under properties[0].sources`},
		{"unknown key", `share: "0.7"`, `sharre: "0.7"`, `properties[0].revenue.sharre: unknown key (known keys here: units_per_usd, share, buffer, hold, min_session_seconds, countries, caps)`},
		{"unknown top-level key", `listen: "127.0.0.1:8080"`, "listen: \":8080\"\nlisten_addr: x", `listen_addr: unknown key`},
		{"key twice", `currency: COIN`, "currency: COIN\n    currency: GEM", `properties[0].currency: key appears twice`},
		{"mapping for a value", `currency: COIN`, `currency: [COIN]`, `properties[0].currency: must be a single value, got a list`},
		{"scalar for a list", `api_keys: ["${ARCADE_API_KEY}"]`, `api_keys: "${ARCADE_API_KEY}"`, `properties[0].api_keys: must be a list, got a single value`},
		{"source without value", `gamepush:       { secret: "${GP_SECRET}" }`, `gamepush:`, `properties[0].sources.gamepush: has no value`},
		{"gamepush without secret", `gamepush:       { secret: "${GP_SECRET}" }`, `gamepush: {}`, `properties[0].sources.gamepush.secret: is required`},
		{"trackscore empty secret", `trackscore:     { secret: "${TS_SECRET}" }`, `trackscore: { secret: "" }`, `properties[0].sources.trackscore.secret: is required`},
		{"anchor", `currency: COIN`, `currency: &c COIN`, `properties[0].currency: YAML anchors and aliases are not supported`},
		{"bad property id", `- id: arcade`, `- id: Arcade`, `properties[0].id: must be 1 to 64 characters of a-z, 0-9 and -, got "Arcade"`},
		{"bad currency", `currency: COIN`, `currency: coin`, `properties[0].currency: must be 1 to 16 of A-Z, 0-9 and _, starting with a letter, got "coin"`},
		{"scale too large", `scale: 0`, `scale: 19`, `properties[0].scale: must be between 0 and 18, got 19`},
		{"scale too large for int32", `scale: 0`, `scale: 9999999999`, `properties[0].scale: must be an integer that fits int32, got "9999999999"`},
		{"no api keys", `api_keys: ["${ARCADE_API_KEY}"]`, `api_keys: []`, `properties[0].api_keys: at least one key is required`},
		{"empty api key", `api_keys: ["${ARCADE_API_KEY}"]`, `api_keys: ["${ARCADE_API_KEY}", ""]`, `properties[0].api_keys[1]: must not be empty`},
		{"api key is the admin token", `api_keys: ["${ARCADE_API_KEY}"]`, `api_keys: ["${TALLY_ADMIN_TOKEN}"]`, `properties[0].api_keys[0]: is the same value as admin_token`},
		{"duplicate property id", "", strings.Replace(secondProperty, "puzzle", "arcade", 1), `properties[1].id: "arcade" is already the id of properties[0]`},
		{"shared api key", "", strings.Replace(secondProperty, "PUZZLE_KEY", "ARCADE_API_KEY", 1), `properties[1].api_keys[0]: is the same value as properties[0].api_keys[0]; a key must identify one property`},
		{"bad schedule", `schedule: "@every 1m"`, `schedule: "every minute"`, `settlement.schedule: must be a cron spec`},
		{"six-field schedule", `schedule: "@every 1m"`, `schedule: "0 * * * * *"`, `settlement.schedule: must be a cron spec`},
		// The schedule is UTC. A zone with nothing after it made robfig/cron panic, and
		// one before "@every 0s" hid the interval from the check below.
		{"time zone alone", `schedule: "@every 1m"`, `schedule: "CRON_TZ=UTC"`, `settlement.schedule: must be a cron spec`},
		{"time zone", `schedule: "@every 1m"`, `schedule: "CRON_TZ=America/New_York 0 3 * * *"`, `settlement.schedule: must be a cron spec`},
		{"time zone before @every 0s", `schedule: "@every 1m"`, `schedule: "TZ=UTC @every 0s"`, `settlement.schedule: must be a cron spec`},
		{"interval under a second", `schedule: "@every 1m"`, `schedule: "@every 500ms"`, `settlement.schedule: must be a cron spec`},
		{"interval of a fraction of seconds", `schedule: "@every 1m"`, `schedule: "@every 1.5s"`, `settlement.schedule: must be a cron spec`},
		{"bad database URL", `url: "sqlite://data/tally.db"`, `url: "mysql://u:pw@h/db"`, `database.url: must start with sqlite://, postgres:// or postgresql://, got scheme "mysql"`},
		{"database URL without scheme", `url: "sqlite://data/tally.db"`, `url: "data/tally.db"`, `database.url: must start with sqlite://, postgres:// or postgresql://, got scheme none`},
		{"empty sqlite path", `url: "sqlite://data/tally.db"`, `url: "sqlite://"`, `database.url: sqlite:// needs a path`},
		{"bad listen", `listen: "127.0.0.1:8080"`, `listen: "8080"`, `listen: must be host:port such as ":8080", got "8080"`},
		// Accepted by tally check, then refused by serve at startup.
		{"listen port out of range", `listen: "127.0.0.1:8080"`, `listen: ":99999"`, `listen: must end in a port number from 0 to 65535, got ":99999"`},
		{"listen port by name", `listen: "127.0.0.1:8080"`, `listen: ":http"`, `listen: must end in a port number from 0 to 65535, got ":http"`},
		{"admin token empty", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_token: ""`, `admin_token: is required`},
		{"admin name with a space", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: "al ice", token: t1}]`,
			`admin_tokens[0].name: must be 1–64 characters of a-z, A-Z, 0-9, '.', '_', '@' or '-', got "al ice"`},
		{"admin name twice", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: alice, token: t1}, {name: alice, token: t2}]`,
			`admin_tokens[1].name: "alice" is already the name of admin_tokens[0]`},
		{"admin named like the default", `admin_token: "${TALLY_ADMIN_TOKEN}"`, "admin_token: \"${TALLY_ADMIN_TOKEN}\"\nadmin_tokens: [{name: admin, token: t1}]",
			`admin_tokens[0].name: "admin" is already the name of admin_token`},
		{"admin named cli", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: cli, token: t1}]`,
			`admin_tokens[0].name: "cli" is reserved`},
		{"admin named applier", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: applier, token: t1}]`,
			`admin_tokens[0].name: "applier" is reserved`},
		{"admin token without value", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: alice}]`, `admin_tokens[0].token: is required`},
		{"two admins one token", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: alice, token: t1}, {name: bob, token: t1}]`,
			`admin_tokens[1].token: is the same value as admin_tokens[0].token`},
		{"api key is a named admin token", `admin_token: "${TALLY_ADMIN_TOKEN}"`, `admin_tokens: [{name: alice, token: "${ARCADE_API_KEY}"}]`,
			`properties[0].api_keys[0]: is the same value as admin_tokens[0].token`},
	}
	env := exampleEnv()
	env["PUZZLE_KEY"] = "key-Secret-puzzle"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := example + tc.new
			if tc.old != "" {
				if !strings.Contains(example, tc.old) {
					t.Fatalf("the example has no %q", tc.old)
				}
				text = strings.Replace(example, tc.old, tc.new, 1)
			}
			_, err := loadText(t, text, env)
			if err == nil {
				t.Fatalf("Load accepted the file; want %q", tc.want)
			}
			path, msg, _ := strings.Cut(tc.want, ": ")
			for _, p := range problems(t, err) {
				if p.Path == path && strings.HasPrefix(p.Message, msg) {
					return
				}
			}
			t.Errorf("no problem %q in:\n%v", tc.want, err)
		})
	}

	// The untouched example, with the second property, is fine: the failures above come
	// from the edits.
	if _, err := loadText(t, example+secondProperty, env); err != nil {
		t.Fatalf("example with a second property: %v", err)
	}
}

// Fixed rewards and caps must fit the property's scale (tally check refused nothing of
// the kind for rewards: 5.255 coins of a scale-2 wallet can never be paid out as written).
func TestRewardsFitTheScale(t *testing.T) {
	example := strings.Replace(readExample(t), `scale: 0`, `scale: 2`, 1)
	tests := []struct {
		old, new string
		problem  string // "" means accepted
	}{
		{`reward: "50"`, `reward: "5.255"`, `properties[0].score_targets[0].reward: must have at most 2 decimal places (the property's scale), got "5.255"`},
		{`reward: "50"`, `reward: "5.25"`, ""},
		{`reward: "50"`, `reward: "5.250"`, ""},
		{`reward: "100"`, `reward: "5.255"`, `properties[0].achievements[0].reward: must have at most 2 decimal places (the property's scale), got "5.255"`},
		{`reward: "100"`, `reward: "0.01"`, ""},
		{`reward: "25"`, `reward: 0.001`, `properties[0].achievements[1].reward: must have at most 2 decimal places (the property's scale), got "0.001"`},
		{`per_session: "500"`, `per_session: "5.255"`, `properties[0].revenue.caps.per_session: must have at most 2 decimal places (the property's scale), got "5.255"`},
		{`per_user_per_day: "10000"`, `per_user_per_day: "99.99"`, ""},
	}
	for _, tc := range tests {
		if !strings.Contains(example, tc.old) {
			t.Fatalf("the example has no %q", tc.old)
		}
		_, err := loadText(t, strings.Replace(example, tc.old, tc.new, 1), exampleEnv())
		if tc.problem == "" {
			if err != nil {
				t.Errorf("%s refused: %v", tc.new, err)
			}
			continue
		}
		if got := problems(t, err); len(got) != 1 || got[0].String() != tc.problem {
			t.Errorf("%s: %v, want exactly %q", tc.new, got, tc.problem)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		Listen:   ":8080",
		Database: Database{URL: "sqlite://x.db"},
		Settlement: Settlement{
			Schedule: "@every 1m",
		},
		AdminToken: "admin",
		Properties: []Property{{
			ID: "a", Currency: "C", APIKeys: []Secret{"k"},
			Revenue: &Revenue{UnitsPerUSD: "1", Share: "1.5", Buffer: "2"},
			ScoreTargets: []ScoreTarget{
				{ID: "t", MinScore: "1", Reward: "1", Per: "week"},
			},
		}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted the config")
	}
	want := []string{
		`properties[0].revenue.share: must be between 0 and 1, got "1.5"`,
		`properties[0].revenue.buffer: must be between 0 and 1, got "2"`,
		`properties[0].score_targets[0].game: is required: the game or leaderboard whose scores count`,
		`properties[0].score_targets[0].per: must be once, day or play, got "week"`,
	}
	got := problems(t, err)
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("problem %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !strings.HasPrefix(err.Error(), "config: 4 problems:\n  properties[0].revenue.share") {
		t.Errorf("Error() = %q", err)
	}
}

func TestValidateZeroConfig(t *testing.T) {
	got := map[string]bool{}
	for _, p := range problems(t, Config{}.Validate()) {
		got[p.String()] = true
	}
	for _, want := range []string{
		"listen: is required",
		"database.url: is required",
		"settlement.schedule: is required",
		"admin_token: is required (or admin_tokens: [{name, token}])",
		"properties: at least one property is required",
	} {
		if !got[want] {
			t.Errorf("missing %q in %v", want, got)
		}
	}
}

func TestValidateAcceptsEdges(t *testing.T) {
	example := readExample(t)
	tests := []struct{ old, new string }{
		{`share: "0.7"`, `share: "1"`},
		{`share: "0.7"`, `share: 0`},
		{`buffer: "0.2"`, `buffer: "1.000"`},
		{`per_session: "500"`, `per_session: "0"`},
		{`per_session: "500"`, `per_session: "500.000"`}, // no digits beyond the scale
		{`caps: { per_session: "500", per_user_per_day: "10000" }`, `caps: {}`},
		{`reward: "50"`, `reward: "50.000"`}, // no digits beyond the scale
		{`reward: "50"`, `reward: "99999999999999999999"`},
		{`reward: "50"`, `reward: "0"`},
		{`hold: 24h`, `hold: 0s`},
		{`min_session_seconds: 10`, `min_session_seconds: 0`},
		{`countries: { "*": "1" }`, `countries: { "US": "1.5", "IN": "0" }`},
		{`countries: { "*": "1" }`, `countries: { "GB": "1", "XK": "0.5", "ZW": "1", "AD": "1" }`}, // XK: Kosovo, in common use
		{`countries: { "*": "1" }`, `countries: {}`},
		// The largest units_per_usd whose 1000 USD session at share 0.7 grosses below 10^20,
		// and any units_per_usd at share 0.
		{`units_per_usd: "100000"`, `units_per_usd: "142857142857142857"`},
		{`units_per_usd: "100000"   # wallet units per USD` + "\n" + `      share: "0.7"`, `units_per_usd: "99999999999999999999"` + "\n" + `      share: "0"`},
		{`states: [over]`, `states: [loaded, start, playing, over, levelup]`},
		{`per: once`, `per: play`},
		{`direction: higher`, `direction: lower`},
		{`schedule: "@every 1m"`, `schedule: "*/5 * * * *"`},
		{`schedule: "@every 1m"`, `schedule: "@every 1m30s"`},
		{`schedule: "@every 1m"`, `schedule: "@every 1s"`},
		{`url: "sqlite://data/tally.db"`, `url: "postgresql://u:p@h:5432/db?sslmode=disable"`},
		{`scale: 0`, `scale: 18`},
		// An empty admin_token beside admin_tokens means none, as before.
		{`admin_token: "${TALLY_ADMIN_TOKEN}"`, "admin_token:\nadmin_tokens: [{ name: alice, token: alice-token-123 }]"},
		{`gamezop_spp:    { bearer_token: "${SPP_TOKEN}" }`, `gamezop_spp: { bearer_token: "" }`},
		{`- id: arcade`, `- id: ` + strings.Repeat("a", 64)},
		{`currency: COIN`, `currency: X_1234567890ABCD`},
	}
	for _, tc := range tests {
		if !strings.Contains(example, tc.old) {
			t.Fatalf("the example has no %q", tc.old)
		}
		if _, err := loadText(t, strings.Replace(example, tc.old, tc.new, 1), exampleEnv()); err != nil {
			t.Errorf("%s: %v", tc.new, err)
		}
	}
}

func TestSubTokensConfig(t *testing.T) {
	base := "admin_token: t\nproperties:\n  - id: a\n    currency: C\n    api_keys: [k]\n    sources: { gamezop_spp: { bearer_token: \"\" } }\n"
	for _, c := range []struct{ yaml, problem string }{
		{"    sub_tokens: { secret: 0123456789abcdef, required: true, max_age: 720h }\n", ""},
		{"    sub_tokens: { secrets: [0123456789abcdef, fedcba9876543210] }\n", ""},
		{"    sub_tokens: { required: true }\n", "properties[0].sub_tokens.secret: is required"},
		{"    sub_tokens: { secret: short }\n", "properties[0].sub_tokens.secret: must be at least 16 bytes, got 5"},
		{"    sub_tokens: { secrets: [0123456789abcdef, x] }\n", "properties[0].sub_tokens.secrets[1]: must be at least 16 bytes"},
		{"    sub_tokens: { secret: 0123456789abcdef, secrets: [fedcba9876543210] }\n", "properties[0].sub_tokens.secrets: write secret or secrets, not both"},
		{"    sub_tokens: { secret: 0123456789abcdef, max_age: -1h }\n", "properties[0].sub_tokens.max_age: must not be negative"},
	} {
		c2, err := loadText(t, base+c.yaml, nil)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%s: %v", c.yaml, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%s: %v, want %q", c.yaml, err, c.problem)
		case c.problem == "" && (c2.Properties[0].SubTokens == nil || len(c2.Properties[0].SubTokens.Keys()) == 0):
			t.Errorf("%s: loaded %+v", c.yaml, c2.Properties[0].SubTokens)
		}
	}
}

// A provider's credential that is also an admin token or another property's API key
// would give the provider (or whoever reads its dashboard) admin or redeem rights; one
// Gamezop property counted by two properties would release its buffer twice.
func TestCredentialsAndGamezopPropertiesAreNotShared(t *testing.T) {
	two := func(a, b string) string {
		return "admin_token: adm-token\nproperties:\n" +
			"  - id: a\n    currency: C\n    api_keys: [key-a]\n" + a +
			"  - id: b\n    currency: C\n    api_keys: [key-b]\n" + b
	}
	for _, c := range []struct{ yaml, problem string }{
		{two("    sources: { gamezop_spp: { bearer_token: adm-token } }\n", ""),
			"properties[0].sources.gamezop_spp.bearer_token: is the same value as admin_token"},
		{two("", "    sources: { gamezop_spp: { bearer_token: key-a } }\n"),
			"properties[1].sources.gamezop_spp.bearer_token: is the same value as properties[0].api_keys[0]"},
		{two("    sources: { gamezop_scores: { api_key: key-b } }\n", ""),
			"properties[0].sources.gamezop_scores.api_key: is the same value as properties[1].api_keys[0]"},
		{two("    sources: { gamepush: { secret: key-a } }\n", ""),
			"properties[0].sources.gamepush.secret: is the same value as properties[0].api_keys[0]"},
		{two("    sub_tokens: { secrets: [adm-token-but-longer, key-b] }\n", ""),
			"properties[0].sub_tokens.secrets[1]: is the same value as properties[1].api_keys[0]"},
		{two("    gamezop_property_id: \"1234\"\n", "    gamezop_property_id: \"1234\"\n"),
			`properties[1].gamezop_property_id: "1234" is already the gamezop_property_id of properties[0]`},
		{two("    sources: { gamepush: { secret: a-shared-secret-of-16 } }\n", "    sub_tokens: { secret: a-shared-secret-of-16 }\n"),
			"properties[1].sub_tokens.secret: is the same value as properties[0].sources.gamepush.secret; a signing secret must not be a credential a provider holds"},
		// A sub token does not name its property: signed for a, it would credit b's user.
		{two("    sub_tokens: { secret: shared-sub-secret-0123 }\n", "    sub_tokens: { secrets: [other-sub-secret-0123, shared-sub-secret-0123] }\n"),
			"properties[1].sub_tokens.secrets[1]: is a signing secret of properties[0] too; give each property its own"},
		{two("    webhooks: [{ url: \"https://a.example/hook\", secret: whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3, events: [redemption.created] }]\n",
			"    sub_tokens: { secret: whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3 }\n"),
			"properties[1].sub_tokens.secret: is a signing secret of properties[0] too"},
		// Providers' credentials may repeat among themselves: one Gamezop account posts
		// to both properties with one token.
		{two("    gamezop_property_id: \"1\"\n    sources: { gamezop_spp: { bearer_token: gz } }\n",
			"    gamezop_property_id: \"2\"\n    sources: { gamezop_spp: { bearer_token: gz } }\n"), ""},
	} {
		_, err := loadText(t, c.yaml, nil)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%s: %v", c.yaml, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%s: %v, want %q", c.yaml, err, c.problem)
		}
	}
}

func TestGamezopReportsConfig(t *testing.T) {
	base := "admin_token: t\nproperties:\n  - id: a\n    currency: C\n    api_keys: [k]\n"
	for _, c := range []struct{ yaml, problem string }{
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { bearer_token: tok }\n", ""},
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { url: \"http://127.0.0.1:9/x\", bearer_token: tok }\n", ""},
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { url: \"ftp://x\", bearer_token: tok }\n", "properties[0].gamezop_reports.url: must be an absolute https URL"},
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { url: \"http://reports.example/x\", bearer_token: tok }\n", "properties[0].gamezop_reports.url: must be https"},
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { url: \"https://u:pw@reports.example/x\", bearer_token: tok }\n", "properties[0].gamezop_reports.url: must not hold credentials"},
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { url: \"http://localhost:9/x\", bearer_token: tok }\n", ""},
		{"    gamezop_property_id: \"1234\"\n    gamezop_reports: { url: \"https://x\" }\n", "properties[0].gamezop_reports.bearer_token: is required"},
		{"    gamezop_reports: { bearer_token: tok }\n", "properties[0].gamezop_reports: needs gamezop_property_id"},
	} {
		got, err := loadText(t, base+c.yaml, nil)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%s: %v", c.yaml, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%s: %v, want %q", c.yaml, err, c.problem)
		case c.problem == "" && got.Properties[0].GamezopReports.Endpoint() == "":
			t.Errorf("%s: no endpoint", c.yaml)
		}
	}
}

// A true/false key takes its value from the environment like any other: it was refused
// as "must be a plain string".
func TestBooleanFromTheEnvironment(t *testing.T) {
	base := "admin_token: t\nproperties:\n  - id: a\n    currency: C\n    api_keys: [k]\n    sub_tokens:\n      secret: 0123456789abcdef\n      required: ${REQ}\n"
	c, err := loadText(t, base, map[string]string{"REQ": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Property("a"); p.SubTokens == nil || !p.SubTokens.Required {
		t.Fatalf("required from REQ=true: %+v", p.SubTokens)
	}
	if _, err := loadText(t, base, map[string]string{"REQ": "maybe"}); err == nil || !strings.Contains(err.Error(), "properties[0].sub_tokens.required: must be true or false") {
		t.Fatalf("REQ=maybe: %v", err)
	}
}

// A credential sent in a header cannot have leading or trailing whitespace or control
// characters: no request could present it, and a token of spaces signed anyone in to
// the console, whose form field is not trimmed.
func TestHeaderCredentialsRefuseWhitespace(t *testing.T) {
	for _, c := range []struct{ name, value, problem string }{
		{"TALLY_ADMIN_TOKEN", "   ", "admin_token: is only whitespace"},
		{"TALLY_ADMIN_TOKEN", "\t", "admin_token: is only whitespace"},
		{"TALLY_ADMIN_TOKEN", "adm-Secret-7f3a9c\n", "admin_token: has leading or trailing whitespace"},
		{"ARCADE_API_KEY", " key-Secret-19be44", "properties[0].api_keys[0]: has leading or trailing whitespace"},
		{"SPP_TOKEN", "spp-Secret-a0c2d1 ", "properties[0].sources.gamezop_spp.bearer_token: has leading or trailing whitespace"},
		{"SCORES_KEY", "scr-Secret\x0155e0aa", "properties[0].sources.gamezop_scores.api_key: has a control character"},
	} {
		env := exampleEnv()
		env[c.name] = c.value
		_, err := Load(examplePath, getenvFrom(env))
		if err == nil || !strings.Contains(err.Error(), c.problem) {
			t.Errorf("%s=%q: %v, want %q", c.name, c.value, err, c.problem)
		}
	}
	yaml := "admin_tokens: [{ name: alice, token: \"  \" }]\nproperties:\n  - id: a\n    currency: C\n    api_keys: [key-a]\n"
	if _, err := loadText(t, yaml, nil); err == nil || !strings.Contains(err.Error(), "admin_tokens[0].token: is only whitespace") {
		t.Errorf("admin_tokens[0].token of spaces: %v", err)
	}
	// Inside a token, a space is a character like another.
	env := exampleEnv()
	env["TALLY_ADMIN_TOKEN"] = "adm Secret 7f3a9c"
	if _, err := Load(examplePath, getenvFrom(env)); err != nil {
		t.Errorf("a token with inner spaces: %v", err)
	}
}

// A provider's signing secret with leading or trailing whitespace (read from a file with
// its newline) is refused: the provider signs with the secret as its dashboard shows it,
// so every webhook failed to verify and was answered 401. Inside a secret, whitespace is
// a character like another.
func TestProviderSigningSecretsRefuseWhitespace(t *testing.T) {
	for _, c := range []struct{ name, value, problem string }{
		{"GP_SECRET", "gps-Secret-0b9e72\n", "properties[0].sources.gamepush.secret: has leading or trailing whitespace"},
		{"TS_SECRET", " tss-Secret-d41d8c", "properties[0].sources.trackscore.secret: has leading or trailing whitespace"},
	} {
		env := exampleEnv()
		env[c.name] = c.value
		_, err := Load(examplePath, getenvFrom(env))
		if err == nil || !strings.Contains(err.Error(), c.problem) {
			t.Errorf("%s=%q: %v, want %q", c.name, c.value, err, c.problem)
		}
	}
	base := "admin_token: adm-token\nproperties:\n  - id: a\n    currency: C\n    api_keys: [key-a]\n    sources:\n"
	if _, err := loadText(t, base+"      trackscore: { secret: ts-new, previous_secrets: [\"${TS_OLD}\"] }\n", map[string]string{"TS_OLD": "ts-old\n"}); err == nil ||
		!strings.Contains(err.Error(), "properties[0].sources.trackscore.previous_secrets[0]: has leading or trailing whitespace") {
		t.Errorf("a previous TrackScore secret with its newline: %v", err)
	}
	if _, err := loadText(t, base+"      gamepush: { secret: \"gp secret\" }\n", nil); err != nil {
		t.Errorf("a secret with inner spaces: %v", err)
	}
}

// A provider's credential can be rotated: the previous values are read, offered to the
// receivers beside the current one, and checked like it. GamePush has none (its dedupe
// key is the signed body), so the key is refused there as unknown.
func TestProviderCredentialRotation(t *testing.T) {
	base := "admin_token: adm-token\nproperties:\n  - id: a\n    currency: C\n    api_keys: [key-a]\n    sources:\n"
	cfg, err := loadText(t, base+
		"      gamezop_spp: { bearer_token: spp-new, previous_bearer_tokens: [spp-old] }\n"+
		"      gamezop_scores: { api_key: scores-new, previous_api_keys: [scores-old, scores-older] }\n"+
		"      trackscore: { secret: ts-new, previous_secrets: [\"${TS_OLD}\"] }\n"+
		"      gamepush: { secret: gp }\n", map[string]string{"TS_OLD": "ts-old"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cfg.Property("a")
	for src, want := range map[rewards.Source][]string{
		rewards.SourceGamezopSPP:    {"spp-old"},
		rewards.SourceGamezopScores: {"scores-old", "scores-older"},
		rewards.SourceTrackScore:    {"ts-old"},
		rewards.SourceGamePush:      {},
	} {
		if got := p.PreviousCredentials(src); !slices.Equal(got, want) {
			t.Errorf("previous credentials of %s = %q, want %q", src, got, want)
		}
	}
	var sb strings.Builder
	if err := Describe(&sb, cfg); err != nil || strings.Contains(sb.String(), "spp-old") || strings.Contains(sb.String(), "ts-old") ||
		!strings.Contains(sb.String(), "gamezop_scores (authenticated; 2 previous credential(s) accepted too, while the provider rotates)") {
		t.Errorf("tally check shows a previous credential: %v\n%s", err, sb.String())
	}

	for _, c := range []struct{ sources, problem string }{
		{"gamezop_spp: { bearer_token: \"\", previous_bearer_tokens: [spp-old] }",
			"properties[0].sources.gamezop_spp.previous_bearer_tokens: needs properties[0].sources.gamezop_spp.bearer_token"},
		{"gamezop_spp: { bearer_token: spp, previous_bearer_tokens: [spp] }",
			"properties[0].sources.gamezop_spp.previous_bearer_tokens[0]: is the same value as properties[0].sources.gamezop_spp.bearer_token"},
		{"gamezop_scores: { api_key: k, previous_api_keys: [k1, k1] }",
			"properties[0].sources.gamezop_scores.previous_api_keys[1]: is listed twice"},
		{"gamezop_scores: { api_key: k, previous_api_keys: [\"k1 \"] }",
			"properties[0].sources.gamezop_scores.previous_api_keys[0]: has leading or trailing whitespace"},
		{"trackscore: { secret: s, previous_secrets: [\"\"] }",
			"properties[0].sources.trackscore.previous_secrets[0]: is empty"},
		{"trackscore: { secret: s, previous_secrets: [key-a] }",
			"properties[0].sources.trackscore.previous_secrets[0]: is the same value as properties[0].api_keys[0]"},
		{"gamepush: { secret: s, previous_secrets: [s0] }",
			"properties[0].sources.gamepush.previous_secrets"},
		// A list item left without its value (commented out) is not dropped unseen.
		{"gamezop_spp: { bearer_token: t, previous_bearer_tokens: [~] }",
			"properties[0].sources.gamezop_spp.previous_bearer_tokens[0]: has no value"},
		{"trackscore: { secret: s, previous_secrets: [s0, null] }",
			"properties[0].sources.trackscore.previous_secrets[1]: has no value"},
	} {
		_, err := loadText(t, base+"      "+c.sources+"\n", nil)
		if err == nil || !strings.Contains(err.Error(), c.problem) {
			t.Errorf("%s: %v, want %q", c.sources, err, c.problem)
		}
	}
}
