package config

// SubTokens configures signed sub tokens for one property (issue 13): `<user>.<expiry>.<sig>`.
type SubTokens struct {
	// Secret signs new tokens and verifies them; Secrets, when set instead, lists the
	// secrets accepted (the first signs), for rotation.
	Secret   Secret   `yaml:"secret,omitempty"`
	Secrets  []Secret `yaml:"secrets,omitempty"`
	Required bool     `yaml:"required"`
	MaxAge   Duration `yaml:"max_age"` // how long after its expiry a token still credits; default 0s
}
