package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// A session's provider tokens live server side, in the store's Secrets
// ability, under secretKey(session id), sealed with a sealer.Sealer whose
// key is derived for "refresh-token" from the guard's key ring:
//
//   - the refresh token never reaches the browser, so neither XSS nor a
//     stolen cookie yields a credential usable outside our servers;
//   - a leaked store (a backup, a replica, a MONITOR session) reveals only
//     ciphertext without the application's keys;
//   - every instance sees the rotated token as soon as it is written, and
//     a Locker lease makes one instance redeem it at a time;
//   - logout and revocation can delete it and revoke it at the provider.
//
// The record is bound to its session: the sealed plaintext carries the
// session id, checked on open, so a record copied under another key by
// someone with write access to the store does not open there.
type secretRecord struct {
	Session      string `json:"sid"`
	Provider     string `json:"p"`
	RefreshToken string `json:"rt,omitzero"`
	IDToken      string `json:"idt,omitzero"`
	// TokenTenant is the tenant claim of the login's ID token (when the
	// provider has a TenantClaim), which refresh-time ID tokens must
	// repeat. Kept apart from the session's Tenant, which OnLogin may set.
	TokenTenant string `json:"tt,omitzero"`
	// RenewedAt is the last successful redemption (or the login), unix
	// seconds, floored: the session cookie keeps whole seconds, and the
	// cross-instance re-check compares the two.
	RenewedAt int64 `json:"at"`
}

func secretKey(sessionID string) string { return "oidc/tokens/" + sessionID }
func lockName(sessionID string) string  { return "oidc/refresh/" + sessionID }

// errNoSecret: the store has no record for the session (logged out,
// expired, never stored).
var errNoSecret = errors.New("sessionfence/oidc: no server-side tokens for this session")

func (rp *RP) putSecret(ctx context.Context, rec *secretRecord, absolute time.Time) error {
	ttl := absolute.Sub(rp.now())
	if ttl <= 0 {
		return errors.New("sessionfence/oidc: session already past its absolute lifetime")
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return rp.secrets.PutSecret(ctx, secretKey(rec.Session), rp.secretSealer.Seal(b), ttl)
}

func (rp *RP) loadSecret(ctx context.Context, sessionID string) (*secretRecord, error) {
	v, ok, err := rp.secrets.Secret(ctx, secretKey(sessionID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoSecret
	}
	pt, err := rp.secretSealer.Open(v, nil)
	if err != nil {
		return nil, fmt.Errorf("sessionfence/oidc: opening server-side tokens: %w", err)
	}
	rec := new(secretRecord)
	if err := json.Unmarshal(pt, rec); err != nil {
		return nil, fmt.Errorf("sessionfence/oidc: decoding server-side tokens: %w", err)
	}
	if rec.Session != sessionID {
		return nil, errors.New("sessionfence/oidc: server-side tokens belong to another session")
	}
	return rec, nil
}

// retire deletes the session's server-side tokens and revokes its refresh
// token at the provider (RFC 7009) when the provider has a revocation
// endpoint. Best effort for the provider part: the refresh token never
// left our servers, so deleting our copy already makes it unusable. It
// returns the record it found (nil if none) for the logout hint.
func (rp *RP) retire(ctx context.Context, sessionID string) (*secretRecord, error) {
	if rp.secrets == nil {
		return nil, nil
	}
	rec, err := rp.loadSecret(ctx, sessionID)
	if err != nil && !errors.Is(err, errNoSecret) {
		rp.log.WarnContext(ctx, "sessionfence/oidc: reading server-side tokens before deletion", "session", sessionID, "cause", err.Error())
		rec = nil
	}
	if err := rp.secrets.DeleteSecret(ctx, secretKey(sessionID)); err != nil {
		return rec, err
	}
	if rec != nil && rec.RefreshToken != "" {
		if p := rp.byName[rec.Provider]; p != nil && p.revocation != "" {
			if err := rp.revokeAtProvider(ctx, p, rec.RefreshToken); err != nil {
				rp.log.WarnContext(ctx, "sessionfence/oidc: refresh token revocation at the provider failed", "session", sessionID,
					"provider", p.cfg.Name, "cause", err.Error())
			}
		}
	}
	return rec, nil
}

// revocationTimeout bounds one RFC 7009 call.
const revocationTimeout = 5 * time.Second

// revokeAtProvider sends an RFC 7009 revocation request for a refresh
// token, authenticating as the client the way x/oauth2 does by default
// (HTTP Basic with form-encoded credentials), or with client_id alone for
// a public client.
func (rp *RP) revokeAtProvider(ctx context.Context, p *provider, refreshToken string) error {
	ctx, cancel := context.WithTimeout(ctx, revocationTimeout)
	defer cancel()
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	if p.cfg.ClientSecret == "" {
		form.Set("client_id", p.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
	}
	resp, err := rp.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint answered %d", resp.StatusCode)
	}
	return nil
}

// onRevoked runs for every Revoked and ReauthRequired decision of the
// guard: the session can never be used again, so its server-side tokens
// are deleted and its refresh token revoked at the provider. This is how
// terminating a user (a subject or tenant fence) also reaches the
// provider's grants, lazily, for each session that comes back. It works in
// the background with its own deadline so the refused request is not
// delayed; the application's own OnRevoked hook runs first.
func (rp *RP) onRevoked(ctx context.Context, d middleware.Decision) {
	if rp.userRevoked != nil {
		rp.userRevoked(ctx, d)
	}
	if d.Session == nil {
		return
	}
	id := d.Session.ID
	select {
	case rp.retiring <- struct{}{}:
	default:
		// Enough clean-ups in flight: a flood of revoked cookies must not
		// become a flood of goroutines and provider calls. The record
		// expires with the session anyway.
		return
	}
	go func() {
		defer func() { <-rp.retiring }()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*revocationTimeout)
		defer cancel()
		if _, err := rp.retire(bctx, id); err != nil {
			rp.log.WarnContext(bctx, "sessionfence/oidc: deleting tokens of a revoked session", "session", id, "cause", err.Error())
		}
	}()
}
