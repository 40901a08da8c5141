package postbacks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// decodeObjectCases are the strict decoder's cases (also FuzzScanObject's seeds).
var decodeObjectCases = []struct {
	name string
	body string
	msg  string // substring of the "body" message; "" = accepted
}{
	{"object", `{"a":1}`, ""},
	{"surrounding whitespace", " \t\r\n{\"a\":1} \n\r\t", ""},
	{"trailing newline", "{\"a\":1}\n", ""},
	{"empty object", `{}`, ""},
	{"unknown nested fields", `{"a":{"b":[1,{"c":null}],"d":true}}`, ""},
	{"same key in different objects", `{"a":{"b":1},"c":{"b":1},"b":2}`, ""},
	{"same key in array elements", `{"a":[{"b":1},{"b":2}]}`, ""},
	{"keys differing in case", `{"a":1,"A":2}`, ""},
	{"valid surrogate pair", `{"a":"\ud83d\ude00"}`, ""},
	{"escaped backslash then u0000 text", `{"a":"\\u0000"}`, ""},
	{"escaped backslash then surrogate text", `{"a":"\\ud800"}`, ""},
	{"huge number literal is kept, not parsed", `{"a":1e999999999}`, ""},
	{"raw multibyte", `{"a":"é😀"}`, ""},

	{"empty body", ``, "empty"},
	{"whitespace only", "  \n", "empty"},
	{"trailing garbage", `{"a":1} x`, "trailing data"},
	{"second value", `{"a":1}{}`, "trailing data"},
	{"trailing brace", `{"a":1}}`, "trailing data"},
	{"trailing NUL byte", "{\"a\":1}\x00", "trailing data"},
	{"array", `[{"a":1}]`, "JSON object"},
	{"string", `"a"`, "JSON object"},
	{"number", `1`, "JSON object"},
	{"null", `null`, "JSON object"},
	{"unterminated", `{"a":1`, "not valid JSON"},
	{"missing value", `{"a":}`, "not valid JSON"},
	{"single quotes", `{'a':1}`, "not valid JSON"},
	{"trailing comma", `{"a":1,}`, "not valid JSON"},
	{"NaN", `{"a":NaN}`, "not valid JSON"},
	{"raw NUL in string", "{\"a\":\"x\x00\"}", "not valid JSON"},
	{"raw newline in string", "{\"a\":\"x\ny\"}", "not valid JSON"},
	{"duplicate top-level key", `{"a":1,"b":2,"a":1}`, `duplicate key "a"`},
	{"duplicate key via escape", `{"user-id":"x","user\u002did":"y"}`, `duplicate key "user-id"`},
	{"duplicate nested key", `{"a":{"b":1,"b":1}}`, `duplicate key "a.b"`},
	{"duplicate deeply nested key", `{"a":{"b":{"c":{"d":1,"d":null}}}}`, `duplicate key "a.b.c.d"`},
	{"duplicate key in array element", `{"a":[{"b":1},{"b":1,"b":2}]}`, `duplicate key "a[1].b"`},
	{"duplicate null key", `{"a":null,"a":null}`, `duplicate key "a"`},
	{"invalid UTF-8 in value", "{\"a\":\"\xff\"}", "UTF-8"},
	{"invalid UTF-8 in key", "{\"\xc3\":1}", "UTF-8"},
	{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", "UTF-8"},
	{"UTF-8 encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", "UTF-8"},
	{"invalid UTF-8 after the value", "{\"a\":1} \xff", "UTF-8"},
	{"escaped NUL in value", `{"a":"x\u0000"}`, "NUL"},
	{"escaped NUL in key", `{"a\u0000":1}`, "NUL"},
	{"escaped NUL in unknown nested field", `{"a":{"b":["\u0000"]}}`, "NUL"},
	{"escaped NUL at string start", `{"a":"\u0000x"}`, "NUL"},
	{"high surrogate then escaped NUL", `{"a":"\ud800\u0000"}`, "NUL"},
	// A lone surrogate escape is U+FFFD, as in encoding/json (TestLoneSurrogatesDecode):
	// the strings Tally reads refuse it (textProblem), the others are kept as sent.
	{"lone high surrogate", `{"a":"\ud800"}`, ""},
	{"lone high surrogate at end of string", `{"a":"x\uD83D"}`, ""},
	{"high surrogate then non-surrogate escape", `{"a":"\ud800\u0041"}`, ""},
	{"high surrogate then high surrogate", `{"a":"\ud800\ud800"}`, ""},
	{"high surrogates then a pair", `{"a":"\ud800\ud83d\ude00"}`, ""},
	{"lone low surrogate", `{"a":"\udc00"}`, ""},
	{"two low surrogates", `{"a":"\udc00\udc00"}`, ""},
	{"reversed pair", `{"a":"\ude00\ud83d"}`, ""},
}

func TestDecodeObjectStrict(t *testing.T) {
	for _, tt := range decodeObjectCases {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := decodeObject([]byte(tt.body))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("decodeObject: %v", err)
				}
				if obj == nil {
					t.Fatal("nil object")
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "body" {
				t.Fatalf("err = %v, want one error on body", err)
			}
			if !strings.Contains(ve.Errors[0].Message, tt.msg) {
				t.Errorf("message %q does not mention %q", ve.Errors[0].Message, tt.msg)
			}
		})
	}
}

