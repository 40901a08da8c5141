package postbacks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// Gamezop's `timestamp` is documented only as "Unix timestamp"; senders use seconds or
// milliseconds. 1e11 seconds is the year 5138 and 1e11 milliseconds is March 1973, so
// values at or above it are read as milliseconds without ambiguity for any real event.
const (
	millisThreshold = 100_000_000_000
	maxUnixMillis   = 253_402_300_800_000 // 10000-01-01: past what RFC 3339 can write
)

// gamezopStates are the documented values of `state`.
var gamezopStates = map[string]bool{"loaded": true, "start": true, "playing": true, "over": true, "levelup": true}

// ParseGamezopScore reads one Gamezop score webhook (providers/gamezop-scores.md). When
// c.APIKey is set the request must carry it in the `api-key` header.
//
// Gamezop sends no event id, so the dedupe key is built from what identifies a score
// update: (sessionId, gamePlayId, state, score, timestamp), encoded as a JSON array so
// that no choice of values can make two different tuples produce the same key. The score
// is in canonical decimal form, so "950" and 950.0 are one update.
func ParseGamezopScore(h http.Header, body []byte, c Credentials) (rewards.Event, error) {
	if !c.verified && c.APIKey != "" {
		v, ok := singleHeader(h, "api-key")
		if !ok || !oneOf([]byte(v), c.APIKey, c.Previous) {
			return rewards.Event{}, ErrUnauthorized
		}
	}
	obj, err := decodeObject(body)
	if err != nil {
		return rewards.Event{}, err
	}
	root := node{obj: obj}
	var ck checker

	// Required: gameCode (targets key on it), the user, and what makes the dedupe key
	// and decides a payment: sessionId, timestamp, score and state.
	game, _ := ck.ident(root, "gameCode", true, maxIDLen)
	// sessionId is required although the brief lists only gameCode as such: without it the
	// dedupe key would no longer separate two users who score alike at the same second.
	sessionID, _ := ck.ident(root, "sessionId", true, maxIDLen)
	// gamePlayId is part of the dedupe key and of `per: play` claims, so a value that is
	// sent must be an id; it may be missing (or "") before a game play begins ("loaded").
	playID, _ := ck.ident(root, "gamePlayId", false, maxIDLen)
	// A number of seconds or milliseconds, which may have a fraction (JavaScript's
	// Date.now()/1000): the doc says only "Unix timestamp", and a 400 would lose every
	// score sent so. The literal, as sent, is in the dedupe key.
	ts, tsLiteral, tsOK := ck.decimalField(root, "timestamp", true)
	var occurred *time.Time
	if tsOK {
		occurred = unixTime(&ck, ts)
	}
	score, _ := ck.score(root, "score")
	user, _ := ck.subIdent(root, "subId")
	state, ok := ck.text(root, "state", true, maxIDLen)
	if ok && !gamezopStates[state] {
		ck.fail("state", "must be one of loaded, start, playing, over, levelup")
	}
	// Informational, never a 400: leaderboardId is not read at all (rewards.Score has no
	// place for it, targets key on gameCode; it stays in the raw body as sent). country
	// and duration are carried when understood. The doc calls country an ISO 3166-2
	// code, which names a subdivision ("IN-MH"); senders may send either form.
	country := infoCountry(root, "country", true)
	duration := infoCount(root, "duration")

	if err := ck.err(); err != nil {
		return rewards.Event{}, err
	}
	parts := []string{sessionID, playID, state, score.String(), tsLiteral}
	key, err := json.Marshal(parts)
	if err != nil { // cannot happen for strings
		return rewards.Event{}, err
	}
	if len(key) > rewards.MaxDedupeKey {
		// Each part is within its own limit, yet together (ids of 200 characters that
		// JSON escapes to 6 bytes each, a score of 1,000 digits) they could pass what the
		// inbox's index holds, and Postgres refused the insert on every retry: a 503 for
		// good (review helper 230). The part that weighs most is named.
		longest, most, names := 0, 0, []string{"sessionId", "gamePlayId", "state", "score", "timestamp"}
		for i, p := range parts {
			if b, _ := json.Marshal(p); len(b) > most {
				longest, most = i, len(b)
			}
		}
		return rewards.Event{}, &ValidationError{Errors: []FieldError{{Field: names[longest],
			Message: fmt.Sprintf("too long: with the other fields that identify a score update (sessionId, gamePlayId, state, score, timestamp) it makes a key of %d bytes, over the %d Tally records", len(key), rewards.MaxDedupeKey)}}}
	}
	play := playID
	if play == "" {
		// No game play named (the doc sends one with every play): the play is taken to be
		// the session. The dedupe key holds the timestamp, and Gamezop redelivers with a
		// new one, so as the play (rewards' fallback) it paid a `per: play` target and
		// counted toward min_plays again on every redelivery. Two plays of one session
		// without ids count as one: paid less, never twice.
		play = "session:" + sessionID
	}
	ev := rewards.Event{
		Source:     rewards.SourceGamezopScores,
		Kind:       rewards.KindScore,
		Type:       state,
		DedupeKey:  string(key),
		User:       user,
		OccurredAt: occurred,
		Score: &rewards.Score{
			Game:     game,
			Value:    score,
			State:    state,
			PlayID:   play,
			Country:  country,
			Duration: duration,
		},
	}
	// A score beyond Tally's range (checker.score) keeps the event quarantined.
	if err := ck.unmapped(ev); err != nil {
		return rewards.Event{}, err
	}
	return ev, nil
}

// unixTime reads a Unix timestamp in seconds or milliseconds (see millisThreshold),
// truncated to the microsecond (what the database keeps).
func unixTime(ck *checker, v decimal.Decimal) *time.Time {
	if v.Cmp(decimal.NewFromInt(maxUnixMillis)) >= 0 {
		ck.fail("timestamp", "out of range")
		return nil
	}
	perUnit := int64(time.Second / time.Microsecond)
	if v.Cmp(decimal.NewFromInt(millisThreshold)) >= 0 {
		perUnit = int64(time.Millisecond / time.Microsecond)
	}
	// Below 2.6e17 microseconds: within int64.
	t := time.UnixMicro(v.Mul(decimal.NewFromInt(perUnit)).Truncate(0).IntPart()).UTC()
	return &t
}
