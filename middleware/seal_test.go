package middleware

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/sealer"
)

func testKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = bytes.Repeat([]byte{byte(i + 1)}, KeySize)
	}
	return keys
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
	sl, err := sealer.New("session", testKeys(1))
	if err != nil {
		t.Fatal(err)
	}
	value := sl.Seal(s.appendPayload(nil))
	if len(value) > 700 {
		t.Errorf("typical session cookie is %d bytes; want well under 1 KiB", len(value))
	}
	t.Logf("typical sealed session: %d bytes", len(value))
	pt, err := sl.Open(value, nil)
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
	sl, err := sealer.New("session", testKeys(1))
	if err != nil {
		f.Fatal(err)
	}
	s := sampleSession()
	f.Add(sl.Seal(s.appendPayload(nil)))
	f.Add(sl.Seal([]byte{payloadVersion}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, value string) {
		pt, err := sl.Open(value, nil)
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
