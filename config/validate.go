package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"tally/postbacks"
	"tally/rewards"
)

var (
	propertyIDPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	currencyPattern   = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,15}$`)
	countryPattern    = regexp.MustCompile(`^[A-Z]{2}$`)
	// adminName is recorded as the actor of admin actions and shown in the audit log.
	adminName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
)

// gamezopStates are the states a Gamezop score postback can carry.
var gamezopStates = []string{"loaded", "start", "playing", "over", "levelup"}

const maxScale = rewards.Precision

// Validate checks the whole config and returns an *Error listing every problem, each at
// its key path, or nil. Empty rule fields that have defaults (direction, per, states,
// hold) are valid and mean their default; listen, database.url and settlement.schedule
// must be set (Load sets their defaults). Messages never contain a secret value.
func (c Config) Validate() error {
	var v validator
	switch {
	case c.Listen == "":
		v.add("listen", "is required")
	default:
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			v.add("listen", "must be host:port such as \":8080\", got %q", c.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != port {
			v.add("listen", "must end in a port number from 0 to 65535, got %q", c.Listen)
		}
	}
	v.databaseURL("database.url", c.Database.URL)
	if c.staleReadURL {
		// Reads would come from a replica of another database than the one written to:
		// a publisher's balance from one ledger, its redemptions debiting another.
		v.add("database.read_url", "is the file's while TALLY_DATABASE_URL replaces database.url; set TALLY_DATABASE_READ_URL too, or put both URLs in the file (${NAME} expands there)")
	}
	if r := c.Database.ReadURL; r != "" {
		isPG := func(u string) bool {
			return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
		}
		switch {
		case !isPG(r):
			v.add("database.read_url", "must be a postgres:// URL of a replica of database.url")
		case !isPG(c.Database.URL):
			v.add("database.read_url", "needs database.url on Postgres: a read replica is a Postgres replica")
		default:
			v.databaseURL("database.read_url", r)
		}
	}
	if c.Settlement.Schedule == "" {
		v.add("settlement.schedule", "is required")
	} else if _, err := c.Settlement.Parse(); err != nil {
		v.add("settlement.schedule", "must be a cron spec (5 fields, or a descriptor such as \"@every 1m\"): %v, got %q", err, c.Settlement.Schedule)
	}
	// keys maps each credential that identifies a caller to where it was first seen: a
	// publisher key must identify exactly one property, and is never the admin token.
	keys := map[string]string{}
	if c.AdminToken == "" && len(c.AdminTokens) == 0 {
		v.add("admin_token", "is required (or admin_tokens: [{name, token}])")
	} else if c.AdminToken != "" {
		keys[c.AdminToken.Reveal()] = "admin_token"
		v.headerSecret("admin_token", c.AdminToken)
	}
	names := map[string]string{}
	if c.AdminToken != "" {
		names[DefaultAdminName] = "admin_token"
	}
	for i, t := range c.AdminTokens {
		at := fmt.Sprintf("admin_tokens[%d]", i)
		switch {
		case !adminName.MatchString(t.Name):
			v.add(at+".name", "must be 1–64 characters of a-z, A-Z, 0-9, '.', '_', '@' or '-', got %q", t.Name)
		case t.Name == CLIActor:
			v.add(at+".name", "%q is reserved: it names what the command line does", t.Name)
		case t.Name == ApplierActor:
			v.add(at+".name", "%q is reserved: it names what the applier does", t.Name)
		case names[t.Name] != "":
			v.add(at+".name", "%q is already the name of %s", t.Name, names[t.Name])
		default:
			names[t.Name] = at
		}
		switch {
		case t.Token == "":
			v.add(at+".token", "is required")
		case keys[t.Token.Reveal()] != "":
			v.add(at+".token", "is the same value as %s", keys[t.Token.Reveal()])
		default:
			keys[t.Token.Reveal()] = at + ".token"
			v.headerSecret(at+".token", t.Token)
		}
	}
	if len(c.Properties) == 0 {
		v.add("properties", "at least one property is required")
	}
	ids := map[string]int{}
	for i, p := range c.Properties {
		v.property(i, p, ids, keys)
	}
	// One Gamezop property is one Tally property: its booked revenue (true-ups) and its
	// SPPs' property-id check would otherwise be counted in full by each, and the buffer
	// released twice over.
	gamezop := map[string]int{}
	for i, p := range c.Properties {
		if p.GamezopPropertyID == "" {
			continue
		}
		if j, dup := gamezop[p.GamezopPropertyID]; dup {
			v.add(fmt.Sprintf("properties[%d].gamezop_property_id", i), "%q is already the gamezop_property_id of properties[%d]; one Gamezop property's revenue must be counted by one property", p.GamezopPropertyID, j)
			continue
		}
		gamezop[p.GamezopPropertyID] = i
	}
	// A credential Tally hands to someone else (a provider's token or signing secret, the
	// reports API's token, a signing key) must not also be an admin token or a publisher
	// key: Gamezop, or whoever reads its dashboard, would hold admin or redeem rights.
	// A signing secret (sub tokens, webhooks) must not be one a provider holds either: the
	// provider could sign sub tokens, or messages to the publisher, with it.
	provided := map[string]string{}
	for i, p := range c.Properties {
		for _, cred := range p.foreignCredentials(fmt.Sprintf("properties[%d]", i)) {
			if first, dup := keys[cred.secret.Reveal()]; dup {
				v.add(cred.path, "is the same value as %s; a provider's or a signing secret must not also be an admin token or API key", first)
				continue
			}
			if cred.provider {
				if _, seen := provided[cred.secret.Reveal()]; !seen {
					provided[cred.secret.Reveal()] = cred.path
				}
			}
		}
	}
	// Nor may two properties share a signing secret: a sub token does not name its
	// property, so one signed for a property's users would credit the other's, and the
	// holder of one property's webhook secret could sign the other's sub tokens or messages.
	signing := map[string]int{}
	for i, p := range c.Properties {
		for _, cred := range p.foreignCredentials(fmt.Sprintf("properties[%d]", i)) {
			if cred.provider {
				continue
			}
			if first, dup := provided[cred.secret.Reveal()]; dup {
				v.add(cred.path, "is the same value as %s; a signing secret must not be a credential a provider holds", first)
				continue
			}
			if j, dup := signing[cred.secret.Reveal()]; dup && j != i {
				v.add(cred.path, "is a signing secret of properties[%d] too; give each property its own (a sub token or webhook message signed for one would verify for the other)", j)
				continue
			}
			signing[cred.secret.Reveal()] = i
		}
	}
	if len(v.problems) == 0 {
		return nil
	}
	// A value an environment variable set is not the file's: say where it came from.
	for i, p := range v.problems {
		if env := c.fromEnv[p.Path]; env != "" {
			v.problems[i].Message += " (set by " + env + ")"
		}
	}
	return &Error{Problems: v.problems}
}

type validator struct {
	problems []Problem
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// databaseURL never echoes the URL: it may hold a password.
func (v *validator) databaseURL(path, u string) {
	if u == "" {
		v.add(path, "is required")
		return
	}
	for _, prefix := range []string{"sqlite://", "postgres://", "postgresql://"} {
		if rest, ok := strings.CutPrefix(u, prefix); ok {
			switch {
			case rest == "":
				v.add(path, "%s needs a path or host after the scheme", prefix)
			case prefix == "sqlite://" && strings.Contains(rest, "?"):
				// SQLite's options are Tally's to set; and a "?" in the path was cut there,
				// opening another file.
				v.add(path, "a sqlite:// URL takes no query and its path no \"?\"")
			case prefix != "sqlite://" && ambiguousUserInfo(rest):
				v.add(path, "has an @, /, ? or # in its user or password that is not percent-encoded (%%40, %%2F, %%3F, %%23): the driver would read another user, password or host than it seems")
			case prefix != "sqlite://":
				// What the driver will refuse at every start (a port that is no number, an
				// sslmode it does not know), refused here, naming the key; the error's own
				// text would repeat the URL, so only its reason is kept. The store opens
				// both URLs as pgx pools too, whose settings pgconn alone does not check.
				if _, err := pgxpool.ParseConfig(u); err != nil {
					v.add(path, "cannot be used: %s", parseConfigReason(err))
				}
			}
			return
		}
	}
	scheme, _, found := strings.Cut(u, "://")
	if !found {
		scheme = "none"
	} else {
		scheme = strconv.Quote(scheme)
	}
	v.add(path, "must start with sqlite://, postgres:// or postgresql://, got scheme %s", scheme)
}

// parseConfigReason is the reason pgconn gives for refusing a connection string, without
// the string itself (whose password it masks only on a best-effort basis): its message
// ("cannot parse `…`: invalid port"), and the cause unless that is net/url's, which
// quotes the URL or a piece of it.
func parseConfigReason(err error) string {
	const unknown = "the driver cannot parse it"
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return unknown
	}
	msg := pe.Error()
	cause := errors.Unwrap(pe)
	if cause != nil {
		msg = strings.TrimSuffix(msg, " ("+cause.Error()+")")
	}
	i := strings.LastIndex(msg, "`: ")
	if i < 0 {
		return unknown
	}
	msg = msg[i+len("`: "):]
	// The causes quote pieces of the URL (a URL parser's, the host or the database it
	// read), which may be pieces of a password; a TLS file's error names only its path.
	if cause != nil && msg == "failed to configure TLS" {
		msg += " (" + cause.Error() + ")"
	}
	return msg
}

