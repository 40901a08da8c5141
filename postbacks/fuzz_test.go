package postbacks

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"tally/rewards"
)

// Each fuzz target asserts: no panic; an accepted body yields a valid event
// (checkValid); a refused one yields ErrUnauthorized or a *ValidationError naming at least
// one field, and an authentic one Tally cannot map an *UnmappedError (recorded, kept
// quarantined) — never another error, which app would turn into a 500 and a retry loop.
// The seeds run under plain `go test`; explore with e.g.
// `go test ./postbacks/ -run '^$' -fuzz FuzzGamePush -fuzztime 1m`.

func seedFile(f *testing.F, path string) []byte {
	f.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// checkRefusal asserts err is one of the two errors app maps to 4xx, or, for an
// authenticated request, an *UnmappedError: an authentic event app records and keeps
// quarantined, which must carry its source, its dedupe key and the fields it missed.
func checkRefusal(t *testing.T, err error, authOK bool) {
	t.Helper()
	var (
		ve *ValidationError
		um *UnmappedError
	)
	switch {
	case authOK && errors.As(err, &um):
		if um.Event.Source == "" || um.Event.DedupeKey == "" || len(um.Missing) == 0 {
			t.Fatalf("unmapped event without its source, dedupe key or missing fields: %+v", um)
		}
		for _, fe := range um.Missing {
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("empty field or message: %+v", fe)
			}
		}
	case errors.As(err, &ve):
		if len(ve.Errors) == 0 {
			t.Fatal("ValidationError without errors")
		}
		for _, fe := range ve.Errors {
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("empty field or message: %+v", fe)
			}
		}
	case errors.Is(err, ErrUnauthorized):
		if authOK {
			t.Fatalf("ErrUnauthorized for an authenticated request")
		}
	default:
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}

func FuzzGamezopSPP(f *testing.F) {
	f.Add(seedFile(f, "testdata/gamezop_spp/sample.json"))
	f.Add(with(sppBase, "your-estimated-revenue", `1000.000000000000000001`))
	f.Add(with(sppBase, "your-estimated-revenue", `1e-19`, "country", `"in"`, "property-id", `1234`))
	f.Add(with(sppBase, "user-id", `"\ud83d\ude00"`, "count-of-ads-viewed", `-0`))
	f.Add([]byte(`{"user-id":"a","user-id":"b"}`))
	f.Add([]byte("{\"user-id\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseGamezopSPP(nil, body, Credentials{})
		if err != nil {
			checkRefusal(t, err, true)
			return
		}
		checkValid(t, rewards.SourceGamezopSPP, ev)
	})
}

func FuzzGamezopScore(f *testing.F) {
	f.Add(seedFile(f, "testdata/gamezop_scores/sample.json"))
	f.Add(seedFile(f, "testdata/gamezop_scores/loaded.json"))
	f.Add(with(scoreBase, "timestamp", `99999999999`, "country", `"in-mh"`))
	f.Add(with(scoreBase, "timestamp", `253402300799999`, "score", `1e-18`))
	f.Add(with(scoreBase, "gamePlayId", "-", "duration", `0.0`))
	f.Add(with(scoreBase, "sessionId", q(strings.Repeat("<", 200)), "gamePlayId", q(strings.Repeat("\u0001", 200))))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseGamezopScore(nil, body, Credentials{})
		if err != nil {
			checkRefusal(t, err, true)
			return
		}
		checkValid(t, rewards.SourceGamezopScores, ev)
		var key []string
		if err := json.Unmarshal([]byte(ev.DedupeKey), &key); err != nil || len(key) != 5 {
			t.Fatalf("dedupe key %q is not a 5-string JSON array", ev.DedupeKey)
		}
	})
}

// FuzzGamePush signs the fuzzed payload, so the fuzzer explores decoding and mapping
// rather than dying at the signature; it also feeds the raw input as an unsigned body.
func FuzzGamePush(f *testing.F) {
	f.Add(seedFile(f, "testdata/gamepush/sample.json"))
	f.Add(with(gpBase, "event", `"PlayerPublishRecord"`, "result", `{"leaderboard":{"id":8},"record":{"score":"1.5"}}`))
	f.Add(with(gpBase, "event", `"UnlockPlayerAchievement"`, "result", `{"achievement":{"tag":"first"}}`))
	f.Add(with(gpBase, "event", `"SyncPlayer"`, "result", "-", "time", "-"))
	f.Add([]byte("eyJ2YWx1ZSI6ICJzb21lIHJlYWwgZGF0YSJ9.cmVhbHNlY3JldGtleQ=="))
	f.Fuzz(func(t *testing.T, payload []byte) {
		body := signGamePush(payload, testCreds.Secret)
		ev, err := ParseGamePush(nil, body, testCreds)
		if err != nil {
			checkRefusal(t, err, true)
		} else {
			checkValid(t, rewards.SourceGamePush, ev)
			if want := hex.EncodeToString(sha256Sum(string(body))); ev.DedupeKey != want {
				t.Fatalf("DedupeKey = %s, want %s", ev.DedupeKey, want)
			}
		}
		ev, err = ParseGamePush(nil, payload, testCreds)
		if err != nil {
			checkRefusal(t, err, false)
		} else {
			checkValid(t, rewards.SourceGamePush, ev)
		}
	})
}

// FuzzTrackScore signs the fuzzed body with the test secret, for the same reason.
func FuzzTrackScore(f *testing.F) {
	f.Add(seedFile(f, "testdata/trackscore/sample.json"))
	f.Add(with(tsBase, "type", `"achievement.unlocked"`, "data", `{"participant_id":5,"achievement":{"id":"a"}}`))
	f.Add(with(tsBase, "type", `"milestone.reached"`, "data", `{"participant_id":"p","milestone_id":"m"}`))
	f.Add(with(tsBase, "type", `"team.created"`, "data", "-", "created", `"2025-06-09T10:30:00.123+05:30"`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{}
		h.Set("X-TrackScore-Signature", trackScoreSig(body, testCreds.Secret))
		ev, err := ParseTrackScore(h, body, testCreds)
		if err != nil {
			checkRefusal(t, err, true)
			return
		}
		checkValid(t, rewards.SourceTrackScore, ev)
	})
}

// FuzzDecodeObject checks the strict decoder against encoding/json: it may refuse more,
// never less.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":null}]}`, `{"a":"\ud83d\ude00"}`, `{"a":"\\u0000"}`, `{"a":1,"a":2}`, "{} x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, err := decodeObject(body)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "body" {
				t.Fatalf("err = %v, want one error on body", err)
			}
			return
		}
		if obj == nil || !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("accepted %q", body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted %q that encoding/json refuses as an object: %v", body, err)
		}
		if len(m) != len(obj) {
			t.Fatalf("accepted %q with %d keys, encoding/json sees %d", body, len(obj), len(m))
		}
	})
}
