package oidc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/oidc"
)

// BenchmarkBearerVerifyAndFenceCheck measures what an API request costs in
// bearer mode: verifying the JWT access token (signature with a cached
// key, claims) and judging it against the fences in a memstore, with one
// fence bumped so the check is not trivially empty.
func BenchmarkBearerVerifyAndFenceCheck(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			idp := fakeidp.New(b, fakeidp.WithTLS(), fakeidp.WithSigningAlg(alg))
			store := memstore.New(memstore.Config{Now: idp.Now})
			g, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}, Now: idp.Now,
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			v, err := oidc.NewBearerVerifier(ctx, oidc.BearerConfig{
				Issuers: []string{idp.Issuer()}, Audience: fakeidp.DefaultAPIAudience, TenantClaim: "tenant",
				HTTPClient: idp.Client(), Now: idp.Now,
			})
			if err != nil {
				b.Fatal(err)
			}
			idp.Advance(time.Minute)
			if _, err := store.Bump(ctx, middleware.TenantScope("other"), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
				b.Fatal(err)
			}
			idp.Advance(10 * time.Second)
			raw := idp.SignAccessToken(idp.AccessTokenClaims(clientID, alice))
			if _, err := v.VerifyToken(ctx, raw); err != nil { // warm the key cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tc, err := v.VerifyToken(ctx, raw)
				if err != nil {
					b.Fatal(err)
				}
				if d := g.CheckToken(ctx, tc); !d.Allowed() {
					b.Fatal(d)
				}
			}
		})
	}
}

// BenchmarkBearerRefusesHostileTokens measures refusals that must stay
// cheap: an oversized token and alg none, both refused before any
// signature work.
func BenchmarkBearerRefusesHostileTokens(b *testing.B) {
	idp := fakeidp.New(b, fakeidp.WithTLS())
	v, err := oidc.NewBearerVerifier(context.Background(), oidc.BearerConfig{
		Issuers: []string{idp.Issuer()}, Audience: fakeidp.DefaultAPIAudience, HTTPClient: idp.Client(), Now: idp.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	for name, raw := range map[string]string{
		"oversized": string(make([]byte, 1<<20)),
		"alg_none":  idp.Unsigned(idp.AccessTokenClaims(clientID, alice)),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyToken(context.Background(), raw); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