// ambiguousUserInfo reports whether the part of a postgres URL after "://" may hold a
// password that one parser reads otherwise than the other, or otherwise than meant, so
// that errors and `tally check` show pieces of it as a host, a database or a setting:
//   - a "#": url.Parse takes a fragment there, pgx does not;
//   - user info that pgx (up to the first "@" before any "/") and url.Parse (up to the
//     last "@" before the first "/", "?" or "#") read differently;
//   - an "@" in the database name (a password's "/" made the rest of it the path);
//   - a query value with an "@" and a "/" after it (a password's "?" made the rest of it,
//     "…@host/db", a setting).
//
// An "@" in a query value otherwise (user=sa@project, application_name=a@b) is fine.
func ambiguousUserInfo(rest string) bool {
	if strings.Contains(rest, "#") {
		return true
	}
	pgxUser, urlUser := "", ""
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		pgxUser = rest[:i+1]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		urlUser = authority[:i+1]
	}
	if pgxUser != urlUser {
		return true
	}
	var dbname, query string
	switch slash, ask := strings.IndexByte(rest, '/'), strings.IndexByte(rest, '?'); {
	case slash >= 0 && (ask < 0 || slash < ask):
		dbname, query, _ = strings.Cut(rest[slash+1:], "?")
	case ask >= 0: // no path: the query follows the host
		query = rest[ask+1:]
	}
	if strings.Contains(dbname, "@") {
		return true
	}
	for kv := range strings.SplitSeq(query, "&") {
		if at := strings.Index(kv, "@"); at >= 0 && strings.Contains(kv[at:], "/") {
			return true
		}
	}
	return false
}

