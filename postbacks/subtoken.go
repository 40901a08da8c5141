package postbacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Signed sub tokens (issue 13). Gamezop credits whatever `sub` the game URL carries, and
// the end user can edit the URL; a publisher that signs the sub makes an edited one
// worthless. A token is
//
//	<user>.<expiry unix seconds>.<signature>
//
// where the signature is the first 16 bytes of HMAC-SHA256(secret, "<user>.<expiry>"),
// base64url without padding (22 characters). The user part may itself hold dots: the
// token is split at its last two.

// MaxSubLen is Gamezop's limit on the sub, in characters; a token must fit it.
const MaxSubLen = 100

const (
	subSigBytes = 16
	subSigLen   = 22 // base64url of 16 bytes, unpadded
)

// SubTokens verifies (and signs) one property's sub tokens.
type SubTokens struct {
	// Secrets are the accepted secrets, newest first; the first signs.
	Secrets [][]byte
	// Required: a sub that is not a token is refused. Otherwise plain ids are taken as
	// they are, and tokens are verified when present.
	Required bool
	// MaxAge is how long after its expiry a token still credits, counted at receipt.
	MaxAge time.Duration
}

// SubTokenError says why a sub does not identify a user; the event is kept quarantined
// with it (the provider is authentic, the user is not).
type SubTokenError struct{ Reason string }

func (e *SubTokenError) Error() string { return "sub token: " + e.Reason }

// ErrSubTooLong: the user id is too long for a token that fits Gamezop's sub.
var ErrSubTooLong = errors.New("user id too long for a signed sub token")

// Sign returns the token for user, valid until expiry.
func (s SubTokens) Sign(user string, expiry time.Time) (string, error) {
	if len(s.Secrets) == 0 {
		return "", errors.New("sub tokens: no secret configured")
	}
	// The receivers' rule: a token whose user they would refuse is no use.
	if msg := userProblem(user); msg != "" {
		return "", fmt.Errorf("user id: %s", msg)
	}
	payload := user + "." + strconv.FormatInt(expiry.Unix(), 10)
	tok := payload + "." + subSignature(s.Secrets[0], payload)
	if n := utf8.RuneCountInString(tok); n > MaxSubLen {
		return "", fmt.Errorf("%w: the token would be %d characters, Gamezop's sub holds %d (the user id may have at most %d)",
			ErrSubTooLong, n, MaxSubLen, MaxSubLen-(n-utf8.RuneCountInString(user)))
	}
	return tok, nil
}

func subSignature(secret []byte, payload string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:subSigBytes])
}

// LooksLikeToken reports whether sub has a token's shape: <user>.<digits>.<22 base64url>.
// With Required false, only such subs are verified; any other is a plain id.
func LooksLikeToken(sub string) bool {
	_, _, _, ok := splitToken(sub)
	return ok
}

func splitToken(sub string) (user, expiry, sig string, ok bool) {
	i := strings.LastIndexByte(sub, '.')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(sub[:i], '.')
	if j <= 0 {
		return "", "", "", false
	}
	user, expiry, sig = sub[:j], sub[j+1:i], sub[i+1:]
	if len(sig) != subSigLen || len(expiry) == 0 || len(expiry) > 12 {
		return "", "", "", false
	}
	for _, c := range []byte(expiry) {
		if c < '0' || c > '9' {
			return "", "", "", false
		}
	}
	for _, c := range []byte(sig) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", "", "", false
		}
	}
	return user, expiry, sig, true
}

// User returns the user a sub identifies, as received at receivedAt: the user inside a
// valid token, or the sub itself when tokens are not required and it is not one. A
// token that does not verify (tampered, signed with another secret, or expired more than
// MaxAge before receipt) and a plain id where a token is required are *SubTokenError.
func (s SubTokens) User(sub string, receivedAt time.Time) (string, error) {
	user, expiry, sig, ok := splitToken(sub)
	if !ok {
		if s.Required {
			return "", &SubTokenError{Reason: "a signed token is required, the sub is not one"}
		}
		return sub, nil
	}
	// Strict: a non-canonical last character would give each token 16 spellings.
	given, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || len(given) != subSigBytes {
		return "", &SubTokenError{Reason: "malformed signature"}
	}
	payload := user + "." + expiry
	valid := 0
	for _, secret := range s.Secrets {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(payload))
		// Every secret is tried, so the time taken does not say which one matched.
		valid |= boolInt(hmac.Equal(m.Sum(nil)[:subSigBytes], given))
	}
	if valid == 0 {
		return "", &SubTokenError{Reason: "signature does not verify with the configured secrets"}
	}
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		return "", &SubTokenError{Reason: "malformed expiry"}
	}
	if at := time.Unix(exp, 0); receivedAt.After(at.Add(s.MaxAge)) {
		return "", &SubTokenError{Reason: fmt.Sprintf("expired at %s, more than max_age %s before receipt",
			at.UTC().Format(time.RFC3339), s.MaxAge)}
	}
	if msg := userProblem(user); msg != "" {
		return "", &SubTokenError{Reason: "the user inside the token " + msg}
	}
	return user, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
