package backchannel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/json"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

func TestReplayIsAnswered200AndAppliesNothing(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	var calls atomic.Int32
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) {
		c.EscalateToSubject = true
		c.OnLogout = func(context.Context, Event) { calls.Add(1) }
	})
	tok := p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))
	subj := middleware.SubjectScope(p.Issuer(), sub)

	if w := e.post(tok); w.Code != http.StatusOK {
		t.Fatalf("first delivery: %d %s", w.Code, w.Body)
	}
	if g := e.gen(t, subj); g != 1 {
		t.Fatalf("subject gen %d after first delivery", g)
	}
	// The user signs in again; a replay of the old token must not end
	// the new session.
	_, cookie, err := e.guard.Issue(t.Context(), middleware.Claims{Issuer: p.Issuer(), Subject: sub, AuthTime: clk.Now().Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	for i := range 3 {
		w := e.post(tok)
		if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("replay %d: %d %v", i, w.Code, w.Header())
		}
		if l := e.logs.last(t); l["outcome"] != outcomeReplay || l["jti"] == "" {
			t.Errorf("replay %d logged %v", i, l)
		}
	}
	if g := e.gen(t, subj); g != 1 {
		t.Errorf("subject gen %d after replays, want 1", g)
	}
	if d := e.guard.Check(t.Context(), cookie.Value); !d.Allowed() {
		t.Errorf("the session opened after the logout was ended by a replay: %v", d)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("OnLogout called %d times", n)
	}
}

func TestConcurrentDeliveriesApplyAtMostOncePerSlot(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	tok := p.SignLogoutToken(p.LogoutToken(clientID, "", sid))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if w := e.post(tok); w.Code != http.StatusOK {
				t.Errorf("status %d", w.Code)
			}
		})
	}
	wg.Wait()
	applied := 0
	for _, o := range e.logs.outcomes() {
		if o["outcome"] == outcomeApplied {
			applied++
		}
	}
	if applied < 1 || applied > replaySlots {
		t.Errorf("applied %d times", applied)
	}
	if g := e.gen(t, middleware.IdPSessionScope(p.Issuer(), sid)); g < 1 {
		t.Errorf("gen %d", g)
	}
}

func TestRefusedTokenLeavesItsJTIUsable(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	c := p.LogoutToken(clientID, sub, sid)
	c["nonce"] = "x"
	if w := e.post(p.SignLogoutToken(c)); w.Code != http.StatusBadRequest {
		t.Fatalf("status %d", w.Code)
	}
	delete(c, "nonce") // same jti, now valid
	if w := e.post(p.SignLogoutToken(c)); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if l := e.logs.last(t); l["outcome"] != outcomeApplied {
		t.Errorf("the jti was consumed by the refused token: %v", l)
	}
}

func TestStoreUnavailableAnswers503AndTheRetrySucceeds(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	var calls atomic.Int32
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) {
		c.OnLogout = func(context.Context, Event) { calls.Add(1) }
	})
	sc := middleware.IdPSessionScope(p.Issuer(), sid)
	tok := p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))

	check503 := func(what string) {
		t.Helper()
		w := e.post(tok)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v %s", what, w.Code, w.Header(), w.Body)
		}
		if l := e.logs.last(t); l["outcome"] != outcomeUnavailable || l["reason"] != codeStore || l["level"] != "ERROR" {
			t.Errorf("%s: log %v", what, l)
		}
		if g := e.gen(t, sc); g != 0 {
			t.Fatalf("%s: gen %d", what, g)
		}
	}
	e.store.failRemember.Store(1)
	check503("Remember fails")
	e.store.failBump.Store(1)
	check503("Bump fails")
	e.store.failBump.Store(1)
	check503("Bump fails again")

	// The provider retries: the third attempt still has a slot.
	if w := e.post(tok); w.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	if g := e.gen(t, sc); g != 1 {
		t.Fatalf("gen %d after the retry", g)
	}
	if w := e.post(tok); w.Code != http.StatusOK || e.gen(t, sc) != 1 {
		t.Fatalf("replay after the retry: %d, gen %d", w.Code, e.gen(t, sc))
	}
	if l := e.logs.last(t); l["outcome"] != outcomeReplay {
		t.Errorf("log %v", l)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("OnLogout called %d times", n)
	}
}

