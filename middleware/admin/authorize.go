package admin

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// Op is an operation of the HTTP API, as an [AuthorizeFunc] is asked about
// it. The set is closed: the constants below are every value.
// Terminations of each scope, cancels and reloads are separate operations
// so a policy can, for instance, let support staff end one user's
// sessions but not everyone's.
type Op uint8

// Operations. Each names its endpoint ([Op.String]).
const (
	// OpTerminateAll ends (or announces the end of) every session; target:
	// the global scope.
	OpTerminateAll Op = iota + 1
	// OpTerminateTenant ends one tenant's sessions; target: that tenant.
	OpTerminateTenant
	// OpTerminateUser ends one user's sessions; target: that subject.
	OpTerminateUser
	// OpTerminateSession ends one session; target: that session.
	OpTerminateSession
	// OpCancel withdraws an announced termination; target: its scope.
	OpCancel
	// OpReload moves a reload generation; target: its scope.
	OpReload
	// OpSessions lists one user's sessions; target: the subject scope.
	OpSessions
	// OpAudit reads the audit log; target: the global scope.
	OpAudit
	// OpFences reads fences; target: each scope asked for, one call each.
	OpFences
	// OpConsole is asked by GET me to report whether the caller is an
	// administrator (target: the global scope); it grants nothing by
	// itself.
	OpConsole
)

var opNames = [...]string{"", "terminate-all", "terminate-tenant", "terminate-user", "terminate-session",
	"cancel", "reload", "sessions", "audit", "fences", "console"}

// String returns the operation's stable name, its endpoint's
// ("terminate-all", ..., "console").
func (o Op) String() string {
	if o != 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "unknown"
}

// Request is what an [AuthorizeFunc] is asked to allow: an operation on a
// target scope and, for terminations, how. It is validated before the
// hook runs, so its fields are well formed.
type Request struct {
	// Op is the operation.
	Op Op
	// Target is the scope it applies to.
	Target middleware.Scope
	// At is, for a termination, the time it is announced for; zero for
	// one that acts now (and for every other operation). See
	// [Request.Announced].
	At time.Time
	// Policy is, for a termination, what the next login must prove.
	Policy middleware.Policy
	// Keep reports whether the caller's own session is to be kept
	// through the change.
	Keep bool
}

// Announced reports whether r announces a termination for a later time
// (users are warned and can save their work) rather than acting now.
func (r Request) Announced() bool { return !r.At.IsZero() }

// AuthorizeFunc decides whether session s may make request r. It runs
// after the request is authenticated and its input validated, before
// anything changes; ctx is the request's context. A nil error allows. Any
// other error refuses with 403 "forbidden", except one wrapping
// [middleware.ErrStoreUnavailable] (what the hook consults is down),
// which answers 503 so a client retries.
type AuthorizeFunc func(ctx context.Context, s *middleware.Session, r Request) error

// ErrForbidden is what [DenyAll] and the helpers return when they refuse.
var ErrForbidden = errors.New("sessionfence/admin: forbidden")

// DenyAll is the default [AuthorizeFunc]: it refuses everything.
func DenyAll(context.Context, *middleware.Session, Request) error { return ErrForbidden }

// AllowIfDataContains allows a session whose Data (application data, a
// JSON object) holds, under key, either the string value or an array of
// strings containing value. key may be a dotted path into nested objects
// ("realm_access.roles"). Comparison is exact: "admin" does not match
// "administrator" or "admin readonly". Sessions whose Data is empty or not
// a JSON object are refused. The request is not considered: combine with
// your own AuthorizeFunc for finer rules.
func AllowIfDataContains(key, value string) AuthorizeFunc {
	path := strings.Split(key, ".")
	return func(_ context.Context, s *middleware.Session, _ Request) error {
		if s == nil || s.Data == "" || key == "" {
			return ErrForbidden
		}
		var v any
		if err := json.Unmarshal([]byte(s.Data), &v); err != nil {
			return ErrForbidden
		}
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return ErrForbidden
			}
			if v, ok = m[p]; !ok {
				return ErrForbidden
			}
		}
		switch x := v.(type) {
		case string:
			if x == value {
				return nil
			}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok && s == value {
					return nil
				}
			}
		}
		return ErrForbidden
	}
}

// AllowSubjects allows the sessions of the listed subjects at issuer (a
// break-glass list of named administrators). With no subjects it refuses
// everything.
func AllowSubjects(issuer string, subs ...string) AuthorizeFunc {
	allowed := slices.Clone(subs)
	return func(_ context.Context, s *middleware.Session, _ Request) error {
		if s == nil || issuer == "" || s.Issuer != issuer || !slices.Contains(allowed, s.Subject) {
			return ErrForbidden
		}
		return nil
	}
}

// AnyOf allows what any of fns allows. With no functions it refuses
// everything. A function's error other than a refusal (one wrapping
// [middleware.ErrStoreUnavailable]) is returned when no function allows.
func AnyOf(fns ...AuthorizeFunc) AuthorizeFunc {
	fns = slices.Clone(fns)
	return func(ctx context.Context, s *middleware.Session, r Request) error {
		err := ErrForbidden
		for _, fn := range fns {
			if fn == nil {
				continue
			}
			e := fn(ctx, s, r)
			if e == nil {
				return nil
			}
			if errors.Is(e, middleware.ErrStoreUnavailable) {
				err = e
			}
		}
		return err
	}
}
