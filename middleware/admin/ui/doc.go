// Package ui is the administration page of sessionfence: plain HTML, one
// style sheet and a little vanilla JavaScript, embedded in the binary (no
// build step, no external asset), that drives the JSON API of package
// admin with fetch. It also ships banner.js, a tiny script ordinary pages
// include to warn people of an announced sign-out.
//
// The page is built from the API ([New] takes the *admin.API) and serves
// it: the API's prefix and the guard's login URL are read from the API,
// never repeated, and one mount answers the page, its assets and every
// call the page makes.
//
// Happy path (net/http):
//
//	svc, _ := admin.New(admin.Config{Guard: guard})
//	api, _ := admin.NewAPI(svc, admin.APIConfig{Authorize: admin.AllowSubjects(iss, "alice")})
//	mux.Handle("/admin/", ui.Handler(api, ui.Config{})) // page at /admin/, API at /admin/api/
//	mux.Handle("GET /banner.js", ui.BannerHandler())   // outside the guard
//	http.ListenAndServe(addr, nethttp.Middleware(guard)(mux))
//
// With gin, one catch-all route behind ginadapter.Middleware serves it
// all (gin allows no other route beside a catch-all at the same level):
//
//	authed := r.Group("/", ginadapter.Middleware(guard))
//	authed.Any("/admin/*path", gin.WrapH(ui.Handler(api, ui.Config{})))
//
// (see the adapters/gin package's Example for a runnable version).
//
// What the page offers: the caller's own sessions; a user search (issuer
// and sub) listing that user's sessions with per-session and per-user
// sign-out; "Log all users out", behind a modal dialog that states the
// consequence and asks for the word terminate-all to be typed; an
// announced sign-out (time, reason, policy) and its cancellation; the
// current fences; the audit log, page by page. Which of these a caller may
// use is decided by the API's Authorize hook, never by the page: the page
// only hides what GET me says the caller cannot do.
//
// Security notes:
//
//   - Mount the handler behind the guard's middleware: the API needs the
//     caller's session, and serving the page only to signed-in users keeps
//     its shape private and sends people to log in first.
//   - Every page and asset response carries Content-Security-Policy
//     (default-src 'self', no inline script or style, frame-ancestors
//     'none', base-uri 'none'), X-Content-Type-Options: nosniff,
//     X-Frame-Options: DENY, Referrer-Policy: no-referrer and
//     Cache-Control: no-store.
//   - The scripts never build HTML from data (textContent only), so a
//     reason, user agent or subject cannot inject markup.
//   - State-changing calls send the X-CSRF-Token header obtained from GET
//     csrf; the API also checks the request's origin. The page adds no
//     protection of its own, and removes none.
//   - The package uses the standard library and package admin only.
package ui
