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
