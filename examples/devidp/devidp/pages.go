package devidp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
)

// ErrUnknownSession is returned (wrapped) by [Server.EndSID] for a sid the
// provider never issued.
var ErrUnknownSession = fakeidp.ErrUnknownSession

const (
	// csrfCookie holds the admin page's per-browser CSRF secret.
	csrfCookie = "devidp_admin_csrf"
	// maxOutcomes is how many action results the admin page remembers
	// for its redirect-after-post.
	maxOutcomes = 32
	// recentDeliveries is how many deliveries the admin page lists.
	recentDeliveries = 20
	// deliveryTimeout bounds the back-channel POSTs of one admin action.
	deliveryTimeout = 15 * time.Second
)

// outcome is the result of one admin action, shown once redirected.
type outcome struct {
	Action     string
	Error      string
	Deliveries deliveryTable
}

// deliveryTable is a captioned list of deliveries on the admin page.
type deliveryTable struct {
	Caption string
	List    []deliveryView
}

type deliveryView struct {
	ClientID, URI, Result, Claims string
	OK                            bool
}

func (s *Server) deliveryViews(ds []Delivery) []deliveryView {
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		v := deliveryView{ClientID: d.ClientID, URI: d.URI, OK: d.Err == nil}
		switch {
		case d.Err == nil:
			v.Result = "accepted (HTTP " + strconv.Itoa(d.StatusCode) + ")"
		case d.StatusCode != 0:
			v.Result = "refused (HTTP " + strconv.Itoa(d.StatusCode) + ")"
		default:
			v.Result = "failed: " + d.Err.Error()
		}
		if b, err := json.MarshalIndent(tokenClaims(d.Token), "", "  "); err == nil {
			v.Claims = string(b)
		}
		out = append(out, v)
	}
	return out
}

// handleIndex shows what the provider is and how to use it.
func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request) {
	s.render(w, http.StatusOK, "index", map[string]any{
		"Title":     "Development OpenID Provider",
		"Issuer":    s.issuer,
		"Discovery": s.issuer + "/.well-known/openid-configuration",
		"Admin":     s.issuer + "/dev/",
		"Users":     s.users,
		"OTP":       OTP,
		"Clients":   s.Clients(),
	})
}

// userSessions is one user's block on the admin page.
type userSessions struct {
	User     User
	Sessions []sessionView
}

type sessionView struct {
	SID, AuthTime, Age, ACR, AMR string
}

// handleAdmin lists the users with their live sessions, the clients and
// the recent back-channel deliveries.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	secret := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 52 {
		secret = c.Value
	} else {
		secret = rand.Text() + rand.Text() // 52 base32 characters, 260 bits
		http.SetCookie(w, &http.Cookie{
			Name: csrfCookie, Value: secret, Path: s.prefix + "/dev/",
			HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
		})
	}
	now := s.now()
	byUser := map[string][]sessionView{}
	var others []string // subjects with sessions but no account (none in practice)
	for _, x := range s.Sessions() {
		if _, seen := byUser[x.Subject]; !seen && !slices.ContainsFunc(s.users, func(u User) bool { return u.Subject == x.Subject }) {
			others = append(others, x.Subject)
		}
		byUser[x.Subject] = append(byUser[x.Subject], sessionView{
			SID: x.SID, AuthTime: x.AuthTime.UTC().Format(time.RFC3339),
			Age: now.Sub(x.AuthTime).Truncate(time.Second).String(), ACR: x.ACR, AMR: joinAMR(x.AMR),
		})
	}
	var blocks []userSessions
	for _, u := range s.users {
		blocks = append(blocks, userSessions{User: u, Sessions: byUser[u.Subject]})
	}
	for _, sub := range others {
		blocks = append(blocks, userSessions{User: User{Subject: sub}, Sessions: byUser[sub]})
	}
	all := s.Deliveries()
	recent := all[max(0, len(all)-recentDeliveries):]
	slices.Reverse(recent)

	var done *outcome
	if id := r.URL.Query().Get("outcome"); id != "" {
		s.mu.Lock()
		done = s.outcomes[id]
		s.mu.Unlock()
	}
	s.render(w, http.StatusOK, "admin", map[string]any{
		"Title":   "Provider sessions",
		"CSRF":    s.csrfToken(secret),
		"Action":  s.issuer + "/dev/end",
		"Home":    s.issuer + "/",
		"Outcome": done,
		"Users":   blocks,
		"Clients": s.Clients(),
		"Deliveries": deliveryTable{
			Caption: "Newest first, whatever triggered them (this page or /end_session)",
			List:    s.deliveryViews(recent),
		},
	})
}

