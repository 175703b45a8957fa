// Package sealer seals and opens the small values sessionfence hands to
// browsers and keeps in stores: session cookies (package middleware),
// login-state cookies and refresh tokens at rest (package oidc). Every
// caller shares this one codec, so a fix to it reaches all of them.
//
// Happy path:
//
//	s, err := sealer.New("session", keys) // keys from Config.Keys
//	value := s.Seal(plaintext)            // base64url, safe for a cookie
//	pt, err := s.Open(value, nil)         // errors.Is(err, sealer.ErrTampered)?
//
// Security notes:
//
//   - AES-256-GCM under a key ring: the first key seals, every key opens,
//     so keys rotate without signing anyone out.
//   - Each key is never used directly: a per-purpose AEAD key is derived
//     with HKDF-SHA256, and the purpose is also authenticated, so a value
//     sealed for one purpose never opens as another.
//   - Open refuses before any work a value longer than [MaxLen], and every
//     spelling but the canonical one of a value, so hostile input costs
//     little and a value has one form in caches, replay lists and logs.
//   - The errors say why a value did not open, for logs; none of them is a
//     server fault, and callers must never show them to clients.
package sealer
