// Package fakeidp is an in-process OpenID Provider for tests only.
//
// It exists so that the oidc/ and backchannel/ packages can be tested end
// to end against something that behaves like a real provider where it
// matters for session revocation (SSO sessions, auth_time, prompt, max_age,
// acr_values, PKCE, refresh-token rotation, RP-initiated and back-channel
// logout, key rotation) and that can be told to misbehave on purpose, so
// that every refusal path of the relying party has a test. It is NOT an
// identity provider: there is no persistence, no consent, and its
// shortcuts (a test decides who "logs in"; the optional login page
// publishes its passwords and takes a fixed one-time code) would be fatal
// in production. Never import it from non-test code, with one exception:
// examples/devidp, the development-only provider of the demo, serves it
// through [NewProvider] and [WithLoginUI].
//
// Happy path:
//
//	p := fakeidp.New(t)
//	p.AddClient(fakeidp.Client{ID: "rp", Secret: "s", RedirectURIs: []string{rpURL + "/callback"}})
//	p.SetUser(fakeidp.User{Subject: "alice", Email: "alice@example.com", MFA: true})
//	browser := p.Browser() // cookie jar: the second /authorize is a silent SSO
//	// discover p.Issuer() with go-oidc using p.Client(), then drive the flow with browser.
//
// Without a test: [NewProvider] builds the same engine for a given issuer
// and [Provider.Handler] serves it; [New] is that plus an httptest server
// and t.Cleanup.
//
// Interactive mode: with [WithLoginUI], /authorize shows an HTML login
// page (and a one-time-code page for MFA) whenever it needs an
// authentication, instead of logging in the SetUser user.
//
// Endpoints (relative to [Provider.Issuer]):
//
//	/.well-known/openid-configuration  discovery
//	/keys                              JWKS
//	/authorize                         authorization endpoint (code flow only)
//	/token                             authorization_code and refresh_token grants
//	/userinfo                          bearer access token in, profile out
//	/revoke                            RFC 7009 token revocation
//	/end_session                       RP-initiated logout 1.0
//	/login                             login form target (WithLoginUI only)
//
// Misbehaviour is switched on with [Provider.SetQuirks]; tokens for negative
// tests are crafted with [Provider.Sign], [Provider.SignWith],
// [Provider.Unsigned] and [Provider.LogoutToken], and delivered with
// [Provider.Deliver].
//
// Concurrency: every method is safe for concurrent use and the server's
// handlers share the provider's state under one mutex, so tests may run
// with -race. Methods that can fail and return no error (Sign, AddClient,
// RotateKey…) report the failure with t.Fatal, so call them from the test's
// own goroutine (a provider made by NewProvider panics instead: only a
// programming error reaches them).
//
// Time: the provider reads time from the clock given by [WithClock]
// (default time.Now) plus the offset moved by [Provider.Advance], so
// max_age, code expiry and token lifetimes are testable without sleeping.
// Verifiers on the relying-party side must then be given the same clock.
package fakeidp
