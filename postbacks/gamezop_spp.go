package postbacks

import (
	"net/http"

	"tally/rewards"
)

// ParseGamezopSPP reads a Gamezop Session Performance Postback
// (providers/gamezop-spp.md). When c.BearerToken is set the request must carry it as
// `Authorization: Bearer <token>`; Gamezop lets the publisher leave it off, and so does
// an empty token here. The dedupe key is session-id, which Gamezop documents as the
// deduplication id.
func ParseGamezopSPP(h http.Header, body []byte, c Credentials) (rewards.Event, error) {
	if !c.verified && c.BearerToken != "" && !bearerOK(h, c.BearerToken, c.Previous) {
		return rewards.Event{}, ErrUnauthorized
	}
	obj, err := decodeObject(body)
	if err != nil {
		return rewards.Event{}, err
	}
	root := node{obj: obj}
	var ck checker

	// Required: the user (identity), session-id (the dedupe key), the revenue and the
	// duration (min_session_seconds decides whether it earns). country is optional, but
	// it picks the multiplier, so a code that is sent must be one.
	user, _ := ck.subIdent(root, "user-id")
	sessionID, _ := ck.ident(root, "session-id", true, maxIDLen)
	revenue, ok := ck.amount(root, "your-estimated-revenue", true)
	if ok && revenue.GreaterThan(rewards.MaxSessionRevenueUSD) {
		ck.fail("your-estimated-revenue", "must be at most 1000 USD")
	}
	duration, _, _ := ck.count(root, "session-duration", true)
	country := ck.country(root, "country", false)
	// Informational: count-of-ads-viewed is 0 when absent or not a count.
	ads := infoCount(root, "count-of-ads-viewed")
	// property-id is carried, not checked: whether it must match is per-property config,
	// which app holds. The sample sends "1234"; a number is accepted too. One that is
	// empty or not an id is carried as absent, which quarantines the session wherever a
	// gamezop_property_id is configured: kept, never credited on a guess.
	propertyID := infoIdent(root, "property-id", maxIDLen)

	if err := ck.err(); err != nil {
		return rewards.Event{}, err
	}
	return rewards.Event{
		Source:    rewards.SourceGamezopSPP,
		Kind:      rewards.KindSession,
		Type:      "spp",
		DedupeKey: sessionID,
		User:      user,
		Session: &rewards.Session{
			SessionID:       sessionID,
			PropertyID:      propertyID,
			Country:         country,
			AdsViewed:       ads,
			RevenueUSD:      revenue,
			DurationSeconds: duration,
		},
	}, nil
}
