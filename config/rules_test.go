package config

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestRulesFromExample(t *testing.T) {
	c, err := Load(examplePath, getenvFrom(exampleEnv()))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Properties[0].Rules()
	if r.Property != "arcade" || r.Currency != "COIN" || r.Scale != 0 {
		t.Errorf("rules header = %q %q %d", r.Property, r.Currency, r.Scale)
	}

	rev := r.Revenue
	if rev == nil {
		t.Fatal("no revenue rule")
	}
	decimals := []struct {
		name      string
		got, want decimal.Decimal
	}{
		{"units_per_usd", rev.UnitsPerUSD, dec("100000")},
		{"share", rev.Share, dec("0.7")},
		{"buffer", rev.Buffer, dec("0.2")},
		{"per_session", rev.PerSessionCap, dec("500")},
		{"per_user_per_day", rev.PerUserPerDayCap, dec("10000")},
		{"country *", rev.Countries["*"], dec("1")},
	}
	for _, d := range decimals {
		if !d.got.Equal(d.want) {
			t.Errorf("revenue %s = %s, want %s", d.name, d.got, d.want)
		}
	}
	if rev.Hold != 24*time.Hour || rev.MinSessionSeconds != 10 || len(rev.Countries) != 1 {
		t.Errorf("revenue hold %v, min %d, countries %v", rev.Hold, rev.MinSessionSeconds, rev.Countries)
	}

	if len(r.Targets) != 1 {
		t.Fatalf("%d targets", len(r.Targets))
	}
	tg := r.Targets[0]
	if tg.ID != "snake-500" || tg.Game != "NyM_JGWcx" || !tg.MinScore.Equal(dec("500")) || tg.Direction != rewards.Higher ||
		!tg.Reward.Equal(dec("50")) || tg.Per != rewards.PerOnce || len(tg.States) != 1 || tg.States[0] != "over" || tg.Hold != 0 {
		t.Errorf("target = %+v", tg)
	}

	want := []rewards.AchievementRule{
		{Source: rewards.SourceGamePush, ID: "685", Reward: dec("100")},
		{Source: rewards.SourceTrackScore, ID: "first-win", Reward: dec("25")},
	}
	if len(r.Achievements) != len(want) {
		t.Fatalf("%d achievements", len(r.Achievements))
	}
	for i, w := range want {
		a := r.Achievements[i]
		if a.Source != w.Source || a.ID != w.ID || !a.Reward.Equal(w.Reward) || a.Hold != 0 {
			t.Errorf("achievement %d = %+v, want %+v", i, a, w)
		}
	}

	versions := map[string]bool{rev.Version: true, tg.Version: true}
	for _, a := range r.Achievements {
		versions[a.Version] = true
	}
	if len(versions) != 4 {
		t.Errorf("rule versions are not distinct: %v", versions)
	}
	for v := range versions {
		if len(v) != 12 || strings.Trim(v, "0123456789abcdef") != "" {
			t.Errorf("version %q is not 12 hex digits", v)
		}
	}
}

// ruleVersions loads the example edited by old → new and returns its rule versions:
// revenue, the target, then the achievements.
func ruleVersions(t *testing.T, old, new string) []string {
	t.Helper()
	example := readExample(t)
	if !strings.Contains(example, old) {
		t.Fatalf("the example has no %q", old)
	}
	c, err := loadText(t, strings.Replace(example, old, new, 1), exampleEnv())
	if err != nil {
		t.Fatal(err)
	}
	r := c.Properties[0].Rules()
	out := []string{r.Revenue.Version, r.Targets[0].Version}
	for _, a := range r.Achievements {
		out = append(out, a.Version)
	}
	return out
}

