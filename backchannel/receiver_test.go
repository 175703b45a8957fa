package backchannel

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
)

// tcase is one request to the receiver. The token is the provider's valid
// logout token for (rp, alice, sid-1), changed by claims and signed by
// token (default: as the provider signs logout tokens, typ logout+jwt).
type tcase struct {
	name   string
	idp    func() *fakeidp.Provider // default: the RS256 provider
	cfg    func(*Config)
	claims func(c map[string]any)
	token  func(p *fakeidp.Provider, c map[string]any) string
	req    func(tok string) *http.Request
	status int
	reason string
	bumped []middleware.ScopeKind // on the case's provider
}

func setClaim(k string, v any) func(map[string]any) {
	return func(c map[string]any) { c[k] = v }
}

func dropClaim(ks ...string) func(map[string]any) {
	return func(c map[string]any) {
		for _, k := range ks {
			delete(c, k)
		}
	}
}

func withHeader(h map[string]any) func(*fakeidp.Provider, map[string]any) string {
	return func(p *fakeidp.Provider, c map[string]any) string { return p.Sign(h, c) }
}

func TestHandler(t *testing.T) {
	clk := newClock()
	rs, es, ed := providers(t, clk)
	other := fakeidp.New(t, fakeidp.WithClock(clk.Now)) // an RS256 provider we do not trust
	now := func() int64 { return clk.Now().Unix() }
	withHS256 := func(c *Config) {
		c.Issuers[0].Algorithms = []string{"RS256", "HS256"}
		c.Issuers[0].ClientSecret = clientSecret
	}
	event := func(v any) func(map[string]any) {
		return setClaim("events", map[string]any{LogoutEvent: v})
	}
	idpSess := []middleware.ScopeKind{middleware.ScopeIdPSession}
	subject := []middleware.ScopeKind{middleware.ScopeSubject}

	cases := []tcase{
		// Accepted.
		{name: "sub and sid revoke the IdP session", status: 200, bumped: idpSess},
		{name: "sid only revokes the IdP session", claims: dropClaim("sub"), status: 200, bumped: idpSess},
		{name: "sub only revokes the subject", claims: dropClaim("sid"), status: 200, bumped: subject},
		{name: "escalation revokes session and subject", cfg: func(c *Config) { c.EscalateToSubject = true },
			status: 200, bumped: []middleware.ScopeKind{middleware.ScopeIdPSession, middleware.ScopeSubject}},
		{name: "empty sid counts as absent and revokes the subject", claims: setClaim("sid", ""), status: 200, bumped: subject},
		{name: "ES256 accepted", idp: func() *fakeidp.Provider { return es }, status: 200, bumped: idpSess},
		{name: "EdDSA accepted", idp: func() *fakeidp.Provider { return ed }, status: 200, bumped: idpSess},
		{name: "aud array containing us accepted", claims: setClaim("aud", []string{"other", clientID}), status: 200, bumped: idpSess},
		{name: "azp equal to us accepted", claims: setClaim("azp", clientID), status: 200, bumped: idpSess},
		{name: "exp passed within skew accepted", claims: setClaim("exp", now()-2), status: 200, bumped: idpSess},
		{name: "iat ahead within skew accepted", claims: setClaim("iat", now()+2), status: 200, bumped: idpSess},
		{name: "fractional times accepted", claims: func(c map[string]any) { c["iat"] = float64(now()) + 0.5; c["exp"] = float64(now()) + 60.25 },
			status: 200, bumped: idpSess},
		{name: "missing exp accepted when allowed", cfg: func(c *Config) { c.InsecureAllowMissingExp = true },
			claims: dropClaim("exp"), status: 200, bumped: idpSess},
		{name: "unknown claims ignored", claims: setClaim("trace", map[string]any{"x": 1}), status: 200, bumped: idpSess},
		{name: "other events alongside accepted", claims: setClaim("events", map[string]any{LogoutEvent: map[string]any{}, "urn:x": 1}),
			status: 200, bumped: idpSess},
		{name: "token without kid verifies against the key set", token: withHeader(map[string]any{"kid": nil, "typ": "logout+jwt"}),
			status: 200, bumped: idpSess},
		{name: "typ JWT accepted by default", token: withHeader(map[string]any{"typ": "JWT"}), status: 200, bumped: idpSess},
		{name: "typ absent accepted by default", token: withHeader(map[string]any{"typ": nil}), status: 200, bumped: idpSess},
		{name: "typ logout+jwt accepted in strict mode", cfg: func(c *Config) { c.StrictType = true }, status: 200, bumped: idpSess},
		{name: "typ application/logout+jwt accepted in strict mode", cfg: func(c *Config) { c.StrictType = true },
			token: withHeader(map[string]any{"typ": "application/LOGOUT+JWT"}), status: 200, bumped: idpSess},
		{name: "HS256 with the client secret accepted when configured", cfg: withHS256,
			token: func(p *fakeidp.Provider, c map[string]any) string {
				return p.SignWith([]byte(clientSecret), "HS256", map[string]any{"typ": "logout+jwt"}, c)
			}, status: 200, bumped: idpSess},
		{name: "form with a charset parameter accepted", req: func(tok string) *http.Request {
			r := form(tok)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
			return r
		}, status: 200, bumped: idpSess},

		// Every required claim missing in turn.
		{name: "missing iss", claims: dropClaim("iss"), status: 400, reason: codeIssMissing},
		{name: "missing aud", claims: dropClaim("aud"), status: 400, reason: codeAudMissing},
		{name: "empty aud array", claims: setClaim("aud", []string{}), status: 400, reason: codeAudMissing},
		{name: "missing iat", claims: dropClaim("iat"), status: 400, reason: codeIatMissing},
		{name: "missing exp", claims: dropClaim("exp"), status: 400, reason: codeExpMissing},
		{name: "missing jti", claims: dropClaim("jti"), status: 400, reason: codeJTIMissing},
		{name: "empty jti", claims: setClaim("jti", ""), status: 400, reason: codeJTIMissing},
		{name: "missing events", claims: dropClaim("events"), status: 400, reason: codeEventsMissing},
		{name: "missing sub and sid", claims: dropClaim("sub", "sid"), status: 400, reason: codeSubSIDMissing},
		{name: "sid required but absent", cfg: func(c *Config) { c.SessionRequired = true }, claims: dropClaim("sid"),
			status: 400, reason: codeSIDRequired},

		// Wrong values.
		{name: "wrong iss", claims: setClaim("iss", "https://evil.example"), status: 400, reason: codeIssuer},
		{name: "iss of a provider we do not trust", claims: func(c map[string]any) { c["iss"] = other.Issuer() },
			status: 400, reason: codeIssuer},
		{name: "iss with a trailing slash", claims: func(c map[string]any) { c["iss"] = rs.Issuer() + "/" }, status: 400, reason: codeIssuer},
		{name: "iss of the wrong type", claims: setClaim("iss", 42), status: 400, reason: codeClaimType},
		{name: "wrong aud", claims: setClaim("aud", "someone-else"), status: 400, reason: codeAudience},
		{name: "aud of the wrong type", claims: setClaim("aud", 7), status: 400, reason: codeClaimType},
		{name: "azp of another client", claims: setClaim("azp", "someone-else"), status: 400, reason: codeAZP},
		{name: "expired", claims: func(c map[string]any) { c["iat"] = now() - 120; c["exp"] = now() - 60 }, status: 400, reason: codeExpired},
		{name: "iat in the future", claims: func(c map[string]any) { c["iat"] = now() + 60; c["exp"] = now() + 180 },
			status: 400, reason: codeIatFuture},
		{name: "iat too old despite a far exp", claims: func(c map[string]any) { c["iat"] = now() - 3600; c["exp"] = now() + 3600 },
			status: 400, reason: codeIatOld},
		{name: "iat as a string", claims: setClaim("iat", "1700000000"), status: 400, reason: codeClaimType},
		{name: "exp absurdly large", claims: setClaim("exp", 1e300), status: 400, reason: codeClaimType},
		{name: "sub of the wrong type", claims: setClaim("sub", []string{"alice"}), status: 400, reason: codeClaimType},
		{name: "event value null", claims: event(nil), status: 400, reason: codeEventNotObject},
		{name: "event value true", claims: event(true), status: 400, reason: codeEventNotObject},
		{name: "event value string", claims: event("logout"), status: 400, reason: codeEventNotObject},
		{name: "event value array", claims: event([]any{}), status: 400, reason: codeEventNotObject},
		{name: "events without the logout event", claims: setClaim("events", map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}),
			status: 400, reason: codeEventMissing},
		{name: "event member in another case", claims: setClaim("events", map[string]any{strings.ToUpper(LogoutEvent): map[string]any{}}),
			status: 400, reason: codeEventMissing},
		{name: "events as an array", claims: setClaim("events", []string{LogoutEvent}), status: 400, reason: codeClaimType},
		{name: "nonce present", claims: setClaim("nonce", "n-0S6"), status: 400, reason: codeNonce},
		{name: "nonce present as null", claims: setClaim("nonce", nil), status: 400, reason: codeNonce},

		// Signature and header.
		{name: "alg none", token: func(p *fakeidp.Provider, c map[string]any) string { return p.Unsigned(c) },
			status: 400, reason: codeAlg},
		{name: "HS256 with the client secret refused by default", token: func(p *fakeidp.Provider, c map[string]any) string {
			return p.SignWith([]byte(clientSecret), "HS256", map[string]any{"typ": "logout+jwt"}, c)
		}, status: 400, reason: codeAlg},
		{name: "HS256 with another secret refused when configured", cfg: withHS256,
			token: func(p *fakeidp.Provider, c map[string]any) string {
				return p.SignWith([]byte(strings.Repeat("x", 40)), "HS256", map[string]any{"typ": "logout+jwt"}, c)
			}, status: 400, reason: codeSignature},
		{name: "HS256 allowed for another issuer only", cfg: func(c *Config) {
			c.Issuers[1].Algorithms = []string{"ES256", "HS256"}
			c.Issuers[1].ClientSecret = clientSecret
		}, token: func(p *fakeidp.Provider, c map[string]any) string {
			return p.SignWith([]byte(clientSecret), "HS256", map[string]any{"typ": "logout+jwt"}, c)
		}, status: 400, reason: codeAlg},
		{name: "alg outside the issuer's allow-list", cfg: func(c *Config) { c.Issuers[1].Algorithms = []string{"RS256"} },
			idp: func() *fakeidp.Provider { return es }, status: 400, reason: codeAlg},
		{name: "unknown kid", token: func(p *fakeidp.Provider, c map[string]any) string {
			return p.SignWith(rogue(t), "RS256", map[string]any{"kid": "not-published", "typ": "logout+jwt"}, c)
		}, status: 400, reason: codeUnknownKey},
		{name: "key from another issuer", token: func(_ *fakeidp.Provider, c map[string]any) string {
			return other.SignLogoutToken(c) // iss is ours, the key and kid are the other provider's
		}, status: 400, reason: codeUnknownKey},
		{name: "known kid but another key's signature", token: func(p *fakeidp.Provider, c map[string]any) string {
			return p.SignWith(rogue(t), "RS256", map[string]any{"kid": p.SigningKey().ID, "typ": "logout+jwt"}, c)
		}, status: 400, reason: codeSignature},
		{name: "header alg changed to PS256 over an RS256 signature", token: withHeader(map[string]any{"alg": "PS256", "typ": "logout+jwt"}),
			status: 400, reason: codeSignature},
		{name: "tampered payload", token: func(p *fakeidp.Provider, c map[string]any) string {
			parts := strings.Split(p.SignLogoutToken(c), ".")
			c["sub"] = "mallory"
			b, _ := json.Marshal(c)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		}, status: 400, reason: codeSignature},
		{name: "typ at+jwt refused", token: withHeader(map[string]any{"typ": "at+jwt"}), status: 400, reason: codeTyp},
		{name: "typ of the wrong type refused", token: withHeader(map[string]any{"typ": 1}), status: 400, reason: codeTyp},
		{name: "typ JWT refused in strict mode", cfg: func(c *Config) { c.StrictType = true },
			token: withHeader(map[string]any{"typ": "JWT"}), status: 400, reason: codeTyp},
		{name: "typ absent refused in strict mode", cfg: func(c *Config) { c.StrictType = true },
			token: withHeader(map[string]any{"typ": nil}), status: 400, reason: codeTyp},
		{name: "encrypted token refused", token: func(p *fakeidp.Provider, c map[string]any) string {
			return encrypt(t, p.SignLogoutToken(c))
		}, status: 400, reason: codeEncrypted},
		{name: "garbage token", token: func(*fakeidp.Provider, map[string]any) string { return "not.a.jwt" },
			status: 400, reason: codeMalformed},
		{name: "duplicate claim refused", token: func(p *fakeidp.Provider, c map[string]any) string {
			b, _ := json.Marshal(c)
			return signRaw(t, p, append(b[:len(b)-1], []byte(`,"sub":"mallory"}`)...))
		}, status: 400, reason: codeMalformed},
		{name: "claim names are case-sensitive", claims: func(c map[string]any) { c["ISS"] = c["iss"]; delete(c, "iss") },
			status: 400, reason: codeIssMissing},
		{name: "NONCE is not nonce", claims: setClaim("NONCE", "x"), status: 200, bumped: idpSess},
		{name: "claims not an object", token: func(p *fakeidp.Provider, _ map[string]any) string {
			parts := strings.Split(p.SignLogoutToken(map[string]any{}), ".")
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`["iss"]`)) + "." + parts[2]
		}, status: 400, reason: codeMalformed},

		// The request.
		{name: "GET refused with 405", req: func(tok string) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/backchannel?logout_token="+tok, nil)
		}, status: 405, reason: codeMethod},
		{name: "wrong content type", req: func(tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/backchannel", strings.NewReader(`{"logout_token":"`+tok+`"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, status: 400, reason: codeContentType},
		{name: "no content type", req: func(tok string) *http.Request {
			r := form(tok)
			r.Header.Del("Content-Type")
			return r
		}, status: 400, reason: codeContentType},
		{name: "oversized body", req: func(tok string) *http.Request {
			body := url.Values{"logout_token": {tok}, "pad": {strings.Repeat("a", DefaultMaxBodyBytes)}}.Encode()
			r := httptest.NewRequest(http.MethodPost, "/backchannel", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, status: 400, reason: codeBodyTooLarge},
		{name: "oversized body without Content-Length", req: func(tok string) *http.Request {
			r := form(tok + strings.Repeat("A", DefaultMaxBodyBytes))
			r.ContentLength = -1
			return r
		}, status: 400, reason: codeBodyTooLarge},
		{name: "duplicate logout_token parameters", req: func(tok string) *http.Request {
			body := url.Values{"logout_token": {tok, tok}}.Encode()
			r := httptest.NewRequest(http.MethodPost, "/backchannel", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, status: 400, reason: codeDuplicateToken},
		{name: "token only in the query string", req: func(tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/backchannel?logout_token="+tok, strings.NewReader("x=1"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, status: 400, reason: codeMissingToken},
		{name: "empty logout_token", req: func(string) *http.Request { return form("") }, status: 400, reason: codeMissingToken},
		{name: "malformed form encoding", req: func(string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/backchannel", strings.NewReader("logout_token=%zz"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, status: 400, reason: codeMalformedBody},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := rs
			if tc.idp != nil {
				p = tc.idp()
			}
			e := newEnv(t, clk, []*fakeidp.Provider{rs, es, ed}, tc.cfg)
			c := p.LogoutToken(clientID, sub, sid)
			if tc.claims != nil {
				tc.claims(c)
			}
			var tok string
			if tc.token != nil {
				tok = tc.token(p, c)
			} else {
				tok = p.SignLogoutToken(c)
			}
			req := form(tok)
			if tc.req != nil {
				req = tc.req(tok)
			}
			watched := e.watched()
			before := e.fences(t, watched)

			w := e.serve(req)

			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s; log %v", w.Code, tc.status, w.Body, e.logs.outcomes())
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			after := e.fences(t, watched)
			if tc.status != http.StatusOK {
				assertRefused(t, e, w, tc.reason)
				if !reflect.DeepEqual(before, after) || e.store.Len() != 0 {
					t.Errorf("a refused request moved a fence: before %+v after %+v (%d fences)", before, after, e.store.Len())
				}
				if n := e.store.remembers.Load(); n != 0 {
					t.Errorf("a refused request consumed its jti (%d Remember calls)", n)
				}
				if tc.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
					t.Errorf("Allow %q", w.Header().Get("Allow"))
				}
				return
			}
			if w.Body.Len() != 0 {
				t.Errorf("200 with body %q", w.Body)
			}
			if l := e.logs.last(t); l["outcome"] != outcomeApplied || l["reason"] != "ok" {
				t.Errorf("log %v", l)
			}
			want := map[middleware.Scope]bool{}
			for _, k := range tc.bumped {
				id := sid
				if k == middleware.ScopeSubject {
					id = sub
				}
				want[middleware.Scope{Kind: k, Issuer: p.Issuer(), ID: id}] = true
			}
			for i, sc := range watched {
				moved := after[i].Gen != before[i].Gen
				if moved != want[sc] {
					t.Errorf("fence %v moved=%v, want %v", sc, moved, want[sc])
				}
				if moved && after[i].Policy != middleware.PolicyFreshLogin {
					t.Errorf("fence %v policy %v, want login", sc, after[i].Policy)
				}
			}
		})
	}
	if len(cases) < 30 {
		t.Errorf("only %d cases", len(cases))
	}
}

// assertRefused checks the body and log record of a 4xx answer.
func assertRefused(t *testing.T, e *env, w *httptest.ResponseRecorder, reason string) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "invalid_request" || body.Description == "" {
		t.Errorf("body %q (%v)", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if l := e.logs.last(t); l["outcome"] != outcomeRejected || l["reason"] != reason {
		t.Errorf("log %v, want reason %s", l, reason)
	}
}

// encrypt wraps a signed token in a JWE (RSA-OAEP-256, A256GCM), the way a
// provider that encrypts ID tokens would send it.
func encrypt(t *testing.T, signed string) string {
	t.Helper()
	k := rogue(t)
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &k.PublicKey},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := enc.Encrypt([]byte(signed))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signRaw signs payload bytes as they are (the provider's tokens are built
// from maps, which cannot hold a duplicate member) with the provider's key.
func signRaw(t *testing.T, p *fakeidp.Provider, payload []byte) string {
	t.Helper()
	k := p.SigningKey()
	opts := (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader(jose.HeaderKey("kid"), k.ID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: k.Signer}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
