package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"tally/postbacks"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// GamePush's achievement ids and reward ids are separate sequences, so achievement 685
// and reward 685 are different things. A rule that names its event pays for that event
// only, once per user, and the other event's rule for the same id is a claim of its
// own: unlocking achievement 685 neither pays reward 685's rule nor uses up its claim.
func TestAchievementRulesForOneEvent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) {
			p.Rules.Achievements = []rewards.AchievementRule{
				{Source: rewards.SourceGamePush, Event: "UnlockPlayerAchievement", ID: "685", Version: "a3", Reward: dec("100")},
				{Source: rewards.SourceGamePush, Event: "GivePlayerReward", ID: "685", Version: "a4", Reward: dec("7")},
			}
		})
		unlock := func(at string) answer {
			payload := strings.NewReplacer(`"event":"GivePlayerReward"`, `"event":"UnlockPlayerAchievement"`,
				`"result":{"__typename":"PlayerReward","countAccepted":0,"countTotal":1,"rewardId":685}`, `"result":{"achievementId":685}`,
				`"time":"2024-04-26T11:34:23.415923998Z"`, `"time":"`+at+`"`).Replace(gpJSON)
			return e.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(payload, gpSecret))
		}
		if a := unlock("2024-04-26T11:00:00Z"); a.Code != 200 {
			t.Fatalf("unlock: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "100")
		if a := e.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(gpJSON, gpSecret)); a.Code != 200 {
			t.Fatalf("reward: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "107")
		// Unlocked again (another delivery, another dedupe key): paid once.
		if a := unlock("2024-04-27T11:00:00Z"); a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("unlock again: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "107")
		e.checkInvariants()
	})
}

// Naming the event of a rule that already paid renames its claim; a user paid under the
// old name is not paid again, by a redelivery of the same event (a new dedupe key) or
// by the other event of the same id.
func TestAchievementRuleNamingItsEventDoesNotPayAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d) // arcade: {gamepush, id 685, 100}, any event
		if a := e.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(gpJSON, gpSecret)); a.Code != 200 {
			t.Fatalf("reward: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "100")
		typed := e.withProperty(func(p *appProperty) {
			p.Rules.Achievements = []rewards.AchievementRule{
				{Source: rewards.SourceGamePush, Event: "UnlockPlayerAchievement", ID: "685", Version: "a3", Reward: dec("100")},
				{Source: rewards.SourceGamePush, Event: "GivePlayerReward", ID: "685", Version: "a4", Reward: dec("100")},
			}
		})
		for _, payload := range []string{
			strings.Replace(gpJSON, `"time":"2024-04-26T11:34:23.415923998Z"`, `"time":"2024-04-27T11:34:23Z"`, 1),
			strings.NewReplacer(`"event":"GivePlayerReward"`, `"event":"UnlockPlayerAchievement"`,
				`"result":{"__typename":"PlayerReward","countAccepted":0,"countTotal":1,"rewardId":685}`, `"result":{"achievementId":685}`).Replace(gpJSON),
		} {
			if a := typed.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(payload, gpSecret)); a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("after naming the events: %d %s", a.Code, a.Raw)
			}
		}
		typed.wantBalance("arcade", "1820283", apiKey, "0", "100")
		// A user never paid before is paid once per event.
		other := strings.Replace(gpJSON, `"id":1820283`, `"id":7`, 1)
		if a := typed.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(other, gpSecret)); a.Code != 200 {
			t.Fatalf("another player: %d %s", a.Code, a.Raw)
		}
		typed.wantBalance("arcade", "7", apiKey, "0", "100")
		typed.checkInvariants()
	})
}

// The other way: a rule that stops naming its event does not pay again a user paid
// under the named event's claim.
func TestAchievementRuleNoLongerNamingItsEventDoesNotPayAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) {
			p.Rules.Achievements = []rewards.AchievementRule{
				{Source: rewards.SourceGamePush, Event: "GivePlayerReward", ID: "685", Version: "a4", Reward: dec("100")},
			}
		})
		if a := e.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(gpJSON, gpSecret)); a.Code != 200 {
			t.Fatalf("reward: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "100")
		untyped := e.withProperty(func(p *appProperty) {
			p.Rules.Achievements = []rewards.AchievementRule{{Source: rewards.SourceGamePush, ID: "685", Version: "a5", Reward: dec("100")}}
		})
		again := strings.Replace(gpJSON, `"time":"2024-04-26T11:34:23.415923998Z"`, `"time":"2024-04-28T11:34:23Z"`, 1)
		if a := untyped.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(again, gpSecret)); a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("redelivery: %d %s", a.Code, a.Raw)
		}
		untyped.wantBalance("arcade", "1820283", apiKey, "0", "100")
	})
}

