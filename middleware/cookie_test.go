package middleware_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/middleware"
)

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// issueWithLength issues a session for alice whose cookie value has
// length ≡ rem (mod 4), by growing Data.
func issueWithLength(t *testing.T, f *fixture, rem int) string {
	t.Helper()
	for n := range 3 {
		c := alice
		c.Data = strings.Repeat("d", n)
		_, v := f.issue(t, c)
		if len(v)%4 == rem {
			return v
		}
	}
	t.Fatalf("no cookie length ≡ %d (mod 4)", rem)
	return ""
}

// A session cookie has one spelling. Unpadded base64url leaves unused low
// bits in the last character when the length is 2 or 3 (mod 4); a lenient
// decoder ignores them, so one cookie would open under 16 (or 4)
// spellings: 16 keys for one session in caches, replay lists and logs.
func TestCookieWithAlteredTrailingBitsIsRefused(t *testing.T) {
	tests := []struct {
		name      string
		rem       int // cookie length mod 4
		spellings int // values decoding to the same bytes under a lenient decoder
	}{
		{"a cookie whose last character has four unused bits opens under one spelling of sixteen", 2, 16},
		{"a cookie whose last character has two unused bits opens under one spelling of four", 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			value := issueWithLength(t, f, tt.rem)
			want, err := base64.RawURLEncoding.DecodeString(value)
			if err != nil {
				t.Fatal(err)
			}
			head, last := value[:len(value)-1], strings.IndexByte(base64URL, value[len(value)-1])
			mask := tt.spellings - 1 // the unused low bits
			same, opened := 0, 0
			for v := last &^ mask; v <= last|mask; v++ {
				alt := head + base64URL[v:v+1]
				if raw, err := base64.RawURLEncoding.DecodeString(alt); err == nil && bytes.Equal(raw, want) {
					same++
				}
				d := f.guard.Check(context.Background(), alt)
				switch {
				case d.Kind == middleware.DecisionAllowed:
					opened++
				case alt == value || d.Kind != middleware.DecisionInvalid || !errors.Is(d.Cause, middleware.ErrCookieMalformed):
					t.Fatalf("spelling %q: %v, want invalid (malformed)", alt[len(alt)-4:], d)
				}
			}
			if same != tt.spellings || opened != 1 {
				t.Fatalf("%d spellings decode to the same bytes (want %d); %d open (want 1)", same, tt.spellings, opened)
			}
		})
	}
}
