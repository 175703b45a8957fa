package ui_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/admin/ui"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newAPI is an admin API at prefix for a guard whose login URL is login
// (defaults when empty).
func newAPI(t *testing.T, prefix, login string) *admin.API {
	t.Helper()
	g, err := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()},
		LoginURL: login, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.New(admin.Config{Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	api, err := admin.NewAPI(svc, admin.APIConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func checkHeaders(t *testing.T, name string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ui.CSP,
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", name, k, got, v)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("%s: CSP lacks default-src 'self'", name)
	}
}

func TestAssetsAreServedWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	h, err := ui.New(newAPI(t, "", ""), ui.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for path, ctype := range map[string]string{
		"/admin/":          "text/html; charset=utf-8",
		"/admin/admin.js":  "text/javascript; charset=utf-8",
		"/admin/admin.css": "text/css; charset=utf-8",
		"/admin/banner.js": "text/javascript; charset=utf-8",
	} {
		w := get(t, h, http.MethodGet, path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		checkHeaders(t, path, w.Header())
		head := get(t, h, http.MethodHead, path)
		if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
			t.Errorf("HEAD %s: %d, %d bytes, length %q", path, head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
		}
	}
}

func TestRefusalsCarryTheSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := ui.Handler(newAPI(t, "", ""), ui.Config{})
	tests := []struct {
		name   string
		method string
		path   string
		status int
	}{
		{"unknown asset is not found", http.MethodGet, "/admin/secret.txt", http.StatusNotFound},
		{"path outside the prefix is not found", http.MethodGet, "/other/", http.StatusNotFound},
		{"nested path is not found", http.MethodGet, "/admin/assets/admin.js", http.StatusNotFound},
		{"post is not allowed", http.MethodPost, "/admin/", http.StatusMethodNotAllowed},
		{"delete of an asset is not allowed", http.MethodDelete, "/admin/admin.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		w := get(t, h, tt.method, tt.path)
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, w.Code, tt.status)
		}
		if tt.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", tt.name, w.Header().Get("Allow"))
		}
		checkHeaders(t, tt.name, w.Header())
	}
}

// externalRef finds anything that could load from another origin: an
// absolute or protocol-relative URL in an attribute, or @import/url() in
// the style sheet.
var externalRef = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?\s*(https?:|//|data:|javascript:)|@import|url\(`)

func TestThePageLoadsNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	h, _ := ui.New(newAPI(t, "", ""), ui.Config{})
	for _, path := range []string{"/admin/", "/admin/admin.css"} {
		body := get(t, h, http.MethodGet, path).Body.String()
		if m := externalRef.FindString(body); m != "" {
			t.Errorf("%s refers to another origin: %q", path, m)
		}
	}
	page := get(t, h, http.MethodGet, "/admin/").Body.String()
	for _, bad := range []string{"http://", "https://", "<style", " style=", "onclick=", "onload="} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q (external URL or inline code the CSP would block)", bad)
		}
	}
	// Inline script would be blocked by the CSP: every <script> must have src.
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, `src="/admin/`) {
			t.Errorf("script tag without a local src: %s", tag)
		}
	}
	for _, js := range []string{"/admin/admin.js", "/admin/banner.js"} {
		body := get(t, h, http.MethodGet, js).Body.String()
		if regexp.MustCompile(`https?://`).MatchString(body) || strings.Contains(body, "innerHTML") || strings.Contains(body, "eval(") {
			t.Errorf("%s uses an external URL, innerHTML or eval", js)
		}
	}
}

