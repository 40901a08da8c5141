package app

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// jsonTexts are strings whose JSON spelling has a rule of its own: every ASCII byte, the
// HTML-sensitive ones, short escapes, invalid UTF-8 (alone, cut short, surrogates,
// overlong), the line and paragraph separators, and runes of every UTF-8 length.
func jsonTexts() []string {
	out := []string{"", "user-000000001", `a"b\c`, "<script>&amp;</script>", "\b\f\n\r\t\x00\x1f\x7f",
		"\xff", "a\xffb", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf", "\u2028x\u2029", "\u2027\u202a",
		"é€𝄞", "\ufffd", "ünïcödé-ü", "\x80\x80\x80"}
	var ascii []byte
	for c := range 0x80 {
		ascii = append(ascii, byte(c))
	}
	out = append(out, string(ascii))
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			switch r.IntN(4) {
			case 0:
				b[i] = byte(r.IntN(0x80))
			case 1:
				b[i] = byte(0x80 + r.IntN(0x80))
			default:
				b[i] = "az<>&\"\\\n"[r.IntN(8)]
			}
		}
		out = append(out, string(b))
	}
	return out
}

// encoderText is what an Encoder with HTML escaping off writes for s, without its newline.
func encoderText(t testing.TB, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONStringIsEncodingJSON(t *testing.T) {
	for _, s := range jsonTexts() {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, json.Marshal = %s", s, got, want)
		}
		if got, want := appendJSONText([]byte("x"), s, false), append([]byte("x"), encoderText(t, s)...); !bytes.Equal(got, want) {
			t.Errorf("appendJSONText(%q, html off) = %s, Encoder = %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonTexts()[:20] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, json.Marshal = %s", s, got, want)
		}
		if got := appendJSONText(nil, s, false); !bytes.Equal(got, encoderText(t, s)) {
			t.Errorf("appendJSONText(%q, html off) = %s", s, got)
		}
	})
}

// TestHandWrittenJSON holds the hand-written balance, transactions page, feed page and
// postback answer to the bytes json.Marshal writes for the same values, so a field added
// to one of the structs and not to its appendJSON (or spelled differently) fails here.
func TestHandWrittenJSON(t *testing.T) {
	at := time.Date(2026, 12, 3, 8, 9, 10, 123456000, time.UTC)
	whole := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	texts := jsonTexts()
	text := func(i int) string { return texts[i%len(texts)] }
	var balances []balanceJSON
	var txns []txnJSON
	for i := range 200 {
		b := balanceJSON{Property: text(i), User: text(i + 1), Currency: text(i + 2), Scale: int32(i%40 - 20),
			Available: "12.5", Pending: text(i + 3), Redeemed: "0", LifetimeEarned: "-1.000000000000000001"}
		x := txnJSON{ID: "9223372036854775807", Kind: text(i + 4), Rule: text(i + 5), Amount: "-0.5",
			Bucket: "pending", CreatedAt: whole, Ref: text(i + 6)}
		if i%2 == 0 {
			b.UpdatedAt, x.AvailableAt, x.CreatedAt = &at, &whole, at
		}
		if i%3 == 0 {
			b.NextAvailableAt = &whole
			x.RuleVersion = text(i + 7)
		}
		balances, txns = append(balances, b), append(txns, x)
	}
	same := func(what string, v any, got []byte) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	for i := range balances {
		same("balance", balances[i], balances[i].appendJSON(nil))
		same("transaction", txns[i], txns[i].appendJSON(nil))
		h := hookAnswer{Status: text(i), EventID: text(i + 1)}
		same("postback answer", h, h.appendJSON(nil))
	}
	next := "12345"
	for _, p := range []listPage[txnJSON]{{Data: []txnJSON{}}, {Data: txns[:1]}, {Data: txns, NextCursor: &next}} {
		same("transactions page", p, p.appendJSON([]byte{}, (*txnJSON).appendJSON))
	}
	for _, p := range []feedPage{{Data: []balanceJSON{}, NextCursor: "v1.1.2"}, {Data: balances, NextCursor: text(3)}} {
		same("feed page", p, p.appendJSON(nil))
	}
}
