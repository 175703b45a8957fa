package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/internal/httpx"
	"github.com/sessionfence/sessionfence/middleware"
)

// Login is a verified login, handed to Config.OnLogin before the session
// is issued.
type Login struct {
	// Provider is the name of the provider the user logged in with.
	Provider string
	// Claims will become the session. OnLogin may set Tenant and Data;
	// the identity and authentication fields (Issuer, Subject,
	// IdPSession, AuthTime, ACR, AMR, TokenIssuedAt) come from the ID
	// token and are restored after the hook.
	Claims middleware.Claims

	payload []byte
}

// IDTokenClaims decodes every claim of the verified ID token into v, for
// applications that map roles or groups into Claims.Data.
func (l *Login) IDTokenClaims(v any) error { return json.Unmarshal(l.payload, v) }

// CallbackHandler returns the handler for the provider's redirect back
// (mount it at the path of every provider's RedirectURL, outside the
// guard's middleware). It checks the login state (cookie bound to this
// browser, matching, fresh, used once), the RFC 9207 iss parameter,
// exchanges the code with the PKCE verifier, verifies the ID token
// (signature, iss, aud, azp, exp, iat, nonce, at_hash), and issues the
// session through the guard, which refuses a login that a fence forbids.
//
// When a fence demands a fresh authentication (or MFA) that the ID token
// does not prove, the handler retries once with the strongest request
// (prompt=login, max_age=0, and the MFA acr_values for an MFA policy); if
// that still falls short (a provider ignoring prompt, a user without a
// second factor), it answers with the error page, 403, never with another
// redirect, so a login can never loop.
//
// On success the session cookie is set and the browser is sent (303) to
// the return_to of the login. The refresh token and ID token stay on the
// server (see the package documentation).
func (rp *RP) CallbackHandler() http.Handler {
	return http.HandlerFunc(rp.callback)
}

