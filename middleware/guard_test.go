package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/sealer"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// clock is a goroutine-safe fake clock shared by the store and the guard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// flakyStore fails on demand, to exercise the failure policy.
type flakyStore struct {
	middleware.Store
	down atomic.Bool
}

// Watch forwards the in-process store's change notifications, which the
// embedded interface would otherwise hide.
func (f *flakyStore) Watch(ctx context.Context, fn func()) (func(), error) {
	return f.Store.(middleware.Watcher).Watch(ctx, fn)
}

func (f *flakyStore) Fences(ctx context.Context, s []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	if f.down.Load() {
		return middleware.Version{}, fmt.Errorf("%w: connection refused", middleware.ErrStoreUnavailable)
	}
	return f.Store.Fences(ctx, s, dst)
}

type fixture struct {
	clock *clock
	mem   *memstore.Store
	store *flakyStore
	guard *middleware.Guard
}

func key(b byte) []byte {
	k := make([]byte, middleware.KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

func newFixture(t testing.TB, mod func(*middleware.Config)) *fixture {
	t.Helper()
	c := newClock()
	mem := memstore.New(memstore.Config{Now: c.Now})
	fs := &flakyStore{Store: mem}
	cfg := middleware.Config{Store: fs, Keys: [][]byte{key(1)}, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	g, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clock: c, mem: mem, store: fs, guard: g}
}

var alice = middleware.Claims{Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", IdPSession: "sid-a"}

func (f *fixture) issue(t testing.TB, c middleware.Claims) (*middleware.Session, string) {
	t.Helper()
	if c.AuthTime.IsZero() {
		c.AuthTime = f.clock.Now()
	}
	s, ck, err := f.guard.Issue(context.Background(), c)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return s, ck.Value
}

func (f *fixture) bump(t testing.TB, s middleware.Scope, b middleware.Bump) {
	t.Helper()
	if _, err := f.mem.Bump(context.Background(), s, b); err != nil {
		t.Fatalf("Bump %v: %v", s, err)
	}
}

var revoke = middleware.Bump{Kind: middleware.BumpRevoke}

func TestGuardDecisions(t *testing.T) {
	type want struct {
		kind   middleware.DecisionKind
		scope  middleware.ScopeKind
		policy middleware.Policy
	}
	tests := []struct {
		name string
		act  func(t *testing.T, f *fixture, s *middleware.Session)
		want want
	}{
		{"fresh session is allowed", nil, want{kind: middleware.DecisionAllowed}},
		{"global fence bumped after issue revokes", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.GlobalScope(), revoke)
		}, want{middleware.DecisionRevoked, middleware.ScopeGlobal, 0}},
		{"tenant fence bumped after issue revokes", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.TenantScope("acme"), revoke)
		}, want{middleware.DecisionRevoked, middleware.ScopeTenant, 0}},
		{"another tenant's fence changes nothing", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.TenantScope("globex"), revoke)
		}, want{kind: middleware.DecisionAllowed}},
		{"subject fence bumped after issue revokes", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), revoke)
		}, want{middleware.DecisionRevoked, middleware.ScopeSubject, 0}},
		{"same subject at another issuer changes nothing", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.SubjectScope("https://other.test", "alice"), revoke)
		}, want{kind: middleware.DecisionAllowed}},
		{"idp session fence bumped after issue revokes", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.IdPSessionScope("https://idp.test", "sid-a"), revoke)
		}, want{middleware.DecisionRevoked, middleware.ScopeIdPSession, 0}},
		{"own session fence bumped revokes", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.SessionScope(s.ID), revoke)
		}, want{middleware.DecisionRevoked, middleware.ScopeSession, 0}},
		{"another session's fence changes nothing", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.SessionScope("someone-else"), revoke)
		}, want{kind: middleware.DecisionAllowed}},
		{"fresh-login policy asks for re-authentication", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin})
		}, want{middleware.DecisionReauthRequired, middleware.ScopeGlobal, middleware.PolicyFreshLogin}},
		{"strictest policy among refusing fences wins", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin})
			f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA})
		}, want{middleware.DecisionReauthRequired, middleware.ScopeGlobal, middleware.PolicyMFA}},
		{"wiped store refuses through the epoch", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.mem.Wipe()
		}, want{middleware.DecisionRevoked, middleware.ScopeEpoch, 0}},
		{"announced termination still allows before its time", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpAnnounce, At: f.clock.Now().Add(time.Minute)})
		}, want{kind: middleware.DecisionAllowed}},
		{"announced termination refuses once due, with no further write", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpAnnounce, At: f.clock.Now().Add(time.Minute), Policy: middleware.PolicyMFA})
			f.clock.Advance(time.Minute)
		}, want{middleware.DecisionReauthRequired, middleware.ScopeGlobal, middleware.PolicyMFA}},
		{"cancelled announcement never refuses", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpAnnounce, At: f.clock.Now().Add(time.Minute)})
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpCancel})
			f.clock.Advance(2 * time.Minute)
		}, want{kind: middleware.DecisionAllowed}},
		{"reload generation does not sign out", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), middleware.Bump{Kind: middleware.BumpReload})
		}, want{kind: middleware.DecisionAllowed}},
		{"access part expires after its lifetime", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.clock.Advance(5 * time.Minute)
		}, want{kind: middleware.DecisionAccessExpired}},
		{"revocation wins over access expiry", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.clock.Advance(6 * time.Minute)
			f.bump(t, middleware.GlobalScope(), revoke)
		}, want{middleware.DecisionRevoked, middleware.ScopeGlobal, 0}},
		{"session expires after the absolute lifetime", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.clock.Advance(12 * time.Hour)
		}, want{kind: middleware.DecisionSessionExpired}},
		{"unreachable store fails closed", func(t *testing.T, f *fixture, s *middleware.Session) {
			f.store.down.Store(true)
		}, want{kind: middleware.DecisionStoreUnavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			s, value := f.issue(t, alice)
			if tt.act != nil {
				tt.act(t, f, s)
			}
			d := f.guard.Check(context.Background(), value)
			if d.Kind != tt.want.kind || d.Scope.Kind != tt.want.scope || d.Policy != tt.want.policy {
				t.Fatalf("decision = %v (scope %v, policy %v), want %v (scope %v, policy %v)",
					d.Kind, d.Scope.Kind, d.Policy, tt.want.kind, tt.want.scope, tt.want.policy)
			}
		})
	}
}

