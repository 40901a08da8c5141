package config

import (
	"net"
	"net/url"
)

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
		// The URL is never echoed: it is refused when it holds credentials.
		u, err := url.Parse(g.URL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			v.add(path+".url", "must be an absolute https URL")
		case u.User != nil:
			v.add(path+".url", "must not hold credentials: put the token in bearer_token")
		case u.Scheme == "http" && !loopback(u.Hostname()):
			// The bearer token would cross the network in clear text.
			v.add(path+".url", "must be https (plain http only to this machine, for a local stand-in)")
		}
	}
	if p.GamezopPropertyID == "" {
		v.add(path, "needs gamezop_property_id: the reports API is per account, and Tally asks for this property's rows")
	}
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
