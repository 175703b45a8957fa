// Package devidp is a development-only OpenID Provider: the one the
// sessionfence demo and browser tests sign in against. DEVELOPMENT ONLY —
// never expose it: every page lists the accounts with their passwords, the
// one-time code is fixed, and nothing is persisted.
//
// It serves sessionfence's own test provider engine (internal/fakeidp) in
// its interactive mode, plus an index page and an admin page, so that the
// library's single go.mod gains no OpenID Provider dependency for a
// development tool.
//
// Happy path:
//
//	s, err := devidp.New(devidp.Config{
//		Issuer:  "http://127.0.0.1:9000",
//		Clients: []devidp.Client{devidp.DefaultClient()},
//	})
//	if err != nil { log.Fatal(err) }
//	log.Fatal(http.ListenAndServe("127.0.0.1:9000", s))
//
// Endpoints, under the issuer's URL: /.well-known/openid-configuration,
// /keys, /authorize (code flow with PKCE S256; prompt, max_age, acr_values,
// login_hint), /token (authorization_code, refresh_token with rotation),
// /userinfo, /revoke, /end_session (RP-initiated logout), /login (the
// forms' target), / (what this is, accounts, clients) and /dev/ (live
// provider sessions, with buttons that end them and send back-channel
// logout tokens to every registered client).
//
// Security notes, for what a development tool still owes its user: the
// login forms carry a CSRF token bound to the pending authorization
// request and to the browser (a cookie), and cross-origin posts are
// refused; the admin forms carry an HMAC of a per-browser cookie; pages
// send a Content Security Policy without script, and X-Frame-Options DENY.
// The admin page has no authentication at all, which is one more reason
// never to expose the server: cmd devidp refuses a non-loopback address
// unless told otherwise.
package devidp