// A GamePush test request (player.test, sent to a webhook with "Dev" checked) is
// recorded and applied, earns nothing and says so on its event, and takes no claim: the
// same player's real reward is paid in full afterwards. Before, a test request paid.
func TestGamePushTestPlayerEarnsNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d) // arcade: {gamepush, id 685, 100}
		test := strings.Replace(gpJSON, `"test":false`, `"test":true`, 1)
		a := e.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(test, gpSecret))
		if a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("test reward: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "0")
		ev := e.event(a.Body["event_id"])
		if ev.Code != 200 || ev.Body["status"] != "applied" || !strings.Contains(fmt.Sprint(ev.Body["reason"]), `test event "GivePlayerReward" earns nothing`) {
			t.Fatalf("the test event: %d %s", ev.Code, ev.Raw)
		}
		if a := e.do("POST", "/v1/hooks/arcade/gamepush", gamepushBody(gpJSON, gpSecret)); a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("real reward: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "1820283", apiKey, "0", "100")
		e.checkInvariants()
	})
}

// A Gamezop score without gamePlayId, redelivered with a new timestamp (a new dedupe
// key), is one play: a `per: play` target pays it once. Before, the play was the dedupe
// key, and each redelivery paid again.
func TestGamezopScoreWithoutPlayIDPaysOncePerPlay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) { p.Rules.Targets[0].Per = rewards.PerPlay })
		for _, ts := range []string{"1732269000", "1732269001"} {
			body := strings.NewReplacer(`"gamePlayId":"p1",`, "", `"timestamp":1732269000`, `"timestamp":`+ts).Replace(scoreBody)
			if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("score at %s: %d %s", ts, a.Code, a.Raw)
			}
		}
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
		e.checkInvariants()
	})
}

// One captured GamePush record re-posted with its signature spelled another way (upper
// hex, padded or raw base64: the signature is not itself signed) is a duplicate of the
// first, on any day. Before, each spelling was a new event, and a `per: day` target paid
// it again on each later day.
func TestGamePushRespelledSignatureIsADuplicate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) {
			p.Rules.Targets = append(p.Rules.Targets, rewards.ScoreTarget{ID: "gp-daily", Version: "t9", Game: "lb-1",
				MinScore: dec("10"), Direction: rewards.Higher, Reward: dec("7"), Per: rewards.PerDay})
		})
		payload := base64.StdEncoding.EncodeToString([]byte(`{"event":"PlayerPublishRecord","player":{"id":42},` +
			`"result":{"leaderboardTag":"lb-1","record":{"score":50}},"time":"2026-11-22T09:59:00Z"}`))
		digest := sha256.Sum256([]byte(payload + "_" + gpSecret))
		lower := hex.EncodeToString(digest[:])
		for i, sig := range []string{lower, strings.ToUpper(lower), base64.StdEncoding.EncodeToString(digest[:]),
			base64.RawStdEncoding.EncodeToString(digest[:])} {
			a := e.do("POST", "/v1/hooks/arcade/gamepush", payload+"."+sig)
			if want := map[bool]string{true: "accepted", false: "duplicate"}[i == 0]; a.Code != 200 || a.Body["status"] != want {
				t.Fatalf("delivery %d (signature %s): %d %s, want %s", i+1, sig, a.Code, a.Raw, want)
			}
			e.clock.Advance(24 * time.Hour)
		}
		e.wantBalance("arcade", "42", apiKey, "0", "7")
	})
}

// A Gamezop score whose ids come as integers (the doc does not give their types) is
// recorded and pays, and the same score with its ids as strings is its duplicate. Before,
// it was a 400, after which Gamezop drops the delivery.
func TestGamezopScoreWithIntegerIDsPays(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		body := `{"gameCode":"NyM_JGWcx","sessionId":9912,"gamePlayId":77,"timestamp":1732269000,"score":512,` +
			`"leaderboardId":"lb1","subId":"sub1","country":"IN","duration":61000,"state":"over"}`
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("score with integer ids: %d %s", a.Code, a.Raw)
		}
		again := strings.NewReplacer(`9912`, `"9912"`, `77`, `"77"`).Replace(body)
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", again, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "duplicate" {
			t.Fatalf("the same score with string ids: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
	})
}

