package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

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

	_, _ = store.Bump(ctx, middleware.SubjectScope("https://idp.example", "alice"),
		middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA, Reason: "lost laptop"})
	d := guard.Check(ctx, cookie.Value)
	fmt.Println(d.Kind, d.Scope.Kind, d.Policy)
	// Output:
	// allowed
	// reauth_required subject mfa
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
	f := middleware.Fence{Gen: 4}
	now := f.PendingAt
	fmt.Println(f.EffectiveGen(now))
	// Output: 4
}
