package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The API is mounted behind the guard's middleware, which authenticates
// the caller; the authorizer decides who is an administrator. Here an
// administrator terminates every session, keeping their own: the response
// carries their re-issued cookie.
func ExampleNewAPI() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, _ := middleware.New(middleware.Config{
		Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}, Logger: quiet,
	})
	svc, _ := admin.New(admin.Config{Guard: guard})
	api, err := admin.NewAPI(svc, admin.APIConfig{
		PublicOrigin: "https://app.example.com",
		Authorize:    admin.AllowIfDataContains("roles", "admin"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/api/", api)
	app := nethttp.Middleware(guard)(mux)

	// An administrator's session, as the login handler would issue it.
	s, cookie, _ := guard.Issue(context.Background(), middleware.Claims{
		Issuer: "https://idp.example.com", Subject: "root", Data: `{"roles":["admin"]}`,
	})

	// What the admin page sends: JSON, same origin, the CSRF token.
	r := httptest.NewRequest(http.MethodPost, "https://app.example.com/admin/api/terminate-all",
		strings.NewReader(`{"confirm":"terminate-all","reason":"credential leak","reauth":"mfa"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set(admin.HeaderCSRFToken, api.CSRFToken(s))
	r.AddCookie(cookie)
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)

	kept := w.Result().Cookies()[0]
	fmt.Println(w.Code, guard.Check(context.Background(), kept.Value).Kind)
	fmt.Println(guard.Check(context.Background(), cookie.Value).Kind)
	// Output:
	// 200 allowed
	// reauth_required
}

// An administrator signs everyone out but keeps their own session: the
// re-issued cookie comes back with the action, and the next login of
// everyone else must use a second factor.
func ExampleService_TerminateAll() {
	ctx := context.Background()
	guard, _ := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	svc, _ := admin.New(admin.Config{Guard: guard})

	root, rootCookie, _ := guard.Issue(ctx, middleware.Claims{Issuer: "https://idp.example", Subject: "root"})
	_, userCookie, _ := guard.Issue(ctx, middleware.Claims{Issuer: "https://idp.example", Subject: "alice"})

	res, err := svc.TerminateAll(ctx, admin.Action{
		Actor: "https://idp.example|root", Reason: "suspected breach", Policy: middleware.PolicyMFA, Keep: root,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Entry.Action, res.Entry.Scope, res.Entry.Policy)
	fmt.Println("alice:", guard.Check(ctx, userCookie.Value).Kind)
	fmt.Println("root, old cookie:", guard.Check(ctx, rootCookie.Value).Kind)
	fmt.Println("root, re-issued cookie:", guard.Check(ctx, res.Cookie.Value).Kind)
	// Output:
	// terminate_all global mfa
	// alice: reauth_required
	// root, old cookie: reauth_required
	// root, re-issued cookie: allowed
}

// A policy that tells announced terminations from immediate ones:
// administrators may do anything; support staff may end one user's
// sessions, and may announce (but not carry out at once) a sign-out of
// everyone, so users get time to save their work.
func ExampleAuthorizeFunc() {
	isAdmin := admin.AllowIfDataContains("roles", "admin")
	isSupport := admin.AllowIfDataContains("roles", "support")
	authorize := func(ctx context.Context, s *middleware.Session, r admin.Request) error {
		if isAdmin(ctx, s, r) == nil {
			return nil
		}
		if err := isSupport(ctx, s, r); err != nil {
			return err
		}
		switch {
		case r.Op == admin.OpTerminateUser, r.Op == admin.OpSessions:
			return nil
		case r.Op == admin.OpTerminateAll && r.Announced():
			return nil
		}
		return admin.ErrForbidden
	}

	support := &middleware.Session{Data: `{"roles":["support"]}`}
	ctx := context.Background()
	now := admin.Request{Op: admin.OpTerminateAll, Target: middleware.GlobalScope()}
	later := now
	later.At = time.Date(2030, 1, 1, 18, 0, 0, 0, time.UTC) // announced for 18:00
	fmt.Println("terminate-all now:", authorize(ctx, support, now))
	fmt.Println("terminate-all announced:", authorize(ctx, support, later))
	// Output:
	// terminate-all now: sessionfence/admin: forbidden
	// terminate-all announced: <nil>
}
