// Package adminui is the administration page of sessionfence: plain HTML,
// one style sheet and a little vanilla JavaScript, embedded in the binary
// (no build step, no external asset), that drives the JSON admin API of
// [middleware.NewAdminAPI] with fetch. It also ships banner.js, a tiny
// script ordinary pages include to warn people of an announced sign-out.
//
// Happy path (net/http):
//
//	api, _ := middleware.NewAdminAPI(admin, middleware.AdminAPIConfig{Authorize: middleware.AllowSubjects(iss, "alice")})
//	mux.Handle("/admin/api/", api)
//	mux.Handle("/admin/", adminui.Handler(adminui.Config{}))
//	http.ListenAndServe(addr, nethttp.Middleware(guard)(mux))
//	// every page: <script src="/admin/banner.js" defer></script>
//
// With gin, one catch-all behind ginadapter.Middleware serves both (gin
// allows no route beside a catch-all): authed.Any("/admin/*path", ...)
// calling api.ServeHTTP for paths under /admin/api/ and the page's handler
// otherwise; see examples/gin/ginapp.
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
//   - Mount the handler behind the guard's middleware, like the API: the
//     page itself holds no data, but serving it only to signed-in users
//     keeps its shape private and sends people to log in first.
//   - Every response carries Content-Security-Policy (default-src 'self',
//     no inline script or style, frame-ancestors 'none', base-uri 'none'),
//     X-Content-Type-Options: nosniff, X-Frame-Options: DENY,
//     Referrer-Policy: no-referrer and Cache-Control: no-store.
//   - The scripts never build HTML from data (textContent only), so a
//     reason, user agent or subject cannot inject markup.
//   - State-changing calls send the X-CSRF-Token header obtained from GET
//     csrf; the API also checks the request's origin. The page adds no
//     protection of its own, and removes none.
//   - The package uses the standard library only.
package adminui