func (v *validator) property(i int, p Property, ids map[string]int, keys map[string]string) {
	path := fmt.Sprintf("properties[%d]", i)
	at := func(key string) string { return path + "." + key }

	switch {
	case p.ID == "":
		v.add(at("id"), "is required")
	case !propertyIDPattern.MatchString(p.ID):
		v.add(at("id"), "must be 1 to 64 characters of a-z, 0-9 and -, got %q", p.ID)
	default:
		if j, dup := ids[p.ID]; dup {
			v.add(at("id"), "%q is already the id of properties[%d]", p.ID, j)
		} else {
			ids[p.ID] = i
		}
	}
	switch {
	case p.Currency == "":
		v.add(at("currency"), "is required")
	case !currencyPattern.MatchString(p.Currency):
		v.add(at("currency"), "must be 1 to 16 of A-Z, 0-9 and _, starting with a letter, got %q", p.Currency)
	}
	scaleOK := p.Scale >= 0 && p.Scale <= maxScale
	if !scaleOK {
		v.add(at("scale"), "must be between 0 and %d, got %d", maxScale, p.Scale)
	}

	if len(p.APIKeys) == 0 {
		v.add(at("api_keys"), "at least one key is required")
	}
	for j, k := range p.APIKeys {
		kp := fmt.Sprintf("%s[%d]", at("api_keys"), j)
		if k == "" {
			v.add(kp, "must not be empty")
			continue
		}
		if first, dup := keys[k.Reveal()]; dup {
			v.add(kp, "is the same value as %s; a key must identify one property", first)
			continue
		}
		keys[k.Reveal()] = kp
		v.headerSecret(kp, k)
	}

	v.subTokens(at("sub_tokens"), p.SubTokens)
	v.gamezopReports(at("gamezop_reports"), p)
	v.webhooks(at("webhooks"), p.Webhooks)
	v.tournaments(at("tournaments"), p, scaleOK)
	if s := p.Sources.GamezopSPP; s != nil {
		v.headerSecret(at("sources.gamezop_spp.bearer_token"), s.BearerToken)
		v.previousCredentials(at("sources.gamezop_spp"), "bearer_token", s.BearerToken, "previous_bearer_tokens", s.PreviousBearerTokens, true)
	}
	if s := p.Sources.GamezopScores; s != nil {
		v.headerSecret(at("sources.gamezop_scores.api_key"), s.APIKey)
		v.previousCredentials(at("sources.gamezop_scores"), "api_key", s.APIKey, "previous_api_keys", s.PreviousAPIKeys, true)
	}
	if g := p.GamezopReports; g != nil {
		v.headerSecret(at("gamezop_reports.bearer_token"), g.BearerToken)
	}
	if s := p.Sources.GamePush; s != nil {
		if s.Secret == "" {
			v.add(at("sources.gamepush.secret"), "is required: it verifies every GamePush webhook")
		}
		v.signedWith(at("sources.gamepush.secret"), s.Secret)
	}
	if s := p.Sources.TrackScore; s != nil {
		if s.Secret == "" {
			v.add(at("sources.trackscore.secret"), "is required: it verifies every TrackScore webhook")
		}
		v.signedWith(at("sources.trackscore.secret"), s.Secret)
		v.previousCredentials(at("sources.trackscore"), "secret", s.Secret, "previous_secrets", s.PreviousSecrets, false)
	}

	if p.Revenue != nil {
		v.revenue(at("revenue"), *p.Revenue, p.Scale, scaleOK)
	}

	targets := map[string]int{}
	for j, t := range p.ScoreTargets {
		tp := fmt.Sprintf("%s[%d]", at("score_targets"), j)
		v.target(tp, j, t, targets)
		v.reward(tp+".reward", t.Reward, p.Scale, scaleOK)
	}

	achievements := map[[2]string][]int{}
	for j, a := range p.Achievements {
		ap := fmt.Sprintf("%s[%d]", at("achievements"), j)
		v.achievement(ap, j, a, achievements, p.Achievements)
		v.reward(ap+".reward", a.Reward, p.Scale, scaleOK)
		if a.Source.Valid() {
			if _, _, _, ok := p.Credentials(a.Source); !ok {
				// Its route answers 404, so the achievement could never be paid.
				v.add(ap+".source", "%s is not configured under %s; add it there or remove this achievement", a.Source, at("sources"))
			}
		}
	}
}

