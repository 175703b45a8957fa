package middleware_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/sealer"
	"github.com/sessionfence/sessionfence/middleware"
)

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// issueWithLength issues a session for alice whose cookie value has
// length ≡ rem (mod 4), by growing Data.
func issueWithLength(t *testing.T, f *fixture, rem int) string {
	t.Helper()
	for n := range 3 {
		c := alice
		c.Data = strings.Repeat("d", n)
		_, v := f.issue(t, c)
		if len(v)%4 == rem {
			return v
		}
	}
	t.Fatalf("no cookie length ≡ %d (mod 4)", rem)
	return ""
}

// A session cookie has one spelling. Unpadded base64url leaves unused low
// bits in the last character when the length is 2 or 3 (mod 4); a lenient
// decoder ignores them, so one cookie would open under 16 (or 4)
// spellings: 16 keys for one session in caches, replay lists and logs.
func TestCookieWithAlteredTrailingBitsIsRefused(t *testing.T) {
	tests := []struct {
		name      string
		rem       int // cookie length mod 4
		spellings int // values decoding to the same bytes under a lenient decoder
	}{
		{"a cookie whose last character has four unused bits opens under one spelling of sixteen", 2, 16},
		{"a cookie whose last character has two unused bits opens under one spelling of four", 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			value := issueWithLength(t, f, tt.rem)
			want, err := base64.RawURLEncoding.DecodeString(value)
			if err != nil {
				t.Fatal(err)
			}
			head, last := value[:len(value)-1], strings.IndexByte(base64URL, value[len(value)-1])
			mask := tt.spellings - 1 // the unused low bits
			same, opened := 0, 0
			for v := last &^ mask; v <= last|mask; v++ {
				alt := head + base64URL[v:v+1]
				if raw, err := base64.RawURLEncoding.DecodeString(alt); err == nil && bytes.Equal(raw, want) {
					same++
				}
				d := f.guard.Check(context.Background(), alt)
				switch {
				case d.Kind == middleware.DecisionAllowed:
					opened++
				case alt == value || d.Kind != middleware.DecisionInvalid || !errors.Is(d.Cause, sealer.ErrMalformed):
					t.Fatalf("spelling %q: %v, want invalid (malformed)", alt[len(alt)-4:], d)
				}
			}
			if same != tt.spellings || opened != 1 {
				t.Fatalf("%d spellings decode to the same bytes (want %d); %d open (want 1)", same, tt.spellings, opened)
			}
		})
	}
}

// renewFunc adapts a function to middleware.Renewer.
type renewFunc func(ctx context.Context, s *middleware.Session) error

func (f renewFunc) Renew(ctx context.Context, s *middleware.Session) error { return f(ctx, s) }

// wantTooLarge checks that err is a *CookieTooLargeError for field, over
// limit, that wraps ErrCookieTooLarge.
func wantTooLarge(t *testing.T, err error, field string, limit int) {
	t.Helper()
	var tl *middleware.CookieTooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, middleware.ErrCookieTooLarge) {
		t.Fatalf("err = %v, want a *CookieTooLargeError wrapping ErrCookieTooLarge", err)
	}
	if tl.Field != field || tl.Limit != limit || tl.Size <= tl.Limit {
		t.Fatalf("err = %+v, want field %s over a limit of %d", tl, field, limit)
	}
}

