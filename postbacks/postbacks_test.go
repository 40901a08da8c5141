package postbacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.expected.json from the parsers' output")

// testCreds authenticate every test request; the GamePush secret is the one in its doc.
var testCreds = Credentials{BearerToken: "spp-token", APIKey: "scores-key", Secret: "Be$T_Pr0jeCt"}

// signGamePush builds `base64payload.signature` as GamePush does, with the payload in
// padded standard base64 and the signature in lowercase hex.
func signGamePush(payload []byte, secret string) []byte {
	b64 := base64.StdEncoding.EncodeToString(payload)
	return []byte(b64 + "." + gamePushSig(b64, secret, "hex"))
}

// gamePushSig encodes SHA-256(b64 + "_" + secret) as hex, HEX, b64 or rawb64.
func gamePushSig(b64, secret, enc string) string {
	sum := sha256.Sum256([]byte(b64 + "_" + secret))
	switch enc {
	case "hex":
		return hex.EncodeToString(sum[:])
	case "HEX":
		return strings.ToUpper(hex.EncodeToString(sum[:]))
	case "b64":
		return base64.StdEncoding.EncodeToString(sum[:])
	case "rawb64":
		return base64.RawStdEncoding.EncodeToString(sum[:])
	}
	panic("unknown encoding " + enc)
}

// trackScoreSig is the X-TrackScore-Signature value for body.
func trackScoreSig(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// authed returns the headers and body that authenticate payload for src with testCreds.
func authed(src rewards.Source, payload []byte) (http.Header, []byte) {
	h := http.Header{}
	switch src {
	case rewards.SourceGamezopSPP:
		h.Set("Authorization", "Bearer "+testCreds.BearerToken)
	case rewards.SourceGamezopScores:
		h.Set("api-key", testCreds.APIKey)
	case rewards.SourceGamePush:
		return h, signGamePush(payload, testCreds.Secret)
	case rewards.SourceTrackScore:
		h.Set("X-TrackScore-Signature", trackScoreSig(payload, testCreds.Secret))
	}
	return h, payload
}

// parseAuthed parses payload for src as a correctly authenticated request.
func parseAuthed(src rewards.Source, payload []byte) (rewards.Event, error) {
	h, body := authed(src, payload)
	return Parse(src, h, body, testCreds)
}

// TestGolden parses every documented payload under testdata/ and compares the result with
// the expected event stored beside it.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[rewards.Source]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, ".expected.json") {
			continue
		}
		src := rewards.Source(filepath.Base(filepath.Dir(f)))
		seen[src] = true
		t.Run(f, func(t *testing.T) {
			if !src.Valid() {
				t.Fatalf("directory %q is not a source", src)
			}
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseAuthed(src, payload)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkValid(t, src, got)
			expFile := strings.TrimSuffix(f, ".json") + ".expected.json"
			if *update {
				out, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(expFile, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(expFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it, then review it)", err)
			}
			var want rewards.Event
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("%s: %v", expFile, err)
			}
			assertEvent(t, got, want)
		})
	}
	for _, src := range rewards.AllSources() {
		if !seen[src] {
			t.Errorf("no documented payload under testdata/%s", src)
		}
	}
}

// TestParseUnknownSource pins that Parse does not guess.
func TestParseUnknownSource(t *testing.T) {
	_, err := Parse("gamezop", nil, []byte(`{}`), testCreds)
	var ve *ValidationError
	if err == nil || errors.Is(err, ErrUnauthorized) || errors.As(err, &ve) {
		t.Fatalf("err = %v, want a plain unknown-source error", err)
	}
}