func TestTombstoneRefusesALoginThatCompletesLater(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	// A session issued before the logout is ended by it...
	_, before, err := e.guard.Issue(t.Context(), middleware.Claims{Issuer: p.Issuer(), Subject: sub, IdPSession: sid, AuthTime: clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if d := e.guard.Check(t.Context(), before.Value); d.Kind != middleware.DecisionReauthRequired || d.Scope.Kind != middleware.ScopeIdPSession {
		t.Errorf("existing session: %v", d)
	}
	// ...and a login of the same IdP session completing afterwards (the
	// callback was in flight) is refused, however fresh.
	clk.Advance(time.Minute)
	_, _, err = e.guard.Issue(t.Context(), middleware.Claims{Issuer: p.Issuer(), Subject: sub, IdPSession: sid, AuthTime: clk.Now()})
	var re *middleware.RevokedError
	if !errors.As(err, &re) || re.Scope != middleware.IdPSessionScope(p.Issuer(), sid) {
		t.Fatalf("Issue after logout: %v", err)
	}
	// The fence lives as long as the guard's IdPSessionTTL.
	clk.Advance(e.guard.Config().IdPSessionTTL)
	if _, _, err := e.guard.Issue(t.Context(), middleware.Claims{Issuer: p.Issuer(), Subject: sub, IdPSession: sid, AuthTime: clk.Now()}); err != nil {
		t.Errorf("tombstone outlived IdPSessionTTL: %v", err)
	}
}

func TestSubjectLogoutDemandsAFreshLogin(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		policy middleware.Policy
	}{
		{"default policy is fresh login", nil, middleware.PolicyFreshLogin},
		{"MFA policy", func(c *Config) { c.Policy = middleware.PolicyMFA }, middleware.PolicyMFA},
		{"silent login only when asked", func(c *Config) { c.InsecureAllowSilentLogin = true }, middleware.PolicyNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, clk, []*fakeidp.Provider{p}, tc.cfg)
			authTime := clk.Now().Add(-time.Minute) // the provider's SSO session
			if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, ""))); w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			f := e.fences(t, []middleware.Scope{middleware.SubjectScope(p.Issuer(), sub)})[0]
			if f.Gen != 1 || f.Policy != tc.policy || f.Reason != DefaultReason {
				t.Fatalf("fence %+v", f)
			}
			// A silent SSO bounce reports the old auth_time.
			_, _, err := e.guard.Issue(t.Context(), middleware.Claims{Issuer: p.Issuer(), Subject: sub, IdPSession: "sid-2", AuthTime: authTime})
			var ra *middleware.ReauthRequiredError
			if tc.policy == middleware.PolicyNone {
				if err != nil {
					t.Errorf("silent login refused: %v", err)
				}
				return
			}
			if !errors.As(err, &ra) || ra.Policy != tc.policy {
				t.Fatalf("silent SSO after logout: %v", err)
			}
			clk.Advance(time.Second)
			if tc.policy == middleware.PolicyFreshLogin {
				if _, _, err := e.guard.Issue(t.Context(), middleware.Claims{Issuer: p.Issuer(), Subject: sub, IdPSession: "sid-2", AuthTime: clk.Now()}); err != nil {
					t.Errorf("fresh login refused: %v", err)
				}
			}
		})
	}
}