// Issue never hands out a cookie the guard could not open: the login
// would succeed, then every request be refused, and the browser loop
// through silent logins.
func TestIssueRefusesSessionsTooLargeToOpen(t *testing.T) {
	big := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		claim func(c *middleware.Claims)
		field string // "" when the session is issued
	}{
		{"a 2048-byte claim is issued and opens", func(c *middleware.Claims) { c.Data = big(2048) }, ""},
		{"a 2049-byte data claim is refused", func(c *middleware.Claims) { c.Data = big(2049) }, "Data"},
		{"a 2049-byte subject is refused", func(c *middleware.Claims) { c.Subject = big(2049) }, "Subject"},
		{"a 2049-byte issuer is refused", func(c *middleware.Claims) { c.Issuer = big(2049) }, "Issuer"},
		{"a 2049-byte tenant is refused", func(c *middleware.Claims) { c.Tenant = big(2049) }, "Tenant"},
		{"a 2049-byte IdP session id is refused", func(c *middleware.Claims) { c.IdPSession = big(2049) }, "IdPSession"},
		{"a 2049-byte acr is refused", func(c *middleware.Claims) { c.ACR = big(2049) }, "ACR"},
		{"amr values that join to 2049 bytes are refused", func(c *middleware.Claims) { c.AMR = []string{big(1024), big(1024)} }, "AMR"},
		{"claims that fit one by one but not together are refused", func(c *middleware.Claims) { c.Data, c.Tenant = big(2048), big(2048) }, "cookie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, reg := newCountingGuard(t)
			c := alice
			tt.claim(&c)
			s, ck, err := g.Issue(context.Background(), c)
			if tt.field != "" {
				limit := 2048
				if tt.field == "cookie" {
					limit = middleware.MaxCookieLen - len(g.CookieName())
				}
				wantTooLarge(t, err, tt.field, limit)
				if s != nil || ck != nil || reg.tracks.Load() != 0 {
					t.Fatalf("a refused login left state: session %v, cookie %v, %d registry writes", s != nil, ck != nil, reg.tracks.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := g.Check(context.Background(), ck.Value); d.Kind != middleware.DecisionAllowed || d.Session.Data != c.Data {
				t.Fatalf("the issued cookie: %v", d)
			}
		})
	}
}

// The sealed value may use every byte browsers keep for the cookie
// (name and value together: MaxCookieLen), and not one more.
func TestIssuedCookieAtTheSizeLimit(t *testing.T) {
	for _, name := range []string{"__Host-sessionfence", "__Host-session"} {
		t.Run("cookie named "+name, func(t *testing.T) {
			f := newFixture(t, func(c *middleware.Config) { c.CookieName = name })
			limit := middleware.MaxCookieLen - len(name)
			issue := func(n int) (string, error) {
				c := alice
				c.Tenant, c.Data = strings.Repeat("t", 2048), strings.Repeat("d", n)
				_, ck, err := f.guard.Issue(context.Background(), c)
				if err != nil {
					return "", err
				}
				return ck.Value, nil
			}
			// The largest Data that issues, by bisection.
			lo, hi := 0, 2049 // issue(lo) succeeds, issue(hi) fails
			for hi-lo > 1 {
				if mid := (lo + hi) / 2; func() bool { _, err := issue(mid); return err == nil }() {
					lo = mid
				} else {
					hi = mid
				}
			}
			v, err := issue(lo)
			if err != nil {
				t.Fatal(err)
			}
			// Unpadded base64 has no length ≡ 1 (mod 4): such a limit
			// leaves one byte unused.
			if len(v) != limit && !(limit%4 == 1 && len(v) == limit-1) {
				t.Fatalf("the largest cookie issued is %d characters, limit %d", len(v), limit)
			}
			if d := f.guard.Check(context.Background(), v); d.Kind != middleware.DecisionAllowed {
				t.Fatalf("the largest cookie issued does not open: %v", d)
			}
			_, err = issue(lo + 1)
			wantTooLarge(t, err, "cookie", limit)
		})
	}
}

// Every path that seals a session refuses one the guard could not open,
// and ends it with a clear cause instead of looping.
func TestSealingPathsRefuseSessionsTooLargeToOpen(t *testing.T) {
	grow := func(_ context.Context, s *middleware.Session) error {
		s.Data = strings.Repeat("x", 2049)
		return nil
	}
	t.Run("a renewal that grows the session past a cookie ends it", func(t *testing.T) {
		f := newFixture(t, func(c *middleware.Config) { c.Renewer = renewFunc(grow) })
		_, value := f.issue(t, alice)
		f.clock.Advance(6 * time.Minute)
		d := f.guard.Authenticate(context.Background(), value)
		if d.Kind != middleware.DecisionSessionExpired || d.Cookie == nil || d.Cookie.MaxAge != -1 {
			t.Fatalf("decision = %v, cookie %+v; want session_expired clearing the cookie", d, d.Cookie)
		}
		wantTooLarge(t, d.Cause, "Data", 2048)
	})
	t.Run("a reload that grows the session past a cookie ends it", func(t *testing.T) {
		f := newFixture(t, func(c *middleware.Config) { c.OnReload = grow })
		_, value := f.issue(t, alice)
		f.bump(t, middleware.TenantScope("acme"), middleware.Bump{Kind: middleware.BumpReload})
		d := f.guard.Authenticate(context.Background(), value)
		if d.Kind != middleware.DecisionSessionExpired || d.Cookie == nil || d.Cookie.MaxAge != -1 {
			t.Fatalf("decision = %v, cookie %+v; want session_expired clearing the cookie", d, d.Cookie)
		}
		wantTooLarge(t, d.Cause, "Data", 2048)
	})
	t.Run("a re-issue of a session grown past a cookie is refused", func(t *testing.T) {
		f := newFixture(t, nil)
		s, _ := f.issue(t, alice)
		if err := grow(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		ck, err := f.guard.Reissue(context.Background(), s)
		if ck != nil {
			t.Fatalf("Reissue returned a cookie: %+v", ck)
		}
		wantTooLarge(t, err, "Data", 2048)
	})
}

// FuzzIssuedCookiesOpen: whatever the claims, Issue either refuses them or
// returns a cookie that browsers keep and the guard opens to the same
// session.
func FuzzIssuedCookiesOpen(f *testing.F) {
	f.Add("alice", "acme", "urn:mfa", uint16(0))
	f.Add("alice", "acme", "", uint16(2048))
	f.Add("alice", "acme", "", uint16(2049))
	f.Add(strings.Repeat("s", 2048), strings.Repeat("t", 2048), "", uint16(0))
	f.Add("", "", "", uint16(0))
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, subject, tenant, acr string, dataLen uint16) {
		c := middleware.Claims{Issuer: "https://idp.test", Subject: subject, Tenant: tenant, ACR: acr,
			Data: strings.Repeat("d", int(dataLen)%4096)}
		_, ck, err := fx.guard.Issue(context.Background(), c)
		if err != nil {
			var tl *middleware.CookieTooLargeError
			if subject != "" && !errors.As(err, &tl) {
				t.Fatalf("Issue = %v, want a session or a *CookieTooLargeError", err)
			}
			return
		}
		if n := len(ck.Name) + len(ck.Value); n > middleware.MaxCookieLen {
			t.Fatalf("cookie of %d bytes issued", n)
		}
		d := fx.guard.Check(context.Background(), ck.Value)
		if d.Kind != middleware.DecisionAllowed || d.Session.Subject != subject || d.Session.Tenant != tenant ||
			d.Session.ACR != acr || d.Session.Data != c.Data {
			t.Fatalf("the issued cookie opens as %v", d)
		}
	})
}
