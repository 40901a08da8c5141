package config

import (
	"strings"
	"testing"
	"time"

	"tally/rewards"
)

const tournamentConfig = `
admin_token: adm
properties:
  - id: arcade
    currency: COIN
    scale: 2
    api_keys: [key]
    sources:
      gamezop_scores: { api_key: "" }
    tournaments:
      - id: snake-weekly
        game: NyM_JGWcx
        sources: [gamezop_scores]
        direction: higher
        states: [over]
        schedule: "0 0 * * 1"
        duration: 168h
        grace: 15m
        prizes:
          - { ranks: "1", amount: "1000" }
          - { ranks: "2-3", amount: "400" }
          - { ranks: "4-10", amount: "50" }
        ties: split
        min_plays: 1
        hold: 0s
`

func TestTournamentConfigLoads(t *testing.T) {
	c, err := loadText(t, tournamentConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Properties[0].Rules()
	if len(r.Tournaments) != 1 {
		t.Fatalf("%d tournaments in the rules", len(r.Tournaments))
	}
	tour := r.Tournaments[0]
	if tour.Version == "" || tour.Ties != rewards.TiesSplit || tour.Grace != 15*time.Minute || len(tour.Prizes) != 3 ||
		tour.Prizes[2].From != 4 || tour.Prizes[2].To != 10 || tour.Prizes[2].Amount.String() != "50" ||
		tour.Scale != 2 { // tied shares are cut at the wallet's scale
		t.Fatalf("rule %+v", tour)
	}
	// Mondays 00:00 UTC, a week long: Wednesday 2026-12-02 is in the window of Monday 2026-11-30.
	w, ok := tour.WindowAt(time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC))
	if !ok || !w.Start.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) || !w.ClosesAt.Equal(time.Date(2026, 12, 7, 0, 15, 0, 0, time.UTC)) {
		t.Fatalf("window %+v", w)
	}

	// Defaults: higher, [over], split, min_plays 1, and the same version as when written out.
	short := strings.NewReplacer("        sources: [gamezop_scores]\n", "", "        direction: higher\n", "", "        states: [over]\n", "",
		"        ties: split\n", "", "        min_plays: 1\n", "", "        hold: 0s\n", "").Replace(tournamentConfig)
	c2, err := loadText(t, short, nil)
	if err != nil {
		t.Fatal(err)
	}
	t2 := c2.Properties[0].Rules().Tournaments[0]
	if t2.Direction != rewards.Higher || t2.Ties != rewards.TiesSplit || t2.MinPlays != 1 || strings.Join(t2.States, ",") != "over" {
		t.Fatalf("defaults %+v", t2)
	}
}

func TestTournamentConfigRefuses(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"every", `schedule: "0 0 * * 1"`, `schedule: "@every 1h"`, `tournaments[0].schedule: must be a cron spec (5 fields, UTC): @every has no fixed start times`},
		{"bad cron", `schedule: "0 0 * * 1"`, `schedule: "0 0 * *"`, `tournaments[0].schedule: must be a cron spec`},
		{"overlap", `duration: 168h`, `duration: 169h`, `tournaments[0].duration: 169h is longer than the 168h between the windows`},
		{"never fires", `schedule: "0 0 * * 1"`, `schedule: "0 0 30 2 *"`, `tournaments[0].schedule: never fires`},
		{"no duration", "        duration: 168h\n", "", `tournaments[0].duration: is required with schedule`},
		{"both", `duration: 168h`, "duration: 168h\n        start: \"2026-12-01T00:00:00Z\"", `tournaments[0]: give either schedule and duration, or start and end, not both`},
		{"end before start", "schedule: \"0 0 * * 1\"\n        duration: 168h",
			"start: \"2026-12-08T00:00:00Z\"\n        end: \"2026-12-01T00:00:00Z\"", `tournaments[0].end: must be after start`},
		{"bad start", "schedule: \"0 0 * * 1\"\n        duration: 168h",
			"start: \"next monday\"\n        end: \"2026-12-01T00:00:00Z\"", `tournaments[0].start: must be an RFC 3339 time`},
		{"overlapping prizes", `ranks: "2-3"`, `ranks: "1-3"`, `tournaments[0].prizes[1].ranks: "1-3" overlaps prizes[0]`},
		{"reversed range", `ranks: "4-10"`, `ranks: "10-4"`, `tournaments[0].prizes[2].ranks: a range must go from low to high`},
		{"rank zero", `ranks: "1"`, `ranks: "0"`, `tournaments[0].prizes[0].ranks: must be a rank such as "1"`},
		{"negative prize", `amount: "50"`, `amount: "-50"`, `tournaments[0].prizes[2].amount: must not be negative`},
		{"prize finer than scale", `amount: "50"`, `amount: "50.505"`, `tournaments[0].prizes[2].amount: must have at most 2 decimal places`},
		{"ties", `ties: split`, `ties: shared`, `tournaments[0].ties: must be split or first, got "shared"`},
		{"direction", `direction: higher`, `direction: up`, `tournaments[0].direction: must be higher or lower`},
		{"state", `states: [over]`, `states: [finished]`, `tournaments[0].states[0]: must be one of`},
		{"start never counts", `states: [over]`, `states: [over, start]`, `tournaments[0].states[1]: "start" never counts in a tournament`},
		{"levelup on a lower board", "direction: higher\n        states: [over]", "direction: lower\n        states: [over, levelup]",
			`tournaments[0].states[1]: "levelup" reports a play's score so far`},
		{"source not configured", `sources: [gamezop_scores]`, `sources: [gamepush]`, `tournaments[0].sources[0]: gamepush is not configured`},
		{"spp is no score source", `sources: [gamezop_scores]`, `sources: [gamezop_spp]`, `tournaments[0].sources[0]: must be gamezop_scores, gamepush or trackscore`},
		{"id with separator", `id: snake-weekly`, `id: "snake:weekly"`, `tournaments[0].id: must match`},
		{"negative grace", `grace: 15m`, `grace: -15m`, `tournaments[0].grace: must not be negative`},
		{"grace as long as a window", `grace: 15m`, `grace: 168h`, `tournaments[0].grace: must be shorter than duration (168h), got "168h"`},
		{"negative min_plays", `min_plays: 1`, `min_plays: -1`, `tournaments[0].min_plays: must not be negative`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(tournamentConfig, c.old, c.new, 1)
			if text == tournamentConfig {
				t.Fatalf("the case does not change the config")
			}
			_, err := loadText(t, text, nil)
			if err == nil {
				t.Fatalf("loaded; want %s", c.want)
			}
			found := false
			for _, p := range problems(t, err) {
				if strings.HasPrefix(p.String(), "properties[0]."+c.want) || strings.HasPrefix(p.String(), "properties[0]"+c.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("problems %v; want one starting %s", problems(t, err), c.want)
			}
		})
	}
}

func TestTournamentDescribed(t *testing.T) {
	c, err := loadText(t, tournamentConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Describe(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"tournament snake-weekly [version ",
		`ranks users by the highest score on game "NyM_JGWcx" from gamezop_scores (Gamezop states: over)`,
		`a window starts each time "0 0 * * 1" fires (UTC) and lasts 168h (e.g. 2024-01-08T00:00:00Z to 2024-01-15T00:00:00Z)`,
		"received before the end + 15m grace",
		"rank 1: 1000 COIN each",
		"ranks 2 to 3: 400 COIN each",
		"equal scores share a rank and split the prizes of the ranks they occupy equally, each share cut at 2 decimal places (the wallet's scale); the units left over go one each to the tied users in byte order of their ids",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("tally check output lacks %q:\n%s", want, out)
		}
	}
}
