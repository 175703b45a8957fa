package backchannel_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sessionfence/sessionfence/backchannel"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// A receiver for one provider, and the values to register there.
func ExampleReceiver_Registration() {
	guard, err := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		panic(err)
	}
	rcv, err := backchannel.New(backchannel.Config{
		Guard:           guard,
		Issuers:         []backchannel.Issuer{{Issuer: "https://idp.example.com", ClientID: "my-app"}},
		SessionRequired: true,
	})
	if err != nil {
		panic(err)
	}
	// mux.Handle("POST /backchannel-logout", rcv)
	reg, err := rcv.Registration("https://app.example.com/backchannel-logout")
	if err != nil {
		panic(err)
	}
	out, _ := json.MarshalIndent(reg, "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "backchannel_logout_uri": "https://app.example.com/backchannel-logout",
	//   "backchannel_logout_session_required": true
	// }
}

// How the handler answers requests that are not logout requests: never a
// 5xx, always no-store, and a fixed description that echoes nothing.
func ExampleReceiver_ServeHTTP() {
	guard, _ := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	rcv, _ := backchannel.New(backchannel.Config{
		Guard:   guard,
		Issuers: []backchannel.Issuer{{Issuer: "https://idp.example.com", ClientID: "my-app"}},
		Logger:  slog.New(slog.DiscardHandler),
	})

	w := httptest.NewRecorder()
	rcv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/backchannel-logout", nil))
	fmt.Println(w.Code, w.Header().Get("Allow"))

	req := httptest.NewRequest(http.MethodPost, "/backchannel-logout", strings.NewReader("logout_token=not-a-jwt"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	rcv.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("Cache-Control"))
	fmt.Print(w.Body)
	// Output:
	// 405 POST
	// 400 no-store
	// {"error":"invalid_request","error_description":"the logout token is not a compact JWS"}
}
