package oidc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/oidc"
)

// pastAccess moves everyone's clock past the guard's access lifetime.
func pastAccess(r *rig) { advance(r, 5*time.Minute+time.Second) }

func decisionCode(t *testing.T, p page) string {
	t.Helper()
	if p.status == http.StatusOK {
		return "allowed"
	}
	m := p.json(t)
	code, _ := m["error"].(string)
	return code
}

func TestRefreshRenewsAnExpiredAccessPart(t *testing.T) {
	r := newRig(t)
	first := r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)
	p, renewed := r.api(ck, "/app/me")
	if p.status != 200 || renewed == nil {
		t.Fatalf("status %d, renewed cookie %v: %s", p.status, renewed, p.body)
	}
	if got := p.json(t); got["session"] != first["session"] || got["sid"] != first["sid"] {
		t.Fatalf("renewal changed the session: %v -> %v", first, got)
	}
	if n := r.idp.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount = %d, want 1", n)
	}
	// The renewed cookie is good for another access lifetime without
	// going back to the provider.
	advance(r, 4*time.Minute)
	if p, _ := r.api(renewed, "/app/me"); p.status != 200 || r.idp.RefreshCount() != 1 {
		t.Fatalf("renewed cookie: status %d, refreshes %d", p.status, r.idp.RefreshCount())
	}
	// And the next renewal uses the rotated refresh token.
	pastAccess(r)
	if p, _ := r.api(renewed, "/app/me"); p.status != 200 || r.idp.RefreshCount() != 2 {
		t.Fatalf("second renewal: status %d, refreshes %d", p.status, r.idp.RefreshCount())
	}
}

func TestRefreshRefusedAtTheProviderEndsTheSession(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)
	r.idp.RefuseRefresh(true)
	p, set := r.api(ck, "/app/me")
	if p.status != http.StatusUnauthorized || decisionCode(t, p) != "session_expired" {
		t.Fatalf("status %d %q, want 401 session_expired", p.status, p.body)
	}
	if set == nil || set.MaxAge >= 0 {
		t.Fatalf("the session cookie was not cleared: %v", set)
	}
	// The server-side token is gone: even when the provider would accept
	// it again, the old cookie cannot come back.
	r.idp.RefuseRefresh(false)
	if p, _ := r.api(ck, "/app/me"); decisionCode(t, p) != "session_expired" {
		t.Fatalf("old cookie after refusal: %q", p.body)
	}
	if n := r.idp.RefreshCount(); n != 0 {
		t.Fatalf("RefreshCount = %d, want 0", n)
	}
}

func TestRefreshRacedByFiftyRequestsRedeemsOnce(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 50 {
		wg.Go(func() {
			if p, _ := r.api(ck, "/app/me"); p.status == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Fatalf("%d of 50 requests allowed", ok.Load())
	}
	if n := r.idp.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount = %d, want 1", n)
	}
}

// Two instances (two guards, two RPs) share one store: the Locker lease
// and the re-check inside it make the pair redeem the rotating refresh
// token once, although each process has its own renewal group.
func TestRefreshAcrossInstancesRedeemsOnce(t *testing.T) {
	var cfg oidc.Config
	r := newRig(t, func(c *oidc.Config) { cfg = *c })
	rp2, err := oidc.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewTLSServer(r.mux(rp2))
	t.Cleanup(srv2.Close)
	r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			base := r.url
			if i%2 == 1 {
				base = srv2.URL
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/app/me", nil)
			req.Header.Set("Accept", "application/json")
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			resp, err := r.idp.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 40 {
		t.Fatalf("%d of 40 requests allowed", ok.Load())
	}
	if n := r.idp.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount = %d, want 1", n)
	}
}

func TestAbsoluteLifetimeHoldsWhateverTheProviderSays(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	ck := r.sessionCookie()
	advance(r, 12*time.Hour-time.Minute)
	p, renewed := r.api(ck, "/app/me")
	if p.status != 200 || renewed == nil {
		t.Fatalf("renewal near the end: %d %s", p.status, p.body)
	}
	// The provider would renew again, but the session's 12 hours are up.
	advance(r, 2*time.Minute)
	p, _ = r.api(renewed, "/app/me")
	if decisionCode(t, p) != "session_expired" {
		t.Fatalf("after the absolute lifetime: %d %s", p.status, p.body)
	}
	if n := r.idp.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount = %d, want 1 (no redemption past the absolute lifetime)", n)
	}
}

func TestRefreshTimeIDTokenForAnotherUserEndsTheSession(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)
	r.idp.SetQuirks(fakeidp.Quirks{RefreshOtherSubject: true})
	if p, _ := r.api(ck, "/app/me"); decisionCode(t, p) != "session_expired" {
		t.Fatalf("got %d %s, want session_expired", p.status, p.body)
	}
}