func (rp *RP) callback(w http.ResponseWriter, r *http.Request) {
	httpx.NoStore(w.Header())
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		rp.fail(w, r, StepRequest, http.StatusMethodNotAllowed, errors.New("callback requires GET (response_mode=query)"))
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	st, err := rp.takeState(w, r, q.Get("state"))
	if err != nil {
		if errors.Is(err, middleware.ErrStoreUnavailable) {
			rp.fail(w, r, StepStore, http.StatusServiceUnavailable, err)
			return
		}
		rp.fail(w, r, StepState, http.StatusBadRequest, err)
		return
	}
	p := rp.byName[st.Provider]
	if p == nil {
		rp.fail(w, r, StepState, http.StatusBadRequest, errors.New("login state names an unknown provider"))
		return
	}
	// RFC 9207: with several providers, iss tells which one answered, so
	// a response from another provider (mix-up attack) is refused.
	if iss := q.Get("iss"); iss != "" && iss != p.cfg.Issuer {
		rp.fail(w, r, StepProvider, http.StatusBadRequest, errors.New("authorization response iss does not match the provider (mix-up)"))
		return
	} else if iss == "" && p.issParam {
		rp.fail(w, r, StepProvider, http.StatusBadRequest, errors.New("authorization response lacks the iss parameter the provider advertises"))
		return
	}
	if e := q.Get("error"); e != "" {
		status := http.StatusForbidden
		if e == "server_error" || e == "temporarily_unavailable" {
			status = http.StatusBadGateway
		}
		rp.fail(w, r, StepProvider, status, errors.New("provider returned error "+e+": "+q.Get("error_description")))
		return
	}
	code := q.Get("code")
	if code == "" {
		rp.fail(w, r, StepRequest, http.StatusBadRequest, errors.New("callback without code or error"))
		return
	}
	tok, err := p.oauth.Exchange(rp.clientContext(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		status := http.StatusBadGateway
		if re := (*oauth2.RetrieveError)(nil); errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			status = http.StatusBadRequest // code expired, replayed, or PKCE mismatch
		}
		rp.fail(w, r, StepExchange, status, err)
		return
	}
	// From here on the provider has issued tokens; a refused login must
	// not leave a live refresh token behind at the provider.
	refused := true
	defer func() {
		if refused {
			rp.discard(ctx, p, tok.RefreshToken)
		}
	}()
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		rp.fail(w, r, StepIDToken, http.StatusBadGateway, &TokenError{Kind: kindIDToken, Check: CheckClaims, Err: errors.New("token response has no id_token")})
		return
	}
	idt, err := rp.verifyIDToken(ctx, p, rawID, st.Nonce, tok.AccessToken)
	if err != nil {
		rp.fail(w, r, StepIDToken, http.StatusForbidden, err)
		return
	}
	c := idt.claims
	claims := middleware.Claims{
		Issuer: c.Issuer, Subject: c.Subject, Tenant: idt.tenant, IdPSession: c.SID,
		AuthTime: c.AuthTime.time(), ACR: c.ACR, AMR: []string(c.AMR), TokenIssuedAt: c.IssuedAt.time(),
	}
	if rp.cfg.OnLogin != nil {
		l := &Login{Provider: p.cfg.Name, Claims: claims, payload: idt.payload}
		if err := rp.cfg.OnLogin(ctx, l); err != nil {
			rp.fail(w, r, StepHook, http.StatusForbidden, err)
			return
		}
		claims.Tenant, claims.Data = l.Claims.Tenant, l.Claims.Data
	}

	if _, ok := middleware.ClientInfoFrom(ctx); !ok {
		// The session registry records the device that logged in.
		ctx = middleware.WithClientInfo(ctx, middleware.ClientInfoFromRequest(r))
	}
	s, cookie, err := rp.guard.Issue(ctx, claims)
	var reauth *middleware.ReauthRequiredError
	var revoked *middleware.RevokedError
	switch {
	case err == nil:
	case errors.As(err, &reauth) && st.Attempt == 0:
		// The provider answered from its SSO session, or without the
		// factor the fence demands. Ask once more, as strongly as the
		// protocol allows; the retry is marked so it cannot repeat.
		rp.log.InfoContext(ctx, "sessionfence/oidc: login does not meet a fence's re-authentication demand; retrying once",
			"provider", p.cfg.Name, "sub", c.Subject, "scope", reauth.Scope.String(), "policy", reauth.Policy.String(), "check", reauth.Reason)
		retry := &loginState{
			State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
			Provider: p.cfg.Name, ReturnTo: st.ReturnTo, Attempt: 1, Created: rp.now().Unix(), ACR: st.ACR,
		}
		rp.redirectToProvider(w, r, p, retry, loginOptions{}, max(reauth.Policy, middleware.PolicyFreshLogin))
		return
	case errors.As(err, &reauth):
		rp.fail(w, r, StepReauth, http.StatusForbidden, errors.Join(ErrReauthNotPerformed, err))
		return
	case errors.As(err, &revoked):
		rp.fail(w, r, StepRevoked, http.StatusForbidden, err)
		return
	case errors.Is(err, middleware.ErrStoreUnavailable):
		rp.fail(w, r, StepStore, http.StatusServiceUnavailable, err)
		return
	default:
		rp.fail(w, r, StepRequest, http.StatusForbidden, err)
		return
	}

	if rp.secrets != nil {
		rec := &secretRecord{Session: s.ID, Provider: p.cfg.Name, IDToken: rawID, RenewedAt: s.IssuedAt.Unix(), TokenTenant: idt.tenant}
		if rp.cfg.Refresh == RefreshServerSide {
			rec.RefreshToken = tok.RefreshToken
			if rec.RefreshToken == "" {
				rp.log.WarnContext(ctx, "sessionfence/oidc: the provider issued no refresh token; the session must log in again when its access part expires (request offline_access?)",
					"provider", p.cfg.Name)
			}
		}
		if err := rp.putSecret(ctx, rec, s.AbsoluteExpiry); err != nil {
			// Without the record the session could not renew or be logged
			// out at the provider; refuse it now rather than fail later.
			rp.fail(w, r, StepStore, http.StatusServiceUnavailable, err)
			return
		}
	}
	refused = false
	http.SetCookie(w, cookie)
	rp.log.InfoContext(ctx, "sessionfence/oidc: login", "provider", p.cfg.Name, "sub", s.Subject, "session", s.ID,
		"acr", s.ACR, "auth_time", s.AuthTime.Format(time.RFC3339))
	http.Redirect(w, r, st.ReturnTo, http.StatusSeeOther)
}

// discard revokes, best effort, a refresh token we will not keep: one
// issued for a login that was then refused, or one rotated by a renewal
// of a session revoked meanwhile.
func (rp *RP) discard(ctx context.Context, p *provider, refreshToken string) {
	if refreshToken == "" || p.revocation == "" {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revocationTimeout)
	defer cancel()
	if err := rp.revokeAtProvider(rctx, p, refreshToken); err != nil {
		rp.log.WarnContext(ctx, "sessionfence/oidc: revoking a refresh token that is not kept", "provider", p.cfg.Name, "cause", err.Error())
	}
}

// compile-time check: the RP renews sessions for the guard.
var _ middleware.Renewer = (*RP)(nil)
