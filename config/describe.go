package config

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"

	"tally/rewards"
)

// String is the config as YAML, every secret masked and the database password redacted.
// After Load it is the effective config: overrides and defaults applied.
func (c Config) String() string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return "# cannot print config: " + err.Error() + "\n"
	}
	if err := enc.Close(); err != nil {
		return "# cannot print config: " + err.Error() + "\n"
	}
	return b.String()
}

// Describe writes what `tally check` prints: the effective config with secrets masked,
// then each property's effective rules in plain words, with their versions.
func Describe(w io.Writer, c Config) error {
	var b strings.Builder
	b.WriteString("# effective configuration (secrets masked)\n")
	b.WriteString(c.String())
	for _, p := range c.Properties {
		b.WriteString("\n")
		describeProperty(&b, p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeProperty(b *strings.Builder, p Property) {
	r := p.Rules()
	unit := r.Currency
	fmt.Fprintf(b, "property %s: wallet in %s, %s\n", r.Property, unit, scaleWords(r.Scale))
	if p.GamezopPropertyID != "" {
		fmt.Fprintf(b, "  SPP postbacks must carry property-id %q\n", p.GamezopPropertyID)
	}
	fmt.Fprintf(b, "  %d publisher API key(s)\n", len(p.APIKeys))

	var on, off []string
	for _, src := range rewards.AllSources() {
		bearer, apiKey, _, ok := p.Credentials(src)
		previous := len(p.PreviousCredentials(src))
		switch {
		case !ok:
			off = append(off, string(src))
		case src == rewards.SourceGamezopSPP && bearer == "", src == rewards.SourceGamezopScores && apiKey == "":
			on = append(on, string(src)+" (no auth)")
		case previous > 0:
			on = append(on, fmt.Sprintf("%s (authenticated; %d previous credential(s) accepted too, while the provider rotates)", src, previous))
		default:
			on = append(on, string(src)+" (authenticated)")
		}
	}
	fmt.Fprintf(b, "  sources: %s\n", listOr(on, "none"))
	if len(off) > 0 {
		fmt.Fprintf(b, "  not configured (answer 404): %s\n", strings.Join(off, ", "))
	}
	if st := p.SubTokens; st != nil {
		mode := "plain user ids are accepted; a sub shaped like a token must verify"
		if st.Required {
			mode = "required: a sub that is not a valid token credits nobody"
		}
		fmt.Fprintf(b, "  signed sub tokens on Gamezop SPP user-id and scores subId (%d secret(s)); %s; an expired token credits for %s after its expiry\n",
			len(st.Keys()), mode, st.MaxAgeDuration())
	} else if p.Sources.GamezopSPP != nil || p.Sources.GamezopScores != nil {
		fmt.Fprintf(b, "  Gamezop subs are taken as sent (no sub_tokens): anyone who edits a game URL's sub credits that id\n")
	}
	for _, w := range p.Webhooks {
		signed := "signed"
		if n := len(w.PreviousSecrets); n > 0 {
			signed = fmt.Sprintf("signed with its secret and %d previous, while the publisher rotates", n)
		}
		fmt.Fprintf(b, "  webhook %s (%s, Standard Webhooks): %s\n", w.URL, signed, strings.Join(w.Events, ", "))
	}
	if g := p.GamezopReports; g != nil {
		fmt.Fprintf(b, "  booked revenue for true-ups from %s (property-id %s)\n", g.Endpoint(), p.GamezopPropertyID)
	}

	if rev := r.Revenue; rev == nil {
		b.WriteString("  revenue: none; SPP sessions are kept quarantined, crediting no one, until a revenue rule is configured and they are replayed (a replay pays them under the rules then)\n")
	} else {
		fmt.Fprintf(b, "  revenue share [version %s]:\n", rev.Version)
		fmt.Fprintf(b, "    each SPP session: gross = revenue USD × %s (share) × country multiplier × %s %s per USD\n",
			rev.Share, rev.UnitsPerUSD, unit)
		fmt.Fprintf(b, "    gross × %s (truncated to %d decimal places) is withheld to %s; the user is credited the rest\n",
			rev.Buffer, rewards.Precision, rewards.AccountBuffer)
		fmt.Fprintf(b, "    country multipliers: %s\n", countryWords(rev.Countries))
		if rev.MinSessionSeconds > 0 {
			fmt.Fprintf(b, "    sessions shorter than %d seconds earn nothing\n", rev.MinSessionSeconds)
		}
		fmt.Fprintf(b, "    cap per session: %s; cap per user per UTC day: %s\n",
			capWords(rev.PerSessionCap, unit), capWords(rev.PerUserPerDayCap, unit))
		fmt.Fprintf(b, "    %s\n", holdWords(rev.Hold))
	}

	if len(r.Targets) == 0 {
		b.WriteString("  score targets: none\n")
	}
	for _, t := range r.Targets {
		cmp := "at least"
		if t.Direction == rewards.Lower {
			cmp = "at most"
		}
		fmt.Fprintf(b, "  score target %s [version %s]:\n", t.ID, t.Version)
		fmt.Fprintf(b, "    pays %s %s %s when a score on game %q is %s %s (%s is better)\n",
			t.Reward, unit, perWords(t.Per), t.Game, cmp, t.MinScore, t.Direction)
		fmt.Fprintf(b, "    Gamezop scores count in states: %s; other sources count every score\n", strings.Join(t.States, ", "))
		fmt.Fprintf(b, "    %s\n", holdWords(t.Hold))
	}

	if len(r.Achievements) == 0 {
		b.WriteString("  achievements: none\n")
	}
	for _, a := range r.Achievements {
		event := "any achievement event"
		if a.Event != "" {
			event = a.Event
		}
		fmt.Fprintf(b, "  achievement %s %q (%s) [version %s]: pays %s %s once per user; %s\n",
			a.Source, a.ID, event, a.Version, a.Reward, unit, holdWords(a.Hold))
	}
	describeTournaments(b, p, r)
}

func scaleWords(scale int32) string {
	if scale == 0 {
		return "scale 0 (whole units)"
	}
	return fmt.Sprintf("scale %d (%d decimal places)", scale, scale)
}

func countryWords(m map[string]decimal.Decimal) string {
	if len(m) == 0 {
		return "none listed, so no country earns"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		label := k
		if k == "*" {
			label = "any country not listed"
			if len(keys) == 1 {
				label = "every country"
			}
		}
		parts = append(parts, fmt.Sprintf("%s ×%s", label, m[k]))
	}
	s := strings.Join(parts, ", ")
	if _, ok := m["*"]; !ok {
		s += "; countries not listed earn nothing"
	}
	return s
}

func capWords(d decimal.Decimal, unit string) string {
	if d.IsZero() {
		return "none"
	}
	return d.String() + " " + unit
}

func perWords(p rewards.Per) string {
	switch p {
	case rewards.PerDay:
		return "at most once per user per UTC day"
	case rewards.PerPlay:
		return "at most once per game play"
	default:
		return "once per user"
	}
}

func holdWords(d time.Duration) string {
	if d == 0 {
		return "credits mature at once and settle to available at the next settlement"
	}
	return fmt.Sprintf("credits stay pending for %s, then settle to available", shortDuration(d))
}

// shortDuration prints 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func listOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}
