package middleware

import "time"

// ScopeKind names the level at which a fence applies. The zero value is not a
// valid kind.
type ScopeKind uint8

// The scope kinds, from the widest to the narrowest. The order is also the
// order in which [Guard] reports the scope that refused a session when
// several fences moved at once.
const (
	// ScopeGlobal covers every session and bearer token the guard accepts.
	ScopeGlobal ScopeKind = iota + 1
	// ScopeTenant covers one workspace (the session's tenant claim).
	ScopeTenant
	// ScopeSubject covers one user of one issuer: every device, every session.
	ScopeSubject
	// ScopeIdPSession covers one session at the identity provider (issuer +
	// sid), which may back several of our sessions. A bumped IdP-session
	// fence is a tombstone: no session carrying that sid is ever accepted or
	// issued again while the fence lives.
	ScopeIdPSession
	// ScopeSession covers exactly one of our own sessions.
	ScopeSession
	// ScopeEpoch is not a fence: it is the scope reported when the store's
	// epoch differs from the one a session was issued under, i.e. the store
	// was wiped or replaced.
	ScopeEpoch
)

// numScopes is the number of fence positions a session records (global,
// tenant, subject, IdP session, session).
const numScopes = 5

var scopeNames = [...]string{"", "global", "tenant", "subject", "idp_session", "session", "epoch"}

// String returns the stable lower-case name used in logs, metrics, JSON and
// the stable error codes: "global", "tenant", "subject", "idp_session",
// "session", "epoch".
func (k ScopeKind) String() string {
	if int(k) < len(scopeNames) && k != 0 {
		return scopeNames[k]
	}
	return "unknown"
}

// Scope identifies one fence. It is comparable and can be used as a map key.
// Issuer is set only for [ScopeSubject] and [ScopeIdPSession]; ID holds the
// tenant, subject, IdP session id or our session id, and is empty for
// [ScopeGlobal].
type Scope struct {
	Kind   ScopeKind
	Issuer string
	ID     string
}

// GlobalScope returns the scope that covers everyone.
func GlobalScope() Scope { return Scope{Kind: ScopeGlobal} }

// TenantScope returns the scope of one workspace.
func TenantScope(tenant string) Scope { return Scope{Kind: ScopeTenant, ID: tenant} }

// SubjectScope returns the scope of one user (sub) at one issuer.
func SubjectScope(issuer, subject string) Scope {
	return Scope{Kind: ScopeSubject, Issuer: issuer, ID: subject}
}

// IdPSessionScope returns the scope of one identity-provider session (sid).
func IdPSessionScope(issuer, sid string) Scope {
	return Scope{Kind: ScopeIdPSession, Issuer: issuer, ID: sid}
}

// SessionScope returns the scope of one of our sessions.
func SessionScope(id string) Scope { return Scope{Kind: ScopeSession, ID: id} }

// Valid reports whether s is a well-formed fence scope: a known kind, the
// identifying fields that kind needs and none that it does not.
func (s Scope) Valid() bool {
	switch s.Kind {
	case ScopeGlobal:
		return s.Issuer == "" && s.ID == ""
	case ScopeTenant, ScopeSession:
		return s.Issuer == "" && s.ID != ""
	case ScopeSubject, ScopeIdPSession:
		return s.Issuer != "" && s.ID != ""
	}
	return false
}

// Key returns a canonical, unambiguous string for s, suitable as a storage
// key suffix: "g", "t:<tenant>", "u:<issuer>|<sub>", "i:<issuer>|<sid>",
// "s:<id>". Issuer and ID are escaped so that no two scopes share a key.
// Stores may use it; the hot path of an implementation may build the same
// bytes with [AppendKey] to avoid allocating.
func (s Scope) Key() string { return string(AppendKey(nil, s)) }

// AppendKey appends [Scope.Key] of s to dst and returns the extended slice.
func AppendKey(dst []byte, s Scope) []byte {
	switch s.Kind {
	case ScopeGlobal:
		return append(dst, 'g')
	case ScopeTenant:
		dst = append(dst, 't', ':')
		return appendEscaped(dst, s.ID)
	case ScopeSubject, ScopeIdPSession:
		if s.Kind == ScopeSubject {
			dst = append(dst, 'u', ':')
		} else {
			dst = append(dst, 'i', ':')
		}
		dst = appendEscaped(dst, s.Issuer)
		dst = append(dst, '|')
		return appendEscaped(dst, s.ID)
	case ScopeSession:
		dst = append(dst, 's', ':')
		return appendEscaped(dst, s.ID)
	}
	return append(dst, '?')
}