func TestGuardRefusesBadCookies(t *testing.T) {
	f := newFixture(t, nil)
	_, value := f.issue(t, alice)
	other := newFixture(t, func(c *middleware.Config) { c.Keys = [][]byte{key(2)} })
	_, foreign := other.issue(t, alice)
	tests := []struct {
		name  string
		value string
		kind  middleware.DecisionKind
		cause error
	}{
		{"no cookie is no session", "", middleware.DecisionNoSession, nil},
		{"garbage is invalid", "not-a-cookie", middleware.DecisionInvalid, sealer.ErrMalformed},
		{"truncated cookie is invalid", value[:len(value)/4*4-4], middleware.DecisionInvalid, sealer.ErrTampered},
		{"cookie sealed under another ring is invalid", foreign, middleware.DecisionInvalid, sealer.ErrUnknownKey},
		{"oversized cookie is invalid", string(make([]byte, 5000)), middleware.DecisionInvalid, middleware.ErrCookieTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.guard.Check(context.Background(), tt.value)
			if d.Kind != tt.kind || (tt.cause != nil && !errors.Is(d.Cause, tt.cause)) {
				t.Fatalf("decision = %v (cause %v), want %v (cause %v)", d.Kind, d.Cause, tt.kind, tt.cause)
			}
		})
	}
}

func TestKeyRotationKeepsSessions(t *testing.T) {
	f := newFixture(t, nil)
	_, value := f.issue(t, alice)
	rotated, err := middleware.New(middleware.Config{Store: f.store, Keys: [][]byte{key(7), key(1)}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if d := rotated.Check(context.Background(), value); d.Kind != middleware.DecisionAllowed {
		t.Fatalf("cookie sealed with the old key after rotation: %v", d)
	}
}

func TestIssueRefusesTombstonedIdPSession(t *testing.T) {
	f := newFixture(t, nil)
	// The logout arrives before the login completes.
	f.bump(t, middleware.IdPSessionScope("https://idp.test", "sid-a"), revoke)
	_, _, err := f.guard.Issue(context.Background(), alice)
	var re *middleware.RevokedError
	if !errors.As(err, &re) || re.Scope.Kind != middleware.ScopeIdPSession {
		t.Fatalf("Issue = %v, want RevokedError for the IdP session", err)
	}
}

func TestIssueRefusesTokenOlderThanFence(t *testing.T) {
	f := newFixture(t, nil)
	c := alice
	c.TokenIssuedAt = f.clock.Now()
	f.clock.Advance(time.Second)
	f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), revoke)
	_, _, err := f.guard.Issue(context.Background(), c)
	var re *middleware.RevokedError
	if !errors.As(err, &re) || re.Scope.Kind != middleware.ScopeSubject {
		t.Fatalf("Issue = %v, want RevokedError for the subject", err)
	}
}

