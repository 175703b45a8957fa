package oidc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/middleware"
)

// Renew implements [middleware.Renewer]: the guard calls it when the access
// part of a session has expired (one call per session per process however
// many requests race; see the core's renewal group). It redeems the
// session's server-side refresh token at the provider, so the provider's
// own revocation, account locks and policies decide whether the session
// goes on.
//
// Across instances, the work runs under a [middleware.Locker] lease named
// after the session, with its own deadline (Config.RefreshTimeout): inside
// it the record is reloaded and re-checked, and if another instance renewed
// it since this session's access window began, the refresh token (already
// rotated by that instance) is not redeemed again: the renewal simply
// succeeds. Otherwise the token is redeemed with x/oauth2 (a TokenSource
// built for this one call on the RP's HTTP client, never kept), the
// session is judged again against the store ([middleware.Guard.CheckSession]:
// a termination acknowledged while the provider answered is honoured), the
// rotated refresh token is persisted, and the session's acr and auth_time
// are updated when the new ID token reports them.
//
// Errors wrapping [middleware.ErrRenewalRefused] end the session: the
// provider answered invalid_grant (classified with errors.As on
// *oauth2.RetrieveError, never by message), the session has no refresh
// token, its absolute lifetime is over, the refresh-time ID token names
// another user, IdP session or tenant, or the session was revoked while
// the provider answered (the rotated token is then deleted and revoked at
// the provider, never stored). Other errors (provider or store
// unreachable, lease not obtained in time) leave the session renewable on
// a later request; but when the store cannot answer the re-check, the
// rotated token is not stored (the session may have been revoked), so with
// a provider that rotates refresh tokens the next renewal presents the old
// one, is refused, and the user logs in again.
func (rp *RP) Renew(ctx context.Context, s *middleware.Session) error {
	if rp.cfg.Refresh != RefreshServerSide || rp.secrets == nil || rp.locker == nil {
		return fmt.Errorf("%w: refresh is disabled", middleware.ErrRenewalRefused)
	}
	if !rp.now().Before(s.AbsoluteExpiry) {
		// The guard never renews past the absolute lifetime either; this
		// keeps the RP from redeeming a token for nothing.
		return fmt.Errorf("%w: absolute lifetime over", middleware.ErrRenewalRefused)
	}
	ctx, cancel := context.WithTimeout(ctx, rp.cfg.RefreshTimeout)
	defer cancel()
	unlock, err := rp.lease(ctx, s.ID)
	if err != nil {
		return err
	}
	defer func() {
		// Release with a fresh deadline: the renewal's may be spent.
		uctx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer c()
		if err := unlock(uctx); err != nil {
			rp.log.WarnContext(uctx, "sessionfence/oidc: releasing the refresh lease", "session", s.ID, "cause", err.Error())
		}
	}()

	rec, err := rp.loadSecret(ctx, s.ID)
	switch {
	case err == nil:
	case errors.Is(err, middleware.ErrStoreUnavailable):
		return err
	default:
		// No record (logged out, expired) or one that no longer opens
		// (keys rotated out): nothing to renew with.
		return fmt.Errorf("%w: %w", middleware.ErrRenewalRefused, err)
	}
	// Re-check under the lease: the access window of this copy of the
	// session began at AccessExpiry - AccessLifetime. A redemption after
	// that was made by another instance (or by an earlier request whose
	// new cookie never reached the browser); the provider has vouched for
	// the session within this window, and the token we hold is spent.
	windowStart := s.AccessExpiry.Add(-rp.guard.Config().AccessLifetime)
	if time.Unix(rec.RenewedAt, 0).After(windowStart) {
		rp.log.DebugContext(ctx, "sessionfence/oidc: session already renewed by another instance", "session", s.ID)
		return nil
	}
	if rec.RefreshToken == "" {
		return fmt.Errorf("%w: the session has no refresh token", middleware.ErrRenewalRefused)
	}
	p := rp.byName[rec.Provider]
	if p == nil {
		return fmt.Errorf("%w: provider %q is no longer configured", middleware.ErrRenewalRefused, rec.Provider)
	}

	// A TokenSource for this call only: it carries ctx (the RP's client,
	// this renewal's deadline) and is dropped when Renew returns.
	tok, err := p.oauth.TokenSource(rp.clientContext(ctx), &oauth2.Token{RefreshToken: rec.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			rp.forget(ctx, s.ID)
			return fmt.Errorf("%w: the provider refused the refresh token (invalid_grant)", middleware.ErrRenewalRefused)
		}
		return fmt.Errorf("sessionfence/oidc: refresh at %s: %w", p.cfg.Name, err)
	}
	if tok.RefreshToken != "" {
		rec.RefreshToken = tok.RefreshToken // rotated (x/oauth2 keeps the old one when none came back)
	}
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		if err := rp.applyRefreshedIDToken(ctx, p, s, rec, rawID, tok.AccessToken); err != nil {
			rp.forget(ctx, s.ID)
			return fmt.Errorf("%w: %w", middleware.ErrRenewalRefused, err)
		}
		rec.IDToken = rawID
	}
	// The redemption took a round trip to the provider (seconds, on a
	// slow one), and a termination may have been acknowledged meanwhile,
	// its clean-up having already deleted this record and revoked the old
	// token. Storing the rotated token now would bring back a credential
	// that no clean-up will ever revoke at the provider. So judge the
	// session again first, reading the store.
	if err := rp.recheckRenewal(ctx, p, s, rec); err != nil {
		return err
	}
	rec.RenewedAt = rp.now().Unix()
	if err := rp.putSecret(ctx, rec, s.AbsoluteExpiry); err != nil {
		// The rotated token is lost; the next attempt will present the
		// old one and the provider will refuse it, ending the session.
		rp.log.ErrorContext(ctx, "sessionfence/oidc: storing the rotated refresh token failed", "session", s.ID, "cause", err.Error())
		return err
	}
	return nil
}

