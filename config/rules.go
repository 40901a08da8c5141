package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// Rules converts the property's rules into the domain's types, with defaults applied.
// It assumes p has passed Validate; a value Validate would refuse becomes zero.
//
// Each rule's Version is the first 12 hex digits of a SHA-256 over the rule's effective
// fields, so it changes whenever the rule's meaning changes and only then: "50" and
// "50.0", or an omitted per and "once", give the same version; another rule changing
// does not touch it. Entries record the version that produced them.
func (p Property) Rules() rewards.Rules {
	r := rewards.Rules{Property: p.ID, Currency: p.Currency, Scale: p.Scale}
	if p.Revenue != nil {
		rev := p.Revenue.rule()
		r.Revenue = &rev
	}
	for _, t := range p.ScoreTargets {
		r.Targets = append(r.Targets, t.rule())
	}
	for _, a := range p.Achievements {
		r.Achievements = append(r.Achievements, a.rule())
	}
	r.Tournaments = p.tournamentRules()
	return r
}

func (r Revenue) rule() rewards.RevenueRule {
	out := rewards.RevenueRule{
		UnitsPerUSD:       mustDecimal(r.UnitsPerUSD),
		Share:             mustDecimal(r.Share),
		Buffer:            mustDecimal(r.Buffer),
		Hold:              mustDuration(r.Hold),
		MinSessionSeconds: r.MinSessionSeconds,
		Countries:         map[string]decimal.Decimal{},
		PerSessionCap:     mustDecimal(r.Caps.PerSession),
		PerUserPerDayCap:  mustDecimal(r.Caps.PerUserPerDay),
	}
	countries := r.Countries
	if countries == nil { // see Revenue.Countries
		countries = map[string]Decimal{"*": "1"}
	}
	for k, m := range countries {
		out.Countries[k] = mustDecimal(m)
	}

	v := newVersion("revenue")
	v.field("units_per_usd", out.UnitsPerUSD.String())
	v.field("share", out.Share.String())
	v.field("buffer", out.Buffer.String())
	v.field("hold", durationField(out.Hold))
	v.field("min_session_seconds", strconv.FormatInt(out.MinSessionSeconds, 10))
	keys := make([]string, 0, len(out.Countries))
	for k := range out.Countries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v.field("country "+k, out.Countries[k].String())
	}
	v.field("per_session", out.PerSessionCap.String())
	v.field("per_user_per_day", out.PerUserPerDayCap.String())
	out.Version = v.sum()
	return out
}

func (t ScoreTarget) rule() rewards.ScoreTarget {
	out := rewards.ScoreTarget{
		ID:        t.ID,
		Game:      t.Game,
		MinScore:  mustDecimal(t.MinScore),
		Direction: t.direction(),
		Reward:    mustDecimal(t.Reward),
		Per:       t.per(),
		States:    slices.Clone(t.states()),
		Hold:      mustDuration(t.Hold),
	}
	v := newVersion("score_target")
	v.field("id", out.ID)
	v.field("game", out.Game)
	v.field("min_score", out.MinScore.String())
	v.field("direction", string(out.Direction))
	v.field("reward", out.Reward.String())
	v.field("per", string(out.Per))
	states := slices.Clone(out.States)
	slices.Sort(states)
	for _, s := range slices.Compact(states) {
		v.field("state", s)
	}
	v.field("hold", durationField(out.Hold))
	out.Version = v.sum()
	return out
}

func (a Achievement) rule() rewards.AchievementRule {
	out := rewards.AchievementRule{
		Source: a.Source,
		Event:  a.Event,
		ID:     a.ID,
		Reward: mustDecimal(a.Reward),
		Hold:   mustDuration(a.Hold),
	}
	v := newVersion("achievement")
	v.field("source", string(out.Source))
	if out.Event != "" { // only when set: the versions of rules without it stay as they were
		v.field("event", out.Event)
	}
	v.field("id", out.ID)
	v.field("reward", out.Reward.String())
	v.field("hold", durationField(out.Hold))
	out.Version = v.sum()
	return out
}

func durationField(d time.Duration) string { return strconv.FormatInt(int64(d), 10) }

// version hashes a rule's effective fields. Each part is length-prefixed, so no two
// different field lists hash the same input.
type version struct{ h hash.Hash }

func newVersion(kind string) version {
	v := version{sha256.New()}
	v.field("kind", kind)
	return v
}

func (v version) field(name, value string) {
	fmt.Fprintf(v.h, "%d:%s%d:%s", len(name), name, len(value), value)
}

func (v version) sum() string { return hex.EncodeToString(v.h.Sum(nil))[:12] }
