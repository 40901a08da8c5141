package config

import (
	"slices"
	"strings"
	"testing"
)

// A Standard Webhooks test secret: 24 bytes of key after whsec_.
const testWhsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// webhooksBlock is a valid webhooks list for properties[0] of the example.
const webhooksBlock = `
    webhooks:
      - url: "https://publisher.example/hooks/tally"
        secret: "${ARCADE_WHSEC}"
        events: [credit.settled, balance.updated, redemption.created, redemption.reversed, event.quarantined]
`

func TestWebhooksConfig(t *testing.T) {
	example := readExample(t) + webhooksBlock
	env := exampleEnv()
	env["ARCADE_WHSEC"] = testWhsec
	env["PUZZLE_KEY"] = "key-Secret-puzzle"

	cfg, err := loadText(t, example, env)
	if err != nil {
		t.Fatalf("valid webhooks refused: %v", err)
	}
	subs := cfg.WebhookSubscriptions()
	if got := subs("arcade", "credit.settled"); !slices.Equal(got, []string{"https://publisher.example/hooks/tally"}) {
		t.Fatalf("subscribers of arcade credit.settled = %v", got)
	}
	if got := subs("other", "credit.settled"); got != nil {
		t.Fatalf("a property without webhooks has subscribers %v", got)
	}
	// No webhook at all: the store gets no lookup and writes no outbox row.
	plain, err := loadText(t, readExample(t), exampleEnv())
	if err != nil {
		t.Fatal(err)
	}
	if plain.WebhookSubscriptions() != nil {
		t.Fatal("a config without webhooks gives a non-nil lookup")
	}
	// A rotation: the previous secrets sign too.
	rotating, err := loadText(t, strings.Replace(example, `secret: "${ARCADE_WHSEC}"`,
		`secret: "${ARCADE_WHSEC}"`+"\n        previous_secrets: [\"whsec_cHJldmlvdXMta2V5LW9mLTMyLWJ5dGVzLWxvbmc=\"]", 1), env)
	if err != nil {
		t.Fatalf("previous_secrets refused: %v", err)
	}
	if p, _ := rotating.Property("arcade"); len(p.Webhooks[0].PreviousSecrets) != 1 {
		t.Fatalf("previous_secrets read as %v", p.Webhooks[0].PreviousSecrets)
	}
	// The secret never shows in how the config prints.
	var sb strings.Builder
	if err := Describe(&sb, cfg); err != nil || strings.Contains(sb.String(), "MfKQ9r8") {
		t.Fatalf("tally check: %v\n%s", err, sb.String())
	}

	tests := []struct {
		name     string
		old, new string
		want     string // "path: message prefix"
	}{
		{"relative url", `url: "https://publisher.example/hooks/tally"`, `url: "/hooks/tally"`,
			`properties[0].webhooks[0].url: must be an absolute http:// or https:// URL, got "/hooks/tally"`},
		{"ftp url", `url: "https://publisher.example/hooks/tally"`, `url: "ftp://publisher.example/x"`,
			`properties[0].webhooks[0].url: must be an absolute http:// or https:// URL`},
		{"missing url", `url: "https://publisher.example/hooks/tally"`, `url: ""`, `properties[0].webhooks[0].url: is required`},
		{"credentials in url", `url: "https://publisher.example/hooks/tally"`, `url: "https://u:p@publisher.example/"`,
			`properties[0].webhooks[0].url: must not contain credentials`},
		// A URL wrong in another way never shows its password either.
		{"credentials in a url with a bad scheme", `url: "https://publisher.example/hooks/tally"`, `url: "htps://alice:s3cret@publisher.example/hooks"`,
			`properties[0].webhooks[0].url: must not contain credentials`},
		{"credentials in a url that does not parse", `url: "https://publisher.example/hooks/tally"`, `url: "https://alice:s3cret@publisher.example:abc/hooks"`,
			`properties[0].webhooks[0].url: must be an absolute http:// or https:// URL, got "****"`},
		{"secret without prefix", `secret: "${ARCADE_WHSEC}"`, `secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`,
			`properties[0].webhooks[0].secret: must start with "whsec_"`},
		{"secret not base64", `secret: "${ARCADE_WHSEC}"`, `secret: "whsec_not base64!"`,
			`properties[0].webhooks[0].secret: must be "whsec_" followed by standard base64`},
		{"secret too short", `secret: "${ARCADE_WHSEC}"`, `secret: "whsec_c2hvcnQ="`,
			`properties[0].webhooks[0].secret: must hold a key of 24 to 64 bytes, got 5`},
		{"secret missing", `secret: "${ARCADE_WHSEC}"`, `secret: ""`, `properties[0].webhooks[0].secret: is required`},
		{"unknown event", `events: [credit.settled,`, `events: [credit.setled,`,
			`properties[0].webhooks[0].events[0]: must be one of credit.settled, balance.updated, redemption.created, redemption.reversed, event.quarantined, got "credit.setled"`},
		{"no events", `events: [credit.settled, balance.updated, redemption.created, redemption.reversed, event.quarantined]`, `events: []`,
			`properties[0].webhooks[0].events: must list at least one of credit.settled`},
		{"event twice", `events: [credit.settled,`, `events: [credit.settled, credit.settled,`,
			`properties[0].webhooks[0].events[1]: "credit.settled" is listed twice`},
		{"previous secret too short", `secret: "${ARCADE_WHSEC}"`, `secret: "${ARCADE_WHSEC}"` + "\n        previous_secrets: [\"whsec_c2hvcnQ=\"]",
			`properties[0].webhooks[0].previous_secrets[0]: must hold a key of 24 to 64 bytes, got 5`},
		{"previous secret is the secret", `secret: "${ARCADE_WHSEC}"`, `secret: "${ARCADE_WHSEC}"` + "\n        previous_secrets: [\"${ARCADE_WHSEC}\"]",
			`properties[0].webhooks[0].previous_secrets[0]: is the same value as properties[0].webhooks[0].secret`},
		{"url twice", "", `      - { url: "https://publisher.example/hooks/tally", secret: "${ARCADE_WHSEC}", events: [balance.updated] }` + "\n",
			`properties[0].webhooks[1].url: is already the url of properties[0].webhooks[0]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := example + tc.new
			if tc.old != "" {
				if !strings.Contains(example, tc.old) {
					t.Fatalf("the example has no %q", tc.old)
				}
				text = strings.Replace(example, tc.old, tc.new, 1)
			}
			_, err := loadText(t, text, env)
			if err == nil {
				t.Fatalf("Load accepted the file; want %q", tc.want)
			}
			if strings.Contains(err.Error(), "MfKQ9r8") {
				t.Fatalf("an error shows the secret: %v", err)
			}
			path, msg, _ := strings.Cut(tc.want, ": ")
			for _, p := range problems(t, err) {
				if p.Path == path && strings.HasPrefix(p.Message, msg) {
					return
				}
			}
			t.Errorf("no problem %q in:\n%v", tc.want, err)
		})
	}
}