func TestCredentialsMasked(t *testing.T) {
	for _, s := range []string{testCreds.String(), testCreds.GoString()} {
		if strings.Contains(s, "spp-token") || strings.Contains(s, "scores-key") || strings.Contains(s, "Pr0jeCt") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := error(&ValidationError{Errors: []FieldError{{"user-id", "required"}, {"country", "bad"}}})
	if got, want := err.Error(), "postbacks: invalid postback: user-id: required; country: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// assertEvent compares events field by field, decimals by value.
func assertEvent(t *testing.T, got, want rewards.Event) {
	t.Helper()
	g, w := got, want
	g.OccurredAt, w.OccurredAt = nil, nil
	g.Session, w.Session = nil, nil
	g.Score, w.Score = nil, nil
	g.Achievement, w.Achievement = nil, nil
	g.FormerKeys, w.FormerKeys = nil, nil // GamePush's, checked by TestGamePushSignature
	if !reflect.DeepEqual(g, w) {
		t.Errorf("event = %+v, want %+v", g, w)
	}
	switch {
	case (got.OccurredAt == nil) != (want.OccurredAt == nil):
		t.Errorf("OccurredAt = %v, want %v", got.OccurredAt, want.OccurredAt)
	case got.OccurredAt != nil && !got.OccurredAt.Equal(*want.OccurredAt):
		t.Errorf("OccurredAt = %v, want %v", got.OccurredAt, want.OccurredAt)
	}
	switch {
	case (got.Session == nil) != (want.Session == nil):
		t.Errorf("Session = %+v, want %+v", got.Session, want.Session)
	case got.Session != nil:
		gs, ws := *got.Session, *want.Session
		if !gs.RevenueUSD.Equal(ws.RevenueUSD) {
			t.Errorf("RevenueUSD = %s, want %s", gs.RevenueUSD, ws.RevenueUSD)
		}
		gs.RevenueUSD, ws.RevenueUSD = decimal.Zero, decimal.Zero
		if gs != ws {
			t.Errorf("Session = %+v, want %+v", gs, ws)
		}
	}
	switch {
	case (got.Score == nil) != (want.Score == nil):
		t.Errorf("Score = %+v, want %+v", got.Score, want.Score)
	case got.Score != nil:
		gs, ws := *got.Score, *want.Score
		if !gs.Value.Equal(ws.Value) {
			t.Errorf("Score.Value = %s, want %s", gs.Value, ws.Value)
		}
		gs.Value, ws.Value = decimal.Zero, decimal.Zero
		if gs != ws {
			t.Errorf("Score = %+v, want %+v", gs, ws)
		}
	}
	if (got.Achievement == nil) != (want.Achievement == nil) ||
		(got.Achievement != nil && *got.Achievement != *want.Achievement) {
		t.Errorf("Achievement = %+v, want %+v", got.Achievement, want.Achievement)
	}
}

// checkValid asserts what any accepted event must satisfy, restated independently of the
// parsers' own helpers so that a bug there shows up here.
func checkValid(t *testing.T, src rewards.Source, ev rewards.Event) {
	t.Helper()
	if ev.Source != src {
		t.Errorf("Source = %q, want %q", ev.Source, src)
	}
	if ev.DedupeKey == "" {
		t.Error("empty DedupeKey")
	}
	if len(ev.DedupeKey) > rewards.MaxDedupeKey {
		t.Errorf("DedupeKey of %d bytes, over the %d the inbox's index holds", len(ev.DedupeKey), rewards.MaxDedupeKey)
	}
	if ev.Type == "" {
		t.Error("empty Type")
	}
	// Only events that earn nothing (GamePush and TrackScore "other") may lack a user.
	if ev.User != "" || ev.Kind != rewards.KindOther || (src != rewards.SourceTrackScore && src != rewards.SourceGamePush) {
		checkID(t, "User", ev.User, 100)
	}
	nonNeg := func(name string, d decimal.Decimal) {
		if d.Sign() < 0 || rewards.DecimalPlaces(d) > 18 || rewards.CheckAmount(d) != nil {
			t.Errorf("%s = %s: negative or out of range", name, d)
		}
	}
	switch ev.Kind {
	case rewards.KindSession:
		s := ev.Session
		if s == nil || ev.Score != nil || ev.Achievement != nil {
			t.Fatalf("session event with wrong payloads: %+v", ev)
		}
		nonNeg("RevenueUSD", s.RevenueUSD)
		if s.RevenueUSD.GreaterThan(decimal.NewFromInt(1000)) {
			t.Errorf("RevenueUSD = %s > 1000", s.RevenueUSD)
		}
		if s.DurationSeconds < 0 || s.AdsViewed < 0 {
			t.Errorf("negative duration or ads: %+v", s)
		}
		if s.SessionID != ev.DedupeKey {
			t.Errorf("SessionID %q != DedupeKey %q", s.SessionID, ev.DedupeKey)
		}
		checkCountry(t, s.Country)
	case rewards.KindScore:
		s := ev.Score
		if s == nil || ev.Session != nil || ev.Achievement != nil {
			t.Fatalf("score event with wrong payloads: %+v", ev)
		}
		nonNeg("Score.Value", s.Value)
		checkID(t, "Score.Game", s.Game, 200)
		if s.Duration < 0 {
			t.Errorf("negative Score.Duration %d", s.Duration)
		}
		checkCountry(t, s.Country)
	case rewards.KindAchievement:
		if ev.Achievement == nil || ev.Session != nil || ev.Score != nil {
			t.Fatalf("achievement event with wrong payloads: %+v", ev)
		}
		checkID(t, "Achievement.ID", ev.Achievement.ID, 200)
	case rewards.KindOther:
		if ev.Session != nil || ev.Score != nil || ev.Achievement != nil {
			t.Fatalf("other event with payloads: %+v", ev)
		}
	default:
		t.Errorf("Kind = %q", ev.Kind)
	}
	if ev.OccurredAt != nil && ev.OccurredAt.Location() != time.UTC {
		t.Errorf("OccurredAt %v not UTC", ev.OccurredAt)
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Errorf("event does not marshal: %v", err)
	}
}

func checkID(t *testing.T, name, s string, max int) {
	t.Helper()
	if !utf8.ValidString(s) || s == "" || utf8.RuneCountInString(s) > max {
		t.Errorf("%s = %q: empty, too long or invalid UTF-8", name, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Errorf("%s = %q contains a control or format character", name, s)
		}
	}
}

func checkCountry(t *testing.T, c string) {
	t.Helper()
	if c != "" && (len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z') {
		t.Errorf("country %q is not upper-case alpha-2", c)
	}
}

// wantFields asserts err is a *ValidationError naming exactly fields, in order.
func wantFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError on %v", err, fields)
	}
	got := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		got[i] = fe.Field
		if fe.Message == "" {
			t.Errorf("empty message for %q", fe.Field)
		}
	}
	if strings.Join(got, ",") != strings.Join(fields, ",") {
		t.Errorf("bad fields = %v (%v), want %v", got, ve.Errors, fields)
	}
}