// recheckRenewal decides, after the provider answered and before the
// rotated refresh token (rec.RefreshToken) is persisted, whether the
// session may still be renewed ([middleware.Guard.CheckSession]).
//
//   - Allowed (or AccessExpired: the cookie's access part is not renewed
//     yet): nil, persist.
//   - The store cannot answer: an error wrapping
//     [middleware.ErrStoreUnavailable], and nothing is persisted, since
//     the session may have been revoked. The session stays renewable in
//     name only: when the provider rotated the token, the new one is lost
//     with this call, and the next renewal presents the old one, which
//     the provider refuses (invalid_grant), ending the session. A store
//     outage during a renewal thus costs the user a new login; it never
//     keeps a token alive past a revocation.
//   - Anything else (revoked, re-authentication required, past the
//     absolute lifetime): the record is deleted, the token revoked at the
//     provider (best effort, failures logged), and the error wraps
//     [middleware.ErrRenewalRefused].
func (rp *RP) recheckRenewal(ctx context.Context, p *provider, s *middleware.Session, rec *secretRecord) error {
	d := rp.guard.CheckSession(ctx, s)
	switch d.Kind {
	case middleware.DecisionAllowed, middleware.DecisionAccessExpired:
		return nil
	case middleware.DecisionStoreUnavailable:
		rp.log.ErrorContext(ctx, "sessionfence/oidc: cannot re-check a renewed session; the rotated refresh token is dropped", "session", s.ID, "cause", d.Cause.Error())
		return fmt.Errorf("sessionfence/oidc: re-checking the session before storing its rotated refresh token: %w", d.Cause)
	}
	rp.forget(ctx, s.ID)
	rp.discard(ctx, p, rec.RefreshToken)
	return fmt.Errorf("%w: the session became %s while the provider renewed it", middleware.ErrRenewalRefused, d.Kind)
}

// applyRefreshedIDToken checks a refresh-time ID token (OpenID Connect Core
// 12.2: same iss and sub; no nonce) and takes the authentication facts it
// reports into s. A token for another user, IdP session or tenant ends the
// session: that is not a renewal but a different login.
func (rp *RP) applyRefreshedIDToken(ctx context.Context, p *provider, s *middleware.Session, rec *secretRecord, raw, accessToken string) error {
	idt, err := rp.verifyIDToken(ctx, p, raw, "", accessToken)
	if err != nil {
		return err
	}
	c := idt.claims
	switch {
	case c.Issuer != s.Issuer || c.Subject != s.Subject:
		return &TokenError{Kind: kindIDToken, Check: CheckSubject, Err: errors.New("refresh-time ID token names another user")}
	case c.SID != "" && s.IdPSession != "" && c.SID != s.IdPSession:
		return &TokenError{Kind: kindIDToken, Check: CheckSession, Err: errors.New("refresh-time ID token names another IdP session")}
	case p.cfg.TenantClaim != "" && idt.tenant != rec.TokenTenant:
		return &TokenError{Kind: kindIDToken, Check: CheckTenant, Err: errors.New("the user moved to another tenant")}
	}
	if c.ACR != "" {
		s.ACR = c.ACR
	}
	if at := c.AuthTime.time(); at.After(s.AuthTime) {
		s.AuthTime = at
	}
	return nil
}

// forget deletes the session's record after the provider refused it.
func (rp *RP) forget(ctx context.Context, id string) {
	if err := rp.secrets.DeleteSecret(ctx, secretKey(id)); err != nil {
		rp.log.WarnContext(ctx, "sessionfence/oidc: deleting a refused refresh token", "session", id, "cause", err.Error())
	}
}

// lease takes the session's refresh lease, waiting (with backoff, within
// ctx) while another instance holds it.
func (rp *RP) lease(ctx context.Context, id string) (func(context.Context) error, error) {
	// The lease outlives the renewal's deadline, so it cannot expire
	// while its holder still works; a crashed holder frees it soon after.
	ttl := rp.cfg.RefreshTimeout + 5*time.Second
	wait := 10 * time.Millisecond
	for {
		unlock, ok, err := rp.locker.TryLock(ctx, lockName(id), ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("sessionfence/oidc: waiting for another instance's renewal: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
