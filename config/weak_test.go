package config

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// Weaknesses names the public development values wherever they are used, and the
// credentials the operator chooses that are short enough to guess; a provider's own
// short secret is the provider's choice and is not named.
func TestWeaknessesNameGuessableCredentials(t *testing.T) {
	env := exampleEnv()
	env["ARCADE_API_KEY"] = "arcade-key-1"          // 12 characters, chosen by the operator
	env["SPP_TOKEN"] = "gz-7"                       // short, but Gamezop's
	env["GP_SECRET"] = "dev-gamepush-secret"        // public
	env["TALLY_ADMIN_TOKEN"] = "adm-Secret-7f3a9c1" // 18 characters
	cfg, err := loadText(t, readExample(t), env)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminTokens = append(cfg.AdminTokens, AdminToken{Name: "alice", Token: "hunter2"})
	got := cfg.Weaknesses()
	want := []string{"admin_tokens[0].token is 7 characters", "properties[0].api_keys[0] is 12 characters",
		"properties[0].sources.gamepush.secret is a public development value"}
	if len(got) != len(want) {
		t.Fatalf("weaknesses:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, g := range got { // logged: no secret in them, not even a public one
		for _, v := range append(slices.Collect(maps.Values(env)), "hunter2") {
			if strings.Contains(g, v) {
				t.Errorf("a warning shows the secret %q: %s", v, g)
			}
		}
	}
}

// Two properties with one GamePush or TrackScore secret each accept the other's
// deliveries: a warning names the second use and the first property, never the secret.
func TestWeaknessesNameASignedSourceSecretTwoPropertiesShare(t *testing.T) {
	env := exampleEnv()
	env["GP_SECRET"] = "gp-project-secret-4f1c2a9e"
	env["TS_SECRET"] = "ts-secret-0b7d5e31a8c4"
	cfg, err := loadText(t, readExample(t), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Weaknesses(); len(got) != 0 {
		t.Fatalf("one property: weaknesses %q, want none", got)
	}
	second := cfg.Properties[0]
	second.ID = "second"
	gp, ts := *second.Sources.GamePush, *second.Sources.TrackScore
	ts.Secret = "ts-secret-of-the-second-9d2e"
	// The first's TrackScore secret, kept while the second rotates away from it; and the
	// first's GamePush secret, which signs nothing TrackScore would accept.
	ts.PreviousSecrets = []Secret{"ts-secret-0b7d5e31a8c4", "gp-project-secret-4f1c2a9e"}
	second.Sources.GamePush, second.Sources.TrackScore = &gp, &ts
	cfg.Properties = append(cfg.Properties, second)
	got := cfg.Weaknesses()
	want := []string{
		"properties[1].sources.gamepush.secret is a signing secret of properties[0] too",
		"properties[1].sources.trackscore.previous_secrets[0] is a signing secret of properties[0] too",
	}
	if len(got) != len(want) {
		t.Fatalf("weaknesses:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("weakness %d = %q, want %q…", i, got[i], w)
		}
		if strings.Contains(got[i], "secret-") {
			t.Errorf("a warning shows a secret: %s", got[i])
		}
	}
	// Its own TrackScore secret, different from the first's, is not named.
	cfg.Properties[1].Sources.TrackScore.PreviousSecrets = ts.PreviousSecrets[1:]
	if got := cfg.Weaknesses(); len(got) != 1 {
		t.Errorf("weaknesses %q, want only the GamePush one", got)
	}
}
