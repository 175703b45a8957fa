package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// A login issues a session; a revocation of the user's fence ends it on
// the next request, wherever that request lands.
func ExampleGuard_Issue() {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	guard, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		panic(err)
	}

	_, cookie, err := guard.Issue(ctx, middleware.Claims{Issuer: "https://idp.example", Subject: "alice"})
	if err != nil {
		panic(err)
	}
	fmt.Println(guard.Check(ctx, cookie.Value).Kind)

	_, _ = guard.Writer().Write(ctx, middleware.Change{
		Scope: middleware.SubjectScope("https://idp.example", "alice"), Kind: middleware.BumpRevoke,
		Policy: middleware.PolicyMFA, Reason: "lost laptop", Actor: "ops:bob",
	})
	d := guard.Check(ctx, cookie.Value)
	fmt.Println(d.Kind, d.Scope.Kind, d.Policy)
	// Output:
	// allowed
	// reauth_required subject mfa
}

// CheckSession asks again, after a slow step, whether a session already
// opened is still good: here a renewer waiting for the provider while an
// administrator ends the user's sessions. Nothing the slow step obtained
// (a rotated refresh token) is kept unless the answer is still allowed.
func ExampleGuard_CheckSession() {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	guard, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		panic(err)
	}
	s, _, err := guard.Issue(ctx, middleware.Claims{Issuer: "https://idp.example", Subject: "alice"})
	if err != nil {
		panic(err)
	}
	fmt.Println(guard.CheckSession(ctx, s).Kind)

	// ... the provider answers a refresh; meanwhile:
	_, _ = store.Bump(ctx, middleware.SubjectScope("https://idp.example", "alice"), middleware.Bump{Kind: middleware.BumpRevoke})
	if d := guard.CheckSession(ctx, s); !d.Allowed() {
		fmt.Println("discard the rotated token:", d.Kind, d.Scope.Kind)
	}
	// Output:
	// allowed
	// discard the rotated token: revoked subject
}

// Refusal turns a decision into the HTTP answer: JSON with a stable code for
// API calls, a redirect to the login page for browser navigations.
func ExampleGuard_Refusal() {
	guard, _ := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	d := guard.Check(context.Background(), "") // no cookie

	api := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	fmt.Println(guard.Refusal(d, api).Status, guard.Refusal(d, api).Body.Error)

	page := httptest.NewRequest(http.MethodGet, "/reports?year=2026", nil)
	page.Header.Set("Sec-Fetch-Mode", "navigate")
	fmt.Println(guard.Refusal(d, page).Status, guard.Refusal(d, page).Location)
	// Output:
	// 401 no_session
	// 303 /login?reason=no_session&return_to=%2Freports%3Fyear%3D2026
}

// An announced termination lets requests through until its time, with a
// notice the application can show.
func ExampleFence_EffectiveGen() {
	at := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	// Generation 4 in force; an announcement reserved 5 for 18:00.
	f := middleware.Fence{Gen: 4, Reserved: 5, PendingAt: at}
	fmt.Println(f.EffectiveGen(at.Add(-time.Minute)), f.Admits(4, at.Add(-time.Minute)), f.Admits(5, at.Add(-time.Minute)))
	fmt.Println(f.EffectiveGen(at), f.Admits(4, at), f.Admits(5, at))
	// Output:
	// 4 true true
	// 5 false true
}

// Every fence change goes through the guard's writer, which gives the
// fence its expiry, records the audit entry and reports the metric.
func ExampleWriter_Write() {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	guard, _ := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	issuer, sub := "https://idp.example", "alice"

	w, err := guard.Writer().Write(ctx, middleware.Change{
		Scope: middleware.SubjectScope(issuer, sub), Kind: middleware.BumpRevoke,
		Policy: middleware.PolicyMFA, Reason: "lost laptop", Actor: "ops:alice",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(w.Fence.Gen, w.Entry.Action, w.Entry.Actor, w.Entry.Policy)
	// Output: 1 terminate_user ops:alice mfa
}
