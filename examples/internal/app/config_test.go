package app

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvReadsEveryVariable(t *testing.T) {
	k1, k2 := middleware.GenerateKey(), middleware.GenerateKey()
	cfg, err := FromEnv("nethttp", env(map[string]string{
		"ADDR": "127.0.0.1:9090", "PUBLIC_URL": "http://localhost:9090/",
		"OIDC_ISSUER": "https://idp.example", "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "s",
		"OIDC_TENANT_CLAIM": "tid", "API_AUDIENCE": "urn:api", "VALKEY_ADDR": "valkey:6379",
		"ADMIN_SUBJECTS": " alice, ,bob ", "INSECURE_COOKIES": "1", "MFA_ACR": "gold",
		"SESSION_KEYS": base64.StdEncoding.EncodeToString(k1) + "," + base64.RawStdEncoding.EncodeToString(k2),
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "nethttp" || cfg.Addr != "127.0.0.1:9090" || cfg.PublicURL != "http://localhost:9090" ||
		cfg.Issuer != "https://idp.example" || cfg.ClientID != "app" || cfg.ClientSecret != "s" || cfg.TenantClaim != "tid" ||
		cfg.APIAudience != "urn:api" || cfg.ValkeyAddr != "valkey:6379" || strings.Join(cfg.AdminSubjects, "|") != "alice|bob" ||
		!cfg.InsecureCookies || cfg.MFAACR != "gold" || len(cfg.SessionKeys) != 2 || cfg.RandomKeys ||
		string(cfg.SessionKeys[0]) != string(k1) || string(cfg.SessionKeys[1]) != string(k2) {
		t.Errorf("%+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := FromEnv("gin", env(map[string]string{"OIDC_ISSUER": "http://127.0.0.1:9000", "OIDC_CLIENT_ID": "demo", "INSECURE_COOKIES": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.PublicURL != "http://127.0.0.1:8080" || cfg.MFAACR != DefaultMFAACR ||
		cfg.APIAudience != "api" || len(cfg.SessionKeys) != 1 || !cfg.RandomKeys || cfg.HTTPClient == nil || cfg.Logger == nil {
		t.Errorf("%+v", cfg)
	}
}

func TestUnsafeConfigurationsAreRefused(t *testing.T) {
	base := map[string]string{"OIDC_ISSUER": "https://idp.example", "OIDC_CLIENT_ID": "app"}
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"plain HTTP without INSECURE_COOKIES", map[string]string{"PUBLIC_URL": "http://127.0.0.1:8080"}, "plain HTTP"},
		{"INSECURE_COOKIES on a public host", map[string]string{"PUBLIC_URL": "http://app.example", "INSECURE_COOKIES": "1"}, "loopback"},
		{"INSECURE_COOKIES over https", map[string]string{"PUBLIC_URL": "https://127.0.0.1", "INSECURE_COOKIES": "1"}, "loopback"},
		{"INSECURE_COOKIES with another value", map[string]string{"INSECURE_COOKIES": "yes"}, "INSECURE_COOKIES"},
		{"PUBLIC_URL with a path", map[string]string{"PUBLIC_URL": "https://app.example/app"}, "origin"},
		{"no issuer", map[string]string{"PUBLIC_URL": "https://app.example", "OIDC_ISSUER": ""}, "OIDC_ISSUER"},
		{"short key", map[string]string{"PUBLIC_URL": "https://app.example", "SESSION_KEYS": base64.StdEncoding.EncodeToString([]byte("short"))}, "bytes"},
		{"key not base64", map[string]string{"PUBLIC_URL": "https://app.example", "SESSION_KEYS": "not base64!"}, "base64"},
	}
	for _, tt := range tests {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range tt.set {
			m[k] = v
		}
		cfg, err := FromEnv("x", env(m))
		if err == nil {
			_, err = cfg.withDefaults()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestOnlyAdminsAndOwnSessionListingAreAuthorized(t *testing.T) {
	auth := authorizer("https://idp", []string{"alice"})
	alice := &middleware.Session{Issuer: "https://idp", Subject: "alice"}
	bob := &middleware.Session{Issuer: "https://idp", Subject: "bob"}
	mallory := &middleware.Session{Issuer: "https://other", Subject: "alice"}
	for _, tt := range []struct {
		name   string
		s      *middleware.Session
		op     admin.Op
		target middleware.Scope
		ok     bool
	}{
		{"admin ends everyone", alice, admin.OpTerminateAll, middleware.GlobalScope(), true},
		{"user lists own sessions", bob, admin.OpSessions, middleware.SubjectScope("https://idp", "bob"), true},
		{"user lists someone else's sessions", bob, admin.OpSessions, middleware.SubjectScope("https://idp", "alice"), false},
		{"user ends everyone", bob, admin.OpTerminateAll, middleware.GlobalScope(), false},
		{"user ends own user", bob, admin.OpTerminateUser, middleware.SubjectScope("https://idp", "bob"), false},
		{"same sub at another issuer is not the admin", mallory, admin.OpTerminateAll, middleware.GlobalScope(), false},
		{"no session", nil, admin.OpSessions, middleware.SubjectScope("https://idp", "bob"), false},
	} {
		if err := auth(t.Context(), tt.s, admin.Request{Op: tt.op, Target: tt.target}); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}
