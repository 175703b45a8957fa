// Package middleware is the framework-agnostic core of sessionfence: fences
// (revocation generations per scope), the [Store] contract, the sealed
// session cookie, and the [Guard] that decides for every request whether a
// session may still pass.
//
// Tokens already handed out cannot be recalled. So every request checks a
// small shared state: one fence per scope (global, tenant, user, identity-
// provider session, our session). A session records the generation of each
// fence when it is issued and passes only while every recorded generation
// is still the current one. Revoking is one write to one fence, whatever
// the number of live sessions; nothing enumerates sessions.
//
// Happy path:
//
//	guard, err := middleware.New(middleware.Config{Store: memstore.New(), Keys: [][]byte{key}})
//	// after your own login succeeds:
//	_, cookie, err := guard.Issue(ctx, middleware.Claims{Issuer: iss, Subject: sub})
//	http.SetCookie(w, cookie)
//	// on every request (adapters/nethttp and adapters/gin do this):
//	d := guard.Authenticate(ctx, cookieValue) // d.Kind == middleware.DecisionAllowed?
//
// Every fence change (an administrator's, the CLI's, a back-channel
// logout, a user's own logout) goes through one [Writer], which applies
// the expiry, keep-the-caller, observer and audit rules. Administration
// itself (terminate, announce, cancel, reload, the HTTP API, the page)
// lives on top, in package middleware/admin and middleware/admin/ui.
//
// For adapters to other frameworks: [Guard.AuthenticateRequest] decides,
// [Decision.SetHeaders] sets the headers every response needs,
// [Guard.Refusal] says how to answer a refusal, and [NewContext] hands the
// decision to handlers ([FromContext]).
//
// Security notes:
//
//   - Cookies are sealed with AES-256-GCM under a key ring (first key
//     seals, all open) with per-purpose keys derived by HKDF; they default
//     to the __Host- prefix, Secure, HttpOnly and SameSite=Lax. Relaxing
//     Secure needs Config.InsecureCookies.
//   - Everything fails closed: an unreadable store refuses (unless
//     Config.StaleFor allows bounded staleness, which marks the decision
//     Stale); an epoch mismatch (wiped store) refuses every session issued
//     before; an IdP session once logged out is a tombstone.
//   - The hot path (open the cookie, one batched fence read, compare) does
//     no network round trip with a warm client-side cache and allocates a
//     handful of small objects.
//   - Clients never see error details: refusals carry a stable code;
//     causes go to the log.
package middleware
