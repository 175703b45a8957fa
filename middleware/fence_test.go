package middleware

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fencesEqual compares fences field by field, with time.Time.Equal, so that
// a time's location or monotonic reading never makes equal fences differ.
func fencesEqual(a, b Fence) bool {
	return a.Gen == b.Gen && a.Reserved == b.Reserved && a.Reload == b.Reload &&
		a.BumpedAt.Equal(b.BumpedAt) && a.Policy == b.Policy &&
		a.PendingAt.Equal(b.PendingAt) && a.PendingPolicy == b.PendingPolicy &&
		a.Reason == b.Reason
}

func TestApplyBump(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000).UTC()
	earlier := now.Add(-time.Hour)
	later := now.Add(time.Hour)
	long := strings.Repeat("r", MaxReasonLen+50)

	// announcedLater has a termination announced for a time after now.
	announcedLater := Fence{Gen: 4, Reserved: 5, Reload: 2, BumpedAt: earlier, Policy: PolicyNone,
		PendingAt: later, PendingPolicy: PolicyMFA, Reason: "maintenance"}
	// announcedDue has an announced termination whose time has come.
	announcedDue := Fence{Gen: 4, Reserved: 5, Reload: 2, BumpedAt: earlier.Add(-time.Hour), Policy: PolicyNone,
		PendingAt: earlier, PendingPolicy: PolicyFreshLogin, Reason: "maintenance"}

	tests := []struct {
		name string
		in   Fence
		b    Bump
		want Fence
		err  error
	}{
		{
			name: "revoke on a never bumped fence starts generation one",
			b:    Bump{Kind: BumpRevoke, Policy: PolicyFreshLogin, Reason: "incident"},
			want: Fence{Gen: 1, Reserved: 1, BumpedAt: now, Policy: PolicyFreshLogin, Reason: "incident"},
		},
		{
			name: "revoke advances the generation and keeps reload",
			in:   Fence{Gen: 7, Reserved: 7, Reload: 3, BumpedAt: earlier, Policy: PolicyMFA, Reason: "old"},
			b:    Bump{Kind: BumpRevoke},
			want: Fence{Gen: 8, Reserved: 8, Reload: 3, BumpedAt: now, Policy: PolicyNone},
		},
		{
			name: "revoke clears an announcement that is not due yet and moves past its reserved generation",
			in:   announcedLater,
			b:    Bump{Kind: BumpRevoke, Policy: PolicyFreshLogin, Reason: "now instead"},
			want: Fence{Gen: 6, Reserved: 6, Reload: 2, BumpedAt: now, Policy: PolicyFreshLogin, Reason: "now instead"},
		},
		{
			name: "revoke folds in a due announcement so its generation is not lost",
			in:   announcedDue,
			b:    Bump{Kind: BumpRevoke, Policy: PolicyMFA},
			want: Fence{Gen: 6, Reserved: 6, Reload: 2, BumpedAt: now, Policy: PolicyMFA},
		},
		{
			name: "revoke truncates a long reason",
			b:    Bump{Kind: BumpRevoke, Reason: long},
			want: Fence{Gen: 1, Reserved: 1, BumpedAt: now, Reason: long[:MaxReasonLen]},
		},
		{
			name: "revoke ignores the ttl which only the store uses",
			in:   Fence{Gen: 1, Reserved: 1},
			b:    Bump{Kind: BumpRevoke, TTL: time.Hour},
			want: Fence{Gen: 2, Reserved: 2, BumpedAt: now},
		},
		{
			name: "announce reserves a generation and records the time and policy without moving the generation",
			in:   Fence{Gen: 2, Reserved: 2, BumpedAt: earlier, Policy: PolicyFreshLogin},
			b:    Bump{Kind: BumpAnnounce, At: later, Policy: PolicyMFA, Reason: "save your work"},
			want: Fence{Gen: 2, Reserved: 3, BumpedAt: earlier, Policy: PolicyFreshLogin,
				PendingAt: later, PendingPolicy: PolicyMFA, Reason: "save your work"},
		},
		{
			name: "announce replaces an announcement that is not due yet and burns its reserved generation",
			in:   announcedLater,
			b:    Bump{Kind: BumpAnnounce, At: later.Add(time.Hour), Policy: PolicyNone, Reason: "postponed"},
			want: Fence{Gen: 4, Reserved: 6, Reload: 2, BumpedAt: earlier,
				PendingAt: later.Add(time.Hour), Reason: "postponed"},
		},
		{
			name: "announce folds in a due announcement before recording the new one",
			in:   announcedDue,
			b:    Bump{Kind: BumpAnnounce, At: later, Policy: PolicyMFA, Reason: "second round"},
			want: Fence{Gen: 5, Reserved: 6, Reload: 2, BumpedAt: earlier, Policy: PolicyFreshLogin,
				PendingAt: later, PendingPolicy: PolicyMFA, Reason: "second round"},
		},
		{
			name: "cancel before the due time clears the announcement and burns its reserved generation",
			in:   announcedLater,
			b:    Bump{Kind: BumpCancel, Reason: "called off"},
			want: Fence{Gen: 4, Reserved: 5, Reload: 2, BumpedAt: earlier, Reason: "called off"},
		},
		{
			name: "cancel after the due time is refused because the termination happened",
			in:   announcedDue,
			b:    Bump{Kind: BumpCancel},
			want: announcedDue,
			err:  ErrNothingPending,
		},
		{
			name: "cancel with nothing announced is refused",
			in:   Fence{Gen: 3, Reserved: 3, BumpedAt: earlier},
			b:    Bump{Kind: BumpCancel},
			want: Fence{Gen: 3, Reserved: 3, BumpedAt: earlier},
			err:  ErrNothingPending,
		},
		{
			name: "cancel exactly at the due time is refused",
			in:   Fence{Gen: 1, Reserved: 2, PendingAt: now},
			b:    Bump{Kind: BumpCancel},
			want: Fence{Gen: 1, Reserved: 2, PendingAt: now},
			err:  ErrNothingPending,
		},
		{
			name: "reload advances only the reload counter",
			in:   announcedLater,
			b:    Bump{Kind: BumpReload, Policy: PolicyMFA, Reason: "roles changed"},
			want: Fence{Gen: 4, Reserved: 5, Reload: 3, BumpedAt: earlier, PendingAt: later,
				PendingPolicy: PolicyMFA, Reason: "maintenance"},
		},
		{
			name: "zero kind is invalid",
			in:   announcedLater,
			b:    Bump{},
			want: announcedLater,
			err:  ErrInvalidBump,
		},
		{
			name: "unknown kind is invalid",
			in:   announcedLater,
			b:    Bump{Kind: 99},
			want: announcedLater,
			err:  ErrInvalidBump,
		},
		{
			name: "unknown policy is invalid",
			b:    Bump{Kind: BumpRevoke, Policy: PolicyMFA + 1},
			err:  ErrInvalidBump,
		},
		{
			name: "negative ttl is invalid",
			b:    Bump{Kind: BumpRevoke, TTL: -time.Second},
			err:  ErrInvalidBump,
		},
		{
			name: "announce without a time is invalid",
			b:    Bump{Kind: BumpAnnounce},
			err:  ErrInvalidBump,
		},
		{
			name: "announce for the current instant is invalid",
			b:    Bump{Kind: BumpAnnounce, At: now},
			err:  ErrInvalidBump,
		},
		{
			name: "announce in the past is invalid",
			in:   announcedLater,
			b:    Bump{Kind: BumpAnnounce, At: earlier},
			want: announcedLater,
			err:  ErrInvalidBump,
		},
		{
			name: "announce beyond the storable range is invalid",
			b:    Bump{Kind: BumpAnnounce, At: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
			err:  ErrInvalidBump,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyBump(tt.in, tt.b, now)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("ApplyBump error = %v, want %v", err, tt.err)
			}
			if !fencesEqual(got, tt.want) {
				t.Fatalf("ApplyBump =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestFenceEffectiveValues(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000).UTC()
	bumped := now.Add(-2 * time.Hour)
	f := Fence{Gen: 3, Reserved: 4, BumpedAt: bumped, Policy: PolicyFreshLogin,
		PendingAt: now, PendingPolicy: PolicyMFA}
	tests := []struct {
		name      string
		at        time.Time
		gen       uint64
		when      time.Time
		policy    Policy
		announced bool
	}{
		{"before the due time the old generation is in force", now.Add(-time.Millisecond), 3, bumped, PolicyFreshLogin, true},
		{"at the due time the announced generation is in force", now, 4, now, PolicyMFA, false},
		{"after the due time the announced generation is in force", now.Add(time.Hour), 4, now, PolicyMFA, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if g := f.EffectiveGen(tt.at); g != tt.gen {
				t.Errorf("EffectiveGen = %d, want %d", g, tt.gen)
			}
			if w := f.EffectiveTime(tt.at); !w.Equal(tt.when) {
				t.Errorf("EffectiveTime = %v, want %v", w, tt.when)
			}
			if p := f.EffectivePolicy(tt.at); p != tt.policy {
				t.Errorf("EffectivePolicy = %v, want %v", p, tt.policy)
			}
			if a := f.Announced(tt.at); a != tt.announced {
				t.Errorf("Announced = %v, want %v", a, tt.announced)
			}
		})
	}
}

func TestScopeKey(t *testing.T) {
	tests := []struct {
		name  string
		scope Scope
		key   string
	}{
		{"global scope has a fixed key", GlobalScope(), "g"},
		{"tenant scope", TenantScope("acme"), "t:acme"},
		{"subject scope joins issuer and subject", SubjectScope("https://idp", "alice"), "u:https://idp|alice"},
		{"idp session scope joins issuer and sid", IdPSessionScope("https://idp", "s1"), "i:https://idp|s1"},
		{"session scope", SessionScope("abc"), "s:abc"},
		{"separator in a value is escaped", SubjectScope("a|b", "c"), "u:a%7Cb|c"},
		{"braces are escaped so no value forms a hash tag", TenantScope("{x}"), "t:%7Bx%7D"},
		{"percent is escaped so escapes cannot be forged", TenantScope("%7B"), "t:%257B"},
		{"spaces and control bytes are escaped", SessionScope("a b\n"), "s:a%20b%0A"},
		{"non-ascii bytes are escaped", TenantScope("é"), "t:%C3%A9"},
		{"unknown kind has a key no valid scope has", Scope{Kind: 42, ID: "x"}, "?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.scope.Key(); got != tt.key {
				t.Fatalf("Key() = %q, want %q", got, tt.key)
			}
			if got := string(AppendKey([]byte("prefix:"), tt.scope)); got != "prefix:"+tt.key {
				t.Fatalf("AppendKey = %q, want %q", got, "prefix:"+tt.key)
			}
		})
	}
}