func TestIssueSendsATokenFromTheFencesOwnSecondBackForAFreshLogin(t *testing.T) {
	f := newFixture(t, nil)
	f.clock.Advance(300 * time.Millisecond)
	f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), revoke)
	c := alice
	c.TokenIssuedAt = f.clock.Now().Truncate(time.Second) // iat in the fence's own second
	_, _, err := f.guard.Issue(context.Background(), c)
	var re *middleware.ReauthRequiredError
	if !errors.As(err, &re) || re.Reason != "iat" || re.Policy != middleware.PolicyFreshLogin {
		t.Fatalf("Issue = %v, want ReauthRequiredError(iat, login)", err)
	}
}

func TestIssueEnforcesLoginPolicy(t *testing.T) {
	tests := []struct {
		name       string
		policy     middleware.Policy
		authOffset time.Duration // auth_time relative to the fence
		acr        string
		amr        []string
		wantReason string // "" means allowed
	}{
		{"login older than a fresh-login fence is refused", middleware.PolicyFreshLogin, -time.Minute, "", nil, "auth_time"},
		{"login newer than a fresh-login fence is allowed", middleware.PolicyFreshLogin, time.Second, "", nil, ""},
		{"login within the skew before the fence is allowed", middleware.PolicyFreshLogin, -2 * time.Second, "", nil, ""},
		{"fresh login without MFA is refused under the MFA policy", middleware.PolicyMFA, time.Second, "pwd", []string{"pwd"}, "mfa"},
		{"fresh login with an MFA amr passes the MFA policy", middleware.PolicyMFA, time.Second, "", []string{"pwd", "otp"}, ""},
		{"fresh login with the MFA acr passes the MFA policy", middleware.PolicyMFA, time.Second, "urn:mfa", nil, ""},
		{"old login with MFA is still refused for auth_time", middleware.PolicyMFA, -time.Hour, "urn:mfa", []string{"otp"}, "auth_time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *middleware.Config) {
				c.MFA = middleware.MFAPolicy{ACR: []string{"urn:mfa"}, AMR: []string{"otp"}}
			})
			fenceAt := f.clock.Now()
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: tt.policy})
			f.clock.Advance(10 * time.Second)
			c := alice
			c.AuthTime, c.ACR, c.AMR = fenceAt.Add(tt.authOffset), tt.acr, tt.amr
			_, _, err := f.guard.Issue(context.Background(), c)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Issue = %v, want success", err)
				}
				return
			}
			var re *middleware.ReauthRequiredError
			if !errors.As(err, &re) || re.Reason != tt.wantReason || re.Policy != tt.policy {
				t.Fatalf("Issue = %v, want ReauthRequiredError(%s)", err, tt.wantReason)
			}
		})
	}
}

func TestAnnouncedTerminationCarriesNotice(t *testing.T) {
	f := newFixture(t, nil)
	_, value := f.issue(t, alice)
	at := f.clock.Now().Add(15 * time.Minute)
	f.bump(t, middleware.TenantScope("acme"), middleware.Bump{Kind: middleware.BumpAnnounce, At: at, Policy: middleware.PolicyFreshLogin, Reason: "maintenance"})
	d := f.guard.Check(context.Background(), value)
	if d.Kind != middleware.DecisionAllowed || d.Notice == nil {
		t.Fatalf("decision = %v, notice %v; want allowed with a notice", d, d.Notice)
	}
	n := d.Notice
	if !n.At.Equal(at) || n.Scope.Kind != middleware.ScopeTenant || n.Policy != middleware.PolicyFreshLogin || n.Reason != "maintenance" {
		t.Fatalf("notice = %+v", n)
	}
	// A session issued during the announcement window ends with the rest.
	_, later := f.issue(t, alice)
	f.clock.Advance(15 * time.Minute)
	for _, v := range []string{value, later} {
		if d := f.guard.Check(context.Background(), v); d.Kind != middleware.DecisionReauthRequired {
			t.Fatalf("after the effective time: %v, want reauth_required", d)
		}
	}
}

