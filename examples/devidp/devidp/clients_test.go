package devidp_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
)

func TestParseClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec string
		want []devidp.Client
	}{
		{"empty spec is no client", "  ", nil},
		{
			"every field, with ports and lists",
			"demo:demo-secret:http://127.0.0.1:8080/callback|http://127.0.0.1:8081/callback:http://127.0.0.1:8080/|http://127.0.0.1:8081/:http://127.0.0.1:8080/backchannel-logout",
			[]devidp.Client{{
				ID: "demo", Secret: "demo-secret",
				RedirectURIs:           []string{"http://127.0.0.1:8080/callback", "http://127.0.0.1:8081/callback"},
				PostLogoutRedirectURIs: []string{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/"},
				BackchannelLogoutURI:   "http://127.0.0.1:8080/backchannel-logout",
			}},
		},
		{
			"public client with trailing fields left out",
			"spa::https://app.example/cb",
			[]devidp.Client{{ID: "spa", RedirectURIs: []string{"https://app.example/cb"}}},
		},
		{
			"secret starting with a digit and an IPv6 literal",
			"a:123:http://[::1]:3000/cb::http://[::1]:3000/bc",
			[]devidp.Client{{ID: "a", Secret: "123", RedirectURIs: []string{"http://[::1]:3000/cb"}, BackchannelLogoutURI: "http://[::1]:3000/bc"}},
		},
		{
			"several clients separated by white space",
			"a:s:http://a.test/cb\n\tb:t:http://b.test/cb",
			[]devidp.Client{
				{ID: "a", Secret: "s", RedirectURIs: []string{"http://a.test/cb"}},
				{ID: "b", Secret: "t", RedirectURIs: []string{"http://b.test/cb"}},
			},
		},
		{
			"back-channel only",
			"api:s:::http://api.test/bc",
			[]devidp.Client{{ID: "api", Secret: "s", BackchannelLogoutURI: "http://api.test/bc"}},
		},
	}
	for _, tt := range tests {
		got, err := devidp.ParseClients(tt.spec)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestParseClientsRefusals(t *testing.T) {
	t.Parallel()
	for name, spec := range map[string]string{
		"empty id":           ":s:http://a.test/cb",
		"relative redirect":  "a:s:/cb",
		"other scheme":       "a:s:ftp://a.test/cb",
		"empty list member":  "a:s:http://a.test/cb||http://a.test/cb2",
		"fragment":           "a:s:http://a.test/cb#x",
		"too many fields":    "a:s:http://a.test/cb:http://a.test/:http://a.test/bc:http://a.test/more",
		"duplicate client":   "a:s:http://a.test/cb a:t:http://a.test/cb",
		"back-channel list":  "a:s:::http://a.test/bc|http://a.test/bc2",
		"no scheme in field": "a:s:a.test/cb",
		"id only":            "a",
		"id and secret only": "a:s",
		"no URI at all":      "a:s:::",
	} {
		if got, err := devidp.ParseClients(spec); !errors.Is(err, devidp.ErrInvalidConfig) {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
}
