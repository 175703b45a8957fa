package oidc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/middleware/admin"
)

// Terminating a user through the administration service also revokes the
// user's refresh tokens at the provider (RFC 7009), and says so in the
// audit entry.
func TestTerminateUserRevokesRefreshTokensAtTheProvider(t *testing.T) {
	r := newRig(t)
	me := r.mustLogin()
	svc, err := admin.New(admin.Config{Guard: r.rp.Guard(), TokenRevoker: r.rp})
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := me["sub"].(string)
	res, err := svc.TerminateUser(context.Background(), r.idp.Issuer(), sub,
		admin.Action{Actor: "test", Reason: "leaver"})
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, rv := range r.idp.Revoked() {
		if rv.Kind == "refresh_token" {
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("refresh tokens revoked at the provider = %d, want 1 (%+v)", revoked, r.idp.Revoked())
	}
	if len(res.Entry.Notes) != 1 || !strings.Contains(res.Entry.Notes[0], "revoked 1 refresh tokens") {
		t.Fatalf("audit notes = %q", res.Entry.Notes)
	}
	// Nothing is left to revoke a second time.
	if n, err := r.rp.RevokeSessionTokens(context.Background(), []string{"unknown-session"}); n != 0 || err != nil {
		t.Fatalf("unknown session: %d, %v", n, err)
	}
}