// wantUnmapped checks err is an *UnmappedError naming fields whose event can still be
// recorded: it has its source, type and dedupe key.
func wantUnmapped(t *testing.T, err error, fields ...string) {
	t.Helper()
	var ue *UnmappedError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want an *UnmappedError on %v", err, fields)
	}
	got := make([]string, len(ue.Missing))
	for i, m := range ue.Missing {
		got[i] = m.Field
	}
	if strings.Join(got, ",") != strings.Join(fields, ",") {
		t.Errorf("missing fields = %v, want %v", got, fields)
	}
	if ue.Event.DedupeKey == "" || ue.Event.Source == "" || ue.Event.Type == "" {
		t.Errorf("unmapped event cannot be recorded: %+v", ue.Event)
	}
}

// object builds a JSON object from key and raw-JSON-value pairs, in order. It lets tests
// write exactly the bytes under test (number spellings, escapes, duplicates).
func object(pairs ...string) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(pairs[i])
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(pairs[i+1])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// with returns base's pairs with overrides applied: a key in both gets the override's
// value, the value "-" deletes the key, and new keys are appended.
func with(base []string, overrides ...string) []byte {
	out := append([]string(nil), base...)
	for i := 0; i+1 < len(overrides); i += 2 {
		k, v := overrides[i], overrides[i+1]
		found := false
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == k {
				found = true
				if v == "-" {
					out = append(out[:j], out[j+2:]...)
				} else {
					out[j+1] = v
				}
				break
			}
		}
		if !found && v != "-" {
			out = append(out, k, v)
		}
	}
	return object(out...)
}

// q quotes s as a JSON string.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Decode reads a stored body without its credentials (it was authenticated on receipt)
// and yields the event Parse gave then.
func TestDecodeStoredBody(t *testing.T) {
	const secret = "Be$T_Pr0jeCt"
	p := base64.StdEncoding.EncodeToString(with(gpBase))
	body := []byte(p + "." + gamePushSig(p, secret, "hex"))
	parsed, err := ParseGamePush(nil, body, Credentials{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := Decode(rewards.SourceGamePush, body)
	if err != nil || decoded.DedupeKey != parsed.DedupeKey || decoded.User != parsed.User || decoded.Achievement.ID != parsed.Achievement.ID {
		t.Fatalf("Decode = %+v, %v; Parse gave %+v", decoded, err, parsed)
	}
	// Decode is not a way around authentication for requests: Parse still checks.
	if _, err := Parse(rewards.SourceGamePush, nil, body, Credentials{Secret: "other"}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Parse with the wrong secret = %v", err)
	}
	if _, err := Parse(rewards.SourceTrackScore, nil, with(tsBase), Credentials{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Parse without credentials = %v", err)
	}
}
