package app

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/sessionfence/sessionfence/middleware"
)

// Config is what an example instance needs. [FromEnv] fills it from the
// environment variables documented in the examples' README files; the
// demo and the tests fill it directly.
type Config struct {
	// Name labels the instance on its pages and in logs ("nethttp", "gin").
	Name string
	// Addr is the listen address. ADDR, default 127.0.0.1:8080.
	Addr string
	// PublicURL is the origin browsers use to reach this instance, without
	// path. PUBLIC_URL, default http://<Addr>. The OIDC callback is
	// PublicURL/callback, the post-logout landing PublicURL/.
	PublicURL string
	// Issuer, ClientID and ClientSecret are the OpenID Provider and this
	// application's registration there. OIDC_ISSUER, OIDC_CLIENT_ID
	// (both required), OIDC_CLIENT_SECRET.
	Issuer       string
	ClientID     string
	ClientSecret string
	// TenantClaim names the ID- and access-token claim holding the user's
	// workspace. OIDC_TENANT_CLAIM, default none (sessions have no
	// tenant). When set, a token without it is refused.
	TenantClaim string
	// APIAudience is the aud the bearer-protected API expects in access
	// tokens. API_AUDIENCE, default "api".
	APIAudience string
	// ValkeyAddr selects the Valkey (or Redis 7+) store; empty keeps the
	// fences in this process (memstore). VALKEY_ADDR.
	ValkeyAddr string
	// AdminSubjects are the subs (at Issuer) allowed to use the admin API
	// and page. ADMIN_SUBJECTS, comma-separated; default nobody.
	AdminSubjects []string
	// SessionKeys is the cookie key ring, the first sealing.
	// SESSION_KEYS, comma-separated standard base64 of 32 bytes each;
	// empty: one random key (sessions do not survive a restart and are not
	// shared between instances; a warning is logged).
	SessionKeys [][]byte
	// RandomKeys reports that SessionKeys was generated.
	RandomKeys bool
	// InsecureCookies drops Secure and the __Host- prefix so that cookies
	// work over plain HTTP. INSECURE_COOKIES=1; allowed only when
	// PublicURL is http on a loopback address.
	InsecureCookies bool
	// MFAACR is the acr value that proves a second factor, asked for (as
	// acr_values) and checked when a fence demands MFA. MFA_ACR, default
	// urn:sessionfence:mfa.
	MFAACR string

	// Store, when set, is used instead of the one VALKEY_ADDR selects (the
	// demo shares one memstore between two instances). Never closed by
	// the App.
	Store middleware.Store
	// HTTPClient makes every call to the provider (discovery, keys,
	// tokens). Default: a client with a 10 second timeout.
	HTTPClient *http.Client
	// Logger receives the application's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMFAACR is the default of Config.MFAACR; the development provider
// reports it after a one-time code.
const DefaultMFAACR = "urn:sessionfence:mfa"

// FromEnv reads the configuration from the environment through getenv
// (os.Getenv in the examples). name labels the instance.
func FromEnv(name string, getenv func(string) string) (Config, error) {
	cfg := Config{
		Name:          name,
		Addr:          getenv("ADDR"),
		PublicURL:     getenv("PUBLIC_URL"),
		Issuer:        getenv("OIDC_ISSUER"),
		ClientID:      getenv("OIDC_CLIENT_ID"),
		ClientSecret:  getenv("OIDC_CLIENT_SECRET"),
		TenantClaim:   getenv("OIDC_TENANT_CLAIM"),
		APIAudience:   getenv("API_AUDIENCE"),
		ValkeyAddr:    getenv("VALKEY_ADDR"),
		AdminSubjects: splitList(getenv("ADMIN_SUBJECTS")),
		MFAACR:        getenv("MFA_ACR"),
	}
	switch v := getenv("INSECURE_COOKIES"); v {
	case "", "0":
	case "1":
		cfg.InsecureCookies = true
	default:
		return cfg, fmt.Errorf("INSECURE_COOKIES=%q: use 1 (plain-HTTP loopback development) or leave it unset", v)
	}
	keys, err := ParseKeys(getenv("SESSION_KEYS"))
	if err != nil {
		return cfg, err
	}
	cfg.SessionKeys = keys
	return cfg, nil
}

// ParseKeys parses SESSION_KEYS: comma-separated standard base64 (padded
// or not) of [middleware.KeySize] bytes each. Empty gives no key.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, item := range splitList(s) {
		k, err := base64.StdEncoding.DecodeString(item)
		if err != nil {
			k, err = base64.RawStdEncoding.DecodeString(item)
		}
		if err != nil {
			return nil, fmt.Errorf("SESSION_KEYS: key %d is not base64", i+1)
		}
		if len(k) != middleware.KeySize {
			return nil, fmt.Errorf("SESSION_KEYS: key %d is %d bytes, want %d (generate one with: head -c 32 /dev/urandom | base64)", i+1, len(k), middleware.KeySize)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// withDefaults fills defaults and checks the combination, before anything
// is built or contacted.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Name == "" {
		cfg.Name = "app"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Addr
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return cfg, fmt.Errorf("PUBLIC_URL %q must be an origin such as https://app.example.com", cfg.PublicURL)
	}
	switch {
	case u.Scheme == "http" && !cfg.InsecureCookies:
		return cfg, fmt.Errorf("PUBLIC_URL %q is plain HTTP: session cookies are Secure; use https, or INSECURE_COOKIES=1 on a loopback address for development", cfg.PublicURL)
	case cfg.InsecureCookies && (u.Scheme != "http" || !loopback(u.Hostname())):
		return cfg, fmt.Errorf("INSECURE_COOKIES=1 is for plain-HTTP loopback development only, not for PUBLIC_URL %q", cfg.PublicURL)
	}
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return cfg, errors.New("OIDC_ISSUER and OIDC_CLIENT_ID are required")
	}
	if cfg.APIAudience == "" {
		cfg.APIAudience = "api"
	}
	if cfg.MFAACR == "" {
		cfg.MFAACR = DefaultMFAACR
	}
	if len(cfg.SessionKeys) == 0 {
		cfg.SessionKeys = [][]byte{middleware.GenerateKey()}
		cfg.RandomKeys = true
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: httpTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// loopback reports whether host names this machine only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
