package postbacks

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// singleHeader returns the value of a header sent exactly once. A repeated credential
// header is refused rather than picking one copy: proxies and frameworks disagree on
// which copy counts, and that disagreement is how checks get bypassed.
func singleHeader(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) != 1 {
		return "", false
	}
	return vs[0], true
}

// secretEqual compares the exact bytes in constant time, so response timing does not
// reveal how much of a guess was right. It compares their SHA-256 digests, as app's
// secretEqual does: subtle.ConstantTimeCompare returns at once on a length mismatch,
// which would tell a guesser the length of a bearer token or api-key.
func secretEqual(got, want []byte) bool {
	g, w := sha256.Sum256(got), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// oneOf reports whether got is the current credential or one from before a rotation. It
// compares with every one, so the time taken does not say which matched.
func oneOf(got []byte, current string, previous []string) bool {
	ok := secretEqual(got, []byte(current))
	for _, p := range previous {
		ok = secretEqual(got, []byte(p)) || ok
	}
	return ok
}

// bearerOK checks `Authorization: Bearer <token>`: the scheme is case-insensitive and
// separated from the token by one or more spaces (RFC 9110 §11.1 and §11.4: 1*SP, so a
// token pasted into the provider's dashboard with a space before it still
// authenticates), and the token is compared as sent.
func bearerOK(h http.Header, token string, previous []string) bool {
	v, ok := singleHeader(h, "Authorization")
	const scheme = "bearer "
	if !ok || len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	return oneOf([]byte(strings.TrimLeft(v[len(scheme):], " ")), token, previous)
}
