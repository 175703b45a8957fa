package middleware

import (
	"fmt"
	"strings"
)

// ParseScope is the inverse of [Scope.String]: "global",
// "tenant:<tenant>", "subject:<issuer>|<sub>", "idp_session:<issuer>|<sid>"
// or "session:<id>". The issuer ends at the first '|' (an issuer is a URL,
// which cannot contain an unescaped '|'), so a subject may itself contain
// '|', as some providers' subjects do ("auth0|123").
//
// The admin API and the CLI use it for fence queries. The result is always
// [Scope.Valid]; anything else (including "epoch", which is not a fence)
// returns an error wrapping [ErrInvalidScope].
func ParseScope(s string) (Scope, error) {
	name, rest, hasRest := strings.Cut(s, ":")
	kind, ok := ParseScopeKind(name)
	if !ok || kind == ScopeEpoch {
		return Scope{}, fmt.Errorf("%w: unknown scope kind %q", ErrInvalidScope, name)
	}
	var sc Scope
	switch kind {
	case ScopeGlobal:
		if hasRest {
			return Scope{}, fmt.Errorf("%w: global takes no identifier", ErrInvalidScope)
		}
		sc = GlobalScope()
	case ScopeTenant:
		sc = TenantScope(rest)
	case ScopeSession:
		sc = SessionScope(rest)
	case ScopeSubject, ScopeIdPSession:
		iss, id, ok := strings.Cut(rest, "|")
		if !ok {
			return Scope{}, fmt.Errorf("%w: %s needs <issuer>|<id>", ErrInvalidScope, kind)
		}
		sc = Scope{Kind: kind, Issuer: iss, ID: id}
	}
	if !sc.Valid() {
		return Scope{}, fmt.Errorf("%w: %q", ErrInvalidScope, s)
	}
	return sc, nil
}
