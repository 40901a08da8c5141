// Package config loads Tally's YAML configuration once at startup: it expands ${NAME}
// references from the environment, applies overrides and defaults, validates every key
// (reporting all problems at once, each at its key path), converts a property's rules
// into the rewards domain types, and masks secrets whenever the config is printed.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"tally/rewards"
)

// Defaults for keys the file may leave out.
const (
	DefaultPath        = "tally.yaml"
	DefaultListen      = ":8080"
	DefaultDatabaseURL = "sqlite://data/tally.db"
	DefaultSchedule    = "@every 1m"
)

// Config is the whole configuration file (DESIGN.md §3, "Config (YAML)"). It is loaded
// once and passed by value; nothing below cmd reads the environment.
type Config struct {
	Listen     string   `yaml:"listen"`
	Database   Database `yaml:"database"`
	AdminToken Secret   `yaml:"admin_token"` // finance and ops endpoints; the admin named "admin"
	// AdminTokens are named admin credentials: the name is recorded as the actor of every
	// adjustment, reversal and replay made with the token.
	AdminTokens []AdminToken `yaml:"admin_tokens"`
	Settlement  Settlement   `yaml:"settlement"`
	Properties  []Property   `yaml:"properties"`

	// staleReadURL: TALLY_DATABASE_URL replaced database.url while read_url is still the
	// file's, a replica of the file's database, not of the one written to (Validate).
	staleReadURL bool
	// fromEnv names the environment variable that set a key's value (override), for
	// Validate's problems.
	fromEnv map[string]string
}

// AdminToken is one named admin credential.
type AdminToken struct {
	Name  string `yaml:"name"`
	Token Secret `yaml:"token"`
}

// DefaultAdminName is the name the single admin_token acts under; CLIActor is the actor
// the audit log records for `tally replay`, which needs no token; ApplierActor, for the
// events a serving process readmits (app.Readmit).
const (
	DefaultAdminName = "admin"
	CLIActor         = "cli"
	ApplierActor     = "applier"
)

// Admins returns every admin credential: admin_token (as DefaultAdminName) and then
// admin_tokens, in the order written.
func (c Config) Admins() []AdminToken {
	var out []AdminToken
	if c.AdminToken != "" {
		out = append(out, AdminToken{Name: DefaultAdminName, Token: c.AdminToken})
	}
	return append(out, c.AdminTokens...)
}

// Database says where the ledger lives: sqlite://path or postgres://… (postgresql://…).
// The URL may carry a password, so it is redacted whenever the config is printed.
//
// ReadURL, optional and Postgres only, is a physical streaming replica (a hot standby)
// of that database: the publisher's balance, transactions, balance-feed and tournament
// reads go there, everything else (writes, reports, the admin API) to URL. A replica
// answers with what it has replayed, so a balance read there may trail a write the
// primary has committed by the replica's lag; the feed's cursor rule still holds on it
// (see store/feed.go).
type Database struct {
	URL     string `yaml:"url"`
	ReadURL string `yaml:"read_url,omitempty"`
}

// Settlement configures the settlement batch.
type Settlement struct {
	Schedule string `yaml:"schedule"` // robfig/cron spec: 5 fields or a descriptor like "@every 1m"
}

// Parse parses the schedule the way Validate checks it: the standard 5-field cron spec
// or a descriptor (@hourly, @every 1m, …), as robfig/cron's cron.New() would, in UTC. An
// @every interval must be whole seconds, at least one (cron would silently turn
// "@every 0s" or "@every 500ms" into one second, and "@every 1.5s" into one). A time-zone prefix is refused: the schedule is UTC,
// as tournaments' are (and robfig/cron panicked on a prefix with nothing after it).
func (s Settlement) Parse() (cron.Schedule, error) {
	if strings.HasPrefix(s.Schedule, "TZ=") || strings.HasPrefix(s.Schedule, "CRON_TZ=") {
		return nil, errors.New("the schedule is in UTC; remove the time zone")
	}
	sched, err := cron.ParseStandard(s.Schedule)
	if err != nil {
		return nil, err
	}
	if rest, ok := strings.CutPrefix(s.Schedule, "@every "); ok {
		if d, err := time.ParseDuration(rest); err == nil && (d < time.Second || d%time.Second != 0) {
			return nil, errors.New("@every needs an interval of whole seconds, at least 1s (cron rounds others)")
		}
	}
	// A spec naming a day that never comes ("0 0 30 2 *") parses, but cron would park the
	// job for good: credits would never become available, and nothing would say so.
	if sched.Next(time.Now()).IsZero() {
		return nil, errors.New("it never fires (no such date)")
	}
	return sched, nil
}