func TestRefreshWithoutRotationOrIDTokenStillWorks(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	ck := r.sessionCookie()
	r.idp.SetQuirks(fakeidp.Quirks{NoRefreshRotation: true, RefreshWithoutIDToken: true})
	for i := range 2 {
		pastAccess(r)
		p, set := r.api(ck, "/app/me")
		if p.status != 200 || set == nil {
			t.Fatalf("renewal %d: %d %s", i, p.status, p.body)
		}
		ck = set
	}
	if n := r.idp.RefreshCount(); n != 2 {
		t.Fatalf("RefreshCount = %d, want 2", n)
	}
}

// flaky is a transport that fails while down is set.
type flaky struct {
	next http.RoundTripper
	down atomic.Bool
}

func (f *flaky) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.down.Load() {
		return nil, errors.New("provider unreachable")
	}
	return f.next.RoundTrip(req)
}

func TestProviderOutageLeavesTheSessionRenewable(t *testing.T) {
	var tr *flaky
	r := newRig(t, func(c *oidc.Config) {
		tr = &flaky{next: c.HTTPClient.Transport}
		c.HTTPClient = &http.Client{Transport: tr}
	})
	r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)
	tr.down.Store(true)
	p, set := r.api(ck, "/app/me")
	if decisionCode(t, p) != "access_expired" || set != nil {
		t.Fatalf("during the outage: %d %s (cookie %v), want access_expired and the cookie kept", p.status, p.body, set)
	}
	tr.down.Store(false)
	if p, _ := r.api(ck, "/app/me"); p.status != 200 {
		t.Fatalf("after the outage: %d %s", p.status, p.body)
	}
}

func TestWithoutRefreshSessionsLogInAgainAtAccessExpiry(t *testing.T) {
	r := newRig(t, func(c *oidc.Config) { c.Refresh = oidc.RefreshNone })
	first := r.mustLogin()
	if scope := r.authorizations()[0].Params.Get("scope"); strings.Contains(scope, "offline_access") {
		t.Fatalf("scope %q asks for offline access without refresh", scope)
	}
	ck := r.sessionCookie()
	pastAccess(r)
	if p, _ := r.api(ck, "/app/me"); decisionCode(t, p) != "access_expired" {
		t.Fatalf("API call after access expiry: %d %s", p.status, p.body)
	}
	// A browser is sent through the provider again (a silent SSO here)
	// and gets a new session.
	p := r.navigate("/app/me")
	if p.status != 200 || p.json(t)["session"] == first["session"] {
		t.Fatalf("navigation after access expiry: %d %s", p.status, p.body)
	}
	if n := r.idp.RefreshCount(); n != 0 {
		t.Fatalf("RefreshCount = %d, want 0", n)
	}
}

// plainStore has fences only: no Secrets, Locker or Replay.
type plainStore struct{ middleware.Store }

func TestServerSideRefreshNeedsSecretsAndLocker(t *testing.T) {
	idp := fakeidp.New(t, fakeidp.WithTLS())
	cfg := oidc.Config{
		Guard: middleware.Config{Store: plainStore{newRig(t).store}, Keys: [][]byte{middleware.GenerateKey()}},
		Providers: []oidc.ProviderConfig{{
			Issuer: idp.Issuer(), ClientID: clientID, RedirectURL: "https://app.example/callback",
		}},
		HTTPClient: idp.Client(),
	}
	if _, err := oidc.New(t.Context(), cfg); !errors.Is(err, oidc.ErrNoSecretsStore) {
		t.Fatalf("New = %v, want ErrNoSecretsStore", err)
	}
	cfg.Refresh = oidc.RefreshNone
	if _, err := oidc.New(t.Context(), cfg); err != nil {
		t.Fatalf("New with RefreshNone = %v", err)
	}
}

// tokenGate holds, once armed, the next answer of the provider's token
// endpoint until the test releases it: a renewal in flight at a slow
// provider, which has already rotated the refresh token.
type tokenGate struct {
	next    http.RoundTripper
	armed   atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

// gateOption installs a tokenGate in front of the RP's HTTP client.
func gateOption(g *tokenGate) rigOption {
	return func(c *oidc.Config) {
		g.next = c.HTTPClient.Transport
		g.arrived, g.release = make(chan struct{}), make(chan struct{})
		c.HTTPClient = &http.Client{Transport: g}
	}
}

func (g *tokenGate) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	if strings.HasSuffix(req.URL.Path, "/token") && g.armed.CompareAndSwap(true, false) {
		close(g.arrived)
		<-g.release
	}
	return resp, err
}