func TestThePageIsAccessible(t *testing.T) {
	t.Parallel()
	h, _ := ui.New(newAPI(t, "", ""), ui.Config{})
	page := get(t, h, http.MethodGet, "/admin/").Body.String()
	// Every form control has a label.
	ids := regexp.MustCompile(`<(?:input|select|textarea)[^>]*\bid="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(ids) < 6 {
		t.Fatalf("only %d form controls found", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(page, `<label for="`+m[1]+`"`) {
			t.Errorf("control #%s has no label", m[1])
		}
	}
	for _, want := range []string{
		`<html lang="en">`,
		`role="status" aria-live="polite"`,
		`<dialog id="confirm" aria-labelledby="confirm-h" aria-describedby="confirm-desc">`,
		`To confirm, type <strong>terminate-all</strong>`,
		`Log all users out…`,
		`type="datetime-local"`,
		`class="skip" href="#main"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

func TestThePageIsWiredToTheAPIItServes(t *testing.T) {
	t.Parallel()
	api := newAPI(t, "/ops/api/", "/auth/login?tenant=acme")
	h, err := ui.New(api, ui.Config{Title: "Ops & sessions", BannerInterval: 5})
	if err != nil {
		t.Fatal(err)
	}
	page := get(t, h, http.MethodGet, "/ops/").Body.String()
	for _, want := range []string{
		`<body data-api="/ops/api/" data-login="/auth/login?tenant=acme">`,
		`<script src="/ops/banner.js" data-api="/ops/api/" data-login="/auth/login?tenant=acme" data-interval="5" defer>`,
		`<link rel="stylesheet" href="/ops/admin.css">`,
		`<title>Ops &amp; sessions</title>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if w := get(t, h, http.MethodGet, "/admin/"); w.Code != http.StatusNotFound {
		t.Errorf("default prefix still served: %d", w.Code)
	}
	// The API answers through the same handler (here 401: no guard
	// middleware put a session in the context).
	w := get(t, h, http.MethodGet, "/ops/api/me")
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"no_session"`) {
		t.Errorf("GET /ops/api/me through the console: %d %s", w.Code, w.Body)
	}

	// An API outside the page's prefix is linked to, not served.
	apart, err := ui.New(newAPI(t, "/api/admin/", ""), ui.Config{Prefix: "/console/"})
	if err != nil {
		t.Fatal(err)
	}
	if page := get(t, apart, http.MethodGet, "/console/").Body.String(); !strings.Contains(page, `data-api="/api/admin/" data-login="/login"`) {
		t.Error("the page does not use the API's prefix")
	}
	if w := get(t, apart, http.MethodGet, "/api/admin/me"); w.Code != http.StatusNotFound {
		t.Errorf("an API outside the prefix was served: %d", w.Code)
	}
}

func TestInvalidConfigIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		api, login string
		cfg        ui.Config
	}{
		{"a prefix without a trailing slash", "", "", ui.Config{Prefix: "/admin"}},
		{"a relative prefix", "", "", ui.Config{Prefix: "admin/"}},
		{"a protocol-relative prefix", "", "", ui.Config{Prefix: "//evil.example/"}},
		{"a quote in the prefix", "", "", ui.Config{Prefix: `/a"b/`}},
		{"the page at the API's own prefix", "", "", ui.Config{Prefix: "/admin/api/"}},
		{"an API at the root leaves no default page prefix", "/", "", ui.Config{}},
		{"a login URL with a script scheme", "", "javascript:alert(1)", ui.Config{}},
		{"a login URL with a backslash", "", `/\evil.example`, ui.Config{}},
		{"a login URL with a fragment", "", "/login#x", ui.Config{}},
		{"a protocol-relative login URL", "", "//evil.example/login", ui.Config{}},
		{"a banner interval under 2 seconds", "", "", ui.Config{BannerInterval: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newAPI(t, tt.api, tt.login)
			if _, err := ui.New(api, tt.cfg); !errors.Is(err, ui.ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
			cfg := tt.cfg
			cfg.Logger = quiet
			w := get(t, ui.Handler(api, cfg), http.MethodGet, "/admin/")
			if w.Code != http.StatusInternalServerError {
				t.Errorf("Handler answered %d, want 500 (fail closed)", w.Code)
			}
			checkHeaders(t, tt.name, w.Header())
		})
	}
	if _, err := ui.New(nil, ui.Config{}); !errors.Is(err, ui.ErrInvalidConfig) {
		t.Errorf("a nil API: %v", err)
	}
	if _, err := ui.New(newAPI(t, "", "https://login.example.com/start?x=1"), ui.Config{}); err != nil {
		t.Errorf("an absolute https login URL was refused: %v", err)
	}
}

func TestBannerHandlerServesTheScriptAnywhere(t *testing.T) {
	t.Parallel()
	h := ui.BannerHandler()
	w := get(t, h, http.MethodGet, "/static/banner.js")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	checkHeaders(t, "banner", w.Header())
	body := w.Body.String()
	for _, want := range []string{"Sessionfence-Termination", "Save your work.", "You will be signed out at ", `aria-live`} {
		if !strings.Contains(body, want) {
			t.Errorf("banner.js lacks %q", want)
		}
	}
	if w := get(t, h, http.MethodPost, "/banner.js"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}
