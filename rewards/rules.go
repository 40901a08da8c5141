package rewards

import (
	"time"

	"github.com/shopspring/decimal"
)

// Direction says which way a score target counts.
type Direction string

// Directions: higher means score >= min_score qualifies; lower (times, strokes) means
// score <= min_score qualifies. Equal qualifies either way.
const (
	Higher Direction = "higher"
	Lower  Direction = "lower"
)

// Per is how often a score target may pay one user.
type Per string

// Periods: once ever; once per UTC day of receipt; once per game play.
const (
	PerOnce Per = "once"
	PerDay  Per = "day"
	PerPlay Per = "play"
)

// Rules are one property's effective rules, already validated by config.
type Rules struct {
	Property     string
	Currency     string
	Scale        int32 // wallet decimal places: 0 whole coins, 2 cents
	Revenue      *RevenueRule
	Targets      []ScoreTarget
	Achievements []AchievementRule
	Tournaments  []Tournament // tournament.go
}

// RevenueRule turns SPP estimated revenue into credits (DESIGN.md §3).
type RevenueRule struct {
	Version           string // changes whenever any field below changes
	UnitsPerUSD       decimal.Decimal
	Share             decimal.Decimal // in [0,1]
	Buffer            decimal.Decimal // in [0,1]
	Hold              time.Duration
	MinSessionSeconds int64
	Countries         map[string]decimal.Decimal // "*" is the default; absent → earns nothing
	PerSessionCap     decimal.Decimal            // wallet units; zero = none
	PerUserPerDayCap  decimal.Decimal            // wallet units; zero = none
}

// ScoreTarget pays Reward when a user's score on Game reaches MinScore.
type ScoreTarget struct {
	ID        string
	Version   string
	Game      string
	MinScore  decimal.Decimal
	Direction Direction
	Reward    decimal.Decimal
	Per       Per
	States    []string // Gamezop states that count; other sources count every score
	Hold      time.Duration
}

// AchievementRule pays Reward once per user when Source reports achievement ID.
type AchievementRule struct {
	Source Source
	// Event, when set, is the one event type whose achievement id this is (GamePush's
	// achievement and reward ids are separate sequences); "" matches any.
	Event   string
	ID      string
	Version string
	Reward  decimal.Decimal
	Hold    time.Duration
}
