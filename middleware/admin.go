package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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

// Errors returned by admin actions.
var (
	// ErrNoActor: an action without Action.Actor.
	ErrNoActor = errors.New("sessionfence: an administrative action needs an actor")
	// ErrKeepNotCovered: Action.Keep names a session the scope does not cover.
	ErrKeepNotCovered = errors.New("sessionfence: the session to keep is not covered by the scope")
)

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
	if err := a.check(scope, act); err != nil {
		return ActionResult{}, err
	}
	b := Bump{Kind: BumpRevoke, Policy: act.Policy, Reason: act.Reason, TTL: a.ttl(scope)}
	action := terminateVerb(scope)
	if !act.At.IsZero() {
		b.Kind, b.At, action = BumpAnnounce, act.At, "announce"
	}
	affected := a.count(ctx, scope)
	f, err := a.bump(ctx, scope, b)
	if err != nil {
		return ActionResult{}, fmt.Errorf("sessionfence: %s %s: %w", action, scope, err)
	}
	res := ActionResult{Fence: f}
	if act.Keep != nil {
		// The caller's cookie is re-issued from the bump's own result, in
		// the same step, so the caller is never locked out by their own
		// action. For an announcement it records the generation that will
		// be in force after the effective time (see Guard.judge).
		keep := *act.Keep
		gen := f.Gen
		if b.Kind == BumpAnnounce {
			gen = f.Reserved
		}
		keep.gens[int(scope.Kind)-1] = gen
		res.Cookie = a.g.cookie(&keep)
		if affected > 0 {
			affected--
		}
	}
	entry := AuditEntry{
		Actor: act.Actor, Action: action, Scope: scope.String(), Reason: act.Reason,
		Policy: act.Policy.String(), Generation: f.Gen, Affected: affected,
		RequestID: act.RequestID, ClientIP: act.ClientIP,
	}
	if b.Kind == BumpAnnounce {
		at := act.At.UTC()
		entry.EffectiveAt = &at
	}
	if act.Keep != nil {
		entry.KeptSession = act.Keep.ID
	}
	if b.Kind == BumpRevoke {
		entry.Notes = a.revokeTokens(ctx, scope)
		if scope.Kind == ScopeSession && a.reg != nil {
			// Best effort: the registry is advisory.
			if err := a.reg.ForgetSession(ctx, SessionInfo{ID: scope.ID}); err != nil {
				a.log.WarnContext(ctx, "sessionfence: session registry update failed", "session", scope.ID, "cause", err.Error())
			}
		}
	}
	res.Entry = a.record(ctx, entry)
	return res, nil
}

// Cancel withdraws an announced termination of scope before its time.
// It fails with [ErrNothingPending] when none is pending.
func (a *Admin) Cancel(ctx context.Context, scope Scope, act Action) (ActionResult, error) {
	if err := a.check(scope, act); err != nil {
		return ActionResult{}, err
	}
	f, err := a.bump(ctx, scope, Bump{Kind: BumpCancel, Reason: act.Reason, TTL: a.ttl(scope)})
	if err != nil {
		return ActionResult{}, fmt.Errorf("sessionfence: cancel %s: %w", scope, err)
	}
	res := ActionResult{Fence: f}
	if act.Keep != nil && act.Keep.gens[int(scope.Kind)-1] != f.Gen {
		// A caller kept through the announcement recorded the generation
		// that will now never come: bring them back to the current one.
		keep := *act.Keep
		keep.gens[int(scope.Kind)-1] = f.Gen
		res.Cookie = a.g.cookie(&keep)
	}
	res.Entry = a.record(ctx, AuditEntry{
		Actor: act.Actor, Action: "cancel", Scope: scope.String(), Reason: act.Reason,
		Generation: f.Gen, Affected: -1, RequestID: act.RequestID, ClientIP: act.ClientIP,
	})
	return res, nil
}