func joinAMR(amr []string) string {
	b, _ := json.Marshal(amr)
	return string(b)
}

// handleEnd ends one session (form field sid) or every session of one
// user (form field sub), then redirects to the admin page showing the
// deliveries.
func (s *Server) handleEnd(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf_token")), []byte(s.csrfToken(c.Value))) != 1 {
		s.renderError(w, http.StatusForbidden, "The form's CSRF token is missing or wrong. Reload the admin page and try again.")
		return
	}
	// The deliveries must not depend on the browser staying connected.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deliveryTimeout)
	defer cancel()
	var (
		o   outcome
		ds  []Delivery
		end error
	)
	switch sid, sub := r.PostForm.Get("sid"), r.PostForm.Get("sub"); {
	case sid != "" && sub == "":
		o.Action = "Ended provider session " + sid + "."
		ds, end = s.EndSID(ctx, sid)
	case sub != "" && sid == "":
		o.Action = "Ended every provider session of " + sub + "."
		ds, end = s.EndSession(ctx, sub)
	default:
		s.renderError(w, http.StatusBadRequest, "Say which session (sid) or which user (sub) to sign out, not both.")
		return
	}
	if end != nil {
		o.Error = end.Error()
	}
	o.Deliveries = deliveryTable{Caption: "Back-channel logout deliveries of this action", List: s.deliveryViews(ds)}
	id := rand.Text()
	s.mu.Lock()
	s.outcomes[id] = &o
	s.order = append(s.order, id)
	if len(s.order) > maxOutcomes {
		delete(s.outcomes, s.order[0])
		s.order = s.order[1:]
	}
	s.mu.Unlock()
	// Redirect after post: reloading the page does not end anything again.
	http.Redirect(w, r, s.issuer+"/dev/?outcome="+id, http.StatusSeeOther)
}

func (s *Server) renderError(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error", map[string]any{"Title": "Error", "Message": msg, "Home": s.issuer + "/dev/"})
}

// pageCSS is the only style of the pages (no external asset, no script).
const pageCSS = `body{font-family:system-ui,sans-serif;margin:0;line-height:1.5;color:#111;background:#fff}
.banner{margin:0;padding:.75rem 1rem;background:#b00020;color:#fff;font-weight:bold}
main{max-width:64rem;margin:0 auto;padding:1rem}
button{font:inherit;padding:.3rem .8rem;cursor:pointer}
:focus-visible{outline:3px solid #1a5fd0;outline-offset:2px}
table{border-collapse:collapse;margin:.5rem 0 1rem}
caption{text-align:left;font-weight:600}
th,td{border:1px solid #888;padding:.3rem .6rem;text-align:left;vertical-align:top}
form{margin:0}
.error{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecea}
.ok{border-left:4px solid #1b5e20;padding:.5rem 1rem;background:#e8f5e9}
pre{margin:0;font-size:.85rem}`

var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{.Title}} · DEVELOPMENT ONLY</title>
<style>` + pageCSS + `</style>
</head>
<body>
<p class="banner" role="note">` + Banner + `. This is a test OpenID Provider for the demo and browser tests: its passwords are public and its one-time code is fixed.</p>
<main>
<h1>{{.Title}}</h1>
{{end}}

{{define "bottom"}}</main>
</body>
</html>
{{end}}

{{define "clients"}}<table>
<caption>Registered clients</caption>
<thead><tr><th scope="col">client_id</th><th scope="col">Type</th><th scope="col">Redirect URIs</th><th scope="col">Post-logout redirect URIs</th><th scope="col">Back-channel logout URI</th></tr></thead>
<tbody>
{{range .}}<tr><th scope="row"><code>{{.ID}}</code></th><td>{{if .Secret}}confidential{{else}}public (PKCE){{end}}</td><td>{{range .RedirectURIs}}<code>{{.}}</code><br>{{end}}</td><td>{{range .PostLogoutRedirectURIs}}<code>{{.}}</code><br>{{end}}</td><td>{{if .BackchannelLogoutURI}}<code>{{.BackchannelLogoutURI}}</code>{{else}}none{{end}}</td></tr>
{{else}}<tr><td colspan="5">No client is registered.</td></tr>
{{end}}</tbody>
</table>{{end}}