func TestMultipleIssuers(t *testing.T) {
	clk := newClock()
	a := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	b := fakeidp.New(t, fakeidp.WithClock(clk.Now), fakeidp.WithSigningAlg("ES256"))
	e := newEnv(t, clk, []*fakeidp.Provider{a, b}, func(c *Config) { c.Issuers[1].ClientID = "rp-at-b" })

	if w := e.post(a.SignLogoutToken(a.LogoutToken(clientID, sub, ""))); w.Code != http.StatusOK {
		t.Fatalf("a: %d %s", w.Code, w.Body)
	}
	if w := e.post(b.SignLogoutToken(b.LogoutToken("rp-at-b", sub, sid))); w.Code != http.StatusOK {
		t.Fatalf("b: %d %s", w.Code, w.Body)
	}
	got := e.fences(t, []middleware.Scope{
		middleware.SubjectScope(a.Issuer(), sub), middleware.IdPSessionScope(a.Issuer(), sid),
		middleware.SubjectScope(b.Issuer(), sub), middleware.IdPSessionScope(b.Issuer(), sid),
	})
	if got[0].Gen != 1 || got[1].Gen != 0 || got[2].Gen != 0 || got[3].Gen != 1 {
		t.Errorf("fences %+v", got)
	}
	// Each issuer has its own client id and its own keys.
	for name, tok := range map[string]string{
		"b's token for a's client id": b.SignLogoutToken(b.LogoutToken(clientID, sub, sid)),
		"a's iss signed by b":         b.SignLogoutToken(a.LogoutToken(clientID, sub, sid)),
		"b's iss signed by a":         a.SignLogoutToken(b.LogoutToken("rp-at-b", sub, sid)),
	} {
		if w := e.post(tok); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	// The same jti from two issuers is two tokens.
	ca, cb := a.LogoutToken(clientID, "bob", ""), b.LogoutToken("rp-at-b", "bob", "")
	cb["jti"] = ca["jti"]
	for _, tok := range []string{a.SignLogoutToken(ca), b.SignLogoutToken(cb)} {
		if w := e.post(tok); w.Code != http.StatusOK {
			t.Fatal(w.Code)
		}
		if l := e.logs.last(t); l["outcome"] != outcomeApplied {
			t.Errorf("log %v", l)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	ks := e.rcv.issuers[p.Issuer()].keys
	if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, "s1"))); w.Code != http.StatusOK {
		t.Fatalf("before rotation: %d", w.Code)
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
	p.RotateKeyAlg("ES256") // new kid, new algorithm; the old key leaves the JWKS
	if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, "s2"))); w.Code != http.StatusOK {
		t.Fatalf("after rotation: %d %s", w.Code, w.Body)
	}
	if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, "s3"))); w.Code != http.StatusOK {
		t.Fatalf("second token after rotation: %d", w.Code)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (one load, one refresh)", n)
	}
}

func TestUnknownKidsAreRateLimited(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	ks := e.rcv.issuers[p.Issuer()].keys
	bogus := func(i int) string {
		return p.SignWith(rogue(t), "RS256", map[string]any{"kid": "forged-" + strconv.Itoa(i), "typ": "logout+jwt"},
			p.LogoutToken(clientID, sub, sid))
	}
	if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, "s0"))); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		tok := bogus(i)
		wg.Go(func() {
			if w := e.post(tok); w.Code != http.StatusBadRequest {
				t.Errorf("status %d", w.Code)
			}
		})
	}
	wg.Wait()
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches for 50 unknown kids, want 2 (load + one refresh)", n)
	}
	clk.Advance(DefaultKeyRefreshInterval - time.Second)
	e.post(bogus(100))
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("refreshed before the interval: %d", n)
	}
	clk.Advance(time.Second)
	e.post(bogus(101))
	if n := ks.fetches.Load(); n != 3 {
		t.Errorf("%d fetches after the interval, want 3", n)
	}
	if l := e.logs.last(t); l["reason"] != codeUnknownKey {
		t.Errorf("log %v", l)
	}
}

func TestKeysUnavailable(t *testing.T) {
	clk := newClock()
	var hits atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) { c.Issuers[0].JWKSURL = down.URL + "/keys" })
	tok := p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))
	for range 3 {
		w := e.post(tok)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Fatalf("%d %v", w.Code, w.Header())
		}
		if l := e.logs.last(t); l["reason"] != codeKeysUnavailable {
			t.Errorf("log %v", l)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d JWKS attempts within one interval, want 1", n)
	}
	if n := e.store.remembers.Load(); n != 0 {
		t.Errorf("jti consumed while keys were unavailable")
	}
	// Once the interval has passed, the retry loads the (working) keys.
	e.rcv.issuers[p.Issuer()].keys.jwksURL = p.Issuer() + "/keys"
	clk.Advance(DefaultKeyRefreshInterval)
	if w := e.post(tok); w.Code != http.StatusOK {
		t.Fatalf("after recovery: %d %s", w.Code, w.Body)
	}
}