// Property is one publisher property: its wallet currency, the keys its backends use,
// the sources it receives from and its reward rules.
type Property struct {
	ID                string   `yaml:"id"`                            // used in URLs; [a-z0-9-]{1,64}
	GamezopPropertyID string   `yaml:"gamezop_property_id,omitempty"` // SPP property-id must equal this when set
	Currency          string   `yaml:"currency"`
	Scale             int32    `yaml:"scale"` // wallet decimal places: 0 whole coins, 2 cents
	APIKeys           []Secret `yaml:"api_keys"`
	Sources           Sources  `yaml:"sources"`
	Revenue           *Revenue `yaml:"revenue,omitempty"` // nil: SPP sessions are kept quarantined

	ScoreTargets []ScoreTarget `yaml:"score_targets,omitempty"`
	Achievements []Achievement `yaml:"achievements,omitempty"`

	// SubTokens, when set, makes the user ids that come from a game URL's sub (SPP
	// user-id, scores subId) signed tokens; see subtokens.go.
	SubTokens *SubTokens `yaml:"sub_tokens,omitempty"`
	// Webhooks are the publisher's endpoints Tally notifies of changes; see webhooks.go.
	Webhooks []Webhook `yaml:"webhooks,omitempty"`
	// GamezopReports is where `tally trueup fetch` pulls booked revenue from; see trueup.go.
	GamezopReports *GamezopReports `yaml:"gamezop_reports,omitempty"`
	Tournaments    []Tournament    `yaml:"tournaments,omitempty"` // tournaments.go
}

// Sources lists the providers a property receives from. A nil source is not configured
// and its route answers 404. In the file, a source key with no value (`gamepush:`) is
// refused rather than guessed at: remove the key to disable it, or write {} to enable it.
type Sources struct {
	GamezopSPP    *GamezopSPP    `yaml:"gamezop_spp,omitempty"`
	GamezopScores *GamezopScores `yaml:"gamezop_scores,omitempty"`
	GamePush      *GamePush      `yaml:"gamepush,omitempty"`
	TrackScore    *TrackScore    `yaml:"trackscore,omitempty"`
}

// GamezopSPP receives Session Performance Postbacks. An empty token means no auth, as
// Gamezop allows.
type GamezopSPP struct {
	BearerToken Secret `yaml:"bearer_token"`
	// PreviousBearerTokens are accepted too while Gamezop moves to BearerToken: a
	// postback Gamezop sent, or retries, with the old token is not refused (and lost).
	PreviousBearerTokens []Secret `yaml:"previous_bearer_tokens,omitempty"`
}

// GamezopScores receives Gamezop score postbacks. An empty key means no auth.
type GamezopScores struct {
	APIKey          Secret   `yaml:"api_key"`
	PreviousAPIKeys []Secret `yaml:"previous_api_keys,omitempty"` // accepted too, during a rotation
}

// GamePush receives GamePush webhooks; the secret signs them and is required. It has no
// previous secrets: a GamePush event's dedupe key is its signed body, so a payload
// redelivered under a new secret would be a new event, and accepting the old secret
// during a rotation could pay it twice.
type GamePush struct {
	Secret Secret `yaml:"secret"`
}

// TrackScore receives TrackScore webhooks; the secret signs them and is required.
type TrackScore struct {
	Secret Secret `yaml:"secret"`
	// PreviousSecrets verify a webhook too while TrackScore moves to Secret (its dedupe
	// key is the event's id, whichever secret signed it).
	PreviousSecrets []Secret `yaml:"previous_secrets,omitempty"`
}

// Decimal is a decimal number exactly as written in the file. YAML numbers are accepted
// too: the decoder keeps their literal text, so no value ever passes through float64.
type Decimal string

// Duration is a Go duration string such as "24h" or "0s".
type Duration string

