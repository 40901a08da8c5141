package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

const examplePath = "../tally.example.yaml"

// exampleEnv gives every variable the example file references a distinct value that
// appears nowhere else, so tests can search output for it.
func exampleEnv() map[string]string {
	return map[string]string{
		"TALLY_ADMIN_TOKEN": "adm-Secret-7f3a9c",
		"ARCADE_API_KEY":    "key-Secret-19be44",
		"SPP_TOKEN":         "spp-Secret-a0c2d1",
		"SCORES_KEY":        "scr-Secret-55e0aa",
		"GP_SECRET":         "gps-Secret-0b9e72",
		"TS_SECRET":         "tss-Secret-d41d8c",
	}
}

func getenvFrom(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

// loadText loads a config written to a temporary file.
func loadText(t *testing.T, text string, env map[string]string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tally.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path, getenvFrom(env))
}

func readExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func problems(t *testing.T, err error) []Problem {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return e.Problems
}

func TestLoadExample(t *testing.T) {
	env := exampleEnv()
	c, err := Load(examplePath, getenvFrom(env))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The example carries public development secrets, so it listens on loopback only.
	if c.Listen != "127.0.0.1:8080" || c.Database.URL != "sqlite://data/tally.db" || c.Settlement.Schedule != "@every 1m" {
		t.Errorf("top level = %q %q %q", c.Listen, c.Database.URL, c.Settlement.Schedule)
	}
	if got := c.AdminToken.Reveal(); got != env["TALLY_ADMIN_TOKEN"] {
		t.Errorf("admin token = %q", got)
	}
	p, ok := c.Property("arcade")
	if !ok {
		t.Fatal("property arcade not found")
	}
	if _, ok := c.Property("nope"); ok {
		t.Error("Property(nope) found something")
	}
	if p.GamezopPropertyID != "1234" || p.Currency != "COIN" || p.Scale != 0 {
		t.Errorf("property = %q %q %d", p.GamezopPropertyID, p.Currency, p.Scale)
	}
	if len(p.APIKeys) != 1 || p.APIKeys[0].Reveal() != env["ARCADE_API_KEY"] {
		t.Errorf("api keys = %d", len(p.APIKeys))
	}

	creds := []struct {
		src                    rewards.Source
		bearer, apiKey, secret string
	}{
		{rewards.SourceGamezopSPP, env["SPP_TOKEN"], "", ""},
		{rewards.SourceGamezopScores, "", env["SCORES_KEY"], ""},
		{rewards.SourceGamePush, "", "", env["GP_SECRET"]},
		{rewards.SourceTrackScore, "", "", env["TS_SECRET"]},
	}
	for _, tc := range creds {
		bearer, apiKey, secret, ok := p.Credentials(tc.src)
		if !ok || bearer != tc.bearer || apiKey != tc.apiKey || secret != tc.secret {
			t.Errorf("Credentials(%s) = %q %q %q %v", tc.src, bearer, apiKey, secret, ok)
		}
	}
	if _, _, _, ok := p.Credentials("nope"); ok {
		t.Error("Credentials(nope) ok")
	}
}

func TestCredentialsUnconfigured(t *testing.T) {
	p := Property{Sources: Sources{GamezopSPP: &GamezopSPP{}}}
	if bearer, _, _, ok := p.Credentials(rewards.SourceGamezopSPP); !ok || bearer != "" {
		t.Errorf("SPP with no token: %q %v, want configured without auth", bearer, ok)
	}
	for _, src := range []rewards.Source{rewards.SourceGamezopScores, rewards.SourceGamePush, rewards.SourceTrackScore} {
		if _, _, _, ok := p.Credentials(src); ok {
			t.Errorf("Credentials(%s) ok for an unconfigured source", src)
		}
	}
}

