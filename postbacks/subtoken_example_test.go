package postbacks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"tally/postbacks"
)

// signSub is the README's Go snippet for a publisher's backend, word for word
// (TestReadmeSubTokenSnippets checks the README still says this).
//
// signSub returns the sub token for user, valid until expires (unix seconds).
func signSub(secret []byte, user string, expires int64) string {
	payload := user + "." + strconv.FormatInt(expires, 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// A publisher's backend signs the sub with a few lines of the standard library; Tally
// credits the user inside the token.
func ExampleSubTokens_User() {
	secret := []byte("a-secret-of-16-bytes-or-more")
	token := signSub(secret, "player-42", 1796126400) // 2026-12-01T12:00:00Z
	tokens := postbacks.SubTokens{Secrets: [][]byte{secret}, Required: true}
	user, err := tokens.User(token, time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC))
	fmt.Println(token)
	fmt.Println(user, err)
	// Output:
	// player-42.1796126400.B1DBzX2Rn9T1VCRJw8pJ1g
	// player-42 <nil>
}