// Revenue is the SPP revenue-share rule.
type Revenue struct {
	UnitsPerUSD       Decimal  `yaml:"units_per_usd"` // wallet units per USD, > 0
	Share             Decimal  `yaml:"share"`         // part of estimated revenue passed to users, [0,1]
	Buffer            Decimal  `yaml:"buffer"`        // part of that share withheld, [0,1]
	Hold              Duration `yaml:"hold"`          // pending → available after this; default 0s
	MinSessionSeconds int64    `yaml:"min_session_seconds"`
	// Countries maps "*" or an ISO 3166-1 alpha-2 code to a multiplier. When the key is
	// absent (nil) every country earns ×1, i.e. {"*": "1"}: a revenue block that says
	// nothing about countries should not silently earn nothing. An explicit map is taken
	// as written, and there a country not listed, with no "*", earns nothing — so
	// `countries: {}` turns revenue credits off.
	Countries map[string]Decimal `yaml:"countries"`
	Caps      Caps               `yaml:"caps"`
}

// Caps limit revenue credits, in wallet units; "" or "0" means no cap.
type Caps struct {
	PerSession    Decimal `yaml:"per_session,omitempty"`
	PerUserPerDay Decimal `yaml:"per_user_per_day,omitempty"`
}

// ScoreTarget pays Reward when a user's score on Game reaches MinScore. Empty Direction,
// Per, States and Hold mean their defaults: higher, once, [over], 0s.
type ScoreTarget struct {
	ID        string            `yaml:"id"`
	Game      string            `yaml:"game"` // gameCode (Gamezop) / game or leaderboard id (others)
	MinScore  Decimal           `yaml:"min_score"`
	Direction rewards.Direction `yaml:"direction"`
	Reward    Decimal           `yaml:"reward"`
	Per       rewards.Per       `yaml:"per"`
	States    []string          `yaml:"states"` // Gamezop states that count; other sources count every score
	Hold      Duration          `yaml:"hold"`
}

// Achievement pays Reward once per user when Source reports achievement ID. Event, when
// set, is the only event type whose id it is (GamePush UnlockPlayerAchievement or
// GivePlayerReward, TrackScore achievement.unlocked or milestone.reached); unset, an id
// of any of the source's achievement events matches, so GamePush's achievement 685 and
// its reward 685 would pay the same rule.
type Achievement struct {
	Source rewards.Source `yaml:"source"` // gamepush or trackscore
	Event  string         `yaml:"event,omitempty"`
	ID     string         `yaml:"id"`
	Reward Decimal        `yaml:"reward"`
	Hold   Duration       `yaml:"hold"`
}

// Resolve picks the config file: the --config flag, else $TALLY_CONFIG, else tally.yaml
// in the working directory.
func Resolve(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if getenv != nil {
		if p := getenv("TALLY_CONFIG"); p != "" {
			return p
		}
	}
	return DefaultPath
}

// Load reads the file at path, expands ${NAME} references with getenv, decodes it
// strictly, applies the TALLY_DATABASE_URL and TALLY_LISTEN overrides and the defaults,
// and validates the result. Problems are reported at once in an *Error, in two rounds:
// first everything wrong with the file itself (YAML syntax, unknown keys, mistyped
// values, unset variables), then, once the file decodes, everything Validate finds. A
// config with any problem is never returned. A nil getenv is an empty environment.
//
// Expansion: ${NAME} (NAME = [A-Za-z_][A-Za-z0-9_]*) in any scalar value is replaced by
// getenv(NAME); a variable that is unset or empty is an error naming it. $${ stands for a
// literal ${. Keys and comments are not expanded, and expanded text is not expanded
// again. Expansion happens on the parsed YAML values, never on the raw text, so a value
// containing quotes, newlines, # or : cannot change the file's structure. A plain
// (unquoted) reference in an integer key such as `scale: ${SCALE}` is read as an
// integer; everywhere else an expanded value is a string.
//
// Anchors, aliases and merge keys are refused: they would let one value appear at
// several key paths, and no config here needs them.
func Load(path string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, problems := parse(data, getenv)
	if len(problems) > 0 {
		return Config{}, &Error{File: path, Problems: problems}
	}
	c.override(getenv)
	c.setDefaults()
	if err := c.Validate(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = path
		}
		return Config{}, err
	}
	return c, nil
}