// TestDecodeObjectKeepsLiterals pins that numbers are never rounded through float64.
func TestDecodeObjectKeepsLiterals(t *testing.T) {
	obj, err := decodeObject([]byte(`{"a":0.1000000000000000055511151231257827,"b":12345678901234567890123,"c":"\ud83d\ude00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := obj["a"]; got != json.Number("0.1000000000000000055511151231257827") {
		t.Errorf("a = %#v", got)
	}
	if got := obj["b"]; got != json.Number("12345678901234567890123") {
		t.Errorf("b = %#v", got)
	}
	if got := obj["c"]; got != "😀" {
		t.Errorf("c = %#v", got)
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		lit  string
		want string // canonical decimal; "" = refused
	}{
		{"0", "0"},
		{"-0", "0"},
		{"0.5", "0.5"},
		{"12.50", "12.5"},
		{"1e3", "1000"},
		{"1E+3", "1000"},
		{"1.5e-3", "0.0015"},
		{"1e-1000", "0." + strings.Repeat("0", 999) + "1"},
		{"123456789012345678901234567890", "123456789012345678901234567890"},
		{"1e1001", ""},
		{"1e-1001", ""},
		{"1e999999999", ""},
		{"1e00000000000000000003", "1000"},
		{"+1", ""},
		{".5", ""},
		{"5.", ""},
		{"01", ""},
		{"-", ""},
		{"", ""},
		{" 1", ""},
		{"1 ", ""},
		{"1e", ""},
		{"1e+", ""},
		{"0x10", ""},
		{"NaN", ""},
		{"Infinity", ""},
		{"\u22121", ""}, // Unicode minus, which decimal.NewFromString alone accepts
		{"1_000", ""},
		{"1,5", ""},
		{strings.Repeat("1", 257), ""},
	}
	for _, tt := range tests {
		d, ok := parseNumber(tt.lit)
		switch {
		case tt.want == "" && ok:
			t.Errorf("parseNumber(%q) = %s, want refusal", tt.lit, d)
		case tt.want != "" && (!ok || d.String() != tt.want):
			t.Errorf("parseNumber(%q) = %s, %v; want %s", tt.lit, d, ok, tt.want)
		}
	}
}

// A lone surrogate escape decodes to U+FFFD on both paths, as encoding/json decodes it,
// and the escape after it is read on its own.
func TestLoneSurrogatesDecode(t *testing.T) {
	for body, want := range map[string]string{
		`{"a":"\ud800"}`:             "\uFFFD",
		`{"a":"x\ud800\u0041"}`:      "x\uFFFDA",
		`{"a":"\ud800\ud83d\ude00"}`: "\uFFFD😀",
		`{"a":"\ude00\ud83d"}`:       "\uFFFD\uFFFD",
		`{"a":"\ud83d\ude00"}`:       "😀",
	} {
		var ref map[string]string
		if err := json.Unmarshal([]byte(body), &ref); err != nil || ref["a"] != want {
			t.Fatalf("encoding/json decodes %s as %q (%v), not %q", body, ref["a"], err, want)
		}
		fast, ok := scanObject([]byte(body))
		if !ok || fast["a"] != want {
			t.Errorf("scanObject(%s) = %q, %v; want %q", body, fast["a"], ok, want)
		}
		slow, err := decodeObjectSlowly([]byte(body))
		if err != nil || slow["a"] != want {
			t.Errorf("decodeObjectSlowly(%s) = %q, %v; want %q", body, slow["a"], err, want)
		}
	}
}
