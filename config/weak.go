package config

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// MinCredential is the length, in characters, below which Weaknesses calls a credential
// the operator chooses guessable: 16 random characters are beyond guessing; fewer are
// usually a word or a name.
const MinCredential = 16

// DevSecrets are the public development values of .env.example, which the Makefile
// exports for `make run` (cmd/tally's tests keep the three equal).
var DevSecrets = []string{
	"dev-admin-token", "dev-arcade-key", "dev-spp-token", "dev-scores-key", "dev-gamepush-secret", "dev-trackscore-secret",
}

// Weaknesses lists the credentials of c that others may know, guess or reuse, each by its
// path and why: any that is one of DevSecrets; any the operator chooses (an admin token,
// a publisher API key, a sub token or webhook signing secret) shorter than MinCredential
// characters; and a signed source's secret (GamePush, TrackScore) that another property
// has for the same source: a delivery signed for one would verify at the other's URL,
// and its payload does not say which property it was for, so a captured one replayed
// there credits the other's users (a GamePush key is per project: two properties
// sharing one is usually a copy-paste). A provider's own secrets are otherwise the
// provider's to choose and are not checked for length. They are warnings, not problems
// (`make run` uses the development values on purpose): `tally serve` logs each at start
// and `tally check` prints them. Neither the API nor the console limits how often a
// token may be tried, so a short admin token can be found by trying.
func (c Config) Weaknesses() []string {
	var out []string
	check := func(path string, s Secret, chosen bool) {
		t := s.Reveal()
		switch {
		case t == "":
		case slices.Contains(DevSecrets, t):
			out = append(out, fmt.Sprintf("%s is a public development value (.env.example): anyone who has read Tally's repository can use it; set your own", path))
		case chosen && utf8.RuneCountInString(t) < MinCredential:
			out = append(out, fmt.Sprintf("%s is %d characters: short enough to be guessed, and nothing limits how often it may be tried; use at least %d random ones (openssl rand -hex 32)",
				path, utf8.RuneCountInString(t), MinCredential))
		}
	}
	check("admin_token", c.AdminToken, true)
	for i, a := range c.AdminTokens {
		check(fmt.Sprintf("admin_tokens[%d].token", i), a.Token, true)
	}
	signedBy := map[string]int{} // a signed source and secret → the first property with them
	for i, p := range c.Properties {
		at := fmt.Sprintf("properties[%d]", i)
		for j, k := range p.APIKeys {
			check(fmt.Sprintf("%s.api_keys[%d]", at, j), k, true)
		}
		for _, cred := range p.foreignCredentials(at) {
			check(cred.path, cred.secret, !cred.provider)
			if cred.signs == "" {
				continue
			}
			key := cred.signs + " " + cred.secret.Reveal()
			if j, seen := signedBy[key]; seen && j != i {
				out = append(out, fmt.Sprintf("%s is a signing secret of properties[%d] too: a delivery signed for either verifies at both, and its payload does not say which property it was for; give each property its own (one GamePush project or TrackScore key each)", cred.path, j))
			} else if !seen {
				signedBy[key] = i
			}
		}
	}
	return out
}
