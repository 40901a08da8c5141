package rewards

import (
	"time"

	"github.com/shopspring/decimal"
)

// Source names a provider endpoint. The values appear in URLs' config keys, the inbox and
// metrics, so they never change.
type Source string

// The four sources Tally receives from.
const (
	SourceGamezopSPP    Source = "gamezop_spp"
	SourceGamezopScores Source = "gamezop_scores"
	SourceGamePush      Source = "gamepush"
	SourceTrackScore    Source = "trackscore"
)

// AllSources lists every source, in a fixed order. It returns a new slice each time, so
// no caller can change the list for the others.
func AllSources() []Source {
	return []Source{SourceGamezopSPP, SourceGamezopScores, SourceGamePush, SourceTrackScore}
}

// Valid reports whether s is one of the four sources.
func (s Source) Valid() bool {
	for _, v := range AllSources() {
		if s == v {
			return true
		}
	}
	return false
}

// Kind is what an event means to the rules.
type Kind string

// Event kinds. KindOther is recorded and acknowledged and earns nothing.
const (
	KindSession     Kind = "session"
	KindScore       Kind = "score"
	KindAchievement Kind = "achievement"
	KindOther       Kind = "other"
)

// MaxDedupeKey is the longest dedupe key, in bytes, a receiver may record. Postgres's
// unique index on the inbox holds (property, source, dedupe_key) in one btree entry of at
// most 2,704 bytes, and refuses a longer one with an error that is the same on every
// retry; with a property id of at most 64 bytes this leaves room to spare.
const MaxDedupeKey = 2048

// Event is the canonical form every provider payload is decoded into. Exactly one of
// Session, Score and Achievement is set for the kinds that carry one.
type Event struct {
	Source    Source `json:"source"`
	Kind      Kind   `json:"kind"`
	Type      string `json:"type"`       // provider's own event type or state, for the record
	DedupeKey string `json:"dedupe_key"` // unique per (property, source)
	// FormerKeys are keys an earlier version of Tally recorded the same event under: a
	// row under one of them makes a delivery its duplicate (GamePush's, whose key came to
	// ignore how the signature is spelled). Not stored.
	FormerKeys []string `json:"-"`
	User       string   `json:"user,omitempty"`
	// OccurredAt is when the provider says it happened, if it says; rules use the
	// receipt time instead, which the provider cannot move.
	OccurredAt  *time.Time   `json:"occurred_at,omitempty"`
	Session     *Session     `json:"session,omitempty"`
	Score       *Score       `json:"score,omitempty"`
	Achievement *Achievement `json:"achievement,omitempty"`
	// Test marks an event the provider says is a test (GamePush's player.test, sent to a
	// webhook whose "Dev" box is checked): recorded and applied, it earns nothing and
	// enters no tournament.
	Test bool `json:"test,omitempty"`
}

// Session is one Gamezop Session Performance Postback.
type Session struct {
	SessionID       string          `json:"session_id"`
	PropertyID      string          `json:"property_id,omitempty"` // Gamezop's property-id
	Country         string          `json:"country,omitempty"`     // ISO 3166-1 alpha-2, upper case
	AdsViewed       int64           `json:"ads_viewed"`
	RevenueUSD      decimal.Decimal `json:"revenue_usd"`
	DurationSeconds int64           `json:"duration_seconds"`
}

// Score is one score report. Game is Gamezop's gameCode, GamePush's record/leaderboard
// key, or TrackScore's leaderboard_id.
type Score struct {
	Game     string          `json:"game"`
	Value    decimal.Decimal `json:"value"`
	State    string          `json:"state,omitempty"`    // Gamezop only
	PlayID   string          `json:"play_id,omitempty"`  // Gamezop gamePlayId; per: play
	Country  string          `json:"country,omitempty"`  // Gamezop only
	Duration int64           `json:"duration,omitempty"` // Gamezop, milliseconds
}

// Achievement is an unlocked achievement or a given reward (GamePush, TrackScore).
type Achievement struct {
	ID string `json:"id"`
}
