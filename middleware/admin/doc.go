// Package admin is the administration layer of sessionfence, built on the
// core's primitives: a [Service] that terminates everyone, a tenant, a
// user or a session (now, or announced for later), cancels announcements
// and moves reload generations; an [API] that serves those actions as JSON
// to the admin page (package ui) and scripts; and the [FenceView] the API
// and the CLI print. Every change goes through the core's one fence writer
// ([middleware.Writer]): the expiry rule, the keep-the-caller rule, the
// observer and the audit entry are applied there, whoever acts.
//
// Happy path (an application):
//
//	svc, err := admin.New(admin.Config{Guard: guard})
//	api, err := admin.NewAPI(svc, admin.APIConfig{
//		Authorize: admin.AllowIfDataContains("roles", "admin"),
//	})
//	mux.Handle("/admin/", ui.Handler(api, ui.Config{})) // page and API
//	handler := nethttp.Middleware(guard)(mux)
//
// A tool without the application's cookie keys (the CLI) builds its
// Service over [middleware.NewWriter] instead: it cannot keep anyone's
// session, and its fences last as long as the deployment's guards
// recorded in the store.
//
// Who may do what is decided by an [AuthorizeFunc], given the caller's
// session and a [Request]: the operation ([Op], a closed set), its target
// scope and, for terminations, whether it is announced ([Request.At],
// [Request.Announced]) or immediate, the policy for the next login, and
// whether the caller is kept. The default refuses everything.
//
// Security notes:
//
//   - The API trusts only the session the guard's middleware put in the
//     request context; mounted without it, every call is 401.
//   - State-changing calls must come from the page's origin
//     (Sec-Fetch-Site, else Origin, compared with a configured origin or
//     scheme, never one read from the request) and carry the session's
//     anti-CSRF token ([HeaderCSRFToken], an HMAC under a key the guard
//     derives for this purpose alone).
//   - terminate-all needs the typed confirmation [ConfirmTerminateAll].
//   - Input is strict (one flat JSON object, no unknown or repeated
//     fields, bounded sizes); a refused request changes nothing and is
//     logged; clients never see internal error text.
//   - The package uses the standard library and the middleware package
//     only.
package admin
