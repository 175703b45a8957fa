// Package oidcprovider runs panva's oidc-provider (the npm package, a
// certified OpenID Provider we did not write) as a child process for
// interoperability tests: server.mjs in this folder, with our own sign-in
// pages (loginapp's markup: a password form with an optional one-time
// code) and test-only hooks under /__test/.
//
// The package is installed by scripts/oidc-provider (npm ci, once per
// package-lock.json); node and npm must be on PATH, and a missing one
// fails the test, never skips it. Each [Start] runs one provider on a
// free loopback port it picks itself (so no port can be taken between
// choosing and binding), with a plain-HTTP issuer and an in-memory
// store, and kills its process group when the test ends.
package oidcprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/examples/interop/internal/child"
)

// Version is the oidc-provider release the suite is written against; it
// must equal the one package.json pins (Start checks what runs).
const Version = "9.13.3"

// Default acr values (the same as loginapp's, so tests read alike).
const (
	DefaultPasswordACR = "urn:sessionfence:pwd"
	DefaultMFAACR      = "urn:sessionfence:mfa"
)

// Endpoint paths (oidc-provider's default routes) and the test hooks.
const (
	AuthPath       = "/auth"
	TokenPath      = "/token"
	EndSessionPath = "/session/end"
	RevocationPath = "/token/revocation"
	// InteractionPath prefixes our sign-in pages: /interaction/{uid}, and
	// /interaction/{uid}/login for the form's POST.
	InteractionPath = "/interaction/"
)

const (
	// readyTimeout bounds the start: node loading the package, key
	// generation, then discovery answering 200.
	readyTimeout = 30 * time.Second
	logTail      = 60
)

// Options configures one provider (written to the JSON file server.mjs
// reads).
type Options struct {
	// Clients are registered statically at start.
	Clients []Client `json:"clients"`
	// Users maps each username (also the subject) to its password and the
	// claims the provider releases (tenant rides in every ID token).
	Users map[string]User `json:"users"`
	// OTP is the one-time code every user's second factor accepts.
	OTP string `json:"otp"`
	// PasswordACR, MFAACR: acr after a password alone, and with a code.
	// Defaults DefaultPasswordACR, DefaultMFAACR.
	PasswordACR string `json:"passwordACR,omitempty"`
	MFAACR      string `json:"mfaACR,omitempty"`
	// API is the resource server whose access tokens are JWTs. Default
	// resource urn:sessionfence:api, audience "api", scope "api:read".
	API *API `json:"api,omitempty"`
	// SSRFProtection keeps oidc-provider's refusal to send back-channel
	// logout tokens to special-use addresses (loopback among them), so no
	// loopback RP gets any. Default off.
	SSRFProtection bool `json:"ssrfProtection"`
	// DefaultIssueRefreshToken keeps oidc-provider's issueRefreshToken: a
	// refresh token only when offline_access was granted, which it is only
	// with prompt=consent. Default: server.mjs also issues one to every
	// confidential web client with the refresh_token grant (the recipe in
	// oidc-provider's documentation).
	DefaultIssueRefreshToken bool `json:"defaultIssueRefreshToken,omitempty"`
	// NoStepUp drops our login check that asks a live password session
	// for the code when acr_values names MFAACR; the provider then ignores
	// acr_values, as its default policy does.
	NoStepUp bool `json:"noStepUp,omitempty"`
}

// User is one account.
type User struct {
	Password string         `json:"password"`
	Claims   map[string]any `json:"claims,omitempty"`
}

// API describes the resource server (RFC 8707 resource indicator).
type API struct {
	Resource string `json:"resource"`
	Audience string `json:"audience"`
	Scope    string `json:"scope"`
}

// Client is client metadata as oidc-provider takes it. Only the fields
// the suite uses.
type Client struct {
	ClientID                         string   `json:"client_id"`
	ClientSecret                     string   `json:"client_secret,omitempty"`
	GrantTypes                       []string `json:"grant_types"`
	ResponseTypes                    []string `json:"response_types"`
	Scope                            string   `json:"scope,omitempty"`
	RedirectURIs                     []string `json:"redirect_uris"`
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required"`
	TokenEndpointAuthMethod          string   `json:"token_endpoint_auth_method"`
	RequireAuthTime                  bool     `json:"require_auth_time,omitempty"`
}

