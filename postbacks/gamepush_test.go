package postbacks

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tally/rewards"
)

// gpBase is the documented GamePush payload (shortened player) as key/raw-value pairs.
var gpBase = []string{
	"event", `"GivePlayerReward"`,
	"player", `{"id":1820283,"name":"","projectId":4,"test":false,"modifiedAt":"2024-04-26T11:34:23.415923998Z"}`,
	"result", `{"__typename":"PlayerReward","countAccepted":0,"countTotal":1,"rewardId":685}`,
	"time", `"2024-04-26T11:34:23.415923998Z"`,
}

func parseGP(payload []byte) (rewards.Event, error) {
	return parseAuthed(rewards.SourceGamePush, payload)
}

// TestGamePushDocExampleRejected: the doc's literal body carries "realsecretkey" in
// base64 as its signature, 13 bytes and not a SHA-256 digest of anything.
func TestGamePushDocExampleRejected(t *testing.T) {
	body := []byte("eyJ2YWx1ZSI6ICJzb21lIHJlYWwgZGF0YSJ9.cmVhbHNlY3JldGtleQ==")
	for _, secret := range []string{"Be$T_Pr0jeCt", "realsecretkey", "x"} {
		if _, err := ParseGamePush(nil, body, Credentials{Secret: secret}); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("secret %q: err = %v, want ErrUnauthorized", secret, err)
		}
	}
}

