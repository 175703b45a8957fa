package sealer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the length of every key in a key ring: 32 bytes of randomness.
const KeySize = 32

// MaxLen is the largest sealed value [Sealer.Open] will try to open.
// Browsers cap a cookie at about 4 KiB; anything larger is refused before
// decoding so hostile input costs nothing.
const MaxLen = 4096

// Layout of a sealed value, before base64url (no padding):
//
//	version(1) | keyID(4) | nonce(12) | AES-256-GCM ciphertext+tag(16)
//
// The additional data binds the purpose (the cookie's role, e.g. "session"
// or "login-state") and the header, so a value sealed for one purpose never
// opens as another even under the same key ring.
const (
	sealVersion  = 1
	keyIDLen     = 4
	nonceLen     = 12
	tagLen       = 16
	sealOverhead = 1 + keyIDLen + nonceLen + tagLen
)

// sealEncoding is the text form of sealed values: unpadded base64url,
// decoded strictly (the unused low bits of the last character must be
// zero), so that a value has exactly one spelling. A lenient decoder opens
// one cookie under up to 16 spellings, each a distinct key for caches,
// replay lists and logs.
var sealEncoding = base64.RawURLEncoding.Strict()

// Errors returned by [Sealer.Open], each a distinct reason logs can tell
// apart. All of them mean "no value"; none of them is a server fault.
var (
	// ErrTooLarge: the value exceeds MaxLen.
	ErrTooLarge = errors.New("sessionfence: cookie too large")
	// ErrMalformed: not canonical unpadded base64url (another spelling
	// of a value is refused too), too short, or an unknown version.
	ErrMalformed = errors.New("sessionfence: cookie malformed")
	// ErrUnknownKey: sealed under a key that is not in the ring (rotated
	// out, or never ours).
	ErrUnknownKey = errors.New("sessionfence: cookie sealed with an unknown key")
	// ErrTampered: authentication failed (modified, truncated, or sealed
	// for another purpose).
	ErrTampered = errors.New("sessionfence: cookie failed authentication")
)

// Sealer seals and opens small values with AES-256-GCM under a key ring.
// The first key seals; every key opens, so keys rotate without signing
// anyone out: add the new key in front, keep the old one until every value
// sealed with it has expired, then drop it. A Sealer is safe for concurrent
// use.
//
// Each configured key is never used directly: a per-purpose AEAD key is
// derived from it with HKDF-SHA256, so the same ring can seal session
// cookies and login-state cookies without one ever opening as the other.
type Sealer struct {
	purpose string
	keys    []sealKey
}

type sealKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// New returns a Sealer for purpose (a short label such as "session") over
// keys, each exactly [KeySize] bytes. It fails on an empty ring, a key of
// the wrong size, or two identical keys.
func New(purpose string, keys [][]byte) (*Sealer, error) {
	if purpose == "" || len(purpose)+2+keyIDLen > adMax {
		return nil, errors.New("sessionfence: sealer purpose must be 1 to 40 bytes")
	}
	if len(keys) == 0 {
		return nil, errors.New("sessionfence: key ring is empty; generate a key with GenerateKey")
	}
	s := &Sealer{purpose: purpose}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("sessionfence: key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		aeadKey, err := hkdf.Key(sha256.New, k, nil, "sessionfence/v1/aead/"+purpose, KeySize)
		if err != nil {
			return nil, fmt.Errorf("sessionfence: deriving key %d: %w", i, err)
		}
		block, err := aes.NewCipher(aeadKey)
		if err != nil {
			return nil, fmt.Errorf("sessionfence: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sessionfence: key %d: %w", i, err)
		}
		// The key id is public (it travels in every cookie), so it is a
		// MAC of the purpose under the key, not a piece of the key.
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte("sessionfence/v1/key-id/" + purpose))
		var sk sealKey
		copy(sk.id[:], mac.Sum(nil))
		for _, prev := range s.keys {
			if prev.id == sk.id {
				return nil, fmt.Errorf("sessionfence: key %d repeats an earlier key", i)
			}
		}
		sk.aead = aead
		s.keys = append(s.keys, sk)
	}
	return s, nil
}

// Seal encrypts and authenticates plaintext and returns it as base64url
// text without padding, safe for a cookie value; its length is
// [SealedLen] of len(plaintext).
func (s *Sealer) Seal(plaintext []byte) string {
	k := &s.keys[0]
	buf := make([]byte, 1+keyIDLen+nonceLen, sealOverhead+len(plaintext))
	buf[0] = sealVersion
	copy(buf[1:], k.id[:])
	_, _ = rand.Read(buf[1+keyIDLen:])
	header := buf[:1+keyIDLen+nonceLen]
	var adBuf [adMax]byte
	buf = k.aead.Seal(buf, header[1+keyIDLen:], plaintext, s.ad(adBuf[:0], header[:1+keyIDLen]))
	return sealEncoding.EncodeToString(buf)
}

// SealedLen returns the length of the text [Sealer.Seal] returns for a
// plaintext of n bytes, so that callers can refuse a value too long for
// its cookie before sealing it.
func SealedLen(n int) int { return sealEncoding.EncodedLen(sealOverhead + n) }

// adMax bounds the additional data: purpose, a separator and the header.
const adMax = 64

// ad appends the additional authenticated data (purpose and header) to dst.
func (s *Sealer) ad(dst, header []byte) []byte {
	b := append(dst, s.purpose...)
	b = append(b, 0)
	return append(b, header...)
}

// Open authenticates and decrypts a value made by Seal. It works inside
// scratch when its capacity is at least 2*len(value)+64 (to let hot paths
// reuse a buffer) and returns the plaintext, which aliases scratch. Errors
// are [ErrTooLarge], [ErrMalformed], [ErrUnknownKey] or [ErrTampered].
func (s *Sealer) Open(value string, scratch []byte) ([]byte, error) {
	if len(value) > MaxLen {
		return nil, ErrTooLarge
	}
	n := sealEncoding.DecodedLen(len(value))
	// Only a length that encodes some byte count is a spelling of it;
	// with m == n below, this also refuses line breaks, which the
	// decoder skips even in strict mode.
	if n < sealOverhead || sealEncoding.EncodedLen(n) != len(value) {
		return nil, ErrMalformed
	}
	// The text is copied behind the decode area of one buffer, so a
	// caller-provided scratch makes the whole open allocation-free.
	need := n + len(value) + len(s.purpose) + 1 + 1 + keyIDLen
	var buf []byte
	if cap(scratch) >= need {
		buf = scratch[:need]
	} else {
		buf = make([]byte, need)
	}
	raw := buf[:n]
	src := buf[n : n+len(value)]
	adBuf := buf[n+len(value) : n+len(value)]
	copy(src, value)
	m, err := sealEncoding.Decode(raw, src)
	if err != nil || m != n {
		return nil, ErrMalformed
	}
	if raw[0] != sealVersion {
		return nil, ErrMalformed
	}
	var id [keyIDLen]byte
	copy(id[:], raw[1:1+keyIDLen])
	for i := range s.keys {
		k := &s.keys[i]
		if k.id != id {
			continue
		}
		nonce := raw[1+keyIDLen : 1+keyIDLen+nonceLen]
		ct := raw[1+keyIDLen+nonceLen:]
		// Decrypt in place: the plaintext overwrites the ciphertext.
		pt, err := k.aead.Open(ct[:0], nonce, ct, s.ad(adBuf, raw[:1+keyIDLen]))
		if err != nil {
			return nil, ErrTampered
		}
		return pt, nil
	}
	return nil, ErrUnknownKey
}
