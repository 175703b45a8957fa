package devidp_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
)

// A development provider for the demo's client. A real program serves it
// with http.ListenAndServe("127.0.0.1:9000", s); here a recorder reads the
// discovery document.
func ExampleNew() {
	s, err := devidp.New(devidp.Config{
		Issuer:  "http://127.0.0.1:9000",
		Clients: []devidp.Client{devidp.DefaultClient()},
	})
	if err != nil {
		log.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:9000/.well-known/openid-configuration", nil))
	var d struct {
		Issuer string   `json:"issuer"`
		ACR    []string `json:"acr_values_supported"`
		Algs   []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(rec.Body).Decode(&d); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Code, d.Issuer)
	fmt.Println(d.ACR, d.Algs)
	for _, u := range s.Users() {
		fmt.Println(u.Subject, u.Password, u.MFA)
	}
	// Output:
	// 200 http://127.0.0.1:9000
	// [urn:sessionfence:pwd urn:sessionfence:mfa] [ES256]
	// alice dev true
	// bob dev true
	// carol dev false
}

// The compact client list of DEVIDP_CLIENTS: the colons of URIs (scheme,
// port, IPv6) do not separate fields.
func ExampleParseClients() {
	clients, err := devidp.ParseClients(
		"web:web-secret:http://127.0.0.1:8080/callback:http://127.0.0.1:8080/:http://127.0.0.1:8080/backchannel-logout " +
			"spa::http://[::1]:3000/cb|http://localhost:3000/cb")
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range clients {
		fmt.Printf("%s secret=%q redirects=%v post_logout=%v backchannel=%q\n",
			c.ID, c.Secret, c.RedirectURIs, c.PostLogoutRedirectURIs, c.BackchannelLogoutURI)
	}
	// Output:
	// web secret="web-secret" redirects=[http://127.0.0.1:8080/callback] post_logout=[http://127.0.0.1:8080/] backchannel="http://127.0.0.1:8080/backchannel-logout"
	// spa secret="" redirects=[http://[::1]:3000/cb http://localhost:3000/cb] post_logout=[] backchannel=""
}