{{define "deliveries"}}<table>
<caption>{{.Caption}}</caption>
<thead><tr><th scope="col">Client</th><th scope="col">Back-channel logout URI</th><th scope="col">Result</th><th scope="col">Logout token claims</th></tr></thead>
<tbody>
{{range .List}}<tr><td><code>{{.ClientID}}</code></td><td><code>{{.URI}}</code></td><td>{{.Result}}</td><td><details><summary>show</summary><pre>{{.Claims}}</pre></details></td></tr>
{{else}}<tr><td colspan="4">None.</td></tr>
{{end}}</tbody>
</table>{{end}}

{{define "index"}}{{template "top" .}}<p>Issuer: <code>{{.Issuer}}</code></p>
<ul>
<li><a href="{{.Discovery}}">Discovery document</a></li>
<li><a href="{{.Admin}}">Provider sessions (end a session, send back-channel logout)</a></li>
</ul>
<table>
<caption>Accounts (their passwords are public)</caption>
<thead><tr><th scope="col">User name</th><th scope="col">Password</th><th scope="col">Name</th><th scope="col">Tenant</th><th scope="col">Second factor</th></tr></thead>
<tbody>
{{range .Users}}<tr><th scope="row"><code>{{.Subject}}</code></th><td><code>{{.Password}}</code></td><td>{{.Name}}</td><td>{{.Tenant}}</td><td>{{if .MFA}}one-time code <code>{{$.OTP}}</code> (fixed){{else}}none enrolled{{end}}</td></tr>
{{end}}</tbody>
</table>
{{template "clients" .Clients}}
{{template "bottom" .}}{{end}}

{{define "admin"}}{{template "top" .}}<p><a href="{{.Home}}">Provider home</a>. Ending a session here is what an administrator or an account lock does at a real provider: its refresh tokens stop working, its browser must sign in again, and every client with a back-channel logout URI receives a logout token.</p>
{{with .Outcome}}<section aria-labelledby="outcome" class="{{if .Error}}error{{else}}ok{{end}}" role="status">
<h2 id="outcome">Result</h2>
<p>{{.Action}}{{if .Error}} Some deliveries failed: {{.Error}}{{end}}</p>
{{template "deliveries" .Deliveries}}
</section>
{{end}}
<h2>Users and their provider sessions</h2>
{{range .Users}}<section aria-labelledby="user-{{.User.Subject}}">
<h3 id="user-{{.User.Subject}}"><code>{{.User.Subject}}</code>{{with .User.Name}} ({{.}}){{end}}</h3>
{{if .Sessions}}<table>
<caption>Active sessions of {{.User.Subject}}</caption>
<thead><tr><th scope="col">sid</th><th scope="col">auth_time</th><th scope="col">acr</th><th scope="col">amr</th><th scope="col">Action</th></tr></thead>
<tbody>
{{range .Sessions}}<tr><td><code>{{.SID}}</code></td><td>{{.AuthTime}} ({{.Age}} ago)</td><td><code>{{.ACR}}</code></td><td><code>{{.AMR}}</code></td><td><form method="post" action="{{$.Action}}"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="sid" value="{{.SID}}"><button type="submit" aria-label="End provider session {{.SID}}">End provider session</button></form></td></tr>
{{end}}</tbody>
</table>
{{else}}<p>No active session.</p>
{{end}}<form method="post" action="{{$.Action}}"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="sub" value="{{.User.Subject}}"><button type="submit">End every provider session of {{.User.Subject}}</button></form>
</section>
{{end}}
<h2>Clients</h2>
{{template "clients" .Clients}}
<h2>Recent back-channel logout deliveries</h2>
{{template "deliveries" .Deliveries}}
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}<p class="error" role="alert">{{.Message}}</p>
<p><a href="{{.Home}}">Back to the provider sessions</a></p>
{{template "bottom" .}}{{end}}
`))

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "devidp: rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