func TestUnsetVariablesAreNamed(t *testing.T) {
	env := exampleEnv()
	delete(env, "GP_SECRET")
	env["TS_SECRET"] = "" // empty counts as unset
	_, err := Load(examplePath, getenvFrom(env))
	if err == nil {
		t.Fatal("Load succeeded with unset variables")
	}
	want := []Problem{
		{"properties[0].sources.gamepush.secret", "environment variable GP_SECRET is not set or is empty (where an empty value is allowed, write \"\" instead of the reference)"},
		{"properties[0].sources.trackscore.secret", "environment variable TS_SECRET is not set or is empty (where an empty value is allowed, write \"\" instead of the reference)"},
	}
	if got := problems(t, err); !slices.Equal(got, want) {
		t.Errorf("problems = %v, want %v", got, want)
	}
	for _, name := range []string{"GP_SECRET", "TS_SECRET", examplePath} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestExpansionCannotInjectYAML(t *testing.T) {
	const file = `
listen: ":8080"
admin_token: ${TOKEN}
properties:
  - id: arcade
    currency: COIN
    api_keys: ["${KEY}"]
    sources:
      gamepush: { secret: '${GP}' }
`
	values := []string{
		"x\"\nlisten: \":9999\"\n# ",
		"a: b",
		"# not a comment",
		"}, trackscore: {secret: s}",
		"'single' \"double\"",
		"null",
		"~",
		"123",
		"true",
		"&anchor x",
		"*alias",
		"- item",
		"${OTHER}", // expanded text is not expanded again
		"$${ESCAPED}",
		"line1\nline2\r\n\ttab",
	}
	for _, v := range values {
		env := map[string]string{"TOKEN": v, "KEY": "k" + v, "GP": "g" + v, "OTHER": "leaked"}
		// Decoded, not validated: a token with a newline is refused by validation (a
		// header cannot carry it), after expansion, which is what this test is about.
		c, problems := parse([]byte(file), getenvFrom(env))
		if len(problems) > 0 {
			t.Errorf("value %q: %v", v, problems)
			continue
		}
		p, _ := c.Property("arcade")
		if c.AdminToken.Reveal() != v || p.APIKeys[0].Reveal() != "k"+v || p.Sources.GamePush.Secret.Reveal() != "g"+v {
			t.Errorf("value %q came back as %q / %q / %q", v, c.AdminToken.Reveal(), p.APIKeys[0].Reveal(), p.Sources.GamePush.Secret.Reveal())
		}
		if c.Listen != ":8080" || len(c.Properties) != 1 || p.Sources.TrackScore != nil {
			t.Errorf("value %q changed the structure: listen %q, %d properties, trackscore %v", v, c.Listen, len(c.Properties), p.Sources.TrackScore)
		}
	}
}

func TestExpansionSyntax(t *testing.T) {
	base := "admin_token: t\nproperties: [{id: a, currency: C, api_keys: [k]}]\n"
	env := map[string]string{"NAME": "value", "SCALE": "2"}
	tests := []struct {
		yaml    string
		want    string // listen after loading
		problem string // or the problem reported
	}{
		{`listen: "h${NAME}:1"`, "hvalue:1", ""},
		{`listen: "$${NAME}:1"`, "${NAME}:1", ""},
		{`listen: "$$:1"`, "$$:1", ""},
		{`listen: "a$b:1"`, "a$b:1", ""},
		{`listen: "${NAME"`, "", "listen: unterminated ${"},
		{`listen: "${}"`, "", "listen: malformed ${...} reference"},
		{`listen: "${A-B}"`, "", "listen: malformed ${...} reference"},
		{`listen: "${1A}"`, "", "listen: malformed ${...} reference"},
		{`listen: "${X}${Y}"`, "", "listen: environment variable X is not set"},
		{`listen: "${X}${Y}"`, "", "listen: environment variable Y is not set"},
		{"listen: :1 # ${NOT_EXPANDED_IN_COMMENTS}", ":1", ""},
	}
	for _, tc := range tests {
		c, err := loadText(t, base+tc.yaml+"\n", env)
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.problem == "" && c.Listen != tc.want:
			t.Errorf("%s: listen = %q, want %q", tc.yaml, c.Listen, tc.want)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.problem)
		}
	}
}

