package fakeidp

import (
	"net/http"
	"strings"
)

// handleRevoke implements RFC 7009. A refresh token revokes its whole
// grant (every token of the rotation chain), so it then fails with
// invalid_grant; an access token is remembered by jti and refused by
// /userinfo (the relying party's own verification cannot know, which is the
// point of short access-token lifetimes).
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "POST required"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, badRequest("invalid_request", "malformed form body"))
		return
	}
	client, oerr := p.authenticateClient(r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, badRequest("invalid_request", "token is required"))
		return
	}
	rec := Revocation{ClientID: client.ID, Token: token, TypeHint: r.PostForm.Get("token_type_hint"), Kind: "unknown"}

	// A JWT is checked outside the lock: parseOwn takes it itself.
	var jti, atClient string
	if strings.Count(token, ".") == 2 {
		if c, typ, err := p.parseOwn(token); err == nil && (typ == "at+jwt" || c.ClientID != "") {
			jti, atClient = c.ID, c.ClientID
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.grants[token]; g != nil {
		// RFC 7009 §2.1: a client may only revoke its own tokens.
		if g.clientID != client.ID {
			writeOAuthError(w, badRequest("unauthorized_client", "token was issued to another client"))
			return
		}
		g.revoked = true
		rec.Kind = "refresh_token"
	} else if jti != "" {
		if atClient != client.ID {
			writeOAuthError(w, badRequest("unauthorized_client", "token was issued to another client"))
			return
		}
		p.revokedJTI[jti] = true
		rec.Kind = "access_token"
	}
	p.revoked = append(p.revoked, rec)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleUserinfo answers a bearer access token with the user's current
// profile. Failures follow RFC 6750 §3.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	deny := func(desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
	}
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fakeidp"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	c, typ, err := p.parseOwn(raw)
	// Our access tokens are recognised by client_id too, so that the
	// PlainJWTAccessToken quirk only fools relying parties, not /userinfo.
	if err != nil || (typ != "at+jwt" && c.ClientID == "") {
		deny("not an access token of this provider")
		return
	}
	if c.Expiry == nil || !p.now().Before(c.Expiry.Time()) {
		deny("expired")
		return
	}
	p.mu.Lock()
	revoked := p.revokedJTI[c.ID]
	u, known := p.users[c.Subject]
	p.mu.Unlock()
	if revoked || !known {
		deny("revoked")
		return
	}
	claims := userClaims(u)
	claims["sub"] = u.Subject
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, claims)
}
