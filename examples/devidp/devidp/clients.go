package devidp

import (
	"fmt"
	"strings"
)

// ParseClients parses the compact client list that DEVIDP_CLIENTS holds:
// clients separated by white space, each written
//
//	id:secret:redirect1|redirect2:post_logout1|post_logout2:backchannel_uri
//
// Trailing fields may be left out ("id:secret:redirect" is enough), any
// field but id may be empty ("spa::http://127.0.0.1:3000/cb" is a public
// client, "api:s:::http://127.0.0.1:8081/bc" only receives logout tokens)
// as long as there is a redirect or back-channel URI, and lists are
// separated by "|". The id and the secret cannot
// hold ":" or white space; in the URI fields a ":" that belongs to a URI
// (before "//", before a port number, or inside an IPv6 literal's
// brackets) does not separate fields. URIs must be absolute http or https
// URLs without fragment. An empty spec is no client.
func ParseClients(spec string) ([]Client, error) {
	var out []Client
	seen := map[string]bool{}
	for _, item := range strings.Fields(spec) {
		c, err := parseClient(item)
		if err != nil {
			return nil, fmt.Errorf("%w: client %q: %v", ErrInvalidConfig, item, err)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("%w: client %q listed twice", ErrInvalidConfig, c.ID)
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	return out, nil
}

func parseClient(item string) (Client, error) {
	id, rest, ok1 := strings.Cut(item, ":")
	secret, rest, ok2 := strings.Cut(rest, ":")
	switch {
	case !ok1 || !ok2:
		return Client{}, fmt.Errorf("want at least id:secret:redirect_uris")
	case id == "":
		return Client{}, fmt.Errorf("empty id")
	}
	c := Client{ID: id, Secret: secret}
	fields := splitURIFields(rest)
	if len(fields) > 3 {
		return Client{}, fmt.Errorf("%d fields after the secret, want at most 3 (redirects, post-logout redirects, back-channel URI)", len(fields))
	}
	lists := []*[]string{&c.RedirectURIs, &c.PostLogoutRedirectURIs}
	for i, f := range fields {
		if f == "" {
			continue
		}
		if i == 2 {
			if strings.Contains(f, "|") {
				return Client{}, fmt.Errorf("a client has one back-channel logout URI, got %q", f)
			}
			if err := checkURI(f); err != nil {
				return Client{}, err
			}
			c.BackchannelLogoutURI = f
			continue
		}
		for _, u := range strings.Split(f, "|") {
			if err := checkURI(u); err != nil {
				return Client{}, err
			}
			*lists[i] = append(*lists[i], u)
		}
	}
	if len(c.RedirectURIs) == 0 && c.BackchannelLogoutURI == "" {
		return Client{}, fmt.Errorf("neither a redirect URI nor a back-channel logout URI")
	}
	return c, nil
}

// splitURIFields splits s at the colons that separate fields, keeping
// those that belong to a URI: a scheme's (followed by "//"), a port's
// (followed by a digit; a field itself never starts with one, since it is
// empty or starts with a scheme), and those inside [IPv6] brackets.
func splitURIFields(s string) []string {
	if s == "" {
		return nil
	}
	var fields []string
	start, brackets := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			brackets++
		case ']':
			brackets = max(0, brackets-1)
		case ':':
			next := s[i+1:]
			if brackets > 0 || strings.HasPrefix(next, "//") || (next != "" && next[0] >= '0' && next[0] <= '9') {
				continue
			}
			fields = append(fields, s[start:i])
			start = i + 1
		}
	}
	return append(fields, s[start:])
}
