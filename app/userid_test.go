package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// A user id with a Unicode format character (bidi control, zero-width character, BOM)
// is refused by every API that takes one, with a 400 naming the user, as the receivers
// refuse it.
func TestAPIsRefuseFormatCharactersInUserIDs(t *testing.T) {
	e := newEnv(t, store.SQLite)
	pub := []string{"Authorization", "Bearer " + apiKey}
	for _, user := range []string{"abc%E2%80%AEdef", "a%E2%80%8Bb", "%EF%BB%BFsub1", "a%C2%ADb", "a%C2%85b"} {
		for _, c := range []struct {
			method, path, body string
			hdr                []string
		}{
			{"GET", "/v1/properties/arcade/users/" + user + "/balance", "", pub},
			{"GET", "/v1/properties/arcade/users/" + user + "/transactions", "", pub},
			{"POST", "/v1/properties/arcade/users/" + user + "/redemptions", `{"amount":"1"}`, append([]string{"Idempotency-Key", "k-" + user}, pub...)},
			{"POST", "/v1/admin/properties/arcade/users/" + user + "/adjustments", `{"amount":"1","reason":"test"}`,
				[]string{"Authorization", "Bearer " + adminTok, "Idempotency-Key", "k-" + user}},
		} {
			a := e.do(c.method, c.path, c.body, c.hdr...)
			if a.Code != 400 || problemField(a) != "user" {
				t.Errorf("%s %s: %d %s, want 400 naming user", c.method, c.path, a.Code, a.Raw)
			}
		}
	}
}

// Every user id the receivers accept is addressable by every API: the path is routed as
// sent, so an escaped "/" (%2F) stays inside its segment, and the segment is unescaped
// exactly once. Each id is credited through the admin adjustment, then read back through
// the balance, transactions and redemptions, under every spelling of its path segment.
func TestUserIDsInPaths(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		pub := []string{"Authorization", "Bearer " + apiKey}
		ids := map[string][]string{ // id → spellings of its path segment besides url.PathEscape's
			"a/b":      {"a%2fb"},
			"100%":     nil,
			"a%2Fb":    {"a%252Fb"}, // the id is the text "a%2Fb"; it must not be decoded twice
			"a?b":      nil,
			"a#b":      nil,
			"a;b":      {"a;b"},
			"..":       {"%2E%2E", ".%2e"},
			".":        {"%2E"},
			"a b":      {"a%20b"},
			"a+b":      {"a%2Bb"},
			"a+b/c":    {"a%2Bb%2Fc"}, // gin's own unescaping (QueryUnescape) would read "a b/c"
			"ü日本😀":     {"%C3%BC%E6%97%A5%E6%9C%AC%F0%9F%98%80"},
			`a\b`:      {"a%5Cb"},
			"a:b@c=d,": {"a:b@c=d,"},
		}
		n := 0
		for id, spellings := range ids {
			n++
			key := fmt.Sprintf("fund-%d", n)
			segments := append([]string{url.PathEscape(id)}, spellings...)
			credit := e.do("POST", "/v1/admin/properties/arcade/users/"+segments[0]+"/adjustments",
				`{"amount":"10","reason":"test funds"}`, "Authorization", "Bearer "+adminTok, "Idempotency-Key", key)
			if credit.Code != 201 || sub(credit, "adjustment")["user"] != id {
				t.Fatalf("credit %q: %d %s", id, credit.Code, credit.Raw)
			}
			for i, seg := range segments {
				b := e.do("GET", "/v1/properties/arcade/users/"+seg+"/balance", "", pub...)
				if b.Code != 200 || b.Body["user"] != id || b.Body["available"] != fmt.Sprint(10-i) {
					t.Fatalf("balance of %q at %q: %d %s, want available %d", id, seg, b.Code, b.Raw, 10-i)
				}
				tx := e.do("GET", "/v1/properties/arcade/users/"+seg+"/transactions", "", pub...)
				if data, _ := tx.Body["data"].([]any); tx.Code != 200 || len(data) != 1+i {
					t.Fatalf("transactions of %q at %q: %d %s", id, seg, tx.Code, tx.Raw)
				}
				r := e.do("POST", "/v1/properties/arcade/users/"+seg+"/redemptions", `{"amount":"1"}`,
					append([]string{"Idempotency-Key", fmt.Sprintf("%s-%d", key, i)}, pub...)...)
				if r.Code != 201 || sub(r, "redemption")["user"] != id || sub(r, "balance")["available"] != fmt.Sprint(9-i) {
					t.Fatalf("redeem from %q at %q: %d %s", id, seg, r.Code, r.Raw)
				}
			}
		}
		// Nothing leaked into the ids the escaped characters would split or decode into.
		for _, other := range []string{"a", "b", "c", "a b/c", "a/b/c"} {
			b := e.do("GET", "/v1/properties/arcade/users/"+url.PathEscape(other)+"/balance", "", pub...)
			if b.Code != 200 || b.Body["available"] != "0" {
				t.Errorf("%q has a balance: %s", other, b.Raw)
			}
		}
		e.checkInvariants()
	})
}

