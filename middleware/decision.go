package middleware

import (
	"fmt"
	"net/http"
	"time"
)

// DecisionKind is the outcome of checking one credential.
type DecisionKind uint8

// The decision kinds. Only [DecisionAllowed] lets a request through.
const (
	// DecisionAllowed: the credential is valid and no fence refuses it.
	DecisionAllowed DecisionKind = iota + 1
	// DecisionNoSession: no credential was presented.
	DecisionNoSession
	// DecisionInvalid: the credential could not be opened or parsed
	// (tampered, truncated, oversized, unknown key). Cause says which, for
	// logs only: it carries the cookie codec's internal errors, which are
	// not part of the API. The one callers can test for is an oversized
	// cookie: errors.Is(d.Cause, [ErrCookieTooLarge]).
	DecisionInvalid
	// DecisionRevoked: a fence moved after the credential was issued;
	// Scope says which. The next login may be an ordinary one.
	DecisionRevoked
	// DecisionReauthRequired: revoked, and the fence demands a fresh
	// authentication (Policy says whether MFA is needed) at the next login.
	DecisionReauthRequired
	// DecisionAccessExpired: the short-lived access part has expired but
	// the session is otherwise valid; it can be renewed.
	DecisionAccessExpired
	// DecisionSessionExpired: the absolute lifetime is over, or renewal was
	// refused by the provider.
	DecisionSessionExpired
	// DecisionStoreUnavailable: the fences could not be read or trusted
	// and the failure policy does not allow answering from older values.
	DecisionStoreUnavailable
)

var decisionNames = [...]string{"", "allowed", "no_session", "invalid_session", "revoked",
	"reauth_required", "access_expired", "session_expired", "store_unavailable"}

// String returns the stable code of the kind, used as the "error" member of
// JSON refusals, in redirect reasons, logs and metrics.
func (k DecisionKind) String() string {
	if int(k) < len(decisionNames) && k != 0 {
		return decisionNames[k]
	}
	return "unknown"
}

// Decision is the typed outcome of [Guard.Check], [Guard.Authenticate] and
// [Guard.CheckToken]. Revoked is a decision, not an error.
type Decision struct {
	Kind DecisionKind
	// Scope is the fence that refused the credential (Revoked,
	// ReauthRequired); the first one in the order global, tenant, subject,
	// IdP session, session when several did.
	Scope Scope
	// Policy is the strictest login policy among the refusing fences.
	Policy Policy
	// FenceTime is when the refusing fence took effect (store clock).
	FenceTime time.Time
	// Session is the opened session for Allowed and AccessExpired (and,
	// for logs, for refusals after the cookie opened). Nil otherwise.
	Session *Session
	// Token is the bearer token's claims for decisions of CheckToken.
	Token *TokenClaims
	// Notice announces a termination that will end this session later;
	// nil when none is pending.
	Notice *Notice
	// Reload reports that a reload generation moved since the session was
	// issued; Authenticate handles it through Config.OnReload.
	Reload bool
	// Stale reports that the fences came from the bounded-staleness cache
	// because the store could not be reached.
	Stale bool
	// Cookie, set by Authenticate, is a re-issued session cookie (after a
	// renewal or reload) or a clearing cookie (after a refusal) that the
	// adapter must send with the response.
	Cookie *http.Cookie
	// Cause carries the underlying error for logs (never for clients).
	Cause error

	reloads [numScopes]uint64 // current reload generations, for re-issue
	seq     uint64            // the store's bump sequence number read, for re-issue
}

// Allowed reports whether the decision lets the request through.
func (d Decision) Allowed() bool { return d.Kind == DecisionAllowed }

// String summarises the decision for logs.
func (d Decision) String() string {
	switch d.Kind {
	case DecisionRevoked, DecisionReauthRequired:
		return fmt.Sprintf("%s by %s (next login: %s)", d.Kind, d.Scope, d.Policy)
	}
	if d.Cause != nil {
		return fmt.Sprintf("%s: %v", d.Kind, d.Cause)
	}
	return d.Kind.String()
}

// Notice describes an announced termination that covers a session.
type Notice struct {
	At     time.Time
	Scope  Scope
	Policy Policy
	Reason string
}

// Header names of an announced termination (see [Decision.SetHeaders]).
const (
	headerTermination       = "Sessionfence-Termination"
	headerTerminationScope  = "Sessionfence-Termination-Scope"
	headerTerminationPolicy = "Sessionfence-Termination-Policy"
	headerTerminationReason = "Sessionfence-Termination-Reason"
)

// RevokedError is returned by [Guard.Issue] when a fence refuses the new
// session: the IdP session was logged out (a tombstone), or the login's
// token predates a fence on its user.
type RevokedError struct {
	Scope Scope
}

// Error implements error.
func (e *RevokedError) Error() string {
	return "sessionfence: login refused: " + e.Scope.String() + " was revoked"
}

// ReauthRequiredError is returned by [Guard.Issue] (and the OIDC callback)
// when a fence demands a fresh authentication, or multi-factor
// authentication, that the login did not prove. MaxAge and ACR are what
// to ask the provider for on the retry (max_age, acr_values).
type ReauthRequiredError struct {
	Scope     Scope
	Policy    Policy
	FenceTime time.Time
	MaxAge    time.Duration
	ACR       []string
	// Reason says which check failed: "auth_time" or "mfa".
	Reason string
}

// Error implements error.
func (e *ReauthRequiredError) Error() string {
	return fmt.Sprintf("sessionfence: login refused: %s requires a fresh %s authentication (%s check failed)",
		e.Scope, e.Policy, e.Reason)
}

// CookieTooLargeError is returned by [Guard.Issue] and [Guard.Reissue], and
// is the Cause of the session_expired decision that ends a renewal or a
// reload, when a session would seal to a cookie that could not be used:
// one of its strings is longer than a session cookie may carry (2048
// bytes), or the sealed value is longer than browsers keep once the
// cookie's name is counted (4096 bytes for name and value together; see
// [MaxCookieLen]). Sealing such a cookie would make every later request
// refused, and a browser loop through silent logins; refusing it keeps
// the failure at the login, where it can be reported. It wraps
// [ErrCookieTooLarge].
type CookieTooLargeError struct {
	// Field is the session's string at fault (ID, Issuer, Subject,
	// Tenant, IdPSession, ACR, AMR, Data or Epoch), or "cookie" when the
	// strings fit one by one but the sealed value does not.
	Field string
	// Size is the length in bytes of that string or sealed value, and
	// Limit the most that is accepted.
	Size, Limit int
}

// Error implements error.
func (e *CookieTooLargeError) Error() string {
	return fmt.Sprintf("sessionfence: session cannot be sealed: %s is %d bytes, more than %d", e.Field, e.Size, e.Limit)
}

// Unwrap returns [ErrCookieTooLarge].
func (e *CookieTooLargeError) Unwrap() error { return ErrCookieTooLarge }