// headerSecret checks a credential sent in an HTTP header (a bearer token, an API key):
// a header cannot carry control characters, and its leading and trailing whitespace is
// trimmed on the way in, so no request could present such a value, except the console's
// sign-in form, which signed anyone in with a token of spaces. Empty is checked by the
// caller, where empty has a meaning.
func (v *validator) headerSecret(path string, s Secret) {
	t := s.Reveal()
	switch {
	case t == "":
	case strings.TrimSpace(t) == "":
		v.add(path, "is only whitespace; set a real secret")
	case strings.TrimSpace(t) != t:
		v.add(path, "has leading or trailing whitespace (a secret read from a file with its newline?): an HTTP header cannot carry it")
	case strings.ContainsFunc(t, unicode.IsControl):
		v.add(path, "has a control character: an HTTP header cannot carry it")
	}
}

// signedWith checks a provider's signing secret: one with leading or trailing whitespace
// is almost surely a value read from a file with its newline, and the provider signs
// with the secret as its dashboard shows it, so no webhook would verify (each answered
// 401, and dropped by its sender). Empty is checked by the caller.
func (v *validator) signedWith(path string, s Secret) {
	if t := s.Reveal(); t != "" && strings.TrimSpace(t) != t {
		v.add(path, "has leading or trailing whitespace (a secret read from a file with its newline?): the provider signs with the secret as its dashboard shows it, so no webhook would verify")
	}
}