// WebClient returns a confidential web-application registration: the
// authorization code and refresh token grants, client_secret_basic,
// back-channel logout with sid required.
func WebClient(id, secret, redirectURI, postLogoutURI, backchannelURI string) Client {
	return Client{
		ClientID:                         id,
		ClientSecret:                     secret,
		GrantTypes:                       []string{"authorization_code", "refresh_token"},
		ResponseTypes:                    []string{"code"},
		RedirectURIs:                     []string{redirectURI},
		PostLogoutRedirectURIs:           []string{postLogoutURI},
		BackchannelLogoutURI:             backchannelURI,
		BackchannelLogoutSessionRequired: true,
		TokenEndpointAuthMethod:          "client_secret_basic",
	}
}

// Server is a running provider.
type Server struct {
	// Issuer is http://127.0.0.1:port, no trailing slash; the endpoints
	// hang below it (AuthPath, TokenPath, ...).
	Issuer string
	// HTTP is a client for it, with a timeout.
	HTTP *http.Client
	// Node is the node version that runs it.
	Node string

	proc *child.Process
}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// Dir returns the folder holding server.mjs with its node_modules: the
// answer of scripts/oidc-provider (found in a parent folder of the working
// directory), which runs npm ci when the install is missing or stale. It
// runs once per test binary; scripts/interop has usually done it already.
func Dir(t testing.TB) string {
	t.Helper()
	installOnce.Do(func() { installDir, installErr = install() })
	if installErr != nil {
		t.Fatalf("installing oidc-provider: %v", installErr)
	}
	return installDir
}

func install() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not on PATH: the oidc-provider interop tests need Node.js 20 or later and npm (apt-get install nodejs npm)", tool)
		}
	}
	script, err := child.FindUp("scripts/oidc-provider")
	if err != nil {
		return "", fmt.Errorf("%v; run scripts/interop from the repository", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", script, err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		return "", fmt.Errorf("%s printed %q, which has no node_modules/oidc-provider\n%s", script, dir, stderr.String())
	}
	return dir, nil
}

// Start runs a provider with o and waits until discovery answers. It is
// stopped in t.Cleanup; when the test failed, its log is printed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir := Dir(t)
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "oidc-provider.json")
	if err := os.WriteFile(cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "server.mjs"), cfg)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	proc, err := child.Start(cmd)
	if err != nil {
		t.Fatalf("starting oidc-provider: %v", err)
	}
	s := &Server{HTTP: &http.Client{Timeout: 10 * time.Second}, proc: proc}
	t.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			t.Errorf("stopping oidc-provider: %v", err)
		}
		if t.Failed() {
			t.Logf("oidc-provider's log (last %d lines):\n%s", logTail, proc.Tail(logTail))
		}
	})
	if err := s.waitReady(); err != nil {
		t.Fatalf("starting oidc-provider: %v\nlog (last %d lines):\n%s", err, logTail, proc.Tail(logTail))
	}
	return s
}

// banner is the line server.mjs prints once it listens.
type banner struct {
	Issuer       string `json:"issuer"`
	Node         string `json:"node"`
	OIDCProvider string `json:"oidcProvider"`
}

// waitReady polls the log for the banner, then discovery until it answers
// 200, the process exits, or readyTimeout passes.
func (s *Server) waitReady() error {
	return s.proc.WaitReady("oidc-provider", readyTimeout, 20*time.Millisecond, func() (bool, error) {
		for line := range strings.Lines(s.proc.Logs()) {
			var b banner
			if s.Issuer != "" || !strings.HasPrefix(line, `{"issuer":`) || json.Unmarshal([]byte(line), &b) != nil {
				continue
			}
			if b.OIDCProvider != Version {
				return false, fmt.Errorf("oidc-provider %s runs, the suite is written against %s: update Version with package.json", b.OIDCProvider, Version)
			}
			s.Issuer, s.Node = b.Issuer, b.Node
		}
		return s.Issuer != "" && child.GetOK(s.HTTP, s.Issuer+"/.well-known/openid-configuration"), nil
	})
}

