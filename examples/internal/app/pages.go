package app

import (
	"bytes"
	"context"
	_ "embed" // the pages' assets
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The pages use no external asset and no inline script or style, so the
// policy below holds: everything from this origin. form-action is left
// out on purpose: the logout form's redirect goes on to the provider, and
// browsers apply form-action to redirects that follow a form post.
const pageCSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

var (
	//go:embed assets/pages.html
	pagesHTML string
	//go:embed assets/app.css
	appCSS []byte
	//go:embed assets/events.js
	eventsJS []byte
)

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{"dict": dict}).Parse(pagesHTML))

// dict builds the map a sub-template receives: dict "Key" value ...
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			m[k] = kv[i+1]
		}
	}
	return m
}

// pageView is what the templates render.
type pageView struct {
	Instance  string
	PublicURL string
	Session   *sessionView
	Admin     bool
	Banner    string
	AdminPath string
	APIPath   string
	Interval  int
}

type sessionView struct {
	Sub, Name, Issuer, Tenant, SID, ID, ACR, AMR string
	AuthTime, IssuedAt, Expires                  string
}

func (a *App) view(ctx context.Context, s *middleware.Session) pageView {
	v := pageView{Instance: a.cfg.Name, PublicURL: a.cfg.PublicURL, Banner: BannerPath,
		AdminPath: AdminPath, APIPath: AdminAPIPath, Interval: bannerInterval}
	if s != nil {
		v.Admin = a.IsAdmin(ctx, s)
		v.Session = &sessionView{
			Sub: s.Subject, Name: dataName(s), Issuer: s.Issuer, Tenant: s.Tenant, SID: s.IdPSession, ID: s.ID,
			ACR: s.ACR, AMR: strings.Join(s.AMR(), " "),
			AuthTime: stamp(s.AuthTime), IssuedAt: stamp(s.IssuedAt), Expires: stamp(s.AbsoluteExpiry),
		}
	}
	return v
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// RenderHome writes the home page (GET /) for s, which may be nil (not
// signed in).
func (a *App) RenderHome(w http.ResponseWriter, r *http.Request, s *middleware.Session) {
	a.render(w, "home", a.view(r.Context(), s))
}

// RenderEvents writes the live-events page (GET /events from a browser),
// which opens the event stream at the same URL.
func (a *App) RenderEvents(w http.ResponseWriter, r *http.Request, s *middleware.Session) {
	a.render(w, "events", a.view(r.Context(), s))
}

func (a *App) render(w http.ResponseWriter, name string, v pageView) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, v); err != nil {
		a.log.Error("rendering page", "page", name, "cause", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	setPageHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// Assets serves the pages' style sheet and script under /assets/
// (outside the guard: they hold nothing private).
func (a *App) Assets() http.Handler {
	type file struct {
		body  []byte
		ctype string
	}
	files := map[string]file{
		AssetsPath + "app.css":   {appCSS, "text/css; charset=utf-8"},
		AssetsPath + "events.js": {eventsJS, "text/javascript; charset=utf-8"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		setPageHeaders(h)
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", f.ctype)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(f.body)
		}
	})
}

// WantsPage reports whether a request to /events is a browser asking for
// the page rather than the event stream: EventSource sends Accept:
// text/event-stream, browsers' navigations text/html.
func WantsPage(r *http.Request) bool {
	acc := r.Header.Get("Accept")
	return strings.Contains(acc, "text/html") && !strings.Contains(acc, "text/event-stream")
}