func TestScopeKeysNeverCollide(t *testing.T) {
	pairs := []struct {
		name string
		a, b Scope
	}{
		{"separator moved from issuer to subject", SubjectScope("a|b", "c"), SubjectScope("a", "b|c")},
		{"separator moved from issuer to sid", IdPSessionScope("a|b", "c"), IdPSessionScope("a", "b|c")},
		{"subject and idp session with the same values", SubjectScope("iss", "x"), IdPSessionScope("iss", "x")},
		{"tenant and session with the same id", TenantScope("x"), SessionScope("x")},
		{"raw brace and its escape", TenantScope("{"), TenantScope("%7B")},
		{"raw separator and its escape", SubjectScope("a", "|"), SubjectScope("a", "%7C")},
		{"tenant id that looks like a subject key", TenantScope("u:a|b"), SubjectScope("a", "b")},
	}
	for _, tt := range pairs {
		t.Run(tt.name, func(t *testing.T) {
			if tt.a.Key() == tt.b.Key() {
				t.Fatalf("%v and %v share the key %q", tt.a, tt.b, tt.a.Key())
			}
		})
	}
}

func TestScopeKeyContainsNoBraces(t *testing.T) {
	s := SubjectScope("{iss}", "}{")
	if k := s.Key(); strings.ContainsAny(k, "{}") {
		t.Fatalf("Key() = %q contains a brace", k)
	}
}

