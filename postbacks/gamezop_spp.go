package postbacks

import (
	"net/http"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// maxSessionRevenueUSD caps one session's estimated revenue (DESIGN §3). Gamezop's
// estimates are fractions of a cent; anything near this is a bug or an attack, and
// refusing it keeps one postback from minting a fortune.
var maxSessionRevenueUSD = decimal.NewFromInt(1000)

// ParseGamezopSPP reads a Gamezop Session Performance Postback
// (providers/gamezop-spp.md). When c.BearerToken is set the request must carry it as
// `Authorization: Bearer <token>`; Gamezop lets the publisher leave it off, and so does
// an empty token here. The dedupe key is session-id, which Gamezop documents as the
// deduplication id.
func ParseGamezopSPP(h http.Header, body []byte, c Credentials) (rewards.Event, error) {
	if !c.verified && c.BearerToken != "" && !bearerOK(h, c.BearerToken) {
		return rewards.Event{}, ErrUnauthorized
	}
	obj, err := decodeObject(body)
	if err != nil {
		return rewards.Event{}, err
	}
	root := node{obj: obj}
	var ck checker

	user, _ := ck.text(root, "user-id", true, maxUserLen)
	sessionID, _ := ck.text(root, "session-id", true, maxIDLen)
	revenue, ok := ck.amount(root, "your-estimated-revenue", true)
	if ok && revenue.GreaterThan(maxSessionRevenueUSD) {
		ck.fail("your-estimated-revenue", "must be at most 1000 USD")
	}
	duration, _, _ := ck.count(root, "session-duration", true)
	country := ck.country(root, "country", false)
	ads, _, _ := ck.count(root, "count-of-ads-viewed", false) // absent means none seen
	// property-id is carried, not checked: whether it must match is per-property config,
	// which app holds. The sample sends "1234"; a number is accepted too.
	propertyID, _ := ck.ident(root, "property-id", false, maxIDLen)

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