func TestRuleVersions(t *testing.T) {
	base := ruleVersions(t, "", "")
	tests := []struct {
		name     string
		old, new string
		changed  int // index of the rule whose version must change; -1: none may change
	}{
		{"target reward", `reward: "50"`, `reward: "51"`, 1},
		{"target reward, same value", `reward: "50"`, `reward: "50.00"`, -1},
		{"target per, explicit default", `per: once`, `per: ""`, -1},
		{"target per", `per: once`, `per: day`, 1},
		{"target states order", `states: [over]`, `states: [over, levelup]`, 1},
		{"target hold", `hold: 0s`, `hold: 1s`, 1},
		{"target hold, same duration", `hold: 0s`, `hold: 0h`, -1},
		{"target game", `game: NyM_JGWcx`, `game: other`, 1},
		{"target min_score", `min_score: "500"`, `min_score: "499"`, 1},
		{"target direction", `direction: higher`, `direction: lower`, 1},
		{"revenue share", `share: "0.7"`, `share: "0.71"`, 0},
		{"revenue buffer", `buffer: "0.2"`, `buffer: "0.25"`, 0},
		{"revenue hold", `hold: 24h`, `hold: 25h`, 0},
		{"revenue hold, same duration", `hold: 24h`, `hold: 1440m`, -1},
		{"revenue countries", `countries: { "*": "1" }`, `countries: { "*": "1", "US": "2" }`, 0},
		{"revenue cap", `per_session: "500"`, `per_session: "501"`, 0},
		{"revenue min session", `min_session_seconds: 10`, `min_session_seconds: 11`, 0},
		{"first achievement reward", `reward: "100"`, `reward: "101"`, 2},
		{"second achievement id", `id: "first-win"`, `id: "second-win"`, 3},
		{"a comment", `# wallet units per USD`, `# per dollar`, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ruleVersions(t, tc.old, tc.new)
			for i := range base {
				if changed := got[i] != base[i]; changed != (i == tc.changed) {
					t.Errorf("rule %d version changed = %v (%s → %s)", i, changed, base[i], got[i])
				}
			}
		})
	}
}

func TestRulesDefaultsForGoConfig(t *testing.T) {
	p := Property{
		ID: "a", Currency: "C",
		Revenue:      &Revenue{UnitsPerUSD: "1", Share: "1", Buffer: "0"},
		ScoreTargets: []ScoreTarget{{ID: "t", Game: "g", MinScore: "1", Reward: "1"}},
		Achievements: []Achievement{{Source: rewards.SourceGamePush, ID: "x", Reward: "1"}},
	}
	r := p.Rules()
	if len(r.Revenue.Countries) != 1 || !r.Revenue.Countries["*"].Equal(dec("1")) || r.Revenue.Hold != 0 {
		t.Errorf("revenue defaults: %+v", r.Revenue)
	}
	if !r.Revenue.PerSessionCap.IsZero() || !r.Revenue.PerUserPerDayCap.IsZero() {
		t.Errorf("absent caps should be zero (none): %+v", r.Revenue)
	}
	tg := r.Targets[0]
	if tg.Direction != rewards.Higher || tg.Per != rewards.PerOnce || len(tg.States) != 1 || tg.States[0] != "over" {
		t.Errorf("target defaults: %+v", tg)
	}
	// The same rules written out in full have the same versions.
	full := p
	full.Revenue = &Revenue{UnitsPerUSD: "1", Share: "1", Buffer: "0", Hold: "0s", Countries: map[string]Decimal{"*": "1"}, Caps: Caps{PerSession: "0"}}
	full.ScoreTargets = []ScoreTarget{{ID: "t", Game: "g", MinScore: "1", Reward: "1", Direction: "higher", Per: "once", States: []string{"over"}, Hold: "0s"}}
	rf := full.Rules()
	if rf.Revenue.Version != r.Revenue.Version || rf.Targets[0].Version != tg.Version {
		t.Errorf("defaults written out change versions: %s/%s vs %s/%s", rf.Revenue.Version, rf.Targets[0].Version, r.Revenue.Version, tg.Version)
	}
	// Rules does not share the config's slices.
	r.Targets[0].States[0] = "start"
	if p.Rules().Targets[0].States[0] != "over" {
		t.Error("Rules shares the States slice")
	}
}