// A Gamezop score whose identifying fields are each within their limits but together
// make a key longer than the inbox's index holds is a 400 naming the heaviest field. On
// Postgres its insert was refused on every retry, so the sender got a 503 for good
// (review helper 230); on SQLite it was recorded. A score beside it is accepted.
func TestGamezopScoreWithAKeyTooLongToIndexIs400(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		// Random characters and digits, which Postgres cannot compress into its index
		// entry (a repeated one it could, and stored the row).
		r := rand.New(rand.NewPCG(1, 2))
		randomID := func() string {
			var b strings.Builder
			for range 200 {
				b.WriteRune(rune(0x20000 + r.IntN(0xA000)))
			}
			return b.String()
		}
		digits := func(n int) string {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte('0' + r.IntN(10))
			}
			return string(b)
		}
		body := `{"gameCode":"NyM_JGWcx","sessionId":"` + randomID() + `","gamePlayId":"` + randomID() + `","timestamp":1732269000.` + digits(245) + `,` +
			`"score":1` + digits(247) + `e600,"subId":"sub1","state":"over"}`
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey); a.Code != 400 || problemField(a) != "score" {
			t.Fatalf("score with a key of kilobytes: %d %s, want 400 naming score", a.Code, a.Raw)
		}
		ok := `{"gameCode":"NyM_JGWcx","sessionId":"` + randomID() + `","gamePlayId":"` + randomID() + `","timestamp":1732269000,` +
			`"score":512,"subId":"sub1","state":"over"}`
		if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", ok, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "accepted" {
			t.Fatalf("score with ids at their limit: %d %s", a.Code, a.Raw)
		}
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
	})
}

// A score target whose `per` changes pays no period twice. Switched to `once`, it does
// not pay a user paid per day or per play before (it paid them again); switched from
// `once` to `day`, it does not pay again on the day it paid, and pays on the next.
func TestScoreTargetPerChangePaysNoPeriodTwice(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		play := func(e *env, n int) {
			t.Helper()
			body := strings.NewReplacer(`"gamePlayId":"p1"`, fmt.Sprintf(`"gamePlayId":"p%d"`, n),
				`"timestamp":1732269000`, fmt.Sprintf(`"timestamp":%d`, 1732269000+n)).Replace(scoreBody)
			if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("play %d: %d %s", n, a.Code, a.Raw)
			}
		}
		per := func(e *env, p rewards.Per) *env {
			return e.withProperty(func(a *appProperty) { a.Rules.Targets[0].Per = p; a.Rules.Targets[0].Version = "t-" + string(p) })
		}
		for _, before := range []rewards.Per{rewards.PerDay, rewards.PerPlay} {
			e := newEnv(t, d)
			play(per(e, before), 1)
			e.wantBalance("arcade", "sub1", apiKey, "0", "50")
			play(per(e, rewards.PerOnce), 2)
			e.clock.Advance(24 * time.Hour)
			play(per(e, rewards.PerOnce), 3)
			e.wantBalance("arcade", "sub1", apiKey, "0", "50")
		}

		e := newEnv(t, d) // per: once
		play(e, 1)
		daily := per(e, rewards.PerDay)
		play(daily, 2)
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
		e.clock.Advance(24 * time.Hour)
		play(daily, 3)
		play(daily, 4)
		e.wantBalance("arcade", "sub1", apiKey, "0", "100")
		e.checkInvariants()
	})
}

// A `per: day` target pays a play on one day only. Gamezop redelivers a report with a new
// timestamp (a new event): one sent at 23:59:50 UTC and redelivered at 00:00:10 paid the
// play on both days. Another play on the second day still pays.
func TestPerDayTargetPaysAPlayOnOneDay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.clock.Set(time.Date(2026, 11, 22, 23, 59, 50, 0, time.UTC))
		e = e.withProperty(func(p *appProperty) { p.Rules.Targets[0].Per = rewards.PerDay })
		send := func(play, ts string) {
			t.Helper()
			body := strings.NewReplacer(`"timestamp":1732269000`, `"timestamp":`+ts, `"gamePlayId":"p1"`, `"gamePlayId":"`+play+`"`).Replace(scoreBody)
			if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("play %s at %s: %d %s", play, ts, a.Code, a.Raw)
			}
		}
		send("p1", "1732319990")
		e.clock.Set(time.Date(2026, 11, 23, 0, 0, 10, 0, time.UTC))
		send("p1", "1732320010") // the redelivery, on the next UTC day
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
		send("p2", "1732320020")
		e.wantBalance("arcade", "sub1", apiKey, "0", "100")
		e.checkInvariants()
	})
}

