package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Admin performs administrative actions on fences: terminate everyone, a
// tenant, a user or a session, announce and cancel terminations, and move
// reload generations. Every action appends an audit entry (when the store
// keeps an audit log) and is logged through slog. Admin does not decide
// who may act: the HTTP API asks an authorization hook first, and the CLI
// is for operators who already hold the store's credentials.
//
// An Admin is safe for concurrent use. Build it with [NewAdmin].
type Admin struct {
	g       *Guard
	store   Store
	audit   AuditLog // nil when the store keeps none
	reg     Registry // nil when the store keeps none
	revoker TokenRevoker
	log     *slog.Logger
}

// AdminConfig configures an [Admin].
type AdminConfig struct {
	// Guard whose store and cookies the actions apply to. Required.
	Guard *Guard
	// TokenRevoker, when set, is asked to revoke the refresh tokens of
	// sessions ended by terminate-user and terminate-session (the oidc
	// package provides one that calls the provider's revocation
	// endpoint). Best effort: failures are recorded in the audit entry.
	TokenRevoker TokenRevoker
}

// TokenRevoker revokes server-side credentials (refresh tokens) of ended
// sessions at their provider.
type TokenRevoker interface {
	// RevokeSessionTokens revokes what is held for the given session ids
	// and returns how many were revoked; errors are reported per session
	// but do not stop the others.
	RevokeSessionTokens(ctx context.Context, sessionIDs []string) (revoked int, err error)
}

// NewAdmin returns an Admin over cfg.Guard's store.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Guard == nil {
		return nil, errors.New("sessionfence: AdminConfig.Guard is nil")
	}
	a := &Admin{g: cfg.Guard, store: cfg.Guard.Store(), revoker: cfg.TokenRevoker, log: cfg.Guard.log}
	a.audit, _ = a.store.(AuditLog)
	a.reg, _ = a.store.(Registry)
	return a, nil
}

// Action describes who acts, why, and what the next login must prove.
type Action struct {
	// Actor identifies who acts (e.g. "https://idp|alice", "cli:root").
	// Required: an anonymous action is refused.
	Actor string
	// Reason is free text kept in the audit log and shown in
	// announcements. Up to MaxReasonLen bytes are kept on the fence.
	Reason string
	// Policy is what the next login must prove.
	Policy Policy
	// At, when in the future, announces the termination for that time
	// instead of acting now. Zero acts now.
	At time.Time
	// Keep is the caller's own session, to be kept through the action:
	// the result carries its cookie re-issued under the new generation.
	Keep *Session
	// RequestID and ClientIP are recorded in the audit entry.
	RequestID string
	ClientIP  string
}

// ActionResult is what an action did.
type ActionResult struct {
	// Entry is the audit entry recorded for the action.
	Entry AuditEntry
	// Fence is the fence after the action.
	Fence Fence
	// Cookie is the caller's session cookie re-issued under the new
	// generation, when Action.Keep was set and covered by the scope. Send
	// it with the same response.
	Cookie *http.Cookie
}

// TerminateAll signs out every session and bearer token (announced for
// act.At when that is in the future), keeping act.Keep if set.
func (a *Admin) TerminateAll(ctx context.Context, act Action) (ActionResult, error) {
	return a.Terminate(ctx, GlobalScope(), act)
}

// TerminateTenant signs out every session of one workspace.
func (a *Admin) TerminateTenant(ctx context.Context, tenant string, act Action) (ActionResult, error) {
	return a.Terminate(ctx, TenantScope(tenant), act)
}

// TerminateUser signs out one user on every device: cookie sessions and
// bearer tokens issued before now.
func (a *Admin) TerminateUser(ctx context.Context, issuer, subject string, act Action) (ActionResult, error) {
	return a.Terminate(ctx, SubjectScope(issuer, subject), act)
}

// TerminateSession signs out one of our sessions.
func (a *Admin) TerminateSession(ctx context.Context, sessionID string, act Action) (ActionResult, error) {
	return a.Terminate(ctx, SessionScope(sessionID), act)
}

