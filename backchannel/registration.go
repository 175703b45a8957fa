package backchannel

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// Registration holds the client metadata to register at the provider
// (Back-Channel Logout 1.0 §2.2), by hand in its console or through
// Dynamic Client Registration, where it marshals to the right JSON
// member names.
type Registration struct {
	// BackchannelLogoutURI is where the provider POSTs logout tokens: the
	// public URL the Receiver is mounted at.
	BackchannelLogoutURI string `json:"backchannel_logout_uri"`
	// BackchannelLogoutSessionRequired asks the provider to always include
	// sid; it mirrors Config.SessionRequired.
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required"`
}

// Registration returns the values to register for a receiver reachable at
// endpoint, e.g. "https://app.example.com/backchannel-logout". The
// URI must be absolute, without fragment (§2.2), and https, except on a
// loopback host for development. Providers reach it server to server, so
// it must be reachable from the provider, not only from browsers.
func (r *Receiver) Registration(endpoint string) (Registration, error) {
	u, err := url.Parse(endpoint)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return Registration{}, fmt.Errorf("backchannel: %q is not an absolute URL", endpoint)
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return Registration{}, errors.New("backchannel: a back-channel logout URI must not have a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return Registration{}, errors.New("backchannel: a back-channel logout URI must use https (http only on loopback)")
		}
	default:
		return Registration{}, fmt.Errorf("backchannel: unsupported scheme %q", u.Scheme)
	}
	return Registration{BackchannelLogoutURI: u.String(), BackchannelLogoutSessionRequired: r.cfg.SessionRequired}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
