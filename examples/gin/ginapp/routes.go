// Package ginapp routes the example application with gin and the gin
// adapter's native handlers. The pieces it routes to are built by
// examples/internal/app, shared with the net/http example.
package ginapp

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/examples/internal/app"
)

// Handler returns the application's gin engine, with the same routes as
// the net/http example (see examples/nethttp/nethttpapp).
func Handler(a *app.App) http.Handler {
	r := gin.New()
	r.Use(gin.Recovery())

	// Outside the guard: the login flow, the provider's calls, probes and
	// static files (the login and logout handlers and the receiver answer
	// wrong methods themselves).
	r.GET(app.LoginPath, gin.WrapH(a.RP.LoginHandler()))
	r.HEAD(app.LoginPath, gin.WrapH(a.RP.LoginHandler()))
	r.GET(app.CallbackPath, gin.WrapH(a.RP.CallbackHandler()))
	r.Any(app.LogoutPath, gin.WrapH(a.RP.LogoutHandler()))
	r.Any(app.BackchannelPath, ginadapter.BackchannelHandler(a.Receiver))
	r.GET("/metrics", gin.WrapH(a.Metrics))
	r.GET("/healthz", func(c *gin.Context) {
		status, body := a.Healthz(c.Request.Context())
		c.Header("Cache-Control", "no-store")
		c.JSON(status, body)
	})
	r.GET(app.BannerPath, gin.WrapH(a.Banner))
	r.GET(app.AssetsPath+"*file", gin.WrapH(a.Assets()))

	r.GET("/", ginadapter.Middleware(a.Guard, ginadapter.Optional()), func(c *gin.Context) {
		s, _ := ginadapter.Session(c)
		a.RenderHome(c.Writer, c.Request, s)
	})

	// Behind the guard: every refusal aborts the chain, so the handlers
	// below only ever see allowed sessions.
	authed := r.Group("/", ginadapter.Middleware(a.Guard))
	authed.GET("/me", func(c *gin.Context) {
		s, _ := ginadapter.Session(c)
		c.JSON(http.StatusOK, app.MeOf(s))
	})
	authed.GET("/events", func(c *gin.Context) {
		s, _ := ginadapter.Session(c)
		if app.WantsPage(c.Request) {
			a.RenderEvents(c.Writer, c.Request, s)
			return
		}
		a.Stream(c.Request.Context(), c.Writer, s)
	})
	// The admin page and, below it, its JSON API: one handler, so one
	// catch-all route (gin allows no other route beside a catch-all at
	// the same level). The console reads the full path.
	authed.Any(strings.TrimSuffix(app.AdminPath, "/")+"/*path", gin.WrapH(a.Console))

	// Bearer tokens (mobile apps, API clients).
	r.GET("/api/hello", ginadapter.Bearer(a.Guard, a.Bearer, ginadapter.BearerRealm("api")), func(c *gin.Context) {
		tc, _ := ginadapter.Token(c)
		c.JSON(http.StatusOK, app.HelloOf(tc))
	})
	return r
}