// previousCredentials checks a source's credentials from before a rotation, listed under
// key beside the current one (under cur): each is a real value, neither the current one
// nor listed twice, and header ones can travel in a header. A source without a current
// credential accepts anything, so previous ones would mean nothing there.
func (v *validator) previousCredentials(at, cur string, current Secret, key string, prev []Secret, header bool) {
	if len(prev) > 0 && current == "" {
		v.add(at+"."+key, "needs %s.%s: a source without it accepts requests without auth", at, cur)
		return
	}
	v.previousSecrets(at+"."+key, prev, at+"."+cur, current, func(path string, s Secret) {
		switch {
		case s == "":
			v.add(path, "is empty; remove it, or give the secret")
		case header:
			v.headerSecret(path, s)
		default:
			v.signedWith(path, s)
		}
	})
}

// previousSecrets checks the values a secret (at curPath) had before a rotation, listed
// at path: none is the current one or listed twice, and each passes check.
func (v *validator) previousSecrets(path string, prev []Secret, curPath string, current Secret, check func(string, Secret)) {
	for j, s := range prev {
		sp := fmt.Sprintf("%s[%d]", path, j)
		switch {
		case s == current:
			v.add(sp, "is the same value as %s", curPath)
		case slices.Contains(prev[:j], s):
			v.add(sp, "is listed twice")
		default:
			check(sp, s)
		}
	}
}

// reward checks that a fixed reward fits the wallet's scale: a finer one (5.255 coins
// of a scale-2 wallet) could never be paid out as written. Whether it is a valid
// non-negative amount is checked with the rule it belongs to.
func (v *validator) reward(path string, s Decimal, scale int32, scaleOK bool) {
	if s == "" || !scaleOK {
		return
	}
	if d, err := parseDecimal(s); err == nil && !rewards.FitsScale(d, scale) {
		v.add(path, "must have at most %d decimal places (the property's scale), got %q", scale, s)
	}
}

