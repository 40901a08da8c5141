package postbacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"tally/rewards"
)

// trackScoreSigPrefix is the literal prefix of X-TrackScore-Signature.
const trackScoreSigPrefix = "sha256="

// ParseTrackScore reads a TrackScore webhook (providers/trackscore-webhooks.md). The
// header `X-TrackScore-Signature: sha256=<hex>` must hold HMAC-SHA256(c.Secret, body);
// c.Secret is required.
//
// The doc's Express example HMACs JSON.stringify(req.body), a re-serialisation that
// differs from what was sent whenever spacing, key order or number spelling differ (and
// would let a different body with the same parse pass). We HMAC the exact raw bytes.
//
// The dedupe key is the webhook's `id`. Mapping (DESIGN §3): user = data.participant_id;
// score.updated → score (data.new_score on game data.leaderboard_id);
// achievement.unlocked → achievement data.achievement_id, else data.achievement.id;
// milestone.reached → achievement data.milestone_id, else data.milestone.id; anything
// else → other. The doc shows only a score.updated payload, so the achievement and
// milestone id paths are assumptions. A bare data.id is not read, as GamePush's bare
// result.id is not: beside participant_id it is likely the unlock's own record, and read
// as the achievement it would mark the event applied, earning nothing, for good, where a
// miss keeps it quarantined and replayable.
func ParseTrackScore(h http.Header, body []byte, c Credentials) (rewards.Event, error) {
	if !c.verified && (c.Secret == "" || !trackScoreSignatureOK(h, body, c.Secret, c.Previous)) {
		return rewards.Event{}, ErrUnauthorized
	}
	obj, err := decodeObject(body)
	if err != nil {
		return rewards.Event{}, err
	}
	root := node{obj: obj}
	var ck checker

	// Required: id (the dedupe key), type, and for the events that earn, data with its
	// participant_id (the user) and what the rules map by. created is informational.
	id, _ := ck.ident(root, "id", true, maxIDLen)
	typ, _ := ck.text(root, "type", true, maxIDLen)
	occurred := infoTime(root, "created")

	// Events that earn need a participant; others may concern a leaderboard or a team,
	// and their data is carried only as far as it is understood.
	earns := typ == "score.updated" || typ == "achievement.unlocked" || typ == "milestone.reached"
	kind := rewards.KindOther
	var user string
	var score *rewards.Score
	var achievement *rewards.Achievement
	if !earns {
		if v, ok := root.get("data"); ok {
			if obj, isObj := v.(map[string]any); isObj {
				user = infoUser(node{obj: obj, path: "data"}, "participant_id")
			}
		}
	} else if _, sent := root.get("data"); !sent && typ != "score.updated" {
		// The doc shows no achievement or milestone payload: where their user is, is a
		// guess, so a signed one without it is kept (quarantined), not refused.
		ck.miss("data", "missing (the doc shows no "+typ+" payload; looked for data.participant_id)")
	} else if data, ok := ck.object(root, "data", true); ok {
		if _, sent := data.get("participant_id"); sent || typ == "score.updated" {
			user, _ = ck.userIdent(data, "participant_id")
		} else {
			ck.miss(data.name("participant_id"), "missing (the doc shows no "+typ+" payload)")
		}
		switch typ {
		case "score.updated":
			kind = rewards.KindScore
			game, _ := ck.ident(data, "leaderboard_id", true, maxIDLen)
			value, _ := ck.score(data, "new_score")
			score = &rewards.Score{Game: game, Value: value}
		case "achievement.unlocked":
			kind = rewards.KindAchievement
			if aid, ok := ck.firstIdent(data, maxIDLen, []string{"achievement_id"}, []string{"achievement", "id"}); ok {
				achievement = &rewards.Achievement{ID: aid}
			}
		case "milestone.reached":
			kind = rewards.KindAchievement
			if mid, ok := ck.firstIdent(data, maxIDLen, []string{"milestone_id"}, []string{"milestone", "id"}); ok {
				achievement = &rewards.Achievement{ID: mid}
			}
		}
	}

	if err := ck.err(); err != nil {
		return rewards.Event{}, err
	}
	ev := rewards.Event{
		Source:      rewards.SourceTrackScore,
		Kind:        kind,
		Type:        typ,
		DedupeKey:   id,
		User:        user,
		OccurredAt:  occurred,
		Score:       score,
		Achievement: achievement,
	}
	if err := ck.unmapped(ev); err != nil {
		return rewards.Event{}, err
	}
	return ev, nil
}

// trackScoreSignatureOK checks the header against HMAC-SHA256 of the raw body under the
// secret or one from before a rotation. The hex digits may be in either case; the prefix
// is exact.
func trackScoreSignatureOK(h http.Header, body []byte, secret string, previous []string) bool {
	v, ok := singleHeader(h, "X-TrackScore-Signature")
	if !ok || !strings.HasPrefix(v, trackScoreSigPrefix) {
		return false
	}
	got, err := hex.DecodeString(v[len(trackScoreSigPrefix):])
	if err != nil {
		return false
	}
	ok = false
	for _, k := range append([]string{secret}, previous...) {
		mac := hmac.New(sha256.New, []byte(k))
		mac.Write(body)
		ok = secretEqual(got, mac.Sum(nil)) || ok
	}
	return ok
}
