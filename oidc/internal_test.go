package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// A 32-byte client secret, so that HS256 tokens keyed with it can be built
// (the attack being that anyone holding the secret could mint them).
const internalSecret = "0123456789abcdef0123456789abcdef"

func newInternalRP(t *testing.T) (*RP, *fakeidp.Provider) {
	t.Helper()
	idp := fakeidp.New(t, fakeidp.WithTLS())
	idp.AddClient(fakeidp.Client{ID: "rp", Secret: internalSecret, RedirectURIs: []string{"https://app.example/callback"}})
	rp, err := New(t.Context(), Config{
		Guard: middleware.Config{
			Store: memstore.New(memstore.Config{Now: idp.Now}), Keys: [][]byte{middleware.GenerateKey()},
			Now: idp.Now, Logger: slog.New(slog.DiscardHandler),
		},
		Providers: []ProviderConfig{{
			Issuer: idp.Issuer(), ClientID: "rp", ClientSecret: internalSecret, RedirectURL: "https://app.example/callback",
		}},
		HTTPClient: idp.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rp, idp
}

func TestIDTokenAlgorithmsOtherThanTheProvidersAreRefused(t *testing.T) {
	rp, idp := newInternalRP(t)
	p := rp.providers[0]
	now := idp.Now()
	claims := func() map[string]any {
		return map[string]any{
			"iss": idp.Issuer(), "sub": "alice", "aud": "rp", "nonce": "n",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
	}
	key := idp.SigningKey()
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name  string
		token string
		check string
	}{
		{"an RS256 token signed with the published key is accepted", idp.Sign(nil, claims()), ""},
		{"alg none is refused", idp.Unsigned(claims()), CheckSignature},
		{"HS256 keyed with the client secret is refused", idp.SignWith([]byte(internalSecret), "HS256", nil, claims()), CheckSignature},
		{"HS256 keyed with the provider's public key is refused", idp.SignWith(pub, "HS256", map[string]any{"kid": key.ID}, claims()), CheckSignature},
		{"an algorithm the provider does not advertise is refused", idp.SignWith(ec, "ES256", map[string]any{"kid": key.ID}, claims()), CheckSignature},
		{"a header naming RS512 over an RS256 signature is refused", idp.Sign(map[string]any{"alg": "RS512"}, claims()), CheckSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rp.verifyIDToken(t.Context(), p, tc.token, "n", "")
			if tc.check == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var te *TokenError
			if !errors.Is(err, ErrIDToken) || !errors.As(err, &te) || te.Check != tc.check {
				t.Fatalf("got %v, want check %s", err, tc.check)
			}
		})
	}
}

// A sealed record moved under another session's key (by someone with write
// access to the store) does not open there.
func TestServerSideTokensAreBoundToTheirSession(t *testing.T) {
	rp, idp := newInternalRP(t)
	ctx := t.Context()
	abs := idp.Now().Add(time.Hour)
	if err := rp.putSecret(ctx, &secretRecord{Session: "A", Provider: "x", RefreshToken: "rt-A"}, abs); err != nil {
		t.Fatal(err)
	}
	v, ok, err := rp.secrets.Secret(ctx, secretKey("A"))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := rp.loadSecret(ctx, "A"); err != nil {
		t.Fatalf("own record: %v", err)
	}
	if err := rp.secrets.PutSecret(ctx, secretKey("B"), v, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.loadSecret(ctx, "B"); err == nil {
		t.Fatal("a record copied to another session opened")
	}
	// And the store holds no readable token.
	if len(v) < 20 || strings.Contains(v, "rt-A") {
		t.Fatalf("stored value %q is not sealed", v)
	}
}

// The key set asks the provider again for an unknown kid, but not more
// than once per minRefetch, so forged kids cannot make us hammer the
// provider.
func TestUnknownKidRefetchesAtMostOncePerInterval(t *testing.T) {
	rp, idp := newInternalRP(t)
	p := rp.providers[0]
	claims := map[string]any{"iss": idp.Issuer(), "sub": "a", "aud": "rp", "iat": idp.Now().Unix(), "exp": idp.Now().Add(time.Minute).Unix()}
	if _, err := p.keys.VerifySignature(t.Context(), idp.Sign(nil, claims)); err != nil {
		t.Fatal(err)
	}
	first := p.keys.triedAt
	for range 20 {
		if _, err := p.keys.VerifySignature(t.Context(), idp.Sign(map[string]any{"kid": "forged"}, claims)); err == nil {
			t.Fatal("forged kid verified")
		}
	}
	if p.keys.triedAt != first {
		t.Fatal("forged kids triggered a refetch within the interval")
	}
	// After a rotation and the interval, the new key is found.
	idp.RotateKey()
	idp.Advance(minRefetch + time.Second)
	if _, err := p.keys.VerifySignature(t.Context(), idp.Sign(nil, claims)); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
}