// A wallet whose id holds U+FFFD or a noncharacter (which the receivers refuse now, but
// which an older version credited) stays addressable: adjusted, read and redeemed.
func TestAPIsAddressWalletsTheReceiversNoLongerAccept(t *testing.T) {
	e := newEnv(t, store.SQLite)
	for i, user := range []string{"bob\uFFFD", "bob\uFFFE", "bob_xD800_"} {
		// Made by an older version, which did not check.
		if _, _, err := e.db.Adjust(context.Background(), rewards.AdjustRequest{Property: "arcade", User: user, Amount: decimal.RequireFromString("1"),
			Bucket: rewards.Available, Reason: "older version", IdempotencyKey: fmt.Sprintf("old-%d", i), RequestHash: "h", Actor: "admin"}); err != nil {
			t.Fatal(err)
		}
		esc := url.PathEscape(user)
		e.credit("arcade", esc, "4", fmt.Sprintf("fund-%d", i))
		if a := e.redeem(esc, fmt.Sprintf("r-%d", i), `{"amount":"2"}`); a.Code != 201 {
			t.Fatalf("redeem for %q: %d %s", user, a.Code, a.Raw)
		}
		e.wantBalance("arcade", esc, apiKey, "3", "0")
	}
}

// An adjustment does not make a wallet under an id the receivers refuse: in an XLSX
// export "bob\uFFFE" and "bob\uFFFF" both read "bob\uFFFD", and "bob_xD800_" reads
// "bob", so finance could not tell whom to pay. The receivers refuse _xD800_…_xDFFF_
// too. Before, the adjustments answered 201 and made the wallets.
func TestAdjustmentsMakeNoWalletTheReceiversWouldRefuse(t *testing.T) {
	e := newEnv(t, store.SQLite)
	for i, user := range []string{"bob\uFFFE", "bob\uFFFF", "bob\uFFFD", "bob\uFDD0", "bob_xD800_", "_xdfff_", "_x0041_x0042_"} {
		a := e.do("POST", "/v1/admin/properties/arcade/users/"+url.PathEscape(user)+"/adjustments", `{"amount":"5","reason":"goodwill"}`,
			"Authorization", "Bearer "+adminTok, "Idempotency-Key", fmt.Sprintf("k-%d", i))
		if a.Code != 400 || problemField(a) != "user" {
			t.Errorf("adjustment for %q: %d %s, want 400 naming user", user, a.Code, a.Raw)
		}
	}
	// Two escapes sharing an underscore: the XLSX writer escaped the first only, so
	// "_x0041_x0042_" read "_x0041B", another user's id.
	for _, user := range []string{"bob_xD800_", "a_xdBfF_b", "_x0041_x0042_", "_x0041_x005F_x0042_"} {
		a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", strings.Replace(sppBody, `"sub1"`, `"`+user+`"`, 1), "Authorization", "Bearer "+sppToken)
		if a.Code != 400 || problemField(a) != "user-id" {
			t.Errorf("SPP for %q: %d %s, want 400 naming user-id", user, a.Code, a.Raw)
		}
	}
	// Fields that never reach a sheet keep them: a session id with one is accepted.
	if a := e.do("POST", "/v1/hooks/arcade/gamezop/spp", strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", "sess_xD800_1", 1),
		"Authorization", "Bearer "+sppToken); a.Code != 200 {
		t.Errorf("SPP with session-id sess_xD800_1: %d %s, want 200", a.Code, a.Raw)
	}
	// Other _xHHHH_ spellings are held as sent.
	// After _x005F_ the writer escapes the next escape too: they read back as written.
	for i, user := range []string{"bob_x0041_", "_x0041__x0042_", "_x005F_x0041_", "u_x005F_x0041_x0042_"} {
		if a := e.do("POST", "/v1/admin/properties/arcade/users/"+user+"/adjustments", `{"amount":"5","reason":"goodwill"}`,
			"Authorization", "Bearer "+adminTok, "Idempotency-Key", fmt.Sprintf("k-ok-%d", i)); a.Code != 201 {
			t.Fatalf("adjustment for %s: %d %s", user, a.Code, a.Raw)
		}
	}
}

// A request line whose path holds raw bytes a path may not (UTF-8, "|") besides a "%2F"
// reaches the wallet of the id it names, as curl sends it: Go kept no raw path for it,
// and the "%2F" was routed as a "/" (404). Sent over a real connection, since
// httptest builds its requests' URLs itself.
func TestRawRequestLineWithAnEscapedSlash(t *testing.T) {
	e := newEnv(t, store.SQLite)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = app.Serve(ctx, ln, e.h, slog.New(slog.DiscardHandler)); close(served) }()
	defer func() { cancel(); <-served }()
	get := func(target string) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", target, apiKey)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for i, c := range []struct{ id, sent string }{
		{"ü", "ü"},
		{"ü/x", "ü%2Fx"},
		{"a|b/c", "a|b%2Fc"},
		{"a%b/ü", "a%25b%2Fü"},
	} {
		e.credit("arcade", url.PathEscape(c.id), "7", fmt.Sprintf("k%d", i))
		code, body := get("/v1/properties/arcade/users/" + c.sent + "/balance")
		if code != 200 || !strings.Contains(body, `"available":"7"`) {
			t.Errorf("balance of %q sent as %q: %d %s, want 200 with available 7", c.id, c.sent, code, body)
		}
	}
}
