// Package oidc connects sessionfence to OpenID Connect providers: login
// (authorization code flow with PKCE), renewal with server-side refresh
// tokens, forced re-authentication when a fence demands it (prompt=login,
// max_age, MFA), RP-initiated logout, and verification of JWT access
// tokens for APIs and mobile apps, with RFC 9470 step-up challenges.
//
// It builds on github.com/coreos/go-oidc/v3 and golang.org/x/oauth2; their
// types stay out of this package's API, except that callers may pass
// x/oauth2-style options through [LoginOption].
//
// Happy path:
//
//	rp, err := oidc.New(ctx, oidc.Config{
//		Guard:     middleware.Config{Store: store, Keys: keys}, // store with Secrets and Locker (memstore, valkeystore)
//		Providers: []oidc.ProviderConfig{{Issuer: "https://idp.example", ClientID: "app", ClientSecret: secret, RedirectURL: "https://app.example/callback"}},
//	})
//	mux.Handle("GET /login", rp.LoginHandler())
//	mux.Handle("GET /callback", rp.CallbackHandler())
//	mux.Handle("POST /logout", rp.LogoutHandler())
//	mux.Handle("/", nethttp.Middleware(rp.Guard())(app))
//
// For APIs: v, err := oidc.NewBearerVerifier(ctx, oidc.BearerConfig{Issuers: …, Audience: "api"})
// then nethttp.Bearer(guard, v) or ginadapter.Bearer(guard, v).
//
// # Security notes
//
//   - The RP builds the guard (see [RP.Guard]) because it is the guard's
//     renewer: sessions expire after the guard's AccessLifetime and are
//     renewed with the provider's refresh token, so the provider's own
//     revocation and account state are honoured every few minutes.
//   - Refresh tokens and ID tokens never reach the browser. They live in
//     the store's Secrets ability, sealed (AES-256-GCM under a key derived
//     from the guard's key ring for "refresh-token") and bound to their
//     session id. Without Secrets and Locker in the store, [New] refuses
//     [RefreshServerSide]; choose [RefreshNone] explicitly to run without
//     renewal.
//   - Renewal across instances runs under a Locker lease, re-checks the
//     record inside it, and never redeems a rotated refresh token twice.
//     A provider's invalid_grant (matched with errors.As on
//     *oauth2.RetrieveError) ends the session. The absolute lifetime holds
//     whatever the provider says.
//   - A fence's re-authentication demand is checked in the callback (via
//     [middleware.Guard.Issue]) against the ID token's auth_time, acr and
//     amr, because providers may ignore prompt, max_age and acr_values. A
//     refused login is retried once with the strongest request, then
//     answered with an error page: never a redirect loop.
//   - The login state (state, nonce, PKCE verifier, return_to) is sealed in
//     a short-lived __Host- cookie named after the state, usable once
//     (with the store's Replay ability), so a callback completes only in
//     the browser that started it. return_to accepts local paths only
//     ([ValidReturnTo]).
//   - Logout is POST only and refuses cross-site requests (Sec-Fetch-Site,
//     Origin). It bumps the session's own fence, so every copy of the
//     cookie dies on every instance.
//   - ID tokens must be signed with an asymmetric algorithm the provider
//     advertises; "none" and HS* are refused. Bearer tokens likewise,
//     unless HS* is explicitly configured with InsecureHMACSecret. Keys are
//     refetched on an unknown kid at most once every 10 seconds.
//   - Error pages never show causes; Config.OnError receives them as
//     *[LoginError] for logs.
//
// See docs/oidc.md for the flow in detail and provider-specific wiring
// (Keycloak, Microsoft Entra ID, Okta, Auth0).
package oidc