func (v *validator) revenue(path string, r Revenue, scale int32, scaleOK bool) {
	units, unitsOK := v.decimal(path+".units_per_usd", r.UnitsPerUSD, true)
	if unitsOK && !units.IsPositive() {
		v.add(path+".units_per_usd", "must be greater than 0, got %q", r.UnitsPerUSD)
		unitsOK = false
	}
	share, shareOK := v.fraction(path+".share", r.Share)
	v.fraction(path+".buffer", r.Buffer)
	v.duration(path+".hold", r.Hold)
	if r.MinSessionSeconds < 0 {
		v.add(path+".min_session_seconds", "must not be negative, got %d", r.MinSessionSeconds)
	}
	countries := make([]string, 0, len(r.Countries))
	for k := range r.Countries {
		countries = append(countries, k)
	}
	slices.Sort(countries)
	// The largest multiplier a session can get: 1 without a countries list.
	top, topAt, topOK := decimal.NewFromInt(1), "", true
	if r.Countries != nil {
		top = decimal.Zero
	}
	for _, k := range countries {
		if m, err := parseDecimal(r.Countries[k]); err != nil {
			topOK = false
		} else if m.GreaterThan(top) {
			top, topAt = m, k
		}
	}
	if unitsOK && shareOK && topOK {
		// A session of the most revenue a receiver takes must gross within the ledger's
		// range: past it the applier quarantines every such session, replay after replay,
		// under this rule.
		gross := rewards.MaxSessionRevenueUSD.Mul(share).Mul(top).Mul(units)
		if !rewards.FitsLedger(gross) {
			by := ""
			if topAt != "" {
				by = fmt.Sprintf(", the multiplier %s of countries[%q]", r.Countries[topAt], topAt)
			}
			v.add(path+".units_per_usd", "with share %s%s and %q units per USD a session of %s USD (the most an SPP may carry) would gross %s units, more than the ledger holds (below 10^20)",
				r.Share, by, r.UnitsPerUSD, rewards.MaxSessionRevenueUSD, gross)
		}
	}
	for _, k := range countries {
		cp := path + ".countries[" + strconv.Quote(k) + "]"
		switch {
		case k == "*" || iso3166[k]:
		case countryHints[k] != "":
			v.add(cp, "%q is not an ISO 3166-1 alpha-2 code, which SPPs carry: use %q", k, countryHints[k])
		case countryPattern.MatchString(k):
			v.add(cp, "%q is not an assigned ISO 3166-1 alpha-2 code; no SPP carries it", k)
		default:
			v.add(cp, "a country must be \"*\" or an upper-case ISO 3166-1 alpha-2 code such as \"US\"")
		}
		v.nonNegative(cp, r.Countries[k], true)
	}
	v.capAmount(path+".caps.per_session", r.Caps.PerSession, scale, scaleOK)
	v.capAmount(path+".caps.per_user_per_day", r.Caps.PerUserPerDay, scale, scaleOK)
}

// capAmount checks a cap: caps limit wallet units, so a cap finer than the wallet's
// scale could never be paid out as written.
func (v *validator) capAmount(path string, s Decimal, scale int32, scaleOK bool) {
	d, ok := v.nonNegative(path, s, false)
	if ok && scaleOK && !rewards.FitsScale(d, scale) {
		v.add(path, "must have at most %d decimal places (the property's scale), got %q", scale, s)
	}
}

var targetID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (v *validator) target(path string, j int, t ScoreTarget, ids map[string]int) {
	switch {
	case t.ID == "":
		v.add(path+".id", "is required")
	case !targetID.MatchString(t.ID):
		// The id is part of the claim key that makes a reward payable once ("target:<id>:day:…"),
		// so it may not contain the ':' separator or anything surprising.
		v.add(path+".id", "must match %s, got %q", targetID, t.ID)
	default:
		if k, dup := ids[t.ID]; dup {
			v.add(path+".id", "%q is already the id of score_targets[%d]", t.ID, k)
		} else {
			ids[t.ID] = j
		}
	}
	v.providerID(path+".game", t.Game, "the game or leaderboard whose scores count")
	v.nonNegative(path+".min_score", t.MinScore, true)
	if d := t.direction(); d != rewards.Higher && d != rewards.Lower {
		v.add(path+".direction", "must be higher or lower, got %q", d)
	}
	v.nonNegative(path+".reward", t.Reward, true)
	if p := t.per(); p != rewards.PerOnce && p != rewards.PerDay && p != rewards.PerPlay {
		v.add(path+".per", "must be once, day or play, got %q", p)
	}
	if t.States != nil && len(t.States) == 0 {
		v.add(path+".states", "must list at least one state; leave the key out for the default [over]")
	}
	for k, s := range t.States {
		if !slices.Contains(gamezopStates, s) {
			v.add(fmt.Sprintf("%s.states[%d]", path, k), "must be one of %s, got %q", strings.Join(gamezopStates, ", "), s)
		}
		// loaded and start always report 0, the best score there is when lower is better:
		// the target would pay every user who opens the game. playing and levelup report a
		// play's score so far, which in a lower-is-better game (a time) starts low and
		// grows: it would meet the target before the play ends.
		if t.direction() == rewards.Lower {
			switch s {
			case "loaded", "start":
				v.add(fmt.Sprintf("%s.states[%d]", path, k), "%q always reports score 0, which meets every direction: lower target", s)
			case "playing", "levelup":
				v.add(fmt.Sprintf("%s.states[%d]", path, k), "%q reports a play's score so far, which a direction: lower target would take before the play ends; count over", s)
			}
		}
	}
	v.duration(path+".hold", t.Hold)
}

