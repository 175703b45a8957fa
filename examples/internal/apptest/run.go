package apptest

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/middleware/admin/ui"
)

// Run tests the application routed by route end to end. The steps share
// one provider and application and run in order: later ones build on the
// sessions and fences of earlier ones.
func Run(t *testing.T, name string, route func(*app.App) http.Handler) {
	e := Start(t, name, route)
	alice, bob, carol := e.Browser(t), e.Browser(t), e.Browser(t)

	t.Run("unauthenticated requests are refused", func(t *testing.T) {
		res, body := e.API(t, alice, http.MethodGet, "/me", nil, nil)
		if res.StatusCode != http.StatusUnauthorized || body["error"] != "no_session" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("API client: %d %v", res.StatusCode, body)
		}
		res, _ = e.API(t, alice, http.MethodGet, "/me", nil, http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}})
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") || !strings.Contains(loc, "return_to=%2Fme") {
			t.Errorf("browser: %d %q", res.StatusCode, loc)
		}
		for _, path := range []string{"/admin/", "/admin/api/me", "/events"} {
			if res, _ := e.API(t, alice, http.MethodGet, path, nil, nil); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a session: %d", path, res.StatusCode)
			}
		}
	})

	t.Run("healthz reports the store", func(t *testing.T) {
		res, body := e.API(t, alice, http.MethodGet, "/healthz", nil, nil)
		if res.StatusCode != http.StatusOK || body["status"] != "ok" {
			t.Errorf("%d %v", res.StatusCode, body)
		}
	})

	var aliceSID string
	defer t.Run("metrics count the decisions", func(t *testing.T) {
		res, err := http.Get(e.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		for _, want := range []string{`sessionfence_decisions_total{decision="allowed"`, `sessionfence_store_latency_seconds`} {
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
				t.Fatalf("GET /metrics: %d, missing %s", res.StatusCode, want)
			}
		}
	})
	t.Run("login gives /me its shape", func(t *testing.T) {
		me, otp := e.Login(t, alice, "alice")
		aliceSID, _ = me["sid"].(string)
		if want := []string{"acr", "amr", "auth_time", "sid", "sub", "tenant"}; !slices.Equal(keys(me), want) {
			t.Fatalf("keys %v, want %v", keys(me), want)
		}
		at, _ := me["auth_time"].(float64)
		if otp || me["sub"] != "alice" || me["tenant"] != "acme" || me["sid"] == "" || me["acr"] != devidp.PasswordACR ||
			!slices.Equal(toStrings(me["amr"]), []string{"pwd"}) || time.Since(time.Unix(int64(at), 0)).Abs() > time.Minute {
			t.Errorf("me = %s (otp asked: %v)", fmtBody(me), otp)
		}
		sids := e.IdP.Sessions()
		if !slices.ContainsFunc(sids, func(s devidp.Session) bool { return s.Subject == "alice" && s.SID == me["sid"] }) {
			t.Errorf("sid %v is not alice's provider session %v", me["sid"], sids)
		}
	})

	t.Run("home and admin pages are served with a CSP", func(t *testing.T) {
		p := get(t, alice, e.URL+"/")
		if p.code != http.StatusOK || !strings.Contains(p.body, `<span id="who">alice</span>`) ||
			!strings.Contains(p.body, `src="/banner.js"`) || !strings.Contains(p.body, `action="/logout"`) {
			t.Errorf("home: %d\n%s", p.code, p.body)
		}
		res, _ := e.API(t, alice, http.MethodGet, "/", nil, nil)
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("home CSP %q", res.Header.Get("Content-Security-Policy"))
		}
		res, _ = e.API(t, alice, http.MethodGet, "/admin/", nil, nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Security-Policy") != ui.CSP {
			t.Errorf("admin page: %d %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
		}
		for _, path := range []string{"/banner.js", "/admin/admin.js", "/assets/events.js", "/assets/app.css"} {
			if res, _ := e.API(t, alice, http.MethodGet, path, nil, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s: %d", path, res.StatusCode)
			}
		}
		_, me := e.API(t, alice, http.MethodGet, app.AdminAPIPath+"me", nil, nil)
		if me["admin"] != true || me["sub"] != "alice" {
			t.Errorf("admin api me: %v", me)
		}
		p = get(t, alice, e.URL+"/events")
		if p.code != http.StatusOK || !strings.Contains(p.body, `src="/assets/events.js"`) {
			t.Errorf("events page: %d", p.code)
		}
	})

	var token string
	t.Run("bearer API accepts the provider's access token", func(t *testing.T) {
		token = e.AccessToken(t, "alice")
		res, body := e.API(t, carol, http.MethodGet, "/api/hello", nil, http.Header{"Authorization": {"Bearer " + token}})
		if res.StatusCode != http.StatusOK || body["hello"] != "alice" || body["tenant"] != "acme" || body["iss"] != e.Issuer {
			t.Errorf("%d %v", res.StatusCode, body)
		}
		res, _ = e.API(t, carol, http.MethodGet, "/api/hello", nil, nil)
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != `Bearer realm="api"` {
			t.Errorf("no token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
		res, body = e.API(t, carol, http.MethodGet, "/api/hello", nil, http.Header{"Authorization": {"Bearer " + token + "x"}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("tampered token: %d %v %q", res.StatusCode, body, res.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("event stream closes when an administrator ends the user", func(t *testing.T) {
		e.Login(t, carol, "carol")
		s := e.events(t, carol)
		if ev, d, err := s.next(t); err != nil || ev != "hello" || d["sub"] != "carol" {
			t.Fatalf("first event %q %v %v", ev, d, err)
		}
		res, body := e.Admin(t, alice, "terminate-user", map[string]any{
			"issuer": e.Issuer, "sub": "carol", "reason": "test", "reauth": "login",
		})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("terminate-user: %d %v", res.StatusCode, body)
		}
		for {
			ev, d, err := s.next(t)
			if err != nil {
				t.Fatalf("stream ended without a revoked event: %v", err)
			}
			if ev == "tick" {
				continue
			}
			if ev != "revoked" || d["scope"] != "subject" || d["reauth"] != "login" {
				t.Fatalf("event %q %v", ev, d)
			}
			break
		}
		if _, _, err := s.next(t); err == nil {
			t.Error("the stream stayed open after the revoked event")
		}
		if res, body := e.API(t, carol, http.MethodGet, "/me", nil, nil); res.StatusCode != http.StatusUnauthorized || body["error"] != "reauth_required" {
			t.Errorf("carol after terminate-user: %d %v", res.StatusCode, body)
		}
	})

	t.Run("announced termination is signalled on every response", func(t *testing.T) {
		e.Login(t, bob, "bob")
		at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		res, body := e.Admin(t, alice, "terminate-all", map[string]any{
			"reason": "Rotating keys", "reauth": "mfa", "at": at.Format(time.RFC3339), "confirm": "terminate-all",
		})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("announce: %d %v", res.StatusCode, body)
		}
		res, _ = e.API(t, bob, http.MethodGet, "/me", nil, nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Sessionfence-Termination") != at.Format(time.RFC3339) ||
			res.Header.Get("Sessionfence-Termination-Reason") != url.PathEscape("Rotating keys") {
			t.Errorf("bob: %d %v", res.StatusCode, res.Header)
		}
		if res, body := e.Admin(t, alice, "cancel", map[string]any{"scope": "global"}); res.StatusCode != http.StatusOK {
			t.Errorf("cancel: %d %v", res.StatusCode, body)
		}
		if res, _ := e.API(t, bob, http.MethodGet, "/me", nil, nil); res.Header.Get("Sessionfence-Termination") != "" {
			t.Error("the announcement is still signalled after cancel")
		}
	})

	t.Run("terminate-all with MFA keeps the caller and demands a second factor", func(t *testing.T) {
		res, body := e.Admin(t, alice, "terminate-all", map[string]any{
			"reason": "credential leak", "reauth": "mfa", "confirm": "terminate-all",
		})
		if res.StatusCode != http.StatusOK || body["kept_session"] != true {
			t.Fatalf("terminate-all: %d %v", res.StatusCode, body)
		}
		if res, body := e.API(t, alice, http.MethodGet, "/me", nil, nil); res.StatusCode != http.StatusOK {
			t.Errorf("alice was not kept: %d %v", res.StatusCode, body)
		}
		res, body = e.API(t, bob, http.MethodGet, "/me", nil, nil)
		if res.StatusCode != http.StatusUnauthorized || body["error"] != "reauth_required" || body["reauth"] != "mfa" {
			t.Errorf("bob: %d %v", res.StatusCode, body)
		}
		if res, _ := e.API(t, carol, http.MethodGet, "/api/hello", nil, http.Header{"Authorization": {"Bearer " + token}}); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("access token issued before terminate-all: %d", res.StatusCode)
		}
		me, otp := e.Login(t, bob, "bob")
		if !otp || me["acr"] != app.DefaultMFAACR || !slices.Equal(toStrings(me["amr"]), []string{"pwd", "otp"}) {
			t.Errorf("bob's new login: otp asked %v, me %v", otp, me)
		}
		// The refused session was dropped from the registry: bob has one
		// session listed, the new one.
		_, list := e.API(t, alice, http.MethodGet, app.AdminAPIPath+"sessions?"+url.Values{"issuer": {e.Issuer}, "sub": {"bob"}}.Encode(), nil, nil)
		if ss, _ := list["sessions"].([]any); len(ss) != 1 {
			t.Errorf("bob's sessions after re-login: %v", list)
		}
		_, audit := e.API(t, alice, http.MethodGet, app.AdminAPIPath+"audit?limit=5", nil, nil)
		entries, _ := audit["entries"].([]any)
		if len(entries) == 0 || entries[0].(map[string]any)["action"] != "terminate_all" {
			t.Errorf("audit: %v", audit)
		}
	})

	t.Run("back-channel logout from the provider's dev page ends the session", func(t *testing.T) {
		admin := e.Browser(t)
		p := get(t, admin, e.Issuer+"/dev/")
		action, f := p.form(t, `name="sub" value="bob"`)
		before := len(e.IdP.Deliveries())
		if p = post(t, admin, action, f); p.code != http.StatusOK {
			t.Fatalf("ending bob at the provider: %d\n%s", p.code, p.body)
		}
		ds := e.IdP.Deliveries()[before:]
		if len(ds) == 0 || ds[0].URI != e.URL+app.BackchannelPath || ds[0].StatusCode != http.StatusOK || ds[0].Err != nil {
			t.Fatalf("deliveries: %+v", ds)
		}
		res, body := e.API(t, bob, http.MethodGet, "/me", nil, nil)
		if res.StatusCode != http.StatusUnauthorized || body["error"] != "reauth_required" || body["scope"] != "idp_session" {
			t.Errorf("bob after back-channel logout: %d %v", res.StatusCode, body)
		}
		if res, _ := e.API(t, alice, http.MethodGet, "/me", nil, nil); res.StatusCode != http.StatusOK {
			t.Errorf("alice was signed out too: %d", res.StatusCode)
		}
	})

	t.Run("logout ends the session here and at the provider", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.URL+app.LogoutPath, nil)
		req.Header.Set("Origin", e.URL)
		p := do(t, alice, req)
		if p.code != http.StatusOK || p.url.Host != strings.TrimPrefix(e.URL, "http://") || p.url.Path != "/" || !strings.Contains(p.body, "You are not signed in") {
			t.Errorf("logout ended on %s (%d)", p.url, p.code)
		}
		if res, body := e.API(t, alice, http.MethodGet, "/me", nil, nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("after logout: %d %v", res.StatusCode, body)
		}
		if slices.ContainsFunc(e.IdP.Sessions(), func(s devidp.Session) bool { return s.SID == aliceSID }) {
			t.Error("alice's provider session survived the logout")
		}
		if ss, err := e.App.Admin.Sessions(t.Context(), e.Issuer, "alice"); err != nil || len(ss) != 0 {
			t.Errorf("alice's sessions after logout: %v, %v", ss, err)
		}
		req, _ = http.NewRequest(http.MethodPost, e.URL+app.LogoutPath, nil)
		req.Header.Set("Origin", "https://evil.example")
		if p := do(t, bob, req); p.code != http.StatusForbidden {
			t.Errorf("cross-site logout: %d", p.code)
		}
	})
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
