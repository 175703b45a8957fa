// Package hydra runs Ory Hydra, a certified OpenID Provider we did not
// write, as a child process for interoperability tests, and talks to its
// admin API with plain net/http and encoding/json (no Hydra SDK).
//
// The binary comes from $HYDRA_BIN, else from scripts/hydra (which builds
// and caches it; see that script for why Hydra cannot simply be a
// dependency). Each [Start] runs one Hydra on two free loopback ports
// with an in-memory database, in development mode (plain-HTTP issuer,
// cookies without Secure), and kills its process group when the test
// ends.
package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/examples/interop/internal/child"
)

// Version is the Hydra release the interop suite is written against.
const Version = "v2.3.0"

const (
	// readyTimeout bounds Hydra's start (migrations of the in-memory
	// database, key generation) until /health/ready answers 200.
	readyTimeout = 60 * time.Second
	// startAttempts bounds retries when a port picked free was taken
	// before Hydra bound it.
	startAttempts = 3
)

// Options configures one Hydra. The URLs are where Hydra sends the
// browser for login, consent and logout (our login app).
type Options struct {
	LoginURL   string
	ConsentURL string
	LogoutURL  string
	// ErrorURL receives Hydra's error redirects (error, error_description,
	// error_hint); default Hydra's own error page.
	ErrorURL string
	// PostLogoutRedirectURL is where a logout without a registered
	// post_logout_redirect_uri ends; default Hydra's fallback page.
	PostLogoutRedirectURL string
	// DSN is Hydra's database. Default: a SQLite file in the test's
	// temporary folder (WAL, 10 s busy timeout), migrated before start.
	// "memory" is Hydra's in-memory SQLite; it shares one cache between
	// connections, and two concurrent requests then sometimes fail with
	// SQLITE_LOCKED ("Unable to serialize access due to a concurrent
	// update in another session", about one run in ten of TestHydraLogout),
	// so the suite does not use it.
	DSN string
	// Env holds extra settings as KEY=value (Hydra maps the config key
	// ttl.access_token to TTL_ACCESS_TOKEN, and so on); they override the
	// defaults set here.
	Env []string
}

// Server is a running Hydra.
type Server struct {
	// Issuer is the issuer as configured (URLS_SELF_ISSUER), equal to the
	// public URL: http://127.0.0.1:port, no trailing slash.
	Issuer string
	// PublicURL serves the OAuth 2.0 and OpenID Connect endpoints;
	// AdminURL the admin API (/admin/...).
	PublicURL string
	AdminURL  string
	// HTTP is a client for both, with a timeout.
	HTTP *http.Client

	proc *child.Process
}

