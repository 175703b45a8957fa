package sealer_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/internal/sealer"
)

// ring returns n distinct test keys.
func ring(n int) [][]byte {
	var keys [][]byte
	for i := 1; i <= n; i++ {
		keys = append(keys, bytes.Repeat([]byte{byte(i)}, sealer.KeySize))
	}
	return keys
}

func mustNew(t testing.TB, purpose string, keys [][]byte) *sealer.Sealer {
	t.Helper()
	s, err := sealer.New(purpose, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTripAndRotation(t *testing.T) {
	oldRing := mustNew(t, "session", ring(1))
	value := oldRing.Seal([]byte("hello"))

	// The new key seals; the old one still opens what it sealed.
	rotated := mustNew(t, "session", [][]byte{bytes.Repeat([]byte{9}, sealer.KeySize), ring(1)[0]})
	pt, err := rotated.Open(value, nil)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("old cookie after rotation: %q, %v", pt, err)
	}
	fresh := rotated.Seal([]byte("again"))
	if _, err := oldRing.Open(fresh, nil); !errors.Is(err, sealer.ErrUnknownKey) {
		t.Fatalf("new cookie under the old ring: %v, want sealer.ErrUnknownKey", err)
	}
	if a, b := rotated.Seal([]byte("x")), rotated.Seal([]byte("x")); a == b {
		t.Fatal("two seals of the same plaintext are equal: nonce reuse")
	}
}

func TestSealerRefusals(t *testing.T) {
	s := mustNew(t, "session", ring(2))
	good := s.Seal([]byte("payload"))
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name  string
		value string
		want  error
	}{
		{"oversized value is refused before decoding", strings.Repeat("A", sealer.MaxLen+1), sealer.ErrTooLarge},
		{"empty value is malformed", "", sealer.ErrMalformed},
		{"non-base64 value is malformed", "!!!!" + good, sealer.ErrMalformed},
		{"value shorter than the overhead is malformed", good[:20], sealer.ErrMalformed},
		{"unknown version is malformed", flip(0), sealer.ErrMalformed},
		{"changed key id is an unknown key", flip(2), sealer.ErrUnknownKey},
		{"flipped nonce bit fails authentication", flip(8), sealer.ErrTampered},
		{"flipped ciphertext bit fails authentication", flip(len(raw) - 20), sealer.ErrTampered},
		{"flipped tag bit fails authentication", flip(len(raw) - 1), sealer.ErrTampered},
		// Cut at a multiple of 4 characters, so that what is left is a
		// canonical spelling of fewer bytes.
		{"truncated value fails authentication", good[:len(good)/4*4-4], sealer.ErrTampered},
		{"value cut to a length no byte count encodes to is malformed", good[:len(good)-1], sealer.ErrMalformed},
		{"value sealed for another purpose does not open", mustNew(t, "login-state", ring(2)).Seal([]byte("payload")), sealer.ErrUnknownKey},
		{"value with a line break inside is malformed", lineBreak(s.Seal([]byte("pay"))), sealer.ErrMalformed},
		{"value with a carriage return inside is malformed", strings.Replace(lineBreak(s.Seal([]byte("pay"))), "\n", "\r", 1), sealer.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Open(tt.value, nil); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// lineBreak inserts a newline in the middle of v. Base64 decoders skip
// line breaks, and for a length that is a multiple of 4 (a 3-byte
// plaintext seals to 36 bytes, 48 characters) the decoded length stays
// the same: without care, one more spelling of the same value.
func lineBreak(v string) string {
	return v[:len(v)/2] + "\n" + v[len(v)/2:]
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"empty ring", nil},
		{"short key", [][]byte{make([]byte, 16)}},
		{"repeated key", [][]byte{ring(1)[0], ring(1)[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sealer.New("session", tt.keys); err == nil {
				t.Fatal("New accepted an invalid ring")
			}
		})
	}
}

// FuzzOpen feeds arbitrary values to Open: nothing may panic; since no
// one can forge the AEAD, only a sealed plaintext ever comes out (each
// worker seals its own seed, so the value itself varies); and a value
// that opens is in its one canonical spelling.
func FuzzOpen(f *testing.F) {
	s := mustNew(f, "session", ring(1))
	good := s.Seal([]byte("payload"))
	f.Add(good)
	f.Add("")
	f.Add("AQ")
	f.Add(good[:len(good)-1] + "\n")
	f.Fuzz(func(t *testing.T, value string) {
		pt, err := s.Open(value, nil)
		if err != nil {
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(value)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != value || string(pt) != "payload" {
			t.Fatalf("Open(%q) = %q: opened a value never sealed or not canonical", value, pt)
		}
	})
}