// holdRenewal sends one API request with ck, whose renewal the gate holds
// at the provider's token endpoint while during runs, and returns the
// response and the session cookie it set.
func holdRenewal(t *testing.T, r *rig, g *tokenGate, ck *http.Cookie, during func()) (page, *http.Cookie) {
	t.Helper()
	g.armed.Store(true)
	type result struct {
		p   page
		set *http.Cookie
	}
	done := make(chan result, 1)
	go func() {
		p, set := r.api(ck, "/app/me")
		done <- result{p, set}
	}()
	select {
	case <-g.arrived:
	case <-time.After(30 * time.Second):
		close(g.release)
		t.Fatal("the renewal never reached the provider's token endpoint")
	}
	during()
	close(g.release)
	res := <-done
	return res.p, res.set
}

// A renewal that the provider answers after the session was revoked must
// leave no refresh token behind: not in the store (the revocation's
// clean-up may already have run), and not live at the provider.
func TestRenewalHeldWhileTheSessionIsRevokedKeepsNoToken(t *testing.T) {
	var gate tokenGate
	// What the store and the provider hold when the guard refuses the
	// request: before the RP's own background clean-up, which would
	// otherwise hide a token stored by the renewal.
	type state struct{ secretKept, rotatedRevoked bool }
	var r *rig
	atRefusal := make(chan state, 1)
	r = newRig(t, gateOption(&gate), func(c *oidc.Config) {
		c.Guard.OnRevoked = func(ctx context.Context, d middleware.Decision) {
			_, kept, _ := r.store.Secret(ctx, "oidc/tokens/"+d.Session.ID)
			select {
			case atRefusal <- state{kept, rotatedRevoked(r)}:
			default:
			}
		}
	})
	me := r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)

	p, set := holdRenewal(t, r, &gate, ck, func() {
		r.bump(middleware.SubjectScope(r.idp.Issuer(), "alice"), middleware.PolicyNone)
	})
	if code := decisionCode(t, p); code != "revoked" {
		t.Fatalf("request renewed across the revocation: %d %s, want revoked", p.status, p.body)
	}
	if set == nil || set.MaxAge >= 0 {
		t.Fatalf("the session cookie was not cleared: %v", set)
	}
	if got := <-atRefusal; got.secretKept || !got.rotatedRevoked {
		t.Fatalf("when the guard refused: secret kept %v, rotated token revoked %v; want none kept, revoked", got.secretKept, got.rotatedRevoked)
	}
	if _, kept, err := r.store.Secret(t.Context(), "oidc/tokens/"+me["session"].(string)); kept || err != nil {
		t.Fatalf("afterwards: secret kept %v (%v)", kept, err)
	}
}

// rotatedRevoked reports whether the provider rotated one refresh token and
// then received a revocation of the rotated one.
func rotatedRevoked(r *rig) bool {
	refreshes := r.idp.Refreshes()
	if len(refreshes) != 1 || refreshes[0].Issued == "" {
		return false
	}
	return slices.ContainsFunc(r.idp.Revoked(), func(v fakeidp.Revocation) bool {
		return v.Token == refreshes[0].Issued && v.Kind == "refresh_token"
	})
}

// fencesDown fails fence reads on demand; the RP's secrets and leases in
// the same store keep working.
type fencesDown struct {
	*memstore.Store
	down atomic.Bool
}

func (s *fencesDown) Fences(ctx context.Context, scopes []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	if s.down.Load() {
		return middleware.Version{}, fmt.Errorf("%w: test outage", middleware.ErrStoreUnavailable)
	}
	return s.Store.Fences(ctx, scopes, dst)
}

// When the re-check after the provider's answer cannot read the fences,
// the rotated token is not stored: the session may have been revoked. The
// documented cost: the next renewal presents the old token, the provider
// refuses it, and the user logs in again.
func TestRenewalWhoseRecheckCannotReadTheStoreKeepsNoToken(t *testing.T) {
	var gate tokenGate
	var store *fencesDown
	r := newRig(t, gateOption(&gate), func(c *oidc.Config) {
		store = &fencesDown{Store: c.Guard.Store.(*memstore.Store)}
		c.Guard.Store = store
	})
	r.mustLogin()
	ck := r.sessionCookie()
	pastAccess(r)

	p, set := holdRenewal(t, r, &gate, ck, func() { store.down.Store(true) })
	if p.status == http.StatusOK || set != nil {
		t.Fatalf("renewal answered without a re-check: %d %s (cookie %v)", p.status, p.body, set)
	}
	store.down.Store(false)
	if p, _ := r.api(ck, "/app/me"); decisionCode(t, p) != "session_expired" {
		t.Fatalf("next renewal: %d %s, want session_expired (the rotated token was not kept)", p.status, p.body)
	}
	if n := r.idp.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount = %d, want 1", n)
	}
}