func TestDiscoveryMustNameTheIssuer(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now), fakeidp.WithQuirks(fakeidp.Quirks{WrongDiscoveryIssuer: true}))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	if w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", w.Code)
	}
}

func TestSlowProviderIsBoundedByTimeout(t *testing.T) {
	clk := newClock()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) {
		c.Issuers[0].JWKSURL = slow.URL
		c.KeyFetchTimeout = 100 * time.Millisecond
	})
	start := time.Now()
	w := e.post(p.SignLogoutToken(p.LogoutToken(clientID, sub, sid)))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", w.Code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("answered after %v", d)
	}
}

func TestOnLogoutReceivesTheEvent(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	var got []Event
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) {
		c.EscalateToSubject = true
		c.OnLogout = func(_ context.Context, ev Event) { got = append(got, ev) }
	})
	c := p.LogoutToken(clientID, sub, sid)
	res, err := e.rcv.Logout(t.Context(), p.SignLogoutToken(c))
	if err != nil || res.Replay {
		t.Fatal(res, err)
	}
	if len(got) != 1 {
		t.Fatalf("%d events", len(got))
	}
	ev := got[0]
	want := []middleware.Scope{middleware.IdPSessionScope(p.Issuer(), sid), middleware.SubjectScope(p.Issuer(), sub)}
	if ev.Issuer != p.Issuer() || ev.Subject != sub || ev.SID != sid || ev.JTI != c["jti"] ||
		ev.IssuedAt.Unix() != c["iat"] || ev.Expiry.Unix() != c["exp"] || len(ev.Scopes) != 2 || ev.Scopes[0] != want[0] || ev.Scopes[1] != want[1] {
		t.Errorf("event %+v", ev)
	}
	// Verify reads the same token without applying anything.
	v, err := e.rcv.Verify(t.Context(), p.SignLogoutToken(p.LogoutToken(clientID, "bob", "")))
	if err != nil || v.Subject != "bob" || v.Scopes != nil {
		t.Errorf("Verify: %+v %v", v, err)
	}
	_, err = e.rcv.Verify(t.Context(), "x")
	var ie *InvalidTokenError
	if !errors.Is(err, ErrInvalidToken) || !errors.As(err, &ie) || ie.Code != codeMalformed {
		t.Errorf("Verify(garbage): %v", err)
	}
}

// noReplay hides memstore's Replay ability.
type noReplay struct{ middleware.Store }

