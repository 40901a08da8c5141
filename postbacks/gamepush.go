package postbacks

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// ParseGamePush reads a GamePush webhook (providers/gamepush-webhooks.md). The body is
// `base64payload.signature`, where signature is SHA-256 of `base64payload + "_" + secret`.
// c.Secret is required: without it nothing can be authenticated.
//
// The doc's JavaScript compares the hash object itself with the received string, which is
// never equal, and the doc's sample body carries a 13-byte "signature"; neither can be
// followed literally. We compare the 32-byte digests, accepting the signature as hex (any
// case) or standard base64 (padded or not), since the doc does not say which encoding
// GamePush uses.
//
// The dedupe key is the hex SHA-256 of the body (DESIGN §3), as GamePush sends no event
// id, with the signature spelled in lowercase hex (gamePushDedupeKey).
//
// Mapping (DESIGN §3) — user = player.id; a test player's events (player.test) earn
// nothing (testPlayer); the result shapes of the events other than
// GivePlayerReward are not shown in the doc (they follow GamePush's GraphQL schema), so
// the paths below are assumptions, tried in order, the first present one winning:
//
//	PlayerPublishRecord     → score; game: result.leaderboardTag, result.tag,
//	                          result.leaderboardId, result.leaderboard.id;
//	                          value: result.record.score, else result.score
//	UnlockPlayerAchievement → achievement: result.achievementId, result.achievement.id,
//	                          result.achievement.tag
//	GivePlayerReward        → achievement: result.rewardId (documented), result.reward.id
//	anything else           → other (recorded, earns nothing)
//
// A bare result.id is not read: the one result the doc shows (PlayerReward) names what
// it refers to with rewardId and carries no id, so a result's own id is most likely the
// id of the row it reports (a record, a player's achievement), not of a game or an
// achievement. Read as one, it would match no rule and mark the event applied, earning
// nothing, for good; missing, the event is quarantined and can be replayed once the
// shape is known.
func ParseGamePush(h http.Header, body []byte, c Credentials) (rewards.Event, error) {
	if c.Secret == "" && !c.verified {
		return rewards.Event{}, ErrUnauthorized
	}
	// Exact bytes: no trimming of whitespace or a trailing newline. Neither base64
	// alphabet contains '.', so a valid body has exactly one.
	if bytes.Count(body, []byte{'.'}) != 1 {
		return rewards.Event{}, ErrUnauthorized
	}
	payload, sig, _ := bytes.Cut(body, []byte{'.'})
	digest, digestOK := decodeDigest(string(sig))
	if !c.verified {
		want := sha256.Sum256(append(append(bytes.Clone(payload), '_'), c.Secret...))
		if !digestOK || !secretEqual(digest, want[:]) {
			return rewards.Event{}, ErrUnauthorized
		}
	}

	// Authenticated from here on: problems are 400s.
	raw, err := decodeBase64(string(payload))
	if err != nil {
		return rewards.Event{}, bodyError("payload is not valid base64")
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return rewards.Event{}, err
	}
	root := node{obj: obj}
	var ck checker

	// Required: event (it says what the webhook means) and, for the events that earn,
	// player.id (the user). Every other event is recorded and earns nothing, so its
	// player is carried when it is an id and otherwise left out. time is informational.
	event, _ := ck.text(root, "event", true, maxIDLen)
	var user string
	var test bool
	if gamePushEarns[event] {
		if player, ok := ck.object(root, "player", true); ok {
			user, _ = ck.userIdent(player, "id")
			test = testPlayer(&ck, player)
		}
	} else if v, ok := root.get("player"); ok {
		if obj, isObj := v.(map[string]any); isObj {
			user = infoUser(node{obj: obj, path: "player"}, "id")
		}
	}
	occurred := infoTime(root, "time")

	kind := rewards.KindOther
	var score *rewards.Score
	var achievement *rewards.Achievement
	switch event {
	case "PlayerPublishRecord":
		kind = rewards.KindScore
		if result, ok := mappedResult(&ck, root); ok {
			game, gameOK := ck.firstIdent(result, maxIDLen,
				[]string{"leaderboardTag"}, []string{"tag"}, []string{"leaderboardId"},
				[]string{"leaderboard", "id"})
			at, key, ok := result.lookup("record", "score")
			if !ok {
				at, key = result, "score"
			}
			var value decimal.Decimal
			valueOK := false
			if _, present := at.get(key); present {
				value, valueOK = ck.score(at, key)
			} else {
				ck.miss(result.name("record.score"), "missing (looked for result.record.score, result.score)")
			}
			if gameOK && valueOK {
				// The play is the signed payload, which the dedupe key also stands for
				// whatever the signature's spelling (gamePushDedupeKey).
				play := sha256.Sum256(payload)
				score = &rewards.Score{Game: game, Value: value, PlayID: hex.EncodeToString(play[:])}
			}
		}
	case "UnlockPlayerAchievement":
		kind = rewards.KindAchievement
		if result, ok := mappedResult(&ck, root); ok {
			if id, ok := ck.firstIdent(result, maxIDLen,
				[]string{"achievementId"}, []string{"achievement", "id"},
				[]string{"achievement", "tag"}); ok {
				achievement = &rewards.Achievement{ID: id}
			}
		}
	case "GivePlayerReward":
		kind = rewards.KindAchievement
		if result, ok := mappedResult(&ck, root); ok {
			if id, ok := ck.firstIdent(result, maxIDLen, []string{"rewardId"}, []string{"reward", "id"}); ok {
				achievement = &rewards.Achievement{ID: id}
			}
		}
	}

	if err := ck.err(); err != nil {
		return rewards.Event{}, err
	}
	ev := rewards.Event{
		Source:      rewards.SourceGamePush,
		Kind:        kind,
		Type:        event,
		DedupeKey:   gamePushDedupeKey(body, payload, digest, digestOK),
		FormerKeys:  gamePushFormerKeys(payload, digest, digestOK),
		User:        user,
		OccurredAt:  occurred,
		Score:       score,
		Achievement: achievement,
		Test:        test,
	}
	if err := ck.unmapped(ev); err != nil {
		return rewards.Event{}, err
	}
	return ev, nil
}