// achievement checks one achievement; seen holds the earlier ones by (source, id). Two
// rules for one (source, id) are refused unless each names its event and the events
// differ: otherwise one event would pay both.
func (v *validator) achievement(path string, j int, a Achievement, seen map[[2]string][]int, all []Achievement) {
	switch a.Source {
	case "":
		v.add(path+".source", "is required")
	case rewards.SourceGamePush, rewards.SourceTrackScore:
		if evs := rewards.AchievementEvents(a.Source); a.Event != "" && !slices.Contains(evs, a.Event) {
			v.add(path+".event", "must be one of %s for %s, got %q", strings.Join(evs, ", "), a.Source, a.Event)
		}
	default:
		v.add(path+".source", "must be gamepush or trackscore, got %q", a.Source)
	}
	if v.providerID(path+".id", a.ID, "the achievement's id as its source sends it") {
		key := [2]string{string(a.Source), a.ID}
		for _, k := range seen[key] {
			if b := all[k]; a.Event == "" || b.Event == "" || a.Event == b.Event {
				v.add(path, "%s achievement %q is already configured at achievements[%d]; two rules for one id need each its own event", a.Source, a.ID, k)
				break
			}
		}
		seen[key] = append(seen[key], j)
	}
	v.nonNegative(path+".reward", a.Reward, true)
	v.duration(path+".hold", a.Hold)
}

// providerID checks an id a provider's events carry (a game, an achievement): required,
// and one the receivers accept (postbacks.CheckProviderID), else no event could ever
// match the rule. It reports whether s is usable.
func (v *validator) providerID(path, s, what string) bool {
	if s == "" {
		v.add(path, "is required: %s", what)
		return false
	}
	if msg := postbacks.CheckProviderID(s); msg != "" {
		v.add(path, "%s (no event can carry such an id, so the rule would never match)", msg)
		return false
	}
	return true
}

// decimal parses s, reporting at path when it is malformed, or empty and required.
func (v *validator) decimal(path string, s Decimal, required bool) (decimal.Decimal, bool) {
	if s == "" {
		if required {
			v.add(path, "is required")
		}
		return decimal.Zero, false
	}
	d, err := parseDecimal(s)
	if err != nil {
		v.add(path, "%v, got %q", err, s)
		return decimal.Zero, false
	}
	return d, true
}

func (v *validator) nonNegative(path string, s Decimal, required bool) (decimal.Decimal, bool) {
	d, ok := v.decimal(path, s, required)
	if ok && d.IsNegative() {
		v.add(path, "must not be negative, got %q", s)
		return d, false
	}
	return d, ok
}

func (v *validator) fraction(path string, s Decimal) (decimal.Decimal, bool) {
	d, ok := v.decimal(path, s, true)
	if ok && (d.IsNegative() || d.GreaterThan(decimal.NewFromInt(1))) {
		v.add(path, "must be between 0 and 1, got %q", s)
		return d, false
	}
	return d, ok
}

func (v *validator) duration(path string, s Duration) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(string(s))
	switch {
	case err != nil:
		v.add(path, "must be a duration such as \"24h\" or \"0s\", got %q", s)
	case d < 0:
		v.add(path, "must not be negative, got %q", s)
	}
}

var maxAmount = decimal.New(1, rewards.MaxIntegerDigits)