type countingRenewer struct {
	calls   atomic.Int32
	err     error
	release chan struct{}
}

func (r *countingRenewer) Renew(ctx context.Context, s *middleware.Session) error {
	r.calls.Add(1)
	if r.release != nil {
		<-r.release
	}
	s.ACR = "renewed"
	return r.err
}

func TestConcurrentRequestsRenewOnce(t *testing.T) {
	rn := &countingRenewer{release: make(chan struct{})}
	f := newFixture(t, func(c *middleware.Config) { c.Renewer = rn })
	_, value := f.issue(t, alice)
	f.clock.Advance(6 * time.Minute)

	const n = 50
	var wg sync.WaitGroup
	results := make([]middleware.Decision, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f.guard.Authenticate(context.Background(), value)
		}()
	}
	// Let every request reach the renewal before the provider answers.
	deadline := time.Now().Add(5 * time.Second)
	for rn.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(rn.release)
	wg.Wait()
	if got := rn.calls.Load(); got != 1 {
		t.Fatalf("renewals = %d, want 1", got)
	}
	for i, d := range results {
		if d.Kind != middleware.DecisionAllowed || d.Cookie == nil || d.Session.ACR != "renewed" {
			t.Fatalf("request %d: %v (cookie %v)", i, d, d.Cookie != nil)
		}
	}
	// The renewed cookie passes without renewing again.
	d := f.guard.Authenticate(context.Background(), results[0].Cookie.Value)
	if d.Kind != middleware.DecisionAllowed || d.Cookie != nil || rn.calls.Load() != 1 {
		t.Fatalf("renewed cookie: %v, renewals %d", d, rn.calls.Load())
	}
	if !d.Session.AccessExpiry.Equal(f.clock.Now().Add(5 * time.Minute).Truncate(time.Second)) {
		t.Fatalf("access expiry = %v", d.Session.AccessExpiry)
	}
}

func TestRenewalRefusedEndsSession(t *testing.T) {
	rn := &countingRenewer{err: fmt.Errorf("provider said invalid_grant: %w", middleware.ErrRenewalRefused)}
	f := newFixture(t, func(c *middleware.Config) { c.Renewer = rn })
	_, value := f.issue(t, alice)
	f.clock.Advance(6 * time.Minute)
	d := f.guard.Authenticate(context.Background(), value)
	if d.Kind != middleware.DecisionSessionExpired || !errors.Is(d.Cause, middleware.ErrRenewalRefused) {
		t.Fatalf("decision = %v, want session_expired caused by ErrRenewalRefused", d)
	}
	if d.Cookie == nil || d.Cookie.MaxAge >= 0 {
		t.Fatalf("refusal should clear the cookie, got %+v", d.Cookie)
	}
}

func TestRenewalFailureKeepsSessionRenewable(t *testing.T) {
	rn := &countingRenewer{err: errors.New("connection refused")}
	f := newFixture(t, func(c *middleware.Config) { c.Renewer = rn })
	_, value := f.issue(t, alice)
	f.clock.Advance(6 * time.Minute)
	if d := f.guard.Authenticate(context.Background(), value); d.Kind != middleware.DecisionAccessExpired {
		t.Fatalf("decision = %v, want access_expired", d)
	}
	f.guard.Authenticate(context.Background(), value)
	if rn.calls.Load() != 2 {
		t.Fatalf("a failed renewal must be retried by the next request; calls = %d", rn.calls.Load())
	}
}