func TestGamePushSignature(t *testing.T) {
	sample, err := os.ReadFile("testdata/gamepush/sample.json")
	if err != nil {
		t.Fatal(err)
	}
	// "???" encodes to "Pz8/", so the payload's base64 has '/' and, URL-safe, '_'.
	payload := with(gpBase, "pad", `"???>>>"`)
	std := base64.StdEncoding.EncodeToString(payload)
	if !strings.ContainsAny(std, "+/") {
		t.Fatalf("payload base64 %q has no +/; the URL-safe case would prove nothing", std)
	}
	b64 := func(enc *base64.Encoding) string { return enc.EncodeToString(payload) }
	const secret = "Be$T_Pr0jeCt"
	signed := func(p, enc string) string { return p + "." + gamePushSig(p, secret, enc) }
	sum := sha256.Sum256([]byte(std + "_" + secret))
	lowerHex := hex.EncodeToString(sum[:])
	mixedHex := strings.ToUpper(lowerHex[:1]) + lowerHex[1:]
	if mixedHex == lowerHex {
		mixedHex = lowerHex[:len(lowerHex)-1] + strings.ToUpper(lowerHex[len(lowerHex)-1:])
	}
	tampered := []byte(std)
	tampered[10] ^= 1 // still base64, different payload

	tests := []struct {
		name   string
		body   string
		secret string
		ok     bool
	}{
		{"documented sample, lower hex", string(signGamePush(sample, secret)), secret, true},
		{"lower hex", signed(std, "hex"), secret, true},
		{"upper hex", signed(std, "HEX"), secret, true},
		{"padded base64", signed(std, "b64"), secret, true},
		{"raw base64", signed(std, "rawb64"), secret, true},
		{"unpadded payload", signed(b64(base64.RawStdEncoding), "hex"), secret, true},
		{"URL-safe payload", signed(b64(base64.URLEncoding), "hex"), secret, true},
		{"URL-safe unpadded payload", signed(b64(base64.RawURLEncoding), "hex"), secret, true},

		{"mixed-case hex", std + "." + mixedHex, secret, false},
		{"URL-safe base64 signature", std + "." + base64.URLEncoding.EncodeToString(sum[:]), secret,
			!strings.ContainsAny(base64.StdEncoding.EncodeToString(sum[:]), "+/")},
		{"wrong secret", signed(std, "hex"), "Be$T_Pr0jeCt!", false},
		{"secret is a prefix", signed(std, "hex"), "Be$T_Pr0jeC", false},
		{"empty secret", std + "." + gamePushSig(std, "", "hex"), "", false},
		{"tampered payload", string(tampered) + "." + lowerHex, secret, false},
		{"tampered signature", std + "." + flipLastHex(lowerHex), secret, false},
		{"truncated signature", std + "." + lowerHex[:62], secret, false},
		{"signature of another payload", std + "." + gamePushSig(b64(base64.RawStdEncoding), secret, "hex"), secret, false},
		{"signature over payload without secret", std + "." + hex.EncodeToString(sha256Sum(std)), secret, false},
		{"secret before payload", std + "." + hex.EncodeToString(sha256Sum(secret+"_"+std)), secret, false},
		{"trailing newline", signed(std, "hex") + "\n", secret, false},
		{"trailing CRLF", signed(std, "hex") + "\r\n", secret, false},
		{"leading space", " " + signed(std, "hex"), secret, false},
		{"no dot", std + lowerHex, secret, false},
		{"two dots", std + ".." + lowerHex, secret, false},
		{"extra part", signed(std, "hex") + ".x", secret, false},
		{"empty body", "", secret, false},
		{"JSON body", string(payload), secret, false},
		{"doc example", "eyJ2YWx1ZSI6ICJzb21lIHJlYWwgZGF0YSJ9.cmVhbHNlY3JldGtleQ==", secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseGamePush(nil, []byte(tt.body), Credentials{BearerToken: "x", APIKey: "y", Secret: tt.secret})
			if !tt.ok {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("err = %v, want ErrUnauthorized", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			checkValid(t, rewards.SourceGamePush, ev)
			// The body with its signature in lowercase hex (the raw body itself when so
			// signed); the raw body's own hash, the key before, is among FormerKeys.
			p, _, _ := strings.Cut(tt.body, ".")
			if want := hex.EncodeToString(sha256Sum(p + "." + gamePushSig(p, secret, "hex"))); ev.DedupeKey != want {
				t.Errorf("DedupeKey = %s, want SHA-256 of the body signed in lowercase hex %s", ev.DedupeKey, want)
			}
			if raw := hex.EncodeToString(sha256Sum(tt.body)); raw != ev.DedupeKey && !slices.Contains(ev.FormerKeys, raw) {
				t.Errorf("the raw body's hash %s is neither the key nor a former key %v", raw, ev.FormerKeys)
			}
			if ev.Kind != rewards.KindAchievement || ev.Achievement.ID != "685" || ev.User != "1820283" {
				t.Errorf("event = %+v %+v", ev, ev.Achievement)
			}
		})
	}
}

// flipLastHex changes the last hex digit, keeping the case.
func flipLastHex(s string) string {
	last := byte('0')
	if s[len(s)-1] == '0' {
		last = '1'
	}
	return s[:len(s)-1] + string(last)
}

func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// TestGamePushSignedButMalformed: once the signature holds, problems are 400s.
func TestGamePushSignedButMalformed(t *testing.T) {
	const secret = "Be$T_Pr0jeCt"
	sign := func(b64 string) []byte { return []byte(b64 + "." + gamePushSig(b64, secret, "hex")) }
	tests := []struct {
		name string
		body []byte
	}{
		{"empty payload", sign("")},
		{"payload not base64", sign("!!!!")},
		{"payload with mixed alphabets", sign("ab+_")},
		{"payload impossible length", sign("abcde")},
		{"payload not JSON", signGamePush([]byte("hello"), secret)},
		{"payload JSON array", signGamePush([]byte(`[1]`), secret)},
		{"payload trailing data", signGamePush(append(with(gpBase), "x"...), secret)},
		{"payload duplicate nested key", signGamePush([]byte(`{"event":"X","player":{"id":1,"id":2}}`), secret)},
		{"payload invalid UTF-8", signGamePush([]byte("{\"event\":\"X\xff\",\"player\":{\"id\":1}}"), secret)},
		{"payload escaped NUL", signGamePush([]byte(`{"event":"X","player":{"id":"a\u0000"}}`), secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGamePush(nil, tt.body, Credentials{Secret: secret})
			wantFields(t, err, "body")
		})
	}
}

func TestGamePushMapping(t *testing.T) {
	record := func(result string) []byte {
		return with(gpBase, "event", `"PlayerPublishRecord"`, "result", result)
	}
	unlock := func(result string) []byte {
		return with(gpBase, "event", `"UnlockPlayerAchievement"`, "result", result)
	}
	reward := func(result string) []byte { return with(gpBase, "result", result) }
	score := func(game, value string) func(*testing.T, rewards.Event) {
		return func(t *testing.T, ev rewards.Event) {
			if ev.Kind != rewards.KindScore || ev.Score.Game != game || ev.Score.Value.String() != value {
				t.Errorf("event %+v score %+v, want game %q value %s", ev, ev.Score, game, value)
			}
		}
	}
	achievement := func(id string) func(*testing.T, rewards.Event) {
		return func(t *testing.T, ev rewards.Event) {
			if ev.Kind != rewards.KindAchievement || ev.Achievement.ID != id {
				t.Errorf("event %+v achievement %+v, want %q", ev, ev.Achievement, id)
			}
		}
	}
	other := func(t *testing.T, ev rewards.Event) {
		if ev.Kind != rewards.KindOther {
			t.Errorf("Kind = %q, want other", ev.Kind)
		}
	}
	tests := []struct {
		name    string
		body    []byte
		fields  []string // a *ValidationError naming these fields (400)
		missing []string // an *UnmappedError naming these fields (kept quarantined)
		check   func(*testing.T, rewards.Event)
	}{
		// PlayerPublishRecord (assumed shapes).
		{name: "record leaderboardTag", body: record(`{"leaderboardTag":"weekly","tag":"t","id":1,"record":{"score":120}}`), check: score("weekly", "120")},
		{name: "record tag", body: record(`{"tag":"t","leaderboardId":7,"id":1,"record":{"score":120}}`), check: score("t", "120")},
		{name: "record leaderboardId", body: record(`{"leaderboardId":7,"leaderboard":{"id":8},"id":1,"score":5}`), check: score("7", "5")},
		{name: "record leaderboard.id", body: record(`{"leaderboard":{"id":8},"id":1,"score":5}`), check: score("8", "5")},
		{name: "record id alone is no game", body: record(`{"id":"lb-1","score":"5.5"}`), missing: []string{"result.leaderboardTag"}},
		{name: "record empty tag falls through", body: record(`{"leaderboardTag":"","tag":"t","score":5}`), check: score("t", "5")},
		{name: "record null tag falls through", body: record(`{"leaderboardTag":null,"tag":"t","score":5}`), check: score("t", "5")},
		{name: "record leaderboard not object falls through", body: record(`{"leaderboard":"x","leaderboardId":3,"score":5}`), check: score("3", "5")},
		{name: "record.score wins over score", body: record(`{"tag":"t","record":{"score":9},"score":5}`), check: score("t", "9")},
		{name: "record without score uses score", body: record(`{"tag":"t","record":{"x":1},"score":5}`), check: score("t", "5")},
		{name: "record zero score", body: record(`{"tag":"t","score":0}`), check: score("t", "0")},
		{name: "record present but invalid tag", body: record(`{"leaderboardTag":5.5,"tag":"t","score":5}`), fields: []string{"result.leaderboardTag"}},
		{name: "record no game", body: record(`{"score":5}`), missing: []string{"result.leaderboardTag"}},
		{name: "record no score", body: record(`{"tag":"t"}`), missing: []string{"result.record.score"}},
		{name: "record negative score", body: record(`{"tag":"t","record":{"score":-1}}`), fields: []string{"result.record.score"}},
		// Beyond the scores Tally ranks: kept (quarantined), since GamePush drops a refused one.
		{name: "record 19 places", body: record(`{"tag":"t","score":"0.0000000000000000001"}`), missing: []string{"result.score"}},
		{name: "record 1e+21", body: record(`{"tag":"t","record":{"score":1e+21}}`), missing: []string{"result.record.score"}},
		{name: "record not a number", body: record(`{"tag":"t","record":{"score":"many"}}`), fields: []string{"result.record.score"}},
		{name: "record no result", body: with(gpBase, "event", `"PlayerPublishRecord"`, "result", "-"), missing: []string{"result"}},
		{name: "record result not object", body: record(`[1]`), fields: []string{"result"}},

		// UnlockPlayerAchievement (assumed shapes).
		{name: "unlock achievementId", body: unlock(`{"achievementId":12,"achievement":{"id":13},"id":14}`), check: achievement("12")},
		{name: "unlock achievement.id", body: unlock(`{"achievement":{"id":13,"tag":"first"},"id":14}`), check: achievement("13")},
		{name: "unlock achievement.tag", body: unlock(`{"achievement":{"tag":"first"},"id":14}`), check: achievement("first")},
		{name: "unlock id alone is no achievement", body: unlock(`{"id":14}`), missing: []string{"result.achievementId"}},
		{name: "unlock nothing", body: unlock(`{"unlocked":true}`), missing: []string{"result.achievementId"}},
		{name: "unlock id too long", body: unlock(`{"achievementId":"` + strings.Repeat("a", 201) + `"}`), fields: []string{"result.achievementId"}},

		// GivePlayerReward (documented: rewardId).
		{name: "reward rewardId", body: reward(`{"rewardId":685}`), check: achievement("685")},
		{name: "reward rewardId string", body: reward(`{"rewardId":"685"}`), check: achievement("685")},
		{name: "reward reward.id", body: reward(`{"reward":{"id":686}}`), check: achievement("686")},
		{name: "reward rewardId fraction", body: reward(`{"rewardId":685.5}`), fields: []string{"result.rewardId"}},
		{name: "reward nothing", body: reward(`{}`), missing: []string{"result.rewardId"}},

		// Other events are recorded and earn nothing; they need an event, not a user.
		{name: "purchase is other", body: with(gpBase, "event", `"PurchasePlayerPurchase"`, "result", `{"productId":1}`), check: other},
		{name: "other without result", body: with(gpBase, "event", `"SyncPlayer"`, "result", "-"), check: other},
		{name: "event is case-sensitive", body: with(gpBase, "event", `"giveplayerreward"`), check: other},
		{name: "event missing", body: with(gpBase, "event", "-"), fields: []string{"event"}},
		{name: "event empty", body: with(gpBase, "event", `""`), fields: []string{"event"}},
		{name: "event number", body: with(gpBase, "event", `1`), fields: []string{"event"}},

		// player.id is the user.
		{name: "player id string", body: with(gpBase, "player", `{"id":"p-1"}`), check: wantUser("p-1")},
		{name: "player id exponent", body: with(gpBase, "player", `{"id":1.820283e6}`), check: wantUser("1820283")},
		{name: "player id 100", body: with(gpBase, "player", `{"id":"`+strings.Repeat("9", 100)+`"}`), check: wantUser(strings.Repeat("9", 100))},
		{name: "player id 100 digits number", body: with(gpBase, "player", `{"id":`+strings.Repeat("9", 100)+`}`), check: wantUser(strings.Repeat("9", 100))},
		{name: "player id 101", body: with(gpBase, "player", `{"id":"`+strings.Repeat("9", 101)+`"}`), fields: []string{"player.id"}},
		{name: "player id 101 digits number", body: with(gpBase, "player", `{"id":`+strings.Repeat("9", 101)+`}`), fields: []string{"player.id"}},
		{name: "player id fraction", body: with(gpBase, "player", `{"id":1.5}`), fields: []string{"player.id"}},
		{name: "player id empty", body: with(gpBase, "player", `{"id":""}`), fields: []string{"player.id"}},
		{name: "player id control", body: with(gpBase, "player", `{"id":"a\u001fb"}`), fields: []string{"player.id"}},
		{name: "player id bool", body: with(gpBase, "player", `{"id":true}`), fields: []string{"player.id"}},
		// player.test: a test player earns nothing; anything but a boolean is kept
		// quarantined, neither paid nor refused on a guess.
		{name: "player test false", body: with(gpBase), check: wantTest(false)},
		{name: "player test absent", body: with(gpBase, "player", `{"id":1}`), check: wantTest(false)},
		{name: "player test null", body: with(gpBase, "player", `{"id":1,"test":null}`), check: wantTest(false)},
		{name: "player test true", body: with(gpBase, "player", `{"id":1,"test":true}`), check: wantTest(true)},
		{name: "player test on a record", body: with(gpBase, "event", `"PlayerPublishRecord"`, "player", `{"id":1,"test":true}`,
			"result", `{"tag":"t","score":5}`), check: wantTest(true)},
		{name: "player test string", body: with(gpBase, "player", `{"id":1,"test":"true"}`), missing: []string{"player.test"}},
		{name: "player test number", body: with(gpBase, "player", `{"id":1,"test":0}`), missing: []string{"player.test"}},
		{name: "player missing", body: with(gpBase, "player", "-"), fields: []string{"player"}},
		{name: "player not object", body: with(gpBase, "player", `1820283`), fields: []string{"player"}},

		// time.
		{name: "time absent", body: with(gpBase, "time", "-"), check: func(t *testing.T, ev rewards.Event) {
			if ev.OccurredAt != nil {
				t.Errorf("OccurredAt = %v", ev.OccurredAt)
			}
		}},
		{name: "time with offset becomes UTC", body: with(gpBase, "time", `"2024-04-26T14:34:23+03:00"`), check: wantOccurred(time.Date(2024, 4, 26, 11, 34, 23, 0, time.UTC))},

		{name: "every bad field reported", body: with(gpBase, "event", `""`, "time", `"x"`),
			fields: []string{"event"}},
		{name: "every bad field of an earning event reported", body: with(gpBase, "player", `{"id":""}`, "result", `{"rewardId":1.5}`, "time", `"x"`),
			fields: []string{"player.id", "result.rewardId"}},
		{name: "every bad field reported in result", body: record(`{"leaderboardTag":[],"score":-1}`),
			fields: []string{"result.leaderboardTag", "result.score"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := parseGP(tt.body)
			if tt.fields != nil {
				wantFields(t, err, tt.fields...)
				return
			}
			if tt.missing != nil {
				wantUnmapped(t, err, tt.missing...)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkValid(t, rewards.SourceGamePush, ev)
			var event string
			if obj, err := decodeObject(tt.body); err == nil {
				event, _ = obj["event"].(string)
			}
			if ev.Type != event {
				t.Errorf("Type = %q, want the event name %q", ev.Type, event)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// One signed record re-sent with its signature spelled four ways is one event (one dedupe
// key, the lowercase hex spelling's raw body) and one play: the signature is not signed,
// so anyone holding one delivery could otherwise make three more events of it, which a
// `per: day` target paid on each later day.
func TestGamePushKeyAndPlayAreNotTheSignatureSpelling(t *testing.T) {
	const secret = "Be$T_Pr0jeCt"
	p := base64.StdEncoding.EncodeToString(with(gpBase, "event", `"PlayerPublishRecord"`, "result", `{"tag":"lb","record":{"score":10}}`))
	keys, plays := map[string]bool{}, map[string]bool{}
	for _, enc := range []string{"hex", "HEX", "b64", "rawb64"} {
		ev, err := ParseGamePush(nil, []byte(p+"."+gamePushSig(p, secret, enc)), Credentials{Secret: secret})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		keys[ev.DedupeKey] = true
		plays[ev.Score.PlayID] = true
	}
	if !keys[hex.EncodeToString(sha256Sum(p+"."+gamePushSig(p, secret, "hex")))] || len(keys) != 1 || len(plays) != 1 {
		t.Fatalf("dedupe keys %v and %d plays; want the lowercase hex body's and 1", keys, len(plays))
	}
	other := base64.StdEncoding.EncodeToString(with(gpBase, "event", `"PlayerPublishRecord"`, "result", `{"tag":"lb","record":{"score":11}}`))
	ev, err := ParseGamePush(nil, []byte(other+"."+gamePushSig(other, secret, "hex")), Credentials{Secret: secret})
	if err != nil || plays[ev.Score.PlayID] {
		t.Fatalf("a different record shares the play: %v %+v", err, ev.Score)
	}
}

func wantTest(want bool) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Test != want {
			t.Errorf("Test = %v, want %v", ev.Test, want)
		}
	}
}