// Terminate bumps the fence of scope now, or announces it for act.At.
// Nothing changes on error.
func (a *Admin) Terminate(ctx context.Context, scope Scope, act Action) (ActionResult, error) {
	c := a.change(scope, act, BumpRevoke)
	if !act.At.IsZero() {
		c.Kind, c.At = BumpAnnounce, act.At
	} else {
		c.Then = func(ctx context.Context, _ Fence) []string { return a.revokeTokens(ctx, scope) }
	}
	return a.write(ctx, c)
}

// Cancel withdraws an announced termination of scope before its time.
// It fails with [ErrNothingPending] when none is pending. A caller kept
// through the announcement (act.Keep) gets a cookie for the fence as it
// now stands.
func (a *Admin) Cancel(ctx context.Context, scope Scope, act Action) (ActionResult, error) {
	return a.write(ctx, a.change(scope, act, BumpCancel))
}

// Reload moves the reload generation of scope: no one is signed out, but
// the next request of every covered session runs Config.OnReload and gets
// a re-issued cookie. This is how a permission change takes effect now.
func (a *Admin) Reload(ctx context.Context, scope Scope, act Action) (ActionResult, error) {
	act.Keep = nil
	return a.write(ctx, a.change(scope, act, BumpReload))
}

func (a *Admin) change(scope Scope, act Action, kind BumpKind) Change {
	return Change{
		Scope: scope, Kind: kind, Policy: act.Policy, Reason: act.Reason, Actor: act.Actor,
		Keep: act.Keep, RequestID: act.RequestID, ClientIP: act.ClientIP,
	}
}

func (a *Admin) write(ctx context.Context, c Change) (ActionResult, error) {
	w, err := a.g.Writer().Write(ctx, c)
	if err != nil {
		return ActionResult{}, err
	}
	return ActionResult{Entry: w.Entry, Fence: w.Fence, Cookie: w.Cookie}, nil
}

// Fences returns the current fences of scopes and the store epoch.
func (a *Admin) Fences(ctx context.Context, scopes ...Scope) ([]Fence, string, error) {
	for _, s := range scopes {
		if !s.Valid() {
			return nil, "", fmt.Errorf("%w: %v", ErrInvalidScope, s)
		}
	}
	out := make([]Fence, len(scopes))
	v, err := a.store.Fences(ctx, scopes, out)
	return out, v.Epoch, err
}

// Audit returns a page of the audit log, newest first. It fails with
// [ErrNotSupported] when the store keeps no audit log.
func (a *Admin) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, string, error) {
	if a.audit == nil {
		return nil, "", ErrNotSupported
	}
	return a.audit.Audit(ctx, q)
}

// Sessions lists the live sessions of one user. It fails with
// [ErrNotSupported] when the store keeps no session registry.
func (a *Admin) Sessions(ctx context.Context, issuer, subject string) ([]SessionInfo, error) {
	if a.reg == nil {
		return nil, ErrNotSupported
	}
	return a.reg.Sessions(ctx, issuer, subject)
}

// ErrNotSupported: the store lacks the optional ability an operation needs.
var ErrNotSupported = errors.New("sessionfence: the store does not support this operation")

// revokeTokens asks the TokenRevoker to revoke refresh tokens of the
// sessions a revocation ended, when they can be listed (one user or one
// session). It returns notes for the audit entry.
func (a *Admin) revokeTokens(ctx context.Context, scope Scope) []string {
	if a.revoker == nil {
		return nil
	}
	var ids []string
	switch scope.Kind {
	case ScopeSession:
		ids = []string{scope.ID}
	case ScopeSubject:
		if a.reg == nil {
			return []string{"refresh tokens not revoked at the provider: no session registry to find them"}
		}
		list, err := a.reg.Sessions(ctx, scope.Issuer, scope.ID)
		if err != nil {
			return []string{"refresh tokens not revoked at the provider: " + err.Error()}
		}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
	default:
		// Global and tenant terminations may cover millions of sessions.
		// Their refresh tokens live only sealed in the store, never in a
		// browser, and every renewal checks the fences first, so they can
		// no longer be used; they expire with their sessions.
		return nil
	}
	if len(ids) == 0 {
		return nil
	}
	n, err := a.revoker.RevokeSessionTokens(ctx, ids)
	if err != nil {
		return []string{fmt.Sprintf("revoked %d of %d refresh tokens at the provider; failures: %v", n, len(ids), err)}
	}
	return []string{fmt.Sprintf("revoked %d refresh tokens at the provider", n)}
}
