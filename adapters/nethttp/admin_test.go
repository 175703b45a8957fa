package nethttp_test

import (
	"net/http"
	"testing"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/internal/adminapitest"
	"github.com/sessionfence/sessionfence/middleware"
)

// The admin console (page and API) mounted on a ServeMux behind the
// net/http middleware.
func TestAdminAPIBehindNetHTTP(t *testing.T) {
	adminapitest.Run(t, func(g *middleware.Guard, console, probe http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/admin/", console)
		mux.Handle("GET /app", probe)
		return nethttp.Middleware(g)(mux)
	})
}
