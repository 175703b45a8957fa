package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/sessionfence/sessionfence/internal/httpx"
	"github.com/sessionfence/sessionfence/middleware"
)

// LogoutHandler returns the handler for RP-initiated logout (mount it as
// POST /logout, outside or inside the guard's middleware: it works for
// sessions that are already revoked or expired).
//
// It refuses, with 403, any request that is not provably from our own
// pages: the method must be POST, and Sec-Fetch-Site must be
// "same-origin", or, for browsers that do not send it, Origin must be one
// of ours (the origins of the providers' RedirectURLs and Config.Origins).
// A request with neither header is refused too: every browser that runs
// this site's pages sends one of them on a POST. This stops a third-party
// page from logging users out (logout CSRF), which would otherwise be an
// annoyance and a building block for login-CSRF attacks.
//
// For a session cookie that opens, it then:
//
//  1. bumps the session's own fence ([middleware.SessionScope]) with a TTL
//     of the absolute lifetime, so every copy of the cookie is dead on
//     every instance at once;
//  2. deletes the server-side tokens and revokes the refresh token at the
//     provider's revocation_endpoint (RFC 7009), best effort, when
//     discovery lists one;
//  3. clears the cookie;
//  4. redirects (303) to the provider's end_session_endpoint with
//     id_token_hint, client_id, post_logout_redirect_uri (when configured)
//     and a random state, so the provider's session ends too; or, when the
//     provider has no such endpoint, to Config.LoggedOutURL.
//
// If the fence cannot be written (store down), the cookie is still
// cleared, but the answer is the 503 error page: the user must know that
// other copies of the session were not ended.
func (rp *RP) LogoutHandler() http.Handler {
	return http.HandlerFunc(rp.logout)
}

func (rp *RP) logout(w http.ResponseWriter, r *http.Request) {
	httpx.NoStore(w.Header())
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		rp.fail(w, r, StepLogout, http.StatusMethodNotAllowed, errors.New("logout requires POST"))
		return
	}
	if err := rp.sameOrigin(r); err != nil {
		rp.fail(w, r, StepLogout, http.StatusForbidden, err)
		return
	}
	ctx := r.Context()
	http.SetCookie(w, rp.guard.ClearCookie())

	var s *middleware.Session
	if c, err := r.Cookie(rp.guard.CookieName()); err == nil {
		// The identity is needed even if the session is already revoked
		// or expired: this is not an authorization decision.
		s, _ = rp.guard.SessionFromCookie(c.Value)
	}
	if s == nil {
		http.Redirect(w, r, rp.cfg.LoggedOutURL, http.StatusSeeOther)
		return
	}
	if err := rp.guard.EndSession(ctx, s, "logout"); err != nil {
		rp.fail(w, r, StepStore, http.StatusServiceUnavailable, err)
		return
	}
	// The provider call must not be cut short by a user closing the tab.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*revocationTimeout)
	defer cancel()
	rec, err := rp.retire(rctx, s.ID)
	if err != nil {
		// The fence already ended the session; the record expires with it.
		rp.log.WarnContext(ctx, "sessionfence/oidc: deleting server-side tokens at logout", "session", s.ID, "cause", err.Error())
	}
	rp.log.InfoContext(ctx, "sessionfence/oidc: logout", "session", s.ID, "sub", s.Subject)

	p := rp.byIssuer[s.Issuer]
	if rec != nil && rp.byName[rec.Provider] != nil {
		p = rp.byName[rec.Provider]
	}
	if p == nil || p.endSession == "" {
		http.Redirect(w, r, rp.cfg.LoggedOutURL, http.StatusSeeOther)
		return
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		http.Redirect(w, r, rp.cfg.LoggedOutURL, http.StatusSeeOther)
		return
	}
	q := u.Query()
	if rec != nil && rec.IDToken != "" {
		q.Set("id_token_hint", rec.IDToken)
	}
	q.Set("client_id", p.cfg.ClientID)
	if p.cfg.PostLogoutRedirectURL != "" {
		q.Set("post_logout_redirect_uri", p.cfg.PostLogoutRedirectURL)
		q.Set("state", randomToken())
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// sameOrigin is the CSRF check of state-changing requests. It never looks
// at r.URL.Scheme (empty on server requests) or at r.Host (which a proxy
// may rewrite); it compares with the origins the RP was configured with.
func (rp *RP) sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site == "same-origin" {
			return nil
		}
		return errors.Join(ErrCrossSite, errors.New("Sec-Fetch-Site: "+site))
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return errors.Join(ErrCrossSite, errors.New("neither Sec-Fetch-Site nor Origin present"))
	}
	if origin != "null" && rp.origins[strings.ToLower(origin)] {
		return nil
	}
	return errors.Join(ErrCrossSite, errors.New("Origin "+origin+" is not ours"))
}
