package variants

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discard is a ResponseWriter that keeps the status and reuses one header
// map, so the benchmark measures the variants, not the recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(p), nil
}
func (d *discard) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

// Request returns a GET /private request carrying cookie.
func Request(cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/private", nil)
	r.AddCookie(cookie)
	return r
}

// ServeOnce runs one request through h and returns the status.
func ServeOnce(h http.Handler, cookie *http.Cookie) int {
	w := &discard{h: make(http.Header)}
	h.ServeHTTP(w, Request(cookie))
	return w.code
}

// Bench runs h with cookie b.N times, in parallel (RunParallel, GOMAXPROCS
// goroutines) or serially, failing on any status but 200.
func Bench(b *testing.B, h http.Handler, cookie *http.Cookie, parallel bool) {
	b.ReportAllocs()
	if !parallel {
		r := Request(cookie)
		w := &discard{h: make(http.Header, 8)}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
		}
		return
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := Request(cookie)
		w := &discard{h: make(http.Header, 8)}
		for pb.Next() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				b.Error(fmt.Sprintf("status %d", w.code))
				return
			}
		}
	})
}
