package middleware

import (
	"crypto/rand"
	"errors"

	"github.com/sessionfence/sessionfence/internal/sealer"
)

// KeySize is the length of every key in a key ring: 32 bytes of randomness.
const KeySize = sealer.KeySize

// MaxCookieLen is the largest sealed value the guard will try to open.
// Browsers cap a cookie at about 4 KiB; anything larger is refused before
// decoding so hostile input costs nothing. The guard issues less: browsers
// count the cookie's name and value together against 4096 bytes, so a
// session cookie's value is at most MaxCookieLen minus the name's length
// (see [CookieTooLargeError]).
const MaxCookieLen = sealer.MaxLen

var (
	// ErrCookieTooLarge: a cookie value exceeds MaxCookieLen, the Cause
	// of the invalid_session decision for it. It is the very error the
	// cookie codec returns, so errors.Is holds on a Decision's Cause.
	// Also wrapped by [CookieTooLargeError] when a session is too large
	// to seal.
	ErrCookieTooLarge = sealer.ErrTooLarge
	// ErrCookieExpired: the session's absolute lifetime is over.
	ErrCookieExpired = errors.New("sessionfence: session expired")
)

// GenerateKey returns a fresh random key of [KeySize] bytes.
func GenerateKey() []byte {
	k := make([]byte, KeySize)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(k)
	return k
}
