package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// Service performs administrative actions on fences: terminate everyone, a
// tenant, a user or a session, announce and cancel terminations, and move
// reload generations. Every action goes through the core's one fence
// writer ([middleware.Writer]), which applies the expiry rule, keeps the
// caller's session when asked, reports to the observer and appends the
// audit entry. Service does not decide who may act: the HTTP API ([API])
// asks an [AuthorizeFunc] first, and the CLI is for operators who already
// hold the store's credentials.
//
// A Service is safe for concurrent use. Build it with [New].
type Service struct {
	w       *middleware.Writer
	g       *middleware.Guard // nil for a Service over a bare Writer
	store   middleware.Store
	audit   middleware.AuditLog // nil when the store keeps none
	reg     middleware.Registry // nil when the store keeps none
	revoker TokenRevoker
}

// Config configures a [Service]. Set Guard (applications) or Writer
// (tools that hold no cookie keys, such as the CLI), not both.
type Config struct {
	// Guard is the application's guard: the Service writes through
	// [middleware.Guard.Writer], so it can keep the caller's session
	// (Action.Keep), and an [API] can be built over it.
	Guard *middleware.Guard
	// Writer is a fence writer made by [middleware.NewWriter], for tools
	// without cookie keys. Such a Service refuses Action.Keep (with an
	// error wrapping [middleware.ErrKeepUnsupported]) and cannot serve
	// the HTTP API. Its fences last as long as the deployment's guards
	// recorded in the store; with nothing recorded, session fences are
	// kept for ever.
	Writer *middleware.Writer
	// TokenRevoker, when set, is asked to revoke the refresh tokens of
	// sessions ended by terminate-user and terminate-session (the oidc
	// package's RP is one: it calls the provider's revocation endpoint).
	// Best effort: failures are recorded in the audit entry.
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

// Errors of this package.
var (
	// ErrNotSupported: the store lacks the optional ability an operation
	// needs (an audit log, a session registry).
	ErrNotSupported = errors.New("sessionfence/admin: the store does not support this operation")
	// ErrInvalidConfig is wrapped by every configuration error of [New]
	// and [NewAPI].
	ErrInvalidConfig = errors.New("sessionfence/admin: invalid config")
)

// New returns a Service over cfg.Guard's writer or cfg.Writer.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Guard != nil && cfg.Writer != nil:
		return nil, fmt.Errorf("%w: set Config.Guard or Config.Writer, not both", ErrInvalidConfig)
	case cfg.Guard != nil:
		cfg.Writer = cfg.Guard.Writer()
	case cfg.Writer == nil:
		return nil, fmt.Errorf("%w: Config.Guard or Config.Writer is required", ErrInvalidConfig)
	}
	s := &Service{w: cfg.Writer, g: cfg.Guard, store: cfg.Writer.Store(), revoker: cfg.TokenRevoker}
	s.audit, _ = s.store.(middleware.AuditLog)
	s.reg, _ = s.store.(middleware.Registry)
	return s, nil
}

// Action describes who acts, why, and what the next login must prove.
type Action struct {
	// Actor identifies who acts (e.g. "https://idp|alice", "cli:root").
	// Required: an anonymous action is refused with
	// [middleware.ErrNoActor].
	Actor string
	// Reason is free text kept in the audit log and shown in
	// announcements. Up to [middleware.MaxReasonLen] bytes are kept on
	// the fence.
	Reason string
	// Policy is what the next login must prove.
	Policy middleware.Policy
	// At, when set, announces the termination for that time instead of
	// acting now; it must be in the future by the store's clock. Zero
	// acts now.
	At time.Time
	// Keep is the caller's own session, to be kept through the action:
	// the result carries its cookie re-issued for the fence after the
	// change. Only a Service built with Config.Guard can keep sessions.
	Keep *middleware.Session
	// RequestID and ClientIP are recorded in the audit entry.
	RequestID string
	ClientIP  string
}

// Result is what an action did.
type Result struct {
	// Entry is the audit entry recorded for the action.
	Entry middleware.AuditEntry
	// Fence is the fence after the action.
	Fence middleware.Fence
	// Cookie is the caller's session cookie re-issued for the new fence,
	// when Action.Keep was set and kept. Send it with the same response.
	Cookie *http.Cookie
}

// TerminateAll signs out every session and bearer token (announced for
// act.At when set), keeping act.Keep if set.
func (s *Service) TerminateAll(ctx context.Context, act Action) (Result, error) {
	return s.Terminate(ctx, middleware.GlobalScope(), act)
}

// TerminateTenant signs out every session of one workspace.
func (s *Service) TerminateTenant(ctx context.Context, tenant string, act Action) (Result, error) {
	return s.Terminate(ctx, middleware.TenantScope(tenant), act)
}