// Binary returns the path of the Hydra binary: $HYDRA_BIN when set, else
// the answer of scripts/hydra, found in a parent folder of the working
// directory (which builds Hydra on its first run: minutes).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HYDRA_BIN"); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("HYDRA_BIN=%s is not an executable file", p)
		}
		return p
	}
	script, err := child.FindUp("scripts/hydra")
	if err != nil {
		t.Fatalf("HYDRA_BIN is unset and %v; run scripts/interop, or set HYDRA_BIN", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	p := strings.TrimSpace(string(out))
	if p == "" {
		t.Fatalf("%s printed no path\n%s", script, stderr.String())
	}
	return p
}

// Start runs Hydra with o and waits until it is ready. The process is
// stopped in t.Cleanup; when the test failed, Hydra's log is printed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	if o.DSN == "" {
		o.DSN = "sqlite://" + filepath.Join(t.TempDir(), "hydra.sqlite") + "?_fk=true&_journal_mode=WAL&_busy_timeout=10000"
		if out, err := command(bin, o, "migrate", "sql", "up", "--read-from-env", "--yes").CombinedOutput(); err != nil {
			t.Fatalf("hydra migrate sql up: %v\n%s", err, out)
		}
	}
	var lastErr error
	for range startAttempts {
		s, err := start(bin, o)
		if err == nil {
			t.Cleanup(func() {
				if err := s.proc.Stop(); err != nil {
					t.Errorf("stopping Hydra: %v", err)
				}
				if t.Failed() {
					t.Logf("Hydra's log (last %d lines):\n%s", logTail, s.Tail(logTail))
				}
			})
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("starting Hydra: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("a port was taken before Hydra bound it")

// command returns Hydra's command line args with o's environment (and
// extra, later entries winning), in its own process group.
func command(bin string, o Options, args ...string) *exec.Cmd {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
		"DSN=" + o.DSN,
		"SQA_OPT_OUT=true",
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(env, o.Env...) // exec keeps the last of duplicates
	return cmd
}

func start(bin string, o Options) (*Server, error) {
	public, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Issuer:   "http://127.0.0.1:" + strconv.Itoa(public),
		AdminURL: "http://127.0.0.1:" + strconv.Itoa(admin),
		HTTP:     &http.Client{Timeout: 10 * time.Second},
	}
	s.PublicURL = s.Issuer
	env := []string{
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT=" + strconv.Itoa(public),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT=" + strconv.Itoa(admin),
		"URLS_SELF_ISSUER=" + s.Issuer,
		"URLS_LOGIN=" + o.LoginURL,
		"URLS_CONSENT=" + o.ConsentURL,
		"URLS_LOGOUT=" + o.LogoutURL,
		"SECRETS_SYSTEM=" + rand.Text() + rand.Text(),
		// JWT access tokens, so the bearer verifier can judge them.
		"STRATEGIES_ACCESS_TOKEN=jwt",
		// The consent session's access-token claims land under ext; this
		// also copies tenant to the top level.
		"OAUTH2_ALLOWED_TOP_LEVEL_CLAIMS=tenant",
		"OAUTH2_EXPOSE_INTERNAL_ERRORS=true",
		"LOG_LEVEL=info",
		"LOG_LEAK_SENSITIVE_VALUES=true",
	}
	if o.ErrorURL != "" {
		env = append(env, "URLS_ERROR="+o.ErrorURL)
	}
	if o.PostLogoutRedirectURL != "" {
		env = append(env, "URLS_POST_LOGOUT_REDIRECT="+o.PostLogoutRedirectURL)
	}
	o.Env = append(env, o.Env...)
	if s.proc, err = child.Start(command(bin, o, "serve", "all", "--dev", "--sqa-opt-out")); err != nil {
		return nil, fmt.Errorf("hydra serve all: %w", err)
	}
	if err := s.waitReady(); err != nil {
		_ = s.proc.Stop()
		if strings.Contains(s.Logs(), "address already in use") {
			return nil, fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("%v\nHydra's log (last %d lines):\n%s", err, logTail, s.Tail(logTail))
	}
	return s, nil
}

// freePort asks the kernel for a free loopback port. Hydra binds it a
// moment later; Start retries if someone else took it meanwhile.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /health/ready on both ports until each answers 200,
// the process exits, or readyTimeout passes.
func (s *Server) waitReady() error {
	return s.proc.WaitReady("hydra", readyTimeout, 50*time.Millisecond, func() (bool, error) {
		return child.GetOK(s.HTTP, s.AdminURL+"/health/ready") && child.GetOK(s.HTTP, s.PublicURL+"/health/ready"), nil
	})
}

// logTail is how many lines of Hydra's log a failed test prints.
const logTail = 60

// Logs returns what Hydra printed so far.
func (s *Server) Logs() string { return s.proc.Logs() }

// Tail returns the last n lines of Hydra's log.
func (s *Server) Tail(n int) string { return s.proc.Tail(n) }

// APIError is a non-2xx answer of the admin API.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("hydra admin %s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// Admin calls the admin API: method on path (with its query), in as the
// JSON body when not nil, the JSON answer decoded into out when not nil.
// A non-2xx status is an *APIError.
func (s *Server) Admin(ctx context.Context, method, path string, in, out any) error {
	return AdminCall(ctx, s.HTTP, s.AdminURL, method, path, in, out)
}

// AdminCall is [Server.Admin] for callers that know only the admin URL
// (the login app).
func AdminCall(ctx context.Context, c *http.Client, adminURL, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, adminURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, Status: res.StatusCode, Body: string(raw)}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("hydra admin %s %s: %w", method, path, err)
	}
	return nil
}

// Client is an OAuth 2.0 client registration (POST /admin/clients). Only
// the fields the suite uses; Hydra generates ClientID and ClientSecret
// when they are empty and returns them.
type Client struct {
	ClientID                         string   `json:"client_id,omitempty"`
	ClientSecret                     string   `json:"client_secret,omitempty"`
	GrantTypes                       []string `json:"grant_types"`
	ResponseTypes                    []string `json:"response_types"`
	Scope                            string   `json:"scope"`
	Audience                         []string `json:"audience,omitempty"`
	RedirectURIs                     []string `json:"redirect_uris"`
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required"`
	TokenEndpointAuthMethod          string   `json:"token_endpoint_auth_method"`
}

// WebClient returns a confidential web-application registration: the
// authorization code and refresh token grants, client_secret_basic,
// scopes openid, offline_access, profile and email (those the example
// app asks for; Hydra refuses a request for an unregistered scope), the
// API audience "api".
func WebClient(redirectURI, postLogoutURI, backchannelURI string) Client {
	return Client{
		GrantTypes:                       []string{"authorization_code", "refresh_token"},
		ResponseTypes:                    []string{"code"},
		Scope:                            "openid offline_access profile email",
		Audience:                         []string{"api"},
		RedirectURIs:                     []string{redirectURI},
		PostLogoutRedirectURIs:           []string{postLogoutURI},
		BackchannelLogoutURI:             backchannelURI,
		BackchannelLogoutSessionRequired: true,
		TokenEndpointAuthMethod:          "client_secret_basic",
	}
}

// CreateClient registers c and returns it as Hydra stored it, with the
// generated id and secret.
func (s *Server) CreateClient(t testing.TB, c Client) Client {
	t.Helper()
	var out Client
	if err := s.Admin(context.Background(), http.MethodPost, "/admin/clients", c, &out); err != nil {
		t.Fatal(err)
	}
	if out.ClientID == "" || out.ClientSecret == "" {
		t.Fatalf("hydra created client %+v without id or secret", out)
	}
	return out
}

// SetBackchannelLogoutURI changes where Hydra sends id's logout tokens
// (PATCH /admin/clients/{id}, a JSON Patch).
func (s *Server) SetBackchannelLogoutURI(t testing.TB, id, uri string) {
	t.Helper()
	patch := []map[string]string{{"op": "replace", "path": "/backchannel_logout_uri", "value": uri}}
	if err := s.Admin(context.Background(), http.MethodPatch, "/admin/clients/"+id, patch, nil); err != nil {
		t.Fatal(err)
	}
}

// EndSession ends the provider's login session sid as an operator would
// (DELETE /admin/oauth2/auth/sessions/login?sid=): Hydra sends the
// back-channel logout tokens of every client the session logged in to.
func (s *Server) EndSession(t testing.TB, sid string) {
	t.Helper()
	if err := s.Admin(context.Background(), http.MethodDelete, "/admin/oauth2/auth/sessions/login?sid="+sid, nil, nil); err != nil {
		t.Fatal(err)
	}
}
