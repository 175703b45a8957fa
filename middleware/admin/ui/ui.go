package ui

import (
	"bytes"
	_ "embed" // the assets
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sessionfence/sessionfence/middleware/admin"
)

// Config configures the admin page. The zero value serves the page one
// level above the API: at /admin/ for an API at /admin/api/.
type Config struct {
	// Prefix is the path of the page, starting and ending with '/'; its
	// assets are Prefix + "admin.js", "admin.css" and "banner.js".
	// Default: the API's prefix without its last segment ("/admin/api/"
	// gives "/admin/"). The API's prefix and login URL are taken from the
	// API itself ([admin.API.Prefix], [admin.API.LoginURL]), never
	// repeated here.
	Prefix string
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

// page is what the template is rendered with.
type pageData struct {
	Title, Prefix, APIPrefix, LoginURL string
	BannerInterval                     int
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
var ErrInvalidConfig = errors.New("sessionfence/admin/ui: invalid config")

var page = template.Must(template.New("index.html").Parse(indexHTML))

// console serves the page, its assets and, below the page, the API.
type console struct {
	prefix    string
	api       *admin.API
	apiPrefix string // api.Prefix() when it lies below prefix, else ""
	files     map[string]asset
}

const jsType = "text/javascript; charset=utf-8"

type asset struct {
	body  []byte
	ctype string
}

// New validates cfg and returns the handler of the admin console: the
// page at cfg.Prefix, its assets below it and, when the API's prefix lies
// below cfg.Prefix (the default), the API itself, so that one mount serves
// everything the page calls:
//
//	mux.Handle("/admin/", guardMiddleware(console))                 // net/http
//	authed.Any("/admin/*path", gin.WrapH(console))                   // gin
//
// The page calls the API at [admin.API.Prefix] and sends people whose
// session ended to [admin.API.LoginURL]. Mount it at full paths (not
// behind http.StripPrefix) and behind the guard's middleware, like the
// API. Only GET and HEAD are served for the page and assets (405
// otherwise); other paths below the prefix are 404. It is safe for
// concurrent use.
func New(api *admin.API, cfg Config) (http.Handler, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: New needs the admin API", ErrInvalidConfig)
	}
	d, err := cfg.data(api)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("sessionfence/admin/ui: rendering the page: %w", err)
	}
	c := &console{prefix: d.Prefix, api: api, files: map[string]asset{
		"":          {buf.Bytes(), "text/html; charset=utf-8"},
		"admin.js":  {adminJS, jsType},
		"admin.css": {adminCSS, "text/css; charset=utf-8"},
		"banner.js": {bannerJS, jsType},
	}}
	if strings.HasPrefix(d.APIPrefix, d.Prefix) {
		c.apiPrefix = d.APIPrefix
	}
	return c, nil
}

// Handler is [New] for callers that mount the console in one expression.
// A configuration error is logged once, and the handler then answers
// every request with 500: it fails closed rather than serving a page
// wired to the wrong API.
func Handler(api *admin.API, cfg Config) http.Handler {
	h, err := New(api, cfg)
	if err == nil {
		return h
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Error("sessionfence/admin/ui: the admin page is disabled", "cause", err.Error())
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

// ServeHTTP serves the API for paths below its prefix, and the page and
// its assets otherwise.
func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.apiPrefix != "" && strings.HasPrefix(r.URL.Path, c.apiPrefix) {
		c.api.ServeHTTP(w, r)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, c.prefix)
	a, found := c.files[name]
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

// data applies the defaults and checks what will be written into the
// page.
func (cfg Config) data(api *admin.API) (pageData, error) {
	d := pageData{Title: cfg.Title, Prefix: cfg.Prefix, APIPrefix: api.Prefix(), LoginURL: api.LoginURL(),
		BannerInterval: cfg.BannerInterval}
	if d.Title == "" {
		d.Title = "Sessions and sign-out"
	}
	if d.Prefix == "" {
		// "/admin/api/" -> "/admin/"; an API at the root has no parent.
		parent := strings.TrimSuffix(d.APIPrefix, "/")
		d.Prefix = parent[:strings.LastIndex(parent, "/")+1]
	}
	for name, p := range map[string]string{"Prefix": d.Prefix, "the API's prefix": d.APIPrefix} {
		if !localPath(p) || !strings.HasSuffix(p, "/") {
			return d, fmt.Errorf("%w: %s %q must be a local path starting and ending with '/'", ErrInvalidConfig, name, p)
		}
	}
	if d.APIPrefix == d.Prefix {
		return d, fmt.Errorf("%w: the page and the API cannot both be at %q", ErrInvalidConfig, d.Prefix)
	}
	if !loginURL(d.LoginURL) {
		return d, fmt.Errorf("%w: the guard's LoginURL %q must be a local path or an http(s) URL", ErrInvalidConfig, d.LoginURL)
	}
	if d.BannerInterval == 0 {
		d.BannerInterval = 30
	}
	if d.BannerInterval < 2 {
		return d, fmt.Errorf("%w: BannerInterval %d is below 2 seconds", ErrInvalidConfig, d.BannerInterval)
	}
	return d, nil
}

// loginURL accepts where the page may send people to sign in: a local
// path (a query is allowed; return_to is added to it) or an absolute
// http(s) URL, without a fragment, quotes, angle brackets or spaces.
func loginURL(u string) bool {
	if strings.Contains(u, "#") {
		return false
	}
	for _, scheme := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(u, scheme); ok {
			return rest != "" && !strings.HasPrefix(rest, "/") && localPath("/"+rest)
		}
	}
	return localPath(u)
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
