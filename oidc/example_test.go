package oidc_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/oidc"
)

// Wiring an application: the RP builds the guard (it is the guard's
// renewer), the login, callback and logout handlers sit outside the
// guard, the application behind it.
func ExampleNew() {
	ctx := context.Background()
	rp, err := oidc.New(ctx, oidc.Config{
		Guard: middleware.Config{
			Store: memstore.New(memstore.Config{}), // one process; valkeystore for many
			Keys:  [][]byte{[]byte(os.Getenv("SESSION_KEY"))},
			MFA:   middleware.MFAPolicy{ACR: []string{"gold"}},
		},
		Providers: []oidc.ProviderConfig{{
			Issuer:                "https://idp.example/realms/acme",
			ClientID:              "app",
			ClientSecret:          os.Getenv("CLIENT_SECRET"),
			RedirectURL:           "https://app.example/callback",
			PostLogoutRedirectURL: "https://app.example/",
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.FromContext(r.Context())
		fmt.Fprintln(w, "hello", s.Subject)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /login", rp.LoginHandler())
	mux.Handle("GET /callback", rp.CallbackHandler())
	mux.Handle("POST /logout", rp.LogoutHandler())
	mux.Handle("/", nethttp.Middleware(rp.Guard())(app))
	log.Fatal(http.ListenAndServe(":8080", mux))
}

// Configuration is validated before any network access; a mistake is an
// error naming the field.
func ExampleNew_validation() {
	_, err := oidc.New(context.Background(), oidc.Config{
		Guard: middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}},
		Providers: []oidc.ProviderConfig{{
			Issuer: "https://idp.example", ClientID: "app", RedirectURL: "http://app.example/callback",
		}},
	})
	fmt.Println(errors.Is(err, oidc.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// sessionfence/oidc: invalid config: RedirectURL "http://app.example/callback" uses http; the session cookie is Secure, so the callback must be https (or set Guard.InsecureCookies for development) (provider 0)
}

// A store without the Secrets and Locker abilities cannot hold refresh
// tokens; the RP refuses to start unless renewal is explicitly turned off.
func ExampleRefreshMode() {
	type fencesOnly struct{ middleware.Store }
	cfg := oidc.Config{
		Guard: middleware.Config{Store: fencesOnly{memstore.New(memstore.Config{})}, Keys: [][]byte{middleware.GenerateKey()}},
		Providers: []oidc.ProviderConfig{{
			Issuer: "https://idp.example", ClientID: "app", RedirectURL: "https://app.example/callback",
		}},
	}
	_, err := oidc.New(context.Background(), cfg)
	fmt.Println(errors.Is(err, oidc.ErrNoSecretsStore))
	fmt.Println(oidc.RefreshServerSide, oidc.RefreshNone)
	// Output:
	// true
	// server_side none
}

// Only same-origin relative paths survive as return_to.
func ExampleValidReturnTo() {
	for _, s := range []string{"/reports?year=2026", "//evil.example", "/%2F%2Fevil.example", "https://evil.example"} {
		_, ok := oidc.ValidReturnTo(s)
		fmt.Println(ok, s)
	}
	// Output:
	// true /reports?year=2026
	// false //evil.example
	// false /%2F%2Fevil.example
	// false https://evil.example
}

// Bearer mode for APIs: verify JWT access tokens, then let the guard judge
// them against the fences and answer with RFC 6750 / RFC 9470 challenges.
func ExampleNewBearerVerifier() {
	ctx := context.Background()
	guard, err := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		log.Fatal(err)
	}
	v, err := oidc.NewBearerVerifier(ctx, oidc.BearerConfig{
		Issuers:  []string{"https://idp.example/realms/acme"},
		Audience: "https://api.example",
	})
	if err != nil {
		log.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := middleware.TokenFromContext(r.Context())
		fmt.Fprintln(w, "hello", tok.Subject)
	})
	log.Fatal(http.ListenAndServe(":8081", nethttp.Bearer(guard, v, nethttp.BearerRealm("api"))(api)))
}