// parseDecimal parses a config decimal from its literal text, exactly, and checks that
// the ledger can hold it: at most 18 decimal places and less than 10^20 in magnitude.
func parseDecimal(s Decimal) (decimal.Decimal, error) {
	// Bounding the length and exponent first keeps "1e999999999" from expanding into a
	// billion digits when printed.
	if len(s) > 64 {
		return decimal.Zero, errors.New("must be a decimal number of at most 64 characters")
	}
	d, err := decimal.NewFromString(string(s))
	if err != nil {
		return decimal.Zero, errors.New("must be a decimal number")
	}
	if e := d.Exponent(); e < -64 || e > 64 {
		return decimal.Zero, fmt.Errorf("must be less than 10^%d with at most %d decimal places", rewards.MaxIntegerDigits, rewards.Precision)
	}
	if rewards.DecimalPlaces(d) > rewards.Precision {
		return decimal.Zero, fmt.Errorf("must have at most %d decimal places", rewards.Precision)
	}
	if d.Abs().GreaterThanOrEqual(maxAmount) {
		return decimal.Zero, fmt.Errorf("must be less than 10^%d", rewards.MaxIntegerDigits)
	}
	return d, nil
}

// mustDecimal is parseDecimal for values Validate has accepted; "" is zero.
func mustDecimal(s Decimal) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	d, err := parseDecimal(s)
	if err != nil {
		return decimal.Zero
	}
	return d
}

// mustDuration is time.ParseDuration for values Validate has accepted; "" is zero.
func mustDuration(s Duration) time.Duration {
	d, err := time.ParseDuration(string(s.effective()))
	if err != nil {
		return 0
	}
	return d
}

// credential is a secret of the config with where it is written.
type credential struct {
	path     string
	secret   Secret
	provider bool // held by a provider (an inbound token or signing secret, the reports API's token)
	// signs is the source ("gamepush", "trackscore") whose deliveries this secret signs,
	// when their payload names no property of Tally's: only the secret tells one
	// property's deliveries from another's. "" for every other credential.
	signs string
}

// foreignCredentials lists the property's secrets that are not its callers' (API keys):
// what its providers authenticate or sign with, the reports API's token, the sub token
// and webhook signing secrets. Empty ones are left out.
func (p Property) foreignCredentials(path string) []credential {
	var out []credential
	add := func(at string, s Secret, provider bool) {
		if s != "" {
			out = append(out, credential{path: path + "." + at, secret: s, provider: provider})
		}
	}
	signing := func(source, at string, s Secret) {
		if s != "" {
			out = append(out, credential{path: path + ".sources." + source + "." + at, secret: s, provider: true, signs: source})
		}
	}
	if s := p.Sources.GamezopSPP; s != nil {
		add("sources.gamezop_spp.bearer_token", s.BearerToken, true)
		for j, k := range s.PreviousBearerTokens {
			add(fmt.Sprintf("sources.gamezop_spp.previous_bearer_tokens[%d]", j), k, true)
		}
	}
	if s := p.Sources.GamezopScores; s != nil {
		add("sources.gamezop_scores.api_key", s.APIKey, true)
		for j, k := range s.PreviousAPIKeys {
			add(fmt.Sprintf("sources.gamezop_scores.previous_api_keys[%d]", j), k, true)
		}
	}
	if s := p.Sources.GamePush; s != nil {
		signing("gamepush", "secret", s.Secret)
	}
	if s := p.Sources.TrackScore; s != nil {
		signing("trackscore", "secret", s.Secret)
		for j, k := range s.PreviousSecrets {
			signing("trackscore", fmt.Sprintf("previous_secrets[%d]", j), k)
		}
	}
	if g := p.GamezopReports; g != nil {
		add("gamezop_reports.bearer_token", g.BearerToken, true)
	}
	if t := p.SubTokens; t != nil {
		add("sub_tokens.secret", t.Secret, false)
		for i, k := range t.Secrets {
			add(fmt.Sprintf("sub_tokens.secrets[%d]", i), k, false)
		}
	}
	for i, h := range p.Webhooks {
		add(fmt.Sprintf("webhooks[%d].secret", i), h.Secret, false)
		for j, s := range h.PreviousSecrets {
			add(fmt.Sprintf("webhooks[%d].previous_secrets[%d]", i, j), s, false)
		}
	}
	return out
}
