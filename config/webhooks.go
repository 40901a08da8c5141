package config

// Webhook is one publisher endpoint that Tally notifies of changes (Standard Webhooks).
type Webhook struct {
	URL    string   `yaml:"url"`
	Secret Secret   `yaml:"secret"` // whsec_… (base64 after the prefix)
	Events []string `yaml:"events"`
}
