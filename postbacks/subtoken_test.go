package postbacks

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSubTokens(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	oldSecret, newSecret := []byte("old-secret-0123456789"), []byte("new-secret-0123456789")
	signer := SubTokens{Secrets: [][]byte{newSecret}}
	sign := func(s SubTokens, user string, exp time.Time) string {
		t.Helper()
		tok, err := s.Sign(user, exp)
		if err != nil {
			t.Fatalf("Sign(%q): %v", user, err)
		}
		return tok
	}
	valid := sign(signer, "user-42", now.Add(time.Hour))
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	if !strings.HasPrefix(valid, "user-42."+exp+".") || len(valid) != len("user-42."+exp+".")+22 {
		t.Fatalf("token %q", valid)
	}
	// A token the publisher signed in JavaScript or Python for the same input (README).
	if got := sign(SubTokens{Secrets: [][]byte{[]byte("s3cret")}}, "alice", time.Unix(1767225600, 0)); got != "alice.1767225600.iVMCPJMSnfySEJ-QqnNZLA" {
		t.Fatalf("reference token = %q", got)
	}
	tamperedUser := "user-43" + strings.TrimPrefix(valid, "user-42")
	tamperedExpiry := strings.Replace(valid, "."+exp+".", "."+strconv.FormatInt(now.Add(2*time.Hour).Unix(), 10)+".", 1)
	dotted := sign(signer, "a.b.c", now.Add(time.Hour))
	withOld := sign(SubTokens{Secrets: [][]byte{oldSecret}}, "user-42", now.Add(time.Hour))
	expired := sign(signer, "user-42", now.Add(-2*time.Hour))

	// The signature's last character carries only two bits: another spelling of it
	// decodes to the same bytes and must not verify.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, valid[len(valid)-1])
	respelled := valid[:len(valid)-1] + string(alphabet[last^1])

	rotated := SubTokens{Secrets: [][]byte{newSecret, oldSecret}, Required: true, MaxAge: time.Hour}
	strict := SubTokens{Secrets: [][]byte{newSecret}, Required: true, MaxAge: time.Hour}
	lax := SubTokens{Secrets: [][]byte{newSecret}, MaxAge: time.Hour}
	for _, c := range []struct {
		name string
		s    SubTokens
		sub  string
		user string // "" means refused
	}{
		{"valid", strict, valid, "user-42"},
		{"user with dots", strict, dotted, "a.b.c"},
		{"tampered user", strict, tamperedUser, ""},
		{"tampered expiry", strict, tamperedExpiry, ""},
		{"a signature spelled another way", strict, respelled, ""},
		{"signed with a secret no longer accepted", strict, withOld, ""},
		{"rotated: the old secret still accepted", rotated, withOld, "user-42"},
		{"rotated: the new one too", rotated, valid, "user-42"},
		{"expired more than max_age before receipt", strict, expired, ""},
		{"expired within max_age", SubTokens{Secrets: [][]byte{newSecret}, Required: true, MaxAge: 3 * time.Hour}, expired, "user-42"},
		{"plain id where a token is required", strict, "user-42", ""},
		{"plain id accepted when not required", lax, "user-42", "user-42"},
		{"a forged token is verified even when not required", lax, tamperedUser, ""},
		{"a bidi control in the user part", strict, "user\u202e24" + strings.TrimPrefix(valid, "user-42"), ""},
	} {
		got, err := c.s.User(c.sub, now)
		if c.user == "" {
			var ste *SubTokenError
			if !errors.As(err, &ste) {
				t.Errorf("%s: User(%q) = %q, %v; want a SubTokenError", c.name, c.sub, got, err)
			}
			continue
		}
		if err != nil || got != c.user {
			t.Errorf("%s: User(%q) = %q, %v; want %q", c.name, c.sub, got, err, c.user)
		}
	}

	// Signing refuses what cannot be a valid sub: too long for Gamezop, or a user id the
	// receivers would refuse.
	if _, err := signer.Sign(strings.Repeat("u", 67), now); !errors.Is(err, ErrSubTooLong) {
		t.Errorf("a 67-character user: %v, want ErrSubTooLong", err)
	}
	if tok := sign(signer, strings.Repeat("u", 66), now); len([]rune(tok)) != MaxSubLen {
		t.Errorf("a 66-character user makes a %d-character token", len([]rune(tok)))
	}
	if _, err := signer.Sign("bad\u202eid", now); err == nil {
		t.Error("signed a user id with a bidi control")
	}
}
