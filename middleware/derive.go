package middleware

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// DeriveKeys returns one [KeySize]-byte key per key of the guard's key
// ring, in ring order, derived with HKDF-SHA256 under a label made of
// purpose. Packages built on the guard use them for their own MACs (the
// admin API's anti-CSRF token, for one) without ever holding the ring:
// the first key makes new values, every key checks them, so they rotate
// with the ring.
//
// Keys for different purposes are independent of each other and of the
// keys that seal cookies (those are derived under other labels), so a
// value made for one purpose is useless for any other. An empty purpose
// returns nil. The result is the caller's to keep.
func (g *Guard) DeriveKeys(purpose string) [][]byte {
	if purpose == "" {
		return nil
	}
	out := make([][]byte, 0, len(g.cfg.Keys))
	for _, k := range g.cfg.Keys {
		// The label cannot collide with the sealer's
		// ("sessionfence/v1/aead/..." and ".../key-id/..."): it has its
		// own second component.
		d, err := hkdf.Key(sha256.New, k, nil, "sessionfence/v1/derive/"+purpose, KeySize)
		if err != nil {
			// Only a length beyond HKDF's limit fails, and KeySize is
			// far below it.
			return nil
		}
		out = append(out, d)
	}
	return out
}