// Logs returns what the provider printed so far.
func (s *Server) Logs() string { return s.proc.Logs() }

// Login records one login interaction (the provider asked our sign-in
// page). oidc-provider does not ask at all when its session satisfies the
// request: a silent login leaves no record.
type Login struct {
	UID string `json:"uid"`
	// Prompt is the interaction's prompt ("login"), Reasons the policy
	// checks that asked for it (login_prompt, max_age, no_session,
	// acr_values_mfa, ...).
	Prompt  string   `json:"prompt"`
	Reasons []string `json:"reasons"`
	// Session is the account of the live provider session, "" for none.
	Session  string `json:"session"`
	ClientID string `json:"clientId"`
	Params   struct {
		Prompt string `json:"prompt"`
		// MaxAge is "" for max_age=0, which oidc-provider rewrites to
		// prompt=login before the policy runs.
		MaxAge    string `json:"max_age"`
		ACRValues string `json:"acr_values"`
		Scope     string `json:"scope"`
	} `json:"params"`
	// Form reports that a form was shown, StepUp that it asked only for
	// the code.
	Form   bool `json:"form"`
	StepUp bool `json:"stepUp"`
	// Accepted reports that the person signed in: as Subject, with ACR and
	// AMR, authenticated at TS (Unix seconds; a step-up keeps the
	// session's).
	Accepted bool     `json:"accepted"`
	Subject  string   `json:"subject"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	TS       int64    `json:"ts"`
}

// Consent records one consent interaction; server.mjs grants what was
// missing at once, without a page (a first-party application).
type Consent struct {
	UID      string   `json:"uid"`
	ClientID string   `json:"clientId"`
	Reasons  []string `json:"reasons"`
	// Scope is the OpenID scopes granted, Resources the resource scopes
	// per resource indicator.
	Scope     []string            `json:"scope"`
	Resources map[string][]string `json:"resources"`
}

// Logout records one completed end_session (the confirm step).
type Logout struct {
	Subject     string `json:"subject"`
	ClientID    string `json:"clientId"`
	RPInitiated bool   `json:"rpInitiated"`
}

// Delivery is one back-channel logout token the provider POSTed: who it
// was for, whether the RP answered 200/204, and the error otherwise. Via
// is "end_session" or "hook" (EndSession).
type Delivery struct {
	ClientID string `json:"clientId"`
	Sub      string `json:"sub"`
	SID      string `json:"sid"`
	Via      string `json:"via"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
}

// Ended is one provider session EndSession ended.
type Ended struct {
	Sub  string   `json:"sub"`
	SIDs []string `json:"sids"`
}

// Logins returns the login interactions so far, oldest first.
func (s *Server) Logins(t testing.TB) []Login { return list[Login](t, s, "/__test/logins") }

// Consents returns the consent interactions so far, oldest first.
func (s *Server) Consents(t testing.TB) []Consent { return list[Consent](t, s, "/__test/consents") }

// Logouts returns the completed end_session requests so far.
func (s *Server) Logouts(t testing.TB) []Logout { return list[Logout](t, s, "/__test/logouts") }

// Deliveries returns the back-channel logout POSTs so far.
func (s *Server) Deliveries(t testing.TB) []Delivery {
	return list[Delivery](t, s, "/__test/backchannel")
}

func list[T any](t testing.TB, s *Server, path string) []T {
	t.Helper()
	var out []T
	s.hook(t, http.MethodGet, path, nil, &out)
	return out
}

// EndSession ends every provider session of sub as an operator would
// (oidc-provider has no admin API; this is our test hook): each client
// the session logged in to gets its logout token first (the call returns
// after the deliveries), then the grants are revoked and the session is
// destroyed.
func (s *Server) EndSession(t testing.TB, sub string) []Ended {
	t.Helper()
	var out []Ended
	s.hook(t, http.MethodPost, "/__test/end-session", map[string]string{"sub": sub}, &out)
	return out
}

func (s *Server) hook(t testing.TB, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.Issuer+path, body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("oidc-provider %s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("oidc-provider %s %s: %v: %s", method, path, err, raw)
	}
}
