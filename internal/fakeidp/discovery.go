package fakeidp

import (
	"encoding/json"
	"net/http"
)

func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	algs := p.publishedAlgs()
	q := p.quirks
	p.mu.Unlock()
	issuer := p.issuer
	if q.WrongDiscoveryIssuer {
		issuer = wrongIssuer
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                     issuer,
		"authorization_endpoint":                     p.endpoint("/authorize"),
		"token_endpoint":                             p.endpoint("/token"),
		"jwks_uri":                                   p.endpoint("/keys"),
		"userinfo_endpoint":                          p.endpoint("/userinfo"),
		"end_session_endpoint":                       p.endpoint("/end_session"),
		"revocation_endpoint":                        p.endpoint("/revoke"),
		"response_types_supported":                   []string{"code"},
		"response_modes_supported":                   []string{"query"},
		"grant_types_supported":                      []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                    []string{"public"},
		"id_token_signing_alg_values_supported":      algs,
		"code_challenge_methods_supported":           []string{"S256"},
		"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                           []string{"openid", "email", "profile", "offline_access"},
		"claims_supported": []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "acr", "amr",
			"at_hash", "email", "name", "tenant",
		},
		"acr_values_supported":                           []string{PasswordACR, p.cfg.mfaACR},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"frontchannel_logout_supported":                  false,
		"authorization_response_iss_parameter_supported": true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
	})
}

// writeJSON writes v with status. Encoding errors cannot happen for the
// values the provider builds, and the status is already sent if they did.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
