package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

const mask = "****"

// Secret is a credential. Every way of printing it — fmt verbs, YAML, JSON, slog — shows
// "****" (or "" when it is empty, so an unset optional token stays visible as unset);
// only Reveal returns the value.
type Secret string

// Reveal returns the secret's value, for the one place that compares or signs with it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return mask
}

// String masks the secret.
func (s Secret) String() string { return s.masked() }

// Format masks the secret under every verb, including %x, %q and %#v, which would
// otherwise print it.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(s.masked()))
		return
	}
	fmt.Fprint(f, s.masked())
}

// MarshalYAML masks the secret.
func (s Secret) MarshalYAML() (any, error) { return s.masked(), nil }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.masked()) }

// LogValue masks the secret in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

// String shows the database URLs with any password redacted.
func (d Database) String() string {
	if d.ReadURL == "" {
		return redactURL(d.URL)
	}
	return redactURL(d.URL) + " (reads: " + redactURL(d.ReadURL) + ")"
}

// MarshalYAML redacts the passwords in the URLs.
func (d Database) MarshalYAML() (any, error) {
	return struct {
		URL     string `yaml:"url"`
		ReadURL string `yaml:"read_url,omitempty"`
	}{redactURL(d.URL), redactURL(d.ReadURL)}, nil
}

// redactURL hides the password of a postgres URL, whether in the user info or in a
// password query parameter. A postgres URL that does not parse is hidden whole, since
// there is no telling where its password is; sqlite URLs carry no credentials.
func redactURL(s string) string {
	if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return mask
	}
	if _, rest, _ := strings.Cut(s, "://"); ambiguousUserInfo(rest) {
		// An "@" that url.Parse and pgx may read differently (a password with an
		// unescaped "@", "?", "#" or "/"): there is no telling which part is the
		// password, so the URL is hidden whole.
		return mask
	}
	// url.URL would escape the mask in user info, so a marker of safe characters stands
	// in for it; an escaped user name cannot contain the ':' before it.
	const marker = "REDACTEDPASSWORD"
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), marker)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			k, _, _ := strings.Cut(part, "=")
			if name, err := url.QueryUnescape(k); err != nil || strings.Contains(strings.ToLower(name), "password") {
				parts[i] = k + "=" + mask
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return strings.Replace(u.String(), ":"+marker+"@", ":"+mask+"@", 1)
}

// Format redacts the URL under every verb; %#v would otherwise print the password.
func (d Database) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(d.String()))
		return
	}
	fmt.Fprintf(f, "{%s}", d.String())
}
