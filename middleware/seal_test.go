package middleware

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func testKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = bytes.Repeat([]byte{byte(i + 1)}, KeySize)
	}
	return keys
}

func mustSealer(t testing.TB, purpose string, keys [][]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(purpose, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTripAndRotation(t *testing.T) {
	oldRing := mustSealer(t, "session", testKeys(1))
	value := oldRing.Seal([]byte("hello"))

	// The new key seals; the old one still opens what it sealed.
	rotated := mustSealer(t, "session", [][]byte{bytes.Repeat([]byte{9}, KeySize), testKeys(1)[0]})
	pt, err := rotated.Open(value, nil)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("old cookie after rotation: %q, %v", pt, err)
	}
	fresh := rotated.Seal([]byte("again"))
	if _, err := oldRing.Open(fresh, nil); !errors.Is(err, ErrCookieUnknownKey) {
		t.Fatalf("new cookie under the old ring: %v, want ErrCookieUnknownKey", err)
	}
	if a, b := rotated.Seal([]byte("x")), rotated.Seal([]byte("x")); a == b {
		t.Fatal("two seals of the same plaintext are equal: nonce reuse")
	}
}

func TestSealerRefusals(t *testing.T) {
	s := mustSealer(t, "session", testKeys(2))
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
		{"oversized value is refused before decoding", strings.Repeat("A", MaxCookieLen+1), ErrCookieTooLarge},
		{"empty value is malformed", "", ErrCookieMalformed},
		{"non-base64 value is malformed", "!!!!" + good, ErrCookieMalformed},
		{"value shorter than the overhead is malformed", good[:20], ErrCookieMalformed},
		{"unknown version is malformed", flip(0), ErrCookieMalformed},
		{"changed key id is an unknown key", flip(2), ErrCookieUnknownKey},
		{"flipped nonce bit fails authentication", flip(8), ErrCookieTampered},
		{"flipped ciphertext bit fails authentication", flip(len(raw) - 20), ErrCookieTampered},
		{"flipped tag bit fails authentication", flip(len(raw) - 1), ErrCookieTampered},
		// Cut at a multiple of 4 characters, so that what is left is a
		// canonical spelling of fewer bytes.
		{"truncated value fails authentication", good[:len(good)/4*4-4], ErrCookieTampered},
		{"value cut to a length no byte count encodes to is malformed", good[:len(good)-1], ErrCookieMalformed},
		{"value sealed for another purpose does not open", mustSealer(t, "login-state", testKeys(2)).Seal([]byte("payload")), ErrCookieUnknownKey},
		{"value with a line break inside is malformed", lineBreak(s.Seal([]byte("pay"))), ErrCookieMalformed},
		{"value with a carriage return inside is malformed", strings.Replace(lineBreak(s.Seal([]byte("pay"))), "\n", "\r", 1), ErrCookieMalformed},
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

func TestNewSealerValidation(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"empty ring", nil},
		{"short key", [][]byte{make([]byte, 16)}},
		{"repeated key", [][]byte{testKeys(1)[0], testKeys(1)[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSealer("session", tt.keys); err == nil {
				t.Fatal("NewSealer accepted an invalid ring")
			}
		})
	}
}

func sampleSession() *Session {
	now := time.Unix(1_800_000_000, 0).UTC()
	s := &Session{
		ID: newSessionID(), Issuer: "https://idp.example.com/realms/acme", Subject: "2f0c7a51-9d3e-4c8b-a1f4-6e2d9b7c3a10",
		Tenant: "acme", IdPSession: "5b9e1c2d-7f3a-4e6b-8c9d-0a1b2c3d4e5f", AuthTime: now.Add(-time.Minute),
		ACR: "urn:mfa", Data: `{"roles":["admin","billing"]}`, IssuedAt: now,
		AccessExpiry: now.Add(5 * time.Minute), AbsoluteExpiry: now.Add(12 * time.Hour),
		Epoch: NewEpoch(now), amr: "pwd otp",
	}
	s.gens = [numScopes]uint64{3, 1, 7, 0, 0}
	s.reloads = [numScopes]uint64{1, 0, 2, 0, 0}
	return s
}

func TestPayloadRoundTripIsCompact(t *testing.T) {
	s := sampleSession()
	sealer := mustSealer(t, "session", testKeys(1))
	value := sealer.Seal(s.appendPayload(nil))
	if len(value) > 700 {
		t.Errorf("typical session cookie is %d bytes; want well under 1 KiB", len(value))
	}
	t.Logf("typical sealed session: %d bytes", len(value))
	pt, err := sealer.Open(value, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Session
	if err := got.decodePayload(pt); err != nil {
		t.Fatal(err)
	}
	if got != *s {
		t.Fatalf("round trip changed the session:\n got %+v\nwant %+v", got, *s)
	}
	if !slices.Contains(got.AMR(), "otp") || slices.Contains(got.AMR(), "pw") || len(got.AMR()) != 2 {
		t.Fatalf("amr = %v", got.AMR())
	}
}

func TestPayloadRefusesMalformed(t *testing.T) {
	good := sampleSession().appendPayload(nil)
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"string length beyond the end", []byte{payloadVersion, 0x7f, 'a'}},
		{"overlong varint", append([]byte{payloadVersion}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"empty session id", (&Session{}).appendPayload(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Session
			if err := s.decodePayload(tt.p); err == nil {
				t.Fatal("decodePayload accepted malformed input")
			}
		})
	}
}

// FuzzOpenSession feeds arbitrary cookie values through the same steps as
// the guard's hot path: open, then decode. Nothing may panic, and anything
// that decodes must re-encode to the same bytes.
func FuzzOpenSession(f *testing.F) {
	sealer := mustSealer(f, "session", testKeys(1))
	s := sampleSession()
	f.Add(sealer.Seal(s.appendPayload(nil)))
	f.Add(sealer.Seal([]byte{payloadVersion}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, value string) {
		pt, err := sealer.Open(value, nil)
		if err != nil {
			return
		}
		var got Session
		if err := got.decodePayload(pt); err != nil {
			return
		}
		if again := got.appendPayload(nil); !bytes.Equal(again, pt) {
			t.Fatalf("decode/encode not stable")
		}
	})
}

// FuzzDecodePayload goes past the AEAD (which fuzzing cannot forge) to
// exercise the payload parser directly.
func FuzzDecodePayload(f *testing.F) {
	f.Add(sampleSession().appendPayload(nil))
	f.Add([]byte{payloadVersion})
	f.Fuzz(func(t *testing.T, p []byte) {
		var s Session
		if s.decodePayload(p) != nil {
			return
		}
		if again := s.appendPayload(nil); !bytes.Equal(again, p) {
			t.Fatalf("payload %x decodes but re-encodes as %x", p, again)
		}
	})
}

func TestSessionIDsNeverStartWithADashOrUnderscore(t *testing.T) {
	seen := make(map[string]bool)
	for range 20000 {
		id := newSessionID()
		if len(id) != 22 || id[0] == '-' || id[0] == '_' {
			t.Fatalf("session id %q", id)
		}
		if seen[id] {
			t.Fatalf("session id %q repeated", id)
		}
		seen[id] = true
	}
}
