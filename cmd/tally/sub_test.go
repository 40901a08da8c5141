package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tally/postbacks"
)

// tally sub sign prints a token the receivers verify, for the user asked, valid for --ttl.
func TestSubSign(t *testing.T) {
	src, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	withTokens := strings.Replace(string(src), "    currency: COIN\n",
		"    currency: COIN\n    sub_tokens: { secret: \"${SUB_SECRET}\", required: true, max_age: 1h }\n", 1)
	if withTokens == string(src) {
		t.Fatal("the example has no arcade currency line to add sub_tokens under")
	}
	path := filepath.Join(t.TempDir(), "tally.yaml")
	if err := os.WriteFile(path, []byte(withTokens), 0o600); err != nil {
		t.Fatal(err)
	}
	genv := getenv(map[string]string{"SUB_SECRET": "sub-secret-0123456789"})
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sub", "sign", "--config", path, "--property", "arcade", "--user", "player.7", "--ttl", "2h"},
		genv, &out, &errOut); err != nil {
		t.Fatalf("sub sign: %v\n%s", err, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	v := postbacks.SubTokens{Secrets: [][]byte{[]byte("sub-secret-0123456789")}, Required: true}
	if user, err := v.User(tok, time.Now().Add(time.Hour)); err != nil || user != "player.7" {
		t.Fatalf("token %q: %q, %v", tok, user, err)
	}
	if _, err := v.User(tok, time.Now().Add(3*time.Hour)); err == nil {
		t.Fatalf("token %q still valid after its ttl", tok)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sub", "sign", "--config", path, "--property", "arcade", "--user", strings.Repeat("x", 80)}, "too long"},
		{[]string{"sub", "sign", "--config", path, "--property", "nope", "--user", "u"}, `"nope"`},
		{[]string{"sub", "sign", "--config", "../../tally.example.yaml", "--property", "arcade", "--user", "u"}, "no sub_tokens"},
	} {
		out.Reset()
		err := run(context.Background(), c.args, getenv(map[string]string{"SUB_SECRET": "sub-secret-0123456789"}), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) || out.Len() != 0 {
			t.Errorf("%v: %v, printed %q; want an error with %q", c.args, err, out.String(), c.want)
		}
	}
}
