package fakeidp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
)

// The HTML pages of the interactive mode. They use no external asset and
// no script: one inline style sheet, allowed by its hash in the Content
// Security Policy, plain forms that work with the keyboard, labels on
// every field, and the development banner on top.

// page is the part every page's data shares.
type page struct {
	Title string
}

// pageCSS is the pages' only style. High contrast, a visible focus ring.
const pageCSS = `body{font-family:system-ui,sans-serif;margin:0;line-height:1.5;color:#111;background:#fff}
.banner{margin:0;padding:.75rem 1rem;background:#b00020;color:#fff;font-weight:bold}
main{max-width:48rem;margin:0 auto;padding:1rem}
label{display:block;margin-top:.75rem;font-weight:600}
input{font:inherit;padding:.4rem;width:100%;max-width:20rem;box-sizing:border-box;border:1px solid #555}
button{font:inherit;padding:.45rem 1rem;margin:1rem .5rem 0 0;cursor:pointer}
:focus-visible{outline:3px solid #1a5fd0;outline-offset:2px}
table{border-collapse:collapse;margin:1rem 0}
caption{text-align:left;font-weight:600}
th,td{border:1px solid #888;padding:.3rem .6rem;text-align:left;vertical-align:top}
.error{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecea}
.note{border-left:4px solid #8a6d00;padding:.5rem 1rem;background:#fff8e1}`

// pageCSP allows nothing but the style sheet above (no script, no frame,
// no other origin). form-action is left out on purpose: browsers apply it
// to the redirect that follows a form post, which goes to the client.
var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'"
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
<p class="banner" role="note">` + DevelopmentBanner + `. This is a test OpenID Provider: its passwords are published below and its one-time code is fixed.</p>
<main>
<h1>{{.Title}}</h1>
{{end}}

{{define "bottom"}}</main>
</body>
</html>
{{end}}

{{define "hidden"}}<input type="hidden" name="login_request" value="{{.RequestID}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">{{end}}

{{define "error-message"}}{{if .Error}}<p class="error" role="alert" id="form-error">{{.Error}}</p>
{{end}}{{end}}

{{define "login"}}{{template "top" .}}<p>The application <strong>{{.ClientID}}</strong> asks you to sign in. {{.Reason}}</p>
{{template "error-message" .}}<form method="post" action="{{.Action}}">
{{template "hidden" .}}
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="{{.Username}}"{{if .Error}} aria-describedby="form-error"{{end}}{{if not .Username}} autofocus{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{if .Username}} autofocus{{end}}>
<div><button type="submit" name="action" value="login">Sign in</button><button type="submit" name="action" value="cancel" formnovalidate>Cancel</button></div>
</form>
{{if .WantMFA}}<p class="note">The application asks for a second factor (<code>{{.MFAACR}}</code>): accounts that have one are asked for a one-time code next. An account without one signs in with a password only, and the application decides whether that is enough.</p>
{{end}}<table>
<caption>Development accounts (their passwords are public)</caption>
<thead><tr><th scope="col">User name</th><th scope="col">Password</th><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Tenant</th><th scope="col">Second factor</th></tr></thead>
<tbody>
{{range .Accounts}}<tr><th scope="row"><code>{{.Subject}}</code></th><td><code>{{.Password}}</code></td><td>{{.Name}}</td><td>{{.Email}}</td><td>{{.Tenant}}</td><td>{{if .MFA}}one-time code{{else}}none enrolled{{end}}</td></tr>
{{end}}</tbody>
</table>
{{template "bottom" .}}{{end}}

{{define "otp"}}{{template "top" .}}<p>Password accepted for <strong>{{.Subject}}</strong>. The application <strong>{{.ClientID}}</strong> asks for a second factor.</p>
<p class="note">This development provider's one-time code is fixed: <strong><code>{{.OTP}}</code></strong>. It never changes.</p>
{{template "error-message" .}}<form method="post" action="{{.Action}}">
{{template "hidden" .}}
<label for="otp">One-time code</label>
<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" required autofocus{{if .Error}} aria-describedby="form-error"{{end}}>
<div><button type="submit" name="action" value="verify">Verify</button><button type="submit" name="action" value="cancel" formnovalidate>Cancel</button></div>
</form>
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}<p class="error" role="alert">{{.Message}}</p>
{{template "bottom" .}}{{end}}

{{define "signedout"}}{{template "top" .}}<p>You are signed out of this development provider.</p>
{{template "bottom" .}}{{end}}
`))

// errorView is the data of the error page.
type errorView struct {
	page
	Message string
}

// render writes the named page. The page is rendered before anything is
// sent, so a template failure is a clean 500.
func (p *Provider) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "fakeidp: rendering page: "+err.Error(), http.StatusInternalServerError)
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

// showError answers with an error that is not sent to a client: an HTML
// page in interactive mode, plain text otherwise (what tests read).
func (p *Provider) showError(w http.ResponseWriter, status int, msg string) {
	if p.ui == nil {
		http.Error(w, msg, status)
		return
	}
	p.render(w, status, "error", errorView{page: page{Title: "Error"}, Message: msg})
}
