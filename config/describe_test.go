package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSecretNeverPrinted(t *testing.T) {
	const value = "hunter2-Secret"
	s := Secret(value)
	outputs := map[string]string{
		"String": s.String(),
		"%v":     fmt.Sprintf("%v", s),
		"%s":     fmt.Sprintf("%s", s),
		"%q":     fmt.Sprintf("%q", s),
		"%x":     fmt.Sprintf("%x", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%+v":    fmt.Sprintf("%+v", struct{ S Secret }{s}),
		"slice":  fmt.Sprintf("%v", []Secret{s}),
	}
	if b, err := json.Marshal(struct{ S Secret }{s}); err == nil {
		outputs["json"] = string(b)
	} else {
		t.Fatal(err)
	}
	if b, err := yaml.Marshal(struct{ S Secret }{s}); err == nil {
		outputs["yaml"] = string(b)
	} else {
		t.Fatal(err)
	}
	var log bytes.Buffer
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", "secret", s)
	outputs["slog"] = log.String()

	for name, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
		if !strings.Contains(out, "****") {
			t.Errorf("%s does not show the mask: %s", name, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if Secret("").String() != "" || fmt.Sprint(Secret("")) != "" {
		t.Error("an empty secret should print as empty")
	}
}

// TestOutputHasNoSecrets checks String, Describe, fmt and the error text for every
// secret value the example file is loaded with, plus a database password.
func TestOutputHasNoSecrets(t *testing.T) {
	env := exampleEnv()
	env["TALLY_DATABASE_URL"] = "postgres://tally:db-Secret-pw@db:5432/tally?sslmode=disable&password=db-Secret-q"
	c, err := Load(examplePath, getenvFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	c.Database.ReadURL = "postgres://tally:db-Secret-rp@replica:5432/tally"
	var described bytes.Buffer
	if err := Describe(&described, c); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":   c.String(),
		"Describe": described.String(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"property": fmt.Sprintf("%#v", c.Properties[0]),
	}
	secrets := []string{"db-Secret-pw", "db-Secret-q", "db-Secret-rp"}
	for _, v := range exampleEnv() {
		secrets = append(secrets, v)
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s contains secret %q:\n%s", name, s, out)
			}
		}
	}
	if !strings.Contains(c.String(), "postgres://tally:****@db:5432/tally?sslmode=disable&password=****") {
		t.Errorf("String does not show the redacted URL:\n%s", c.String())
	}
	if !strings.Contains(c.String(), "postgres://tally:****@replica:5432/tally") {
		t.Errorf("String does not show the redacted read URL:\n%s", c.String())
	}

	// Problems never echo a secret either.
	env = exampleEnv()
	env["ARCADE_API_KEY"] = env["TALLY_ADMIN_TOKEN"]
	env["TALLY_DATABASE_URL"] = "mysql://root:db-Secret-pw@h/db"
	_, err = Load(examplePath, getenvFrom(env))
	if err == nil {
		t.Fatal("Load accepted a shared key and a mysql URL")
	}
	for _, s := range append(secrets, env["TALLY_ADMIN_TOKEN"]) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error contains secret %q: %v", s, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"sqlite://data/tally.db":                        "sqlite://data/tally.db",
		"postgres://u@h:5432/db?sslmode=disable":        "postgres://u@h:5432/db?sslmode=disable",
		"postgres://u:p@h/db":                           "postgres://u:****@h/db",
		"postgresql://u:p@h/db?password=p&sslmode=x":    "postgresql://u:****@h/db?password=****&sslmode=x",
		"postgres://h/db?sslpassword=p":                 "postgres://h/db?sslpassword=****",
		"postgres://u:p%zz@h/db":                        "****",
		"postgres://u@h/db?%zz=p":                       "postgres://u@h/db?%zz=****",
		"postgres://u:pa ss@h/db":                       "****", // does not parse: hidden whole
		"postgres://u@h/db?application_name=tally&x=y&": "postgres://u@h/db?application_name=tally&x=y&",
		// A password with an unescaped "?", "#" or "/" cuts url.Parse's user info short
		// (pgx may still read it whole): hidden whole.
		"postgres://tally:8734?Zq!x@db.internal:5432/tally": "****",
		"postgres://tally:?Zq8!x@db.internal:5432/tally":    "****",
		"postgres://tally:#Zq8!x@db.internal:5432/tally":    "****",
		"postgres://tally:12/Zq@db.internal/tally":          "****",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	c, err := Load(examplePath, getenvFrom(exampleEnv()))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Describe(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	r := c.Properties[0].Rules()
	for _, want := range []string{
		"# effective configuration (secrets masked)",
		"admin_token: '****'",
		"property arcade: wallet in COIN, scale 0 (whole units)",
		`SPP postbacks must carry property-id "1234"`,
		"sources: gamezop_spp (authenticated), gamezop_scores (authenticated), gamepush (authenticated), trackscore (authenticated)",
		"revenue share [version " + r.Revenue.Version + "]",
		"gross = revenue USD × 0.7 (share) × country multiplier × 100000 COIN per USD",
		"gross × 0.2 (truncated to 18 decimal places) is withheld to @buffer; the user is credited the rest",
		"country multipliers: every country ×1",
		"sessions shorter than 10 seconds earn nothing",
		"cap per session: 500 COIN; cap per user per UTC day: 10000 COIN",
		"credits stay pending for 24h, then settle to available",
		"score target snake-500 [version " + r.Targets[0].Version + "]",
		`pays 50 COIN once per user when a score on game "NyM_JGWcx" is at least 500 (higher is better)`,
		"Gamezop scores count in states: over",
		`achievement gamepush "685" (GivePlayerReward) [version ` + r.Achievements[0].Version + `]: pays 100 COIN once per user`,
		`achievement trackscore "first-win" (any achievement event) [version ` + r.Achievements[1].Version + `]: pays 25 COIN once per user`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Describe lacks %q:\n%s", want, out)
		}
	}

	// A property with no sources and no rules says so.
	c.Properties[0] = Property{ID: "bare", Currency: "GEM", Scale: 2, APIKeys: []Secret{"k"}, Sources: Sources{GamezopSPP: &GamezopSPP{}}}
	b.Reset()
	if err := Describe(&b, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"property bare: wallet in GEM, scale 2 (2 decimal places)",
		"sources: gamezop_spp (no auth)",
		"not configured (answer 404): gamezop_scores, gamepush, trackscore",
		// What the applier does with them: it quarantines them (it said "recorded and
		// earn nothing", and a later replay paid the whole backlog).
		"revenue: none; SPP sessions are kept quarantined, crediting no one, until a revenue rule is configured",
		"score targets: none",
		"achievements: none",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Describe lacks %q:\n%s", want, b.String())
		}
	}
}

func TestStringRoundTrips(t *testing.T) {
	// The effective config printed by String, with secrets put back, loads to the same
	// rules: String shows everything that matters.
	c, err := Load(examplePath, getenvFrom(exampleEnv()))
	if err != nil {
		t.Fatal(err)
	}
	text, env := c.String(), map[string]string{}
	for i := 0; strings.Contains(text, "'****'"); i++ {
		name := fmt.Sprintf("MASKED%d", i)
		text = strings.Replace(text, "'****'", "${"+name+"}", 1)
		env[name] = name
	}
	c2, err := loadText(t, text, env)
	if err != nil {
		t.Fatalf("String output does not load: %v\n%s", err, text)
	}
	r1, r2 := c.Properties[0].Rules(), c2.Properties[0].Rules()
	a := fmt.Sprintf("%+v %+v", *r1.Revenue, r1)
	b := fmt.Sprintf("%+v %+v", *r2.Revenue, r2)
	r1.Revenue, r2.Revenue = nil, nil
	if a[:strings.Index(a, " {")] != b[:strings.Index(b, " {")] || fmt.Sprint(r1) != fmt.Sprint(r2) {
		t.Errorf("rules differ after a round trip:\n%s\n%s", a, b)
	}
}

// A database URL the driver refuses at every start is a config error naming the key,
// with the driver's reason and none of the URL.
func TestDatabaseURLTheDriverRefuses(t *testing.T) {
	for u, reason := range map[string]string{
		"postgres://u:Zq8pw@127.0.0.1:notaport/db":           "database.url: cannot be used: invalid port",
		"postgres://u:Zq8pw@127.0.0.1:5432/db?sslmode=bogus": "database.url: cannot be used: failed to configure TLS (sslmode is invalid)",
		"postgres://u:Zq%zz@127.0.0.1/db":                    "database.url: cannot be used: failed to parse as URL",
	} {
		env := exampleEnv()
		env["TALLY_DATABASE_URL"] = u
		_, err := Load(examplePath, getenvFrom(env))
		if err == nil || !strings.Contains(err.Error(), reason) || strings.Contains(err.Error(), "Zq") {
			t.Errorf("%s: %v, want %q and no password", u, err, reason)
		}
	}
}

// A URL whose user info the driver and url.Parse may read differently (an unescaped @,
// /, ? or # in the password) is refused without a piece of it, and hidden whole; so is
// a URL whose own error would quote pieces of it. Settings only pgx's pool reads are
// checked too.
func TestDatabaseURLNeverShowsAPieceOfThePassword(t *testing.T) {
	for _, u := range []string{
		"postgres://tally:aB3/kQ9?Zq7x@127.0.0.1:5432/tally",
		"postgres://tally:ab/c%zzZq7x@127.0.0.1/tally",
		"postgres://tally:ab/c Zq7x@127.0.0.1/tally",
		"postgres://tally:ab/cd?Zq7x=x=y@127.0.0.1/tally",
		"postgres:// host=db user=tally password=Zq7x dbname=tally",
		"postgres://tally:Zq@c?d=Zq7x@127.0.0.1:5432/tally",
		"postgres://tally:p@Zq7x@127.0.0.1:5432/tally",
		"postgres://tally:5432/Zq7x@127.0.0.1:5432/tally",
		"postgres://u@127.0.0.1:5432/db?default_query_exec_mode=bogus&password=Zq7x",
		"postgres://u@127.0.0.1:5432/db?statement_cache_capacity=x&password=Zq7x",
		"postgres://u@127.0.0.1:5432/db?pool_max_conns=x&password=Zq7x",
		"postgres://tally:5432/kQ9#Zq7x@127.0.0.1:5432/tally",
		"postgres://tally:5432/kQ9?a=Zq7x@127.0.0.1:5432/tally",
		"postgres://h?user=a@Zq7x",
	} {
		env := exampleEnv()
		env["TALLY_DATABASE_URL"] = u
		_, err := Load(examplePath, getenvFrom(env))
		if err == nil || strings.Contains(err.Error(), "Zq7x") || !strings.Contains(err.Error(), "database.url: ") {
			t.Errorf("%s:\n  %v\n  want a refusal naming database.url, without the password", u, err)
		}
		if got := redactURL(u); strings.Contains(got, "Zq7x") {
			t.Errorf("redactURL(%s) = %s", u, got)
		}
	}
}

// An "@" in a URL's query is not in its user info: these URLs, which pgx reads as meant,
// are taken (they were refused as ambiguous), and `tally check` masks only a password.
func TestDatabaseURLWithAnAtInItsQuery(t *testing.T) {
	for u, shown := range map[string]string{
		"postgres://tally:secret@127.0.0.1:5432/tally?application_name=tally@eu-1":                "postgres://tally:****@127.0.0.1:5432/tally?application_name=tally@eu-1",
		"postgres://127.0.0.1:5432/tally?user=ops@corp&password=secret":                           "postgres://127.0.0.1:5432/tally?user=ops@corp&password=****",
		"postgres://tally@127.0.0.1:5432/tally?options=-c%20search_path%3Dx&application_name=a@b": "postgres://tally@127.0.0.1:5432/tally?options=-c%20search_path%3Dx&application_name=a@b",
		"postgresql://[::1]:5432/tally?user=ops@corp":                                             "postgresql://[::1]:5432/tally?user=ops@corp",
		"postgres://h1:5432,h2:5433/tally?user=ops@corp":                                          "postgres://h1:5432,h2:5433/tally?user=ops@corp",
		"postgres:///tally?host=/var/run/postgresql&user=ops@corp":                                "postgres:///tally?host=/var/run/postgresql&user=ops@corp",
		"postgres://tally:secret@127.0.0.1:5432?application_name=a@b":                             "postgres://tally:****@127.0.0.1:5432?application_name=a@b",
		"postgres://tally@db.internal?sslmode=require&password=secret@1":                          "postgres://tally@db.internal?sslmode=require&password=****",
		"postgres://tally:p%40ss%2Fw@127.0.0.1/tally?user=ops@corp&application_name=x/y":          "postgres://tally:****@127.0.0.1/tally?user=ops@corp&application_name=x/y",
	} {
		env := exampleEnv()
		env["TALLY_DATABASE_URL"] = u
		if _, err := Load(examplePath, getenvFrom(env)); err != nil {
			t.Errorf("%s: refused: %v", u, err)
		}
		if got := redactURL(u); got != shown {
			t.Errorf("redactURL(%s) = %s, want %s", u, got, shown)
		}
	}
}