// appendEscaped writes v with '%', '|', '{', '}' and bytes outside printable
// ASCII percent-encoded. '|' separates issuer from id; braces are escaped so
// that a user-controlled value can never introduce a Valkey Cluster hash tag.
func appendEscaped(dst []byte, v string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '|' || c == '{' || c == '}' {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// String returns a human-readable form for logs, e.g. "subject:https://idp|alice".
func (s Scope) String() string {
	switch s.Kind {
	case ScopeGlobal, ScopeEpoch:
		return s.Kind.String()
	case ScopeSubject, ScopeIdPSession:
		return s.Kind.String() + ":" + s.Issuer + "|" + s.ID
	}
	return s.Kind.String() + ":" + s.ID
}

// Policy says what the login that follows a fence must prove. Policies are
// ordered: a larger value is stricter.
type Policy uint8

const (
	// PolicyNone lets the next login be any login, including a silent SSO
	// bounce at the provider.
	PolicyNone Policy = iota
	// PolicyFreshLogin demands an authentication event (ID token auth_time)
	// strictly newer than the fence.
	PolicyFreshLogin
	// PolicyMFA demands a fresh authentication that also meets the
	// configured multi-factor policy (acr in a set, or amr with a listed
	// method).
	PolicyMFA
)

var policyNames = [...]string{"none", "login", "mfa"}

// String returns "none", "login" or "mfa", the names used by the admin API
// and the CLI flag --reauth.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParsePolicy is the inverse of [Policy.String]; the empty string is
// [PolicyNone].
func ParsePolicy(s string) (Policy, bool) {
	if s == "" {
		return PolicyNone, true
	}
	for i, n := range policyNames {
		if n == s {
			return Policy(i), true
		}
	}
	return 0, false
}

// Fence is the revocation state of one scope. The zero Fence is the state of
// a scope that was never bumped.
//
// Gen is the revocation generation: a session passes only while the
// generation it recorded at issue equals the fence's effective generation
// (see [Fence.EffectiveGen]). Reload is a second counter that signs nobody
// out: when it moves, sessions re-read their claims (see [Config.OnReload]).
//
// Reserved is the highest generation ever handed out for the scope: Gen
// itself, the generation an announced termination will bring into force,
// or one burned by an announcement that was cancelled or replaced. Every
// new generation is Reserved+1, so a number is never handed out twice. This
// is what makes a cookie kept through an announcement exact: it records
// the reserved generation, which passes while that announcement is pending
// and after it takes effect, and never again once a later revocation,
// cancel or re-announcement has moved past it (see docs/design.md, "The
// fence algebra").
//
// A fence may carry an announced termination: PendingAt in the future means
// "at that time, Reserved comes into force". Until then requests pass (and
// are told about it); from then on every instance treats the fence as
// bumped, without any further write.
type Fence struct {
	Gen      uint64
	Reserved uint64
	Reload   uint64
	// BumpedAt is the store's clock at the last revoking bump (zero if
	// never). Tokens we did not mint are judged against it.
	BumpedAt time.Time
	// Policy applies to logins after the last revoking bump (or after
	// PendingAt once it has passed, with PendingPolicy).
	Policy Policy
	// PendingAt is the effective time of an announced termination; zero
	// when none is pending.
	PendingAt     time.Time
	PendingPolicy Policy
	// Reason is the operator's reason for the last bump or announcement,
	// shown to users in the announcement header. Bounded by the store.
	Reason string
}

// EffectiveGen returns the generation in force at now: Gen, or Reserved
// once a pending announced termination has reached its effective time.
func (f Fence) EffectiveGen(now time.Time) uint64 {
	if f.pendingDue(now) {
		return f.Reserved
	}
	return f.Gen
}

// Admits reports whether a credential that recorded generation rec passes
// f at now: rec is the generation in force, or the one reserved by a
// pending announcement (a caller kept through it).
func (f Fence) Admits(rec uint64, now time.Time) bool {
	return rec == f.EffectiveGen(now) || (f.Announced(now) && rec == f.Reserved)
}

func (f Fence) pendingDue(now time.Time) bool {
	return !f.PendingAt.IsZero() && !now.Before(f.PendingAt)
}

// EffectiveTime returns the time of the last revocation in force at now:
// PendingAt once it has passed, otherwise BumpedAt. Bearer tokens issued at
// or before it are refused.
func (f Fence) EffectiveTime(now time.Time) time.Time {
	if f.pendingDue(now) {
		return f.PendingAt
	}
	return f.BumpedAt
}

// EffectivePolicy returns the login policy in force at now.
func (f Fence) EffectivePolicy(now time.Time) Policy {
	if f.pendingDue(now) {
		return f.PendingPolicy
	}
	return f.Policy
}

// Announced reports whether a termination is announced for a time after now.
func (f Fence) Announced(now time.Time) bool {
	return !f.PendingAt.IsZero() && now.Before(f.PendingAt)
}

// BumpKind says what [Store.Bump] does to a fence.
type BumpKind uint8

const (
	// BumpRevoke sets Gen to a new generation (Reserved+1) now, past
	// any generation a pending, cancelled or replaced announcement
	// reserved, sets BumpedAt to the store's clock, sets Policy and clears
	// any pending announcement.
	BumpRevoke BumpKind = iota + 1
	// BumpAnnounce reserves a new generation (Reserved+1) that comes into
	// force at At (which must be after the store's clock) with Policy,
	// replacing any pending announcement, whose reserved generation is
	// burned. Gen does not move until then.
	BumpAnnounce
	// BumpCancel clears a pending announcement whose time has not come;
	// its reserved generation is burned (Reserved stays), so a cookie kept
	// through it never passes again. It fails with [ErrNothingPending]
	// when none is pending or it is due.
	BumpCancel
	// BumpReload advances Reload only.
	BumpReload
)

// Bump describes one atomic change to one fence.
type Bump struct {
	Kind   BumpKind
	Policy Policy
	// At is the effective time for BumpAnnounce.
	At time.Time
	// Reason is stored with the fence (truncated to MaxReasonLen bytes).
	Reason string
	// TTL, when positive, lets the store forget the fence that long after
	// this write. Used for session and IdP-session fences, which are not
	// needed once every session they could cover has expired. Zero keeps
	// the fence for ever.
	TTL time.Duration
}

// MaxReasonLen bounds Fence.Reason.
const MaxReasonLen = 200

// maxMilli keeps times within a range time.Time handles exactly (year
// ~ 2255): an announcement beyond it is refused, and a token time beyond
// it is corrupt data. Package fencetext reads stored times up to the same
// bound, so every fence ApplyBump can produce has a text form.
const maxMilli = 1 << 43

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ApplyBump computes the fence that results from applying b to f at the
// store's time now. It is the reference semantics every store must follow
// (the Valkey store runs the same steps in a server-side script); it returns
// [ErrNothingPending] for a cancel with nothing to cancel and
// [ErrInvalidBump] for a malformed request.
func ApplyBump(f Fence, b Bump, now time.Time) (Fence, error) {
	if err := b.validate(now); err != nil {
		return f, err
	}
	// Truncate rather than refuse: the reason is advisory text.
	if len(b.Reason) > MaxReasonLen {
		b.Reason = b.Reason[:MaxReasonLen]
	}
	in := f
	// A due announcement is folded in first, so the generation it brought
	// into force is recorded as Gen before anything else changes.
	if f.pendingDue(now) {
		f.Gen = f.Reserved
		f.BumpedAt = f.PendingAt
		f.Policy = f.PendingPolicy
		f.PendingAt, f.PendingPolicy = time.Time{}, PolicyNone
	}
	switch b.Kind {
	case BumpRevoke:
		f.Reserved++
		f.Gen = f.Reserved
		f.BumpedAt = now
		f.Policy = b.Policy
		f.PendingAt, f.PendingPolicy = time.Time{}, PolicyNone
		f.Reason = b.Reason
	case BumpAnnounce:
		f.Reserved++
		f.PendingAt = b.At
		f.PendingPolicy = b.Policy
		f.Reason = b.Reason
	case BumpCancel:
		if f.PendingAt.IsZero() {
			return in, ErrNothingPending
		}
		f.PendingAt, f.PendingPolicy = time.Time{}, PolicyNone
		f.Reason = b.Reason
	case BumpReload:
		f.Reload++
	}
	return f, nil
}

func (b Bump) validate(now time.Time) error {
	if b.Policy > PolicyMFA || b.TTL < 0 {
		return ErrInvalidBump
	}
	switch b.Kind {
	case BumpRevoke, BumpCancel, BumpReload:
		return nil
	case BumpAnnounce:
		if b.At.IsZero() || !b.At.After(now) || unixMilli(b.At) > maxMilli {
			return ErrInvalidBump
		}
		return nil
	}
	return ErrInvalidBump
}