// Reload moves the reload generation of scope: no one is signed out, but
// the next request of every covered session runs Config.OnReload and gets
// a re-issued cookie. This is how a permission change takes effect now.
func (a *Admin) Reload(ctx context.Context, scope Scope, act Action) (ActionResult, error) {
	if err := a.check(scope, act); err != nil {
		return ActionResult{}, err
	}
	f, err := a.bump(ctx, scope, Bump{Kind: BumpReload, Reason: act.Reason, TTL: a.ttl(scope)})
	if err != nil {
		return ActionResult{}, fmt.Errorf("sessionfence: reload %s: %w", scope, err)
	}
	res := ActionResult{Fence: f}
	res.Entry = a.record(ctx, AuditEntry{
		Actor: act.Actor, Action: "reload", Scope: scope.String(), Reason: act.Reason,
		Generation: f.Gen, Affected: a.count(ctx, scope), RequestID: act.RequestID, ClientIP: act.ClientIP,
	})
	return res, nil
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

// Record appends an audit entry for an action taken outside Admin (a
// back-channel logout, a user's own logout) and logs it.
func (a *Admin) Record(ctx context.Context, e AuditEntry) AuditEntry { return a.record(ctx, e) }

// ErrNotSupported: the store lacks the optional ability an operation needs.
var ErrNotSupported = errors.New("sessionfence: the store does not support this operation")

func (a *Admin) check(scope Scope, act Action) error {
	if strings.TrimSpace(act.Actor) == "" {
		return ErrNoActor
	}
	if !scope.Valid() {
		return fmt.Errorf("%w: %v", ErrInvalidScope, scope)
	}
	if act.Policy > PolicyMFA {
		return fmt.Errorf("%w: unknown policy", ErrInvalidBump)
	}
	if act.Keep != nil && !covers(scope, act.Keep) {
		return ErrKeepNotCovered
	}
	return nil
}

// covers reports whether scope applies to session s.
func covers(scope Scope, s *Session) bool {
	var ss [numScopes]Scope
	s.scopes(&ss)
	i := int(scope.Kind) - 1
	return i >= 0 && i < numScopes && ss[i] == scope
}

// ttl gives fences that only matter while sessions they cover can live a
// lifetime: session fences the absolute lifetime (plus a margin), IdP
// session tombstones Config.IdPSessionTTL; the others are kept for ever.
func (a *Admin) ttl(scope Scope) time.Duration {
	switch scope.Kind {
	case ScopeSession:
		return a.g.cfg.AbsoluteLifetime + time.Hour
	case ScopeIdPSession:
		return a.g.cfg.IdPSessionTTL
	}
	return 0
}

func (a *Admin) count(ctx context.Context, scope Scope) int {
	if a.reg == nil {
		return -1
	}
	n, ok, err := a.reg.CountSessions(ctx, scope)
	if err != nil || !ok {
		if scope.Kind == ScopeSession {
			return 1
		}
		return -1
	}
	return n
}

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

func (a *Admin) record(ctx context.Context, e AuditEntry) AuditEntry {
	if e.Time.IsZero() {
		e.Time = a.g.now().UTC()
	}
	if a.audit != nil {
		stored, err := a.audit.AppendAudit(ctx, e)
		if err != nil {
			e.Notes = append(e.Notes, "audit log write failed: "+err.Error())
			a.log.ErrorContext(ctx, "sessionfence: audit log write failed", "action", e.Action, "scope", e.Scope, "cause", err.Error())
		} else {
			e = stored
		}
	}
	attrs := []slog.Attr{
		slog.String("actor", e.Actor), slog.String("action", e.Action), slog.String("scope", e.Scope),
		slog.String("reason", e.Reason), slog.String("policy", e.Policy), slog.Uint64("generation", e.Generation),
		slog.Int("affected", e.Affected),
	}
	if e.EffectiveAt != nil {
		attrs = append(attrs, slog.Time("effective_at", *e.EffectiveAt))
	}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	a.log.LogAttrs(ctx, slog.LevelWarn, "sessionfence: administrative action", attrs...)
	return e
}

// bump applies b through the store and reports it to the observer.
func (a *Admin) bump(ctx context.Context, scope Scope, b Bump) (Fence, error) {
	o := a.g.cfg.Observer
	start := observeStart(o)
	f, err := a.store.Bump(ctx, scope, b)
	observeStore(o, StoreOpBump, start, err)
	if err == nil {
		observeBump(o, b.Kind, scope.Kind)
	}
	return f, err
}

func terminateVerb(scope Scope) string {
	switch scope.Kind {
	case ScopeGlobal:
		return "terminate_all"
	case ScopeTenant:
		return "terminate_tenant"
	case ScopeSubject:
		return "terminate_user"
	case ScopeIdPSession:
		return "terminate_idp_session"
	}
	return "terminate_session"
}
