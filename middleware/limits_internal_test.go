package middleware

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// zeroStore has no fence ever written: every read is the zero fence under
// one epoch.
type zeroStore struct{ epoch string }

func (z zeroStore) Fences(_ context.Context, scopes []Scope, dst []Fence) (Version, error) {
	clear(dst[:len(scopes)])
	return Version{Epoch: z.epoch}, nil
}

func (z zeroStore) Bump(context.Context, Scope, Bump) (Fence, error) {
	return Fence{}, errors.New("zeroStore: read only")
}

func (z zeroStore) Epoch(context.Context) (string, error) { return z.epoch, nil }

// What the guard accepts is MaxCookieLen characters of sealed value, not
// one more; what it issues is less (see TestIssuedCookieAtTheSizeLimit),
// because browsers count the cookie's name too.
func TestGuardOpensASealedValueOfExactlyMaxCookieLen(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).UTC()
	g, err := New(Config{Store: zeroStore{epoch: "e1"}, Keys: testKeys(1), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// sealWith seals a session whose Data has n bytes, straight through
	// the guard's sealer: the guard itself would not issue it.
	sealWith := func(n int) string {
		s := &Session{ID: newSessionID(), Issuer: "https://idp.test", Subject: "alice",
			Tenant: strings.Repeat("t", maxStringField), Data: strings.Repeat("d", n),
			IssuedAt: now, AccessExpiry: now.Add(time.Minute), AbsoluteExpiry: now.Add(time.Hour), Epoch: "e1"}
		return g.sealer.Seal(s.appendPayload(nil))
	}
	n := 0
	for len(sealWith(n)) < MaxCookieLen {
		n++
	}
	exact := sealWith(n)
	if len(exact) != MaxCookieLen {
		t.Fatalf("no Data length seals to exactly %d characters (got %d)", MaxCookieLen, len(exact))
	}
	if d := g.Check(context.Background(), exact); d.Kind != DecisionAllowed || len(d.Session.Data) != n {
		t.Fatalf("a %d-character cookie: %v, want allowed", len(exact), d)
	}
	over := sealWith(n + 1)
	if d := g.Check(context.Background(), over); d.Kind != DecisionInvalid || !errors.Is(d.Cause, ErrCookieTooLarge) {
		t.Fatalf("a %d-character cookie: %v, want invalid (too large)", len(over), d)
	}
	// The same session is too large for the guard to issue under its
	// default cookie name.
	var tl *CookieTooLargeError
	if s, _ := g.SessionFromCookie(exact); s == nil {
		t.Fatal("SessionFromCookie failed")
	} else if _, err := g.seal(s); !errors.As(err, &tl) || tl.Field != "cookie" {
		t.Fatalf("seal of the %d-character session = %v, want *CookieTooLargeError for the cookie", len(exact), err)
	}
}
