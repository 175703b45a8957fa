package middleware

import (
	"context"
	"errors"
	"time"
)

// AuditEntry records one administrative action or automated revocation.
// Entries never contain secrets or raw tokens.
type AuditEntry struct {
	// ID is assigned by the log when the entry is appended; it orders
	// entries and serves as the pagination cursor.
	ID string `json:"id"`
	// Time is when the action was taken (the store's clock where
	// available).
	Time time.Time `json:"time"`
	// Actor identifies who acted: an administrator's issuer|sub, "cli:<user>",
	// or "backchannel:<issuer>" for provider-initiated logouts.
	Actor string `json:"actor"`
	// Action is a stable verb: terminate_all, terminate_tenant,
	// terminate_user, terminate_session, announce, cancel, reload,
	// backchannel_logout, logout.
	Action string `json:"action"`
	// Scope is the fence acted on, as [Scope.String].
	Scope string `json:"scope"`
	// Reason is the operator's free-text reason.
	Reason string `json:"reason,omitempty"`
	// Policy is the login policy set on the fence.
	Policy string `json:"policy,omitempty"`
	// EffectiveAt is the time an announced termination takes effect.
	EffectiveAt *time.Time `json:"effective_at,omitempty"`
	// Generation is the fence's revocation generation after the action.
	Generation uint64 `json:"generation"`
	// Affected is the number of live sessions the action touched when a
	// session registry knows it, else -1.
	Affected int `json:"affected"`
	// RequestID and ClientIP identify the request that caused the action.
	RequestID string `json:"request_id,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"`
	// KeptSession is the caller's session id when terminate-all kept it.
	KeptSession string `json:"kept_session,omitempty"`
	// Notes carries failures of best-effort follow-ups (such as refresh
	// token revocation at the provider).
	Notes []string `json:"notes,omitempty"`
}

// AuditQuery selects a page of the audit log, newest first.
type AuditQuery struct {
	// Before is a cursor: only entries older than the entry with this ID.
	// Empty starts from the newest.
	Before string
	// Limit bounds the page size; zero or more than 500 means 100.
	Limit int
}

// ErrInvalidCursor is returned by [AuditLog.Audit] for a Before cursor the
// log never issued.
var ErrInvalidCursor = errors.New("sessionfence: malformed audit cursor")

// AuditLog is an optional ability of a store: an append-only, bounded log
// of administrative actions shared by every instance.
type AuditLog interface {
	// AppendAudit appends e, assigning e.ID (and e.Time if zero), and
	// returns the stored entry. The log keeps a bounded number of the
	// newest entries.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// Audit returns up to q.Limit entries older than q.Before, newest
	// first, and the cursor for the next page ("" when there is none).
	Audit(ctx context.Context, q AuditQuery) (entries []AuditEntry, next string, err error)
}

// SessionInfo describes one live session for listing and counting. The
// registry is advisory: revocation never depends on it.
type SessionInfo struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"sub"`
	Tenant    string    `json:"tenant,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	IP        string    `json:"ip,omitempty"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	// Expires is when the registry forgets the session (its absolute
	// expiry).
	Expires time.Time `json:"expires"`
}

// Registry is an optional ability of a store: live sessions per user, for
// listing ("your devices") and for the counts reported by terminate
// actions. Entries expire with their session; no sweeper job is needed
// (expired entries are dropped as they are touched or counted).
type Registry interface {
	// TrackSession records or refreshes s until s.Expires.
	TrackSession(ctx context.Context, s SessionInfo) error
	// ForgetSession drops one session (after logout or revocation). Only
	// s.ID is required; the other fields may be left empty.
	ForgetSession(ctx context.Context, s SessionInfo) error
	// Sessions lists the live sessions of one user, newest first.
	Sessions(ctx context.Context, issuer, subject string) ([]SessionInfo, error)
	// CountSessions returns the number of live sessions under a global,
	// tenant or subject scope, in time independent of the total number
	// of sessions where the backend allows it; ok is false for scopes
	// it does not count.
	CountSessions(ctx context.Context, scope Scope) (n int, ok bool, err error)
}
