package adminui

import (
	"bytes"
	_ "embed" // the assets
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
)

// Config configures the admin page. The zero value serves the page at
// /admin/ for an API at /admin/api/.
type Config struct {
	// Prefix is the path the handler is mounted at, starting and ending
	// with '/'. The page is Prefix itself; its assets are Prefix +
	// "admin.js", "admin.css" and "banner.js". Default "/admin/". Behind
	// http.StripPrefix, set what remains (often "/") and set AssetPrefix.
	Prefix string
	// AssetPrefix is the path, as the browser sees it, under which the
	// assets are fetched. Default: Prefix.
	AssetPrefix string
	// APIPrefix is where the JSON admin API is mounted, as the browser
	// sees it (middleware.AdminAPIConfig.Prefix). Default "/admin/api/".
	APIPrefix string
	// LoginURL is where the page and the banner send people whose session
	// ended, with return_to added. A local path. Default "/login".
	LoginURL string
	// Title heads the page. Default "Sessions and sign-out".
	Title string
	// BannerInterval is how often, in seconds, banner.js asks the API
	// whether a sign-out is announced (pages may override it with the
	// data-interval attribute). Default 30; at least 2.
	BannerInterval int
	// Logger receives the configuration error of [Handler]. Default
	// slog.Default().
	Logger *slog.Logger
}

// CSP is the Content-Security-Policy of every response: scripts, styles
// and connections from the page's own origin only, no inline script or
// style, no plugin, no framing, no <base> rewriting, forms posting only to
// the same origin.
const CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// The assets, embedded at build time: nothing is read at run time.
var (
	//go:embed assets/index.html
	indexHTML string
	//go:embed assets/admin.js
	adminJS []byte
	//go:embed assets/admin.css
	adminCSS []byte
	//go:embed assets/banner.js
	bannerJS []byte
)

// ErrInvalidConfig is wrapped by every error [New] returns.
var ErrInvalidConfig = errors.New("adminui: invalid config")

var page = template.Must(template.New("index.html").Parse(indexHTML))

// ui serves the page and its assets.
type ui struct {
	prefix string
	files  map[string]asset
}

const jsType = "text/javascript; charset=utf-8"

type asset struct {
	body  []byte
	ctype string
}

// New validates cfg and returns the handler serving the admin page at
// cfg.Prefix and its assets below it. Only GET and HEAD are served (405
// otherwise); other paths below the prefix are 404. It is safe for
// concurrent use.
func New(cfg Config) (http.Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, cfg); err != nil {
		return nil, fmt.Errorf("adminui: rendering the page: %w", err)
	}
	return &ui{prefix: cfg.Prefix, files: map[string]asset{
		"":          {buf.Bytes(), "text/html; charset=utf-8"},
		"admin.js":  {adminJS, jsType},
		"admin.css": {adminCSS, "text/css; charset=utf-8"},
		"banner.js": {bannerJS, jsType},
	}}, nil
}

// Handler is [New] for callers that mount the page in one expression. A
// configuration error is logged once, and the handler then answers every
// request with 500: it fails closed rather than serving a page wired to
// the wrong API.
func Handler(cfg Config) http.Handler {
	h, err := New(cfg)
	if err == nil {
		return h
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Error("adminui: the admin page is disabled", "cause", err.Error())
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		setHeaders(w.Header())
		http.Error(w, "admin page misconfigured; see the server log", http.StatusInternalServerError)
	})
}

// BannerHandler serves banner.js alone, whatever the request path, for
// mounting outside the guard (e.g. GET /banner.js) so that pages shown to
// signed-out visitors can include it without a failing request. The
// script asks the API at its data-api attribute (default "/admin/api/").
func BannerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, asset{bannerJS, jsType})
	})
}

func (u *ui) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, u.prefix)
	a, found := u.files[name]
	if !ok || !found {
		setHeaders(w.Header())
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	serve(w, r, a)
}

func serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	setHeaders(h)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Length", fmt.Sprint(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(a.body)
	}
}

// setHeaders sets the security headers every response carries, error
// pages included.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (cfg Config) withDefaults() (Config, error) {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&cfg.Prefix, "/admin/")
	def(&cfg.AssetPrefix, cfg.Prefix)
	def(&cfg.APIPrefix, "/admin/api/")
	def(&cfg.LoginURL, "/login")
	def(&cfg.Title, "Sessions and sign-out")
	for name, p := range map[string]string{"Prefix": cfg.Prefix, "AssetPrefix": cfg.AssetPrefix, "APIPrefix": cfg.APIPrefix} {
		if !localPath(p) || !strings.HasSuffix(p, "/") {
			return cfg, fmt.Errorf("%w: %s %q must be a local path starting and ending with '/'", ErrInvalidConfig, name, p)
		}
	}
	if !localPath(cfg.LoginURL) || strings.ContainsAny(cfg.LoginURL, "?#") {
		return cfg, fmt.Errorf("%w: LoginURL %q must be a local path without query", ErrInvalidConfig, cfg.LoginURL)
	}
	if cfg.BannerInterval == 0 {
		cfg.BannerInterval = 30
	}
	if cfg.BannerInterval < 2 {
		return cfg, fmt.Errorf("%w: BannerInterval %d is below 2 seconds", ErrInvalidConfig, cfg.BannerInterval)
	}
	return cfg, nil
}

// localPath accepts a path on this origin: one leading '/', no "//" (a
// protocol-relative URL would send the page's calls to another host), no
// backslash (which browsers read as '/'), printable ASCII without quotes
// or angle brackets.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`\"'<>`+"`", c) >= 0 {
			return false
		}
	}
	return true
}