// gamePushDedupeKey is the hex SHA-256 of the body with its signature spelled in lowercase
// hex: of the raw body itself when it came so (DESIGN §3). The signature is not signed,
// and decodeDigest takes four spellings of it, so the raw body's own hash made each
// spelling of one captured event a new event, which a `per: day` target paid again on
// each later day. A body whose signature does not decode (only a replayed one, verified
// by an earlier version) keeps the hash of its raw bytes.
func gamePushDedupeKey(body, payload, digest []byte, digestOK bool) string {
	if !digestOK {
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:])
	}
	h := sha256.New()
	h.Write(payload)
	h.Write([]byte{'.'})
	h.Write([]byte(hex.EncodeToString(digest)))
	return hex.EncodeToString(h.Sum(nil))
}

// gamePushFormerKeys are the keys a version before gamePushDedupeKey recorded this event
// under: the hash of the raw body, in each spelling of its signature but lowercase hex
// (whose is the key itself). A delivery recorded then and sent again now, as it was or
// re-spelled, is thus still its duplicate.
func gamePushFormerKeys(payload, digest []byte, digestOK bool) []string {
	if !digestOK {
		return nil
	}
	spellings := []string{strings.ToUpper(hex.EncodeToString(digest)), base64.StdEncoding.EncodeToString(digest),
		base64.RawStdEncoding.EncodeToString(digest)}
	keys := make([]string, len(spellings))
	for i, sig := range spellings {
		sum := sha256.Sum256(append(append(bytes.Clone(payload), '.'), sig...))
		keys[i] = hex.EncodeToString(sum[:])
	}
	return keys
}

// testPlayer reads player.test, which the doc's payload shows (false) and GamePush sets
// for the test requests a webhook with "Dev" checked receives: such an event earns
// nothing. Absent or null, the player is real. It decides whether money is paid, so a
// value that is not a boolean keeps the event quarantined (a mapping miss) rather than
// paying, or refusing, on a guess.
func testPlayer(ck *checker, player node) bool {
	v, ok := player.get("test")
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		ck.miss(player.name("test"), "must be true or false")
	}
	return b
}

// gamePushEarns are the events the rules map to a score or an achievement.
var gamePushEarns = map[string]bool{"PlayerPublishRecord": true, "UnlockPlayerAchievement": true, "GivePlayerReward": true}

// mappedResult returns the result object of an event Tally rewards; a missing result is
// a mapping miss (quarantine), a result that is not an object is invalid.
func mappedResult(ck *checker, root node) (node, bool) {
	if _, ok := root.get("result"); !ok {
		ck.miss("result", "missing")
		return node{}, false
	}
	return ck.object(root, "result", true)
}

// decodeDigest reads a SHA-256 digest written as 64 hex digits, all lower or all upper
// case, or as standard base64, padded (44 characters) or raw (43). Each digest thus has
// only four spellings (mixed case and non-zero base64 padding bits are refused): the
// signature is not itself signed, and every other spelling of it would be a new raw body
// and so a new dedupe key for the same event.
func decodeDigest(s string) ([]byte, bool) {
	var b []byte
	var err error
	switch len(s) {
	case 2 * sha256.Size:
		if s != strings.ToLower(s) && s != strings.ToUpper(s) {
			return nil, false
		}
		b, err = hex.DecodeString(s)
	case base64.StdEncoding.EncodedLen(sha256.Size):
		b, err = base64.StdEncoding.Strict().DecodeString(s)
	case base64.RawStdEncoding.EncodedLen(sha256.Size):
		b, err = base64.RawStdEncoding.Strict().DecodeString(s)
	default:
		return nil, false
	}
	return b, err == nil
}

// decodeBase64 reads the payload in standard or URL-safe base64, padded or not: the doc
// shows padded standard base64 and decodes it with atob, but the payload is signed
// verbatim, so accepting another spelling cannot let anyone alter it.
func decodeBase64(s string) ([]byte, error) {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.DecodeString(s)
}
