// Package httpx holds the small HTTP helpers the module's own handlers
// share (the oidc handlers, the admin API, the adapters), kept out of the
// core's public API: an application's responses get the same headers
// from [middleware.Decision.SetHeaders].
package httpx

import "net/http"

// NoStore marks a response as not cacheable by browsers or proxies:
// every authenticated or refused response, every login and logout step.
func NoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}