// override applies the environment variables that take precedence over the file.
func (c *Config) override(getenv func(string) string) {
	c.fromEnv = map[string]string{}
	if v := getenv("TALLY_DATABASE_URL"); v != "" {
		c.staleReadURL = c.Database.ReadURL != "" && v != c.Database.URL
		c.Database.URL, c.fromEnv["database.url"] = v, "TALLY_DATABASE_URL"
	}
	if v := getenv("TALLY_DATABASE_READ_URL"); v != "" {
		c.Database.ReadURL, c.staleReadURL, c.fromEnv["database.read_url"] = v, false, "TALLY_DATABASE_READ_URL"
	}
	if v := getenv("TALLY_LISTEN"); v != "" {
		c.Listen, c.fromEnv["listen"] = v, "TALLY_LISTEN"
	}
}

// setDefaults writes every default into c, so that String shows the effective config.
// Rules applies the same defaults to a Config built in Go.
func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Database.URL == "" {
		c.Database.URL = DefaultDatabaseURL
	}
	if c.Settlement.Schedule == "" {
		c.Settlement.Schedule = DefaultSchedule
	}
	for i := range c.Properties {
		p := &c.Properties[i]
		if r := p.Revenue; r != nil {
			r.Hold = r.Hold.effective()
			if r.Countries == nil {
				r.Countries = map[string]Decimal{"*": "1"}
			}
		}
		for j := range p.ScoreTargets {
			t := &p.ScoreTargets[j]
			t.Direction = t.direction()
			t.Per = t.per()
			t.States = t.states()
			t.Hold = t.Hold.effective()
		}
		for j := range p.Achievements {
			a := &p.Achievements[j]
			a.Hold = a.Hold.effective()
		}
	}
}

func (d Duration) effective() Duration {
	if d == "" {
		return "0s"
	}
	return d
}

func (t ScoreTarget) direction() rewards.Direction {
	if t.Direction == "" {
		return rewards.Higher
	}
	return t.Direction
}

func (t ScoreTarget) per() rewards.Per {
	if t.Per == "" {
		return rewards.PerOnce
	}
	return t.Per
}

// states defaults to [over]: a final score. Counting intermediate states by default
// would pay on scores that are still changing.
func (t ScoreTarget) states() []string {
	if t.States == nil {
		return []string{"over"}
	}
	return t.States
}

// Property returns the property with the given id.
func (c Config) Property(id string) (Property, bool) {
	for _, p := range c.Properties {
		if p.ID == id {
			return p, true
		}
	}
	return Property{}, false
}

// Credentials returns what authenticates src for this property: the SPP bearer token,
// the scores api key, or the GamePush / TrackScore signing secret. ok is false when the
// source is not configured (its route answers 404). An empty bearer token or api key
// with ok true means the source is configured without auth.
func (p Property) Credentials(src rewards.Source) (bearer, apiKey, secret string, ok bool) {
	s := p.Sources
	switch src {
	case rewards.SourceGamezopSPP:
		if s.GamezopSPP != nil {
			return s.GamezopSPP.BearerToken.Reveal(), "", "", true
		}
	case rewards.SourceGamezopScores:
		if s.GamezopScores != nil {
			return "", s.GamezopScores.APIKey.Reveal(), "", true
		}
	case rewards.SourceGamePush:
		if s.GamePush != nil {
			return "", "", s.GamePush.Secret.Reveal(), true
		}
	case rewards.SourceTrackScore:
		if s.TrackScore != nil {
			return "", "", s.TrackScore.Secret.Reveal(), true
		}
	}
	return "", "", "", false
}

// PreviousCredentials are the values src's credential had before a rotation, still
// accepted beside the current one: Gamezop's previous bearer tokens or api keys,
// TrackScore's previous secrets. GamePush has none (see GamePush).
func (p Property) PreviousCredentials(src rewards.Source) []string {
	var prev []Secret
	switch s := p.Sources; src {
	case rewards.SourceGamezopSPP:
		if s.GamezopSPP != nil {
			prev = s.GamezopSPP.PreviousBearerTokens
		}
	case rewards.SourceGamezopScores:
		if s.GamezopScores != nil {
			prev = s.GamezopScores.PreviousAPIKeys
		}
	case rewards.SourceTrackScore:
		if s.TrackScore != nil {
			prev = s.TrackScore.PreviousSecrets
		}
	}
	out := make([]string, len(prev))
	for i, k := range prev {
		out[i] = k.Reveal()
	}
	return out
}

// Problem is one thing wrong with a config, at a key path such as
// properties[0].revenue.share.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error is every problem Load or Validate found. Messages never contain secret values.
type Error struct {
	File     string // empty when the config did not come from a file
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": " + e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}
