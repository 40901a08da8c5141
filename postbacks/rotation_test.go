package postbacks

import (
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"tally/rewards"
)

// TestPreviousCredentialsDuringARotation: while a provider moves to a new token, key or
// secret, a request with one it replaces is still accepted (refused, Gamezop drops the
// postback and its revenue is lost), any other is refused, and GamePush, whose dedupe
// key is the signed body, takes only its current secret.
func TestPreviousCredentialsDuringARotation(t *testing.T) {
	prev := []string{"old-1", "old-2"}
	spp, scores, ts := with(sppBase), with(scoreBase), with(tsBase)
	tests := []struct {
		src   rewards.Source
		creds Credentials
		send  func(k string) (http.Header, []byte) // a request carrying credential k
	}{
		{rewards.SourceGamezopSPP, Credentials{BearerToken: "new", Previous: prev},
			func(k string) (http.Header, []byte) { return http.Header{"Authorization": {"Bearer " + k}}, spp }},
		{rewards.SourceGamezopScores, Credentials{APIKey: "new", Previous: prev},
			func(k string) (http.Header, []byte) { return http.Header{"Api-Key": {k}}, scores }},
		{rewards.SourceTrackScore, Credentials{Secret: "new", Previous: prev},
			func(k string) (http.Header, []byte) {
				return http.Header{"X-Trackscore-Signature": {trackScoreSig(ts, k)}}, ts
			}},
	}
	for _, tt := range tests {
		t.Run(string(tt.src), func(t *testing.T) {
			parse := func(k string, c Credentials) error {
				h, body := tt.send(k)
				_, err := Parse(tt.src, h, body, c)
				return err
			}
			for _, k := range []string{"new", "old-1", "old-2"} {
				if err := parse(k, tt.creds); err != nil {
					t.Errorf("with %q: %v, want accepted", k, err)
				}
			}
			for _, k := range []string{"old-3", "old-", "new-old-1"} {
				if err := parse(k, tt.creds); !errors.Is(err, ErrUnauthorized) {
					t.Errorf("with %q: %v, want ErrUnauthorized", k, err)
				}
			}
			// With no rotation configured the old one is refused.
			c := tt.creds
			c.Previous = nil
			if err := parse("old-1", c); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("old credential, no previous configured: %v, want ErrUnauthorized", err)
			}
		})
	}

	payload := base64.StdEncoding.EncodeToString(with(gpBase))
	body := []byte(payload + "." + gamePushSig(payload, "old-1", "hex"))
	if _, err := ParseGamePush(nil, body, Credentials{Secret: "new", Previous: prev}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("GamePush body signed with a previous secret: %v, want ErrUnauthorized", err)
	}
	body = []byte(payload + "." + gamePushSig(payload, "new", "hex"))
	if _, err := ParseGamePush(nil, body, Credentials{Secret: "new", Previous: prev}); err != nil {
		t.Errorf("GamePush body signed with its secret: %v", err)
	}
}