func TestScopeValid(t *testing.T) {
	tests := []struct {
		name  string
		scope Scope
		valid bool
	}{
		{"global scope is valid", GlobalScope(), true},
		{"global scope with an id is invalid", Scope{Kind: ScopeGlobal, ID: "x"}, false},
		{"tenant scope is valid", TenantScope("t"), true},
		{"tenant scope without an id is invalid", TenantScope(""), false},
		{"tenant scope with an issuer is invalid", Scope{Kind: ScopeTenant, Issuer: "i", ID: "t"}, false},
		{"subject scope is valid", SubjectScope("i", "s"), true},
		{"subject scope without an issuer is invalid", SubjectScope("", "s"), false},
		{"idp session scope without a sid is invalid", IdPSessionScope("i", ""), false},
		{"session scope is valid", SessionScope("s"), true},
		{"epoch is not a fence scope", Scope{Kind: ScopeEpoch}, false},
		{"zero scope is invalid", Scope{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.scope.Valid(); got != tt.valid {
				t.Fatalf("Valid() = %v, want %v", got, tt.valid)
			}
		})
	}
}

// FuzzScopeKey checks that two valid scopes share a key only when they are
// the same scope.
func FuzzScopeKey(f *testing.F) {
	f.Add(uint8(ScopeSubject), "a|b", "c", uint8(ScopeSubject), "a", "b|c")
	f.Add(uint8(ScopeTenant), "", "{", uint8(ScopeTenant), "", "%7B")
	f.Add(uint8(ScopeTenant), "", "x", uint8(ScopeSession), "", "x")
	f.Fuzz(func(t *testing.T, k1 uint8, iss1, id1 string, k2 uint8, iss2, id2 string) {
		a := Scope{Kind: ScopeKind(k1), Issuer: iss1, ID: id1}
		b := Scope{Kind: ScopeKind(k2), Issuer: iss2, ID: id2}
		if !a.Valid() || !b.Valid() {
			return
		}
		ka, kb := a.Key(), b.Key()
		if (ka == kb) != (a == b) {
			t.Fatalf("scopes %#v and %#v: keys %q and %q", a, b, ka, kb)
		}
		if strings.ContainsAny(ka, "{}") {
			t.Fatalf("key %q contains a brace", ka)
		}
	})
}