// A play a `per: day` target turned away because its day was paid by another play is
// not paid on the next day when Gamezop redelivers its report after midnight with a new
// timestamp (a new event): it paid that day's reward (review helper 232). A new play on
// the next day is paid.
func TestPerDayTargetDoesNotPayAPlayTurnedAwayOnTheNextDay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) { p.Rules.Targets[0].Per = rewards.PerDay })
		send := func(play, ts string) {
			t.Helper()
			body := strings.NewReplacer(`"timestamp":1732269000`, `"timestamp":`+ts, `"gamePlayId":"p1"`, `"gamePlayId":"`+play+`"`).Replace(scoreBody)
			if a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey); a.Code != 200 || a.Body["status"] != "accepted" {
				t.Fatalf("play %s at %s: %d %s", play, ts, a.Code, a.Raw)
			}
		}
		e.clock.Set(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		send("p0", "1732269600")
		e.clock.Set(time.Date(2026, 11, 22, 23, 59, 50, 0, time.UTC))
		send("p2", "1732319990") // the day is paid: turned away
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
		e.clock.Set(time.Date(2026, 11, 23, 0, 0, 10, 0, time.UTC))
		send("p2", "1732320010") // the redelivery, on the next UTC day
		e.wantBalance("arcade", "sub1", apiKey, "0", "50")
		send("p3", "1732320020")
		e.wantBalance("arcade", "sub1", apiKey, "0", "100")
		e.checkInvariants()
	})
}

// A GamePush delivery recorded before the dedupe key came to ignore the signature's
// spelling (under its raw body's hash) is still found: sent again after the upgrade, as
// it was or re-spelled, it is a duplicate, and a `per: day` target does not pay it again.
func TestGamePushEventRecordedUnderItsFormerKeyIsADuplicate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d).withProperty(func(p *appProperty) {
			p.Rules.Targets = append(p.Rules.Targets, rewards.ScoreTarget{ID: "gp-daily", Version: "t9", Game: "lb-1",
				MinScore: dec("10"), Direction: rewards.Higher, Reward: dec("7"), Per: rewards.PerDay})
		})
		payload := base64.StdEncoding.EncodeToString([]byte(`{"event":"PlayerPublishRecord","player":{"id":42},` +
			`"result":{"leaderboardTag":"lb-1","record":{"score":50}},"time":"2026-11-22T09:59:00Z"}`))
		digest := sha256.Sum256([]byte(payload + "_" + gpSecret))
		body := payload + "." + base64.StdEncoding.EncodeToString(digest[:])
		// As the version before recorded it: keyed by the hash of the raw body.
		ev, err := postbacks.ParseGamePush(nil, []byte(body), postbacks.Credentials{Secret: gpSecret})
		if err != nil {
			t.Fatal(err)
		}
		raw := sha256.Sum256([]byte(body))
		ev.DedupeKey, ev.FormerKeys = hex.EncodeToString(raw[:]), nil
		rec, err := e.db.Record(context.Background(), []rewards.Inbound{{Property: "arcade", Event: ev, Raw: []byte(body)}})
		if err != nil {
			t.Fatal(err)
		}
		e.drain()
		e.wantBalance("arcade", "42", apiKey, "0", "7")
		for _, again := range []string{body, payload + "." + hex.EncodeToString(digest[:])} {
			e.clock.Advance(24 * time.Hour)
			a := e.do("POST", "/v1/hooks/arcade/gamepush", again)
			if a.Code != 200 || a.Body["status"] != "duplicate" || a.Body["event_id"] != fmt.Sprint(rec[0].EventID) {
				t.Fatalf("%s after the upgrade: %d %s, want a duplicate of event %d", again, a.Code, a.Raw, rec[0].EventID)
			}
		}
		e.wantBalance("arcade", "42", apiKey, "0", "7")
	})
}
