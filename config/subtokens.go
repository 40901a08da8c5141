package config

import (
	"fmt"
	"time"
)

// SubTokens configures signed sub tokens for one property (issue 13):
// `<user>.<expiry>.<signature>`, verified on the sources whose user id is a game URL's
// sub (Gamezop SPP user-id, Gamezop scores subId).
type SubTokens struct {
	// Secret signs new tokens and verifies them; Secrets, written instead, lists the
	// secrets accepted, newest first (the first signs), so a secret can be rotated
	// without refusing the tokens already in game URLs.
	Secret   Secret   `yaml:"secret,omitempty"`
	Secrets  []Secret `yaml:"secrets,omitempty"`
	Required bool     `yaml:"required"`
	MaxAge   Duration `yaml:"max_age"` // how long after its expiry a token still credits; default 0s
}

// minSubSecret is the shortest secret accepted: an HMAC key shorter than this is
// guessable offline from one token.
const minSubSecret = 16

// Keys returns the accepted secrets, the signing one first.
func (s SubTokens) Keys() [][]byte {
	var out [][]byte
	if s.Secret != "" {
		out = append(out, []byte(s.Secret.Reveal()))
	}
	for _, k := range s.Secrets {
		out = append(out, []byte(k.Reveal()))
	}
	return out
}

// subTokens validates a property's sub_tokens.
func (v *validator) subTokens(path string, s *SubTokens) {
	if s == nil {
		return
	}
	switch {
	case s.Secret == "" && len(s.Secrets) == 0:
		v.add(path+".secret", "is required (or secrets: [new, old] to rotate)")
	case s.Secret != "" && len(s.Secrets) > 0:
		v.add(path+".secrets", "write secret or secrets, not both")
	}
	check := func(at string, k Secret) {
		if n := len(k.Reveal()); n < minSubSecret {
			v.add(at, "must be at least %d bytes, got %d", minSubSecret, n)
		}
	}
	if s.Secret != "" {
		check(path+".secret", s.Secret)
	}
	for i, k := range s.Secrets {
		check(fmt.Sprintf("%s.secrets[%d]", path, i), k)
	}
	v.duration(path+".max_age", s.MaxAge)
}

// MaxAgeDuration is MaxAge parsed (0 when unset); call it on a validated config.
func (s SubTokens) MaxAgeDuration() time.Duration { return mustDuration(s.MaxAge) }