func TestNewRefusesUnsafeConfigurations(t *testing.T) {
	guard := func(s middleware.Store) *middleware.Guard {
		g, err := middleware.New(middleware.Config{Store: s, Keys: [][]byte{middleware.GenerateKey()}})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	good := guard(memstore.New(memstore.Config{}))
	iss := Issuer{Issuer: "https://idp.example", ClientID: clientID}
	for name, cfg := range map[string]Config{
		"no guard":                 {Issuers: []Issuer{iss}},
		"store without Replay":     {Guard: guard(noReplay{memstore.New(memstore.Config{})}), Issuers: []Issuer{iss}},
		"no issuer":                {Guard: good},
		"issuer without client id": {Guard: good, Issuers: []Issuer{{Issuer: "https://idp.example"}}},
		"issuer not a URL":         {Guard: good, Issuers: []Issuer{{Issuer: "idp", ClientID: clientID}}},
		"duplicate issuer":         {Guard: good, Issuers: []Issuer{iss, iss}},
		"alg none":                 {Guard: good, Issuers: []Issuer{{Issuer: iss.Issuer, ClientID: clientID, Algorithms: []string{"none"}}}},
		"HS256 without secret":     {Guard: good, Issuers: []Issuer{{Issuer: iss.Issuer, ClientID: clientID, Algorithms: []string{"HS256"}}}},
		"HS512 with a short secret": {Guard: good, Issuers: []Issuer{{Issuer: iss.Issuer, ClientID: clientID,
			Algorithms: []string{"HS512"}, ClientSecret: clientSecret}}},
		"unknown alg":           {Guard: good, Issuers: []Issuer{{Issuer: iss.Issuer, ClientID: clientID, Algorithms: []string{"RS1"}}}},
		"negative skew":         {Guard: good, Issuers: []Issuer{iss}, Skew: -1},
		"silent login and MFA":  {Guard: good, Issuers: []Issuer{iss}, InsecureAllowSilentLogin: true, Policy: middleware.PolicyMFA},
		"unknown policy":        {Guard: good, Issuers: []Issuer{iss}, Policy: 9},
		"JWKS URL not absolute": {Guard: good, Issuers: []Issuer{{Issuer: iss.Issuer, ClientID: clientID, JWKSURL: "/keys"}}},
	} {
		if r, err := New(cfg); err == nil || r != nil {
			t.Errorf("%s: New succeeded", name)
		} else if name == "store without Replay" && !strings.Contains(err.Error(), "middleware.Replay") {
			t.Errorf("%s: unclear error %v", name, err)
		}
	}
	if _, err := New(Config{Guard: good, Issuers: []Issuer{iss}}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestRegistration(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) { c.SessionRequired = true })
	reg, err := e.rcv.Registration("https://app.example.com/auth/backchannel?tenant=a")
	if err != nil || reg.BackchannelLogoutURI != "https://app.example.com/auth/backchannel?tenant=a" || !reg.BackchannelLogoutSessionRequired {
		t.Errorf("%+v %v", reg, err)
	}
	if _, err := e.rcv.Registration("http://127.0.0.1:8080/bc"); err != nil {
		t.Errorf("loopback http: %v", err)
	}
	for _, bad := range []string{"/relative", "http://app.example.com/bc", "https://app.example.com/bc#frag", "ftp://x/bc", "https://"} {
		if _, err := e.rcv.Registration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReplayTTLCoversTheAcceptanceWindow(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, func(c *Config) { c.InsecureAllowMissingExp = true })
	skew := e.rcv.cfg.Skew
	now := clk.Now()
	if got := e.rcv.replayTTL(Event{IssuedAt: now, Expiry: now.Add(2 * time.Minute)}); got != 2*time.Minute+2*skew {
		t.Errorf("with exp: %v", got)
	}
	if got := e.rcv.replayTTL(Event{IssuedAt: now}); got != DefaultMaxAge+2*skew {
		t.Errorf("without exp: %v", got)
	}
	if got := e.rcv.replayTTL(Event{IssuedAt: now, Expiry: now.Add(time.Hour)}); got != DefaultMaxAge+2*skew {
		t.Errorf("far exp is capped by MaxAge: %v", got)
	}
	// A token without exp is refused as a replay until it could no longer
	// be accepted anyway.
	c := p.LogoutToken(clientID, sub, sid)
	delete(c, "exp")
	tok := p.SignLogoutToken(c)
	e.post(tok)
	clk.Advance(DefaultMaxAge)
	if w := e.post(tok); w.Code != http.StatusOK || e.logs.last(t)["outcome"] != outcomeReplay {
		t.Errorf("near the end of the window: %d %v", w.Code, e.logs.last(t))
	}
	clk.Advance(2 * skew)
	if w := e.post(tok); w.Code != http.StatusBadRequest || e.logs.last(t)["reason"] != codeIatOld {
		t.Errorf("after the window: %d %v", w.Code, e.logs.last(t))
	}
}

func TestClaimStringAgreesWithTheDecoder(t *testing.T) {
	for _, raw := range []string{`"alice"`, `""`, `"a\"b"`, `"\u00e9t\u00e9"`, `"été"`, `"a\\b"`, "\"\xff\"", "\"tab\there\"", `"\ud83d\ude00"`, `null`, `5`, `["a"]`} {
		got, ok := claimString(json.RawMessage(raw))
		var want string
		err := json.Unmarshal([]byte(raw), &want)
		wantOK := err == nil && (raw[0] == '"' || raw == "null")
		if ok != wantOK || (ok && got != want) {
			t.Errorf("claimString(%s) = %q, %v; decoder: %q, %v", raw, got, ok, want, err)
		}
	}
}
