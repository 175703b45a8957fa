package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/backchannel"
	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
)

// A back-channel logout received by instance A ends the IdP session on
// instance B through the shared Valkey store; the provider's resend of the
// same token to instance B is a replay: 200, and no fence moves again.
func TestBackchannelLogoutOnOneInstanceReachesTheOther(t *testing.T) {
	a, b, _ := pair(t)
	idp := fakeidp.New(t)
	receiver := func(in *instance) *httptest.Server {
		rcv, err := backchannel.New(backchannel.Config{
			Guard:      in.guard,
			Issuers:    []backchannel.Issuer{{Issuer: idp.Issuer(), ClientID: "app"}},
			HTTPClient: idp.Client(),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(rcv)
		t.Cleanup(srv.Close)
		return srv
	}
	ra, rb := receiver(a), receiver(b)

	// A session on B whose IdP session will be logged out; one of another
	// IdP session of the same user must survive.
	issue := func(sid string) string {
		_, ck, err := b.guard.Issue(context.Background(), middleware.Claims{
			Issuer: idp.Issuer(), Subject: "alice", IdPSession: sid, AuthTime: time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return ck.Value
	}
	ended, other := issue("sid-1"), issue("sid-2")
	for _, v := range []string{ended, other} {
		if d := b.guard.Check(context.Background(), v); !d.Allowed() {
			t.Fatalf("fresh session refused: %v", d)
		}
	}

	token := idp.SignLogoutToken(idp.LogoutToken("app", "alice", "sid-1"))
	post := func(srv *httptest.Server) int {
		resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded",
			strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(ra); code != http.StatusOK {
		t.Fatalf("delivery to A: %d", code)
	}
	deadline := time.Now().Add(2 * time.Second)
	for b.guard.Check(context.Background(), ended).Allowed() {
		if time.Now().After(deadline) {
			t.Fatal("B still accepts the logged-out IdP session 2 s after A's answer")
		}
	}
	d := b.guard.Check(context.Background(), ended)
	if d.Kind != middleware.DecisionReauthRequired || d.Scope.Kind != middleware.ScopeIdPSession {
		t.Fatalf("ended session on B: %v", d)
	}
	if d := b.guard.Check(context.Background(), other); !d.Allowed() {
		t.Fatalf("the user's other IdP session on B: %v", d)
	}

	// The resend lands on B: accepted as a replay, nothing moves.
	svc, err := admin.New(admin.Config{Guard: b.guard})
	if err != nil {
		t.Fatal(err)
	}
	sc := middleware.IdPSessionScope(idp.Issuer(), "sid-1")
	before, _, err := svc.Fences(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if code := post(rb); code != http.StatusOK {
		t.Fatalf("replay to B: %d", code)
	}
	after, _, err := svc.Fences(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if before[0].Gen != 1 || after[0].Gen != 1 {
		t.Fatalf("IdP-session generation before/after the replay: %d/%d, want 1/1", before[0].Gen, after[0].Gen)
	}
	// A login of that IdP session completing now is refused on either
	// instance: the tombstone lives in the shared store.
	if _, _, err := a.guard.Issue(context.Background(), middleware.Claims{Issuer: idp.Issuer(), Subject: "alice", IdPSession: "sid-1"}); err == nil {
		t.Fatal("A issued a session for a logged-out IdP session")
	}
}