func TestReloadCallsHookOncePerSession(t *testing.T) {
	var calls atomic.Int32
	f := newFixture(t, func(c *middleware.Config) {
		c.OnReload = func(ctx context.Context, s *middleware.Session) error {
			calls.Add(1)
			s.Data = `{"roles":["viewer"]}`
			return nil
		}
	})
	_, value := f.issue(t, alice)
	f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), middleware.Bump{Kind: middleware.BumpReload})
	d := f.guard.Authenticate(context.Background(), value)
	if d.Kind != middleware.DecisionAllowed || d.Cookie == nil || d.Session.Data != `{"roles":["viewer"]}` {
		t.Fatalf("decision = %v, cookie %v, data %q", d, d.Cookie != nil, d.Session.Data)
	}
	d2 := f.guard.Authenticate(context.Background(), d.Cookie.Value)
	if d2.Kind != middleware.DecisionAllowed || d2.Cookie != nil || calls.Load() != 1 {
		t.Fatalf("reloaded cookie: %v, hook calls %d", d2, calls.Load())
	}
}

func TestBoundedStaleness(t *testing.T) {
	f := newFixture(t, func(c *middleware.Config) { c.StaleFor = 30 * time.Second })
	_, value := f.issue(t, alice)
	if d := f.guard.Check(context.Background(), value); d.Kind != middleware.DecisionAllowed || d.Stale {
		t.Fatalf("store up: %v stale=%v", d, d.Stale)
	}
	f.store.down.Store(true)
	f.clock.Advance(20 * time.Second)
	if d := f.guard.Check(context.Background(), value); d.Kind != middleware.DecisionAllowed || !d.Stale {
		t.Fatalf("within the bound: %v stale=%v, want allowed and stale", d, d.Stale)
	}
	f.clock.Advance(11 * time.Second)
	if d := f.guard.Check(context.Background(), value); d.Kind != middleware.DecisionStoreUnavailable {
		t.Fatalf("past the bound: %v, want store_unavailable", d)
	}
	// A session never confirmed before the outage is not invented.
	f.store.down.Store(false)
	_, other := f.issue(t, middleware.Claims{Issuer: "https://idp.test", Subject: "bob"})
	f.store.down.Store(true)
	if d := f.guard.Check(context.Background(), other); d.Kind != middleware.DecisionStoreUnavailable {
		t.Fatalf("unconfirmed session during outage: %v", d)
	}
}

func TestOnRevokedHookAndClearingCookie(t *testing.T) {
	var got []middleware.Decision
	f := newFixture(t, func(c *middleware.Config) {
		c.OnRevoked = func(ctx context.Context, d middleware.Decision) { got = append(got, d) }
	})
	_, value := f.issue(t, alice)
	f.bump(t, middleware.TenantScope("acme"), revoke)
	d := f.guard.Authenticate(context.Background(), value)
	if len(got) != 1 || got[0].Scope.Kind != middleware.ScopeTenant {
		t.Fatalf("OnRevoked calls = %v", got)
	}
	if d.Cookie == nil || d.Cookie.MaxAge != -1 || d.Cookie.Name != "__Host-sessionfence" {
		t.Fatalf("clearing cookie = %+v", d.Cookie)
	}
}

