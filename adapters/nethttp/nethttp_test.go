package nethttp_test

import (
	"net/http"
	"testing"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/internal/adaptertest"
	"github.com/sessionfence/sessionfence/middleware"
)

func TestSharedAdapterTable(t *testing.T) {
	adaptertest.Run(t, func(g *middleware.Guard, next http.Handler) http.Handler {
		return nethttp.Middleware(g)(next)
	})
}
