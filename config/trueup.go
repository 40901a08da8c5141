package config

import "net/url"

// DefaultGamezopReportsURL is Gamezop's Ad Revenue Reports API (current version).
const DefaultGamezopReportsURL = "https://api.platform.gamezop.com/v1/ad-revenue-data"

// GamezopReports configures the pull of booked revenue for true-ups (issue 14).
type GamezopReports struct {
	URL         string `yaml:"url"` // default DefaultGamezopReportsURL
	BearerToken Secret `yaml:"bearer_token"`
}

// Endpoint is URL or the default.
func (g GamezopReports) Endpoint() string {
	if g.URL == "" {
		return DefaultGamezopReportsURL
	}
	return g.URL
}

func (v *validator) gamezopReports(path string, p Property) {
	g := p.GamezopReports
	if g == nil {
		return
	}
	if g.BearerToken == "" {
		v.add(path+".bearer_token", "is required: the API token from Gamezop's Business Dashboard")
	}
	if g.URL != "" {
		u, err := url.Parse(g.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add(path+".url", "must be an absolute http(s) URL, got %q", g.URL)
		}
	}
	if p.GamezopPropertyID == "" {
		v.add(path, "needs gamezop_property_id: the reports API is per account, and Tally asks for this property's rows")
	}
}
