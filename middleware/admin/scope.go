package admin

import (
	"fmt"
	"strings"

	"github.com/sessionfence/sessionfence/middleware"
)

// fenceKinds are the scope kinds that have a fence, in the order of
// [middleware.ScopeKind]; "epoch" names none.
var fenceKinds = []middleware.ScopeKind{
	middleware.ScopeGlobal, middleware.ScopeTenant, middleware.ScopeSubject,
	middleware.ScopeIdPSession, middleware.ScopeSession,
}

// fenceKind parses a scope kind name ([middleware.ScopeKind.String]) of a
// kind that has a fence.
func fenceKind(name string) (middleware.ScopeKind, bool) {
	for _, k := range fenceKinds {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

// ParseScope is the inverse of [middleware.Scope.String]: "global",
// "tenant:<tenant>", "subject:<issuer>|<sub>", "idp_session:<issuer>|<sid>"
// or "session:<id>". The issuer ends at the first '|' (an issuer is a URL,
// which cannot contain an unescaped '|'), so a subject may itself contain
// '|', as some providers' subjects do ("auth0|123").
//
// The HTTP API and the CLI use it for fence queries. The result is always
// [middleware.Scope.Valid]; anything else (including "epoch", which is not
// a fence) returns an error wrapping [middleware.ErrInvalidScope].
func ParseScope(s string) (middleware.Scope, error) {
	name, rest, hasRest := strings.Cut(s, ":")
	kind, ok := fenceKind(name)
	if !ok {
		return middleware.Scope{}, fmt.Errorf("%w: unknown scope kind %q", middleware.ErrInvalidScope, name)
	}
	var sc middleware.Scope
	switch kind {
	case middleware.ScopeGlobal:
		if hasRest {
			return middleware.Scope{}, fmt.Errorf("%w: global takes no identifier", middleware.ErrInvalidScope)
		}
		sc = middleware.GlobalScope()
	case middleware.ScopeTenant:
		sc = middleware.TenantScope(rest)
	case middleware.ScopeSession:
		sc = middleware.SessionScope(rest)
	default: // subject, idp_session
		iss, id, ok := strings.Cut(rest, "|")
		if !ok {
			return middleware.Scope{}, fmt.Errorf("%w: %s needs <issuer>|<id>", middleware.ErrInvalidScope, kind)
		}
		sc = middleware.Scope{Kind: kind, Issuer: iss, ID: id}
	}
	if !sc.Valid() {
		return middleware.Scope{}, fmt.Errorf("%w: %q", middleware.ErrInvalidScope, s)
	}
	return sc, nil
}