func TestExpansionIntoIntegers(t *testing.T) {
	// Block style: in a flow mapping a plain ${S} would end at its "}"; quote it there.
	base := "admin_token: t\nproperties:\n  - id: a\n    currency: C\n    api_keys: [k]\n    scale: %s\n"
	tests := []struct {
		scale, value string
		want         int32
		problem      string
	}{
		{"${S}", "2", 2, ""},
		{"${S}", "2\nid: b", 0, `properties[0].scale: must be an integer, got "2\nid: b"`},
		{`"${S}"`, "2", 0, "properties[0].scale: must be an integer"}, // quoted is a string, as `scale: "2"` is
		{"2.5", "", 0, `properties[0].scale: must be an integer, got "2.5"`},
		// YAML reads these as octal or hexadecimal (010 was 8), where a decimal key reads
		// "010" as ten: refused, not read in another base.
		{"010", "", 0, `properties[0].scale: must be an integer in base 10 without leading zeros (YAML reads 010 as octal 8), got "010"`},
		{"0o10", "", 0, "properties[0].scale: must be an integer in base 10"},
		{"0x10", "", 0, "properties[0].scale: must be an integer in base 10"},
		{"${S}", "010", 0, "properties[0].scale: must be an integer in base 10"},
		{"0", "", 0, ""},
	}
	for _, tc := range tests {
		c, err := loadText(t, strings.Replace(base, "%s", tc.scale, 1), map[string]string{"S": tc.value})
		if tc.problem == "" {
			if err != nil || c.Properties[0].Scale != tc.want {
				t.Errorf("scale %s=%q: %v, %+v", tc.scale, tc.value, err, c.Properties)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("scale %s=%q: error %v, want %q", tc.scale, tc.value, err, tc.problem)
		}
	}
}

func TestDecimalsKeepTheirLiteral(t *testing.T) {
	text := strings.Replace(readExample(t), `share: "0.7"`, "share: 0.30000000000000004", 1)
	text = strings.Replace(text, `units_per_usd: "100000"`, "units_per_usd: 1e5", 1)
	c, err := loadText(t, text, exampleEnv())
	if err != nil {
		t.Fatal(err)
	}
	rev := c.Properties[0].Rules().Revenue
	if want := decimal.RequireFromString("0.30000000000000004"); !rev.Share.Equal(want) {
		t.Errorf("share = %s, want %s (exact literal, not a float64)", rev.Share, want)
	}
	if !rev.UnitsPerUSD.Equal(decimal.NewFromInt(100000)) {
		t.Errorf("units_per_usd = %s", rev.UnitsPerUSD)
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name             string
		env              map[string]string
		listen, database string
	}{
		{"none", nil, "127.0.0.1:8080", "sqlite://data/tally.db"},
		{"listen", map[string]string{"TALLY_LISTEN": "127.0.0.1:9000"}, "127.0.0.1:9000", "sqlite://data/tally.db"},
		{"database", map[string]string{"TALLY_DATABASE_URL": "postgres://u@db:5432/tally"}, "127.0.0.1:8080", "postgres://u@db:5432/tally"},
		{"empty is no override", map[string]string{"TALLY_LISTEN": "", "TALLY_DATABASE_URL": ""}, "127.0.0.1:8080", "sqlite://data/tally.db"},
		{"override is validated", map[string]string{"TALLY_DATABASE_URL": "mysql://x"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := exampleEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := Load(examplePath, getenvFrom(env))
			if tc.listen == "" {
				if err == nil || !strings.Contains(err.Error(), "database.url: must start with") ||
					!strings.Contains(err.Error(), "(set by TALLY_DATABASE_URL)") { // not the file's value
					t.Fatalf("error %v, want database.url refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Listen != tc.listen || c.Database.URL != tc.database {
				t.Errorf("listen %q database %q, want %q %q", c.Listen, c.Database.URL, tc.listen, tc.database)
			}
		})
	}
}

// TALLY_DATABASE_URL replacing database.url leaves the file's read_url a replica of
// another database: publishers would read balances from one ledger while redemptions
// debit another. It is refused unless TALLY_DATABASE_READ_URL replaces read_url too.
func TestDatabaseURLOverrideAndTheFilesReadURL(t *testing.T) {
	const file = `
admin_token: t
database: { url: "postgres://u@primary-b:5432/tally", read_url: "postgres://u@replica-b:5432/tally" }
properties:
  - id: arcade
    currency: COIN
    api_keys: [k]
    sources: { gamepush: { secret: s } }
`
	tests := []struct {
		name      string
		env       map[string]string
		err, read string
	}{
		{"no override", nil, "", "postgres://u@replica-b:5432/tally"},
		{"the same url", map[string]string{"TALLY_DATABASE_URL": "postgres://u@primary-b:5432/tally"}, "", "postgres://u@replica-b:5432/tally"},
		{"another url", map[string]string{"TALLY_DATABASE_URL": "postgres://u@primary-a:5432/tally"},
			"database.read_url: is the file's while TALLY_DATABASE_URL replaces database.url", ""},
		{"both overridden", map[string]string{"TALLY_DATABASE_URL": "postgres://u@primary-a:5432/tally",
			"TALLY_DATABASE_READ_URL": "postgres://u@replica-a:5432/tally"}, "", "postgres://u@replica-a:5432/tally"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadText(t, file, tc.env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.Database.ReadURL != tc.read {
				t.Fatalf("read_url %q, %v; want %q", c.Database.ReadURL, err, tc.read)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	const file = `
admin_token: t
properties:
  - id: arcade
    currency: COIN
    api_keys: [k]
    sources: { gamepush: { secret: s } }
    revenue: { units_per_usd: "100", share: "1", buffer: "0" }
    score_targets: [{ id: t1, game: g, min_score: "1", reward: "1" }]
    achievements: [{ source: gamepush, id: a, reward: "1" }]
`
	c, err := loadText(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.Database.URL != DefaultDatabaseURL || c.Settlement.Schedule != DefaultSchedule {
		t.Errorf("defaults = %q %q %q", c.Listen, c.Database.URL, c.Settlement.Schedule)
	}
	p := c.Properties[0]
	if p.Revenue.Hold != "0s" || len(p.Revenue.Countries) != 1 || p.Revenue.Countries["*"] != "1" {
		t.Errorf("revenue defaults: hold %q countries %v", p.Revenue.Hold, p.Revenue.Countries)
	}
	tg := p.ScoreTargets[0]
	if tg.Direction != rewards.Higher || tg.Per != rewards.PerOnce || !slices.Equal(tg.States, []string{"over"}) || tg.Hold != "0s" {
		t.Errorf("target defaults: %+v", tg)
	}
	if p.Achievements[0].Hold != "0s" {
		t.Errorf("achievement hold %q", p.Achievements[0].Hold)
	}
	for _, want := range []string{`listen: :8080`, `url: sqlite://data/tally.db`, `schedule: '@every 1m'`, `direction: higher`, `per: once`, `'*': "1"`} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String() lacks %q:\n%s", want, c.String())
		}
	}

	// An explicit empty countries map is kept: no country earns.
	c, err = loadText(t, strings.Replace(file, `buffer: "0" }`, `buffer: "0", countries: {} }`, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Properties[0].Rules().Revenue.Countries); n != 0 {
		t.Errorf("countries: {} became %d entries", n)
	}
}

func TestResolve(t *testing.T) {
	env := getenvFrom(map[string]string{"TALLY_CONFIG": "/etc/tally.yaml"})
	tests := []struct {
		flag   string
		getenv func(string) string
		want   string
	}{
		{"cli.yaml", env, "cli.yaml"},
		{"", env, "/etc/tally.yaml"},
		{"", getenvFrom(nil), "tally.yaml"},
		{"", nil, "tally.yaml"},
	}
	for _, tc := range tests {
		if got := Resolve(tc.flag, tc.getenv); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.flag, got, tc.want)
		}
	}
}

func TestLoadFileProblems(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	tests := []struct{ text, want string }{
		{"", "the file is empty"},
		{"listen: [", "yaml:"},
		{"listen: a\n---\nlisten: b\n", "exactly one YAML document"},
		{"- a\n- b\n", "must be a mapping"},
	}
	for _, tc := range tests {
		if _, err := loadText(t, tc.text, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestSettlementParse(t *testing.T) {
	for spec, ok := range map[string]bool{
		"@every 1m": true, "*/5 * * * *": true, "@hourly": true, "0 3 * * *": true,
		"@every 0s": false, "@every -1m": false, "every minute": false, "* * * * * *": false, "": false,
		"0 0 30 2 *": false, "0 0 31 4 *": false, "0 0 29 2 *": true,
	} {
		sched, err := Settlement{Schedule: spec}.Parse()
		if (err == nil) != ok {
			t.Errorf("Parse(%q) error %v, want ok=%v", spec, err, ok)
		}
		if ok {
			from := time.Date(2025, 1, 1, 0, 0, 30, 0, time.UTC)
			if next := sched.Next(from); !next.After(from) {
				t.Errorf("Parse(%q).Next = %v", spec, next)
			}
		}
	}
}

// Named admin tokens load with their names; the single admin_token is the admin "admin",
// and either alone is enough.
func TestAdminTokens(t *testing.T) {
	base := "properties: [{id: a, currency: C, api_keys: [k]}]\n"
	c, err := loadText(t, base+"admin_token: t0\nadmin_tokens:\n  - {name: alice, token: \"${ALICE}\"}\n  - {name: bob, token: t2}\n",
		map[string]string{"ALICE": "t1"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Admins()
	if len(got) != 3 || got[0].Name != "admin" || got[0].Token.Reveal() != "t0" || got[1].Name != "alice" ||
		got[1].Token.Reveal() != "t1" || got[2].Name != "bob" {
		t.Fatalf("Admins() = %v", got)
	}
	if strings.Contains(c.String(), "t1") {
		t.Errorf("a named admin token is printed: %s", c)
	}
	c, err = loadText(t, base+"admin_tokens: [{name: alice, token: t1}]\n", nil)
	if err != nil || len(c.Admins()) != 1 || c.Admins()[0].Name != "alice" {
		t.Fatalf("admin_tokens alone: %v, %v", c.Admins(), err)
	}
}
