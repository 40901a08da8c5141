package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"tally/config"
	"tally/postbacks"
)

// cmdSub: tally sub sign --property P --user U [--ttl 24h] [--config F] — print a signed
// sub token for the user, to put in a game URL's ?sub= (what the publisher's backend
// does in code; README "Signed sub tokens").
func cmdSub(args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "sign" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stderr, subUsage)
			return errHelp
		}
		fmt.Fprint(stderr, subUsage)
		return errUsage
	}
	fs, path := flags("sub sign", stderr)
	property := fs.String("property", "", "the property whose sub_tokens secret signs (required)")
	user := fs.String("user", "", "the user id to sign (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *property == "" || *user == "" {
		fmt.Fprintln(stderr, "tally sub sign: --property and --user are required")
		return errUsage
	}
	if *ttl <= 0 {
		return errors.New("sub sign: --ttl must be positive")
	}
	cfg, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	st, err := subTokensOf(cfg, *property)
	if err != nil {
		return err
	}
	tok, err := st.Sign(*user, now().Add(*ttl))
	if err != nil {
		return fmt.Errorf("sub sign: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

const subUsage = `usage: tally sub sign --property P --user U [--ttl 24h] [--config F]
  prints a signed sub token (<user>.<expiry>.<signature>) for the property's sub_tokens
`

func subTokensOf(cfg config.Config, property string) (postbacks.SubTokens, error) {
	for _, p := range cfg.Properties {
		if p.ID != property {
			continue
		}
		if p.SubTokens == nil {
			return postbacks.SubTokens{}, fmt.Errorf("property %q has no sub_tokens configured", property)
		}
		return postbacks.SubTokens{Secrets: p.SubTokens.Keys(), Required: p.SubTokens.Required,
			MaxAge: p.SubTokens.MaxAgeDuration()}, nil
	}
	return postbacks.SubTokens{}, fmt.Errorf("unknown property %q: it is not in the config", property)
}
