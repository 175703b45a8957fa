package fakeidp

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"time"
)

// Claim sets are built as maps rather than structs so that quirks and
// tests can add, change or remove any claim, including registered ones.

// signingKeyLocked returns the key that signs issued tokens: the current
// one, or an unpublished one under Quirks.UnpublishedKey.
func (p *Provider) signingKeyLocked(q Quirks) (Key, error) {
	if q.UnpublishedKey {
		return p.unpublishedKey()
	}
	return p.keys[0], nil
}

// userClaims are the profile claims shared by ID tokens, access tokens and
// /userinfo. Extra claims go first so the named fields win over them.
func userClaims(u User) map[string]any {
	c := map[string]any{}
	for k, v := range u.Claims {
		c[k] = v
	}
	for k, v := range map[string]string{"email": u.Email, "name": u.Name, "tenant": u.Tenant} {
		if v != "" {
			c[k] = v
		}
	}
	return c
}

// authnClaims adds auth_time, acr, amr and sid, minus what quirks omit.
func authnClaims(c map[string]any, a authentication, q Quirks) {
	c["acr"] = a.acr
	c["amr"] = a.amr
	if !q.OmitAuthTime {
		c["auth_time"] = a.authTime.Unix()
	}
	if !q.OmitSID {
		c["sid"] = a.sid
	}
}

// override applies a quirk's extra claims; nil removes.
func override(c map[string]any, extra map[string]any) {
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
}

// accessTokenLocked mints an RFC 9068 JWT access token. Caller holds p.mu.
func (p *Provider) accessTokenLocked(g *grant, u User, q Quirks) (string, error) {
	now := p.now()
	exp := now.Add(p.cfg.accessTTL)
	if q.ExpiredAccessToken {
		now, exp = now.Add(-p.cfg.accessTTL-time.Minute), now.Add(-time.Minute)
	}
	c := userClaims(u)
	c["iss"] = p.issuer
	c["sub"] = g.authn.subject
	c["aud"] = p.cfg.apiAudience
	c["client_id"] = g.clientID
	c["iat"] = now.Unix()
	c["exp"] = exp.Unix()
	c["jti"] = randomID(16)
	c["scope"] = g.scope
	authnClaims(c, g.authn, q)
	override(c, q.ExtraAccessTokenClaims)

	typ := "at+jwt"
	if q.PlainJWTAccessToken {
		typ = "JWT"
	}
	k, err := p.signingKeyLocked(q)
	if err != nil {
		return "", err
	}
	return signJWT(k.Signer, k.Alg, map[string]any{"kid": k.ID, "typ": typ}, c)
}

// idTokenLocked mints an ID token bound to access through at_hash. Caller
// holds p.mu.
func (p *Provider) idTokenLocked(g *grant, u User, nonce, access string, refresh bool, q Quirks) (string, error) {
	k, err := p.signingKeyLocked(q)
	if err != nil {
		return "", err
	}
	now := p.now()
	exp := now.Add(p.cfg.idTTL)
	if q.ExpiredIDToken {
		now, exp = now.Add(-p.cfg.idTTL-time.Minute), now.Add(-time.Minute)
	}
	c := userClaims(u)
	c["iss"] = p.issuer
	c["sub"] = g.authn.subject
	c["aud"] = g.clientID
	c["iat"] = now.Unix()
	c["exp"] = exp.Unix()
	authnClaims(c, g.authn, q)
	c["at_hash"] = atHash(k.Alg, access)

	if q.WrongIssuer {
		c["iss"] = wrongIssuer
	}
	if q.WrongAudience {
		c["aud"] = "some-other-client"
	}
	if refresh && q.RefreshOtherSubject {
		c["sub"] = g.authn.subject + "-other"
	}
	if q.WrongAtHash {
		c["at_hash"] = atHash(k.Alg, access+"x")
	}
	// A refresh-time ID token has no nonce: the nonce binds the token to
	// one authorization request, which the refresh is not.
	switch {
	case refresh || q.OmitNonce:
	case q.WrongNonce:
		c["nonce"] = "wrong-" + nonce
	case nonce != "":
		c["nonce"] = nonce
	}
	override(c, q.ExtraIDTokenClaims)
	return signJWT(k.Signer, k.Alg, map[string]any{"kid": k.ID, "typ": "JWT"}, c)
}

// atHash is OpenID Connect's at_hash: the left half of the hash of the
// access token, with the hash that matches the signing algorithm (SHA-512
// for EdDSA with Ed25519, as go-oidc expects).
func atHash(alg, accessToken string) string {
	var h hash.Hash
	switch alg {
	case "EdDSA":
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// AccessTokenClaims returns the claim set of a valid access token for u,
// issued now to clientID, as if u had just logged in with a password in a
// new session: iss, sub, aud (the API audience), client_id, iat, exp, jti,
// scope "openid", auth_time, acr, amr, sid, and u's profile claims. Tests
// for bearer-token checks modify it and sign it with
// [Provider.SignAccessToken]. It does not create a session at the provider.
func (p *Provider) AccessTokenClaims(clientID string, u User) map[string]any {
	now := p.now().Truncate(time.Second)
	c := userClaims(u)
	c["iss"] = p.issuer
	c["sub"] = u.Subject
	c["aud"] = p.cfg.apiAudience
	c["client_id"] = clientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(p.cfg.accessTTL).Unix()
	c["jti"] = randomID(16)
	c["scope"] = "openid"
	authnClaims(c, authentication{subject: u.Subject, sid: randomID(16), authTime: now, acr: PasswordACR, amr: []string{"pwd"}}, Quirks{})
	return c
}

// SignAccessToken signs claims with the current key and the RFC 9068 header
// typ "at+jwt", as the provider signs the access tokens it issues.
func (p *Provider) SignAccessToken(claims map[string]any) string {
	return p.Sign(map[string]any{"typ": "at+jwt"}, claims)
}