func TestIssuedCookieAttributes(t *testing.T) {
	f := newFixture(t, nil)
	_, ck, err := f.guard.Issue(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Name != "__Host-sessionfence" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("cookie attributes = %+v", ck)
	}
	if len(ck.Value) > 1024 {
		t.Fatalf("cookie is %d bytes", len(ck.Value))
	}
	insecure := newFixture(t, func(c *middleware.Config) { c.InsecureCookies = true })
	_, ck, _ = insecure.guard.Issue(context.Background(), alice)
	if ck.Secure || ck.Name != "sessionfence" {
		t.Fatalf("insecure cookie = %+v", ck)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	mem := memstore.New(memstore.Config{})
	tests := []struct {
		name string
		cfg  middleware.Config
	}{
		{"missing store", middleware.Config{Keys: [][]byte{key(1)}}},
		{"missing keys", middleware.Config{Store: mem}},
		{"short key", middleware.Config{Store: mem, Keys: [][]byte{[]byte("short")}}},
		{"access longer than absolute", middleware.Config{Store: mem, Keys: [][]byte{key(1)}, AccessLifetime: time.Hour, AbsoluteLifetime: time.Minute}},
		{"__Host- name without Secure", middleware.Config{Store: mem, Keys: [][]byte{key(1)}, InsecureCookies: true, CookieName: "__Host-x"}},
		{"invalid cookie name", middleware.Config{Store: mem, Keys: [][]byte{key(1)}, CookieName: "a b"}},
		{"negative staleness", middleware.Config{Store: mem, Keys: [][]byte{key(1)}, StaleFor: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := middleware.New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestCheckTokenJudgesByTime(t *testing.T) {
	type tc = middleware.TokenClaims
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *fixture)
		token  func(now time.Time) tc
		kind   middleware.DecisionKind
		scope  middleware.ScopeKind
		policy middleware.Policy
	}{
		{"token after every fence is allowed", nil,
			func(now time.Time) tc { return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now} },
			middleware.DecisionAllowed, 0, 0},
		{"token issued before a subject fence is revoked", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), revoke)
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now.Add(-time.Minute)}
		}, middleware.DecisionRevoked, middleware.ScopeSubject, 0},
		{"token within the skew after a fence is revoked", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.GlobalScope(), revoke)
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now.Add(-27 * time.Second)}
		}, middleware.DecisionRevoked, middleware.ScopeGlobal, 0},
		{"token well after a fence is allowed", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.GlobalScope(), revoke)
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now}
		}, middleware.DecisionAllowed, 0, 0},
		{"new token from an old authentication needs step-up", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.TenantScope("acme"), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin})
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", IssuedAt: now, AuthTime: now.Add(-time.Hour)}
		}, middleware.DecisionReauthRequired, middleware.ScopeTenant, middleware.PolicyFreshLogin},
		{"fresh authentication without MFA needs step-up under the MFA policy", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA})
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now, AuthTime: now, AMR: []string{"pwd"}}
		}, middleware.DecisionReauthRequired, middleware.ScopeGlobal, middleware.PolicyMFA},
		{"fresh MFA authentication passes the MFA policy", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA})
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now, AuthTime: now, AMR: []string{"pwd", "otp"}}
		}, middleware.DecisionAllowed, 0, 0},
		{"logged-out idp session refuses even newer tokens", func(t *testing.T, f *fixture) {
			f.bump(t, middleware.IdPSessionScope("https://idp.test", "sid-1"), revoke)
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IdPSession: "sid-1", IssuedAt: now}
		}, middleware.DecisionRevoked, middleware.ScopeIdPSession, 0},
		{"token older than the store epoch is refused", func(t *testing.T, f *fixture) {
			f.mem.Wipe()
		}, func(now time.Time) tc {
			return tc{Issuer: "https://idp.test", Subject: "alice", IssuedAt: now.Add(-time.Minute)}
		}, middleware.DecisionRevoked, middleware.ScopeEpoch, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			// The store's data (its epoch) predates the scenario by an hour,
			// so only the wipe case meets the epoch refusal.
			f.clock.Advance(time.Hour)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			f.clock.Advance(30 * time.Second)
			tok := tt.token(f.clock.Now())
			d := f.guard.CheckToken(context.Background(), &tok)
			if d.Kind != tt.kind || d.Scope.Kind != tt.scope || d.Policy != tt.policy {
				t.Fatalf("decision = %v (scope %v policy %v), want %v (scope %v policy %v)", d.Kind, d.Scope.Kind, d.Policy, tt.kind, tt.scope, tt.policy)
			}
		})
	}
}

func TestLoginPolicyLapsesAfterItsWindow(t *testing.T) {
	f := newFixture(t, func(c *middleware.Config) { c.AbsoluteLifetime = 12 * time.Hour })
	fenceAt := f.clock.Now()
	f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA})
	login := func() error {
		c := alice
		c.AuthTime, c.AMR = f.clock.Now(), []string{"pwd"}
		_, _, err := f.guard.Issue(context.Background(), c)
		return err
	}
	f.clock.Advance(11 * time.Hour)
	var re *middleware.ReauthRequiredError
	if err := login(); !errors.As(err, &re) || re.Reason != "mfa" {
		t.Fatalf("password-only login within the window: %v, want ReauthRequiredError(mfa)", err)
	}
	f.clock.Advance(time.Hour + time.Second)
	if err := login(); err != nil {
		t.Fatalf("password-only login once every session the fence ended has expired: %v", err)
	}
	tok := middleware.TokenClaims{Issuer: "https://idp.test", Subject: "alice", IssuedAt: f.clock.Now(), AuthTime: fenceAt.Add(-time.Hour)}
	if d := f.guard.CheckToken(context.Background(), &tok); !d.Allowed() {
		t.Fatalf("bearer token after the window: %v", d)
	}
}
