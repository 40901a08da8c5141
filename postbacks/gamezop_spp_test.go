package postbacks

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// sppBase is the documented SPP sample as key/raw-value pairs.
var sppBase = []string{
	"user-id", `"sub1"`,
	"session-id", `"b48a8368-a369-49a4-b427-2d5891ef3763"`,
	"country", `"IN"`,
	"count-of-ads-viewed", `1`,
	"your-estimated-revenue", `"0.000012"`,
	"session-duration", `163`,
	"property-id", `"1234"`,
}

func parseSPP(body []byte) (rewards.Event, error) {
	return parseAuthed(rewards.SourceGamezopSPP, body)
}

func TestGamezopSPPFields(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		fields []string                        // bad fields expected; nil = accepted
		check  func(*testing.T, rewards.Event) // for accepted bodies
	}{
		{name: "documented sample", body: with(sppBase), check: func(t *testing.T, ev rewards.Event) {
			if ev.User != "sub1" || ev.DedupeKey != "b48a8368-a369-49a4-b427-2d5891ef3763" || ev.Type != "spp" ||
				ev.Kind != rewards.KindSession || ev.OccurredAt != nil {
				t.Errorf("event = %+v", ev)
			}
		}},
		{name: "unknown extra field tolerated", body: with(sppBase, "new-field", `{"x":[1,2]}`)},

		// user-id: 1–100 characters, counted in runes.
		{name: "user-id 100 ASCII", body: with(sppBase, "user-id", q(strings.Repeat("a", 100))), check: wantUser(strings.Repeat("a", 100))},
		{name: "user-id 101 ASCII", body: with(sppBase, "user-id", q(strings.Repeat("a", 101))), fields: []string{"user-id"}},
		{name: "user-id 100 two-byte runes", body: with(sppBase, "user-id", q(strings.Repeat("é", 100))), check: wantUser(strings.Repeat("é", 100))},
		{name: "user-id 100 four-byte runes", body: with(sppBase, "user-id", q(strings.Repeat("😀", 100))), check: wantUser(strings.Repeat("😀", 100))},
		{name: "user-id 100 runes as escapes", body: with(sppBase, "user-id", `"`+strings.Repeat(`\u00e9`, 100)+`"`), check: wantUser(strings.Repeat("é", 100))},
		{name: "user-id 101 two-byte runes", body: with(sppBase, "user-id", q(strings.Repeat("é", 101))), fields: []string{"user-id"}},
		{name: "user-id 1 character", body: with(sppBase, "user-id", `"x"`), check: wantUser("x")},
		{name: "user-id empty", body: with(sppBase, "user-id", `""`), fields: []string{"user-id"}},
		{name: "user-id missing", body: with(sppBase, "user-id", "-"), fields: []string{"user-id"}},
		{name: "user-id null", body: with(sppBase, "user-id", `null`), fields: []string{"user-id"}},
		{name: "user-id integer", body: with(sppBase, "user-id", `123`), check: wantUser("123")},
		{name: "user-id fraction", body: with(sppBase, "user-id", `1.5`), fields: []string{"user-id"}},
		{name: "user-id boolean", body: with(sppBase, "user-id", `false`), fields: []string{"user-id"}},
		{name: "user-id wrong case key", body: with(sppBase, "user-id", "-", "User-Id", `"sub1"`), fields: []string{"user-id"}},
		{name: "user-id with newline", body: with(sppBase, "user-id", `"a\nb"`), fields: []string{"user-id"}},
		{name: "user-id with BEL", body: with(sppBase, "user-id", `"a\u0007b"`), fields: []string{"user-id"}},
		{name: "user-id with DEL", body: with(sppBase, "user-id", `"a\u007fb"`), fields: []string{"user-id"}},
		{name: "user-id with C1 control NEL", body: with(sppBase, "user-id", `"a\u0085b"`), fields: []string{"user-id"}},
		{name: "user-id with space and symbols", body: with(sppBase, "user-id", `"a b/c=d"`), check: wantUser("a b/c=d")},

		// session-id: 1–200 characters; it is the dedupe key.
		{name: "session-id 200", body: with(sppBase, "session-id", q(strings.Repeat("s", 200))), check: func(t *testing.T, ev rewards.Event) {
			if ev.DedupeKey != strings.Repeat("s", 200) || ev.Session.SessionID != ev.DedupeKey {
				t.Errorf("dedupe key %q", ev.DedupeKey)
			}
		}},
		{name: "session-id 201", body: with(sppBase, "session-id", q(strings.Repeat("s", 201))), fields: []string{"session-id"}},
		{name: "session-id empty", body: with(sppBase, "session-id", `""`), fields: []string{"session-id"}},
		{name: "session-id missing", body: with(sppBase, "session-id", "-"), fields: []string{"session-id"}},
		{name: "session-id integer", body: with(sppBase, "session-id", `42`), check: func(t *testing.T, ev rewards.Event) {
			if ev.DedupeKey != "42" || ev.Session.SessionID != "42" {
				t.Errorf("dedupe key %q, session %q", ev.DedupeKey, ev.Session.SessionID)
			}
		}},
		{name: "session-id array", body: with(sppBase, "session-id", `[42]`), fields: []string{"session-id"}},
		{name: "session-id control", body: with(sppBase, "session-id", `"a\tb"`), fields: []string{"session-id"}},

		// your-estimated-revenue: non-negative, ≤18 places, ≤1000, string or number.
		{name: "revenue string", body: with(sppBase, "your-estimated-revenue", `"0.000012"`), check: wantRevenue("0.000012")},
		{name: "revenue number", body: with(sppBase, "your-estimated-revenue", `0.000012`), check: wantRevenue("0.000012")},
		{name: "revenue exponent", body: with(sppBase, "your-estimated-revenue", `1.2e-5`), check: wantRevenue("0.000012")},
		{name: "revenue exponent string", body: with(sppBase, "your-estimated-revenue", `"1.2E-5"`), check: wantRevenue("0.000012")},
		{name: "revenue not rounded through float64", body: with(sppBase, "your-estimated-revenue", `0.123456789012345678`), check: wantRevenue("0.123456789012345678")},
		{name: "revenue zero", body: with(sppBase, "your-estimated-revenue", `0`), check: wantRevenue("0")},
		{name: "revenue zero string", body: with(sppBase, "your-estimated-revenue", `"0.0"`), check: wantRevenue("0")},
		{name: "revenue negative zero", body: with(sppBase, "your-estimated-revenue", `-0`), check: wantRevenue("0")},
		{name: "revenue 18 places", body: with(sppBase, "your-estimated-revenue", `"0.000000000000000001"`), check: wantRevenue("0.000000000000000001")},
		{name: "revenue 19 places", body: with(sppBase, "your-estimated-revenue", `"0.0000000000000000001"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue 19 places number", body: with(sppBase, "your-estimated-revenue", `0.0000000000000000001`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue 19 places by exponent", body: with(sppBase, "your-estimated-revenue", `1e-19`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue trailing zeros beyond 18 places", body: with(sppBase, "your-estimated-revenue", `"0.5000000000000000000000"`), check: wantRevenue("0.5")},
		{name: "revenue exactly 1000", body: with(sppBase, "your-estimated-revenue", `"1000"`), check: wantRevenue("1000")},
		{name: "revenue exactly 1000 number", body: with(sppBase, "your-estimated-revenue", `1000.000000000000000000`), check: wantRevenue("1000")},
		{name: "revenue 1000 + 1e-18", body: with(sppBase, "your-estimated-revenue", `"1000.000000000000000001"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue 1000 + 1e-18 number", body: with(sppBase, "your-estimated-revenue", `1000.000000000000000001`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue 1e3", body: with(sppBase, "your-estimated-revenue", `1e3`), check: wantRevenue("1000")},
		{name: "revenue huge", body: with(sppBase, "your-estimated-revenue", `1e30`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue negative", body: with(sppBase, "your-estimated-revenue", `"-0.000001"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue negative number", body: with(sppBase, "your-estimated-revenue", `-1`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue missing", body: with(sppBase, "your-estimated-revenue", "-"), fields: []string{"your-estimated-revenue"}},
		{name: "revenue null", body: with(sppBase, "your-estimated-revenue", `null`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue empty string", body: with(sppBase, "your-estimated-revenue", `""`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue words", body: with(sppBase, "your-estimated-revenue", `"twelve"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue plus sign", body: with(sppBase, "your-estimated-revenue", `"+1"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue leading dot", body: with(sppBase, "your-estimated-revenue", `".5"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue spaces", body: with(sppBase, "your-estimated-revenue", `" 0.5"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue currency", body: with(sppBase, "your-estimated-revenue", `"$0.5"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue NaN", body: with(sppBase, "your-estimated-revenue", `"NaN"`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue bool", body: with(sppBase, "your-estimated-revenue", `true`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue object", body: with(sppBase, "your-estimated-revenue", `{"usd":"1"}`), fields: []string{"your-estimated-revenue"}},
		{name: "revenue giant exponent", body: with(sppBase, "your-estimated-revenue", `1e-999999999`), fields: []string{"your-estimated-revenue"}},

		// session-duration: required non-negative integer.
		{name: "duration zero", body: with(sppBase, "session-duration", `0`), check: func(t *testing.T, ev rewards.Event) {
			if ev.Session.DurationSeconds != 0 {
				t.Errorf("duration %d", ev.Session.DurationSeconds)
			}
		}},
		{name: "duration integral decimal", body: with(sppBase, "session-duration", `163.0`), check: wantDuration(163)},
		{name: "duration exponent", body: with(sppBase, "session-duration", `1.63e2`), check: wantDuration(163)},
		{name: "duration max int64", body: with(sppBase, "session-duration", `9223372036854775807`), check: wantDuration(9223372036854775807)},
		{name: "duration over int64", body: with(sppBase, "session-duration", `9223372036854775808`), fields: []string{"session-duration"}},
		{name: "duration negative", body: with(sppBase, "session-duration", `-1`), fields: []string{"session-duration"}},
		{name: "duration fraction", body: with(sppBase, "session-duration", `1.5`), fields: []string{"session-duration"}},
		{name: "duration string", body: with(sppBase, "session-duration", `"163"`), check: wantDuration(163)},
		{name: "duration string not a number", body: with(sppBase, "session-duration", `"163s"`), fields: []string{"session-duration"}},
		{name: "duration string with spaces", body: with(sppBase, "session-duration", `" 163"`), fields: []string{"session-duration"}},
		{name: "duration string negative", body: with(sppBase, "session-duration", `"-1"`), fields: []string{"session-duration"}},
		{name: "duration bool", body: with(sppBase, "session-duration", `true`), fields: []string{"session-duration"}},
		{name: "duration missing", body: with(sppBase, "session-duration", "-"), fields: []string{"session-duration"}},

		// country: optional alpha-2, upper-cased; "" is absent.
		{name: "country lower case", body: with(sppBase, "country", `"in"`), check: wantSPPCountry("IN")},
		{name: "country mixed case", body: with(sppBase, "country", `"uS"`), check: wantSPPCountry("US")},
		{name: "country empty", body: with(sppBase, "country", `""`), check: wantSPPCountry("")},
		{name: "country null", body: with(sppBase, "country", `null`), check: wantSPPCountry("")},
		{name: "country missing", body: with(sppBase, "country", "-"), check: wantSPPCountry("")},
		{name: "country alpha-3", body: with(sppBase, "country", `"IND"`), fields: []string{"country"}},
		{name: "country one letter", body: with(sppBase, "country", `"I"`), fields: []string{"country"}},
		{name: "country digit", body: with(sppBase, "country", `"I1"`), fields: []string{"country"}},
		{name: "country non-ASCII letter", body: with(sppBase, "country", `"ÎN"`), fields: []string{"country"}},
		{name: "country subdivision", body: with(sppBase, "country", `"IN-MH"`), fields: []string{"country"}},
		{name: "country name", body: with(sppBase, "country", `"India"`), fields: []string{"country"}},
		{name: "country padded", body: with(sppBase, "country", `" IN"`), fields: []string{"country"}},
		{name: "country number", body: with(sppBase, "country", `91`), fields: []string{"country"}},

		// count-of-ads-viewed: informational, 0 when absent or not understood.
		{name: "ads missing", body: with(sppBase, "count-of-ads-viewed", "-"), check: wantAds(0)},
		{name: "ads null", body: with(sppBase, "count-of-ads-viewed", `null`), check: wantAds(0)},
		{name: "ads zero", body: with(sppBase, "count-of-ads-viewed", `0`), check: wantAds(0)},
		{name: "ads many", body: with(sppBase, "count-of-ads-viewed", `12`), check: wantAds(12)},
		{name: "ads string", body: with(sppBase, "count-of-ads-viewed", `"1"`), check: wantAds(1)},

		// property-id: string or integer, carried for app to check.
		{name: "property-id string", body: with(sppBase, "property-id", `"1234"`), check: wantProperty("1234")},
		{name: "property-id number", body: with(sppBase, "property-id", `1234`), check: wantProperty("1234")},
		{name: "property-id missing", body: with(sppBase, "property-id", "-"), check: wantProperty("")},

		{name: "every bad field reported", body: with(sppBase,
			"user-id", `""`,
			"session-id", `7.5`,
			"country", `"XXX"`,
			"count-of-ads-viewed", `-2`,
			"your-estimated-revenue", `"-1"`,
			"session-duration", `-1`,
			"property-id", `[]`,
		), fields: []string{"user-id", "session-id", "your-estimated-revenue", "session-duration", "country"}},
		{name: "empty object", body: []byte(`{}`), fields: []string{"user-id", "session-id", "your-estimated-revenue", "session-duration"}},

		// Strict decoding through the parser.
		{name: "duplicate key", body: []byte(strings.Replace(string(with(sppBase)), `{`, `{"user-id":"other",`, 1)), fields: []string{"body"}},
		{name: "trailing bytes", body: append(with(sppBase), " {}"...), fields: []string{"body"}},
		{name: "trailing whitespace", body: append(with(sppBase), " \n"...), check: wantUser("sub1")},
		{name: "invalid UTF-8", body: with(sppBase, "user-id", "\"sub\xff\""), fields: []string{"body"}},
		{name: "escaped NUL in user id", body: with(sppBase, "user-id", `"sub\u0000"`), fields: []string{"body"}},
		{name: "escaped NUL in unknown field", body: with(sppBase, "extra", `"\u0000"`), fields: []string{"body"}},
		{name: "not JSON", body: []byte(`user-id=sub1`), fields: []string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := parseSPP(tt.body)
			if tt.fields != nil {
				wantFields(t, err, tt.fields...)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkValid(t, rewards.SourceGamezopSPP, ev)
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// TestFieldMessages pins that each rule reports its own reason, not just some failure.
func TestFieldMessages(t *testing.T) {
	tests := []struct {
		name        string
		src         rewards.Source
		body        []byte
		field, want string
	}{
		{"19 places", rewards.SourceGamezopSPP, with(sppBase, "your-estimated-revenue", `"0.0000000000000000001"`), "your-estimated-revenue", "at most 18 decimal places"},
		{"over 1000", rewards.SourceGamezopSPP, with(sppBase, "your-estimated-revenue", `"1000.000000000000000001"`), "your-estimated-revenue", "at most 1000 USD"},
		{"negative", rewards.SourceGamezopSPP, with(sppBase, "your-estimated-revenue", `-1`), "your-estimated-revenue", "must not be negative"},
		{"not a number", rewards.SourceGamezopSPP, with(sppBase, "your-estimated-revenue", `"1,5"`), "your-estimated-revenue", "decimal"},
		{"missing", rewards.SourceGamezopSPP, with(sppBase, "user-id", "-"), "user-id", "required"},
		{"too long", rewards.SourceGamezopSPP, with(sppBase, "user-id", q(strings.Repeat("a", 101))), "user-id", "at most 100 characters"},
		{"empty", rewards.SourceGamezopSPP, with(sppBase, "user-id", `""`), "user-id", "empty"},
		{"control", rewards.SourceGamezopSPP, with(sppBase, "user-id", `"a\tb"`), "user-id", "control"},
		{"not an id", rewards.SourceGamezopSPP, with(sppBase, "user-id", `1.5`), "user-id", "a string or an integer"},
		{"bad integer", rewards.SourceGamezopSPP, with(sppBase, "session-duration", `-1`), "session-duration", "non-negative integer"},
		{"bad country", rewards.SourceGamezopSPP, with(sppBase, "country", `"IND"`), "country", "alpha-2"},
		{"bad state", rewards.SourceGamezopScores, with(scoreBase, "state", `"won"`), "state", "one of loaded, start, playing, over, levelup"},
		{"duplicate key", rewards.SourceGamezopSPP, []byte(`{"a":{"b":1,"b":2}}`), "body", `duplicate key "a.b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAuthed(tt.src, tt.body)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v", err)
			}
			for _, fe := range ve.Errors {
				if fe.Field == tt.field {
					if !strings.Contains(fe.Message, tt.want) {
						t.Errorf("%s: message %q, want it to mention %q", fe.Field, fe.Message, tt.want)
					}
					return
				}
			}
			t.Errorf("no error on %s in %v", tt.field, ve.Errors)
		})
	}
}

func TestGamezopSPPAuth(t *testing.T) {
	body := with(sppBase)
	tests := []struct {
		name   string
		token  string   // configured
		header []string // Authorization values sent
		ok     bool
	}{
		{"correct", "spp-token", []string{"Bearer spp-token"}, true},
		{"scheme lower case", "spp-token", []string{"bearer spp-token"}, true},
		{"scheme upper case", "spp-token", []string{"BEARER spp-token"}, true},
		{"missing header", "spp-token", nil, false},
		{"empty header", "spp-token", []string{""}, false},
		{"wrong token", "spp-token", []string{"Bearer spp-tokeN"}, false},
		{"token prefix", "spp-token", []string{"Bearer spp-toke"}, false},
		{"token with suffix", "spp-token", []string{"Bearer spp-token2"}, false},
		{"token with trailing space", "spp-token", []string{"Bearer spp-token "}, false},
		{"two spaces", "spp-token", []string{"Bearer  spp-token"}, true}, // 1*SP, RFC 9110 §11.4
		{"three spaces, previous token", "spp-token", []string{"Bearer   old-token"}, true},
		{"only spaces after the scheme", "spp-token", []string{"Bearer    "}, false},
		{"tab", "spp-token", []string{"Bearer\tspp-token"}, false},
		{"no space", "spp-token", []string{"Bearerspp-token"}, false},
		{"bare token", "spp-token", []string{"spp-token"}, false},
		{"basic scheme", "spp-token", []string{"Basic spp-token"}, false},
		{"empty bearer", "spp-token", []string{"Bearer "}, false},
		{"repeated header", "spp-token", []string{"Bearer spp-token", "Bearer spp-token"}, false},
		{"no auth configured, none sent", "", nil, true},
		{"no auth configured, some sent", "", []string{"Bearer whatever"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.header {
				h.Add("Authorization", v)
			}
			c := Credentials{BearerToken: tt.token, APIKey: "unused", Secret: "unused"}
			if tt.token != "" {
				c.Previous = []string{"old-token"}
			}
			_, err := ParseGamezopSPP(h, body, c)
			if tt.ok && err != nil {
				t.Errorf("err = %v, want accepted", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("err = %v, want ErrUnauthorized", err)
			}
			// Authentication comes first: a bad body never turns a 401 into a 400.
			_, err = ParseGamezopSPP(h, []byte(`{"user-id":`), c)
			var ve *ValidationError
			if tt.ok != errors.As(err, &ve) || !tt.ok != errors.Is(err, ErrUnauthorized) {
				t.Errorf("malformed body: err = %v, want 401 iff unauthenticated", err)
			}
		})
	}
}

func wantUser(u string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.User != u {
			t.Errorf("User = %q, want %q", ev.User, u)
		}
	}
}

func wantRevenue(s string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if want := decimal.RequireFromString(s); !ev.Session.RevenueUSD.Equal(want) {
			t.Errorf("RevenueUSD = %s, want %s", ev.Session.RevenueUSD, want)
		}
	}
}

func wantDuration(d int64) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Session.DurationSeconds != d {
			t.Errorf("DurationSeconds = %d, want %d", ev.Session.DurationSeconds, d)
		}
	}
}

func wantSPPCountry(c string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Session.Country != c {
			t.Errorf("Country = %q, want %q", ev.Session.Country, c)
		}
	}
}

func wantAds(n int64) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Session.AdsViewed != n {
			t.Errorf("AdsViewed = %d, want %d", ev.Session.AdsViewed, n)
		}
	}
}

func wantProperty(p string) func(*testing.T, rewards.Event) {
	return func(t *testing.T, ev rewards.Event) {
		if ev.Session.PropertyID != p {
			t.Errorf("PropertyID = %q, want %q", ev.Session.PropertyID, p)
		}
	}
}