// TerminateUser signs out one user on every device: cookie sessions and
// bearer tokens issued before now.
func (s *Service) TerminateUser(ctx context.Context, issuer, subject string, act Action) (Result, error) {
	return s.Terminate(ctx, middleware.SubjectScope(issuer, subject), act)
}

// TerminateSession signs out one of our sessions.
func (s *Service) TerminateSession(ctx context.Context, sessionID string, act Action) (Result, error) {
	return s.Terminate(ctx, middleware.SessionScope(sessionID), act)
}

// Terminate revokes the fence of scope now, or announces its revocation
// for act.At. Nothing changes on error.
func (s *Service) Terminate(ctx context.Context, scope middleware.Scope, act Action) (Result, error) {
	c := change(scope, act, middleware.BumpRevoke)
	if !act.At.IsZero() {
		c.Kind, c.At = middleware.BumpAnnounce, act.At
	} else {
		c.Then = func(ctx context.Context, _ middleware.Fence) []string { return s.revokeTokens(ctx, scope) }
	}
	return s.write(ctx, c)
}

// Cancel withdraws an announced termination of scope before its time.
// It fails with [middleware.ErrNothingPending] when none is pending. A
// caller kept through the announcement (act.Keep) gets a cookie for the
// fence as it now stands.
func (s *Service) Cancel(ctx context.Context, scope middleware.Scope, act Action) (Result, error) {
	act.At = time.Time{}
	return s.write(ctx, change(scope, act, middleware.BumpCancel))
}

// Reload moves the reload generation of scope: no one is signed out, but
// the next request of every covered session runs the guard's OnReload and
// gets a re-issued cookie. This is how a permission change takes effect
// now. act.Keep and act.At are ignored.
func (s *Service) Reload(ctx context.Context, scope middleware.Scope, act Action) (Result, error) {
	act.Keep, act.At = nil, time.Time{}
	return s.write(ctx, change(scope, act, middleware.BumpReload))
}

func change(scope middleware.Scope, act Action, kind middleware.BumpKind) middleware.Change {
	return middleware.Change{
		Scope: scope, Kind: kind, Policy: act.Policy, Reason: act.Reason, Actor: act.Actor,
		Keep: act.Keep, RequestID: act.RequestID, ClientIP: act.ClientIP,
	}
}

func (s *Service) write(ctx context.Context, c middleware.Change) (Result, error) {
	w, err := s.w.Write(ctx, c)
	if err != nil {
		return Result{}, err
	}
	return Result{Entry: w.Entry, Fence: w.Fence, Cookie: w.Cookie}, nil
}

// Fences returns the current fences of scopes and the store epoch.
func (s *Service) Fences(ctx context.Context, scopes ...middleware.Scope) ([]middleware.Fence, string, error) {
	for _, sc := range scopes {
		if !sc.Valid() {
			return nil, "", fmt.Errorf("%w: %v", middleware.ErrInvalidScope, sc)
		}
	}
	out := make([]middleware.Fence, len(scopes))
	v, err := s.store.Fences(ctx, scopes, out)
	return out, v.Epoch, err
}

// Audit returns a page of the audit log, newest first. It fails with
// [ErrNotSupported] when the store keeps no audit log.
func (s *Service) Audit(ctx context.Context, q middleware.AuditQuery) ([]middleware.AuditEntry, string, error) {
	if s.audit == nil {
		return nil, "", ErrNotSupported
	}
	return s.audit.Audit(ctx, q)
}

// Sessions lists the live sessions of one user. It fails with
// [ErrNotSupported] when the store keeps no session registry.
func (s *Service) Sessions(ctx context.Context, issuer, subject string) ([]middleware.SessionInfo, error) {
	if s.reg == nil {
		return nil, ErrNotSupported
	}
	return s.reg.Sessions(ctx, issuer, subject)
}

// revokeTokens asks the TokenRevoker to revoke refresh tokens of the
// sessions a revocation ended, when they can be listed (one user or one
// session). It returns notes for the audit entry.
func (s *Service) revokeTokens(ctx context.Context, scope middleware.Scope) []string {
	if s.revoker == nil {
		return nil
	}
	var ids []string
	switch scope.Kind {
	case middleware.ScopeSession:
		ids = []string{scope.ID}
	case middleware.ScopeSubject:
		if s.reg == nil {
			return []string{"refresh tokens not revoked at the provider: no session registry to find them"}
		}
		list, err := s.reg.Sessions(ctx, scope.Issuer, scope.ID)
		if err != nil {
			return []string{"refresh tokens not revoked at the provider: " + err.Error()}
		}
		for _, si := range list {
			ids = append(ids, si.ID)
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
	n, err := s.revoker.RevokeSessionTokens(ctx, ids)
	if err != nil {
		return []string{fmt.Sprintf("revoked %d of %d refresh tokens at the provider; failures: %v", n, len(ids), err)}
	}
	return []string{fmt.Sprintf("revoked %d refresh tokens at the provider", n)}
}
