package app_test

import (
	"context"
	"testing"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// An event kept because an earlier parser could not map it (its decoded form has no
// achievement) is decoded again from its raw body on replay and applied, once.
func TestReplayDecodesTheRawBodyAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		ctx := context.Background()
		raw := gamepushBody(gpJSON, gpSecret)
		stale := rewards.Event{Source: rewards.SourceGamePush, Kind: rewards.KindAchievement, Type: "GivePlayerReward",
			DedupeKey: "stale-decode", User: "1820283"} // no Achievement: what an older parser kept
		res, err := e.db.Ingest(ctx, []rewards.Inbound{{Property: "arcade", Event: stale, Raw: []byte(raw),
			Quarantine: "unmapped gamepush GivePlayerReward: result.rewardId: missing"}})
		if err != nil || res[0].Status != rewards.StatusQuarantined {
			t.Fatalf("seed: %+v %v", res, err)
		}
		for i, want := range []replayWant{{seen: 1, applied: 1}, {seen: 0, applied: 0}} {
			rep, err := e.app.Replay(ctx, e.db, rewards.StatusQuarantined, "", nil)
			if err != nil || rep.Seen != want.seen || rep.Applied != want.applied {
				t.Fatalf("replay %d: %+v %v, want %+v", i, rep, err, want)
			}
		}
		b := e.do("GET", "/v1/properties/arcade/users/1820283/balance", "", "Authorization", "Bearer "+apiKey)
		if b.Body["pending"] != "100" {
			t.Fatalf("balance after replay: %s", b.Raw)
		}
		if err := e.db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

type replayWant struct{ seen, applied int }
